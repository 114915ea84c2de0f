package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/xenflow/xenflow/migrate"
	sm "github.com/xenflow/xenflow/statemachine"
)

// TestReporter: on a terminal the bar is redrawn in place and lines go
// above it; otherwise each new percentage or step is one plain line.
func TestReporter(t *testing.T) {
	events := []migrate.ProgressEvent{
		{Percent: 32, Step: "send-base", BytesSent: 3 << 20, BytesSentRunning: 3 << 20},
		{Percent: 32, Step: "send-base", BytesSent: 4 << 20, BytesSentRunning: 4 << 20},
		{Percent: 64, Step: "send-delta", BytesSent: 5 << 20, BytesSentRunning: 4 << 20},
	}
	transition := event{Kind: evTransition, From: sm.FlowState{VM: sm.VMActive}, To: sm.FlowState{VM: sm.VMResized}}
	for _, tc := range []struct {
		terminal bool
		want     []string
		lines    int
	}{
		{false, []string{"progress   32% send-base      3.0 MiB sent", "progress   64% send-delta     5.0 MiB sent (4.0 MiB while running)"}, 3},
		{true, []string{"\r\x1b[K[#########.....................]  32% send-base", "\r\x1b[K[###################...........]  64% send-delta"}, 2},
	} {
		var b bytes.Buffer
		r := &reporter{w: &b, terminal: tc.terminal}
		r.progress(events[0])
		r.event(transition)
		for _, e := range events[1:] {
			r.progress(e)
		}
		r.endBar()
		out := b.String()
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("terminal=%v: output lacks %q:\n%q", tc.terminal, w, out)
			}
		}
		if n := strings.Count(out, "\n"); n != tc.lines {
			t.Errorf("terminal=%v: %d lines:\n%q", tc.terminal, n, out)
		}
		if !strings.Contains(out, "state     active/None/none") {
			t.Errorf("terminal=%v: no transition line:\n%q", tc.terminal, out)
		}
	}
}
