package xenapitest

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/xenflow/xenflow/xenapi/internal/xmlrpc"
)

// method is one XenAPI message the pool answers.
type method struct {
	name string
	// params names the declared parameters after the session, for type
	// errors; the first mandatory of them are required and the rest have
	// defaults (passed to fn as nil when left out).
	params    []string
	mandatory int
	session   bool // the first wire parameter is a session ref
	async     bool // an Async.<name> form exists
	removed   bool // lifecycle Removed: answers MESSAGE_REMOVED
	// unlocked means fn takes p.mu itself (event.from blocks).
	unlocked bool
	fn       func(c *call, a *args) (any, error)
}

// call is the context of one dispatched call.
type call struct {
	p       *Pool
	ctx     context.Context
	host    *Host  // the endpoint the call arrived at
	session string // session ref, "" for calls without one
	task    *taskState
}

// methodTable maps wire names (without Async.) to methods. It is built once
// per pool, so pools never share mutable state.
type methodTable map[string]*method

func (t methodTable) add(m *method) {
	if m.mandatory < 0 || m.mandatory > len(m.params) {
		m.mandatory = len(m.params)
	}
	t[m.name] = m
}

// sessionCall registers a method that takes a session and the given
// parameters, all mandatory.
func (t methodTable) sessionCall(name string, async bool, fn func(c *call, a *args) (any, error), params ...string) *method {
	m := &method{name: name, params: params, mandatory: len(params), session: true, async: async, fn: fn}
	t.add(m)
	return m
}

// withDefaults marks the last n parameters of m as defaulted.
func (m *method) withDefaults(n int) *method {
	m.mandatory = len(m.params) - n
	return m
}

// dispatch runs one call that arrived at host h's endpoint.
func (p *Pool) dispatch(ctx context.Context, h *Host, wire string, params []any) (any, error) {
	seq, nth := p.logCall(h, wire, params)
	res, err := p.dispatch1(ctx, h, wire, nth, params)
	p.logResult(seq, err)
	return res, err
}

func (p *Pool) dispatch1(ctx context.Context, h *Host, wire string, nth int, params []any) (any, error) {
	name, async := wire, false
	if strings.HasPrefix(wire, "Async.") {
		name, async = wire[len("Async."):], true
	}
	m := p.methods[name]
	if m == nil && !async {
		// xapi also accepts VM_get_record for VM.get_record, not for Async.
		if i := strings.IndexByte(name, '_'); i > 0 {
			if alt := p.methods[name[:i]+"."+name[i+1:]]; alt != nil && !strings.Contains(name[:i], ".") {
				m = alt // errors keep naming the call as it was made
			}
		}
	}
	if name == "system.listMethods" && !async {
		return p.listMethods(), nil
	}
	if m == nil {
		return nil, fail(ErrMessageMethodUnknown, name)
	}
	if async && !m.async {
		return nil, &xmlrpc.Fault{Code: -1, String: "No async mode for this operation (rpc: " + name + ")"}
	}
	received := len(params)
	if m.session {
		received--
	}
	if received < m.mandatory || (m.mandatory == len(m.params) && received != m.mandatory) {
		return nil, fail(ErrMessageParameterCountMismatch, name, strconv.Itoa(m.mandatory), strconv.Itoa(received))
	}
	c := &call{p: p, ctx: ctx, host: h}
	if m.session {
		ref, _ := params[0].(string)
		p.mu.Lock()
		_, ok := p.objs[ref]
		if ok && p.objs[ref].cls != classSession {
			ok = false
		}
		if ok {
			p.objs[ref].f["last_active"] = p.now()
		}
		p.mu.Unlock()
		if !ok {
			return nil, fail(ErrSessionInvalid, ref)
		}
		c.session = ref
		params = params[1:]
	}
	if !h.IsMaster() {
		return nil, fail(ErrHostIsSlave, p.Master().Address())
	}
	if m.removed {
		return nil, fail(ErrMessageRemoved)
	}
	a := &args{m: m, v: make([]any, len(m.params))}
	copy(a.v, params)
	delay, ferr := p.takeFault(wire, nth)
	if async {
		return p.startTask(c, m, a, wire, delay, ferr)
	}
	if delay > 0 {
		if err := sleepCtx(ctx, delay); err != nil {
			return nil, err
		}
	}
	if ferr != nil {
		return nil, ferr
	}
	return p.run(c, m, a)
}

// run calls m.fn with the pool lock held unless m takes it itself.
func (p *Pool) run(c *call, m *method, a *args) (any, error) {
	if !m.unlocked {
		p.mu.Lock()
		defer p.mu.Unlock()
	}
	res, err := m.fn(c, a)
	if a.err != nil {
		// A parameter of the wrong type fails the call as xapi's
		// unmarshalling would, before anything else is looked at.
		err = a.err
	}
	if err != nil {
		return nil, err
	}
	if res == nil {
		res = ""
	}
	return res, nil
}

