package xenapitest

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Fault makes calls of one method misbehave.
type Fault struct {
	// Method is the wire name, e.g. "VM.clean_shutdown"; an Async call
	// counts under its own name, "Async.VM.clean_shutdown", and its fault
	// shows in the task (which fails or is delayed) rather than in the
	// Async call's answer.
	Method string
	// N picks the use of Method to affect, counting from 1 over the
	// pool's whole life (as CallRecord.N does); 0 affects every use.
	N int
	// Code and Params make the call fail with this XenAPI error. An empty
	// Code leaves the call to succeed (after Delay).
	Code   string
	Params []string
	// Delay holds the call this long before it runs (or fails).
	Delay time.Duration
	// CutAfter, for the disk handlers (ExportRawVDIAction,
	// ImportRawVDIAction), lets this many bytes of the stream through and
	// then fails the transfer with Code (VDI_IO_ERROR ["Device I/O
	// errors"] when Code is empty): an export's body ends short, an import
	// stops reading and keeps what it wrote. Other calls ignore it.
	CutAfter int64
}

type faultRule struct {
	Fault
	used bool
}

// InjectFault adds a fault. Several faults may match one call: the delays
// add up and the first matching failure wins.
func (p *Pool) InjectFault(f Fault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults = append(p.faults, &faultRule{Fault: f})
}

// FailNth makes the n-th use of method fail with code and params.
func (p *Pool) FailNth(method string, n int, code string, params ...string) {
	p.InjectFault(Fault{Method: method, N: n, Code: code, Params: params})
}

// ClearFaults removes every fault.
func (p *Pool) ClearFaults() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults = nil
}

// takeFault returns the delay and failure the faults give the nth use of
// wire (a fault with CutAfter fails a transfer later: see takeCut).
func (p *Pool) takeFault(wire string, nth int) (time.Duration, error) {
	delay, _, err := p.matchFaults(wire, nth)
	return delay, err
}

// streamCut is a fault that cuts a disk transfer after some bytes.
type streamCut struct {
	after int64
	err   *Failure
}

// matchFaults returns what the faults give the nth use of wire: the
// delays summed, the first stream cut, the first failure.
func (p *Pool) matchFaults(wire string, nth int) (time.Duration, *streamCut, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var delay time.Duration
	var err error
	var cut *streamCut
	for _, f := range p.faults {
		if f.Method != wire || (f.N != 0 && f.N != nth) {
			continue
		}
		f.used = true
		delay += f.Delay
		switch {
		case f.CutAfter > 0 && cut == nil:
			code, params := f.Code, append([]string{}, f.Params...)
			if code == "" {
				code, params = ErrVDIIOError, []string{"Device I/O errors"}
			}
			cut = &streamCut{after: f.CutAfter, err: fail(code, params...)}
		case f.CutAfter == 0 && err == nil && f.Code != "":
			err = fail(f.Code, append([]string{}, f.Params...)...)
		}
	}
	return delay, cut, err
}

// CallRecord is one call the pool received.
type CallRecord struct {
	Seq    int    // position in the log, from 1
	Method string // wire name as sent, e.g. "Async.VM.start"
	N      int    // this call is the N-th use of Method, as Fault.N counts
	Host   string // name of the host whose endpoint got the call
	Args   string // the parameters after the session, summarised
	Error  string // the failure code the call answered, "" on success
}

// String formats the record as "Method(args) -> Error".
func (r CallRecord) String() string {
	s := r.Method + "(" + r.Args + ")"
	if r.Error != "" {
		s += " -> " + r.Error
	}
	return s
}

// Calls returns a copy of the call log.
func (p *Pool) Calls() []CallRecord {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]CallRecord(nil), p.calls...)
}

// CallCount returns how many times method (a wire name) has been called.
func (p *Pool) CallCount(method string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.counts[method]
}

// ResetCalls empties the call log. Use counts (CallRecord.N, Fault.N) go
// on from where they were.
func (p *Pool) ResetCalls() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = nil
}

// CallsSummary returns the methods called, in order, one per line;
// getters of single fields and login/logout included.
func (p *Pool) CallsSummary() string {
	var b strings.Builder
	for _, c := range p.Calls() {
		b.WriteString(c.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// CalledMethods returns the distinct methods called, sorted.
func (p *Pool) CalledMethods() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]string, 0, len(p.counts))
	for m := range p.counts {
		out = append(out, m)
	}
	sort.Strings(out)
	return out
}

const maxCallLog = 100000

func (p *Pool) logCall(h *Host, wire string, params []any) (seq, nth int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.appendCall(h, wire, p.summarizeArgs(wire, params))
}

// appendCall counts a use of wire and records it in the log, if the log
// has room. The caller holds p.mu.
func (p *Pool) appendCall(h *Host, wire, args string) (seq, nth int) {
	p.counts[wire]++
	nth = p.counts[wire]
	seq = len(p.calls) + 1
	if len(p.calls) >= maxCallLog {
		return 0, nth
	}
	p.calls = append(p.calls, CallRecord{Seq: seq, Method: wire, N: nth, Host: h.name, Args: args})
	p.log.Debug("xenapi call", "host", h.name, "method", wire, "n", nth)
	return seq, nth
}

func (p *Pool) logResult(seq int, err error) {
	if err == nil || seq == 0 {
		return
	}
	code := "FAULT"
	var f *Failure
	if errors.As(err, &f) {
		code = f.Code
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if seq <= len(p.calls) && p.calls[seq-1].Seq == seq {
		p.calls[seq-1].Error = code
	}
}

// summarizeArgs renders parameters briefly. Secrets stay out: the session
// a call is made with, passwords, and any other argument that is a
// session ref (session.get_record's, say) shows as redactedSession. The
// caller holds p.mu.
func (p *Pool) summarizeArgs(wire string, params []any) string {
	if strings.HasSuffix(wire, "session.login_with_password") {
		if len(params) > 0 {
			return summarizeValue(params[0]) + ", ***"
		}
		return ""
	}
	m := p.methods[strings.TrimPrefix(wire, "Async.")]
	if len(params) > 0 {
		s, isRef := params[0].(string)
		isRef = isRef && strings.HasPrefix(s, "OpaqueRef:")
		if (m != nil && m.session) || (m == nil && isRef) {
			params = params[1:]
		}
	}
	parts := make([]string, len(params))
	for i, v := range params {
		if s, ok := v.(string); ok {
			if o, live := p.objs[s]; live && o.cls == classSession {
				parts[i] = redactedSession
				continue
			}
		}
		parts[i] = summarizeValue(v)
	}
	return strings.Join(parts, ", ")
}

// redactedSession stands for a session ref in the call log.
const redactedSession = `"OpaqueRef:(session)"`

func summarizeValue(v any) string {
	switch x := v.(type) {
	case string:
		if len(x) > 48 {
			x = x[:45] + "..."
		}
		return strconv.Quote(x)
	case map[string]any:
		return fmt.Sprintf("{%d keys}", len(x))
	case map[string]string:
		return fmt.Sprintf("{%d keys}", len(x))
	case []any:
		return fmt.Sprintf("[%d items]", len(x))
	case []string:
		return fmt.Sprintf("[%d items]", len(x))
	case nil:
		return "nil"
	}
	return fmt.Sprint(v)
}
