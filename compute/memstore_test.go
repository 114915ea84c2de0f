package compute

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/xenflow/xenflow/statemachine"
)

// fakeClock returns a clock that moves one second per reading.
func fakeClock() func() time.Time {
	var mu sync.Mutex
	t := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t = t.Add(time.Second)
		return t
	}
}

func testInstance(uuid string) *Instance {
	return &Instance{
		UUID: uuid, Name: "instance-" + uuid, Hostname: "vm", Host: "host1", Node: "node1",
		VMState: statemachine.VMActive, PowerState: statemachine.PowerRunning,
		Flavor:         &Flavor{ID: "2", Name: "m1.small", MemoryMB: 2048, VCPUs: 1, RootGB: 20, ExtraSpecs: map[string]string{"k": "v"}},
		SystemMetadata: map[string]string{"image_base_image_ref": "img"},
		LaunchedAt:     time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
	}
}

func TestStoreCreateGetNeverAliases(t *testing.T) {
	ctx := context.Background()
	s := NewMemoryStore(WithStoreClock(fakeClock()))
	in := testInstance("u1")
	if err := s.CreateInstance(ctx, in); err != nil {
		t.Fatal(err)
	}
	// Changing the caller's record after the call changes nothing stored.
	in.Flavor.ExtraSpecs["k"] = "changed"
	in.SystemMetadata["x"] = "y"
	in.VMState = statemachine.VMError
	got, err := s.GetInstance(ctx, "u1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Flavor.ExtraSpecs["k"] != "v" || got.SystemMetadata["x"] != "" || got.VMState != statemachine.VMActive {
		t.Fatalf("stored record aliased the caller's: %+v", got)
	}
	// Changing what Get returned changes nothing stored either.
	got.Flavor.ExtraSpecs["k"] = "changed again"
	got.SystemMetadata["image_base_image_ref"] = "other"
	again, _ := s.GetInstance(ctx, "u1")
	if again.Flavor.ExtraSpecs["k"] != "v" || again.SystemMetadata["image_base_image_ref"] != "img" {
		t.Fatalf("Get handed out an alias: %+v", again)
	}
	list, _ := s.ListInstances(ctx, InstanceFilter{})
	list[0].Flavor.Name = "x"
	again, _ = s.GetInstance(ctx, "u1")
	if again.Flavor.Name != "m1.small" {
		t.Fatal("List handed out an alias")
	}
	if again.CreatedAt.IsZero() || !again.CreatedAt.Equal(again.UpdatedAt) {
		t.Fatalf("timestamps not set from the clock: %v %v", again.CreatedAt, again.UpdatedAt)
	}
}

