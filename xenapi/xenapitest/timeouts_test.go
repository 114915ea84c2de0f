package xenapitest

import (
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// TestHTTPTimeouts stalls a client in each part of a request: the server
// must answer or hang up within the configured timeouts, not wait for ever.
func TestHTTPTimeouts(t *testing.T) {
	p := newTestPool(t, Options{HTTPTimeouts: HTTPTimeouts{ReadHeader: 200 * time.Millisecond, Body: 300 * time.Millisecond}})
	u, err := p.Serve("")
	if err != nil {
		t.Fatal(err)
	}
	s := login(t, p)
	vm, err := p.AddVM(VMSpec{Name: "t", Disks: []int64{2 << 20}})
	if err != nil {
		t.Fatal(err)
	}
	addr := strings.TrimSuffix(strings.TrimPrefix(u, "http://"), "/")
	for _, tc := range []struct {
		name, request string
	}{
		{"headers", "POST / HTTP/1.1\r\nHost: x\r\n"},
		{"XML-RPC body", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n<methodCall>"},
		{"import body", "PUT " + ImportRawVDIPath + "?session_id=" + s + "&vdi=" + vm.VDIs[0] + " HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576\r\n\r\nsome bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := io.WriteString(conn, tc.request); err != nil {
				t.Fatal(err)
			}
			// Then nothing more: the server must give up on us.
			_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.ReadAll(conn); err != nil {
				t.Fatalf("the server still holds the stalled connection: %v", err)
			}
		})
	}
	// The pool still serves.
	if _, err := p.Call(context.Background(), "VM.get_all", s); err != nil {
		t.Fatal(err)
	}
}

// TestCallLogRedactsSessions checks that no session ref reaches the call
// log, whatever argument it is passed as.
func TestCallLogRedactsSessions(t *testing.T) {
	p := newTestPool(t, Options{})
	s := login(t, p)
	other := login(t, p)
	ctx := context.Background()
	calls := [][]any{
		{"VM.get_all", s},
		{"session.get_record", s, other},
		{"session.get_uuid", s, s},
		{"Async.VM.get_all", s},
		{"VM_get_all", s},
		{"no.such", s, other},
		{"VM.get_all", "OpaqueRef:no-such-session"},
		{"session.logout", other},
	}
	for _, c := range calls {
		_, _ = p.Call(ctx, c[0].(string), c[1:]...)
	}
	log := p.CallsSummary()
	for _, ref := range []string{s, other, "no-such-session"} {
		if strings.Contains(log, strings.TrimPrefix(ref, "OpaqueRef:")) {
			t.Fatalf("call log holds session %s:\n%s", ref, log)
		}
	}
	if !strings.Contains(log, "session.get_record("+redactedSession+")") {
		t.Fatalf("a session argument is not shown as redacted:\n%s", log)
	}
}
