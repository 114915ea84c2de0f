package statemachine

import (
	"errors"
	"fmt"
	"strings"
)

// Guard decides whether a transition applies, from facts the caller passes
// with the event (of type C). A Guard with a nil Allow always allows; Name
// is shown in diagrams and errors.
type Guard[C any] struct {
	Name  string
	Allow func(C) bool
}

// allows reports whether the guard lets c through.
func (g Guard[C]) allows(c C) bool { return g.Allow == nil || g.Allow(c) }

// Transition is one row of a transition table: in state From, Event leads to
// To when Guard allows. Step, Notifications and Note describe the row: the
// name of the step that makes the change (e.g. Nova's "prep_resize"), the
// notification event types sent there, and a free remark.
type Transition[S comparable, E comparable, C any] struct {
	From  S
	Event E
	To    S
	Guard Guard[C]

	Step          string
	Notifications []Notification
	Note          string
}

// clone returns a copy of t whose slices are not shared.
func (t Transition[S, E, C]) clone() Transition[S, E, C] {
	t.Notifications = append([]Notification(nil), t.Notifications...)
	return t
}

// Machine is a table-driven state machine over states S, events E and guard
// facts C. It is immutable after [NewMachine] and safe for concurrent use;
// it holds no current state: callers pass the state they are in.
//
// The zero Machine has no rows: every state is unknown to it, and nothing
// panics.
type Machine[S comparable, E comparable, C any] struct {
	name   string
	rows   []Transition[S, E, C]
	byFrom map[S][]int
	states map[S]bool
	events map[E]bool
}

// ErrAmbiguous matches (with errors.Is) the error [NewMachine] returns for a
// table in which one state and event have two unguarded rows.
var ErrAmbiguous = errors.New("statemachine: ambiguous transition table")

// NewMachine builds a machine named name from rows, in order: when several
// rows share From and Event, the first whose guard allows wins. Two rows with
// the same From and Event and no guard make the table ambiguous, and
// NewMachine returns an error matching [ErrAmbiguous]. The rows are copied.
func NewMachine[S comparable, E comparable, C any](name string, rows []Transition[S, E, C]) (*Machine[S, E, C], error) {
	m := &Machine[S, E, C]{
		name:   name,
		byFrom: map[S][]int{},
		states: map[S]bool{},
		events: map[E]bool{},
	}
	type key struct {
		s S
		e E
	}
	unguarded := map[key]int{}
	for i, r := range rows {
		if r.Guard.Allow == nil {
			k := key{r.From, r.Event}
			if j, dup := unguarded[k]; dup {
				return nil, fmt.Errorf("%w: machine %q rows %d and %d: state %v, event %v, both unguarded",
					ErrAmbiguous, name, j, i, r.From, r.Event)
			}
			unguarded[k] = i
		}
		m.rows = append(m.rows, r.clone())
		m.byFrom[r.From] = append(m.byFrom[r.From], i)
		m.states[r.From] = true
		m.states[r.To] = true
		m.events[r.Event] = true
	}
	return m, nil
}

// Name returns the machine's name.
func (m *Machine[S, E, C]) Name() string {
	if m == nil {
		return ""
	}
	return m.name
}

// Transitions returns a copy of the table, in order.
func (m *Machine[S, E, C]) Transitions() []Transition[S, E, C] {
	if m == nil || len(m.rows) == 0 {
		return nil
	}
	out := make([]Transition[S, E, C], len(m.rows))
	for i, r := range m.rows {
		out[i] = r.clone()
	}
	return out
}

// KnowsState reports whether s appears in the table, as a source or a target.
func (m *Machine[S, E, C]) KnowsState(s S) bool { return m != nil && m.states[s] }

// KnowsEvent reports whether e appears in the table.
func (m *Machine[S, E, C]) KnowsEvent(e E) bool { return m != nil && m.events[e] }

// States returns every state of the table, in order of first appearance.
func (m *Machine[S, E, C]) States() []S {
	if m == nil {
		return nil
	}
	seen := map[S]bool{}
	var out []S
	for _, r := range m.rows {
		for _, s := range []S{r.From, r.To} {
			if !seen[s] {
				seen[s] = true
				out = append(out, s)
			}
		}
	}
	return out
}

