package xenapi

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// handlerSeen is what a handler server saw of one request.
type handlerSeen struct {
	Method, Path, Session, VDI, Expect string
	ContentLength                      int64
	TransferEncoding                   []string
	Body                               []byte
}

// handlerServer serves f's XML-RPC endpoint at POST / and h at every
// other path, over TLS, and records what h is asked.
type handlerServer struct {
	srv  *httptest.Server
	f    *fakeXapi
	mu   sync.Mutex
	seen []handlerSeen
}

func newHandlerServer(t *testing.T, f *fakeXapi, useTLS bool, h func(hs *handlerServer, w http.ResponseWriter, r *http.Request)) *handlerServer {
	hs := &handlerServer{f: f}
	mux := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/" {
			f.ServeHTTP(w, r)
			return
		}
		h(hs, w, r)
	})
	hs.srv = httptest.NewUnstartedServer(mux)
	if useTLS {
		hs.srv.StartTLS()
	} else {
		hs.srv.Start()
	}
	t.Cleanup(hs.srv.Close)
	return hs
}

// record notes the request, reading its body when read is set.
func (hs *handlerServer) record(r *http.Request, read bool) {
	s := handlerSeen{Method: r.Method, Path: r.URL.Path, Session: r.URL.Query().Get("session_id"), VDI: r.URL.Query().Get("vdi"),
		Expect: r.Header.Get("Expect"), ContentLength: r.ContentLength, TransferEncoding: r.TransferEncoding}
	if read {
		s.Body, _ = io.ReadAll(r.Body)
	}
	hs.mu.Lock()
	hs.seen = append(hs.seen, s)
	hs.mu.Unlock()
}

func (hs *handlerServer) requests() []handlerSeen {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	return append([]handlerSeen(nil), hs.seen...)
}

// sessionOK reports whether f knows the request's session_id, as xapi's
// HTTP handlers check it (401 otherwise).
func (hs *handlerServer) sessionOK(r *http.Request) bool {
	hs.f.mu.Lock()
	defer hs.f.mu.Unlock()
	return hs.f.sessions[r.URL.Query().Get("session_id")]
}

// serveData answers a GET with "data of <vdi>" and takes a PUT's body,
// after checking the session.
func serveData(hs *handlerServer, w http.ResponseWriter, r *http.Request) {
	if !hs.sessionOK(r) {
		hs.record(r, false)
		http.Error(w, "unauthorised", http.StatusUnauthorized)
		return
	}
	hs.record(r, r.Method == http.MethodPut)
	if r.Method == http.MethodGet {
		_, _ = io.WriteString(w, "data of "+r.URL.Query().Get("vdi"))
	}
}

// redirectTo answers every handler request with a 302 to target's host,
// with the same path and query (as xapi does), without reading the body.
func redirectTo(target string) func(*handlerServer, http.ResponseWriter, *http.Request) {
	return func(hs *handlerServer, w http.ResponseWriter, r *http.Request) {
		hs.record(r, false)
		w.Header().Set("Location", target+r.URL.RequestURI())
		w.WriteHeader(http.StatusFound)
	}
}

// tlsClient logs in to hs with a client that trusts the certificates of
// every server in trust.
func tlsClient(t *testing.T, hs *handlerServer, trust ...*httptest.Server) *Client {
	t.Helper()
	pool := x509.NewCertPool()
	for _, s := range append(trust, hs.srv) {
		pool.AddCert(s.Certificate())
	}
	c, err := NewClient(hs.srv.URL, WithRootCAs(pool))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login(bg(), "root", "secret", "x"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(bg()) })
	return c
}

func exportReq(vdi string) HTTPRequest {
	return HTTPRequest{Method: http.MethodGet, Path: "/export_raw_vdi", Query: url.Values{"vdi": {vdi}, "format": {"vhd"}}}
}