func TestStoreBadInput(t *testing.T) {
	ctx := context.Background()
	s := NewMemoryStore()
	if err := s.CreateInstance(ctx, testInstance("u1")); err != nil {
		t.Fatal(err)
	}
	before, err := s.GetInstance(ctx, "u1")
	if err != nil {
		t.Fatal(err)
	}
	bad := func(mut func(*Instance)) *Instance { i := testInstance("u1"); mut(i); return i }
	cases := []struct {
		name  string
		err   error
		field string
		call  func() error
	}{
		{"create nil", ErrInvalidRecord, "record", func() error { return s.CreateInstance(ctx, nil) }},
		{"save nil", ErrInvalidRecord, "record", func() error { return s.SaveInstance(ctx, nil) }},
		{"create empty uuid", ErrInvalidRecord, "uuid", func() error { return s.CreateInstance(ctx, &Instance{VMState: statemachine.VMActive}) }},
		{"zero instance", ErrInvalidRecord, "uuid", func() error { return s.CreateInstance(ctx, &Instance{}) }},
		{"empty vm_state", ErrInvalidRecord, "vm_state", func() error { return s.SaveInstance(ctx, bad(func(i *Instance) { i.VMState = "" })) }},
		{"unknown vm_state", ErrInvalidRecord, "vm_state", func() error { return s.SaveInstance(ctx, bad(func(i *Instance) { i.VMState = "flying" })) }},
		{"unknown task_state", ErrInvalidRecord, "task_state", func() error { return s.SaveInstance(ctx, bad(func(i *Instance) { i.TaskState = "resizing" })) }},
		{"unknown power_state", ErrInvalidRecord, "power_state", func() error { return s.SaveInstance(ctx, bad(func(i *Instance) { i.PowerState = 5 })) }},
		{"progress", ErrInvalidRecord, "progress", func() error { return s.SaveInstance(ctx, bad(func(i *Instance) { i.Progress = 101 })) }},
		{"negative flavor memory", ErrInvalidRecord, "flavor.memory_mb", func() error { return s.SaveInstance(ctx, bad(func(i *Instance) { i.Flavor.MemoryMB = -1 })) }},
		{"negative new_flavor vcpus", ErrInvalidRecord, "new_flavor.vcpus", func() error {
			return s.SaveInstance(ctx, bad(func(i *Instance) { i.NewFlavor = &Flavor{VCPUs: -4} }))
		}},
		{"migration negative old_flavor root_gb", ErrInvalidRecord, "old_flavor.root_gb", func() error {
			return s.CreateMigration(ctx, &Migration{UUID: "m", InstanceUUID: "u1", Status: statemachine.MigrationPreMigrating,
				Type: statemachine.MigrationTypeResize, OldFlavor: &Flavor{RootGB: -20}})
		}},
		{"unknown expected task_state", ErrInvalidRecord, "expected_task_state", func() error { return s.SaveInstance(ctx, testInstance("u1"), "bogus") }},
		{"duplicate", ErrAlreadyExists, "", func() error { return s.CreateInstance(ctx, testInstance("u1")) }},
		{"save missing", ErrNotFound, "", func() error { return s.SaveInstance(ctx, testInstance("u2")) }},
		{"get missing", ErrNotFound, "", func() error { _, err := s.GetInstance(ctx, "nope"); return err }},
		{"get empty", ErrNotFound, "", func() error { _, err := s.GetInstance(ctx, ""); return err }},
		{"migration nil", ErrInvalidRecord, "record", func() error { return s.CreateMigration(ctx, nil) }},
		{"migration zero", ErrInvalidRecord, "uuid", func() error { return s.CreateMigration(ctx, &Migration{}) }},
		{"migration no instance", ErrInvalidRecord, "instance_uuid", func() error { return s.CreateMigration(ctx, &Migration{UUID: "m"}) }},
		{"migration empty status", ErrInvalidRecord, "status", func() error {
			return s.CreateMigration(ctx, &Migration{UUID: "m", InstanceUUID: "u1", Type: statemachine.MigrationTypeResize})
		}},
		{"migration bad type", ErrInvalidRecord, "migration_type", func() error {
			return s.CreateMigration(ctx, &Migration{UUID: "m", InstanceUUID: "u1", Status: statemachine.MigrationPreMigrating, Type: "teleport"})
		}},
		{"save missing migration", ErrNotFound, "", func() error {
			return s.SaveMigration(ctx, &Migration{UUID: "m", InstanceUUID: "u1", Status: statemachine.MigrationMigrating, Type: statemachine.MigrationTypeResize})
		}},
		{"action nil", ErrInvalidRecord, "record", func() error { return s.CreateAction(ctx, nil) }},
		{"action bad name", ErrInvalidRecord, "action", func() error {
			return s.CreateAction(ctx, &InstanceAction{InstanceUUID: "u1", RequestID: "r", Action: "dance"})
		}},
		{"action event missing action", ErrNotFound, "", func() error {
			return s.SaveActionEvent(ctx, "u1", "none", InstanceActionEvent{Event: "compute_prep_resize"})
		}},
		{"fault nil", ErrInvalidRecord, "record", func() error { return s.AddFault(ctx, nil) }},
		{"fault zero", ErrInvalidRecord, "instance_uuid", func() error { return s.AddFault(ctx, &Fault{}) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.call()
			if !errors.Is(err, c.err) {
				t.Fatalf("got %v, want %v", err, c.err)
			}
			var ire *InvalidRecordError
			if c.field != "" && (!errors.As(err, &ire) || ire.Field != c.field) {
				t.Fatalf("got %v, want field %q", err, c.field)
			}
		})
	}
	// Nothing above changed the stored record, timestamps included.
	got, _ := s.GetInstance(ctx, "u1")
	if d := cmp.Diff(before, got); d != "" {
		t.Fatalf("stored instance changed by refused writes (-want +got):\n%s", d)
	}
}

