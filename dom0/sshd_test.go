package dom0

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/xenflow/xenflow/internal/oracle"
)

// testSSHD is a real OpenSSH sshd started by a test on 127.0.0.1 with
// generated keys, stopped by its process id when the test ends.
type testSSHD struct {
	Addr       string // 127.0.0.1:port
	Dir        string // temporary directory with keys and config
	User       string // the user it accepts
	UserKey    string // the user's private key file (unencrypted)
	KnownHosts string // a known_hosts file listing every host key
	HostKeys   []ssh.PublicKey
	cmd        *exec.Cmd
	logMu      sync.Mutex
	log        bytes.Buffer
}

// needSSHD skips the test when sshd (or scp, which comes with it) is
// missing, except under CI=true where a missing oracle is a failure.
func needSSHD(t testing.TB) {
	t.Helper()
	for _, p := range []string{"/usr/sbin/sshd", "/usr/bin/scp"} {
		if _, err := os.Stat(p); err != nil {
			oracle.Missing(t, "%s is needed: %v (apt-get install openssh-server)", p, err)
		}
	}
}

func writeKey(t testing.TB, file string, key crypto.PrivateKey, passphrase string) ssh.PublicKey {
	t.Helper()
	var blk *pem.Block
	var err error
	if passphrase != "" {
		blk, err = ssh.MarshalPrivateKeyWithPassphrase(key, "", []byte(passphrase))
	} else {
		blk, err = ssh.MarshalPrivateKey(key, "")
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, pem.EncodeToMemory(blk), 0o600); err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return signer.PublicKey()
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startSSHD starts sshd with an ed25519 and an ECDSA host key, and one user
// key for the current user.
func startSSHD(t testing.TB) *testSSHD {
	t.Helper()
	needSSHD(t)
	if _, err := os.Stat("/run/sshd"); err != nil {
		// sshd's privilege separation directory.
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			oracle.Missing(t, "cannot create /run/sshd, which sshd needs: %v", err)
		}
	}
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	s := &testSSHD{Dir: dir, User: u.Username}

	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	s.HostKeys = append(s.HostKeys,
		writeKey(t, filepath.Join(dir, "host_ed25519"), edKey, ""),
		writeKey(t, filepath.Join(dir, "host_ecdsa"), ecKey, ""))
	_, userKey, _ := ed25519.GenerateKey(rand.Reader)
	s.UserKey = filepath.Join(dir, "user_key")
	userPub := writeKey(t, s.UserKey, userKey, "")
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), ssh.MarshalAuthorizedKey(userPub), 0o600); err != nil {
		t.Fatal(err)
	}

	port := freePort(t)
	s.Addr = fmt.Sprintf("127.0.0.1:%d", port)
	var kh strings.Builder
	for _, k := range s.HostKeys {
		kh.WriteString(knownhosts.Line([]string{knownhosts.Normalize(s.Addr)}, k) + "\n")
	}
	s.KnownHosts = filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(s.KnownHosts, []byte(kh.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`ListenAddress 127.0.0.1
Port %d
HostKey %s
HostKey %s
AuthorizedKeysFile %s
StrictModes no
UsePAM no
PidFile %s
PermitRootLogin yes
PasswordAuthentication no
KbdInteractiveAuthentication no
Subsystem sftp internal-sftp
LogLevel ERROR
MaxStartups 100
# sshd's default, as on XenServer's dom0: every test must fit in it.
MaxSessions 10
`, port, filepath.Join(dir, "host_ed25519"), filepath.Join(dir, "host_ecdsa"),
		filepath.Join(dir, "authorized_keys"), filepath.Join(dir, "sshd.pid"))
	cfgFile := filepath.Join(dir, "sshd_config")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	s.cmd = exec.Command("/usr/sbin/sshd", "-D", "-e", "-f", cfgFile)
	s.cmd.Stdout = &lockedWriter{mu: &s.logMu, w: &s.log}
	s.cmd.Stderr = s.cmd.Stdout
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start sshd: %v", err)
	}
	pid := s.cmd.Process.Pid
	t.Cleanup(func() {
		// sshd's children (one per connection) are in its process group.
		_ = syscall.Kill(-pid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { s.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			<-done
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.Addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sshd did not listen on %s: %v\n%s", s.Addr, err, s.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return s
}

// Log returns what sshd wrote so far.
func (s *testSSHD) Log() string {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	return s.log.String()
}

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

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.w.Len() > 1<<20 {
		return len(p), nil
	}
	return w.w.Write(p)
}
