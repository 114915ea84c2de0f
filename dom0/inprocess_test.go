package dom0

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// inProcessServer is an x/crypto/ssh server with pkg/sftp's server behind
// the "sftp" subsystem, for what a real sshd cannot easily be made to do in
// a test (password logins without system accounts).
type inProcessServer struct {
	addr       string
	knownHosts string
	mu         sync.Mutex
	logins     []string // methods that succeeded
}

func startInProcessServer(t *testing.T, password string, userKey ssh.PublicKey) *inProcessServer {
	t.Helper()
	_, hostPriv, _ := ed25519.GenerateKey(rand.Reader)
	hostSigner, _ := ssh.NewSignerFromKey(hostPriv)
	s := &inProcessServer{}
	cfg := &ssh.ServerConfig{
		PasswordCallback: func(c ssh.ConnMetadata, pw []byte) (*ssh.Permissions, error) {
			if password != "" && string(pw) == password {
				s.mu.Lock()
				s.logins = append(s.logins, "password")
				s.mu.Unlock()
				return nil, nil
			}
			return nil, errors.New("denied")
		},
		PublicKeyCallback: func(c ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
			if userKey != nil && bytes.Equal(k.Marshal(), userKey.Marshal()) {
				s.mu.Lock()
				s.logins = append(s.logins, "publickey")
				s.mu.Unlock()
				return nil, nil
			}
			return nil, errors.New("denied")
		},
	}
	cfg.AddHostKey(hostSigner)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	s.addr = l.Addr().String()
	s.knownHosts = knownHostsFor(t, s.addr, hostSigner.PublicKey())
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go serveConn(c, cfg)
		}
	}()
	return s
}

func serveConn(c net.Conn, cfg *ssh.ServerConfig) {
	defer c.Close()
	_, chans, reqs, err := ssh.NewServerConn(c, cfg)
	if err != nil {
		return
	}
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			nc.Reject(ssh.UnknownChannelType, "no")
			continue
		}
		ch, creqs, err := nc.Accept()
		if err != nil {
			return
		}
		go func() {
			for r := range creqs {
				ok := r.Type == "subsystem" && len(r.Payload) > 4 && string(r.Payload[4:]) == "sftp"
				r.Reply(ok, nil)
				if ok {
					srv, err := sftp.NewServer(ch)
					if err == nil {
						srv.Serve()
						srv.Close()
					}
					ch.Close()
				}
			}
		}()
	}
}

func (s *inProcessServer) Logins() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.logins...)
}

func TestDialSSHPassword(t *testing.T) {
	const pw = "s3cret-pw"
	s := startInProcessServer(t, pw, nil)
	ctx := context.Background()
	h, err := DialSSH(ctx, s.addr, &SSHConfig{User: "root", KnownHostsFiles: []string{s.knownHosts}, Password: pw})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	f := filepath.Join(t.TempDir(), "x")
	os.WriteFile(f, []byte("data"), 0o644)
	if fi, err := h.Stat(f); err != nil || fi.Size() != 4 {
		t.Fatalf("stat over the session: %v %v", fi, err)
	}
	_, err = DialSSH(ctx, s.addr, &SSHConfig{User: "root", KnownHostsFiles: []string{s.knownHosts}, Password: "wrong-pw-value"})
	var ae *AuthError
	if !errors.As(err, &ae) {
		t.Fatalf("wrong password: %v, want *AuthError", err)
	}
	if bytes.Contains([]byte(err.Error()), []byte("wrong-pw-value")) {
		t.Fatal("password in the error")
	}
}

func TestDialSSHAgent(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, _ := ssh.NewSignerFromKey(priv)
	s := startInProcessServer(t, "", signer.PublicKey())

	keyring := agent.NewKeyring()
	if err := keyring.Add(agent.AddedKey{PrivateKey: priv}); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "agent.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); agent.ServeAgent(keyring, c) }()
		}
	}()
	t.Setenv("SSH_AUTH_SOCK", sock)
	h, err := DialSSH(context.Background(), s.addr, &SSHConfig{User: "root", KnownHostsFiles: []string{s.knownHosts}, UseAgent: true})
	if err != nil {
		t.Fatal(err)
	}
	h.Close()
	if got := s.Logins(); len(got) != 1 || got[0] != "publickey" {
		t.Fatalf("logins %v", got)
	}
	t.Setenv("SSH_AUTH_SOCK", "")
	if _, err := DialSSH(context.Background(), s.addr, &SSHConfig{User: "root", KnownHostsFiles: []string{s.knownHosts}, UseAgent: true}); err == nil {
		t.Fatal("UseAgent without SSH_AUTH_SOCK accepted")
	}
}
