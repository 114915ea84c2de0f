package computetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/statemachine"
)

// NewStore returns an empty store whose clock (record stamps, lease
// expiry) is now.
type NewStore func(t *testing.T, now func() time.Time) compute.Store

// epoch is the time a suite's [Clock] starts at.
var epoch = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// TestStore runs the conformance suite of [compute.Store] against the
// stores newStore returns, one fresh store per subtest: records never
// aliased, compare-and-set saves, atomic transitions that write nothing on
// any error, exactly one winner among concurrent transitions from the same
// state, lease expiry by the store's clock, and fencing; and, when the
// store implements [compute.InstanceDestroyer], its hard delete.
func TestStore(t *testing.T, newStore NewStore) {
	t.Helper()
	suites := []struct {
		name string
		run  func(t *testing.T, newStore NewStore)
	}{
		{"Instances", testInstances},
		{"Migrations", testMigrations},
		{"Transition", testTransition},
		{"TransitionErrorsWriteNothing", testTransitionErrors},
		{"TransitionRace", testTransitionRace},
		{"Leases", testLeases},
		{"LeaseBadInput", testLeaseBadInput},
		{"LeaseRace", testLeaseRace},
		{"Fencing", testFencing},
		{"CancelledContext", testCancelledContext},
		{"DestroyInstance", testDestroyInstance},
		{"DestroyInstanceBadInput", testDestroyInstanceBadInput},
		{"DestroyInstanceRace", testDestroyInstanceRace},
	}
	for _, s := range suites {
		t.Run(s.name, func(t *testing.T) { s.run(t, newStore) })
	}
}

// fixture is a store with one instance, optionally a migration, and a
// clock the test moves.
type fixture struct {
	ctx   context.Context
	clock *Clock
	store compute.Store
}

func newFixture(t *testing.T, newStore NewStore) *fixture {
	t.Helper()
	c := NewClock(epoch)
	return &fixture{ctx: context.Background(), clock: c, store: newStore(t, c.Now)}
}

// Instance returns an active instance record named uuid.
func Instance(uuid string) *compute.Instance {
	return &compute.Instance{
		UUID: uuid, Name: "instance-" + uuid, Host: "host-a", Node: "host-a", ProjectID: "p1", UserID: "u1",
		VMState: statemachine.VMActive, PowerState: statemachine.PowerRunning,
		Flavor:         &compute.Flavor{ID: "1", Name: "m1.small", MemoryMB: 2048, VCPUs: 1, RootGB: 20},
		SystemMetadata: map[string]string{"image_base_image_ref": "img"},
	}
}

// Migration returns a pre-migrating resize of instanceUUID named uuid.
func Migration(uuid, instanceUUID string) *compute.Migration {
	return &compute.Migration{
		UUID: uuid, InstanceUUID: instanceUUID, SourceCompute: "host-a", SourceNode: "host-a",
		OldFlavor: &compute.Flavor{ID: "1", MemoryMB: 2048, VCPUs: 1, RootGB: 20},
		NewFlavor: &compute.Flavor{ID: "2", MemoryMB: 4096, VCPUs: 2, RootGB: 40},
		Status:    statemachine.MigrationPreMigrating, Type: statemachine.MigrationTypeResize,
	}
}

func (f *fixture) createInstance(t *testing.T, inst *compute.Instance) {
	t.Helper()
	if err := f.store.CreateInstance(f.ctx, inst); err != nil {
		t.Fatalf("CreateInstance(%s): %v", inst.UUID, err)
	}
}

func (f *fixture) createMigration(t *testing.T, m *compute.Migration) {
	t.Helper()
	if err := f.store.CreateMigration(f.ctx, m); err != nil {
		t.Fatalf("CreateMigration(%s): %v", m.UUID, err)
	}
}

func (f *fixture) acquire(t *testing.T, uuid, owner string, ttl time.Duration) compute.Lease {
	t.Helper()
	l, err := f.store.AcquireLease(f.ctx, compute.LeaseRequest{InstanceUUID: uuid, Owner: owner, TTL: ttl})
	if err != nil {
		t.Fatalf("AcquireLease(%s, %s): %v", uuid, owner, err)
	}
	return l
}