func TestStoreSaveInstanceCompareAndSet(t *testing.T) {
	ctx := context.Background()
	s := NewMemoryStore(WithStoreClock(fakeClock()))
	inst := testInstance("u1")
	if err := s.CreateInstance(ctx, inst); err != nil {
		t.Fatal(err)
	}
	inst.TaskState = statemachine.TaskResizePrep
	if err := s.SaveInstance(ctx, inst, statemachine.TaskNone); err != nil {
		t.Fatalf("first save: %v", err)
	}
	// A second writer still believing the task is None loses.
	other := testInstance("u1")
	other.TaskState = statemachine.TaskRescuing
	other.VMState = statemachine.VMStopped
	err := s.SaveInstance(ctx, other, statemachine.TaskNone)
	var ute *UnexpectedTaskStateError
	if !errors.As(err, &ute) || !errors.Is(err, ErrConflict) {
		t.Fatalf("got %v, want *UnexpectedTaskStateError", err)
	}
	if ute.Actual != statemachine.TaskResizePrep || len(ute.Expected) != 1 || ute.Expected[0] != statemachine.TaskNone {
		t.Fatalf("error does not say what was expected: %+v", ute)
	}
	got, _ := s.GetInstance(ctx, "u1")
	if got.TaskState != statemachine.TaskResizePrep || got.VMState != statemachine.VMActive {
		t.Fatalf("losing writer changed the record: %s/%s", got.VMState, got.TaskState)
	}
	// Several expected states: any one matches.
	inst.TaskState = statemachine.TaskResizeMigrating
	if err := s.SaveInstance(ctx, inst, statemachine.TaskNone, statemachine.TaskResizePrep); err != nil {
		t.Fatal(err)
	}
	// No expected states: unconditional.
	inst.TaskState = statemachine.TaskNone
	if err := s.SaveInstance(ctx, inst); err != nil {
		t.Fatal(err)
	}
	if !inst.UpdatedAt.After(inst.CreatedAt) {
		t.Fatalf("UpdatedAt not advanced: %v %v", inst.CreatedAt, inst.UpdatedAt)
	}
}

// TestStoreCompareAndSetRace races many writers on one instance: in each
// round exactly one wins the compare-and-set from the round's task_state.
func TestStoreCompareAndSetRace(t *testing.T) {
	ctx := context.Background()
	s := NewMemoryStore()
	if err := s.CreateInstance(ctx, testInstance("u1")); err != nil {
		t.Fatal(err)
	}
	chain := []statemachine.TaskState{statemachine.TaskNone, statemachine.TaskResizePrep,
		statemachine.TaskResizeMigrating, statemachine.TaskResizeMigrated, statemachine.TaskResizeFinish}
	const writers = 16
	const rounds = 50
	for r := 0; r < rounds; r++ {
		from := chain[r%len(chain)]
		to := chain[(r+1)%len(chain)]
		var wins, conflicts atomic.Int32
		var winner atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for w := 0; w < writers; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				inst, err := s.GetInstance(ctx, "u1")
				if err != nil {
					t.Error(err)
					return
				}
				inst.TaskState = to
				inst.Name = fmt.Sprintf("writer-%d", w)
				<-start
				err = s.SaveInstance(ctx, inst, from)
				switch {
				case err == nil:
					wins.Add(1)
					winner.Store(int32(w))
				case errors.Is(err, ErrConflict):
					conflicts.Add(1)
				default:
					t.Error(err)
				}
			}(w)
		}
		close(start)
		wg.Wait()
		if wins.Load() != 1 || conflicts.Load() != writers-1 {
			t.Fatalf("round %d: %d wins, %d conflicts; want exactly 1 winner", r, wins.Load(), conflicts.Load())
		}
		got, _ := s.GetInstance(ctx, "u1")
		if got.TaskState != to || got.Name != fmt.Sprintf("writer-%d", winner.Load()) {
			t.Fatalf("round %d: stored %s by %s, want %s by writer-%d", r, got.TaskState, got.Name, to, winner.Load())
		}
	}
}

