package xenapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/xenflow/xenflow/xenapi/internal/xmlrpc"
)

// Client is a XenAPI client for one pool. It is safe for concurrent use:
// calls from many goroutines run at the same time over a shared
// http.Transport, so a long event.from or a synchronous VM.clean_shutdown
// does not hold up other calls.
//
// The typed calls are grouped by class: c.VM.Snapshot, c.VDI.Resize,
// c.Async.VM.CleanShutdown, and so on.
type Client struct {
	VM    VMClass    // VM calls
	VDI   VDIClass   // VDI calls
	VBD   VBDClass   // VBD calls
	SR    SRClass    // SR calls
	Host  HostClass  // host calls
	Pool  PoolClass  // pool calls
	Task  TaskClass  // task calls
	Event EventClass // event calls
	// Async holds the Async.* forms, which return a task (see WaitTask).
	Async AsyncClasses

	hc           *http.Client
	dec          xmlrpc.Decoder
	log          *slog.Logger
	callTimeout  time.Duration
	pollInterval time.Duration
	taskEvents   bool

	loginMu sync.Mutex // serialises Login, re-login and Logout

	mu         sync.Mutex // guards the fields below
	url        *url.URL   // the pool master's URL
	session    SessionRef
	user       string
	password   string
	originator string
	pins       map[[32]byte]bool // pinned certificate fingerprints; nil when not pinning
}

// options collects what the Options set.
type options struct {
	httpClient    *http.Client
	roots         *x509.CertPool
	pins          [][32]byte
	pinErr        error
	insecure      bool
	logger        *slog.Logger
	callTimeout   time.Duration
	maxResponse   int64
	maxDepth      int
	pollInterval  time.Duration
	dialTimeout   time.Duration
	headerTimeout time.Duration
	taskEvents    bool
}

// Option configures a Client.
type Option func(*options)

// WithHTTPClient makes the client send its requests with (a copy of) hc,
// whose transport then decides TLS and timeouts. NewClient refuses it
// together with WithRootCAs, WithPinnedCertificate or InsecureSkipVerify,
// which only configure the client's own transport. The copy follows no
// HTTP redirects, whatever hc's CheckRedirect says.
func WithHTTPClient(hc *http.Client) Option { return func(o *options) { o.httpClient = hc } }

// WithRootCAs verifies the server certificate against pool instead of the
// system roots.
func WithRootCAs(pool *x509.CertPool) Option { return func(o *options) { o.roots = pool } }

// WithPinnedCertificate accepts a server whose leaf certificate has one of
// these SHA-256 fingerprints (hex, with or without colons, optionally
// prefixed "sha-256:"), whatever signed it. This suits xapi's self-signed
// host certificates; list the master's and the members' fingerprints if
// the client may be redirected to another host.
//
// When a pinned member answers a login with HOST_IS_SLAVE, the client asks
// it (with xapi's x-xenapi-request-host-certificate-thumbprint header) for
// the master's certificate fingerprint and pins that too, so that a pool
// can be reached through any pinned host.
func WithPinnedCertificate(sha256Fingerprints ...string) Option {
	return func(o *options) {
		for _, fp := range sha256Fingerprints {
			pin, err := parseFingerprint(fp)
			if err != nil {
				o.pinErr = err
				return
			}
			o.pins = append(o.pins, pin)
		}
	}
}

// parseFingerprint parses a SHA-256 fingerprint: hex, with or without
// colons, optionally prefixed "sha-256:" or "sha256:".
func parseFingerprint(fp string) ([32]byte, error) {
	var pin [32]byte
	s := strings.ToLower(strings.TrimSpace(fp))
	s = strings.TrimPrefix(s, "sha-256:")
	s = strings.TrimPrefix(s, "sha256:")
	s = strings.ReplaceAll(s, ":", "")
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != sha256.Size {
		return pin, fmt.Errorf("xenapi: bad SHA-256 certificate fingerprint %q", fp)
	}
	copy(pin[:], b)
	return pin, nil
}

