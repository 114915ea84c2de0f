// Package sshdtest starts a real OpenSSH sshd for tests: on 127.0.0.1, on
// a free port, with generated host and user keys, accepting the current
// user with a key, serving SFTP, and stopped by its own process group id
// when the test ends. When sshd is not installed the test is skipped
// (failed under CI=true) through internal/oracle.
package sshdtest

import (
	"bytes"
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

// Paths of the OpenSSH programs the server needs.
const (
	SSHDPath = "/usr/sbin/sshd"
	SCPPath  = "/usr/bin/scp" // comes with the client; tests that copy with scp need it
)

// Server is a running sshd.
type Server struct {
	Addr       string // 127.0.0.1:port
	Dir        string // temporary directory with its keys and configuration
	User       string // the user it accepts: the current user
	UserKey    string // that user's private key file (unencrypted)
	KnownHosts string // a known_hosts file listing every host key for Addr
	HostKeys   []ssh.PublicKey
	cmd        *exec.Cmd
	logMu      sync.Mutex
	log        bytes.Buffer
}

// Need skips the test when sshd (or scp, which comes with it) is
// missing, except under CI=true where a missing oracle is a failure.
func Need(tb testing.TB) {
	tb.Helper()
	for _, p := range []string{SSHDPath, SCPPath} {
		if _, err := os.Stat(p); err != nil {
			oracle.Missing(tb, "%s is needed: %v (apt-get install openssh-server)", p, err)
		}
	}
}

// WriteKey writes key as an OpenSSH private key file (encrypted with
// passphrase unless it is empty) and returns its public key.
func WriteKey(tb testing.TB, file string, key crypto.PrivateKey, passphrase string) ssh.PublicKey {
	tb.Helper()
	var blk *pem.Block
	var err error
	if passphrase != "" {
		blk, err = ssh.MarshalPrivateKeyWithPassphrase(key, "", []byte(passphrase))
	} else {
		blk, err = ssh.MarshalPrivateKey(key, "")
	}
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(file, pem.EncodeToMemory(blk), 0o600); err != nil {
		tb.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	return signer.PublicKey()
}

// freePort returns a TCP port free on 127.0.0.1 a moment ago.
func freePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Start starts sshd with an ed25519 and an ECDSA host key and one ed25519
// user key for the current user, waits until it listens, and stops it
// (its whole process group) when the test ends.
func Start(tb testing.TB) *Server {
	tb.Helper()
	Need(tb)
	if _, err := os.Stat("/run/sshd"); err != nil {
		// sshd's privilege separation directory.
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			oracle.Missing(tb, "cannot create /run/sshd, which sshd needs: %v", err)
		}
	}
	u, err := user.Current()
	if err != nil {
		tb.Fatal(err)
	}
	s := &Server{Dir: tb.TempDir(), User: u.Username}
	s.writeKeys(tb)
	s.Addr = fmt.Sprintf("127.0.0.1:%d", freePort(tb))
	var kh strings.Builder
	for _, k := range s.HostKeys {
		kh.WriteString(knownhosts.Line([]string{knownhosts.Normalize(s.Addr)}, k) + "\n")
	}
	s.KnownHosts = filepath.Join(s.Dir, "known_hosts")
	if err := os.WriteFile(s.KnownHosts, []byte(kh.String()), 0o600); err != nil {
		tb.Fatal(err)
	}
	s.start(tb, s.writeConfig(tb))
	return s
}

// writeKeys makes the host keys and the user's key, authorized.
func (s *Server) writeKeys(tb testing.TB) {
	tb.Helper()
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	s.HostKeys = append(s.HostKeys,
		WriteKey(tb, filepath.Join(s.Dir, "host_ed25519"), edKey, ""),
		WriteKey(tb, filepath.Join(s.Dir, "host_ecdsa"), ecKey, ""))
	_, userKey, _ := ed25519.GenerateKey(rand.Reader)
	s.UserKey = filepath.Join(s.Dir, "user_key")
	userPub := WriteKey(tb, s.UserKey, userKey, "")
	if err := os.WriteFile(filepath.Join(s.Dir, "authorized_keys"), ssh.MarshalAuthorizedKey(userPub), 0o600); err != nil {
		tb.Fatal(err)
	}
}

// writeConfig writes sshd_config and returns its name.
func (s *Server) writeConfig(tb testing.TB) string {
	tb.Helper()
	_, port, _ := net.SplitHostPort(s.Addr)
	cfg := fmt.Sprintf(`ListenAddress 127.0.0.1
Port %s
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
`, port, filepath.Join(s.Dir, "host_ed25519"), filepath.Join(s.Dir, "host_ecdsa"),
		filepath.Join(s.Dir, "authorized_keys"), filepath.Join(s.Dir, "sshd.pid"))
	file := filepath.Join(s.Dir, "sshd_config")
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		tb.Fatal(err)
	}
	return file
}

// start runs sshd in a process group of its own, stopped at the test's
// end, and waits until it accepts connections.
func (s *Server) start(tb testing.TB, cfgFile string) {
	tb.Helper()
	s.cmd = exec.Command(SSHDPath, "-D", "-e", "-f", cfgFile)
	s.cmd.Stdout = &lockedWriter{mu: &s.logMu, w: &s.log}
	s.cmd.Stderr = s.cmd.Stdout
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		tb.Fatalf("start sshd: %v", err)
	}
	pid := s.cmd.Process.Pid
	tb.Cleanup(func() { s.stop(pid) })
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.Addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("sshd did not listen on %s: %v\n%s", s.Addr, err, s.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop ends sshd and its children (one per connection, in its process
// group): SIGTERM, then SIGKILL after 5 s.
func (s *Server) stop(pid int) {
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-done
	}
}

// Pid is sshd's process id, which is also its process group id.
func (s *Server) Pid() int { return s.cmd.Process.Pid }

// Log returns what sshd wrote so far (the first MiB).
func (s *Server) Log() string {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	return s.log.String()
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