func TestStoreMigrations(t *testing.T) {
	ctx := context.Background()
	clock := fakeClock()
	s := NewMemoryStore(WithStoreClock(clock))
	old := &Flavor{ID: "1", Name: "small"}
	mk := func(uuid, dest string) *Migration {
		return &Migration{UUID: uuid, InstanceUUID: "u1", SourceCompute: "h1", DestCompute: dest,
			OldFlavor: old, NewFlavor: &Flavor{ID: "2", Name: "big"},
			Status: statemachine.MigrationPreMigrating, Type: statemachine.MigrationTypeResize, QuotaReservationID: "r1"}
	}
	m1, m2 := mk("m1", "h2"), mk("m2", "h3")
	for _, m := range []*Migration{m1, m2} {
		if err := s.CreateMigration(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateMigration(ctx, mk("m1", "h2")); !errors.Is(err, ErrAlreadyExists) {
		t.Fatalf("duplicate: %v", err)
	}
	old.Name = "changed"
	got, _ := s.GetMigration(ctx, "m1")
	if got.OldFlavor.Name != "small" || !got.IsResize() || got.QuotaReservationID != "r1" {
		t.Fatalf("stored migration wrong or aliased: %+v", got)
	}
	// Walk m1 to finished with compare-and-set on the status.
	for _, step := range [][2]statemachine.MigrationStatus{
		{statemachine.MigrationPreMigrating, statemachine.MigrationMigrating},
		{statemachine.MigrationMigrating, statemachine.MigrationPostMigrating},
		{statemachine.MigrationPostMigrating, statemachine.MigrationFinished},
	} {
		m1.Status = step[1]
		if err := s.SaveMigration(ctx, m1, step[0]); err != nil {
			t.Fatal(err)
		}
	}
	finishedAt := m1.UpdatedAt
	m1.Status = statemachine.MigrationConfirming
	err := s.SaveMigration(ctx, m1, statemachine.MigrationPreMigrating)
	var use *UnexpectedMigrationStatusError
	if !errors.As(err, &use) || use.Actual != statemachine.MigrationFinished || !errors.Is(err, ErrConflict) {
		t.Fatalf("got %v, want unexpected status finished", err)
	}
	got, _ = s.GetMigration(ctx, "m1")
	if got.Status != statemachine.MigrationFinished {
		t.Fatalf("refused save changed the status to %s", got.Status)
	}
	// The auto-confirm query.
	q := MigrationFilter{Statuses: []statemachine.MigrationStatus{statemachine.MigrationFinished}, DestCompute: "h2",
		UpdatedAtOrBefore: finishedAt}
	list, _ := s.ListMigrations(ctx, q)
	if len(list) != 1 || list[0].UUID != "m1" {
		t.Fatalf("auto-confirm query: %v", list)
	}
	q.UpdatedAtOrBefore = finishedAt.Add(-time.Nanosecond)
	if list, _ := s.ListMigrations(ctx, q); len(list) != 0 {
		t.Fatalf("window not yet passed but got %d", len(list))
	}
	if list, _ := s.ListMigrations(ctx, MigrationFilter{InProgress: true}); len(list) != 2 {
		t.Fatalf("in progress: %d, want 2 (finished counts)", len(list))
	}
	if list, _ := s.ListMigrations(ctx, MigrationFilter{InstanceUUID: "u1"}); len(list) != 2 || list[0].UUID != "m1" {
		t.Fatalf("by instance: %v", list)
	}
}

func TestStoreActionsAndFaults(t *testing.T) {
	ctx := context.Background()
	s := NewMemoryStore(WithStoreClock(fakeClock()))
	a := &InstanceAction{InstanceUUID: "u1", RequestID: "req-1", Action: statemachine.ActionResize}
	if err := s.CreateAction(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateAction(ctx, a); !errors.Is(err, ErrAlreadyExists) {
		t.Fatalf("duplicate action: %v", err)
	}
	if err := s.SaveActionEvent(ctx, "u1", "req-1", InstanceActionEvent{Event: "compute_prep_resize", Host: "h2"}); err != nil {
		t.Fatal(err)
	}
	fin := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	if err := s.SaveActionEvent(ctx, "u1", "req-1", InstanceActionEvent{Event: "compute_prep_resize", Host: "h2",
		StartTime: fin.Add(-time.Minute), FinishTime: fin, Result: EventResultSuccess}); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveActionEvent(ctx, "u1", "req-1", InstanceActionEvent{Event: "compute_resize_instance",
		FinishTime: fin, Result: EventResultError, Traceback: "boom"}); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishAction(ctx, "u1", "req-1", fin); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetAction(ctx, "u1", "req-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Events) != 2 || got.Events[0].Result != EventResultSuccess || got.Message != EventResultError || !got.FinishTime.Equal(fin) {
		t.Fatalf("action: %+v", got)
	}
	got.Events[0].Result = "tampered"
	again, _ := s.GetAction(ctx, "u1", "req-1")
	if again.Events[0].Result != EventResultSuccess {
		t.Fatal("GetAction handed out an alias of the events")
	}
	if _, err := s.GetAction(ctx, "u1", "req-2"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing action: %v", err)
	}
	for _, msg := range []string{"first", "second"} {
		if err := s.AddFault(ctx, &Fault{InstanceUUID: "u1", Code: 500, Message: msg}); err != nil {
			t.Fatal(err)
		}
	}
	fs, _ := s.ListFaults(ctx, "u1")
	if len(fs) != 2 || fs[0].Message != "second" || fs[0].CreatedAt.IsZero() {
		t.Fatalf("faults newest first: %+v", fs)
	}
}

func TestStoreCancelledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s := NewMemoryStore()
	if err := s.CreateInstance(ctx, testInstance("u1")); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
	if _, err := s.ListInstances(context.Background(), InstanceFilter{}); err != nil {
		t.Fatal(err)
	}
}

func TestListInstancesFilter(t *testing.T) {
	ctx := context.Background()
	s := NewMemoryStore()
	a, b, c := testInstance("a"), testInstance("b"), testInstance("c")
	b.TaskState, b.Host = statemachine.TaskResizeMigrating, "host2"
	c.VMState = statemachine.VMResized
	for _, i := range []*Instance{c, b, a} {
		if err := s.CreateInstance(ctx, i); err != nil {
			t.Fatal(err)
		}
	}
	ids := func(f InstanceFilter) string {
		l, _ := s.ListInstances(ctx, f)
		out := ""
		for _, i := range l {
			out += i.UUID
		}
		return out
	}
	for _, tc := range []struct {
		f    InstanceFilter
		want string
	}{
		{InstanceFilter{}, "abc"},
		{InstanceFilter{WithTask: true}, "b"},
		{InstanceFilter{Host: "host1"}, "ac"},
		{InstanceFilter{VMStates: []statemachine.VMState{statemachine.VMResized}}, "c"},
		{InstanceFilter{TaskStates: []statemachine.TaskState{statemachine.TaskNone}}, "ac"},
	} {
		if got := ids(tc.f); got != tc.want {
			t.Errorf("%+v: got %q want %q", tc.f, got, tc.want)
		}
	}
}

func TestCloneNil(t *testing.T) {
	var i *Instance
	var f *Flavor
	var m *Migration
	var a *InstanceAction
	var fa *Fault
	if i.Clone() != nil || f.Clone() != nil || m.Clone() != nil || a.Clone() != nil || fa.Clone() != nil {
		t.Fatal("Clone of nil is not nil")
	}
	if i.Launched() || m.IsResize() {
		t.Fatal("nil records report state")
	}
	if _, err := i.Status(); !errors.Is(err, ErrInvalidRecord) {
		t.Fatalf("nil Status: %v", err)
	}
	if err := statemachine.Check(statemachine.OpResize, i.Subject(false)); !errors.Is(err, statemachine.ErrInvalidState) {
		t.Fatalf("nil instance allowed to resize: %v", err)
	}
	if got := i.FlowState(nil); got != (statemachine.FlowState{}) {
		t.Fatalf("nil FlowState: %v", got)
	}
}

func TestInstanceHelpers(t *testing.T) {
	i := testInstance("u1")
	i.SystemMetadata[SysMetaOldVMState] = string(statemachine.VMStopped)
	i.PowerState = statemachine.PowerShutdown
	m := &Migration{Status: statemachine.MigrationFinished}
	i.VMState = statemachine.VMResized
	if got := i.FlowState(m); got != (statemachine.FlowState{VM: statemachine.VMResized, Migration: statemachine.MigrationFinished}) {
		t.Fatalf("FlowState: %v", got)
	}
	if f := i.Facts(); f.OldVMState != statemachine.VMStopped || f.PowerState != statemachine.PowerShutdown {
		t.Fatalf("Facts: %+v", f)
	}
	if st, err := i.Status(); err != nil || st != statemachine.StatusVerifyResize {
		t.Fatalf("Status: %v %v", st, err)
	}
	c := i.Clone()
	c.Flavor.ExtraSpecs["k"] = "x"
	c.SystemMetadata["a"] = "b"
	if i.Flavor.ExtraSpecs["k"] != "v" || i.SystemMetadata["a"] != "" {
		t.Fatal("Clone shares maps")
	}
	p := NewPayload(i)
	if p.InstanceUUID != "u1" || p.InstanceType != "m1.small" || p.State != statemachine.VMResized {
		t.Fatalf("payload: %+v", p)
	}
}

// TestStoreMigrationStatusRace races writers moving one migration from
// finished: exactly one of confirm and revert wins.
func TestStoreMigrationStatusRace(t *testing.T) {
	ctx := context.Background()
	for round := 0; round < 50; round++ {
		s := NewMemoryStore()
		if err := s.CreateMigration(ctx, &Migration{UUID: "m", InstanceUUID: "u",
			Status: statemachine.MigrationFinished, Type: statemachine.MigrationTypeResize}); err != nil {
			t.Fatal(err)
		}
		var wins atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				m, _ := s.GetMigration(ctx, "m")
				m.Status = statemachine.MigrationConfirming
				if w%2 == 1 {
					m.Status = statemachine.MigrationReverting
				}
				<-start
				err := s.SaveMigration(ctx, m, statemachine.MigrationFinished)
				if err == nil {
					wins.Add(1)
				} else if !errors.Is(err, ErrConflict) {
					t.Error(err)
				}
			}(w)
		}
		close(start)
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("round %d: %d writers won", round, wins.Load())
		}
	}
}

