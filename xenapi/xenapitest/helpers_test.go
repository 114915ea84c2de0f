package xenapitest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"testing"

	"github.com/xenflow/xenflow/xenapi/internal/xmlrpc"
)

// newTestPool makes a pool in a test directory and closes it at the end.
func newTestPool(t *testing.T, opts Options) *Pool {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	p, err := NewPool(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return p
}

// login returns a session on the master.
func login(t *testing.T, p *Pool) string {
	t.Helper()
	s, err := p.Call(context.Background(), "session.login_with_password", p.User(), p.Password(), "1.0", "xenapitest")
	if err != nil {
		t.Fatal(err)
	}
	return s.(string)
}

// mustCall calls and fails the test on error.
func mustCall(t *testing.T, p *Pool, method string, params ...any) any {
	t.Helper()
	v, err := p.Call(context.Background(), method, params...)
	if err != nil {
		t.Fatalf("%s: %v", method, err)
	}
	return v
}

// wantFailure checks err is a *Failure with exactly code and params.
func wantFailure(t *testing.T, err error, code string, params ...string) {
	t.Helper()
	var f *Failure
	if !errors.As(err, &f) {
		t.Fatalf("got error %v, want %s %q", err, code, params)
	}
	if params == nil {
		params = []string{}
	}
	if f.Code != code || !reflect.DeepEqual(f.Params, params) {
		t.Fatalf("got %s %q, want %s %q", f.Code, f.Params, code, params)
	}
}

func recField(t *testing.T, p *Pool, ref, name string) any {
	t.Helper()
	r, err := p.Record(ref)
	if err != nil {
		t.Fatal(err)
	}
	return r[name]
}

func removeFile(path string) error { return os.Remove(path) }

// caller makes a call one way or another.
type caller func(ctx context.Context, method string, params ...any) (any, error)

// transports returns the two ways into a pool: in process, and XML-RPC
// over HTTP through the codec (a Failure envelope becomes a *Failure).
func transports(t *testing.T, p *Pool) map[string]caller {
	srv := httptest.NewServer(p.Handler())
	t.Cleanup(srv.Close)
	overHTTP := func(ctx context.Context, method string, params ...any) (any, error) {
		var buf bytes.Buffer
		if err := xmlrpc.EncodeCall(&buf, method, params); err != nil {
			return nil, err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL, &buf)
		if err != nil {
			return nil, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		v, err := xmlrpc.DecodeResponse(resp.Body)
		if err != nil {
			return nil, err
		}
		env := v.(map[string]any)
		if env["Status"] == "Success" {
			return env["Value"], nil
		}
		desc := env["ErrorDescription"].([]any)
		f := &Failure{Code: desc[0].(string), Params: []string{}}
		for _, d := range desc[1:] {
			f.Params = append(f.Params, d.(string))
		}
		return nil, f
	}
	return map[string]caller{"in-process": p.Call, "http": overHTTP}
}

// readResponse fails the test on a request error, else reads and closes
// the response body and returns the status and the body.
func readResponse(t *testing.T, resp *http.Response, err error) (int, []byte) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}
