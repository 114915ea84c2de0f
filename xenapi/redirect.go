package xenapi

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// RedirectError reports a redirect the client refused to follow: a
// HOST_IS_SLAVE master address, or the Location of an HTTP redirect from
// one of xapi's HTTP handlers, that is not a plain host or host:port
// reached with the client's own scheme. Following such an answer would
// send the credentials or the session somewhere the client was not told
// to trust (an https client sent to http:// would give the password away
// in clear text).
type RedirectError struct {
	From   string // the URL that answered, with any password masked
	Target string // what the server named, clipped
	Reason string // why it was refused
	Err    error  // the HOST_IS_SLAVE *Failure; nil for an HTTP redirect
}

// Error implements error.
func (e *RedirectError) Error() string {
	return fmt.Sprintf("xenapi: refusing to follow %s to %q: %s", e.From, e.Target, e.Reason)
}

// Unwrap returns the HOST_IS_SLAVE failure, if any.
func (e *RedirectError) Unwrap() error { return e.Err }

// redirectHost returns the host[:port] that target names for a client at
// cur, or why target is refused. target is what xapi sends: a bare host
// or IP address (the client's port is kept), a host:port or [v6]:port,
// or, from an HTTP redirect, a URL; a URL must have cur's scheme and no
// user information, and only its host and port are taken.
func redirectHost(cur *url.URL, target string) (host, reason string) {
	target = strings.TrimSpace(target)
	if target == "" {
		return "", "no address"
	}
	if strings.Contains(target, "://") {
		u, err := url.Parse(target)
		switch {
		case err != nil:
			return "", "not a URL"
		case !strings.EqualFold(u.Scheme, cur.Scheme):
			return "", fmt.Sprintf("it changes the scheme from %s to %s", cur.Scheme, strings.ToLower(u.Scheme))
		case u.User != nil:
			return "", "it carries user information"
		case u.Host == "":
			return "", "it names no host"
		}
		return checkHostPort(u.Host, "")
	}
	return checkHostPort(target, cur.Port())
}

// checkHostPort validates a host, [v6], v6, host:port or [v6]:port and
// returns it in URL form, adding defaultPort (if any) when none is given.
func checkHostPort(s, defaultPort string) (hostport, reason string) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		host, port = strings.Trim(s, "[]"), defaultPort
	} else if !validPort(port) {
		return "", "bad port"
	}
	if !validHost(host) {
		return "", "not a host name or IP address"
	}
	if port == "" {
		if strings.Contains(host, ":") {
			return "[" + host + "]", ""
		}
		return host, ""
	}
	return net.JoinHostPort(host, port), ""
}

// validPort reports whether p is a decimal port number, 1 to 65535, in
// digits only (strconv.Atoi would take "+1").
func validPort(p string) bool {
	if p == "" || len(p) > 5 || strings.Trim(p, "0123456789") != "" {
		return false
	}
	n, err := strconv.Atoi(p)
	return err == nil && n >= 1 && n <= 65535
}

// validHost reports whether h is an IP address or a DNS name: letters,
// digits, '-', '_' and '.', nothing that could smuggle a path, a query or
// user information into a URL.
func validHost(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	if strings.Contains(h, ":") {
		return net.ParseIP(h) != nil
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// withHost returns a copy of u pointing at host. User information is
// dropped when the host changes: it was given for u's host only.
func withHost(u *url.URL, host string) *url.URL {
	nu := *u
	if !strings.EqualFold(host, u.Host) {
		nu.User = nil
	}
	nu.Host = host
	return &nu
}