// TestStoreZeroAndNil: a zero MemoryStore works like an empty one, and every
// method of a nil *MemoryStore returns ErrNilStore instead of panicking.
func TestStoreZeroAndNil(t *testing.T) {
	ctx := context.Background()
	var zero MemoryStore
	if got, err := zero.GetInstance(ctx, "u1"); !errors.Is(err, ErrNotFound) || got != nil {
		t.Fatalf("zero store Get: %v %v", got, err)
	}
	if err := zero.CreateInstance(ctx, testInstance("u1")); err != nil {
		t.Fatalf("zero store Create: %v", err)
	}
	inst, err := zero.GetInstance(ctx, "u1")
	if err != nil || inst.CreatedAt.IsZero() {
		t.Fatalf("zero store Get after Create: %+v %v", inst, err)
	}
	inst.TaskState = statemachine.TaskResizePrep
	if err := zero.SaveInstance(ctx, inst, statemachine.TaskNone); err != nil {
		t.Fatalf("zero store Save: %v", err)
	}
	var zm MemoryStore
	if err := zm.CreateMigration(ctx, &Migration{UUID: "m", InstanceUUID: "u1",
		Status: statemachine.MigrationPreMigrating, Type: statemachine.MigrationTypeResize}); err != nil {
		t.Fatalf("zero store CreateMigration: %v", err)
	}
	var za MemoryStore
	if err := za.CreateAction(ctx, &InstanceAction{InstanceUUID: "u1", RequestID: "r", Action: statemachine.ActionResize}); err != nil {
		t.Fatalf("zero store CreateAction: %v", err)
	}
	var zf MemoryStore
	if err := zf.AddFault(ctx, &Fault{InstanceUUID: "u1"}); err != nil {
		t.Fatalf("zero store AddFault: %v", err)
	}
	lease, err := zero.AcquireLease(ctx, LeaseRequest{InstanceUUID: "u1", Owner: "o", TTL: time.Hour})
	if err != nil || lease.Fence != 1 {
		t.Fatalf("zero store AcquireLease: %+v %v", lease, err)
	}
	if _, _, err := zero.Transition(ctx, TransitionRequest{InstanceUUID: "u1", Lease: lease,
		Expect: statemachine.FlowState{VM: statemachine.VMActive, Task: statemachine.TaskResizePrep},
		Apply:  func(i *Instance, _ *Migration) error { i.TaskState = statemachine.TaskNone; return nil }}); err != nil {
		t.Fatalf("zero store Transition: %v", err)
	}
	var zl MemoryStore
	if err := zl.ReleaseLease(ctx, Lease{InstanceUUID: "u1"}); err != nil {
		t.Fatalf("zero store ReleaseLease: %v", err)
	}

	var s *MemoryStore
	in := testInstance("u1")
	m := &Migration{UUID: "m", InstanceUUID: "u1", Status: statemachine.MigrationPreMigrating, Type: statemachine.MigrationTypeResize}
	calls := map[string]error{}
	_, calls["GetInstance"] = s.GetInstance(ctx, "u1")
	_, calls["ListInstances"] = s.ListInstances(ctx, InstanceFilter{})
	calls["CreateInstance"] = s.CreateInstance(ctx, in)
	calls["SaveInstance"] = s.SaveInstance(ctx, in)
	_, calls["GetMigration"] = s.GetMigration(ctx, "m")
	_, calls["ListMigrations"] = s.ListMigrations(ctx, MigrationFilter{})
	calls["CreateMigration"] = s.CreateMigration(ctx, m)
	calls["SaveMigration"] = s.SaveMigration(ctx, m)
	calls["CreateAction"] = s.CreateAction(ctx, &InstanceAction{InstanceUUID: "u1", RequestID: "r", Action: statemachine.ActionResize})
	_, calls["GetAction"] = s.GetAction(ctx, "u1", "r")
	_, calls["ListActions"] = s.ListActions(ctx, "u1")
	calls["SaveActionEvent"] = s.SaveActionEvent(ctx, "u1", "r", InstanceActionEvent{Event: "compute_prep_resize"})
	calls["FinishAction"] = s.FinishAction(ctx, "u1", "r", time.Time{})
	calls["AddFault"] = s.AddFault(ctx, &Fault{InstanceUUID: "u1"})
	_, calls["ListFaults"] = s.ListFaults(ctx, "u1")
	_, _, calls["Transition"] = s.Transition(ctx, TransitionRequest{InstanceUUID: "u1",
		Apply: func(*Instance, *Migration) error { return nil }})
	_, calls["AcquireLease"] = s.AcquireLease(ctx, LeaseRequest{InstanceUUID: "u1", Owner: "o", TTL: time.Second})
	_, calls["RenewLease"] = s.RenewLease(ctx, Lease{InstanceUUID: "u1", Owner: "o"}, time.Second)
	calls["ReleaseLease"] = s.ReleaseLease(ctx, Lease{InstanceUUID: "u1", Owner: "o"})
	for name, err := range calls {
		if !errors.Is(err, ErrNilStore) {
			t.Errorf("nil store %s: %v, want ErrNilStore", name, err)
		}
	}
}