// Headers xapi uses to hand out the master's certificate fingerprint.
const (
	thumbprintRequestHeader  = "x-xenapi-request-host-certificate-thumbprint"
	thumbprintResponseHeader = "x-xenapi-response-host-certificate-thumbprint"
)

// InsecureSkipVerify turns off verification of the server's certificate.
// Anyone on the path can then read the credentials; use it only for tests.
func InsecureSkipVerify() Option { return func(o *options) { o.insecure = true } }

// WithLogger logs re-logins, redirects and task clean-up failures to l.
// The default logs nothing.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithCallTimeout bounds every call (each attempt) to d, on top of the
// caller's context. event.from gets d plus its own timeout. Zero (the
// default) leaves the bound to the caller's context.
func WithCallTimeout(d time.Duration) Option { return func(o *options) { o.callTimeout = d } }

// WithMaxResponseSize bounds a response body to n bytes (default 128 MiB;
// VM.get_all_records of 10,000 VMs is about 95 MB) and to one value per 32
// of those bytes; a larger one fails with ErrResponseTooLarge.
func WithMaxResponseSize(n int64) Option { return func(o *options) { o.maxResponse = n } }

// WithTaskPollInterval sets how often WaitTask polls a task (default
// 500 ms).
func WithTaskPollInterval(d time.Duration) Option { return func(o *options) { o.pollInterval = d } }

// WithTaskEvents makes WaitTask follow tasks with event.from (one blocking
// call per change, as xapi recommends) instead of polling task.get_record.
func WithTaskEvents() Option { return func(o *options) { o.taskEvents = true } }

// WithDialTimeout bounds connecting and the TLS handshake (default 30 s).
func WithDialTimeout(d time.Duration) Option { return func(o *options) { o.dialTimeout = d } }

// DefaultResponseHeaderTimeout is how long the client waits, after sending
// a request, for the response headers. xapi answers a synchronous call
// only when it is done, and its slowest routine one, a clean shutdown,
// gives the guest 20 minutes; longer work belongs in an Async call
// followed with WaitTask.
const DefaultResponseHeaderTimeout = 30 * time.Minute

// expectContinueTimeout is how long a PUT with Expect: 100-continue waits
// for the server's go-ahead before sending the body anyway.
const expectContinueTimeout = 10 * time.Second

// WithResponseHeaderTimeout sets how long the client waits for a
// response's headers after sending a request (default
// DefaultResponseHeaderTimeout); zero waits for ever. event.from calls
// need it longer than their own timeout.
func WithResponseHeaderTimeout(d time.Duration) Option {
	return func(o *options) { o.headerTimeout = d }
}

// NewClient returns a client for the pool whose master (or any member: the
// client follows HOST_IS_SLAVE) is at rawURL, e.g. "https://10.0.0.1".
// Certificates are verified against the system roots unless an option says
// otherwise; the TLS options need an https URL. The client never changes
// scheme: a HOST_IS_SLAVE answer moves it to another host only. Call Login
// before any other call and Close when done.
func NewClient(rawURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		// url.Parse's error repeats the URL, which may hold a password.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("xenapi: bad URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("xenapi: URL %q: scheme must be http or https", u.Redacted())
	}
	if u.Host == "" {
		return nil, fmt.Errorf("xenapi: URL %q has no host", u.Redacted())
	}
	if u.Path == "" {
		u.Path = "/"
	}
	o := options{pollInterval: 500 * time.Millisecond, dialTimeout: 30 * time.Second, headerTimeout: DefaultResponseHeaderTimeout}
	for _, opt := range opts {
		opt(&o)
	}
	if err := o.check(u); err != nil {
		return nil, err
	}
	c := &Client{
		url:          u,
		log:          o.logger,
		callTimeout:  o.callTimeout,
		pollInterval: o.pollInterval,
		taskEvents:   o.taskEvents,
		dec:          xmlrpc.Decoder{MaxBodySize: o.maxResponse, MaxDepth: o.maxDepth},
	}
	if c.log == nil {
		c.log = slog.New(discardHandler{})
	}
	if o.httpClient != nil {
		hc := *o.httpClient // a copy: the caller's client keeps its redirect policy
		c.hc = &hc
	} else {
		if len(o.pins) > 0 {
			c.pins = make(map[[32]byte]bool, len(o.pins))
			for _, p := range o.pins {
				c.pins[p] = true
			}
		}
		c.hc = &http.Client{Transport: c.newTransport(&o)}
	}
	// No HTTP redirects: net/http would re-send a login's body on a 307 or
	// 308, to any scheme and host. HOST_IS_SLAVE and DoHTTP's 302s are
	// followed by the client itself, within its scheme.
	c.hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c.initClasses()
	return c, nil
}

