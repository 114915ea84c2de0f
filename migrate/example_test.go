package migrate_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/compute/computetest"
	"github.com/xenflow/xenflow/migrate"
	"github.com/xenflow/xenflow/quota"
	sm "github.com/xenflow/xenflow/statemachine"
)

// deployment is a store, a simulated pool of three hosts with one
// running instance, a quota ledger and an orchestrator.
type deployment struct {
	store  *compute.MemoryStore
	driver *computetest.FakeDriver
	clock  *computetest.Clock
	ledger *quota.Ledger
	o      *migrate.Orchestrator
}

func newDeployment(owner string, opts migrate.Options) deployment {
	ctx := context.Background()
	clock := computetest.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	d := deployment{store: compute.NewMemoryStore(compute.WithStoreClock(clock.Now)),
		driver: computetest.NewFakeDriver(), clock: clock}
	var hosts []string
	for _, h := range []string{"host1", "host2", "host3"} {
		_ = d.driver.AddHost(computetest.HostConfig{Host: h, TotalUsableRAMMB: 65536, VCPUsTotal: 32,
			TotalUsableDiskGB: 2000})
		hosts = append(hosts, h)
	}
	small := &compute.Flavor{ID: "small", Name: "m1.small", VCPUs: 1, MemoryMB: 2048, RootGB: 20}
	large := &compute.Flavor{ID: "large", Name: "m1.large", VCPUs: 4, MemoryMB: 8192, RootGB: 80}
	inst := &compute.Instance{UUID: "9f4c", Name: "web", Host: "host1", Node: "host1", ProjectID: "p", UserID: "u",
		VMState: sm.VMActive, PowerState: sm.PowerRunning, Flavor: small.Clone(), LaunchedAt: clock.Now()}
	_ = d.store.CreateInstance(ctx, inst)
	_ = d.driver.AddGuest("host1", inst, sm.PowerRunning)
	ledger, _ := quota.NewLedger(quota.WithClock(clock.Now))
	d.ledger = ledger
	_, _ = ledger.Reconcile(ctx, "p", []quota.Charge{migrate.Charge(inst)})
	o, err := migrate.New(migrate.Config{Store: d.store, Driver: d.driver, Quota: ledger,
		Flavors: migrate.Flavors{"small": small, "large": large}, Hosts: hosts, Now: clock.Now,
		Rand: rand.NewChaCha8([32]byte{}), Owner: owner, Options: opts})
	if err != nil {
		panic(err)
	}
	d.o = o
	return d
}

// Resize an instance up, with its progress, then confirm.
func ExampleOrchestrator_Resize() {
	ctx := context.Background()
	var last int
	d := newDeployment("orchestrator-1", migrate.Options{Progress: func(p migrate.ProgressEvent) { last = p.Percent }})
	res, err := d.o.Resize(ctx, migrate.ResizeRequest{InstanceUUID: "9f4c", FlavorID: "large"})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res.State, res.SourceHost, "->", res.DestHost, "progress", last)
	res, err = d.o.Confirm(ctx, migrate.ActionRequest{InstanceUUID: "9f4c"})
	fmt.Println(res.State, err)
	// Output:
	// resized/None/finished host1 -> host2 progress 100
	// active/None/confirmed <nil>
}

// Cold-migrate an instance, then revert: it is back on its host.
func ExampleOrchestrator_Migrate() {
	ctx := context.Background()
	d := newDeployment("orchestrator-1", migrate.Options{})
	res, _ := d.o.Migrate(ctx, migrate.MigrateRequest{InstanceUUID: "9f4c", TargetHost: "host3"})
	fmt.Println(res.State, res.DestHost)
	_, _ = d.o.Revert(ctx, migrate.ActionRequest{InstanceUUID: "9f4c"})
	inst, _ := d.store.GetInstance(ctx, "9f4c")
	fmt.Println(inst.VMState, inst.Host)
	// Output:
	// resized/None/finished host3
	// active host1
}

// A failure after the power-off ends on the intact source, not in error.
func ExampleOrchestrator_Resize_rollback() {
	ctx := context.Background()
	d := newDeployment("orchestrator-1", migrate.Options{})
	d.driver.InjectFault(computetest.Fault{Method: computetest.MethodFinishMigration, Nth: 1})
	_, err := d.o.Resize(ctx, migrate.ResizeRequest{InstanceUUID: "9f4c", FlavorID: "large"})
	var op *migrate.OperationError
	fmt.Println(errors.As(err, &op), op.State)
	faults, _ := d.store.ListFaults(ctx, "9f4c")
	fmt.Println(len(faults), "fault recorded")
	// Output:
	// true active/None/error
	// 1 fault recorded
}

// A new orchestrator on the same Store resumes what a stopped one left.
func ExampleOrchestrator_Resume() {
	ctx := context.Background()
	d := newDeployment("orchestrator-1", migrate.Options{})
	stopped, stop := context.WithCancel(ctx)
	d.driver.SetHook(func(c computetest.Call) error {
		if c.Method == computetest.MethodFinishMigration {
			stop() // the process stops as the finish begins
		}
		return nil
	})
	_, err := d.o.Resize(stopped, migrate.ResizeRequest{InstanceUUID: "9f4c", FlavorID: "large"})
	fmt.Println(err != nil)
	d.driver.SetHook(nil)

	o2, _ := migrate.New(migrate.Config{Store: d.store, Driver: d.driver, Quota: d.ledger,
		Flavors: migrate.Flavors{}, Hosts: []string{"host1", "host2", "host3"}, Now: d.clock.Now,
		Owner: "orchestrator-2"})
	outcomes, _ := o2.Resume(ctx)
	for _, oc := range outcomes {
		fmt.Println(oc.From, "->", oc.To)
	}
	// Output:
	// true
	// active/resize_finish/post-migrating -> resized/None/finished
}

// Auto-confirm resizes left in VERIFY_RESIZE longer than the window.
func ExampleOrchestrator_PollAutoConfirm() {
	ctx := context.Background()
	d := newDeployment("orchestrator-1", migrate.Options{ResizeConfirmWindow: time.Hour})
	_, _ = d.o.Resize(ctx, migrate.ResizeRequest{InstanceUUID: "9f4c", FlavorID: "large"})
	done, _ := d.o.PollAutoConfirm(ctx)
	fmt.Println(len(done))
	d.clock.Advance(2 * time.Hour)
	done, _ = d.o.PollAutoConfirm(ctx)
	fmt.Println(len(done), done[0].State)
	// Output:
	// 0
	// 1 active/None/confirmed
}
