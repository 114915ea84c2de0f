package main

import (
	"fmt"
	"strings"

	"github.com/xenflow/xenflow/xenapi/xenapitest"
)

// traceSkipped are XenAPI calls left out of the trace: sessions, task
// polling and event.from, whose number depends on timing.
var traceSkipped = []string{"session.", "task.", "event."}

// traceDiagram renders the run as a Mermaid sequence diagram: the
// orchestrator, the Store and the hosts (source and destination first),
// the step writes, the driver calls and their steps, and between them
// the XenAPI calls each host's endpoint answered (calls[base:]) with the
// disk streams. Nothing in it depends on time, uuids or refs, so two runs
// of the same flags give the same diagram.
func traceDiagram(events []event, calls []xenapitest.CallRecord, base int, src, dst string) string {
	t := &tracer{ids: map[string]string{}}
	t.participant(src, "source")
	t.participant(dst, "destination")
	prev, checking := base, false
	for _, e := range events {
		if e.Mark >= prev && e.Mark <= len(calls) {
			if !checking {
				t.calls(calls[prev:e.Mark])
			}
			prev = e.Mark
		}
		switch e.Kind {
		case evCheckBegin:
			checking = true
		case evCheckEnd:
			checking = false
		}
		t.event(e)
	}
	if prev <= len(calls) {
		t.calls(calls[prev:])
	}
	t.flush()
	var b strings.Builder
	b.WriteString("sequenceDiagram\n    participant O as orchestrator\n    participant S as Store\n")
	for _, p := range t.participants {
		b.WriteString(p)
	}
	for _, l := range t.lines {
		b.WriteString("    " + l + "\n")
	}
	return b.String()
}

// tracer accumulates the diagram's participants and lines.
type tracer struct {
	ids          map[string]string
	participants []string
	lines        []string
	// pending is a XenAPI call not yet written, count its repeats.
	pending string
	count   int
}

// participant returns the diagram id of a host, declaring it at first use.
func (t *tracer) participant(host, role string) string {
	if id, ok := t.ids[host]; ok {
		return id
	}
	id := fmt.Sprintf("H%d", len(t.participants)+1)
	t.ids[host] = id
	label := host
	if role != "" {
		label += " (" + role + ")"
	}
	t.participants = append(t.participants, fmt.Sprintf("    participant %s as %s\n", id, label))
	return id
}

// master returns the participant that stands for the XenAPI endpoint
// of host, the pool master every XML-RPC call goes to.
func (t *tracer) master(host string) string {
	key := "xapi:" + host
	if id, ok := t.ids[key]; ok {
		return id
	}
	id := fmt.Sprintf("X%d", len(t.participants)+1)
	t.ids[key] = id
	t.participants = append(t.participants, fmt.Sprintf("    participant %s as xapi on %s (pool master)\n", id, host))
	return id
}

// traceMarkdown wraps a diagram in a Markdown page.
func traceMarkdown(diagram string) string {
	return "# The default run of examples/resize\n\n" +
		"`go run ./examples/resize -trace docs/resize-sequence.md` writes this page: a resize up on a\n" +
		"simulated pool of two hosts with local SRs, then a confirm. It shows the orchestrator's\n" +
		"step writes to the Store (vm_state/task_state/migration status), the driver's calls on the\n" +
		"source and destination hosts with the steps they report, and the XenAPI calls and disk\n" +
		"streams in between, in order (sessions, task polling and event.from are left out; repeats\n" +
		"are folded). Nova's own resize (nova/compute/manager.py, _prep_resize, _resize_instance,\n" +
		"_finish_resize, _confirm_resize) never had such a diagram.\n\n" +
		"```mermaid\n" + diagram + "```\n"
}

// add writes a line, after the pending call.
func (t *tracer) add(format string, args ...any) {
	t.flush()
	t.lines = append(t.lines, fmt.Sprintf(format, args...))
}

// flush writes the pending call with its repeat count.
func (t *tracer) flush() {
	if t.pending == "" {
		return
	}
	line := t.pending
	if t.count > 1 {
		line += fmt.Sprintf(" ×%d", t.count)
	}
	t.lines = append(t.lines, line)
	t.pending, t.count = "", 0
}

// event writes one event of the run.
func (t *tracer) event(e event) {
	switch e.Kind {
	case evTransition:
		t.add("O->>S: %s → %s", e.From, e.To)
	case evCall:
		t.add("O->>%s: %s", t.participant(e.Host, ""), e.Method)
	case evReturn:
		outcome := "done"
		if e.Err != nil {
			outcome = "failed"
		}
		t.add("%s-->>O: %s %s", t.participant(e.Host, ""), e.Method, outcome)
	case evStep:
		t.add("Note over %s: %s", t.participant(e.Host, ""), e.Method)
	case evCheckEnd:
		outcome := "equals what the guest wrote"
		if e.Err != nil {
			outcome = "differs"
		}
		t.add("Note over O,%s: root disk read back: %s", t.participant(e.Host, ""), outcome)
	}
}

// calls writes XenAPI calls, consecutive repeats folded.
func (t *tracer) calls(recs []xenapitest.CallRecord) {
	for _, r := range recs {
		if skipped(r.Method) {
			continue
		}
		var line string
		switch r.Method {
		case xenapitest.ExportRawVDIAction:
			line = fmt.Sprintf("%s-->>O: GET %s (VHD stream)", t.participant(r.Host, ""), xenapitest.ExportRawVDIPath)
		case xenapitest.ImportRawVDIAction:
			line = fmt.Sprintf("O-->>%s: PUT %s (VHD stream)", t.participant(r.Host, ""), xenapitest.ImportRawVDIPath)
		default:
			line = fmt.Sprintf("O->>%s: %s", t.master(r.Host), r.Method)
		}
		if r.Error != "" {
			line += " fails " + r.Error
		}
		if line == t.pending {
			t.count++
			continue
		}
		t.flush()
		t.pending, t.count = line, 1
	}
}

// skipped reports whether a call is left out of the trace.
func skipped(method string) bool {
	m := strings.TrimPrefix(method, "Async.")
	for _, p := range traceSkipped {
		if strings.HasPrefix(m, p) {
			return true
		}
	}
	return false
}
