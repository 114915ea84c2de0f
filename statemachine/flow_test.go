package statemachine

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// factsFor returns facts that let the row's guard through, chosen from the
// combinations the guards of this package read.
func factsFor(t *testing.T, r FlowTransition) Facts {
	t.Helper()
	for _, old := range []VMState{"", VMActive, VMStopped} {
		for _, p := range []PowerState{PowerRunning, PowerShutdown} {
			f := Facts{OldVMState: old, PowerState: p}
			if r.Guard.allows(f) {
				return f
			}
		}
	}
	t.Fatalf("no facts satisfy guard %q", r.Guard.Name)
	return Facts{}
}

func TestFlowTablesWellFormed(t *testing.T) {
	names := map[FlowName]bool{}
	for _, f := range Flows() {
		names[f.Name] = true
		if f.Title == "" || f.Reference == "" || len(f.Initial) == 0 || len(f.Final) == 0 || len(f.Transitions) == 0 {
			t.Errorf("flow %s incomplete", f.Name)
		}
		m := f.Machine()
		if m == nil {
			t.Fatalf("flow %s has no machine", f.Name)
		}
		for i, r := range f.Transitions {
			if r.From == r.To {
				t.Errorf("flow %s row %d (%s) loops back to %v: a step must change the state", f.Name, i, r.Event, r.From)
			}
			if _, ok := f.NoOp(r.From, r.Event); ok {
				t.Errorf("flow %s row %d: %v --%s--> is also a no-op", f.Name, i, r.From, r.Event)
			}
			for _, s := range []FlowState{r.From, r.To} {
				if !s.VM.Valid() || !s.Task.Valid() || (s.Migration != MigrationNone && !s.Migration.Valid()) || !s.Phase.Valid() {
					t.Errorf("flow %s row %d: state %v uses a value Nova does not define", f.Name, i, s)
				}
				if _, err := s.Status(); err != nil {
					t.Errorf("flow %s row %d: %v", f.Name, i, err)
				}
			}
			if r.Step == "" || r.Note == "" {
				t.Errorf("flow %s row %d (%s): no step or note", f.Name, i, r.Event)
			}
			if !strings.Contains(string(r.Event), ".") {
				t.Errorf("flow %s row %d: event %q does not say where", f.Name, i, r.Event)
			}
			for _, n := range r.Notifications {
				if _, err := ParseNotification(string(n)); err != nil {
					t.Errorf("flow %s row %d: %v", f.Name, i, err)
				}
			}
		}
		for _, s := range append(append([]FlowState{}, f.Initial...), f.Final...) {
			if !m.KnowsState(s) {
				t.Errorf("flow %s: initial/final state %v is in no row", f.Name, s)
			}
		}
		// Every state with no way out is final.
		for _, s := range m.States() {
			if m.IsTerminal(s) && !f.IsFinal(s) {
				t.Errorf("flow %s: %v is a dead end but not final", f.Name, s)
			}
		}
	}
	for _, n := range FlowNames() {
		if !names[n] {
			t.Errorf("flow %s missing from Flows()", n)
		}
		f := LookupFlow(n)
		if f.Name != n || f.Machine() == nil || len(f.Transitions) == 0 {
			t.Errorf("LookupFlow(%s) = %+v", n, f)
		}
		if got, err := ParseFlowName(string(n)); err != nil || got != n {
			t.Errorf("ParseFlowName(%s) = %s, %v", n, got, err)
		}
		for _, no := range f.NoOps {
			if no.Step == "" || no.Note == "" || f.Machine().Can(no.State, no.Event, Facts{}) {
				t.Errorf("flow %s: no-op %v --%s-- has a row, or no step or note", n, no.State, no.Event)
			}
		}
	}
}

