package xenapi

import (
	"crypto/x509"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestRedirectAddressForms(t *testing.T) {
	tests := []struct{ from, master, want string }{
		{"https://10.0.0.2/", "10.0.0.1", "https://10.0.0.1/"},
		{"https://10.0.0.2:8443/", "10.0.0.1", "https://10.0.0.1:8443/"},
		{"http://127.0.0.1:5000/", "127.0.0.1:6000", "http://127.0.0.1:6000/"},
		{"https://[fd00::2]/", "fd00::1", "https://[fd00::1]/"},
		{"https://[fd00::2]:8443/", "[fd00::1]", "https://[fd00::1]:8443/"},
		{"https://[fd00::2]/", "[fd00::1]:444", "https://[fd00::1]:444/"},
		{"https://h2/", " master.example.com ", "https://master.example.com/"},
		{"https://h2/", "https://h1:8443", "https://h1:8443/"},
		{"https://root:pw@h2/", "h1", "https://h1/"}, // user information is for h2 only
	}
	for _, tt := range tests {
		c, err := NewClient(tt.from)
		if err != nil {
			t.Fatal(err)
		}
		moved, err := c.redirect(&Failure{Code: CodeHostIsSlave, Params: []string{tt.master}})
		if err != nil || !moved || c.URL() != tt.want {
			t.Errorf("redirect %s to %q = %s (%v), want %s", tt.from, tt.master, c.URL(), err, tt.want)
		}
	}
}

func TestRedirectRefusesOtherSchemesAndNonHosts(t *testing.T) {
	for _, master := range []string{
		"http://h1",               // https → http: the password would travel in clear
		"http://h1:443/",          // same, with a port
		"ftp://h1",                // not even HTTP
		"https://root:pw@h1",      // credentials of the server's choosing
		"h1/evil",                 // a path
		"h1?x=1",                  // a query
		"root@h1",                 // user information without a scheme
		"h1:99999",                // no such port
		"h1:http",                 // a named port
		"h1:+443",                 // a signed port
		"fd00::1::2",              // not an IP address
		"",                        // nothing
		"h1 h2",                   // two things
		"https://",                // a URL without a host
		"https://h1" + "\x00.com", // a NUL
	} {
		c, err := NewClient("https://10.0.0.2/")
		if err != nil {
			t.Fatal(err)
		}
		f := &Failure{Code: CodeHostIsSlave, Params: []string{master}}
		moved, err := c.redirect(f)
		var re *RedirectError
		if moved || !errors.As(err, &re) || !errors.Is(err, ErrHostIsSlave) || c.URL() != "https://10.0.0.2/" {
			t.Errorf("redirect to %q: moved %v, URL %s, err %v", master, moved, c.URL(), err)
		}
	}
}

// TestHostIsSlaveCannotDowngradeToHTTP: a verified https member that
// answers HOST_IS_SLAVE with an http:// URL must not make the client send
// the login in clear text.
func TestHostIsSlaveCannotDowngradeToHTTP(t *testing.T) {
	plain := newFakeXapi(t) // the "master" over plain http
	member := newFakeXapi(t)
	memberSrv, memberFP := selfSignedTLSServer(t, member)
	member.slaveOf = plain.srv.URL // "http://127.0.0.1:port"

	c, err := NewClient(memberSrv.URL, WithPinnedCertificate(memberFP))
	if err != nil {
		t.Fatal(err)
	}
	err = c.Login(bg(), "root", "secret", "x")
	var re *RedirectError
	if !errors.As(err, &re) || !errors.Is(err, ErrHostIsSlave) {
		t.Fatalf("login followed a downgrade: %v", err)
	}
	if n := len(plain.callLog()); n != 0 {
		t.Fatalf("the http host received %d calls", n)
	}
	if !strings.HasPrefix(c.URL(), "https://") {
		t.Fatalf("client URL changed to %s", c.URL())
	}
}

// headerRecorder serves f and records the Authorization header of every
// request.
type headerRecorder struct {
	f    *fakeXapi
	mu   sync.Mutex
	auth []string
}

func (h *headerRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	h.auth = append(h.auth, r.Header.Get("Authorization"))
	h.mu.Unlock()
	h.f.ServeHTTP(w, r)
}

func TestRedirectDropsUserInformation(t *testing.T) {
	rec := &headerRecorder{f: newFakeXapi(t)}
	master := httptest.NewServer(rec)
	defer master.Close()
	member := newFakeXapi(t)
	mu, _ := url.Parse(master.URL)
	member.slaveOf = mu.Host

	c, err := NewClient(strings.Replace(member.srv.URL, "http://", "http://admin:url-password@", 1))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login(bg(), "root", "secret", "x"); err != nil {
		t.Fatal(err)
	}
	defer c.Close(bg())
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.auth) == 0 {
		t.Fatal("the master saw no request")
	}
	for _, a := range rec.auth {
		if a != "" {
			t.Fatalf("the master received Authorization %q", a)
		}
	}
}

