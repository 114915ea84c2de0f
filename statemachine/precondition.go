package statemachine

import (
	"errors"
	"fmt"
	"strings"
)

// Operation is a user-facing operation whose API preconditions this package
// knows. Its string is the compute API method name (cross_cell_resize is
// compute API resize with the cross-cell policy allowed).
type Operation string

// The operations.
const (
	OpResize          Operation = "resize"
	OpMigrate         Operation = "migrate"
	OpConfirmResize   Operation = "confirm_resize"
	OpRevertResize    Operation = "revert_resize"
	OpRescue          Operation = "rescue"
	OpUnrescue        Operation = "unrescue"
	OpCrossCellResize Operation = "cross_cell_resize"
)

// String returns the operation's name.
func (o Operation) String() string { return string(o) }

// Precondition is what the compute API checks before it starts an operation
// (nova/compute/api.py check_instance_lock and check_instance_state).
type Precondition struct {
	Operation Operation
	// Action is the instance action Nova records for the operation.
	Action Action
	// VMStates are the allowed vm_states.
	VMStates []VMState
	// TaskStates are the allowed task_states; Nova's default is {None}.
	TaskStates []TaskState
	// MustHaveLaunched requires launched_at to be set.
	MustHaveLaunched bool
	// CheckLocked refuses a locked instance unless the caller is an admin.
	CheckLocked bool
	// OtherGates names the checks Nova makes beyond the state, which the
	// caller (an orchestrator) performs, e.g. "source compute service up".
	OtherGates []string
}

// Preconditions returns the API preconditions of every operation, built
// afresh on each call.
func Preconditions() []Precondition {
	none := func() []TaskState { return []TaskState{TaskNone} }
	return []Precondition{
		{Operation: OpResize, Action: ActionResize,
			VMStates: []VMState{VMActive, VMStopped}, TaskStates: none(),
			MustHaveLaunched: true, CheckLocked: true,
			OtherGates: []string{"source compute service up (check_instance_host)",
				"quota check for the upsize delta", "new flavor differs and is enabled",
				"no shares, accelerators or extended port resource requests"}},
		{Operation: OpMigrate, Action: ActionMigrate,
			VMStates: []VMState{VMActive, VMStopped}, TaskStates: none(),
			MustHaveLaunched: true, CheckLocked: true,
			OtherGates: []string{"source compute service up (check_instance_host)",
				"a requested target host is not the current host"}},
		{Operation: OpConfirmResize, Action: ActionConfirmResize,
			VMStates: []VMState{VMResized}, TaskStates: none(),
			MustHaveLaunched: true, CheckLocked: true,
			OtherGates: []string{"a migration in status finished",
				"source compute service up, else ServiceUnavailable (bug 1855927)"}},
		{Operation: OpRevertResize, Action: ActionRevertResize,
			VMStates: []VMState{VMResized}, TaskStates: none(),
			MustHaveLaunched: true, CheckLocked: true,
			OtherGates: []string{"a migration in status finished",
				"quota check for reverting to the old flavor"}},
		{Operation: OpRescue, Action: ActionRescue,
			VMStates: []VMState{VMActive, VMStopped, VMError}, TaskStates: none(),
			MustHaveLaunched: true, CheckLocked: true,
			OtherGates: []string{"no vTPM",
				"volume-backed only with hw_rescue_bus/hw_rescue_device and COMPUTE_RESCUE_BFV"}},
		{Operation: OpUnrescue, Action: ActionUnrescue,
			VMStates: []VMState{VMRescued}, TaskStates: none(),
			MustHaveLaunched: true, CheckLocked: true},
		{Operation: OpCrossCellResize, Action: ActionResize,
			VMStates: []VMState{VMActive, VMStopped}, TaskStates: none(),
			MustHaveLaunched: true, CheckLocked: true,
			OtherGates: []string{"policy compute:servers:resize:cross_cell",
				"minimum compute service version in every cell",
				"source compute service up (check_instance_host)"}},
	}
}

// LookupPrecondition returns the precondition of op, or an
// *UnknownValueError of kind "operation".
func LookupPrecondition(op Operation) (Precondition, error) {
	for _, p := range Preconditions() {
		if p.Operation == op {
			return p, nil
		}
	}
	return Precondition{}, &UnknownValueError{Kind: "operation", Value: string(op)}
}