func (p *Pool) listMethods() []any {
	names := make([]string, 0, len(p.methods))
	for n := range p.methods {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]any, len(names))
	for i, n := range names {
		out[i] = n
	}
	return out
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// args reads typed parameters; the first type error sticks in err and is
// returned by run.
type args struct {
	m   *method
	v   []any
	err error
}

func (a *args) typeErr(i int) {
	if a.err == nil {
		a.err = fail(ErrFieldTypeError, a.m.params[i])
	}
}

// present reports whether parameter i was sent.
func (a *args) present(i int) bool { return i < len(a.v) && a.v[i] != nil }

func (a *args) str(i int) string {
	switch x := a.v[i].(type) {
	case string:
		return x
	case nil:
		return ""
	}
	a.typeErr(i)
	return ""
}

func (a *args) int(i int) int64 {
	n, ok := toInt(a.v[i])
	if !ok {
		a.typeErr(i)
	}
	return n
}

func (a *args) float(i int) float64 {
	switch x := a.v[i].(type) {
	case float64:
		return x
	case nil:
		return 0
	}
	if n, ok := toInt(a.v[i]); ok {
		return float64(n)
	}
	if s, ok := a.v[i].(string); ok {
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			return f
		}
	}
	a.typeErr(i)
	return 0
}

func (a *args) bool(i int) bool {
	b, ok := toBool(a.v[i])
	if !ok {
		a.typeErr(i)
	}
	return b
}

func (a *args) set(i int) []string {
	s, ok := toSet(a.v[i])
	if !ok {
		a.typeErr(i)
	}
	return s
}

func (a *args) mapv(i int) map[string]string {
	m, ok := toMap(a.v[i])
	if !ok {
		a.typeErr(i)
	}
	return m
}

func (a *args) record(i int) map[string]any {
	switch x := a.v[i].(type) {
	case map[string]any:
		return x
	case map[string]string:
		m := make(map[string]any, len(x))
		for k, v := range x {
			m[k] = v
		}
		return m
	}
	a.typeErr(i)
	return map[string]any{}
}

// toInt accepts what xapi accepts for an int: <int>/<i4>/<i8> or a decimal
// string; Go integer kinds are accepted for in-process callers.
func toInt(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case int:
		return int64(x), true
	case int32:
		return int64(x), true
	case uint32:
		return int64(x), true
	case string:
		n, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64)
		return n, err == nil
	case nil:
		return 0, true
	}
	return 0, false
}

func toBool(v any) (bool, bool) {
	switch x := v.(type) {
	case bool:
		return x, true
	case string:
		switch strings.ToLower(x) {
		case "true", "1":
			return true, true
		case "false", "0":
			return false, true
		}
	case nil:
		return false, true
	}
	return false, false
}

func toSet(v any) ([]string, bool) {
	switch x := v.(type) {
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, false
			}
			out = append(out, s)
		}
		return out, true
	case []string:
		return append([]string{}, x...), true
	case nil:
		return []string{}, true
	}
	return nil, false
}

func toMap(v any) (map[string]string, bool) {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]string, len(x))
		for k, e := range x {
			switch s := e.(type) {
			case string:
				out[k] = s
			case int64, int, bool, float64:
				out[k] = fmt.Sprint(s)
			default:
				return nil, false
			}
		}
		return out, true
	case map[string]string:
		out := make(map[string]string, len(x))
		for k, s := range x {
			out[k] = s
		}
		return out, true
	case nil:
		return map[string]string{}, true
	}
	return nil, false
}

// convertField parses a wire value for field fd into its stored form.
func convertField(fd *field, v any) (any, bool) {
	switch fd.kind {
	case kInt:
		return toInt(v)
	case kBool:
		return toBool(v)
	case kFloat:
		switch x := v.(type) {
		case float64:
			return x, true
		case string:
			f, err := strconv.ParseFloat(x, 64)
			return f, err == nil
		}
		n, ok := toInt(v)
		return float64(n), ok
	case kTime:
		switch x := v.(type) {
		case time.Time:
			return x.UTC(), true
		case string:
			t, err := xmlrpc.ParseDateTime(x)
			return t, err == nil
		}
		return nil, false
	case kSet:
		return toSet(v)
	case kMap:
		return toMap(v)
	case kEnumLower:
		s, ok := v.(string)
		if !ok {
			return nil, false
		}
		for _, e := range fd.enum {
			if strings.EqualFold(e, s) {
				return e, true
			}
		}
		return nil, false
	default:
		s, ok := v.(string)
		if v == nil {
			return "", true
		}
		return s, ok
	}
}
