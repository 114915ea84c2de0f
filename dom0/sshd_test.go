package dom0

import (
	"context"
	"testing"
	"time"

	"github.com/xenflow/xenflow/internal/sshdtest"
)

// testSSHD is a real OpenSSH sshd started by a test (internal/sshdtest),
// with the dom0 client configuration that reaches it.
type testSSHD struct {
	*sshdtest.Server
}

// startSSHD starts sshd for the test.
func startSSHD(t testing.TB) *testSSHD {
	t.Helper()
	return &testSSHD{Server: sshdtest.Start(t)}
}

// writeKey writes an OpenSSH private key file and returns its public key.
var writeKey = sshdtest.WriteKey

// Config returns a client configuration that trusts the server's keys and
// logs in with the user key.
func (s *testSSHD) Config() *SSHConfig {
	return &SSHConfig{
		User:            s.User,
		KnownHostsFiles: []string{s.KnownHosts},
		KeyFiles:        []KeyFile{{Path: s.UserKey}},
	}
}

// Dial connects with Config and closes the host when the test ends.
func (s *testSSHD) Dial(t testing.TB) *SSHHost {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	h, err := DialSSH(ctx, s.Addr, s.Config())
	if err != nil {
		t.Fatalf("dial %s: %v\nsshd log:\n%s", s.Addr, err, s.Log())
	}
	t.Cleanup(func() { h.Close() })
	return h
}
