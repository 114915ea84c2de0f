package quota_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/xenflow/xenflow/quota"
)

// The resize lifecycle of a worked example: 2 vCPU/4096 MB
// resized to 4 vCPU/2048 MB. The resize reserves the growth, finish_resize
// commits it (VERIFY_RESIZE is charged max(old, new)), and the confirm gives
// back the RAM that shrank.
func Example() {
	ctx := context.Background()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ledger, err := quota.NewLedger(
		quota.WithClock(func() time.Time { return start }),
		quota.WithIDs(quota.SequentialIDs("res")),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	oldFlavor := quota.Flavor{VCPUs: 2, MemoryMB: 4096}
	newFlavor := quota.Flavor{VCPUs: 4, MemoryMB: 2048}
	show := func(step string) {
		u, _ := ledger.Usage(ctx, "demo")
		fmt.Printf("%-14s cores %d ram %d (reserved cores %d)\n", step, u.Total.InUse[quota.Cores], u.Total.InUse[quota.RAM], u.Total.Reserved[quota.Cores])
	}

	// The instance exists.
	boot, _ := ledger.Reserve(ctx, "demo", "alice", quota.InstanceCharge("alice", oldFlavor).Amount.Deltas())
	_ = ledger.Commit(ctx, boot)
	show("booted")

	// API resize: reserve the upsize; the id travels with the migration.
	up := quota.UpsizeDelta(newFlavor, oldFlavor)
	id, err := ledger.Reserve(ctx, "demo", "alice", up)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("reserved", up, "as", id)
	show("resize")

	// finish_resize on the destination commits it.
	_ = ledger.Commit(ctx, id)
	show("verify_resize")

	// A retried finish_resize succeeds and does not count twice.
	fmt.Println("retried commit:", ledger.Commit(ctx, id))

	// Confirm: reserve the downsize, commit when the source is cleaned up.
	down := quota.DownsizeDelta(newFlavor, oldFlavor)
	cid, _ := ledger.Reserve(ctx, "demo", "alice", down)
	_ = ledger.Commit(ctx, cid)
	fmt.Println("confirm gave back", down)
	show("confirmed")

	// Output:
	// booted         cores 2 ram 4096 (reserved cores 0)
	// reserved cores=+2 as res-2/demo
	// resize         cores 2 ram 4096 (reserved cores 2)
	// verify_resize  cores 4 ram 4096 (reserved cores 0)
	// retried commit: <nil>
	// confirm gave back ram=-2048
	// confirmed      cores 4 ram 2048 (reserved cores 0)
}

// A resize refused for quota, answered with the figures Nova's
// TooManyInstances carries.
func ExampleOverQuotaError() {
	ctx := context.Background()
	ledger, _ := quota.NewLedger(quota.WithIDs(quota.SequentialIDs("res")))
	_ = ledger.SetLimits(ctx, "demo", quota.Limits{quota.Cores: 4})
	boot, _ := ledger.Reserve(ctx, "demo", "alice", quota.Deltas{quota.Instances: 1, quota.Cores: 2, quota.RAM: 4096})
	_ = ledger.Commit(ctx, boot)

	_, err := ledger.Reserve(ctx, "demo", "alice", quota.UpsizeDelta(quota.Flavor{VCPUs: 8, MemoryMB: 4096}, quota.Flavor{VCPUs: 2, MemoryMB: 4096}))
	var oq *quota.OverQuotaError
	if errors.As(err, &oq) {
		for _, o := range oq.Overs {
			fmt.Printf("%s: requested %d, used %d of %d, headroom %d\n", o.Resource, o.Requested, o.Used(), o.Limit, o.Headroom)
		}
	}
	// Output:
	// cores: requested 6, used 2 of 4, headroom 2
}

// UpsizeDelta, DownsizeDelta and ReverseUpsizeDelta (nova/compute/utils.py
// upsize_quota_delta and its siblings) on that worked example; a cold migration keeps the flavor and reserves nothing.
func ExampleUpsizeDelta() {
	oldFlavor := quota.Flavor{VCPUs: 2, MemoryMB: 4096}
	newFlavor := quota.Flavor{VCPUs: 4, MemoryMB: 2048}
	fmt.Println("resize:", quota.UpsizeDelta(newFlavor, oldFlavor))
	fmt.Println("confirm:", quota.DownsizeDelta(newFlavor, oldFlavor))
	fmt.Println("revert:", quota.ReverseUpsizeDelta(newFlavor, oldFlavor))
	fmt.Println("cold migrate:", len(quota.UpsizeDelta(oldFlavor, oldFlavor)), "deltas")
	// Output:
	// resize: cores=+2
	// confirm: ram=-2048
	// revert: cores=-2
	// cold migrate: 0 deltas
}

// A reservation nobody settled is rolled back by Expire, and Reconcile
// recounts usage from the instances that exist.
func ExampleLedger_Reconcile() {
	ctx := context.Background()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ledger, _ := quota.NewLedger(
		quota.WithClock(func() time.Time { return now }),
		quota.WithIDs(quota.SequentialIDs("res")),
	)
	flavor := quota.Flavor{VCPUs: 2, MemoryMB: 2048}
	for _, user := range []string{"alice", "bob"} {
		id, _ := ledger.Reserve(ctx, "demo", user, quota.InstanceCharge(user, flavor).Amount.Deltas())
		_ = ledger.Commit(ctx, id)
	}
	// A resize whose process died before it settled anything.
	_, _ = ledger.Reserve(ctx, "demo", "alice", quota.Deltas{quota.Cores: 2})
	now = now.Add(quota.DefaultMaxAge)
	expired, _ := ledger.Expire(ctx)
	fmt.Println("expired:", expired)

	// Bob's instance was deleted behind the ledger's back.
	drift, _ := ledger.Reconcile(ctx, "demo", []quota.Charge{quota.InstanceCharge("alice", flavor)})
	for _, d := range drift {
		fmt.Println(d)
	}
	// Output:
	// expired: [res-3/demo]
	// demo instances in_use: recorded 2, counted 1
	// demo cores in_use: recorded 4, counted 2
	// demo ram in_use: recorded 4096, counted 2048
	// demo/bob instances in_use: recorded 1, counted 0
	// demo/bob cores in_use: recorded 2, counted 0
	// demo/bob ram in_use: recorded 2048, counted 0
}