// Subject is what [Check] looks at: the instance's identity and state, and
// whether the caller has an admin context (which bypasses the lock).
type Subject struct {
	InstanceUUID string
	VMState      VMState
	TaskState    TaskState
	// Launched is true when launched_at is set.
	Launched bool
	Locked   bool
	// Admin is true when the request comes with an admin context.
	Admin bool
}

// ErrInvalidState matches (with errors.Is) every *InvalidStateError and
// *LockedError, as Nova's InstanceIsLocked is an InstanceInvalidState.
var ErrInvalidState = errors.New("statemachine: instance in an invalid state")

// ErrLocked matches (with errors.Is) every *LockedError.
var ErrLocked = errors.New("statemachine: instance is locked")

// InvalidStateError is Nova's InstanceInvalidState: the instance's Attr
// ("vm_state", "task_state" or "launched_at") does not allow Operation.
type InvalidStateError struct {
	Operation    Operation
	InstanceUUID string
	// Attr is the attribute that failed: "vm_state", "task_state" or
	// "launched_at".
	Attr      string
	VMState   VMState
	TaskState TaskState
	// AllowedVMStates and AllowedTaskStates are what the operation accepts.
	AllowedVMStates   []VMState
	AllowedTaskStates []TaskState
}

// Error implements the error interface.
func (e *InvalidStateError) Error() string {
	var actual, allowed string
	switch e.Attr {
	case "vm_state":
		actual = e.VMState.String()
		allowed = joinStrings(e.AllowedVMStates)
	case "task_state":
		actual = e.TaskState.String()
		allowed = joinStrings(e.AllowedTaskStates)
	default:
		actual, allowed = "not set", "set"
	}
	return fmt.Sprintf("statemachine: instance %s in %s %s: cannot %s (allowed %s: %s)",
		e.InstanceUUID, e.Attr, actual, e.Operation, e.Attr, allowed)
}

// Is reports whether target is [ErrInvalidState].
func (e *InvalidStateError) Is(target error) bool { return target == ErrInvalidState }

// LockedError is Nova's InstanceIsLocked.
type LockedError struct {
	Operation    Operation
	InstanceUUID string
}

// Error implements the error interface.
func (e *LockedError) Error() string {
	return fmt.Sprintf("statemachine: instance %s is locked: cannot %s", e.InstanceUUID, e.Operation)
}

// Is reports whether target is [ErrLocked] or [ErrInvalidState].
func (e *LockedError) Is(target error) bool {
	return target == ErrLocked || target == ErrInvalidState
}

// Check returns nil when the precondition p allows s, in Nova's order: the
// lock first (check_instance_lock is the outer decorator), then vm_state,
// task_state and launched_at. A zero Precondition allows nothing it names:
// with no allowed vm_states every vm_state is refused.
func (p Precondition) Check(s Subject) error {
	if p.CheckLocked && s.Locked && !s.Admin {
		return &LockedError{Operation: p.Operation, InstanceUUID: s.InstanceUUID}
	}
	fail := func(attr string) error {
		return &InvalidStateError{Operation: p.Operation, InstanceUUID: s.InstanceUUID,
			Attr: attr, VMState: s.VMState, TaskState: s.TaskState,
			AllowedVMStates:   append([]VMState(nil), p.VMStates...),
			AllowedTaskStates: append([]TaskState(nil), p.TaskStates...)}
	}
	if !contains(p.VMStates, s.VMState) {
		return fail("vm_state")
	}
	if !contains(p.TaskStates, s.TaskState) {
		return fail("task_state")
	}
	if p.MustHaveLaunched && !s.Launched {
		return fail("launched_at")
	}
	return nil
}

// Check looks up the precondition of op and checks s against it. An unknown
// operation gives an *UnknownValueError.
func Check(op Operation, s Subject) error {
	p, err := LookupPrecondition(op)
	if err != nil {
		return err
	}
	return p.Check(s)
}

func contains[T comparable](xs []T, x T) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

func joinStrings[T fmt.Stringer](xs []T) string {
	if len(xs) == 0 {
		return "none"
	}
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = x.String()
	}
	return strings.Join(parts, ", ")
}
