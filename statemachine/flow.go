package statemachine

// FlowState is the state of a flow: the instance's vm_state and task_state,
// the status of the flow's migration record ([MigrationNone] when there is
// none, as in rescue), and the migration's [MovePhase] where Nova's status
// does not tell two steps apart.
type FlowState struct {
	VM        VMState
	Task      TaskState
	Migration MigrationStatus
	Phase     MovePhase
}

// String returns "vm_state/task_state/migration", e.g.
// "active/resize_prep/pre-migrating" or "rescued/None/none", followed by
// "+phase" when the phase is set ("active/resize_prep/pre-migrating+dest_claimed").
func (s FlowState) String() string {
	out := s.VM.String() + "/" + s.Task.String() + "/" + s.Migration.String()
	if s.Phase != PhaseNone {
		out += "+" + string(s.Phase)
	}
	return out
}

// Status returns the API status of the state's vm_state and task_state.
func (s FlowState) Status() (APIStatus, error) { return Status(s.VM, s.Task) }

// MovePhase splits a migration status within which Nova runs several steps
// that leave vm_state, task_state and status as they were, so that every
// step of a flow changes the state and a repeated or resumed step can tell
// where it is. It is kept on the migration record; Nova has no such field
// (it reads the same progress from dest_compute, RequestSpec.retry and the
// cell mappings).
type MovePhase string

// The move phases.
const (
	// PhaseNone is a status with nothing to split.
	PhaseNone MovePhase = ""
	// PhaseDestClaimed: the destination's prep (prep_resize, or
	// prep_snapshot_based_resize_at_dest) claimed its resources and filled
	// the migration's dest_compute and dest_node; the source may start.
	PhaseDestClaimed MovePhase = "dest_claimed"
	// PhaseRescheduling: the destination's claim failed with alternates
	// left (_reschedule_resize_or_reraise); the conductor is to cast prep
	// to the next alternate, reusing the migration.
	PhaseRescheduling MovePhase = "rescheduling"
	// PhaseTargetCellReady: a cross-cell move copied the instance and the
	// migration into the target cell (TargetDBSetupTask).
	PhaseTargetCellReady MovePhase = "target_cell_ready"
	// PhaseMappingSwapped: a cross-cell move made the target cell's
	// instance the visible one and pointed the instance mapping at it
	// (FinishResizeAtDestTask._update_instance_mapping).
	PhaseMappingSwapped MovePhase = "mapping_swapped"
)

// MovePhases returns every phase but [PhaseNone].
func MovePhases() []MovePhase {
	return []MovePhase{PhaseDestClaimed, PhaseRescheduling, PhaseTargetCellReady, PhaseMappingSwapped}
}

// String returns the phase's name, and "none" for [PhaseNone].
func (p MovePhase) String() string {
	if p == PhaseNone {
		return "none"
	}
	return string(p)
}

// Valid reports whether p is [PhaseNone] or one of [MovePhases].
func (p MovePhase) Valid() bool {
	return p == PhaseNone || contains(MovePhases(), p)
}

// ParseMovePhase returns the phase named s ("" is [PhaseNone]), or an
// *UnknownValueError of kind "move phase".
func ParseMovePhase(s string) (MovePhase, error) {
	if p := MovePhase(s); p.Valid() {
		return p, nil
	}
	return PhaseNone, &UnknownValueError{Kind: "move phase", Value: s}
}

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
	// error outcomes. Some have rows leading on (a later delete), so they
	// are not all terminal in the machine.
	Final []FlowState
	// Transitions is the table, in order. No row leads from a state back
	// to itself.
	Transitions []FlowTransition
	// NoOps are the events the flow receives in a state and leaves it as
	// it is (Nova skips the instance, returns early, or leaves it stuck).
	// They are not rows: the machine refuses them, and a caller that gets
	// one has nothing to do.
	NoOps []NoOp

	machine *FlowMachine
}

// NoOp is an event that changes nothing in a state: the step that receives
// it and why.
type NoOp struct {
	State FlowState
	Event Event
	Step  string
	Note  string
}

// Machine returns the flow's machine, built once with the table. A Flow
// that did not come from [LookupFlow] or [Flows] has none and gets nil,
// which refuses every event; changing a Flow's rows does not change its
// machine (build one with [NewMachine] for a table of your own).
func (f Flow) Machine() *FlowMachine { return f.machine }

// IsInitial reports whether s is one of the flow's initial states.
func (f Flow) IsInitial(s FlowState) bool { return contains(f.Initial, s) }

// IsFinal reports whether s is one of the flow's final states.
func (f Flow) IsFinal(s FlowState) bool { return contains(f.Final, s) }

// NoOp returns the no-op of event ev in state s, if the flow has one.
func (f Flow) NoOp(s FlowState, ev Event) (NoOp, bool) {
	for _, n := range f.NoOps {
		if n.State == s && n.Event == ev {
			return n, true
		}
	}
	return NoOp{}, false
}

// clone returns a copy of f that shares no slice with it (the machine is
// immutable and shared).
func (f Flow) clone() Flow {
	f.Notes = append([]string(nil), f.Notes...)
	f.Initial = append([]FlowState(nil), f.Initial...)
	f.Final = append([]FlowState(nil), f.Final...)
	rows := make([]FlowTransition, len(f.Transitions))
	for i, r := range f.Transitions {
		rows[i] = r.clone()
	}
	f.Transitions = rows
	f.NoOps = append([]NoOp(nil), f.NoOps...)
	return f
}

// FlowNames returns the names of every flow, in the order of [Flows].
func FlowNames() []FlowName {
	return []FlowName{FlowResize, FlowMigrate, FlowResizeDown, FlowConfirm,
		FlowRevert, FlowAutoConfirm, FlowRescue, FlowComputeRestart,
		FlowCrossCellResize}
}

// flowTable holds every flow with its machine, built once when the package
// is initialised and never changed: LookupFlow and Flows hand out copies.
var flowTable = buildFlowTable()

func buildFlowTable() map[FlowName]Flow {
	flows := []Flow{
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
	out := make(map[FlowName]Flow, len(flows))
	for _, f := range flows {
		f.Transitions = append(f.Transitions, xenflowRows(f.Name)...)
		m, err := NewMachine(string(f.Name), f.Transitions)
		if err != nil {
			// The tables are fixed; TestFlowTablesWellFormed keeps them
			// unambiguous.
			panic(err)
		}
		f.machine = m
		out[f.Name] = f
	}
	return out
}

// Flows returns a copy of every flow table, in the order of [FlowNames].
func Flows() []Flow {
	out := make([]Flow, 0, len(flowTable))
	for _, n := range FlowNames() {
		out = append(out, flowTable[n].clone())
	}
	return out
}

// LookupFlow returns a copy of the flow named name, with its machine. An
// unknown name gives a Flow with that name and nothing else (its Machine
// is nil); [ParseFlowName] checks a name first.
func LookupFlow(name FlowName) Flow {
	f, ok := flowTable[name]
	if !ok {
		return Flow{Name: name}
	}
	return f.clone()
}

// ParseFlowName returns the flow named s, or an *UnknownValueError of kind
// "flow".
func ParseFlowName(s string) (FlowName, error) {
	if _, ok := flowTable[FlowName(s)]; ok {
		return FlowName(s), nil
	}
	return "", &UnknownValueError{Kind: "flow", Value: s}
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

// phased returns s in phase p.
func phased(s FlowState, p MovePhase) FlowState {
	s.Phase = p
	return s
}

func notes(n ...Notification) []Notification { return n }
