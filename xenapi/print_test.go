package xenapi

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// loggedInClient returns a client logged in with a password that must
// never be shown, through a URL that carries another one.
func loggedInClient(t *testing.T) (c *Client, secrets []string) {
	t.Helper()
	f := newFakeXapi(t)
	f.pass = "pool-root-password"
	c, err := NewClient(strings.Replace(f.srv.URL, "http://", "http://root:url-password@", 1))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login(bg(), "root", f.pass, "x"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(bg()) })
	return c, []string{f.pass, "url-password", string(c.Session())}
}

func TestClientPrintsRedacted(t *testing.T) {
	c, secrets := loggedInClient(t)
	type holder struct{ Client *Client }
	for _, format := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d", "%10.3v"} {
		for _, arg := range []any{c, holder{c}, []*Client{c}} {
			out := fmt.Sprintf(format, arg)
			for _, s := range secrets {
				if strings.Contains(out, s) {
					t.Errorf("%s of %T shows %q: %s", format, arg, s, out)
				}
			}
			if !strings.Contains(out, "REDACTED") && format != "%x" && format != "%d" {
				t.Errorf("%s of %T: %s", format, arg, out)
			}
		}
	}
	if got := fmt.Sprint((*Client)(nil)); got != "xenapi.Client(nil)" {
		t.Errorf("nil client prints %q", got)
	}
}

func TestClientLogsRedacted(t *testing.T) {
	c, secrets := loggedInClient(t)
	handlers := map[string]func(*bytes.Buffer) slog.Handler{
		"text": func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
		"json": func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
	}
	for name, newHandler := range handlers {
		var buf bytes.Buffer
		l := slog.New(newHandler(&buf))
		l.Info("client", "c", c)
		l.Info("client", slog.Any("c", c))
		l.With("c", c).Info("with")
		l.Info("group", slog.Group("g", "c", c))
		out := buf.String()
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("%s handler shows %q:\n%s", name, s, out)
			}
		}
		if strings.Count(out, "REDACTED") < 8 || !strings.Contains(out, "root") {
			t.Errorf("%s handler:\n%s", name, out)
		}
	}
}
