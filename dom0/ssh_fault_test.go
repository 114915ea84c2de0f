package dom0

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// proxy forwards TCP connections to a target, after a delay if it has one,
// and can cut them (close both ends) or freeze them (stop forwarding, keep
// them open; not with a delay).
type proxy struct {
	l      net.Listener
	target string
	delay  time.Duration
	mu     sync.Mutex
	conns  []net.Conn
	frozen bool
}

// newProxy starts a proxy to target on 127.0.0.1 that delivers every byte
// delay after it arrived; it stops when the test ends.
func newProxy(t testing.TB, target string, delay time.Duration) *proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{l: l, target: target, delay: delay}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			go p.pipe(c, u)
			go p.pipe(u, c)
		}
	}()
	t.Cleanup(func() { l.Close(); p.Cut() })
	return p
}

func (p *proxy) pipe(dst, src net.Conn) {
	if p.delay > 0 {
		p.delayedPipe(dst, src)
		return
	}
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		for {
			p.mu.Lock()
			f := p.frozen
			p.mu.Unlock()
			if !f {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			dst.Close()
			return
		}
	}
}

func (p *proxy) Addr() string { return p.l.Addr().String() }

// Cut closes every forwarded connection.
func (p *proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
	p.frozen = false
}

// Freeze stops forwarding without closing: a peer that vanished.
func (p *proxy) Freeze() {
	p.mu.Lock()
	p.frozen = true
	p.mu.Unlock()
}

func knownHostsFor(t *testing.T, addr string, keys ...ssh.PublicKey) string {
	return knownHostsForTB(t, addr, keys...)
}

func knownHostsForTB(t testing.TB, addr string, keys ...ssh.PublicKey) string {
	t.Helper()
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(knownhosts.Line([]string{knownhosts.Normalize(addr)}, k) + "\n")
	}
	f := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(f, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestDialSSHHostKeys(t *testing.T) {
	s := startSSHD(t)
	ctx := context.Background()
	_, otherPriv, _ := ed25519.GenerateKey(rand.Reader)
	otherSigner, _ := ssh.NewSignerFromKey(otherPriv)
	other := otherSigner.PublicKey()

	t.Run("each recorded key type is enough", func(t *testing.T) {
		// The server prefers ed25519; a known_hosts with only its ECDSA
		// key must still work, because we ask for the types recorded.
		for _, k := range s.HostKeys {
			cfg := s.Config()
			cfg.KnownHostsFiles = []string{knownHostsFor(t, s.Addr, k)}
			h, err := DialSSH(ctx, s.Addr, cfg)
			if err != nil {
				t.Fatalf("known key %s: %v", k.Type(), err)
			}
			h.Close()
		}
	})
	t.Run("changed key refused", func(t *testing.T) {
		cfg := s.Config()
		cfg.KnownHostsFiles = []string{knownHostsFor(t, s.Addr, other)}
		_, err := DialSSH(ctx, s.Addr, cfg)
		var he *HostKeyError
		if !errors.As(err, &he) || he.Unknown || len(he.Known) != 1 {
			t.Fatalf("got %v, want a *HostKeyError for a changed key", err)
		}
		if !strings.Contains(err.Error(), "does not match known_hosts") {
			t.Errorf("message does not say why: %v", err)
		}
		var ke *knownhosts.KeyError
		if !errors.As(err, &ke) {
			t.Error("knownhosts.KeyError not reachable with errors.As")
		}
	})
	t.Run("unknown host refused", func(t *testing.T) {
		cfg := s.Config()
		cfg.KnownHostsFiles = []string{knownHostsFor(t, "127.0.0.1:1", s.HostKeys...)}
		_, err := DialSSH(ctx, s.Addr, cfg)
		var he *HostKeyError
		if !errors.As(err, &he) || !he.Unknown || !strings.Contains(err.Error(), "not in known_hosts") {
			t.Fatalf("got %v, want a *HostKeyError for an unknown host", err)
		}
	})
	t.Run("no key of a known type refused", func(t *testing.T) {
		// known_hosts records only a P-384 key; the server has ed25519
		// and P-256 keys.
		p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		k, _ := ssh.NewPublicKey(&p384.PublicKey)
		cfg := s.Config()
		cfg.KnownHostsFiles = []string{knownHostsFor(t, s.Addr, k)}
		_, err := DialSSH(ctx, s.Addr, cfg)
		var he *HostKeyError
		if !errors.As(err, &he) || !he.NoKnownType || len(he.Known) != 1 {
			t.Fatalf("got %v, want a *HostKeyError for a host without a key of the known type", err)
		}
		for _, want := range []string{"no host key of a type known_hosts records", ssh.KeyAlgoECDSA384, ssh.KeyAlgoED25519} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("message %q does not say %q", err, want)
			}
		}
	})
	t.Run("revoked key refused", func(t *testing.T) {
		f := knownHostsFor(t, s.Addr, s.HostKeys...)
		b, _ := os.ReadFile(f)
		revoked := "@revoked " + knownhosts.Line([]string{knownhosts.Normalize(s.Addr)}, s.HostKeys[0]) + "\n"
		os.WriteFile(f, append([]byte(revoked), b...), 0o600)
		cfg := s.Config()
		cfg.KnownHostsFiles = []string{f}
		_, err := DialSSH(ctx, s.Addr, cfg)
		var he *HostKeyError
		var re *knownhosts.RevokedError
		if !errors.As(err, &he) || !he.Revoked || !errors.As(err, &re) {
			t.Fatalf("got %v, want a *HostKeyError for a revoked key", err)
		}
		if msg := err.Error(); !strings.Contains(msg, "@revoked") || !strings.Contains(msg, f+":1") || strings.Contains(msg, "()") {
			t.Errorf("message does not say which key was revoked where: %v", err)
		}
	})
	t.Run("InsecureIgnoreHostKey accepts", func(t *testing.T) {
		cfg := s.Config()
		cfg.KnownHostsFiles = []string{knownHostsFor(t, s.Addr, other)}
		cfg.InsecureIgnoreHostKey = true
		h, err := DialSSH(ctx, s.Addr, cfg)
		if err != nil {
			t.Fatal(err)
		}
		h.Close()
	})
}