func readAllClose(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestDoHTTPGetSendsSession(t *testing.T) {
	hs := newHandlerServer(t, newFakeXapi(t), true, serveData)
	c := tlsClient(t, hs)
	resp, err := c.DoHTTP(bg(), exportReq("OpaqueRef:vdi-1"))
	if err != nil {
		t.Fatal(err)
	}
	if got := readAllClose(t, resp); got != "data of OpaqueRef:vdi-1" {
		t.Fatalf("body %q", got)
	}
	seen := hs.requests()
	if len(seen) != 1 || seen[0].Session != string(c.Session()) || seen[0].Path != "/export_raw_vdi" {
		t.Fatalf("server saw %+v, session %s", seen, c.Session())
	}
}

func TestDoHTTPFollowsRedirectWithinScheme(t *testing.T) {
	f := newFakeXapi(t)
	member := newHandlerServer(t, f, true, serveData)
	master := newHandlerServer(t, f, true, redirectTo(member.srv.URL))
	c := tlsClient(t, master, member.srv)

	body := bytes.Repeat([]byte("vhd!"), 50000)
	for _, req := range []HTTPRequest{
		exportReq("OpaqueRef:vdi-2"),
		{Method: http.MethodPut, Path: "/import_raw_vdi", Query: url.Values{"vdi": {"OpaqueRef:vdi-2"}},
			Body: bytes.NewReader(body), ContentLength: int64(len(body))},
	} {
		resp, err := c.DoHTTP(bg(), req)
		if err != nil {
			t.Fatalf("%s: %v", req.Method, err)
		}
		readAllClose(t, resp)
	}
	at := member.requests()
	if len(at) != 2 || at[0].VDI != "OpaqueRef:vdi-2" || at[0].Session != string(c.Session()) {
		t.Fatalf("member saw %+v", at)
	}
	put := at[1]
	if !bytes.Equal(put.Body, body) || put.ContentLength != int64(len(body)) || len(put.TransferEncoding) != 0 || put.Expect != "100-continue" {
		t.Fatalf("PUT arrived with %d bytes, Content-Length %d, Transfer-Encoding %v, Expect %q",
			len(put.Body), put.ContentLength, put.TransferEncoding, put.Expect)
	}
	if n := len(master.requests()); n != 2 {
		t.Fatalf("master saw %d requests", n)
	}
	if !strings.HasPrefix(c.URL(), master.srv.URL) {
		t.Fatalf("DoHTTP moved the client to %s", c.URL())
	}
}

func TestDoHTTPRefusesRedirects(t *testing.T) {
	f := newFakeXapi(t)
	plain := newHandlerServer(t, f, false, serveData)
	for _, tt := range []struct {
		name     string
		location string
	}{
		{"to http", plain.srv.URL},
		{"with user information", strings.Replace(plain.srv.URL, "http://", "https://u:p@", 1)},
		{"to another protocol", "ftp://127.0.0.1"},
		{"to a relative path", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			master := newHandlerServer(t, f, true, redirectTo(tt.location))
			c := tlsClient(t, master)
			resp, err := c.DoHTTP(bg(), exportReq("OpaqueRef:vdi-3"))
			var re *RedirectError
			if !errors.As(err, &re) {
				if resp != nil {
					resp.Body.Close()
				}
				t.Fatalf("got %v", err)
			}
			if strings.Contains(err.Error(), string(c.Session())) {
				t.Fatalf("error shows the session: %v", err)
			}
		})
	}
	if n := len(plain.requests()); n != 0 {
		t.Fatalf("the http server received %d requests", n)
	}
}

func TestDoHTTPRedirectLoopEnds(t *testing.T) {
	f := newFakeXapi(t)
	var self *handlerServer
	self = newHandlerServer(t, f, true, func(hs *handlerServer, w http.ResponseWriter, r *http.Request) {
		redirectTo(self.srv.URL)(hs, w, r)
	})
	c := tlsClient(t, self)
	_, err := c.DoHTTP(bg(), exportReq("OpaqueRef:vdi-4"))
	var he *HTTPError
	if !errors.As(err, &he) || he.Status != http.StatusFound {
		t.Fatalf("got %v", err)
	}
	if n := len(self.requests()); n != 1+maxHTTPRedirects {
		t.Fatalf("%d requests", n)
	}
}

func TestDoHTTPStatusErrors(t *testing.T) {
	f := newFakeXapi(t)
	for _, code := range []int{http.StatusNotFound, http.StatusInternalServerError, http.StatusForbidden} {
		hs := newHandlerServer(t, f, true, func(hs *handlerServer, w http.ResponseWriter, r *http.Request) {
			http.Error(w, "VDI_MISSING "+strings.Repeat("x", 2000), code)
		})
		c := tlsClient(t, hs)
		_, err := c.DoHTTP(bg(), exportReq("OpaqueRef:vdi-5"))
		var he *HTTPError
		if !errors.As(err, &he) || he.Status != code || he.Method != http.MethodGet || he.Path != "/export_raw_vdi" ||
			!strings.HasPrefix(he.Body, "VDI_MISSING") || len(he.Body) > maxErrorBody {
			t.Fatalf("%d: got %#v", code, err)
		}
	}
}