// TestFlowPathsLegal walks every simple path of every flow from its initial
// states, firing each row with facts its guard allows: each step must land
// where the row says, every row must be taken, and every maximal path must end
// in a final state.
func TestFlowPathsLegal(t *testing.T) {
	for _, f := range Flows() {
		t.Run(string(f.Name), func(t *testing.T) {
			m := f.Machine()
			used := make([]bool, len(f.Transitions))
			reachedFinal := map[FlowState]bool{}
			paths := 0
			var walk func(s FlowState, seen map[FlowState]bool, depth int)
			walk = func(s FlowState, seen map[FlowState]bool, depth int) {
				if depth > 64 {
					t.Fatalf("path too long at %v", s)
				}
				moved := false // only a state without rows ends a path; a closed cycle does not
				for i, r := range f.Transitions {
					if r.From != s {
						continue
					}
					got, err := m.Fire(s, r.Event, factsFor(t, r))
					if err != nil {
						t.Fatalf("%v --%s--> : %v", s, r.Event, err)
					}
					if got.To != r.To {
						t.Fatalf("%v --%s--> %v, row %d says %v", s, r.Event, got.To, i, r.To)
					}
					used[i] = true
					if seen[r.To] {
						continue
					}
					moved = true
					seen[r.To] = true
					walk(r.To, seen, depth+1)
					delete(seen, r.To)
				}
				if !moved && len(m.Events(s)) == 0 {
					paths++
					if !f.IsFinal(s) {
						t.Errorf("a path ends in %v, which is not final", s)
					}
					reachedFinal[s] = true
				}
				if f.IsFinal(s) {
					reachedFinal[s] = true
				}
			}
			for _, s := range f.Initial {
				walk(s, map[FlowState]bool{s: true}, 0)
			}
			for i, u := range used {
				if !u {
					t.Errorf("row %d (%v --%s--> %v) is unreachable", i, f.Transitions[i].From, f.Transitions[i].Event, f.Transitions[i].To)
				}
			}
			for _, s := range f.Final {
				if !reachedFinal[s] {
					t.Errorf("final state %v is never reached", s)
				}
			}
			dead := false
			for _, s := range m.States() {
				dead = dead || m.IsTerminal(s)
			}
			if dead && paths == 0 {
				t.Error("no path reaches a dead end")
			}
		})
	}
}

// allEvents returns every event of every flow.
func allEvents() []Event {
	seen := map[Event]bool{}
	var out []Event
	for _, f := range Flows() {
		for _, r := range f.Transitions {
			if !seen[r.Event] {
				seen[r.Event] = true
				out = append(out, r.Event)
			}
		}
	}
	return out
}

// TestFlowIllegalRefused fires, in every flow, every event of any flow from
// every state of the flow where the table has no row for it: the machine must
// refuse with a TransitionError that lists the events the state allows, or an
// UnknownEventError when the flow has no such event at all. States outside a
// flow are refused with UnknownStateError.
func TestFlowIllegalRefused(t *testing.T) {
	events := allEvents()
	refused := 0
	for _, f := range Flows() {
		m := f.Machine()
		type key struct {
			s FlowState
			e Event
		}
		legal := map[key]bool{}
		for _, r := range f.Transitions {
			legal[key{r.From, r.Event}] = true
		}
		for _, s := range m.States() {
			for _, e := range events {
				if legal[key{s, e}] {
					continue
				}
				for _, facts := range []Facts{{}, {OldVMState: VMStopped, PowerState: PowerShutdown}} {
					_, err := m.Fire(s, e, facts)
					if err == nil {
						t.Fatalf("%s: %v --%s--> allowed", f.Name, s, e)
					}
					refused++
					var te *TransitionError
					var uee *UnknownEventError
					switch {
					case errors.As(err, &te):
						want := make([]string, 0)
						for _, a := range m.Events(s) {
							want = append(want, string(a))
						}
						if len(want) == 0 {
							want = nil
						}
						if te.State != s.String() || te.Event != string(e) || !reflect.DeepEqual(te.Allowed, want) {
							t.Fatalf("%s: error %#v does not name state %v, event %s, allowed %v", f.Name, te, s, e, want)
						}
					case errors.As(err, &uee):
						if m.KnowsEvent(e) {
							t.Fatalf("%s: known event %s reported unknown", f.Name, e)
						}
					default:
						t.Fatalf("%s: %v --%s--> untyped error %v", f.Name, s, e, err)
					}
				}
			}
		}
		// States no flow row has.
		for _, s := range []FlowState{{}, {VM: VMBuilding}, {VM: "flying"}, {VM: VMActive, Task: "bogus"}} {
			var use *UnknownStateError
			if _, err := m.Fire(s, EvAPIResize, Facts{}); !errors.As(err, &use) {
				t.Fatalf("%s: state %v: %v", f.Name, s, err)
			}
			refused++
		}
	}
	if refused < 1000 {
		t.Fatalf("only %d illegal pairs tried", refused)
	}
	t.Logf("%d illegal (state, event) pairs refused", refused)
}

