package computetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/statemachine"
)

// destroyer returns the fixture's store as a compute.InstanceDestroyer, or
// skips the test when the store has no hard delete.
func (f *fixture) destroyer(t *testing.T) compute.InstanceDestroyer {
	t.Helper()
	d, ok := f.store.(compute.InstanceDestroyer)
	if !ok {
		t.Skipf("%T does not implement compute.InstanceDestroyer", f.store)
	}
	return d
}

// withRecords stores instance uuid with the migrations migs, an action
// with an event, two faults and a lease held by owner.
func (f *fixture) withRecords(t *testing.T, uuid, owner string, migs ...string) compute.Lease {
	t.Helper()
	f.createInstance(t, Instance(uuid))
	for _, m := range migs {
		f.createMigration(t, Migration(m, uuid))
	}
	steps := []struct {
		name string
		err  error
	}{
		{"CreateAction", f.store.CreateAction(f.ctx, &compute.InstanceAction{RequestID: "req-" + uuid,
			InstanceUUID: uuid, Action: statemachine.ActionResize})},
		{"SaveActionEvent", f.store.SaveActionEvent(f.ctx, uuid, "req-"+uuid, compute.InstanceActionEvent{
			Event: "compute_prep_resize", Host: "host-a", Result: compute.EventResultSuccess})},
		{"AddFault", f.store.AddFault(f.ctx, &compute.Fault{InstanceUUID: uuid, Code: 500, Message: "first"})},
		{"AddFault", f.store.AddFault(f.ctx, &compute.Fault{InstanceUUID: uuid, Code: 500, Message: "second"})},
	}
	for _, s := range steps {
		if s.err != nil {
			t.Fatalf("%s(%s): %v", s.name, uuid, s.err)
		}
	}
	return f.acquire(t, uuid, owner, time.Minute)
}

// recordCounts counts what the store holds of instance uuid: the
// instance, its migrations, actions and faults.
func (f *fixture) recordCounts(t *testing.T, uuid string, migs ...string) [4]int {
	t.Helper()
	var n [4]int
	if _, err := f.store.GetInstance(f.ctx, uuid); err == nil {
		n[0] = 1
	} else if !errors.Is(err, compute.ErrNotFound) {
		t.Fatalf("GetInstance(%s): %v", uuid, err)
	}
	listed, err := f.store.ListMigrations(f.ctx, compute.MigrationFilter{InstanceUUID: uuid})
	if err != nil {
		t.Fatal(err)
	}
	n[1] = len(listed)
	for _, m := range migs {
		if _, err := f.store.GetMigration(f.ctx, m); err == nil && len(listed) == 0 {
			t.Fatalf("migration %s is read by GetMigration but not listed", m)
		}
	}
	acts, err := f.store.ListActions(f.ctx, uuid)
	if err != nil {
		t.Fatal(err)
	}
	faults, err := f.store.ListFaults(f.ctx, uuid)
	if err != nil {
		t.Fatal(err)
	}
	n[2], n[3] = len(acts), len(faults)
	return n
}

// testDestroyInstance checks compute.InstanceDestroyer: the instance and
// every record of it are gone, the records of another instance stay, the
// lease is lost, a second destroy and the destroy of an unknown instance
// change nothing, and the instance can be created again without its old
// records (a later move back into the cell).
func testDestroyInstance(t *testing.T, newStore NewStore) {
	f := newFixture(t, newStore)
	d := f.destroyer(t)
	old := f.withRecords(t, "i1", "o1", "m1", "m2")
	f.withRecords(t, "i2", "o2", "m3")
	if got := f.recordCounts(t, "i1", "m1", "m2"); got != [4]int{1, 2, 1, 2} {
		t.Fatalf("before the destroy: instance, migrations, actions, faults = %v", got)
	}
	for _, uuid := range []string{"i1", "i1", "never-created"} {
		if err := d.DestroyInstance(f.ctx, uuid); err != nil {
			t.Fatalf("DestroyInstance(%s): %v", uuid, err)
		}
	}
	if got := f.recordCounts(t, "i1", "m1", "m2"); got != [4]int{} {
		t.Fatalf("after the destroy: instance, migrations, actions, faults = %v, want none", got)
	}
	for _, m := range []string{"m1", "m2"} {
		_, err := f.store.GetMigration(f.ctx, m)
		wantNotFound(t, err)
	}
	_, err := f.store.GetAction(f.ctx, "i1", "req-i1")
	wantNotFound(t, err)
	if got := f.recordCounts(t, "i2", "m3"); got != [4]int{1, 1, 1, 2} {
		t.Fatalf("the other instance: instance, migrations, actions, faults = %v, want all kept", got)
	}
	list, err := f.store.ListInstances(f.ctx, compute.InstanceFilter{})
	if err != nil || len(list) != 1 || list[0].UUID != "i2" {
		t.Fatalf("ListInstances after the destroy = %v, %v; want i2 only", list, err)
	}
	_, _, err = f.store.Transition(f.ctx, compute.TransitionRequest{InstanceUUID: "i1", Expect: list[0].FlowState(nil),
		Lease: old, Apply: func(*compute.Instance, *compute.Migration) error { return nil }})
	wantNotFound(t, err)
	if _, err := f.store.RenewLease(f.ctx, old, time.Minute); !errors.Is(err, compute.ErrLease) && !errors.Is(err, compute.ErrNotFound) {
		t.Fatalf("RenewLease of the destroyed instance's lease: %v, want a lease or not-found error", err)
	}
	testCreateAfterDestroy(t, f, old)
}