// check refuses combinations of options that would silently weaken TLS.
func (o *options) check(u *url.URL) error {
	if o.pinErr != nil {
		return o.pinErr
	}
	tlsOpts := o.roots != nil || len(o.pins) > 0 || o.insecure
	if tlsOpts && o.httpClient != nil {
		return errors.New("xenapi: WithHTTPClient cannot be combined with WithRootCAs, WithPinnedCertificate or InsecureSkipVerify: the given client's transport would ignore them")
	}
	if tlsOpts && u.Scheme != "https" {
		return fmt.Errorf("xenapi: URL %q: WithRootCAs, WithPinnedCertificate and InsecureSkipVerify need an https URL", u.Redacted())
	}
	if o.headerTimeout < 0 || o.dialTimeout < 0 {
		return errors.New("xenapi: negative timeout")
	}
	return nil
}

func (c *Client) newTransport(o *options) *http.Transport {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: o.roots}
	if o.insecure {
		tc.InsecureSkipVerify = true
	}
	if c.pins != nil {
		// The pin replaces chain verification; VerifyConnection still runs.
		tc.InsecureSkipVerify = true
		tc.VerifyConnection = c.verifyPinned
	}
	d := &net.Dialer{Timeout: o.dialTimeout, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           d.DialContext,
		TLSClientConfig:       tc,
		TLSHandshakeTimeout:   o.dialTimeout,
		ResponseHeaderTimeout: o.headerTimeout,
		ExpectContinueTimeout: expectContinueTimeout,
		MaxIdleConns:          128,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
	}
}

// verifyPinned accepts a TLS peer whose leaf certificate is pinned.
func (c *Client) verifyPinned(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("xenapi: server sent no certificate")
	}
	sum := sha256.Sum256(cs.PeerCertificates[0].Raw)
	c.mu.Lock()
	ok := c.pins[sum]
	c.mu.Unlock()
	if !ok {
		return fmt.Errorf("xenapi: server certificate sha-256:%x is not pinned", sum)
	}
	return nil
}

// discardHandler is a slog.Handler that drops everything.
type discardHandler struct{}

func (discardHandler) Enabled(context.Context, slog.Level) bool  { return false }
func (discardHandler) Handle(context.Context, slog.Record) error { return nil }
func (d discardHandler) WithAttrs([]slog.Attr) slog.Handler      { return d }
func (d discardHandler) WithGroup(string) slog.Handler           { return d }

// URL returns the URL calls currently go to (the pool master's once a
// HOST_IS_SLAVE redirect happened), with any password in it masked.
func (c *Client) URL() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.url.Redacted()
}

// target returns the URL requests go to, and the same with any password
// masked for errors and logs.
func (c *Client) target() (full, redacted string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.url.String(), c.url.Redacted()
}

// Session returns the current session reference, or "" before Login.
func (c *Client) Session() SessionRef {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.session
}

// Login calls session.login_with_password and keeps the credentials so that
// the client can log in again when the session becomes invalid. originator
// names the application; xapi counts sessions per originator, so always
// give one. A member host's HOST_IS_SLAVE is followed to the master. A
// previous session of this client is logged out.
func (c *Client) Login(ctx context.Context, user, password, originator string) error {
	c.loginMu.Lock()
	defer c.loginMu.Unlock()
	ref, err := c.login(ctx, user, password, originator)
	if err != nil {
		return err
	}
	c.mu.Lock()
	old := c.session
	c.session, c.user, c.password, c.originator = ref, user, password, originator
	c.mu.Unlock()
	if old != "" && old != ref {
		c.logoutRef(ctx, old)
	}
	return nil
}