func TestFlowStateRoundTrip(t *testing.T) {
	states := []statemachine.FlowState{
		{VM: statemachine.VMActive},
		{VM: statemachine.VMActive, Task: statemachine.TaskResizePrep, Migration: statemachine.MigrationPreMigrating,
			Phase: statemachine.PhaseRescheduling},
		{VM: statemachine.VMResized, Migration: statemachine.MigrationFinished, Phase: statemachine.PhaseMappingSwapped},
	}
	for _, s := range states {
		inst, m := testInstance("u1"), &Migration{UUID: "m1", InstanceUUID: "u1", Type: statemachine.MigrationTypeResize}
		inst.SetFlowState(m, s)
		if got := inst.FlowState(m); got != s {
			t.Errorf("SetFlowState(%s) then FlowState = %s", s, got)
		}
		if err := m.Validate(); s.Migration != statemachine.MigrationNone && err != nil {
			t.Errorf("%s: %v", s, err)
		}
	}
	bad := &Migration{UUID: "m1", InstanceUUID: "u1", Status: statemachine.MigrationMigrating,
		Type: statemachine.MigrationTypeResize, Phase: "halfway"}
	var inv *InvalidRecordError
	if err := bad.Validate(); !errors.As(err, &inv) || inv.Field != "phase" {
		t.Errorf("Validate of an unknown phase: %v", err)
	}
}

