package crosscell

import (
	"context"
	"errors"
	"testing"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/compute/computetest"
	"github.com/xenflow/xenflow/migrate"
	sm "github.com/xenflow/xenflow/statemachine"
)

// TestTaskFailures fails a driver call of each task for good: the task's
// *TaskError names it, every earlier task is rolled back, and the one
// visible copy is in the source cell with its guest and disk.
func TestTaskFailures(t *testing.T) {
	cases := []struct {
		method    computetest.Method
		task      string
		wantState sm.FlowState
	}{
		{computetest.MethodSnapshot, "PrepResizeAtSourceTask", sm.FlowState{VM: sm.VMError, Migration: sm.MigrationError}},
		{computetest.MethodPowerOff, "PrepResizeAtSourceTask", sm.FlowState{VM: sm.VMError, Migration: sm.MigrationError}},
		{computetest.MethodSpawn, "FinishResizeAtDestTask", sm.FlowState{VM: sm.VMError, Migration: sm.MigrationError}},
	}
	for _, tc := range cases {
		t.Run(string(tc.method), func(t *testing.T) {
			ctx := context.Background()
			f := newFixture(t)
			f.boot(ctx, vm1, "c1", "c1-h1", "small", sm.VMActive)
			f.driver.InjectFault(computetest.Fault{Method: tc.method})
			res, err := f.conductor("a").Resize(ctx, migrate.ResizeRequest{InstanceUUID: vm1, FlavorID: "medium"})
			var te *TaskError
			if !errors.As(err, &te) || te.Task != tc.task || !errors.Is(err, computetest.ErrInjected) {
				t.Fatalf("got %v, want %s's *TaskError", err, tc.task)
			}
			if res.State != tc.wantState || res.DestCell != "c1" {
				t.Fatalf("ended in %s in %s, want %s in c1", res.State, res.DestCell, tc.wantState)
			}
			f.driver.ClearFaults()
			if err := f.check(ctx, vm1); err != nil {
				t.Fatal(err)
			}
			for _, g := range f.driver.Guests("c1-h1") {
				if g.InstanceUUID == vm1 && g.Power != sm.PowerRunning {
					t.Fatalf("source guest left %s", g.Power)
				}
			}
		})
	}
}

// TestAlternate makes the chosen host's claim fail: PrepResizeAtDestTask
// moves on to the alternate of the same cell.
func TestAlternate(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.boot(ctx, vm1, "c1", "c1-h1", "small", sm.VMActive)
	// the scheduler reads the four hosts; the fifth read is the claim
	f.driver.InjectFault(computetest.Fault{Method: computetest.MethodGetAvailableResource, Nth: 5})
	res, err := f.conductor("a").Resize(ctx, migrate.ResizeRequest{InstanceUUID: vm1, FlavorID: "medium"})
	if err != nil {
		t.Fatal(err)
	}
	if res.DestCell != "c2" || f.driver.CallCount(computetest.MethodGetAvailableResource) != 6 {
		t.Fatalf("ended on %s/%s after %d reads", res.DestCell, res.DestHost,
			f.driver.CallCount(computetest.MethodGetAvailableResource))
	}
	if err := f.check(ctx, vm1); err != nil {
		t.Fatal(err)
	}
}

// TestNoAlternateLeft fails every claim: the move is rolled back before
// the source is touched (vm_state unchanged, migration error) and the
// target cell holds nothing.
func TestNoAlternateLeft(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.boot(ctx, vm1, "c1", "c1-h1", "small", sm.VMActive)
	c := f.conductor("a")
	f.driver.SetHook(func(call computetest.Call) error {
		if call.Method == computetest.MethodGetAvailableResource && f.driver.CallCount(computetest.MethodGetAvailableResource) > 4 {
			return computetest.ErrInjected
		}
		return nil
	})
	res, err := c.Resize(ctx, migrate.ResizeRequest{InstanceUUID: vm1, FlavorID: "medium"})
	var te *TaskError
	if !errors.As(err, &te) || te.Task != "PrepResizeAtDestTask" {
		t.Fatalf("got %v, want PrepResizeAtDestTask's *TaskError", err)
	}
	if res.State != (sm.FlowState{VM: sm.VMActive, Migration: sm.MigrationError}) {
		t.Fatalf("ended in %s", res.State)
	}
	if err := f.check(ctx, vm1); err != nil {
		t.Fatal(err)
	}
}

// TestConcurrentConductors starts a second move of the instance, and a
// confirm, while a first conductor's move is at its snapshot: both are
// refused (by the instance's task_state or the lease), a resume by the
// second finds the first's lease, and the first move finishes.
func TestConcurrentConductors(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.boot(ctx, vm1, "c1", "c1-h1", "small", sm.VMActive)
	first, second := f.conductor("a"), f.conductor("b")
	var errs []error
	f.driver.SetHook(func(c computetest.Call) error {
		if c.Method == computetest.MethodSnapshot && c.Step == "" && errs == nil {
			_, err := second.Resize(ctx, migrate.ResizeRequest{InstanceUUID: vm1, FlavorID: "medium"})
			errs = append(errs, err)
			_, err = second.Confirm(ctx, migrate.ActionRequest{InstanceUUID: vm1})
			errs = append(errs, err)
			_, err = second.ResumeInstance(ctx, vm1)
			errs = append(errs, err)
		}
		return nil
	})
	if _, err := first.Resize(ctx, migrate.ResizeRequest{InstanceUUID: vm1, FlavorID: "medium"}); err != nil {
		t.Fatal(err)
	}
	if len(errs) != 3 || !errors.Is(errs[2], compute.ErrLease) {
		t.Fatalf("the second conductor's calls: %v", errs)
	}
	for _, err := range errs {
		var inv *sm.InvalidStateError
		if !errors.Is(err, compute.ErrLease) && !errors.As(err, &inv) {
			t.Fatalf("second conductor: %v, want the lease's error or *statemachine.InvalidStateError", err)
		}
	}
	if err := f.check(ctx, vm1); err != nil {
		t.Fatal(err)
	}
}
