package migrate

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/compute/computetest"
	sm "github.com/xenflow/xenflow/statemachine"
)

// leaseHarness is a harness whose orchestrator has a short lease on the
// real clock, for the renewal while a driver call runs.
func leaseHarness(t *testing.T) (*harness, *Orchestrator) {
	h := newHarness(t, 3)
	if err := h.addInstance(context.Background(), "i1", "host1", "small", sm.VMActive, false); err != nil {
		t.Fatal(err)
	}
	o, err := New(Config{Store: h.store, Driver: h.driver, Quota: h.ledger, Flavors: h.flavors, Hosts: h.hosts,
		Now: h.clock.Now, Owner: "a", LeaseTTL: 60 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return h, o
}

// TestLeaseKeptAliveDuringDriverCall: a disk move that lasts many lease
// TTLs keeps the lease, so its next step is written.
func TestLeaseKeptAliveDuringDriverCall(t *testing.T) {
	h, o := leaseHarness(t)
	h.driver.SetHook(func(c computetest.Call) error {
		if c.Method == computetest.MethodMigrateDiskAndPowerOff && c.Step == "send-base" {
			// The copy lasts two lease TTLs on the store's clock, which
			// runs slower than the renewals' real-time ticker, so a busy
			// machine does not starve them.
			for i := 0; i < 60; i++ {
				time.Sleep(5 * time.Millisecond)
				h.clock.Advance(2 * time.Millisecond)
			}
		}
		return nil
	})
	res, err := o.Resize(context.Background(), ResizeRequest{InstanceUUID: "i1", FlavorID: "medium"})
	if err != nil {
		t.Fatal(err)
	}
	if res.State.VM != sm.VMResized {
		t.Fatalf("ended in %s", res.State)
	}
}

// TestLeaseLostStopsDriverCall: when the lease expires during a driver
// call and another owner takes it, the renewal cancels the call and the
// run stops with the lease error; the new owner resumes the move.
func TestLeaseLostStopsDriverCall(t *testing.T) {
	h, o := leaseHarness(t)
	ctx := context.Background()
	h.driver.SetHook(func(c computetest.Call) error {
		if c.Method == computetest.MethodMigrateDiskAndPowerOff && c.Step == "send-base" {
			h.clock.Advance(time.Hour) // stalled past the lease
			if _, err := h.store.AcquireLease(ctx, compute.LeaseRequest{InstanceUUID: "i1", Owner: "b", TTL: time.Hour}); err != nil {
				t.Error(err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		return nil
	})
	_, err := o.Resize(ctx, ResizeRequest{InstanceUUID: "i1", FlavorID: "medium"})
	var lost *compute.LeaseLostError
	if !errors.As(err, &lost) {
		t.Fatalf("Resize: %v, want a *compute.LeaseLostError", err)
	}
	h.driver.SetHook(nil)
	ocs, err := h.orch("b").Resume(ctx)
	if err != nil || len(ocs) != 1 || ocs[0].To.VM != sm.VMResized {
		t.Fatalf("Resume by the new owner: %+v, %v", ocs, err)
	}
	if err := h.invariants(ctx, "i1"); err != nil {
		t.Fatal(err)
	}
}
