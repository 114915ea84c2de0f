package dom0

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
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
	return startInProcessServerLimits(t, password, userKey, nil)
}

// startInProcessServerLimits starts an in-process server whose SFTP
// sessions, when lim is set, list limits@openssh.com and answer it with lim
// (pkg/sftp's server does not know the extension).
func startInProcessServerLimits(t *testing.T, password string, userKey ssh.PublicKey, lim *sftpLimits) *inProcessServer {
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
			go serveConn(c, cfg, lim)
		}
	}()
	return s
}

func serveConn(c net.Conn, cfg *ssh.ServerConfig, lim *sftpLimits) {
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
					serveSFTP(ch, lim)
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

// serveSFTP runs pkg/sftp's server on ch. With lim set, it first answers
// INIT itself with a VERSION listing limits@openssh.com, and a request for
// the limits with lim; any other first request goes, after a fresh INIT, to
// pkg/sftp's server, whose own VERSION is dropped.
func serveSFTP(ch io.ReadWriteCloser, lim *sftpLimits) {
	var rw io.ReadWriteCloser = ch
	var opts []sftp.ServerOption
	if lim != nil {
		// Reads as large as OpenSSH's, whatever the lie about limits.
		opts = append(opts, sftp.WithMaxTxPacket(256<<10))
		if _, _, err := readSFTPPacket(ch); err != nil { // INIT
			return
		}
		if _, err := ch.Write(versionMsg(limitsExtension)); err != nil {
			return
		}
		typ, body, err := readSFTPPacket(ch)
		if err != nil {
			return
		}
		if typ == sshFxpExtended && bytes.Contains(body, []byte(limitsExtension)) {
			id := binary.BigEndian.Uint32(body)
			ch.Write(limitsReply(id, lim.MaxPacket, lim.MaxRead, lim.MaxWrite, lim.MaxHandles))
			return
		}
		in := io.MultiReader(bytes.NewReader(sftpPacket(sshFxpInit, binary.BigEndian.AppendUint32(nil, 3))),
			bytes.NewReader(sftpPacket(typ, body)), ch)
		rw = struct {
			io.Reader
			io.WriteCloser
		}{in, &dropFirstPacket{w: ch}}
	}
	srv, err := sftp.NewServer(rw, opts...)
	if err == nil {
		srv.Serve()
		srv.Close()
	}
}

// dropFirstPacket discards the first SFTP message written through it.
type dropFirstPacket struct {
	w    io.WriteCloser
	head []byte // the first message's length, as it comes
	left int64  // bytes of the first message still to drop; -1 once dropped
}

func (d *dropFirstPacket) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 && d.left >= 0 {
		if len(d.head) < 4 {
			k := min(4-len(d.head), len(p))
			d.head = append(d.head, p[:k]...)
			p = p[k:]
			if len(d.head) == 4 {
				d.left = int64(binary.BigEndian.Uint32(d.head))
			}
			continue
		}
		k := min(d.left, int64(len(p)))
		p, d.left = p[k:], d.left-k
		if d.left == 0 {
			d.left = -1
		}
	}
	if len(p) > 0 {
		if _, err := d.w.Write(p); err != nil {
			return 0, err
		}
	}
	return n, nil
}

func (d *dropFirstPacket) Close() error { return d.w.Close() }