// TestResizeHappyPath pins the same-cell resize to Nova's sequence of states
// and notifications.
func TestResizeHappyPath(t *testing.T) {
	m := LookupFlow(FlowResize).Machine()
	steps := []struct {
		ev   Event
		want FlowState
		note []Notification
	}{
		{EvAPIResize, st(VMActive, TaskResizePrep, MigrationNone), nil},
		{EvConductorCreateMigration, st(VMActive, TaskResizePrep, MigrationPreMigrating), nil},
		{EvDestPrepResize, phased(st(VMActive, TaskResizePrep, MigrationPreMigrating), PhaseDestClaimed), []Notification{NotifyExists, NotifyResizePrepStart, NotifyResizePrepEnd}},
		{EvSourceResizeInstance, st(VMActive, TaskResizeMigrating, MigrationMigrating), []Notification{NotifyResizeStart}},
		{EvSourceMigrateDiskAndPowerOff, st(VMActive, TaskResizeMigrated, MigrationPostMigrating), []Notification{NotifyResizeEnd}},
		{EvDestFinishResize, st(VMActive, TaskResizeFinish, MigrationPostMigrating), []Notification{NotifyFinishResizeStart}},
		{EvDestMigrationFinished, st(VMActive, TaskResizeFinish, MigrationFinished), nil},
		{EvDestInstanceResized, st(VMResized, TaskNone, MigrationFinished), []Notification{NotifyFinishResizeEnd}},
	}
	s := st(VMActive, TaskNone, MigrationNone)
	wantStatus := []APIStatus{StatusResize, StatusResize, StatusResize, StatusResize, StatusResize, StatusResize, StatusResize, StatusVerifyResize}
	for i, step := range steps {
		tr, err := m.Fire(s, step.ev, Facts{})
		if err != nil {
			t.Fatalf("step %d %s: %v", i, step.ev, err)
		}
		if tr.To != step.want || !reflect.DeepEqual(tr.Notifications, step.note) {
			t.Fatalf("step %d %s: %v %v, want %v %v", i, step.ev, tr.To, tr.Notifications, step.want, step.note)
		}
		if st, _ := tr.To.Status(); st != wantStatus[i] {
			t.Fatalf("step %d: status %s want %s", i, st, wantStatus[i])
		}
		s = tr.To
	}
}