// login performs session.login_with_password, following one HOST_IS_SLAVE.
func (c *Client) login(ctx context.Context, user, password, originator string) (SessionRef, error) {
	params := []any{user, password}
	if originator != "" {
		// version "1.1" is the server default; it must be sent to reach
		// the originator parameter.
		params = append(params, "1.1", originator)
	}
	for redirected := false; ; redirected = true {
		v, err := c.rpc(ctx, "session.login_with_password", params)
		if f, ok := AsFailure(err); ok && f.Code == CodeHostIsSlave && !redirected {
			moved, rerr := c.redirect(f)
			if rerr != nil {
				return "", &CallError{Method: "session.login_with_password", URL: c.URL(), Err: rerr}
			}
			if moved {
				continue
			}
		}
		return decodeString[SessionRef](v, err, "session.login_with_password")
	}
}

// Logout ends the session (session.logout) and forgets the credentials, so
// no further re-login happens. It does nothing when not logged in.
func (c *Client) Logout(ctx context.Context) error {
	c.loginMu.Lock()
	defer c.loginMu.Unlock()
	c.mu.Lock()
	ref := c.session
	c.session, c.user, c.password, c.originator = "", "", "", ""
	c.mu.Unlock()
	if ref == "" {
		return nil
	}
	_, err := c.rpc(ctx, "session.logout", []any{ref})
	if IsCode(err, CodeSessionInvalid) {
		return nil // already gone
	}
	return err
}

func (c *Client) logoutRef(ctx context.Context, ref SessionRef) {
	if _, err := c.rpc(ctx, "session.logout", []any{ref}); err != nil && !IsCode(err, CodeSessionInvalid) {
		c.log.Warn("xenapi: logging out an old session failed", "err", err)
	}
}

// Close logs out (so the session does not count against xapi's session
// limits) and closes idle connections.
func (c *Client) Close(ctx context.Context) error {
	err := c.Logout(ctx)
	c.hc.CloseIdleConnections()
	return err
}

// Call makes any XenAPI call that has no typed method: method is the wire
// name (e.g. "VM.get_HVM_boot_params" or "Async.VM.clean_reboot"), the
// session is prepended, integer arguments are sent as decimal strings and
// records as structs. It returns the decoded Value of the result (strings,
// map[string]any, []any, ...).
func (c *Client) Call(ctx context.Context, method string, args ...any) (any, error) {
	return c.call(ctx, method, args...)
}

