package statemachine

// FlowState is the state of a flow: the instance's vm_state and task_state
// and the status of the flow's migration record ([MigrationNone] when there
// is none, as in rescue).
type FlowState struct {
	VM        VMState
	Task      TaskState
	Migration MigrationStatus
}

// String returns "vm_state/task_state/migration", e.g.
// "active/resize_prep/pre-migrating" or "rescued/None/none".
func (s FlowState) String() string {
	return s.VM.String() + "/" + s.Task.String() + "/" + s.Migration.String()
}

// Status returns the API status of the state's vm_state and task_state.
func (s FlowState) Status() (APIStatus, error) { return Status(s.VM, s.Task) }

// Event is something that happens in a flow: a step's effect, or a failure.
// Its string is "<where>.<what>", where is one of api, conductor, source,
// dest, compute (rescue runs on the instance's host), periodic or startup.
type Event string

// String returns the event's name.
func (e Event) String() string { return string(e) }

// Facts are what the guards of the flow tables look at, beyond the state.
type Facts struct {
	// OldVMState is the system_metadata key old_vm_state written by
	// prep_resize: active or stopped. Empty means unknown, which Nova
	// treats as active.
	OldVMState VMState
	// PowerState is the instance's power_state at the time of the event.
	PowerState PowerState
}

// FlowTransition is one row of a flow table.
type FlowTransition = Transition[FlowState, Event, Facts]

// FlowMachine is the machine of a flow table.
type FlowMachine = Machine[FlowState, Event, Facts]

// FlowName names a flow.
type FlowName string

// The flows.
const (
	FlowResize          FlowName = "resize"
	FlowMigrate         FlowName = "migrate"
	FlowResizeDown      FlowName = "resize_down"
	FlowConfirm         FlowName = "confirm"
	FlowRevert          FlowName = "revert"
	FlowAutoConfirm     FlowName = "auto_confirm"
	FlowRescue          FlowName = "rescue"
	FlowComputeRestart  FlowName = "compute_restart"
	FlowCrossCellResize FlowName = "cross_cell_resize"
)

// Flow is one flow's transition table with its entry and end states.
type Flow struct {
	Name FlowName
	// Title is a one-line description.
	Title string
	// Reference is where in Nova the flow's behaviour comes from.
	Reference string
	// Notes are remarks shown with the diagram.
	Notes []string
	// Initial are the states the flow starts from.
	Initial []FlowState
	// Final are the states a flow may rest in: its results, including the
	// error outcomes. Some have rows leading on (a repeated step that is a
	// no-op, a later delete), so they are not all terminal in the machine.
	Final []FlowState
	// Transitions is the table, in order.
	Transitions []FlowTransition
}

// Machine builds the flow's machine.
func (f Flow) Machine() (*FlowMachine, error) {
	return NewMachine(string(f.Name), f.Transitions)
}

// IsInitial reports whether s is one of the flow's initial states.
func (f Flow) IsInitial(s FlowState) bool { return contains(f.Initial, s) }

// IsFinal reports whether s is one of the flow's final states.
func (f Flow) IsFinal(s FlowState) bool { return contains(f.Final, s) }

// FlowNames returns the names of every flow, in the order of [Flows].
func FlowNames() []FlowName {
	return []FlowName{FlowResize, FlowMigrate, FlowResizeDown, FlowConfirm,
		FlowRevert, FlowAutoConfirm, FlowRescue, FlowComputeRestart,
		FlowCrossCellResize}
}

// Flows returns every flow table, built afresh on each call.
func Flows() []Flow {
	return []Flow{
		sameCellMoveFlow(FlowResize),
		sameCellMoveFlow(FlowMigrate),
		sameCellMoveFlow(FlowResizeDown),
		confirmFlow(),
		revertFlow(),
		autoConfirmFlow(),
		rescueFlow(),
		computeRestartFlow(),
		crossCellResizeFlow(),
	}
}

// LookupFlow returns the flow named name, or an *UnknownValueError of kind
// "flow".
func LookupFlow(name FlowName) (Flow, error) {
	switch name {
	case FlowResize, FlowMigrate, FlowResizeDown:
		return sameCellMoveFlow(name), nil
	case FlowConfirm:
		return confirmFlow(), nil
	case FlowRevert:
		return revertFlow(), nil
	case FlowAutoConfirm:
		return autoConfirmFlow(), nil
	case FlowRescue:
		return rescueFlow(), nil
	case FlowComputeRestart:
		return computeRestartFlow(), nil
	case FlowCrossCellResize:
		return crossCellResizeFlow(), nil
	}
	return Flow{}, &UnknownValueError{Kind: "flow", Value: string(name)}
}

// Guards of the flow tables.

// GuardOldVMStateStopped allows when the instance was stopped before the
// move (old_vm_state == stopped): the guest is not powered on again.
func GuardOldVMStateStopped() Guard[Facts] {
	return Guard[Facts]{Name: "old_vm_state == stopped",
		Allow: func(f Facts) bool { return f.OldVMState == VMStopped }}
}

// GuardOldVMStateNotStopped allows when old_vm_state is not stopped (active,
// or unknown, which Nova treats as active): the guest is powered on.
func GuardOldVMStateNotStopped() Guard[Facts] {
	return Guard[Facts]{Name: "old_vm_state != stopped",
		Allow: func(f Facts) bool { return f.OldVMState != VMStopped }}
}

// GuardPowerShutdown allows when the power_state is SHUTDOWN: a confirmed
// resize leaves the instance stopped.
func GuardPowerShutdown() Guard[Facts] {
	return Guard[Facts]{Name: "power_state == shutdown",
		Allow: func(f Facts) bool { return f.PowerState == PowerShutdown }}
}

// GuardPowerNotShutdown allows when the power_state is not SHUTDOWN: a
// confirmed resize leaves the instance active.
func GuardPowerNotShutdown() Guard[Facts] {
	return Guard[Facts]{Name: "power_state != shutdown",
		Allow: func(f Facts) bool { return f.PowerState != PowerShutdown }}
}

func st(vm VMState, task TaskState, mig MigrationStatus) FlowState {
	return FlowState{VM: vm, Task: task, Migration: mig}
}

func notes(n ...Notification) []Notification { return n }