func TestGuardedOutcomes(t *testing.T) {
	cases := []struct {
		flow  FlowName
		from  FlowState
		ev    Event
		facts Facts
		want  FlowState
	}{
		{FlowConfirm, st(VMResized, TaskNone, MigrationConfirming), EvSourceConfirmResize, Facts{PowerState: PowerRunning}, st(VMActive, TaskNone, MigrationConfirmed)},
		{FlowConfirm, st(VMResized, TaskNone, MigrationConfirming), EvSourceConfirmResize, Facts{PowerState: PowerShutdown}, st(VMStopped, TaskNone, MigrationConfirmed)},
		{FlowConfirm, st(VMResized, TaskNone, MigrationConfirming), EvSourceConfirmResize, Facts{}, st(VMActive, TaskNone, MigrationConfirmed)},
		{FlowRevert, st(VMResized, TaskResizeReverting, MigrationReverted), EvSourceFinishRevertResize, Facts{OldVMState: VMActive}, st(VMActive, TaskNone, MigrationReverted)},
		{FlowRevert, st(VMResized, TaskResizeReverting, MigrationReverted), EvSourceFinishRevertResize, Facts{}, st(VMActive, TaskNone, MigrationReverted)},
		{FlowRevert, st(VMResized, TaskResizeReverting, MigrationReverted), EvSourceFinishRevertResize, Facts{OldVMState: VMStopped}, st(VMResized, TaskPoweringOff, MigrationReverted)},
		{FlowRevert, st(VMResized, TaskPoweringOff, MigrationReverted), EvSourceStopInstance, Facts{}, st(VMStopped, TaskNone, MigrationReverted)},
		{FlowCrossCellResize, st(VMResized, TaskResizeReverting, MigrationReverting), EvCrossCellRevert, Facts{OldVMState: VMStopped}, st(VMStopped, TaskNone, MigrationReverted)},
		{FlowResize, st(VMStopped, TaskResizeMigrating, MigrationMigrating), EvSourceResizeInstanceFaultRollback, Facts{}, st(VMStopped, TaskNone, MigrationError)},
		{FlowResize, st(VMActive, TaskResizePrep, MigrationPreMigrating), EvDestPrepResizeReschedule, Facts{}, phased(st(VMActive, TaskResizePrep, MigrationPreMigrating), PhaseRescheduling)},
		{FlowResize, phased(st(VMActive, TaskResizePrep, MigrationPreMigrating), PhaseRescheduling), EvConductorReschedule, Facts{}, st(VMActive, TaskResizePrep, MigrationPreMigrating)},
		{FlowResize, phased(st(VMStopped, TaskResizePrep, MigrationPreMigrating), PhaseRescheduling), EvConductorNoValidHost, Facts{}, st(VMStopped, TaskNone, MigrationError)},
		{FlowRescue, st(VMStopped, TaskRescuing, MigrationNone), EvComputeRescueRollback, Facts{}, st(VMStopped, TaskNone, MigrationNone)},
		{FlowRescue, st(VMRescued, TaskUnrescuing, MigrationNone), EvComputeUnrescueRollback, Facts{}, st(VMRescued, TaskNone, MigrationNone)},
		{FlowResize, st(VMActive, TaskResizePrep, MigrationPreMigrating), EvConductorNoValidHost, Facts{}, st(VMActive, TaskNone, MigrationError)},
		{FlowResize, st(VMActive, TaskResizeFinish, MigrationPostMigrating), EvDestFinishResizeError, Facts{}, st(VMError, TaskNone, MigrationError)},
		{FlowResize, st(VMDeleted, TaskNone, MigrationError), EvPeriodicCleanupIncompleteMigrations, Facts{}, st(VMDeleted, TaskNone, MigrationFailed)},
		{FlowAutoConfirm, st(VMResized, TaskNone, MigrationFinished), EvPeriodicPollUnconfirmedResizes, Facts{}, st(VMResized, TaskNone, MigrationConfirming)},
		{FlowAutoConfirm, st(VMError, TaskNone, MigrationFinished), EvPeriodicPollUnconfirmedResizes, Facts{}, st(VMError, TaskNone, MigrationError)},
		{FlowRescue, st(VMStopped, TaskRescuing, MigrationNone), EvComputeRescue, Facts{}, st(VMRescued, TaskNone, MigrationNone)},
		{FlowRescue, st(VMRescued, TaskNone, MigrationNone), EvPeriodicPollRescuedInstances, Facts{}, st(VMRescued, TaskUnrescuing, MigrationNone)},
		{FlowRescue, st(VMRescued, TaskUnrescuing, MigrationNone), EvComputeUnrescueNotImplemented, Facts{}, st(VMActive, TaskNone, MigrationNone)},
		{FlowRescue, st(VMRescued, TaskUnrescuing, MigrationNone), EvComputeUnrescueError, Facts{}, st(VMError, TaskNone, MigrationNone)},
		{FlowComputeRestart, st(VMError, TaskResizeMigrating, MigrationMigrating), EvStartupInitInstance, Facts{}, st(VMError, TaskNone, MigrationMigrating)},
		{FlowComputeRestart, phased(st(VMActive, TaskResizePrep, MigrationPreMigrating), PhaseDestClaimed), EvStartupInitInstance, Facts{}, phased(st(VMActive, TaskNone, MigrationPreMigrating), PhaseDestClaimed)},
	}
	for _, c := range cases {
		got, err := LookupFlow(c.flow).Machine().Next(c.from, c.ev, c.facts)
		if err != nil || got != c.want {
			t.Errorf("%s: %v --%s %+v--> %v (%v), want %v", c.flow, c.from, c.ev, c.facts, got, err, c.want)
		}
	}
	// The rescue flow refuses an unrescue of an instance that is not rescued.
	if LookupFlow(FlowRescue).Machine().Can(st(VMActive, TaskNone, MigrationNone), EvAPIUnrescue, Facts{}) {
		t.Error("unrescue of an active instance allowed")
	}
}

func TestMermaid(t *testing.T) {
	for _, f := range Flows() {
		d := f.Mermaid()
		if !strings.HasPrefix(d, "stateDiagram-v2\n") {
			t.Fatalf("%s: not a state diagram", f.Name)
		}
		arrows := strings.Count(d, " --> ")
		if want := len(f.Transitions) + len(f.Initial) + len(f.Final); arrows != want {
			t.Errorf("%s: %d arrows, want %d", f.Name, arrows, want)
		}
		if d != f.Mermaid() {
			t.Errorf("%s: rendering not stable", f.Name)
		}
		md := f.Markdown()
		if !strings.Contains(md, "```mermaid\n"+d+"```") {
			t.Errorf("%s: Markdown lacks the diagram", f.Name)
		}
	}
}