// call makes a session call, re-logging in once on SESSION_INVALID and
// following HOST_IS_SLAVE once.
func (c *Client) call(ctx context.Context, method string, args ...any) (any, error) {
	params := make([]any, 1+len(args))
	for i, a := range args {
		params[i+1] = wireArg(a)
	}
	if c.callTimeout > 0 {
		d := c.callTimeout
		if method == "event.from" && len(args) == 3 {
			if t, ok := args[2].(float64); ok && t > 0 {
				d += time.Duration(t * float64(time.Second))
			}
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	relogged, redirected := false, false
	for {
		c.mu.Lock()
		session := c.session
		c.mu.Unlock()
		if session == "" {
			return nil, &CallError{Method: method, URL: c.URL(), Err: ErrNotLoggedIn}
		}
		params[0] = session
		v, err := c.rpc(ctx, method, params)
		f, ok := AsFailure(err)
		if ok && f.Code == CodeSessionInvalid && !relogged {
			relogged = true
			if lerr := c.relogin(ctx, session); lerr != nil {
				return nil, fmt.Errorf("%w (logging in again failed: %v)", err, lerr)
			}
			continue
		}
		if ok && f.Code == CodeHostIsSlave && !redirected {
			redirected = true
			moved, rerr := c.redirect(f)
			if rerr != nil {
				return nil, &CallError{Method: method, URL: c.URL(), Err: rerr}
			}
			if moved {
				continue
			}
		}
		return v, err
	}
}

// relogin replaces the session stale with a new one, unless another
// goroutine already did.
func (c *Client) relogin(ctx context.Context, stale SessionRef) error {
	c.loginMu.Lock()
	defer c.loginMu.Unlock()
	c.mu.Lock()
	cur, user, pw, orig := c.session, c.user, c.password, c.originator
	c.mu.Unlock()
	if cur != stale {
		if cur == "" {
			return ErrNotLoggedIn
		}
		return nil
	}
	if user == "" && pw == "" {
		return ErrNotLoggedIn
	}
	c.log.Info("xenapi: session invalid, logging in again", "url", c.URL())
	ref, err := c.login(ctx, user, pw, orig)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.session = ref
	c.mu.Unlock()
	return nil
}

// redirect points the client at the pool master's address, as given in
// HOST_IS_SLAVE: a bare host or IP keeps the scheme and port of the
// current URL, "host:port" keeps the scheme. Anything else (a URL with
// another scheme, user information, a path) is refused with a
// *RedirectError wrapping f: the client never leaves its scheme, so an
// https client keeps its TLS verification. It reports whether the URL
// changed.
func (c *Client) redirect(f *Failure) (bool, error) {
	master := f.Param(0)
	c.mu.Lock()
	defer c.mu.Unlock()
	host, reason := redirectHost(c.url, master)
	if reason != "" {
		return false, &RedirectError{From: c.url.Redacted(), Target: clipString(master), Reason: reason, Err: f}
	}
	nu := withHost(c.url, host)
	if nu.String() == c.url.String() {
		return false, nil
	}
	c.log.Info("xenapi: host is a pool member, following to the master", "from", c.url.Redacted(), "to", nu.Redacted())
	c.url = nu
	return true, nil
}

// clipString shortens what a server sent for an error message.
func clipString(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// rpc sends one methodCall and decodes xapi's envelope. Every error comes
// back as a *CallError.
func (c *Client) rpc(ctx context.Context, method string, params []any) (any, error) {
	target, shown := c.target()
	wrap := func(err error) error { return &CallError{Method: method, URL: shown, Err: err} }

	// A fresh buffer per request: the transport may still read a request
	// body after Do returns, so it must not be reused.
	body, err := xmlrpc.AppendCall(make([]byte, 0, 1024), method, params)
	if err != nil {
		return nil, wrap(err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return nil, wrap(err)
	}
	req.Header.Set("Content-Type", "text/xml")
	req.Header.Set("User-Agent", "xenflow-xenapi")
	pinning := c.pinning()
	if pinning && method == "session.login_with_password" {
		req.Header.Set(thumbprintRequestHeader, "sha-256:master")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, wrap(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, wrap(newHTTPError(req, resp))
	}
	raw, err := c.dec.ReadBody(resp.Body, resp.ContentLength)
	if err != nil {
		if ctx.Err() != nil {
			return nil, wrap(fmt.Errorf("%w (%v)", ctx.Err(), err))
		}
		return nil, wrap(err)
	}
	v, err := c.dec.DecodeResponseBytes(raw)
	if err != nil {
		return nil, wrap(err)
	}
	val, failure, err := xmlrpc.SplitResult(v)
	if err != nil {
		return nil, wrap(err)
	}
	if failure != nil {
		if pinning && failure[0] == CodeHostIsSlave && resp.TLS != nil {
			c.pinMaster(resp.Header.Get(thumbprintResponseHeader))
		}
		return nil, wrap(&Failure{Code: failure[0], Params: failure[1:]})
	}
	return val, nil
}

func (c *Client) pinning() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pins != nil
}

// pinMaster pins the master's certificate fingerprint that a pinned (so
// trusted) member reported with HOST_IS_SLAVE.
func (c *Client) pinMaster(fp string) {
	if fp == "" {
		return
	}
	pin, err := parseFingerprint(fp)
	if err != nil {
		c.log.Warn("xenapi: pool member sent a bad master certificate fingerprint", "value", fp)
		return
	}
	c.mu.Lock()
	c.pins[pin] = true
	c.mu.Unlock()
	c.log.Info("xenapi: pinned the pool master's certificate as reported by a pinned member", "fingerprint", fp)
}
