package statemachine

import (
	"fmt"
	"strings"
)

// stateID returns a Mermaid identifier for s, e.g. "active_resize_prep_pre_migrating".
func stateID(s FlowState) string {
	var b strings.Builder
	for _, r := range s.String() {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	return b.String()
}

// stateLabel returns the label shown for s.
func stateLabel(s FlowState) string {
	l := s.VM.String() + " / " + s.Task.String() + " / " + s.Migration.String()
	if s.Phase != PhaseNone {
		l += " / " + string(s.Phase)
	}
	return l
}

// transitionLabel returns the label of a row's arrow.
func transitionLabel(t FlowTransition) string {
	l := string(t.Event)
	if t.Guard.Name != "" {
		l += " (if " + t.Guard.Name + ")"
	}
	return l
}

// Mermaid renders the flow as Mermaid stateDiagram-v2 text. States are
// labelled "vm_state / task_state / migration status", followed by
// " / phase" when the migration's phase is set; [*] leads to each
// initial state and from each final state. The output depends only on the
// table, so it is stable from run to run.
func (f Flow) Mermaid() string {
	var b strings.Builder
	b.WriteString("stateDiagram-v2\n")
	fmt.Fprintf(&b, "    %%%% %s\n", f.Title)
	seen := map[FlowState]bool{}
	declare := func(s FlowState) {
		if seen[s] {
			return
		}
		seen[s] = true
		fmt.Fprintf(&b, "    state \"%s\" as %s\n", stateLabel(s), stateID(s))
	}
	for _, s := range f.Initial {
		declare(s)
	}
	for _, t := range f.Transitions {
		declare(t.From)
		declare(t.To)
	}
	for _, s := range f.Final {
		declare(s)
	}
	for _, s := range f.Initial {
		fmt.Fprintf(&b, "    [*] --> %s\n", stateID(s))
	}
	for _, t := range f.Transitions {
		fmt.Fprintf(&b, "    %s --> %s : %s\n", stateID(t.From), stateID(t.To), transitionLabel(t))
	}
	for _, s := range f.Final {
		fmt.Fprintf(&b, "    %s --> [*]\n", stateID(s))
	}
	return b.String()
}

// Markdown renders the flow as a Markdown page: title, source, notes, the
// Mermaid diagram, the table with each row's step, notifications and note,
// and the events that change nothing.
func (f Flow) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n\n", f.Title)
	fmt.Fprintf(&b, "Flow `%s`. Generated from `statemachine.Flows()` by `go run ./examples/statediagram`; do not edit by hand.\n\n", f.Name)
	fmt.Fprintf(&b, "Source: %s.\n\n", f.Reference)
	b.WriteString("A state is `vm_state / task_state / migration status`, followed by `/ phase` when the migration's phase is set; `None` is Nova's empty task_state and `none` means no migration record. No row leads from a state back to itself.\n\n")
	if len(f.Notes) > 0 {
		for _, n := range f.Notes {
			fmt.Fprintf(&b, "- %s\n", cell(n))
		}
		b.WriteString("\n")
	}
	b.WriteString("```mermaid\n")
	b.WriteString(f.Mermaid())
	b.WriteString("```\n\n")
	b.WriteString("| # | from | event | guard | to | step | notifications | note |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|\n")
	for i, t := range f.Transitions {
		ns := make([]string, len(t.Notifications))
		for j, n := range t.Notifications {
			ns[j] = "`" + string(n) + "`"
		}
		fmt.Fprintf(&b, "| %d | %s | `%s` | %s | %s | `%s` | %s | %s |\n", i+1,
			cell(stateLabel(t.From)), t.Event, cell(t.Guard.Name), cell(stateLabel(t.To)),
			t.Step, strings.Join(ns, "<br>"), cell(t.Note))
	}
	if len(f.NoOps) > 0 {
		b.WriteString("\nEvents that change nothing (no row: the machine refuses them, and the flow has nothing to do):\n\n")
		b.WriteString("| state | event | step | note |\n|---|---|---|---|\n")
		for _, n := range f.NoOps {
			fmt.Fprintf(&b, "| %s | `%s` | `%s` | %s |\n", cell(stateLabel(n.State)), n.Event, n.Step, cell(n.Note))
		}
	}
	return b.String()
}

// cell escapes s for a Markdown table cell.
func cell(s string) string {
	return strings.NewReplacer("|", "\\|", "\n", " ", "<", "&lt;", ">", "&gt;").Replace(s)
}

// RenderDocs returns the Markdown page of every flow, keyed by file name
// ("<flow>.md"), plus an index page "README.md" linking them.
func RenderDocs() map[string]string {
	out := map[string]string{}
	var idx strings.Builder
	idx.WriteString("# State diagrams\n\n")
	idx.WriteString("Generated from `statemachine.Flows()` by `go run ./examples/statediagram`; do not edit by hand. ")
	idx.WriteString("A test in the statemachine package fails when these files differ from the tables.\n\n")
	idx.WriteString("| flow | what |\n|---|---|\n")
	for _, f := range Flows() {
		name := string(f.Name) + ".md"
		out[name] = f.Markdown()
		fmt.Fprintf(&idx, "| [%s](%s) | %s |\n", f.Name, name, f.Title)
	}
	out["README.md"] = idx.String()
	return out
}
