package statemachine_test

import (
	"errors"
	"fmt"

	"github.com/xenflow/xenflow/statemachine"
)

// Check refuses an operation the instance's state does not allow, with
// Nova's InstanceInvalidState as a typed error.
func ExampleCheck() {
	s := statemachine.Subject{InstanceUUID: "9f4c", VMState: statemachine.VMActive,
		TaskState: statemachine.TaskResizePrep, Launched: true}
	err := statemachine.Check(statemachine.OpRescue, s)
	var ise *statemachine.InvalidStateError
	if errors.As(err, &ise) {
		fmt.Println(ise.Attr, ise.TaskState, "allowed:", ise.AllowedTaskStates)
	}
	fmt.Println(err)
	// Output:
	// task_state resize_prep allowed: [None]
	// statemachine: instance 9f4c in task_state resize_prep: cannot rescue (allowed task_state: None)
}

// Status derives the API status as Nova's status_from_state does.
func ExampleStatus() {
	for _, s := range []struct {
		vm   statemachine.VMState
		task statemachine.TaskState
	}{
		{statemachine.VMStopped, statemachine.TaskResizeMigrating},
		{statemachine.VMResized, statemachine.TaskNone},
		{statemachine.VMResized, statemachine.TaskResizeReverting},
		{statemachine.VMRescued, statemachine.TaskNone},
	} {
		st, _ := statemachine.Status(s.vm, s.task)
		fmt.Println(s.vm, s.task, "→", st)
	}
	// Output:
	// stopped resize_migrating → RESIZE
	// resized None → VERIFY_RESIZE
	// resized resize_reverting → REVERT_RESIZE
	// rescued None → RESCUE
}

// A generic machine: rows with guards, "may this happen" and "what comes
// next", and a typed error naming the state, the event and what is allowed.
func ExampleMachine() {
	type facts struct{ quotaOK bool }
	m, err := statemachine.NewMachine("door", []statemachine.Transition[string, string, facts]{
		{From: "closed", Event: "open", To: "open",
			Guard: statemachine.Guard[facts]{Name: "quota ok", Allow: func(f facts) bool { return f.quotaOK }}},
		{From: "open", Event: "close", To: "closed"},
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(m.Can("closed", "open", facts{quotaOK: true}))
	next, _ := m.Next("open", "close", facts{})
	fmt.Println(next)
	_, err = m.Next("closed", "close", facts{})
	fmt.Println(err)
	// Output:
	// true
	// closed
	// statemachine: door: event close not allowed in state closed (allowed: open)
}

// The flow tables drive the same machine: here a revert of an instance that
// was stopped before its resize.
func ExampleFlow_Machine() {
	f := statemachine.LookupFlow(statemachine.FlowRevert)
	m := f.Machine()
	facts := statemachine.Facts{OldVMState: statemachine.VMStopped}
	s := f.Initial[0]
	for _, ev := range []statemachine.Event{statemachine.EvAPIRevertResize, statemachine.EvDestRevertResize,
		statemachine.EvSourceFinishRevertResize, statemachine.EvSourceStopInstance} {
		tr, err := m.Fire(s, ev, facts)
		if err != nil {
			fmt.Println(err)
			return
		}
		status, _ := tr.To.Status()
		fmt.Printf("%-28s %-40s %s\n", tr.Step, tr.To, status)
		s = tr.To
	}
	// Output:
	// compute_api.revert_resize    resized/resize_reverting/reverting       REVERT_RESIZE
	// revert_resize                resized/resize_reverting/reverted        REVERT_RESIZE
	// finish_revert_resize         resized/powering-off/reverted            VERIFY_RESIZE
	// stop_instance                stopped/None/reverted                    SHUTOFF
}
