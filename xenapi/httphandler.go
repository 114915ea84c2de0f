package xenapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
)

// HTTPRequest is a request to one of xapi's HTTP handlers.
type HTTPRequest struct {
	Method        string     // http.MethodGet or http.MethodPut
	Path          string     // e.g. "/export_raw_vdi"
	Query         url.Values // the client adds session_id
	Body          io.Reader  // PUT only
	ContentLength int64      // required (>= 0) when Body is set: xapi's VHD import refuses chunked bodies
	Host          string     // optional host or host:port of a pool member; "" means the master
}

// maxHTTPRedirects is how many 302s DoHTTP follows: xapi sends at most
// one, from the host asked to the one that sees the SR.
const maxHTTPRedirects = 3

// ErrBadHTTPRequest is wrapped by DoHTTP's error for a request it refuses
// to send: a method other than GET or PUT, a path that is not absolute, a
// body without a length, a bad Host.
var ErrBadHTTPRequest = errors.New("xenapi: bad HTTP handler request")

// DoHTTP sends req to the pool with the client's session (logging in again when
// the session expired, as calls do) and TLS policy. It follows up to a few 302
// redirects to a member of the pool (xapi redirects to a host that sees the SR):
// same scheme, host[:port] only, no userinfo. A PUT's body is sent only after
// the server accepts the headers (Expect: 100-continue), so a redirect costs no
// body. A status other than 2xx is an *HTTPError{Method, Path, Status, Body
// (first few hundred bytes)}; the caller closes resp.Body.
//
// xapi answers a session it does not know with 401; DoHTTP then logs in
// again and repeats the request once, provided no byte of the body was
// sent. A redirect after the body was sent (the server did not wait for
// 100-continue) cannot be followed, as the body cannot be read again.
// Errors never show the session id.
func (c *Client) DoHTTP(ctx context.Context, req HTTPRequest) (*http.Response, error) {
	u, err := c.handlerURL(req)
	if err != nil {
		return nil, err
	}
	body := &countingReader{r: req.Body}
	relogged, hops := false, 0
	for {
		session := c.Session()
		if session == "" {
			return nil, fmt.Errorf("xenapi: %s %s: %w", req.Method, req.Path, ErrNotLoggedIn)
		}
		hreq, resp, err := c.sendHTTP(ctx, req, u, session, body)
		if err != nil {
			return nil, err
		}
		switch code := resp.StatusCode; {
		case code >= 200 && code < 300:
			return resp, nil
		case isRedirect(code) && hops < maxHTTPRedirects:
			hops++
			u, err = c.followHTTP(u, resp, body)
			if err != nil {
				return nil, err
			}
		case code == http.StatusUnauthorized && !relogged && !body.sent():
			relogged = true
			discard(resp)
			if err := c.relogin(ctx, session); err != nil {
				return nil, fmt.Errorf("xenapi: %s %s: session refused, logging in again failed: %w", req.Method, req.Path, err)
			}
		default:
			he := newHTTPError(hreq, resp)
			resp.Body.Close()
			return nil, he
		}
	}
}

// handlerURL checks req and returns the URL it goes to, without the
// session.
func (c *Client) handlerURL(req HTTPRequest) (*url.URL, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s %q: %s", ErrBadHTTPRequest, req.Method, req.Path, fmt.Sprintf(format, args...))
	}
	switch {
	case req.Method != http.MethodGet && req.Method != http.MethodPut:
		return nil, bad("method must be GET or PUT")
	case !strings.HasPrefix(req.Path, "/") || strings.ContainsAny(req.Path, "?#"):
		return nil, bad("path must be absolute, without query")
	case req.Body != nil && req.Method != http.MethodPut:
		return nil, bad("only a PUT has a body")
	case req.Body != nil && req.ContentLength < 0:
		return nil, bad("a body needs its ContentLength")
	case req.Body == nil && req.ContentLength != 0:
		return nil, bad("a ContentLength without a body")
	}
	c.mu.Lock()
	u := *c.url
	c.mu.Unlock()
	u.User = nil // the session authenticates
	if req.Host != "" {
		host, reason := checkHostPort(req.Host, u.Port())
		if reason != "" {
			return nil, bad("Host %q: %s", clipString(req.Host), reason)
		}
		u.Host = host
	}
	u.Path, u.RawPath, u.RawQuery, u.Fragment = req.Path, "", "", ""
	return &u, nil
}

// sendHTTP sends one attempt of req to u with session.
func (c *Client) sendHTTP(ctx context.Context, req HTTPRequest, u *url.URL, session SessionRef, body *countingReader) (*http.Request, *http.Response, error) {
	q := make(url.Values, len(req.Query)+1)
	for k, v := range req.Query {
		q[k] = append([]string(nil), v...)
	}
	q.Set("session_id", string(session))
	target := *u
	target.RawQuery = q.Encode()

	hreq, err := http.NewRequestWithContext(ctx, req.Method, target.String(), nil)
	if err != nil {
		return nil, nil, fmt.Errorf("xenapi: %s %s: %w", req.Method, req.Path, ErrBadHTTPRequest)
	}
	hreq.Header.Set("User-Agent", "xenflow-xenapi")
	if req.Body != nil {
		hreq.ContentLength = req.ContentLength
		hreq.Body = http.NoBody
		if req.ContentLength > 0 {
			hreq.Body = io.NopCloser(body)
			hreq.Header.Set("Expect", "100-continue")
		}
	}
	resp, err := c.hc.Do(hreq)
	if err != nil {
		// *url.Error repeats the URL, session_id and all: keep its cause only.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, nil, fmt.Errorf("xenapi: %s %s at %s: %w", req.Method, req.Path, shownURL(u), err)
	}
	return hreq, resp, nil
}

// followHTTP returns where a redirect response sends the request: u with
// the host of its Location, which must keep u's scheme.
func (c *Client) followHTTP(u *url.URL, resp *http.Response, body *countingReader) (*url.URL, error) {
	loc := resp.Header.Get("Location")
	discard(resp)
	host, reason := redirectHost(u, loc)
	if reason == "" && body.sent() {
		reason = "the body was already sent"
	}
	if reason != "" {
		return nil, &RedirectError{From: shownURL(u), Target: clipString(redactQuery(loc)), Reason: reason}
	}
	nu := withHost(u, host)
	c.log.Info("xenapi: following an HTTP redirect to another pool member", "from", shownURL(u), "to", shownURL(nu))
	return nu, nil
}

func isRedirect(code int) bool {
	switch code {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return true
	}
	return false
}

// discard reads a little of an unwanted response, so that its connection
// can be reused, and closes it.
func discard(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
}

// shownURL is u without user information, query or fragment: what errors
// and logs may show.
func shownURL(u *url.URL) string {
	s := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}
	return s.String()
}

// redactQuery drops the query (which may hold a session_id) from a URL a
// server sent.
func redactQuery(s string) string {
	if i := strings.IndexAny(s, "?#"); i >= 0 {
		return s[:i] + "?…"
	}
	return s
}

// countingReader counts the bytes read through it: once any were sent, a
// request cannot be repeated.
// The transport reads it on its own goroutine, hence the atomic count.
type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (cr *countingReader) Read(p []byte) (int, error) {
	n, err := cr.r.Read(p)
	cr.n.Add(int64(n))
	return n, err
}

// sent reports whether any byte of the body was read.
func (cr *countingReader) sent() bool { return cr.n.Load() > 0 }