func TestDoHTTPLogsInAgainOn401(t *testing.T) {
	f := newFakeXapi(t)
	hs := newHandlerServer(t, f, true, serveData)
	c := tlsClient(t, hs)
	old := c.Session()
	f.invalidateSessions() // as a restarted xapi
	body := []byte("disk")
	resp, err := c.DoHTTP(bg(), HTTPRequest{Method: http.MethodPut, Path: "/import_raw_vdi",
		Body: bytes.NewReader(body), ContentLength: int64(len(body))})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	seen := hs.requests()
	if len(seen) != 2 || seen[0].Session != string(old) || seen[1].Session == string(old) || string(seen[1].Body) != "disk" {
		t.Fatalf("server saw %+v", seen)
	}
	// A second 401 is the caller's.
	hs2 := newHandlerServer(t, f, true, func(hs *handlerServer, w http.ResponseWriter, r *http.Request) {
		http.Error(w, "denied", http.StatusUnauthorized)
	})
	c2 := tlsClient(t, hs2)
	if _, err := c2.DoHTTP(bg(), exportReq("x")); !isStatus(err, http.StatusUnauthorized) {
		t.Fatalf("got %v", err)
	}
}

func isStatus(err error, code int) bool {
	var he *HTTPError
	return errors.As(err, &he) && he.Status == code
}

func TestDoHTTPCancellation(t *testing.T) {
	hs := newHandlerServer(t, newFakeXapi(t), true, func(hs *handlerServer, w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
		// Answer nothing: a 200 written now could still reach the client
		// while its transport closes the connection.
		panic(http.ErrAbortHandler)
	})
	c := tlsClient(t, hs)
	ctx, cancel := context.WithCancel(bg())
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err := c.DoHTTP(ctx, exportReq("OpaqueRef:vdi-6"))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
	if strings.Contains(err.Error(), string(c.Session())) {
		t.Fatalf("error shows the session: %v", err)
	}
}

func TestDoHTTPRefusesBadRequests(t *testing.T) {
	hs := newHandlerServer(t, newFakeXapi(t), true, serveData)
	c := tlsClient(t, hs)
	body := strings.NewReader("x")
	for _, req := range []HTTPRequest{
		{Method: http.MethodPost, Path: "/import_raw_vdi"},
		{Method: http.MethodGet, Path: "export_raw_vdi"},
		{Method: http.MethodGet, Path: "/export_raw_vdi?vdi=x"},
		{Method: http.MethodGet, Path: "/export_raw_vdi", Body: body},
		{Method: http.MethodPut, Path: "/import_raw_vdi", Body: body, ContentLength: -1},
		{Method: http.MethodPut, Path: "/import_raw_vdi", ContentLength: 10},
		{Method: http.MethodGet, Path: "/export_raw_vdi", Host: "h/x"},
		{Method: http.MethodGet, Path: "/export_raw_vdi", Host: "u@h"},
		{Method: http.MethodGet, Path: "/export_raw_vdi", Host: "http://h"},
	} {
		if _, err := c.DoHTTP(bg(), req); !errors.Is(err, ErrBadHTTPRequest) {
			t.Errorf("%s %s host %q: got %v", req.Method, req.Path, req.Host, err)
		}
	}
	if n := len(hs.requests()); n != 0 {
		t.Fatalf("%d requests sent", n)
	}
}

func TestDoHTTPToAMember(t *testing.T) {
	f := newFakeXapi(t)
	member := newHandlerServer(t, f, true, serveData)
	master := newHandlerServer(t, f, true, redirectTo(member.srv.URL))
	c := tlsClient(t, master, member.srv)
	mu, _ := url.Parse(member.srv.URL)
	req := exportReq("OpaqueRef:vdi-7")
	req.Host = mu.Host
	resp, err := c.DoHTTP(bg(), req)
	if err != nil {
		t.Fatal(err)
	}
	readAllClose(t, resp)
	if len(master.requests()) != 0 || len(member.requests()) != 1 {
		t.Fatal("the request did not go straight to the member")
	}
}

// TestDoHTTPRedirectAfterBody: a server that takes the body and then
// redirects cannot be followed, the body being gone.
func TestDoHTTPRedirectAfterBody(t *testing.T) {
	f := newFakeXapi(t)
	member := newHandlerServer(t, f, true, serveData)
	master := newHandlerServer(t, f, true, func(hs *handlerServer, w http.ResponseWriter, r *http.Request) {
		hs.record(r, true)
		w.Header().Set("Location", member.srv.URL+r.URL.RequestURI())
		w.WriteHeader(http.StatusFound)
	})
	c := tlsClient(t, master, member.srv)
	body := []byte("disk data")
	_, err := c.DoHTTP(bg(), HTTPRequest{Method: http.MethodPut, Path: "/import_raw_vdi",
		Body: bytes.NewReader(body), ContentLength: int64(len(body))})
	var re *RedirectError
	if !errors.As(err, &re) || !strings.Contains(re.Reason, "body") {
		t.Fatalf("got %v", err)
	}
	if len(member.requests()) != 0 {
		t.Fatal("the member received a request without its body")
	}
}
