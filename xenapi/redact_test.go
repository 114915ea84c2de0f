package xenapi

import (
	"bytes"
	"log/slog"
	"net"
	"strings"
	"testing"
)

// TestURLPasswordNeverShown checks that a password given in the URL
// (https://user:password@host) appears in no error, log line or URL()
// result.
func TestURLPasswordNeverShown(t *testing.T) {
	const pw = "s3cr3t-in-url"
	for _, raw := range []string{
		"ftp://root:" + pw + "@10.0.0.1/",
		"http://root:" + pw + "@/",
		"http://root:" + pw + "@10.0.0.1:bad/",
	} {
		_, err := NewClient(raw)
		if err == nil || strings.Contains(err.Error(), pw) {
			t.Errorf("NewClient(%q): %v", raw, err)
		}
	}

	// A port nothing listens on: the call fails in the transport.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	var logs bytes.Buffer
	c, err := NewClient("http://root:"+pw+"@"+addr+"/",
		WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	if err != nil {
		t.Fatal(err)
	}
	err = c.Login(bg(), "root", "other", "test")
	if err == nil {
		t.Fatal("login to a closed port succeeded")
	}
	if strings.Contains(err.Error(), pw) {
		t.Errorf("error shows the URL's password: %v", err)
	}
	if strings.Contains(c.URL(), pw) {
		t.Errorf("URL() shows the password: %s", c.URL())
	}

	// A member that redirects to the master: the log line names both URLs.
	f := newFakeXapi(t)
	f.slaveOf = "127.0.0.2" // another loopback address: the follow-up fails, which is fine here
	member := strings.Replace(f.srv.URL, "http://", "http://root:"+pw+"@", 1)
	c, err = NewClient(member, WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	if err != nil {
		t.Fatal(err)
	}
	_ = c.Login(bg(), "root", "secret", "test")
	if !strings.Contains(logs.String(), "following to the master") {
		t.Fatalf("no redirect logged: %s", logs.String())
	}
	if strings.Contains(logs.String(), pw) {
		t.Errorf("log shows the URL's password:\n%s", logs.String())
	}
}