func TestDialSSHAuth(t *testing.T) {
	s := startSSHD(t)
	ctx := context.Background()
	dir := t.TempDir()
	_, wrong, _ := ed25519.GenerateKey(rand.Reader)
	writeKey(t, filepath.Join(dir, "wrong"), wrong, "")

	t.Run("refused", func(t *testing.T) {
		cfg := s.Config()
		cfg.KeyFiles = []KeyFile{{Path: filepath.Join(dir, "wrong")}}
		_, err := DialSSH(ctx, s.Addr, cfg)
		var ae *AuthError
		if !errors.As(err, &ae) || ae.User != s.User {
			t.Fatalf("got %v, want *AuthError", err)
		}
	})
	t.Run("encrypted key with passphrase", func(t *testing.T) {
		pem, _ := os.ReadFile(s.UserKey)
		signer, err := ssh.ParseRawPrivateKey(pem)
		if err != nil {
			t.Fatal(err)
		}
		enc := filepath.Join(dir, "enc")
		writeKey(t, enc, signer, "correct horse")
		cfg := s.Config()
		cfg.KeyFiles = []KeyFile{{Path: enc, Passphrase: "correct horse"}}
		h, err := DialSSH(ctx, s.Addr, cfg)
		if err != nil {
			t.Fatal(err)
		}
		h.Close()
		cfg.KeyFiles = []KeyFile{{Path: enc, Passphrase: "battery staple"}}
		_, err = DialSSH(ctx, s.Addr, cfg)
		if err == nil || strings.Contains(err.Error(), "battery") || strings.Contains(err.Error(), "staple") {
			t.Fatalf("wrong passphrase: %v", err)
		}
		cfg.KeyFiles = []KeyFile{{Path: enc}}
		if _, err = DialSSH(ctx, s.Addr, cfg); err == nil || !strings.Contains(err.Error(), "no passphrase") {
			t.Fatalf("missing passphrase: %v", err)
		}
	})
	t.Run("handshake bounded by context", func(t *testing.T) {
		// A server that accepts TCP and never speaks.
		l, err := net.Listen("tcp", "127.0.0.1:0")
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
				defer c.Close()
			}
		}()
		cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err = DialSSH(cctx, l.Addr().String(), s.Config())
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
			t.Fatalf("got %v after %v", err, time.Since(start))
		}
	})
}