// snapshot reads the instance and (when migUUID is set) the migration.
func (f *fixture) snapshot(t *testing.T, uuid, migUUID string) (*compute.Instance, *compute.Migration) {
	t.Helper()
	inst, err := f.store.GetInstance(f.ctx, uuid)
	if err != nil {
		t.Fatalf("GetInstance(%s): %v", uuid, err)
	}
	if migUUID == "" {
		return inst, nil
	}
	m, err := f.store.GetMigration(f.ctx, migUUID)
	if err != nil {
		t.Fatalf("GetMigration(%s): %v", migUUID, err)
	}
	return inst, m
}

// unchanged fails t when the stored records differ from the snapshot.
func (f *fixture) unchanged(t *testing.T, inst *compute.Instance, mig *compute.Migration) {
	t.Helper()
	migUUID := ""
	if mig != nil {
		migUUID = mig.UUID
	}
	gotInst, gotMig := f.snapshot(t, inst.UUID, migUUID)
	if d := cmp.Diff(inst, gotInst); d != "" {
		t.Errorf("instance changed (-before +after):\n%s", d)
	}
	if d := cmp.Diff(mig, gotMig); d != "" {
		t.Errorf("migration changed (-before +after):\n%s", d)
	}
}

// wantErr fails t unless err is (by errors.As) of target's type.
func wantErr[E error](t *testing.T, err error) E {
	t.Helper()
	var target E
	if !errors.As(err, &target) {
		t.Fatalf("error %v (%T), want a %T", err, err, target)
	}
	return target
}

