package statemachine

import (
	"errors"
	"testing"
)

func TestCheckAllowed(t *testing.T) {
	ok := func(vm VMState) Subject {
		return Subject{InstanceUUID: "u", VMState: vm, Launched: true}
	}
	allowed := map[Operation][]VMState{
		OpResize:          {VMActive, VMStopped},
		OpMigrate:         {VMActive, VMStopped},
		OpCrossCellResize: {VMActive, VMStopped},
		OpConfirmResize:   {VMResized},
		OpRevertResize:    {VMResized},
		OpRescue:          {VMActive, VMStopped, VMError},
		OpUnrescue:        {VMRescued},
	}
	for _, p := range Preconditions() {
		want, found := allowed[p.Operation]
		if !found {
			t.Errorf("precondition for %s not tested", p.Operation)
			continue
		}
		for _, vm := range VMStates() {
			err := Check(p.Operation, ok(vm))
			if contains(want, vm) != (err == nil) {
				t.Errorf("%s in %s: %v", p.Operation, vm, err)
			}
			if err != nil {
				var ise *InvalidStateError
				if !errors.As(err, &ise) || ise.Attr != "vm_state" || ise.Operation != p.Operation ||
					ise.VMState != vm || len(ise.AllowedVMStates) != len(want) {
					t.Errorf("%s in %s: error does not say what was allowed: %v", p.Operation, vm, err)
				}
			}
		}
		// Any task in progress refuses every operation.
		for _, task := range TaskStates() {
			if task == TaskNone {
				continue
			}
			s := ok(want[0])
			s.TaskState = task
			err := Check(p.Operation, s)
			var ise *InvalidStateError
			if !errors.As(err, &ise) || ise.Attr != "task_state" || ise.TaskState != task {
				t.Errorf("%s with task %s: %v", p.Operation, task, err)
			}
		}
		// Never launched.
		s := ok(want[0])
		s.Launched = false
		var ise *InvalidStateError
		if err := Check(p.Operation, s); !errors.As(err, &ise) || ise.Attr != "launched_at" {
			t.Errorf("%s not launched: %v", p.Operation, err)
		}
		// Locked: refused before the state is looked at, unless admin.
		s = ok(VMDeleted)
		s.Locked = true
		err := Check(p.Operation, s)
		var le *LockedError
		if !errors.As(err, &le) || !errors.Is(err, ErrLocked) || !errors.Is(err, ErrInvalidState) {
			t.Errorf("%s locked: %v", p.Operation, err)
		}
		s = ok(want[0])
		s.Locked, s.Admin = true, true
		if err := Check(p.Operation, s); err != nil {
			t.Errorf("%s locked with admin context: %v", p.Operation, err)
		}
	}
}

func TestCheckBadInput(t *testing.T) {
	var uv *UnknownValueError
	if err := Check("teleport", Subject{}); !errors.As(err, &uv) {
		t.Fatalf("unknown operation: %v", err)
	}
	if err := Check(OpResize, Subject{}); !errors.Is(err, ErrInvalidState) {
		t.Fatalf("zero subject allowed: %v", err)
	}
	if err := (Precondition{}).Check(Subject{VMState: VMActive, Launched: true}); !errors.Is(err, ErrInvalidState) {
		t.Fatalf("zero precondition allowed: %v", err)
	}
	err := Check(OpConfirmResize, Subject{InstanceUUID: "9f4c", VMState: VMActive, Launched: true})
	want := "statemachine: instance 9f4c in vm_state active: cannot confirm_resize (allowed vm_state: resized)"
	if err == nil || err.Error() != want {
		t.Fatalf("got %q\nwant %q", err, want)
	}
	// The returned slices are copies.
	var ise *InvalidStateError
	errors.As(err, &ise)
	ise.AllowedVMStates[0] = VMError
	if p, _ := LookupPrecondition(OpConfirmResize); p.VMStates[0] != VMResized {
		t.Fatal("error aliases the precondition table")
	}
}