// TestNoHTTPRedirects: a 307 or 308 would make net/http re-send the login
// body to wherever Location says.
func TestNoHTTPRedirects(t *testing.T) {
	for _, code := range []int{http.StatusMovedPermanently, http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		elsewhere := newFakeXapi(t)
		redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, elsewhere.srv.URL+"/", code)
		}))
		c, err := NewClient(redirector.URL)
		if err != nil {
			t.Fatal(err)
		}
		err = c.Login(bg(), "root", "secret", "x")
		var he *HTTPError
		if !errors.As(err, &he) || he.Status != code {
			t.Errorf("%d: login error %v", code, err)
		}
		if n := len(elsewhere.callLog()); n != 0 {
			t.Errorf("%d: the redirect target received %d calls", code, n)
		}
		redirector.Close()
	}
}

func TestNewClientRefusesWeakTLSCombinations(t *testing.T) {
	fp := strings.Repeat("ab", 32)
	tests := []struct {
		name string
		url  string
		opts []Option
	}{
		{"http with a pin", "http://10.0.0.1/", []Option{WithPinnedCertificate(fp)}},
		{"http with roots", "http://10.0.0.1/", []Option{WithRootCAs(emptyPool())}},
		{"http with insecure", "http://10.0.0.1/", []Option{InsecureSkipVerify()}},
		{"HTTP client with a pin", "https://10.0.0.1/", []Option{WithHTTPClient(&http.Client{}), WithPinnedCertificate(fp)}},
		{"HTTP client with roots", "https://10.0.0.1/", []Option{WithRootCAs(emptyPool()), WithHTTPClient(&http.Client{})}},
		{"HTTP client with insecure", "https://10.0.0.1/", []Option{WithHTTPClient(&http.Client{}), InsecureSkipVerify()}},
	}
	for _, tt := range tests {
		if _, err := NewClient(tt.url, tt.opts...); err == nil {
			t.Errorf("%s: accepted", tt.name)
		}
	}
	// Each alone is fine.
	for _, opts := range [][]Option{
		{WithPinnedCertificate(fp)}, {WithRootCAs(emptyPool())}, {InsecureSkipVerify()}, {WithHTTPClient(&http.Client{})},
	} {
		if _, err := NewClient("https://10.0.0.1/", opts...); err != nil {
			t.Errorf("refused: %v", err)
		}
	}
}

func TestWithHTTPClientLeavesCallersClientAlone(t *testing.T) {
	hc := &http.Client{}
	c, err := NewClient("https://10.0.0.1/", WithHTTPClient(hc))
	if err != nil {
		t.Fatal(err)
	}
	if hc.CheckRedirect != nil {
		t.Fatal("the caller's client was changed")
	}
	if c.hc.CheckRedirect == nil {
		t.Fatal("the client's copy follows redirects")
	}
}

func emptyPool() *x509.CertPool { return x509.NewCertPool() }

func TestResponseHeaderTimeout(t *testing.T) {
	c, err := NewClient("https://10.0.0.1/")
	if err != nil {
		t.Fatal(err)
	}
	if tr, ok := c.hc.Transport.(*http.Transport); !ok || tr.ResponseHeaderTimeout != DefaultResponseHeaderTimeout {
		t.Fatalf("transport %#v", c.hc.Transport)
	}

	// A server that never answers: the call ends with no context deadline.
	f := newFakeXapi(t)
	release := make(chan struct{})
	defer close(release)
	f.handleRaw("VM.get_all", hangUntil(release))
	c = f.login(t, WithResponseHeaderTimeout(100*time.Millisecond))
	defer c.Close(bg())
	if _, err := c.VM.GetAll(bg()); err == nil || !strings.Contains(err.Error(), "timeout awaiting response headers") {
		t.Fatalf("got %v", err)
	}
	if _, err := NewClient("https://10.0.0.1/", WithResponseHeaderTimeout(-time.Second)); err == nil {
		t.Fatal("negative timeout accepted")
	}
}