func testInstances(t *testing.T, newStore NewStore) {
	f := newFixture(t, newStore)
	in := Instance("i1")
	f.createInstance(t, in)
	in.SystemMetadata["x"] = "caller's change"
	got, err := f.store.GetInstance(f.ctx, "i1")
	if err != nil {
		t.Fatal(err)
	}
	if got.SystemMetadata["x"] != "" || got.CreatedAt.IsZero() || !got.CreatedAt.Equal(f.clock.Now()) {
		t.Fatalf("stored instance = %+v: aliased the caller's record or not stamped with the store's clock", got)
	}
	wantErr[*compute.AlreadyExistsError](t, f.store.CreateInstance(f.ctx, Instance("i1")))
	_, err = f.store.GetInstance(f.ctx, "nope")
	wantErr[*compute.NotFoundError](t, err)

	a, _ := f.store.GetInstance(f.ctx, "i1")
	b, _ := f.store.GetInstance(f.ctx, "i1")
	a.TaskState = statemachine.TaskResizePrep
	if err := f.store.SaveInstance(f.ctx, a, statemachine.TaskNone); err != nil {
		t.Fatal(err)
	}
	b.TaskState = statemachine.TaskRescuing
	wantErr[*compute.UnexpectedTaskStateError](t, f.store.SaveInstance(f.ctx, b, statemachine.TaskNone))

	f.createInstance(t, Instance("i2"))
	list, err := f.store.ListInstances(f.ctx, compute.InstanceFilter{WithTask: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].UUID != "i1" || list[0].TaskState != statemachine.TaskResizePrep {
		t.Fatalf("ListInstances(WithTask) = %v, want only i1 in resize_prep", list)
	}
}

func testMigrations(t *testing.T, newStore NewStore) {
	f := newFixture(t, newStore)
	f.createInstance(t, Instance("i1"))
	f.createMigration(t, Migration("m1", "i1"))
	wantErr[*compute.AlreadyExistsError](t, f.store.CreateMigration(f.ctx, Migration("m1", "i1")))
	m, err := f.store.GetMigration(f.ctx, "m1")
	if err != nil {
		t.Fatal(err)
	}
	stale := m.Clone()
	m.Status = statemachine.MigrationMigrating
	if err := f.store.SaveMigration(f.ctx, m, statemachine.MigrationPreMigrating); err != nil {
		t.Fatal(err)
	}
	stale.Status = statemachine.MigrationError
	wantErr[*compute.UnexpectedMigrationStatusError](t,
		f.store.SaveMigration(f.ctx, stale, statemachine.MigrationPreMigrating))
	list, err := f.store.ListMigrations(f.ctx, compute.MigrationFilter{InstanceUUID: "i1", InProgress: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Status != statemachine.MigrationMigrating {
		t.Fatalf("ListMigrations = %v, want m1 migrating", list)
	}
}

// preMigrating is the state of Instance and Migration after the API's
// resize_prep.
var preMigrating = statemachine.FlowState{VM: statemachine.VMActive, Task: statemachine.TaskResizePrep,
	Migration: statemachine.MigrationPreMigrating}

// resizePrep puts the stored instance i1 in resize_prep with migration m1,
// and gives owner "o1" its lease.
func (f *fixture) resizePrep(t *testing.T) compute.Lease {
	t.Helper()
	inst := Instance("i1")
	inst.TaskState = statemachine.TaskResizePrep
	f.createInstance(t, inst)
	f.createMigration(t, Migration("m1", "i1"))
	return f.acquire(t, "i1", "o1", time.Minute)
}

// toMigrating is resize_instance's first step.
func toMigrating(inst *compute.Instance, mig *compute.Migration) error {
	inst.TaskState = statemachine.TaskResizeMigrating
	inst.Progress = 10
	mig.Status = statemachine.MigrationMigrating
	mig.DestCompute = "host-b"
	return nil
}

// claimed is prep_resize's step: same Nova state, the phase changes.
var claimed = statemachine.FlowState{VM: statemachine.VMActive, Task: statemachine.TaskResizePrep,
	Migration: statemachine.MigrationPreMigrating, Phase: statemachine.PhaseDestClaimed}

func testTransition(t *testing.T, newStore NewStore) {
	f := newFixture(t, newStore)
	lease := f.resizePrep(t)
	before, _ := f.snapshot(t, "i1", "m1")
	f.clock.Advance(time.Second)
	inst, mig, err := f.store.Transition(f.ctx, compute.TransitionRequest{InstanceUUID: "i1", MigrationUUID: "m1",
		Expect: preMigrating, Lease: lease, Apply: toMigrating})
	if err != nil {
		t.Fatal(err)
	}
	want := statemachine.FlowState{VM: statemachine.VMActive, Task: statemachine.TaskResizeMigrating,
		Migration: statemachine.MigrationMigrating}
	if got := inst.FlowState(mig); got != want || mig.DestCompute != "host-b" || inst.Progress != 10 {
		t.Fatalf("Transition returned %s (dest %q, progress %d), want %s", got, mig.DestCompute, inst.Progress, want)
	}
	if !inst.UpdatedAt.Equal(f.clock.Now()) || !mig.UpdatedAt.Equal(f.clock.Now()) || !inst.CreatedAt.Equal(before.CreatedAt) {
		t.Fatalf("stamps: instance created %v updated %v, migration updated %v; want created %v, updated %v",
			inst.CreatedAt, inst.UpdatedAt, mig.UpdatedAt, before.CreatedAt, f.clock.Now())
	}
	inst.SystemMetadata["x"] = "caller's change"
	mig.NewFlavor.MemoryMB = 1
	stored, storedMig := f.snapshot(t, "i1", "m1")
	if stored.SystemMetadata["x"] != "" || storedMig.NewFlavor.MemoryMB != 4096 {
		t.Fatal("Transition returned records aliased to the stored ones")
	}
	if d := cmp.Diff(inst.FlowState(mig), stored.FlowState(storedMig)); d != "" {
		t.Fatalf("stored state differs from the returned one: %s", d)
	}
	testTransitionCreatesMigration(t, f)
	testTransitionPhase(t, f)
}

// testTransitionPhase writes a step that changes only the migration's
// phase: the stored state is the new one, and the old one is refused.
func testTransitionPhase(t *testing.T, f *fixture) {
	inst := Instance("i3")
	inst.TaskState = statemachine.TaskResizePrep
	f.createInstance(t, inst)
	f.createMigration(t, Migration("m3", "i3"))
	lease := f.acquire(t, "i3", "o1", time.Minute)
	req := compute.TransitionRequest{InstanceUUID: "i3", MigrationUUID: "m3", Expect: preMigrating, Lease: lease,
		Apply: func(i *compute.Instance, m *compute.Migration) error {
			i.SetFlowState(m, claimed)
			m.DestCompute = "host-b"
			return nil
		}}
	if _, _, err := f.store.Transition(f.ctx, req); err != nil {
		t.Fatal(err)
	}
	stored, storedMig := f.snapshot(t, "i3", "m3")
	if got := stored.FlowState(storedMig); got != claimed {
		t.Fatalf("stored %s, want %s", got, claimed)
	}
	_, _, err := f.store.Transition(f.ctx, req)
	wantErr[*compute.UnexpectedStateError](t, err)
}

// testTransitionCreatesMigration runs a step that creates its migration
// with the instance change.
func testTransitionCreatesMigration(t *testing.T, f *fixture) {
	inst := Instance("i2")
	inst.TaskState = statemachine.TaskResizePrep
	f.createInstance(t, inst)
	lease := f.acquire(t, "i2", "o1", time.Minute)
	_, mig, err := f.store.Transition(f.ctx, compute.TransitionRequest{InstanceUUID: "i2",
		NewMigration: Migration("m2", "i2"), Lease: lease,
		Expect: statemachine.FlowState{VM: statemachine.VMActive, Task: statemachine.TaskResizePrep},
		Apply: func(inst *compute.Instance, mig *compute.Migration) error {
			inst.SystemMetadata[compute.SysMetaOldVMState] = string(statemachine.VMActive)
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	stored, storedMig := f.snapshot(t, "i2", "m2")
	if storedMig.Status != statemachine.MigrationPreMigrating || stored.SystemMetadata[compute.SysMetaOldVMState] != "active" ||
		mig.CreatedAt.IsZero() {
		t.Fatalf("step creating m2 stored %s, old_vm_state %q, created %v", stored.FlowState(storedMig),
			stored.SystemMetadata[compute.SysMetaOldVMState], mig.CreatedAt)
	}
}

func testTransitionErrors(t *testing.T, newStore NewStore) {
	errApply := errors.New("driver said no")
	cases := []struct {
		name string
		// edit changes the request of a valid step (i1 with m1, from
		// pre-migrating, o1's lease); f may be prepared further.
		edit  func(f *fixture, req *compute.TransitionRequest)
		check func(t *testing.T, err error)
	}{
		{"unexpected state", func(_ *fixture, req *compute.TransitionRequest) {
			req.Expect.Task = statemachine.TaskResizeMigrated
		}, func(t *testing.T, err error) {
			e := wantErr[*compute.UnexpectedStateError](t, err)
			if e.Actual != preMigrating || !errors.Is(err, compute.ErrConflict) {
				t.Errorf("UnexpectedStateError.Actual = %s, want %s (and ErrConflict)", e.Actual, preMigrating)
			}
		}},
		{"another phase", func(_ *fixture, req *compute.TransitionRequest) {
			req.Expect.Phase = statemachine.PhaseDestClaimed
		}, func(t *testing.T, err error) { wantErr[*compute.UnexpectedStateError](t, err) }},
		{"no lease", func(_ *fixture, req *compute.TransitionRequest) { req.Lease = compute.Lease{} },
			wantLost(-1)},
		{"fence of another holder", func(_ *fixture, req *compute.TransitionRequest) { req.Lease.Fence++ },
			wantLost(-1)},
		{"lease expired", func(f *fixture, _ *compute.TransitionRequest) { f.clock.Advance(time.Minute) },
			wantLost(0)},
		{"lease released", func(f *fixture, req *compute.TransitionRequest) {
			_ = f.store.ReleaseLease(f.ctx, req.Lease)
		}, wantLost(0)},
		{"apply fails", func(_ *fixture, req *compute.TransitionRequest) {
			req.Apply = func(inst *compute.Instance, mig *compute.Migration) error {
				_ = toMigrating(inst, mig)
				return errApply
			}
		}, func(t *testing.T, err error) {
			if err != errApply {
				t.Errorf("error %v, want Apply's error as it is", err)
			}
		}},
		{"apply leaves an invalid record", func(_ *fixture, req *compute.TransitionRequest) {
			req.Apply = func(inst *compute.Instance, mig *compute.Migration) error {
				_ = toMigrating(inst, mig)
				mig.Status = "sideways"
				return nil
			}
		}, wantInvalid},
		{"apply changes the uuid", func(_ *fixture, req *compute.TransitionRequest) {
			req.Apply = func(inst *compute.Instance, _ *compute.Migration) error {
				inst.UUID = "i9"
				return nil
			}
		}, wantInvalid},
		{"nil apply", func(_ *fixture, req *compute.TransitionRequest) { req.Apply = nil }, wantInvalid},
		{"unknown instance", func(_ *fixture, req *compute.TransitionRequest) { req.InstanceUUID = "i9" },
			wantNotFound},
		{"unknown migration", func(_ *fixture, req *compute.TransitionRequest) { req.MigrationUUID = "m9" },
			wantNotFound},
		{"migration of another instance", func(f *fixture, req *compute.TransitionRequest) {
			_ = f.store.CreateInstance(f.ctx, Instance("i2"))
			_ = f.store.CreateMigration(f.ctx, Migration("m2", "i2"))
			req.MigrationUUID = "m2"
		}, wantInvalid},
		{"new migration exists", func(_ *fixture, req *compute.TransitionRequest) {
			req.MigrationUUID, req.NewMigration = "", Migration("m1", "i1")
			req.Expect.Migration = statemachine.MigrationNone
		}, func(t *testing.T, err error) { wantErr[*compute.AlreadyExistsError](t, err) }},
		{"new migration with an expected status", func(_ *fixture, req *compute.TransitionRequest) {
			req.MigrationUUID, req.NewMigration = "", Migration("m3", "i1")
		}, wantInvalid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, newStore)
			lease := f.resizePrep(t)
			req := compute.TransitionRequest{InstanceUUID: "i1", MigrationUUID: "m1", Expect: preMigrating,
				Lease: lease, Apply: toMigrating}
			c.edit(f, &req)
			inst, mig := f.snapshot(t, "i1", "m1")
			gotInst, gotMig, err := f.store.Transition(f.ctx, req)
			if err == nil || gotInst != nil || gotMig != nil {
				t.Fatalf("Transition = %v, %v, %v; want an error and no records", gotInst, gotMig, err)
			}
			c.check(t, err)
			f.unchanged(t, inst, mig)
			if _, err := f.store.GetMigration(f.ctx, "m3"); !errors.Is(err, compute.ErrNotFound) {
				t.Errorf("a failed step created its migration: %v", err)
			}
		})
	}
}

// wantLost checks for a *LeaseLostError whose CurrentFence is current, or
// anything but 0 when current is -1.
func wantLost(current int) func(t *testing.T, err error) {
	return func(t *testing.T, err error) {
		e := wantErr[*compute.LeaseLostError](t, err)
		if !errors.Is(err, compute.ErrLease) || (current >= 0 && e.CurrentFence != uint64(current)) ||
			(current < 0 && e.CurrentFence == 0) {
			t.Errorf("LeaseLostError %+v: CurrentFence want %d (-1: any held fence)", e, current)
		}
	}
}

func wantInvalid(t *testing.T, err error) { wantErr[*compute.InvalidRecordError](t, err) }

func wantNotFound(t *testing.T, err error) { wantErr[*compute.NotFoundError](t, err) }

// cycle is a loop of states the race test moves the instance around: the
// store does not check flow tables, only the expected state.
var cycle = []statemachine.FlowState{
	preMigrating,
	{VM: statemachine.VMActive, Task: statemachine.TaskResizeMigrating, Migration: statemachine.MigrationMigrating},
	{VM: statemachine.VMActive, Task: statemachine.TaskResizeMigrated, Migration: statemachine.MigrationPostMigrating},
	{VM: statemachine.VMActive, Task: statemachine.TaskResizeFinish, Migration: statemachine.MigrationFinished},
}

func testTransitionRace(t *testing.T, newStore NewStore) {
	const rounds, racers = 40, 16
	f := newFixture(t, newStore)
	lease := f.resizePrep(t)
	for r := 0; r < rounds; r++ {
		from, to := cycle[r%len(cycle)], cycle[(r+1)%len(cycle)]
		var wg sync.WaitGroup
		errs := make([]error, racers)
		for g := 0; g < racers; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _, errs[g] = f.store.Transition(f.ctx, compute.TransitionRequest{InstanceUUID: "i1",
					MigrationUUID: "m1", Expect: from, Lease: lease,
					Apply: func(inst *compute.Instance, mig *compute.Migration) error {
						inst.VMState, inst.TaskState, mig.Status = to.VM, to.Task, to.Migration
						inst.SystemMetadata["winner"] = fmt.Sprint(r, "/", g)
						inst.SystemMetadata[fmt.Sprint("round-", r)] = "won"
						return nil
					}})
			}()
		}
		wg.Wait()
		winners := 0
		for _, err := range errs {
			switch {
			case err == nil:
				winners++
			case !errors.Is(err, compute.ErrConflict):
				t.Fatalf("round %d: a loser got %v, want an *UnexpectedStateError", r, err)
			}
		}
		if winners != 1 {
			t.Fatalf("round %d: %d transitions from %s won, want exactly 1", r, winners, from)
		}
	}
	inst, mig := f.snapshot(t, "i1", "m1")
	for r := 0; r < rounds; r++ {
		if inst.SystemMetadata[fmt.Sprint("round-", r)] != "won" {
			t.Fatalf("round %d's write was lost", r)
		}
	}
	if got := inst.FlowState(mig); got != cycle[rounds%len(cycle)] {
		t.Fatalf("final state %s, want %s", got, cycle[rounds%len(cycle)])
	}
}
