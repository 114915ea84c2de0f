package xenapitest

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/xenflow/xenflow/xenapi/internal/xmlrpc"
)

// post sends a raw methodCall and returns the status and body.
func post(t *testing.T, url, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "text/xml", strings.NewReader(body))
	code, b := readResponse(t, resp, err)
	return code, string(b)
}

// rpc calls over HTTP with the codec and returns the decoded envelope.
func rpc(t *testing.T, url, method string, params ...any) map[string]any {
	t.Helper()
	var buf bytes.Buffer
	if err := xmlrpc.EncodeCall(&buf, method, params); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(url, "text/xml", &buf)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: HTTP %d", method, resp.StatusCode)
	}
	v, err := xmlrpc.DecodeResponse(resp.Body)
	if err != nil {
		t.Fatalf("%s: %v", method, err)
	}
	return v.(map[string]any)
}

func value(t *testing.T, env map[string]any) any {
	t.Helper()
	if env["Status"] != "Success" {
		t.Fatalf("envelope %v", env)
	}
	return env["Value"]
}

func TestHTTPWireFormat(t *testing.T) {
	p := newTestPool(t, Options{Hosts: 2})
	srv := httptest.NewServer(p.Handler())
	defer srv.Close()
	slave := httptest.NewServer(p.Hosts()[1].Handler())
	defer slave.Close()
	p.Master().SetAddress(strings.TrimPrefix(srv.URL, "http://"))
	vm, err := p.AddVM(VMSpec{Name: "wire <&> \"quoted\"", Disks: []int64{2 << 20}, Running: true})
	if err != nil {
		t.Fatal(err)
	}

	// Login with xapi's untyped strings, as Python's client sends them.
	code, body := post(t, srv.URL+"/RPC2", `<?xml version='1.0'?>
<methodCall><methodName>session.login_with_password</methodName><params>
<param><value><string>root</string></value></param><param><value>xenroot</value></param>
<param><value>1.0</value></param><param><value>test</value></param></params></methodCall>`)
	if code != 200 || !strings.Contains(body, "<name>Status</name><value>Success</value>") || !strings.Contains(body, "OpaqueRef:") {
		t.Fatalf("login: %d %s", code, body)
	}
	v, err := xmlrpc.DecodeResponse(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	s := v.(map[string]any)["Value"].(string)

	// Records: untyped strings, ints as decimal strings, empty strings as
	// <value></value>, booleans typed.
	rec := value(t, rpc(t, srv.URL, "VM.get_record", s, vm.Ref)).(map[string]any)
	if rec["name_label"] != "wire <&> \"quoted\"" || rec["memory_static_max"] != "1073741824" || rec["PV_args"] != "" || rec["is_a_template"] != false {
		t.Fatalf("record over the wire: %v", rec)
	}
	code, body = post(t, srv.URL, `<methodCall><methodName>VM.get_name_description</methodName><params><param><value>`+s+`</value></param><param><value>`+vm.Ref+`</value></param></params></methodCall>`)
	if code != 200 || !strings.Contains(body, "<name>Value</name><value></value>") {
		t.Fatalf("empty string: %s", body)
	}
	code, body = post(t, srv.URL, `<methodCall><methodName>VM.get_memory_static_max</methodName><params><param><value>`+s+`</value></param><param><value>`+vm.Ref+`</value></param></params></methodCall>`)
	if code != 200 || !strings.Contains(body, "<value>1073741824</value>") {
		t.Fatalf("int as string: %s", body)
	}
	// Ints in as <int>, <i8> or strings.
	for _, n := range []string{"<int>2</int>", "<i8>2</i8>", "<i4>2</i4>", "2"} {
		_, body := post(t, srv.URL, `<methodCall><methodName>VM.set_VCPUs_number_live</methodName><params><param><value>`+s+`</value></param><param><value>`+vm.Ref+`</value></param><param><value>`+n+`</value></param></params></methodCall>`)
		if !strings.Contains(body, "Success") && !strings.Contains(body, "INVALID_VALUE") {
			t.Fatalf("int form %s: %s", n, body)
		}
	}

	// Failures: ErrorDescription with every parameter as a string.
	env := rpc(t, srv.URL, "VM.get_record", s, "OpaqueRef:bad")
	if env["Status"] != "Failure" || !reflect.DeepEqual(env["ErrorDescription"], []any{ErrHandleInvalid, "VM", "OpaqueRef:bad"}) {
		t.Fatalf("failure envelope %v", env)
	}
	env = rpc(t, srv.URL, "VM.get_record", s)
	if !reflect.DeepEqual(env["ErrorDescription"], []any{ErrMessageParameterCountMismatch, "VM.get_record", "1", "0"}) {
		t.Fatalf("%v", env)
	}
	env = rpc(t, srv.URL, "no.such", s)
	if !reflect.DeepEqual(env["ErrorDescription"], []any{ErrMessageMethodUnknown, "no.such"}) {
		t.Fatalf("%v", env)
	}

	// Async and the task.result string.
	task := value(t, rpc(t, srv.URL, "Async.VM.clean_shutdown", s, vm.Ref)).(string)
	rec = waitTask(t, p, s, task)
	if rec["status"] != "success" || rec["result"] != "<value></value>" {
		t.Fatalf("%v", rec)
	}
	_, body = post(t, srv.URL, `<methodCall><methodName>task.get_result</methodName><params><param><value>`+s+`</value></param><param><value>`+task+`</value></param></params></methodCall>`)
	if !strings.Contains(body, "&lt;value&gt;&lt;/value&gt;") {
		t.Fatalf("task.result escaped: %s", body)
	}
	// A fault for Async of a call without an Async form.
	_, body = post(t, srv.URL, `<methodCall><methodName>Async.VM.get_record</methodName><params><param><value>`+s+`</value></param><param><value>`+vm.Ref+`</value></param></params></methodCall>`)
	if !strings.Contains(body, "<fault>") {
		t.Fatalf("no fault: %s", body)
	}
	if _, err := xmlrpc.DecodeResponse(strings.NewReader(body)); err == nil {
		t.Fatal("fault decoded as a value")
	}

	// HOST_IS_SLAVE from a member, naming the master's address.
	env = rpc(t, slave.URL, "session.login_with_password", "root", "xenroot")
	if !reflect.DeepEqual(env["ErrorDescription"], []any{ErrHostIsSlave, strings.TrimPrefix(srv.URL, "http://")}) {
		t.Fatalf("%v", env)
	}

	// Transport errors.
	if code, body := post(t, srv.URL, "<methodCall><methodName>VM.get_all"); code != 500 || !strings.Contains(body, "<html>") {
		t.Fatalf("malformed: %d %s", code, body)
	}
	if code, _ := post(t, srv.URL, `<methodCall><methodName>x</methodName><params><param><value>`+strings.Repeat("a", maxRequestBody)+`</value></param></params></methodCall>`); code != http.StatusRequestEntityTooLarge {
		t.Fatalf("large body: %d", code)
	}
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET: %d", resp.StatusCode)
	}

	// Logout, then SESSION_INVALID with the handle.
	value(t, rpc(t, srv.URL, "session.logout", s))
	env = rpc(t, srv.URL, "VM.get_all", s)
	if !reflect.DeepEqual(env["ErrorDescription"], []any{ErrSessionInvalid, s}) {
		t.Fatalf("%v", env)
	}
}

func TestServe(t *testing.T) {
	p := newTestPool(t, Options{Hosts: 3})
	url, err := p.Serve("")
	if err != nil {
		t.Fatal(err)
	}
	for i, h := range p.Hosts() {
		addr := h.Address()
		if !strings.HasPrefix(addr, "127.0.0.1:") {
			t.Fatalf("host %d address %s", i, addr)
		}
		env := rpc(t, "http://"+addr+"/", "session.login_with_password", p.User(), p.Password())
		if i == 0 {
			value(t, env)
			if url != "http://"+addr+"/" {
				t.Fatalf("url %s", url)
			}
		} else if !reflect.DeepEqual(env["ErrorDescription"], []any{ErrHostIsSlave, p.Master().Address()}) {
			t.Fatalf("%v", env)
		}
	}
}