func TestNoSecretInErrorsOrLogs(t *testing.T) {
	s := startSSHD(t)
	ctx := context.Background()
	const password = "Pa55-w0rd-never-shown"
	const passphrase = "passphrase-never-shown"
	var logBuf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	pem, _ := os.ReadFile(s.UserKey)
	raw, _ := ssh.ParseRawPrivateKey(pem)
	enc := filepath.Join(t.TempDir(), "enc")
	writeKey(t, enc, raw, passphrase)
	encPEM, _ := os.ReadFile(enc)

	cfg := s.Config()
	cfg.Password = password
	cfg.KeyFiles = []KeyFile{{Path: enc, Passphrase: "wrong-" + passphrase}}
	cfg.Logger = logger
	var texts []string
	if _, err := DialSSH(ctx, s.Addr, cfg); err != nil {
		texts = append(texts, err.Error())
	} else {
		t.Fatal("wrong passphrase accepted")
	}
	cfg.KeyFiles = []KeyFile{{Path: filepath.Join(t.TempDir(), "wrong")}}
	_, wrong, _ := ed25519.GenerateKey(rand.Reader)
	writeKey(t, cfg.KeyFiles[0].Path, wrong, "")
	if _, err := DialSSH(ctx, s.Addr, cfg); err != nil { // password auth is off on this server
		texts = append(texts, err.Error())
	} else {
		t.Fatal("wrong key accepted")
	}
	logger.Info("config", "cfg", cfg, "password", cfg.Password)
	texts = append(texts, logBuf.String(), cfg.String())
	for _, v := range []any{cfg, *cfg, cfg.Password, KeyFile{Path: "k", Passphrase: passphrase}} {
		for _, f := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
			texts = append(texts, sprintf(f, v))
		}
	}
	keyBody := string(encPEM[40:80])
	for _, txt := range texts {
		for _, secret := range []string{password, passphrase, keyBody, "Pa55"} {
			if strings.Contains(txt, secret) {
				t.Errorf("secret %q leaked in %q", secret, txt)
			}
		}
	}
}

func TestKeepaliveDetectsDeadConnection(t *testing.T) {
	s := startSSHD(t)
	p := newProxy(t, s.Addr, 0)
	cfg := s.Config()
	cfg.KnownHostsFiles = []string{knownHostsFor(t, p.Addr(), s.HostKeys...)}
	cfg.KeepaliveInterval = 100 * time.Millisecond
	cfg.KeepaliveCountMax = 2
	h, err := DialSSH(context.Background(), p.Addr(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	time.Sleep(400 * time.Millisecond)
	if err := h.Err(); err != nil {
		t.Fatalf("live connection declared dead: %v", err)
	}
	p.Freeze()
	deadline := time.Now().Add(5 * time.Second)
	for h.Err() == nil && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if !errors.Is(h.Err(), ErrConnectionLost) {
		t.Fatalf("frozen connection not detected: %v", h.Err())
	}
	_, err = h.Stat("/")
	if !errors.Is(err, ErrConnectionLost) {
		t.Fatalf("operation on a dead connection: %v", err)
	}
}

func TestTransferResumesAfterDroppedConnection(t *testing.T) {
	s := startSSHD(t)
	p := newProxy(t, s.Addr, 0)
	cfg := s.Config()
	cfg.KnownHostsFiles = []string{knownHostsFor(t, p.Addr(), s.HostKeys...)}
	ctx := context.Background()
	src := s.Dial(t)
	dial := func() *SSHHost {
		h, err := DialSSH(ctx, p.Addr(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.Close() })
		return h
	}
	dst := dial()
	sr, dr := t.TempDir(), t.TempDir()
	want := randomFile(t, sr, "/a.vhd", 24<<20, 7)
	files := []FileCopy{{Src: sr + "/a.vhd", Dst: dr + "/a.vhd"}}
	opts := &TransferOptions{ChunkSize: 256 << 10}
	var once sync.Once
	opts.Progress = func(pr Progress) {
		if pr.Done > 8<<20 {
			once.Do(p.Cut)
		}
	}
	_, err := Transfer(ctx, src, dst, files, opts)
	if err == nil {
		t.Fatal("transfer survived a cut connection")
	}
	if _, err := os.Stat(dr + "/a.vhd"); !os.IsNotExist(err) {
		t.Fatal("final name exists after a failed transfer")
	}
	opts.Progress = nil
	res, err := Transfer(ctx, src, dial(), files, opts)
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Resumed == 0 {
		t.Error("second try did not resume")
	}
	got, _ := os.ReadFile(dr + "/a.vhd")
	if !bytes.Equal(got, want) {
		t.Fatal("resumed copy differs")
	}
	t.Logf("resumed from %d of %d bytes", res[0].Resumed, len(want))
}

func sprintf(f string, v any) string { return fmt.Sprintf(f, v) }
