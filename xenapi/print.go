package xenapi

import (
	"fmt"
	"log/slog"
	"strconv"
)

// redacted stands for the password and the session reference wherever a
// Client is printed or logged.
const redacted = "REDACTED"

// String describes the client (its URL with any password in it masked,
// the user name) with the password and the session reference redacted.
func (c *Client) String() string {
	if c == nil {
		return "xenapi.Client(nil)"
	}
	url, user, pw, session := c.shown()
	return fmt.Sprintf("xenapi.Client{URL: %s, User: %s, Password: %s, Session: %s}", url, user, pw, session)
}

// Format makes every verb (%v, %+v, %#v, %s, %q, ...) print String, so
// that neither the password nor the session reference leaks through fmt.
func (c *Client) Format(f fmt.State, verb rune) {
	if verb == 'q' {
		fmt.Fprint(f, strconv.Quote(c.String()))
		return
	}
	fmt.Fprint(f, c.String())
}

// LogValue logs the client as a group (url, user, password, session) with
// the password and the session reference redacted.
func (c *Client) LogValue() slog.Value {
	if c == nil {
		return slog.StringValue("xenapi.Client(nil)")
	}
	url, user, pw, session := c.shown()
	return slog.GroupValue(slog.String("url", url), slog.String("user", user),
		slog.String("password", pw), slog.String("session", session))
}

// shown returns what may be shown of the client: the URL with any
// password masked, the user, and the password and session as REDACTED
// (or "" when unset).
func (c *Client) shown() (url, user, password, session string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	mask := func(s string) string {
		if s == "" {
			return ""
		}
		return redacted
	}
	return c.url.Redacted(), c.user, mask(c.password), mask(string(c.session))
}
