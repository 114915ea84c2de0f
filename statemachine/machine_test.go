package statemachine

import (
	"errors"
	"reflect"
	"testing"
)

type light string
type press string

func lightMachine(t *testing.T) *Machine[light, press, int] {
	t.Helper()
	m, err := NewMachine("light", []Transition[light, press, int]{
		{From: "off", Event: "toggle", To: "on", Guard: Guard[int]{Name: "power > 0", Allow: func(p int) bool { return p > 0 }}},
		{From: "off", Event: "toggle", To: "broken", Guard: Guard[int]{Name: "power < 0", Allow: func(p int) bool { return p < 0 }}},
		{From: "on", Event: "toggle", To: "off"},
		{From: "on", Event: "dim", To: "dimmed", Step: "dim", Notifications: []Notification{NotifyPowerOffStart}},
		{From: "dimmed", Event: "toggle", To: "off"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestMachine(t *testing.T) {
	m := lightMachine(t)
	if got, err := m.Next("off", "toggle", 1); err != nil || got != "on" {
		t.Fatalf("Next: %v %v", got, err)
	}
	if got, err := m.Next("off", "toggle", -1); err != nil || got != "broken" {
		t.Fatalf("second guard: %v %v", got, err)
	}
	if !m.Can("on", "dim", 0) || m.Can("off", "dim", 1) {
		t.Fatal("Can wrong")
	}
	tr, err := m.Fire("on", "dim", 0)
	if err != nil || tr.Step != "dim" || tr.To != "dimmed" {
		t.Fatalf("Fire: %+v %v", tr, err)
	}
	tr.Notifications[0] = "tampered"
	if m.Transitions()[3].Notifications[0] != NotifyPowerOffStart {
		t.Fatal("Fire handed out the table's slice")
	}
	if !reflect.DeepEqual(m.Events("on"), []press{"toggle", "dim"}) || m.Events("nowhere") != nil {
		t.Fatalf("Events: %v", m.Events("on"))
	}
	if !m.IsTerminal("broken") || m.IsTerminal("on") || m.IsTerminal("nowhere") {
		t.Fatal("IsTerminal wrong")
	}
	if !reflect.DeepEqual(m.States(), []light{"off", "on", "broken", "dimmed"}) {
		t.Fatalf("States: %v", m.States())
	}

	// Guards refuse: a TransitionError naming them and what is allowed.
	_, err = m.Fire("off", "toggle", 0)
	var te *TransitionError
	if !errors.As(err, &te) || !errors.Is(err, ErrTransition) || te.State != "off" || te.Event != "toggle" ||
		!reflect.DeepEqual(te.Allowed, []string{"toggle"}) || !reflect.DeepEqual(te.RefusedBy, []string{"power > 0", "power < 0"}) {
		t.Fatalf("guards refused: %#v", err)
	}
	// No row for a known state and known event.
	_, err = m.Fire("off", "dim", 1)
	if !errors.As(err, &te) || !reflect.DeepEqual(te.Allowed, []string{"toggle"}) || te.RefusedBy != nil {
		t.Fatalf("no row: %#v", err)
	}
	want := "statemachine: light: event dim not allowed in state off (allowed: toggle)"
	if err.Error() != want {
		t.Fatalf("message %q", err)
	}
	_, err = m.Fire("broken", "toggle", 1)
	if !errors.As(err, &te) || te.Allowed != nil {
		t.Fatalf("terminal: %v", err)
	}
	var use *UnknownStateError
	if _, err := m.Fire("melted", "toggle", 1); !errors.As(err, &use) || use.State != "melted" || !errors.Is(err, ErrTransition) {
		t.Fatalf("unknown state: %v", err)
	}
	var uee *UnknownEventError
	if _, err := m.Next("on", "kick", 1); !errors.As(err, &uee) || uee.Event != "kick" {
		t.Fatalf("unknown event: %v", err)
	}
}

func TestMachineZeroAndAmbiguous(t *testing.T) {
	var zero Machine[light, press, int]
	if zero.Can("", "", 0) || zero.Name() != "" || zero.Events("") != nil || zero.Transitions() != nil {
		t.Fatal("zero machine allows something")
	}
	var use *UnknownStateError
	if _, err := zero.Fire("", "", 0); !errors.As(err, &use) {
		t.Fatalf("zero machine: %v", err)
	}
	var nilm *Machine[light, press, int]
	if nilm.Can("off", "toggle", 1) || nilm.States() != nil || nilm.KnowsState("off") {
		t.Fatal("nil machine allows something")
	}
	if _, err := nilm.Next("off", "toggle", 1); err == nil {
		t.Fatal("nil machine fired")
	}
	empty, err := NewMachine[light, press, int]("empty", nil)
	if err != nil || empty.Can("off", "toggle", 1) {
		t.Fatalf("empty machine: %v", err)
	}
	_, err = NewMachine("dup", []Transition[light, press, int]{
		{From: "off", Event: "toggle", To: "on"},
		{From: "off", Event: "toggle", To: "broken"},
	})
	if !errors.Is(err, ErrAmbiguous) {
		t.Fatalf("ambiguous table accepted: %v", err)
	}
}