// testCreateAfterDestroy creates the destroyed instance i1 again: it has
// no records but its own, its migration UUIDs are free, a new owner takes
// its lease at once and the old lease stays lost.
func testCreateAfterDestroy(t *testing.T, f *fixture, old compute.Lease) {
	again := Instance("i1")
	again.Hidden, again.TaskState = true, statemachine.TaskResizePrep
	f.createInstance(t, again)
	if got := f.recordCounts(t, "i1"); got != [4]int{1, 0, 0, 0} {
		t.Fatalf("created again: instance, migrations, actions, faults = %v, want the instance only", got)
	}
	f.createMigration(t, Migration("m1", "i1"))
	lease := f.acquire(t, "i1", "o3", time.Minute)
	step := func(l compute.Lease) error {
		_, _, err := f.store.Transition(f.ctx, compute.TransitionRequest{InstanceUUID: "i1", MigrationUUID: "m1",
			Expect: preMigrating, Lease: l, Apply: toMigrating})
		return err
	}
	wantErr[*compute.LeaseLostError](t, step(old))
	if err := step(lease); err != nil {
		t.Fatalf("a step of the new holder: %v", err)
	}
	got, err := f.store.GetInstance(f.ctx, "i1")
	if err != nil || !got.Hidden {
		t.Fatalf("the instance created again: %+v, %v", got, err)
	}
}

// testDestroyInstanceBadInput checks that an empty UUID is refused and a
// cancelled context deletes nothing.
func testDestroyInstanceBadInput(t *testing.T, newStore NewStore) {
	f := newFixture(t, newStore)
	d := f.destroyer(t)
	f.withRecords(t, "i1", "o1", "m1")
	wantInvalid(t, d.DestroyInstance(f.ctx, ""))
	ctx, cancel := context.WithCancel(f.ctx)
	cancel()
	if err := d.DestroyInstance(ctx, "i1"); !errors.Is(err, context.Canceled) {
		t.Fatalf("DestroyInstance with a cancelled context: %v", err)
	}
	if got := f.recordCounts(t, "i1", "m1"); got != [4]int{1, 1, 1, 2} {
		t.Fatalf("after refused destroys: instance, migrations, actions, faults = %v, want all kept", got)
	}
}

// testDestroyInstanceRace destroys an instance while steps that create
// migrations of it run: each step either wrote before the destroy (and
// its migration went with the instance) or fails with a *NotFoundError,
// so no migration of the destroyed instance is left.
func testDestroyInstanceRace(t *testing.T, newStore NewStore) {
	f := newFixture(t, newStore)
	d := f.destroyer(t)
	f.createInstance(t, Instance("i1"))
	lease := f.acquire(t, "i1", "o1", time.Hour)
	from, _ := f.snapshot(t, "i1", "")
	const steps = 8
	errs := make([]error, steps+1)
	var wg sync.WaitGroup
	for k := 0; k < steps; k++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, errs[k] = f.store.Transition(f.ctx, compute.TransitionRequest{InstanceUUID: "i1",
				NewMigration: Migration(fmt.Sprintf("m%d", k), "i1"), Expect: from.FlowState(nil), Lease: lease,
				Apply: func(*compute.Instance, *compute.Migration) error { return nil }})
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		errs[steps] = d.DestroyInstance(f.ctx, "i1")
	}()
	wg.Wait()
	for k, err := range errs {
		if err != nil && !errors.Is(err, compute.ErrNotFound) {
			t.Errorf("call %d racing the destroy: %v", k, err)
		}
	}
	if errs[steps] != nil {
		t.Fatalf("DestroyInstance: %v", errs[steps])
	}
	if got := f.recordCounts(t, "i1"); got != [4]int{} {
		t.Fatalf("after the race: instance, migrations, actions, faults = %v, want none", got)
	}
	for k := 0; k < steps; k++ {
		if _, err := f.store.GetMigration(f.ctx, fmt.Sprintf("m%d", k)); !errors.Is(err, compute.ErrNotFound) {
			t.Fatalf("migration m%d outlived its instance: %v", k, err)
		}
	}
}
