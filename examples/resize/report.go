package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/xenflow/xenflow/migrate"
)

// reporter prints the run: state transitions, driver steps and the
// progress, as a bar redrawn in place on a terminal and as plain lines
// otherwise. It is safe for concurrent use.
type reporter struct {
	mu       sync.Mutex
	w        io.Writer
	terminal bool
	// bar is the progress line on screen (terminal only), "" when none.
	bar string
	// last is the last progress line printed (plain output).
	last string
	// sent and running are the most bytes an event reported: the finish's
	// events carry none, and the bar keeps what the move sent.
	sent, running int64
}

// isTerminal reports whether w is a character device.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// line prints one line, above the bar on a terminal.
func (r *reporter) line(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lineLocked(fmt.Sprintf(format, args...))
}

func (r *reporter) lineLocked(s string) {
	if r.terminal && r.bar != "" {
		fmt.Fprintf(r.w, "\r\x1b[K%s\n%s", s, r.bar)
		return
	}
	fmt.Fprintln(r.w, s)
}

// event prints what the run saw: transitions and driver steps.
func (r *reporter) event(e event) {
	switch e.Kind {
	case evTransition:
		r.line("state     %-32s -> %s", e.From, e.To)
	case evCall:
		r.line("driver    %s on %s", e.Method, e.Host)
	case evReturn:
		if e.Err != nil {
			r.line("driver    %s on %s failed: %v", e.Method, e.Host, e.Err)
		}
	case evStep:
		r.line("step      %s on %s", e.Method, e.Host)
	}
}

// progress shows the orchestrator's progress.
func (r *reporter) progress(p migrate.ProgressEvent) {
	const width = 30
	filled := p.Percent * width / 100
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent, r.running = max(r.sent, p.BytesSent), max(r.running, p.BytesSentRunning)
	text := fmt.Sprintf("%3d%% %-14s %s sent (%s while running)", p.Percent, p.Step,
		formatBytes(r.sent), formatBytes(r.running))
	if r.terminal {
		r.bar = "[" + strings.Repeat("#", filled) + strings.Repeat(".", width-filled) + "] " + text
		fmt.Fprintf(r.w, "\r\x1b[K%s", r.bar)
		return
	}
	line := fmt.Sprintf("progress %3d%% %s", p.Percent, p.Step)
	if line != r.last {
		r.last = line
		fmt.Fprintln(r.w, "progress  "+text)
	}
}

// endBar ends the progress line on a terminal.
func (r *reporter) endBar() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.terminal && r.bar != "" {
		fmt.Fprintln(r.w)
		r.bar = ""
	}
}

// formatBytes prints a byte count in binary units.
func formatBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	default:
		return fmt.Sprintf("%d B", n)
	}
}

// summary is the run's result, the last line of its output.
type summary struct {
	Operation  string `json:"operation"`
	Instance   string `json:"instance"`
	FromFlavor string `json:"from_flavor"`
	ToFlavor   string `json:"to_flavor"`
	SourceHost string `json:"source_host"`
	DestHost   string `json:"dest_host"`
	// Outcome is confirmed, reverted or verify_resize (-no-confirm).
	Outcome string `json:"outcome"`
	// State is the instance's and migration's final state.
	State string `json:"state"`
	// Host is where the instance is at the end.
	Host      string `json:"host"`
	Transport string `json:"transport"`
	// BytesSentRunning and BytesSentPoweredOff split the disk bytes sent.
	BytesSentRunning    int64 `json:"bytes_sent_running"`
	BytesSentPoweredOff int64 `json:"bytes_sent_powered_off"`
	// DowntimeSeconds is from the source guest's power-off to the
	// destination guest's start; TotalSeconds the whole operation,
	// confirm or revert included.
	DowntimeSeconds float64 `json:"downtime_s"`
	TotalSeconds    float64 `json:"total_s"`
	// GuestWrites counts the blocks the guest wrote during the move
	// (simulated pool only).
	GuestWrites int `json:"guest_writes_during_move"`
	// Verified says how the moved disk was checked.
	Verified string `json:"verified"`
}

// print writes the summary as one line of text, or of JSON.
func (s *summary) print(w io.Writer, asJSON bool) error {
	if asJSON {
		b, err := json.Marshal(s)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
	_, err := fmt.Fprintf(w, "%s %s -> %s by %s: %s sent while running, %s while powered off, downtime %s, total %s; %s (%s)\n",
		s.Operation, s.SourceHost, s.DestHost, s.Transport, formatBytes(s.BytesSentRunning), formatBytes(s.BytesSentPoweredOff),
		seconds(s.DowntimeSeconds), seconds(s.TotalSeconds), s.Outcome, s.State)
	return err
}

// seconds prints a duration given in seconds.
func seconds(s float64) string {
	return time.Duration(s * float64(time.Second)).Round(time.Millisecond).String()
}