// Events returns the events the table allows from state s (guards not
// evaluated), in table order without repeats.
func (m *Machine[S, E, C]) Events(from S) []E {
	if m == nil {
		return nil
	}
	seen := map[E]bool{}
	var out []E
	for _, i := range m.byFrom[from] {
		e := m.rows[i].Event
		if !seen[e] {
			seen[e] = true
			out = append(out, e)
		}
	}
	return out
}

// IsTerminal reports whether s is a known state with no outgoing row.
func (m *Machine[S, E, C]) IsTerminal(s S) bool {
	return m.KnowsState(s) && len(m.byFrom[s]) == 0
}

// Can reports whether event ev may happen in state from with facts c.
func (m *Machine[S, E, C]) Can(from S, ev E, c C) bool {
	_, err := m.Fire(from, ev, c)
	return err == nil
}

// Next returns the state ev leads to from state from with facts c.
func (m *Machine[S, E, C]) Next(from S, ev E, c C) (S, error) {
	t, err := m.Fire(from, ev, c)
	if err != nil {
		var zero S
		return zero, err
	}
	return t.To, nil
}

// Fire returns the row that event ev selects in state from with facts c: the
// first row with that From and Event whose guard allows. It fails with an
// *UnknownStateError when from is not in the table, an *UnknownEventError
// when ev is not, and a *TransitionError when no row applies.
func (m *Machine[S, E, C]) Fire(from S, ev E, c C) (Transition[S, E, C], error) {
	var zero Transition[S, E, C]
	if !m.KnowsState(from) {
		return zero, &UnknownStateError{Machine: m.Name(), State: fmt.Sprint(from)}
	}
	if !m.KnowsEvent(ev) {
		return zero, &UnknownEventError{Machine: m.Name(), Event: fmt.Sprint(ev)}
	}
	var refused []string
	for _, i := range m.byFrom[from] {
		r := m.rows[i]
		if r.Event != ev {
			continue
		}
		if r.Guard.allows(c) {
			return r.clone(), nil
		}
		refused = append(refused, r.Guard.Name)
	}
	allowed := m.Events(from)
	te := &TransitionError{Machine: m.Name(), State: fmt.Sprint(from), Event: fmt.Sprint(ev),
		RefusedBy: refused}
	for _, e := range allowed {
		te.Allowed = append(te.Allowed, fmt.Sprint(e))
	}
	return zero, te
}

// ErrTransition matches (with errors.Is) every *TransitionError,
// *UnknownStateError and *UnknownEventError.
var ErrTransition = errors.New("statemachine: transition not allowed")

// TransitionError says that Event may not happen in State: no row has them
// both, or every such row's guard refused (RefusedBy lists those guards).
// Allowed lists the events the table has from State.
type TransitionError struct {
	Machine   string
	State     string
	Event     string
	Allowed   []string
	RefusedBy []string
}

// Error implements the error interface.
func (e *TransitionError) Error() string {
	allowed := "none"
	if len(e.Allowed) > 0 {
		allowed = strings.Join(e.Allowed, ", ")
	}
	msg := fmt.Sprintf("statemachine: %s: event %s not allowed in state %s (allowed: %s)",
		e.Machine, e.Event, e.State, allowed)
	if len(e.RefusedBy) > 0 {
		msg += "; refused by guard " + strings.Join(e.RefusedBy, ", ")
	}
	return msg
}

// Is reports whether target is [ErrTransition].
func (e *TransitionError) Is(target error) bool { return target == ErrTransition }

// UnknownStateError says that State appears nowhere in Machine's table.
type UnknownStateError struct {
	Machine string
	State   string
}

// Error implements the error interface.
func (e *UnknownStateError) Error() string {
	return fmt.Sprintf("statemachine: %s: unknown state %s", e.Machine, e.State)
}

// Is reports whether target is [ErrTransition].
func (e *UnknownStateError) Is(target error) bool { return target == ErrTransition }

// UnknownEventError says that Event appears nowhere in Machine's table.
type UnknownEventError struct {
	Machine string
	Event   string
}

// Error implements the error interface.
func (e *UnknownEventError) Error() string {
	return fmt.Sprintf("statemachine: %s: unknown event %s", e.Machine, e.Event)
}

// Is reports whether target is [ErrTransition].
func (e *UnknownEventError) Is(target error) bool { return target == ErrTransition }
