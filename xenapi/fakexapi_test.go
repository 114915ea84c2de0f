package xenapi

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/xenflow/xenflow/xenapi/internal/xmlrpc"
)

// fakeXapi is a small scripted XenAPI server for unit tests: it speaks the
// wire format through the codec, keeps sessions, records every call and
// answers from per-method handlers.
type fakeXapi struct {
	srv *httptest.Server

	mu          sync.Mutex
	user, pass  string
	sessions    map[string]bool
	nextSession int
	calls       []fakeCall
	handlers    map[string]fakeHandler
	raw         map[string]http.HandlerFunc // write the response body by hand
	slaveOf     string                      // when set, login answers HOST_IS_SLAVE [slaveOf]
	inflight    int
	maxInflight int
	noLog       bool   // do not record calls (benchmarks)
	thumbprint  string // sent as the master's certificate fingerprint when asked
}

type fakeCall struct {
	Method string
	Params []any
}

// fakeHandler returns a value, or a failure description (code first).
type fakeHandler func(params []any) (any, []string)

func newFakeXapi(t testing.TB) *fakeXapi {
	f := &fakeXapi{
		user: "root", pass: "secret",
		sessions: map[string]bool{},
		handlers: map[string]fakeHandler{},
		raw:      map[string]http.HandlerFunc{},
	}
	f.srv = httptest.NewServer(f)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeXapi) handle(method string, h fakeHandler) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.handlers[method] = h
}

func (f *fakeXapi) handleRaw(method string, h http.HandlerFunc) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.raw[method] = h
}

// invalidateSessions forgets every session, as a restarted xapi would.
func (f *fakeXapi) invalidateSessions() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sessions = map[string]bool{}
}

func (f *fakeXapi) liveSessions() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.sessions)
}

func (f *fakeXapi) callLog() []fakeCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fakeCall(nil), f.calls...)
}

func (f *fakeXapi) methods() []string {
	var out []string
	for _, c := range f.callLog() {
		out = append(out, c.Method)
	}
	return out
}

func (f *fakeXapi) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	method, params, err := (&xmlrpc.Decoder{MaxBodySize: 300 << 10}).DecodeCall(r.Body)
	if err != nil {
		http.Error(w, "<html><body>bad request: "+err.Error()+"</body></html>", http.StatusInternalServerError)
		return
	}
	f.mu.Lock()
	if !f.noLog {
		f.calls = append(f.calls, fakeCall{method, params})
	}
	f.inflight++
	if f.inflight > f.maxInflight {
		f.maxInflight = f.inflight
	}
	raw := f.raw[method]
	h := f.handlers[method]
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inflight--
		f.mu.Unlock()
	}()
	w.Header().Set("Content-Type", "text/xml")
	if f.thumbprint != "" && r.Header.Get("x-xenapi-request-host-certificate-thumbprint") == "sha-256:master" {
		w.Header().Set("x-xenapi-response-host-certificate-thumbprint", f.thumbprint)
	}
	if raw != nil {
		raw(w, r)
		return
	}
	v, failure := f.dispatch(method, params, h)
	if failure != nil {
		_ = xmlrpc.EncodeFailure(w, failure[0], failure[1:]...)
		return
	}
	_ = xmlrpc.EncodeSuccess(w, v)
}

func (f *fakeXapi) dispatch(method string, params []any, h fakeHandler) (any, []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch method {
	case "session.login_with_password":
		if f.slaveOf != "" {
			return nil, []string{CodeHostIsSlave, f.slaveOf}
		}
		if len(params) < 2 || params[0] != f.user || params[1] != f.pass {
			return nil, []string{CodeSessionAuthenticationFailed}
		}
		f.nextSession++
		ref := fmt.Sprintf("OpaqueRef:session-%d", f.nextSession)
		f.sessions[ref] = true
		return ref, nil
	case "session.logout":
		ref, _ := params[0].(string)
		if !f.sessions[ref] {
			return nil, []string{CodeSessionInvalid, ref}
		}
		delete(f.sessions, ref)
		return "", nil
	}
	if len(params) == 0 {
		return nil, []string{CodeMessageParameterCountMismatch, method, "1", "0"}
	}
	ref, _ := params[0].(string)
	if !f.sessions[ref] {
		return nil, []string{CodeSessionInvalid, ref}
	}
	if h == nil {
		return nil, []string{CodeMessageMethodUnknown, method}
	}
	f.mu.Unlock()
	defer f.mu.Lock()
	return h(params[1:])
}

// login returns a client logged in to f.
func (f *fakeXapi) login(t testing.TB, opts ...Option) *Client {
	t.Helper()
	c, err := NewClient(f.srv.URL, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login(bg(), f.user, f.pass, "xenflow-test"); err != nil {
		t.Fatal(err)
	}
	return c
}

// vmRecordValue is a VM record as xapi sends it.
func vmRecordValue(name string) map[string]any {
	return map[string]any{
		"uuid": "0b5b1c9e-1111-4222-8333-444455556666", "name_label": name, "name_description": "",
		"power_state": "Running", "user_version": "1", "is_a_template": false, "resident_on": "OpaqueRef:host-1",
		"memory_static_max": "8589934592", "memory_dynamic_max": "8589934592", "memory_dynamic_min": "4294967296",
		"memory_static_min": "1073741824", "memory_target": "8589934592", "VCPUs_max": "4", "VCPUs_at_startup": "2",
		"VCPUs_params": map[string]any{}, "actions_after_shutdown": "destroy", "actions_after_reboot": "restart",
		"actions_after_crash": "restart", "VBDs": []any{"OpaqueRef:vbd-1", "OpaqueRef:vbd-2"}, "PV_args": "",
		"HVM_boot_policy": "BIOS order", "HVM_shadow_multiplier": 1.0, "other_config": map[string]any{"nova_uuid": "abc", "empty": ""},
		"blocked_operations": map[string]any{"start": "bootlock"}, "domid": "7", "is_control_domain": false,
		"snapshot_time": mustParseTime("19700101T00:00:00Z"), "allowed_operations": []any{"hard_shutdown", "some_future_op"},
		"domain_type": "hvm", "tags": []any{},
	}
}

func mustParseTime(s string) any {
	t, err := xmlrpc.ParseDateTime(s)
	if err != nil {
		panic(err)
	}
	return t
}

func hasPrefixAny(s string, prefixes ...string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// hangUntil returns a handler that answers nothing until release is
// closed or the client goes away.
func hangUntil(release <-chan struct{}) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}
}