// TestStoreKeepsDiskInfo: a migration's DiskInfo is stored with it,
// through CreateMigration and a Transition, never aliased, and refused
// with a negative count.
func TestStoreKeepsDiskInfo(t *testing.T) {
	ctx := context.Background()
	s := NewMemoryStore(WithStoreClock(fakeClock()))
	if err := s.CreateInstance(ctx, testInstance("u1")); err != nil {
		t.Fatal(err)
	}
	info := DiskInfo{Transport: "xapi", Disks: []Disk{{Label: "u1", Userdevice: "0", VDI: "v1", VirtualSize: 1 << 30}},
		BytesSent: 3 << 20, BytesSentRunning: 2 << 20, Downtime: 1500 * time.Millisecond}
	m := &Migration{UUID: "m1", InstanceUUID: "u1", Status: statemachine.MigrationPostMigrating,
		Type: statemachine.MigrationTypeResize, DiskInfo: info}
	m.DiskInfo.Disks = append([]Disk(nil), info.Disks...)
	if err := s.CreateMigration(ctx, m); err != nil {
		t.Fatal(err)
	}
	m.DiskInfo.Disks[0].VDI = "changed by the caller"
	got, err := s.GetMigration(ctx, "m1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(info, got.DiskInfo); diff != "" {
		t.Fatalf("stored DiskInfo (-want +got):\n%s", diff)
	}
	l, err := s.AcquireLease(ctx, LeaseRequest{InstanceUUID: "u1", Owner: "o", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	inst, _ := s.GetInstance(ctx, "u1")
	_, out, err := s.Transition(ctx, TransitionRequest{InstanceUUID: "u1", MigrationUUID: "m1", Lease: l,
		Expect: inst.FlowState(got), Apply: func(_ *Instance, mg *Migration) error {
			mg.DiskInfo.Disks = append(mg.DiskInfo.Disks, Disk{Label: "u1_ephemeral_1", Userdevice: "1"})
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	out.DiskInfo.Disks[1].VDI = "changed by the caller"
	got, _ = s.GetMigration(ctx, "m1")
	if len(got.DiskInfo.Disks) != 2 || got.DiskInfo.Disks[1].VDI != "" || got.DiskInfo.Disks[0].VDI != "v1" {
		t.Fatalf("after the step: %+v", got.DiskInfo)
	}
	for _, tc := range []struct {
		field string
		mut   func(*DiskInfo)
	}{
		{"disk_info.bytes_sent", func(d *DiskInfo) { d.BytesSent = -1 }},
		{"disk_info.bytes_sent_running", func(d *DiskInfo) { d.BytesSentRunning = -1 }},
		{"disk_info.downtime", func(d *DiskInfo) { d.Downtime = -time.Second }},
		{"disk_info.disks[0].virtual_size", func(d *DiskInfo) { d.Disks[0].VirtualSize = -1 }},
	} {
		bad := got.Clone()
		tc.mut(&bad.DiskInfo)
		var inv *InvalidRecordError
		if err := s.SaveMigration(ctx, bad); !errors.As(err, &inv) || inv.Field != tc.field {
			t.Errorf("%s: SaveMigration = %v", tc.field, err)
		}
	}
}
