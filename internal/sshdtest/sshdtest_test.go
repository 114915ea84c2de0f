package sshdtest

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// dial logs in as the server's user with its key, checking the host key
// against its known_hosts file.
func dial(t *testing.T, s *Server) *ssh.Client {
	t.Helper()
	c, err := dialWith(t, s, s.UserKey)
	if err != nil {
		t.Fatalf("dial %s: %v\n%s", s.Addr, err, s.Log())
	}
	return c
}

// dialWith logs in as the server's user with the key in keyFile.
func dialWith(t *testing.T, s *Server, keyFile string) (*ssh.Client, error) {
	t.Helper()
	pem, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(pem)
	if err != nil {
		t.Fatal(err)
	}
	check, err := knownhosts.New(s.KnownHosts)
	if err != nil {
		t.Fatal(err)
	}
	return ssh.Dial("tcp", s.Addr, &ssh.ClientConfig{User: s.User, Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: check, Timeout: 10 * time.Second})
}

// TestStart: the server listens on 127.0.0.1, accepts the user's key, is
// the host its known_hosts names, runs commands and serves SFTP; when the
// test ends its process group is gone.
func TestStart(t *testing.T) {
	var pid int
	t.Run("serve", func(t *testing.T) {
		s := Start(t)
		pid = s.Pid()
		if !strings.HasPrefix(s.Addr, "127.0.0.1:") {
			t.Fatalf("Addr %q", s.Addr)
		}
		c := dial(t, s)
		defer c.Close()
		sess, err := c.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		out, err := sess.Output("echo ok")
		sess.Close()
		if err != nil || string(out) != "ok\n" {
			t.Fatalf("echo: %q, %v", out, err)
		}
		sftp, err := c.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		defer sftp.Close()
		if err := sftp.RequestSubsystem("sftp"); err != nil {
			t.Fatalf("sftp subsystem: %v", err)
		}
	})
	if pid == 0 {
		t.Skip("sshd did not start")
	}
	deadline := time.Now().Add(10 * time.Second)
	for syscall.Kill(-pid, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("sshd's process group %d survived the test", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := syscall.Kill(-pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("process group %d: %v", pid, err)
	}
}

// TestUnknownKeyRefused: a key the server does not list is refused.
func TestUnknownKeyRefused(t *testing.T) {
	s := Start(t)
	_, other, _ := ed25519Key()
	file := s.Dir + "/other"
	WriteKey(t, file, other, "")
	_, err := dialWith(t, s, file)
	if err == nil || !strings.Contains(err.Error(), "unable to authenticate") {
		t.Fatalf("got %v, want the key refused", err)
	}
}

func ed25519Key() (ed25519.PublicKey, ed25519.PrivateKey, error) {
	return ed25519.GenerateKey(rand.Reader)
}
