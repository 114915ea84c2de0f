package xenapi

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/xenflow/xenflow/xenapi/internal/xmlrpc"
)

// bodyTransport answers every request with the same body.
type bodyTransport struct{ body []byte }

func (t bodyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	return &http.Response{StatusCode: 200, Status: "200 OK", Header: http.Header{}, Body: io.NopCloser(bytes.NewReader(t.body)),
		ContentLength: int64(len(t.body)), Request: r}, nil
}

// FuzzTypedResponse feeds arbitrary response bodies to typed calls: they
// must return a typed error or a value, never panic. Seeds live in
// testdata/fuzz/FuzzTypedResponse.
func FuzzTypedResponse(f *testing.F) {
	for _, v := range []any{
		xmlrpc.Success(map[string]any{"OpaqueRef:vm": vmRecordValue("vm")}),
		xmlrpc.Success(vmRecordValue("vm")),
		xmlrpc.Success(map[string]any{"events": []any{map[string]any{"id": "1", "class": "vm", "operation": "mod", "ref": "OpaqueRef:vm", "snapshot": vmRecordValue("x")}}, "valid_ref_counts": map[string]any{}, "token": "1,1"}),
		xmlrpc.Failure(CodeHandleInvalid, "VM", "OpaqueRef:x"),
		xmlrpc.Success([]any{"OpaqueRef:a", ""}),
	} {
		b, err := xmlrpc.AppendResponse(nil, v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		// A hang is a failure too: dump every goroutine after 10 s.
		done := make(chan struct{})
		defer close(done)
		go func() {
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				buf := make([]byte, 1<<20)
				panic(fmt.Sprintf("typed calls on a %d-byte body hang:\n%s", len(body), buf[:runtime.Stack(buf, true)]))
			}
		}()
		c, err := NewClient("http://xapi.invalid/", WithHTTPClient(&http.Client{Transport: bodyTransport{body}}), WithMaxResponseSize(1<<20))
		if err != nil {
			t.Fatal(err)
		}
		c.session = "OpaqueRef:fuzz"
		check := func(err error) {
			if err == nil {
				return
			}
			var (
				ce *CallError
				te *TypeError
				fl *Failure
				de *DecodeError
				fa *Fault
				ue *url.Error
			)
			if !errors.As(err, &ce) && !errors.As(err, &te) {
				t.Fatalf("error without context: %T %v", err, err)
			}
			if !(errors.As(err, &te) || errors.As(err, &fl) || errors.As(err, &de) || errors.As(err, &fa) ||
				errors.Is(err, ErrBadEnvelope) || errors.As(err, &ue) || errors.Is(err, ErrNotLoggedIn)) {
				t.Fatalf("untyped error: %T %v", err, err)
			}
		}
		_, err = c.VM.GetAllRecords(bg())
		check(err)
		_, err = c.VM.GetRecord(bg(), "OpaqueRef:vm")
		check(err)
		_, err = c.Event.From(bg(), []string{"*"}, "", 1)
		check(err)
		_, err = c.VM.GetAll(bg())
		check(err)
		_, err = c.Task.GetRecord(bg(), "OpaqueRef:t")
		check(err)
	})
}

// FuzzRedirectHost feeds arbitrary HOST_IS_SLAVE addresses and Location
// values to the redirect check: whatever it accepts is a plain host or
// host:port that keeps the client's scheme and carries no user
// information, path or query.
func FuzzRedirectHost(f *testing.F) {
	for _, s := range []string{"10.0.0.1", "10.0.0.1:443", "fd00::1", "[fd00::1]:8443", "master.example.com",
		"https://h1:8443/export_raw_vdi?vdi=x", "http://h1", "https://u:p@h1", "h1/x", "h1@h2", "h1%2f"} {
		f.Add(s)
	}
	cur, err := url.Parse("https://10.0.0.2:8443/")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, target string) {
		host, reason := redirectHost(cur, target)
		if reason != "" {
			if host != "" {
				t.Fatalf("refused %q (%s) but returned %q", target, reason, host)
			}
			return
		}
		if host == "" || strings.ContainsAny(host, "/?#@%\\ \t\r\n\x00") {
			t.Fatalf("accepted %q as host %q", target, host)
		}
		nu := withHost(cur, host)
		back, err := url.Parse(nu.String())
		if err != nil || back.Scheme != "https" || back.Host != host || back.User != nil || back.Path != "/" || back.RawQuery != "" {
			t.Fatalf("accepted %q as host %q: URL %s (%v)", target, host, nu, err)
		}
	})
}
