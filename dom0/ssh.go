package dom0

import (
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/xenflow/xenflow/vhd"
)

// SSHConfig says how to reach and trust a host's dom0 over SSH.
//
// Host keys are checked against KnownHostsFiles (default ~/.ssh/known_hosts);
// a host that is not listed, or whose key differs, is refused with a
// *HostKeyError. Authentication tries, in order, Signers, KeyFiles, the
// ssh-agent (UseAgent) and Password.
type SSHConfig struct {
	// User to log in as; XenServer's dom0 wants "root".
	User string

	// KnownHostsFiles lists known_hosts files; empty means ~/.ssh/known_hosts.
	KnownHostsFiles []string
	// InsecureIgnoreHostKey accepts any host key without checking it. It
	// makes the connection open to a man in the middle: for throwaway test
	// hosts only.
	InsecureIgnoreHostKey bool

	// KeyFiles are private key files (OpenSSH, PEM), with their passphrases.
	KeyFiles []KeyFile
	// Signers are keys already loaded by the caller.
	Signers []ssh.Signer
	// UseAgent offers the keys of the ssh-agent at $SSH_AUTH_SOCK.
	UseAgent bool
	// Password for password and keyboard-interactive authentication.
	Password Secret

	// HandshakeTimeout bounds TCP connect, key exchange, authentication and
	// the SFTP session start when the context has no earlier deadline.
	// Zero means 30s.
	HandshakeTimeout time.Duration
	// KeepaliveInterval is how often a keepalive@openssh.com request is
	// sent; zero means 15s, negative disables keepalives.
	KeepaliveInterval time.Duration
	// KeepaliveCountMax is how many keepalives in a row may go unanswered
	// (each waits one interval) before the connection is declared dead and
	// closed; zero means 3.
	KeepaliveCountMax int

	// Ciphers overrides x/crypto/ssh's cipher preference (which starts with
	// aes128-gcm@openssh.com, the fastest on CPUs with AES instructions).
	Ciphers []string
	// SFTPMaxPacket is the payload of one SFTP read request (and of write
	// requests on files not opened write-only). Zero means the server's own
	// limit when it gives one (the limits@openssh.com extension, OpenSSH
	// 8.7 and later: 255 KiB), up to 255 KiB (a limit under 4 KiB is not
	// believed: the default is used); else 65536, which OpenSSH's
	// sftp-server serves in every version (older ones cut larger reads
	// short). Set 32768 for servers that only promise the SFTP minimum.
	SFTPMaxPacket int
	// SFTPMaxWritePacket is the payload of one SFTP write request on the
	// sessions files opened write-only use. Zero means the server's own
	// limit when it gives one, up to 255 KiB; else 261120 (OpenSSH's
	// sftp-server accepts messages up to 256 KiB in every version): fewer,
	// larger requests cost the server and this process less CPU.
	SFTPMaxWritePacket int
	// SFTPRequestsPerFile is how many requests may be in flight for one
	// file; zero means as many as make 2 MiB (32 requests of 64 KiB, 8 of
	// 255 KiB), at least 4 and at most 64.
	SFTPRequestsPerFile int
	// SFTPSessions is how many SFTP sessions (SSH channels) the connection
	// carries for reading files, and again for writing them; zero means 2.
	// Files opened are spread over them, and Transfer opens each file once
	// per session: every channel has its own 2 MiB flow-control window,
	// which bounds what one channel moves per round trip (or per
	// scheduling delay on a busy host). Other operations use the first
	// session. sshd's MaxSessions (10 by default) bounds the sessions of
	// one connection: 2*SFTPSessions, plus one per command running, which
	// includes Transfer's hashers (one per file being verified on the
	// destination, and one per file being resumed on each host). DialSSH
	// briefly uses one more to ask for the server's SFTP limits, and so
	// does each Stat of a regular file, for its link count (FileStat).
	SFTPSessions int

	// Logger receives debug lines (connection, keepalive failures); nil
	// discards them. No secret is ever logged.
	Logger *slog.Logger
}

// String describes the configuration without its secrets.
func (c *SSHConfig) String() string {
	if c == nil {
		return "<nil>"
	}
	keys := make([]string, len(c.KeyFiles))
	for i, k := range c.KeyFiles {
		keys[i] = k.Path
	}
	return fmt.Sprintf("SSHConfig{User:%q KnownHostsFiles:%q InsecureIgnoreHostKey:%t KeyFiles:%q Signers:%d UseAgent:%t Password:%s}",
		c.User, c.KnownHostsFiles, c.InsecureIgnoreHostKey, keys, len(c.Signers), c.UseAgent, c.Password)
}

// GoString is String for %#v.
func (c *SSHConfig) GoString() string { return c.String() }

// LogValue keeps secrets out of slog output.
func (c *SSHConfig) LogValue() slog.Value { return slog.StringValue(c.String()) }

// KeyFile is a private key file and the passphrase that decrypts it (empty
// for an unencrypted key).
type KeyFile struct {
	Path       string
	Passphrase Secret
}

// HostKeyError reports a host key that known_hosts does not vouch for: the
// host is not listed (Unknown), it is listed with other keys (a changed key,
// maybe a man in the middle), its key is marked @revoked (Revoked), or it
// offers no key of the types recorded for it (NoKnownType, with the types it
// offers in Offered). The connection is refused.
type HostKeyError struct {
	Addr        string   // the address dialled, host:port
	KeyType     string   // the type of key the server presented ("" with NoKnownType)
	Fingerprint string   // its SHA256 fingerprint ("" with NoKnownType)
	Unknown     bool     // no known_hosts entry for this host at all
	Revoked     bool     // the key is listed as @revoked (Known names the line)
	NoKnownType bool     // the server has no key of a type recorded for it
	Offered     string   // with NoKnownType: the host key algorithms the server offered
	Known       []string // the recorded keys: "file:line type fingerprint"
	Err         error    // the *knownhosts.KeyError, *knownhosts.RevokedError or key exchange error
}

func (e *HostKeyError) Error() string {
	known := strings.Join(e.Known, "; ")
	switch {
	case e.Unknown:
		return fmt.Sprintf("dom0: host key of %s (%s %s) is not in known_hosts: refused", e.Addr, e.KeyType, e.Fingerprint)
	case e.Revoked:
		return fmt.Sprintf("dom0: host key of %s (%s %s) is marked @revoked in known_hosts (%s): refused", e.Addr, e.KeyType, e.Fingerprint, known)
	case e.NoKnownType:
		return fmt.Sprintf("dom0: %s offers no host key of a type known_hosts records for it (%s; it offers %s): refused, possible man in the middle or a host whose keys were replaced",
			e.Addr, known, e.Offered)
	}
	return fmt.Sprintf("dom0: host key of %s (%s %s) does not match known_hosts (%s): refused, possible man in the middle",
		e.Addr, e.KeyType, e.Fingerprint, known)
}

// Unwrap returns the knownhosts error.
func (e *HostKeyError) Unwrap() error { return e.Err }

// AuthError reports that the server refused every authentication method
// offered.
type AuthError struct {
	Addr    string   // the address dialled
	User    string   // the user
	Methods []string // the methods tried: "publickey", "password"...
	Err     error    // x/crypto/ssh's error
}

func (e *AuthError) Error() string {
	return fmt.Sprintf("dom0: authentication of %s at %s refused (tried %s): %v", e.User, e.Addr, strings.Join(e.Methods, ", "), e.Err)
}

// Unwrap returns the cause.
func (e *AuthError) Unwrap() error { return e.Err }

// SSHHost is a Host reached over SSH: one SSH connection and one SFTP session,
// reused by every operation, kept alive by keepalives.
type SSHHost struct {
	addr   string
	name   string
	client *ssh.Client
	sftp   *sftp.Client
	reads  []*sftp.Client // sessions for files opened read-only; reads[0] is sftp
	writes []*sftp.Client // sessions with large packets for files opened for writing
	next   atomic.Uint32
	log    *slog.Logger
	agent  net.Conn

	posixRename bool
	fsync       bool
	modes       createModes // the modes of files and directories being created

	stop      chan struct{}
	dead      chan struct{}
	deadOnce  sync.Once
	deadErr   error
	closeOnce sync.Once
	closeErr  error
	wg        sync.WaitGroup
}

var _ Host = (*SSHHost)(nil)

// DialSSH connects to addr ("host" or "host:port", port 22 by default),
// verifies the host key, authenticates and opens an SFTP session. ctx bounds
// the whole of it: TCP connect, key exchange, authentication, SFTP start.
func DialSSH(ctx context.Context, addr string, cfg *SSHConfig) (*SSHHost, error) {
	if cfg == nil {
		cfg = &SSHConfig{}
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		addr = net.JoinHostPort(addr, "22")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(discardHandler{})
	}
	h := &SSHHost{addr: addr, name: cfg.User + "@" + addr, log: log, stop: make(chan struct{}), dead: make(chan struct{})}

	cc := &ssh.ClientConfig{User: cfg.User}
	cc.Ciphers = cfg.Ciphers

	// Host key verification.
	var hkMu sync.Mutex
	var hostKeyErr error
	var knownKeys []string // the keys known_hosts records for addr
	if cfg.InsecureIgnoreHostKey {
		cc.HostKeyCallback = ssh.InsecureIgnoreHostKey()
	} else {
		files := cfg.KnownHostsFiles
		if len(files) == 0 {
			home, err := os.UserHomeDir()
			if err != nil {
				return nil, &OpError{Host: h.name, Op: "dial", Err: fmt.Errorf("no known_hosts file given and no home directory: %w", err)}
			}
			files = []string{filepath.Join(home, ".ssh", "known_hosts")}
		}
		cb, err := knownhosts.New(files...)
		if err != nil {
			return nil, &OpError{Host: h.name, Op: "dial", Err: fmt.Errorf("read known_hosts: %w", err)}
		}
		cc.HostKeyAlgorithms, knownKeys = knownKeyAlgorithms(cb, addr)
		cc.HostKeyCallback = func(hostname string, remote net.Addr, key ssh.PublicKey) error {
			err := cb(hostname, remote, key)
			if err != nil {
				e := newHostKeyError(addr, key, err)
				hkMu.Lock()
				hostKeyErr = e
				hkMu.Unlock()
				return e
			}
			return nil
		}
	}

	// Authentication.
	var methods []string
	var signers []ssh.Signer
	signers = append(signers, cfg.Signers...)
	for _, kf := range cfg.KeyFiles {
		s, err := loadKeyFile(kf)
		if err != nil {
			return nil, &OpError{Host: h.name, Op: "dial", Err: err}
		}
		signers = append(signers, s)
	}
	var auth []ssh.AuthMethod
	if len(signers) > 0 {
		auth = append(auth, ssh.PublicKeys(signers...))
		methods = append(methods, "publickey")
	}
	if cfg.UseAgent {
		sock := os.Getenv("SSH_AUTH_SOCK")
		if sock == "" {
			return nil, &OpError{Host: h.name, Op: "dial", Err: errors.New("UseAgent set but SSH_AUTH_SOCK is empty")}
		}
		var d net.Dialer
		ac, err := d.DialContext(ctx, "unix", sock)
		if err != nil {
			return nil, &OpError{Host: h.name, Op: "dial", Err: fmt.Errorf("ssh-agent: %w", err)}
		}
		h.agent = ac
		auth = append(auth, ssh.PublicKeysCallback(agent.NewClient(ac).Signers))
		methods = append(methods, "agent")
	}
	if cfg.Password != "" {
		pw := string(cfg.Password)
		auth = append(auth, ssh.Password(pw), ssh.KeyboardInteractive(func(_, _ string, qs []string, _ []bool) ([]string, error) {
			ans := make([]string, len(qs))
			for i := range qs {
				ans[i] = pw
			}
			return ans, nil
		}))
		methods = append(methods, "password", "keyboard-interactive")
	}
	cc.Auth = auth
	fail := func(err error) (*SSHHost, error) {
		if h.agent != nil {
			h.agent.Close()
		}
		return nil, err
	}

	// Dial and handshake, bounded by ctx and the handshake timeout.
	timeout := cfg.HandshakeTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	hctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	d := net.Dialer{KeepAlive: 30 * time.Second}
	conn, err := d.DialContext(hctx, "tcp", addr)
	if err != nil {
		return fail(&OpError{Host: h.name, Op: "dial", Err: err})
	}
	if dl, ok := hctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	watchDone := make(chan struct{})
	watchExit := make(chan struct{})
	go func() { // close the connection if ctx ends mid-handshake
		defer close(watchExit)
		select {
		case <-hctx.Done():
			conn.Close()
		case <-watchDone:
		}
	}()
	c, chans, reqs, err := ssh.NewClientConn(conn, addr, cc)
	if err == nil {
		h.client = ssh.NewClient(c, chans, reqs)
		var lim sftpLimits
		var haveLim bool
		if cfg.SFTPMaxPacket <= 0 || cfg.SFTPMaxWritePacket <= 0 {
			var lerr error
			lim, haveLim, lerr = probeSFTPLimits(h.client)
			if lerr != nil {
				log.Debug("dom0: SFTP limits unknown, using defaults", "host", h.name, "err", lerr)
			}
		}
		pkts := sftpPacketSizes(cfg, lim, haveLim)
		h.sftp, err = newSFTPSession(h.client, cfg, pkts.read, &h.modes)
		if err == nil {
			h.reads = append(h.reads, h.sftp)
		}
		n := cfg.SFTPSessions
		if n <= 0 {
			n = 2
		}
		for i := 0; i < 2*n-1 && err == nil; i++ {
			var c *sftp.Client
			write := i < n
			pkt := pkts.read
			if write {
				pkt = pkts.write
			}
			c, err = newSFTPSession(h.client, cfg, pkt, &h.modes)
			if err == nil && write {
				h.writes = append(h.writes, c)
			} else if err == nil {
				h.reads = append(h.reads, c)
			}
		}
		if err != nil {
			h.client.Close()
			err = fmt.Errorf("start SFTP: %w", err)
		}
	}
	close(watchDone)
	<-watchExit
	if err != nil {
		conn.Close()
		hkMu.Lock()
		hkErr := hostKeyErr
		hkMu.Unlock()
		if hkErr == nil {
			hkErr = noKnownTypeError(addr, knownKeys, err)
		}
		switch {
		case hkErr != nil:
			return fail(hkErr)
		case hctx.Err() != nil:
			return fail(&OpError{Host: h.name, Op: "dial", Err: fmt.Errorf("%w (%v)", hctx.Err(), err)})
		case errors.Is(err, os.ErrDeadlineExceeded):
			// The connection's deadline is hctx's, and it can fire a moment
			// before hctx's own timer: the context's deadline passed.
			return fail(&OpError{Host: h.name, Op: "dial", Err: fmt.Errorf("%w (%v)", context.DeadlineExceeded, err)})
		case strings.Contains(err.Error(), "unable to authenticate"):
			return fail(&AuthError{Addr: addr, User: cfg.User, Methods: methods, Err: err})
		}
		return fail(&OpError{Host: h.name, Op: "dial", Err: err})
	}
	_ = conn.SetDeadline(time.Time{})
	_, h.posixRename = h.sftp.HasExtension("posix-rename@openssh.com")
	_, h.fsync = h.sftp.HasExtension("fsync@openssh.com")
	log.Debug("dom0: connected", "host", h.name, "server", string(c.ServerVersion()))

	h.wg.Add(1)
	go func() { // notice a connection closed by the peer
		defer h.wg.Done()
		err := h.client.Wait()
		h.markDead(fmt.Errorf("%w: %v", ErrConnectionLost, err))
	}()
	interval := cfg.KeepaliveInterval
	if interval == 0 {
		interval = 15 * time.Second
	}
	if interval > 0 {
		max := cfg.KeepaliveCountMax
		if max <= 0 {
			max = 3
		}
		h.wg.Add(1)
		go h.keepalive(interval, max)
	}
	return h, nil
}

func sftpOptions(cfg *SSHConfig, pkt int) []sftp.ClientOption {
	opts := []sftp.ClientOption{sftp.UseConcurrentWrites(true), sftp.UseConcurrentReads(true)}
	return append(opts, sftp.MaxConcurrentRequestsPerFile(requestsPerFile(cfg, pkt)), sftp.MaxPacketUnchecked(pkt))
}

// maxRequestsPerFile bounds the requests in flight for one file when the
// configuration does not say: pkg/sftp runs one goroutine per request in
// flight, and 64 is its own default.
const maxRequestsPerFile = 64

// requestsPerFile is how many requests of pkt bytes may be in flight for one
// file: the configuration's, else as many as keep about 2 MiB in flight,
// between 4 and maxRequestsPerFile.
func requestsPerFile(cfg *SSHConfig, pkt int) int {
	if cfg.SFTPRequestsPerFile > 0 {
		return cfg.SFTPRequestsPerFile
	}
	return min(max(4, 64*32768/max(pkt, 1)), maxRequestsPerFile)
}

// sftpPackets is the payload of one SFTP request on the sessions that read
// files (and do everything else) and on those that write files opened
// write-only.
type sftpPackets struct{ read, write int }

// maxSFTPPayload stays under OpenSSH sftp-server's 256 KiB message limit
// with room for the request's header: the most xenflow puts in one request.
const maxSFTPPayload = 256<<10 - 1024

// minSFTPPayload is the smallest request size taken from a server's
// limits@openssh.com reply. A smaller limit (every SFTP server must accept
// 32 KiB messages, draft-ietf-secsh-filexfer-02 section 3) is not believed:
// a hostile server answering 1 would otherwise have the controller split a
// file into millions of requests. The defaults are used instead.
const minSFTPPayload = 4 << 10

// sftpPacketSizes chooses the request sizes: the configuration's, else the
// server's own limits (limits@openssh.com, lim) between minSFTPPayload and
// maxSFTPPayload, else what every OpenSSH sftp-server accepts (64 KiB
// reads, writes of maxSFTPPayload).
func sftpPacketSizes(cfg *SSHConfig, lim sftpLimits, haveLim bool) sftpPackets {
	p := sftpPackets{read: 64 << 10, write: maxSFTPPayload}
	if haveLim {
		clamp := func(def int, v uint64) int {
			if v == 0 {
				return def
			}
			if lim.MaxPacket > 1024 {
				v = min(v, lim.MaxPacket-1024)
			}
			if v < minSFTPPayload {
				return def
			}
			return int(min(v, maxSFTPPayload))
		}
		p.read, p.write = clamp(p.read, lim.MaxRead), clamp(p.write, lim.MaxWrite)
		// The read sessions also write (files not opened write-only).
		p.read = min(p.read, p.write)
	}
	if cfg.SFTPMaxPacket > 0 {
		p.read = cfg.SFTPMaxPacket
	}
	if cfg.SFTPMaxWritePacket > 0 {
		p.write = cfg.SFTPMaxWritePacket
	}
	return p
}

// probeSFTPLimits asks the server for its SFTP limits on a channel of its
// own (pkg/sftp cannot send the request). ok is false when the server does
// not give them.
func probeSFTPLimits(c *ssh.Client) (lim sftpLimits, ok bool, err error) {
	s, err := c.NewSession()
	if err != nil {
		return lim, false, err
	}
	defer s.Close()
	w, err := s.StdinPipe()
	if err != nil {
		return lim, false, err
	}
	r, err := s.StdoutPipe()
	if err != nil {
		return lim, false, err
	}
	if err := s.RequestSubsystem("sftp"); err != nil {
		return lim, false, err
	}
	lim, ok, err = querySFTPLimits(struct {
		io.Reader
		io.Writer
	}{r, w})
	w.Close()
	return lim, ok, err
}

// newSFTPSession opens an SFTP session on the connection, with large write
// requests if write is set. Requests reach
// the channel through a packetWriter, so that each goes out whole in one
// channel write: pkg/sftp writes a request's header and its data
// separately, which x/crypto/ssh would send as two SSH packets (a tiny one
// for the header), doubling the packets, encryptions and system calls of a
// bulk write on both ends.
func newSFTPSession(c *ssh.Client, cfg *SSHConfig, pkt int, modes *createModes) (*sftp.Client, error) {
	s, err := c.NewSession()
	if err != nil {
		return nil, err
	}
	if err := s.RequestSubsystem("sftp"); err != nil {
		s.Close()
		return nil, err
	}
	w, err := s.StdinPipe()
	if err != nil {
		s.Close()
		return nil, err
	}
	r, err := s.StdoutPipe()
	if err != nil {
		s.Close()
		return nil, err
	}
	cl, err := sftp.NewClientPipe(r, &packetWriter{w: w, session: s, modes: modes}, sftpOptions(cfg, pkt)...)
	if err != nil {
		s.Close()
		return nil, err
	}
	return cl, nil
}

// packetWriter gives the channel each SFTP packet in as few writes as
// possible. pkg/sftp writes a write request's header (a few dozen bytes)
// and its data separately, which x/crypto/ssh would send as two SSH
// packets, a tiny one for the header: doubling the packets, encryptions
// and system calls of a bulk write on both ends. The header is held back
// and sent with the first bytes of the data, up to sshPacketData bytes in
// all (one SSH packet), and the rest of the data goes out as it is, without
// copying it. Other ways of cutting a packet are gathered whole. pkg/sftp
// serialises its writes, so no locking is needed here.
type packetWriter struct {
	w       io.WriteCloser
	session *ssh.Session
	modes   *createModes // fills in the mode of files and directories created
	buf     []byte       // the start of a packet not yet written
}

// sshPacketData is the data one SSH channel packet carries to OpenSSH's
// sshd (its session channels' maximum packet size).
const sshPacketData = 32 << 10

func (p *packetWriter) Write(b []byte) (int, error) {
	if len(p.buf) == 0 && len(b) >= 4 && int64(len(b)) == 4+int64(binary.BigEndian.Uint32(b)) {
		_, err := p.w.Write(p.modes.apply(b)) // already whole
		return len(b), err
	}
	if len(p.buf) >= 4 {
		if size := 4 + int64(binary.BigEndian.Uint32(p.buf)); int64(len(p.buf))+int64(len(b)) == size && size <= 1<<20 {
			// The rest of the packet, in one piece: send the held header
			// with the first bytes of it, then the remainder directly.
			k := min(len(b), max(sshPacketData-len(p.buf), 0))
			p.buf = append(p.buf, b[:k]...)
			_, err := p.w.Write(p.buf)
			p.buf = p.buf[:0]
			if err == nil && k < len(b) {
				_, err = p.w.Write(b[k:])
			}
			if err != nil {
				return 0, err
			}
			return len(b), nil
		}
	}
	p.buf = append(p.buf, b...)
	for len(p.buf) >= 4 {
		n := 4 + int64(binary.BigEndian.Uint32(p.buf))
		if n > 1<<20 {
			return 0, fmt.Errorf("dom0: SFTP packet of %d bytes", n)
		}
		if int64(len(p.buf)) < n {
			break
		}
		if _, err := p.w.Write(p.modes.apply(p.buf[:n])); err != nil {
			return 0, err
		}
		rest := copy(p.buf, p.buf[n:])
		p.buf = p.buf[:rest]
	}
	if cap(p.buf) > 2*sshPacketData && len(p.buf) == 0 {
		p.buf = nil
	}
	return len(b), nil
}

func (p *packetWriter) Close() error {
	err := p.w.Close()
	if p.session != nil {
		p.session.Close()
	}
	return err
}

func loadKeyFile(kf KeyFile) (ssh.Signer, error) {
	pem, err := os.ReadFile(kf.Path)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", kf.Path, unwrapPathErr(err))
	}
	var s ssh.Signer
	if kf.Passphrase != "" {
		s, err = ssh.ParsePrivateKeyWithPassphrase(pem, []byte(kf.Passphrase))
	} else {
		s, err = ssh.ParsePrivateKey(pem)
	}
	for i := range pem {
		pem[i] = 0
	}
	if err != nil {
		var missing *ssh.PassphraseMissingError
		if errors.As(err, &missing) {
			return nil, fmt.Errorf("key file %s: encrypted, and no passphrase given", kf.Path)
		}
		// The parser's messages carry no key material; keep only their
		// text, never the key bytes.
		return nil, fmt.Errorf("key file %s: cannot load (wrong passphrase or not a private key): %s", kf.Path, clip(err.Error()))
	}
	return s, nil
}

// probeKey is a public key no host has: asking known_hosts about it lists
// every key recorded for a host.
var probeKey = func() ssh.PublicKey {
	pub := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)).Public()
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		panic(err)
	}
	return k
}()

// knownKeyAlgorithms lists the host key algorithms of the keys known_hosts
// records for addr, so that the server is asked for a key type we can check
// (a host with ed25519, ECDSA and RSA keys would otherwise offer whichever
// it prefers), and describes those keys. Nil (the library's defaults) when
// the host is not listed.
func knownKeyAlgorithms(cb ssh.HostKeyCallback, addr string) (algos, known []string) {
	tcp, _ := net.ResolveTCPAddr("tcp", addr)
	var remote net.Addr = tcp
	if tcp == nil {
		remote = &net.TCPAddr{}
	}
	err := cb(addr, remote, probeKey)
	var ke *knownhosts.KeyError
	if !errors.As(err, &ke) || len(ke.Want) == 0 {
		return nil, nil
	}
	seen := map[string]bool{}
	add := func(a ...string) {
		for _, x := range a {
			if !seen[x] {
				seen[x] = true
				algos = append(algos, x)
			}
		}
	}
	for _, k := range ke.Want {
		switch t := k.Key.Type(); t {
		case ssh.KeyAlgoRSA:
			add(ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA)
		default:
			add(t)
		}
	}
	return algos, describeKnown(ke.Want)
}

func newHostKeyError(addr string, key ssh.PublicKey, err error) error {
	e := &HostKeyError{Addr: addr, KeyType: key.Type(), Fingerprint: ssh.FingerprintSHA256(key), Err: err}
	var ke *knownhosts.KeyError
	var re *knownhosts.RevokedError
	switch {
	case errors.As(err, &ke):
		e.Unknown = len(ke.Want) == 0
		e.Known = describeKnown(ke.Want)
	case errors.As(err, &re):
		e.Revoked = true
		e.Known = describeKnown([]knownhosts.KnownKey{re.Revoked})
	}
	return e
}

func describeKnown(keys []knownhosts.KnownKey) []string {
	var out []string
	for _, k := range keys {
		out = append(out, fmt.Sprintf("%s:%d %s %s", k.Filename, k.Line, k.Key.Type(), ssh.FingerprintSHA256(k.Key)))
	}
	return out
}

// noKnownTypeError turns the key exchange's failure to agree on a host key
// algorithm, when only the types known_hosts records were asked for, into
// a *HostKeyError; other errors give nil.
func noKnownTypeError(addr string, known []string, err error) error {
	const what = "no common algorithm for host key"
	msg := err.Error()
	if len(known) == 0 || !strings.Contains(msg, what) {
		return nil
	}
	offered := "nothing"
	// x/crypto's words: "server offered: [...]", "peer offered: [...]"
	// since v0.39.
	for _, sep := range []string{"server offered: ", "peer offered: "} {
		if _, o, ok := strings.Cut(msg, sep); ok {
			offered = strings.TrimSpace(o)
			if len(offered) > 512 { // the server's words: bounded
				offered = offered[:512] + "..."
			}
		}
	}
	return &HostKeyError{Addr: addr, NoKnownType: true, Offered: offered, Known: known, Err: err}
}

func (h *SSHHost) keepalive(interval time.Duration, max int) {
	defer h.wg.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	missed := 0
	for {
		select {
		case <-h.stop:
			return
		case <-h.dead:
			return
		case <-t.C:
		}
		reply := make(chan error, 1)
		go func() {
			_, _, err := h.client.SendRequest("keepalive@openssh.com", true, nil)
			reply <- err
		}()
		var err error
		select {
		case err = <-reply:
		case <-time.After(interval):
			err = errors.New("no reply")
		case <-h.stop:
			return
		}
		if err == nil {
			missed = 0
			continue
		}
		missed++
		h.log.Debug("dom0: keepalive unanswered", "host", h.name, "missed", missed, "err", err)
		if missed >= max {
			h.markDead(fmt.Errorf("%w: %d keepalives unanswered", ErrConnectionLost, missed))
			h.client.Close()
			return
		}
	}
}

func (h *SSHHost) markDead(err error) {
	h.deadOnce.Do(func() {
		h.deadErr = err
		close(h.dead)
	})
}

// Err returns nil while the connection is alive, and the reason once it is
// found dead (wrapping ErrConnectionLost) or closed.
func (h *SSHHost) Err() error {
	select {
	case <-h.dead:
		return h.deadErr
	default:
		return nil
	}
}

// Addr returns the address dialled, host:port.
func (h *SSHHost) Addr() string { return h.addr }

// String names the host: user@host:port.
func (h *SSHHost) String() string { return h.name }

// Client returns the SSH connection, for callers that need another channel
// (port forwarding, a second SFTP session). Do not close it: use Close.
func (h *SSHHost) Client() *ssh.Client { return h.client }

// Close stops the keepalives, closes the SFTP session and the connection.
func (h *SSHHost) Close() error {
	h.closeOnce.Do(func() {
		close(h.stop)
		var e1, e2 error
		closeSessions := func() {
			e1 = h.sftp.Close()
			for _, c := range append(h.reads[1:], h.writes...) {
				c.Close()
			}
		}
		if h.Err() != nil {
			// Dead: closing the sessions would wait on the connection.
			e2 = h.client.Close()
			closeSessions()
		} else {
			closeSessions()
			e2 = h.client.Close()
		}
		if h.agent != nil {
			h.agent.Close()
		}
		h.wg.Wait()
		h.markDead(fmt.Errorf("%w: closed", ErrConnectionLost))
		if e2 != nil && !errors.Is(e2, net.ErrClosed) && !errors.Is(e2, io.EOF) {
			h.closeErr = &OpError{Host: h.name, Op: "close", Err: e2}
		}
		_ = e1 // closing the channel after the connection died is no news
	})
	return h.closeErr
}

func (h *SSHHost) opErr(op, name string, err error) error {
	if err == nil {
		return nil
	}
	if de := h.Err(); de != nil && !errors.Is(err, ErrConnectionLost) {
		err = fmt.Errorf("%w (%v)", de, err)
	}
	return &OpError{Host: h.name, Op: op, Path: name, Err: err}
}

// path cleans name into the host's namespace (see hostPath) and refuses
// what would end the SFTP session instead of failing one request: a NUL
// byte (sftp-server reads strings as C strings and gives up on the whole
// session) or a path longer than maxPathLen. The error wraps ErrBadName;
// nothing is sent.
func (h *SSHHost) path(op, name string) (string, error) {
	if strings.IndexByte(name, 0) >= 0 {
		return "", h.opErr(op, strconv.Quote(clip(name)), fmt.Errorf("%w: path holds a NUL byte", ErrBadName))
	}
	p := hostPath(name)
	if len(p) > maxPathLen {
		return "", h.opErr(op, clip(p), fmt.Errorf("%w: path of %d bytes, more than %d", ErrBadName, len(p), maxPathLen))
	}
	return p, nil
}

// paths is path for the two names of a rename or link.
func (h *SSHHost) paths(op, oldname, newname string) (o, n string, err error) {
	if o, err = h.path(op, oldname); err == nil {
		n, err = h.path(op, newname)
	}
	return o, n, err
}

// sftpFile is an open remote file.
type sftpFile struct {
	f    *sftp.File
	h    *SSHHost
	name string
}

func (f *sftpFile) ReadAt(p []byte, off int64) (int, error) {
	n, err := f.f.ReadAt(p, off)
	if err != nil && err != io.EOF {
		err = f.h.opErr("read", f.name, err)
	}
	return n, err
}

func (f *sftpFile) WriteAt(p []byte, off int64) (int, error) {
	n, err := f.f.WriteAt(p, off)
	return n, f.h.opErr("write", f.name, err)
}

func (f *sftpFile) Close() error { return f.h.opErr("close", f.name, f.f.Close()) }

// Stat describes the file; for a regular file, Sys is a *FileStat with
// its link count.
func (f *sftpFile) Stat() (fs.FileInfo, error) {
	fi, err := f.statNoLinks()
	if err != nil {
		return nil, err
	}
	return f.h.withLinks(f.name, fi), nil
}

func (f *sftpFile) statNoLinks() (fs.FileInfo, error) {
	fi, err := f.f.Stat()
	return fi, f.h.opErr("stat", f.name, err)
}

func (f *sftpFile) Truncate(size int64) error {
	return f.h.opErr("truncate", f.name, f.f.Truncate(size))
}

func (f *sftpFile) Sync() error {
	if !f.h.fsync {
		return nil // the server cannot: its writes reach the file system on close
	}
	return f.h.opErr("sync", f.name, f.f.Sync())
}

// Open opens a file for reading.
func (h *SSHHost) Open(name string) (vhd.File, error) {
	return h.OpenFile(name, os.O_RDONLY, 0)
}

// OpenFile opens a file with os.OpenFile's flags. A file it creates gets
// the permission bits perm, less the server's umask, as with os.OpenFile:
// the open request carries them (see createModes), so the file never
// exists with other bits. perm 0 leaves the server's default (0666 less its
// umask).
func (h *SSHHost) OpenFile(name string, flag int, perm fs.FileMode) (vhd.File, error) {
	p, err := h.path("open", name)
	if err != nil {
		return nil, err
	}
	if flag&os.O_CREATE != 0 && perm != 0 {
		defer h.modes.set(p, perm)()
	}
	f, err := h.session(flag).OpenFile(p, flag)
	if err != nil {
		return nil, h.opErr("open", p, err)
	}
	return &sftpFile{f: f, h: h, name: p}, nil
}

// session returns the SFTP session for the next file opened with flag, in
// turn among the write sessions for a write-only file, else among the read
// sessions. A file opened read-write (the vhd package's) reads too, and
// reads must stay small for old servers, so it gets a read session.
func (h *SSHHost) session(flag int) *sftp.Client {
	ss := h.reads
	if flag&(os.O_WRONLY|os.O_RDWR) == os.O_WRONLY && len(h.writes) > 0 {
		ss = h.writes
	}
	return ss[int(h.next.Add(1)%uint32(len(ss)))]
}

// Streams reports how many SFTP sessions carry file data each way:
// Transfer opens each file that many times.
func (h *SSHHost) Streams() int { return len(h.writes) }

// Stat describes a file or directory; for a regular file, Sys is a
// *FileStat with its link count (one short command on the host).
func (h *SSHHost) Stat(name string) (fs.FileInfo, error) {
	fi, err := h.statNoLinks(name)
	if err != nil {
		return nil, err
	}
	p, _ := h.path("stat", name)
	return h.withLinks(p, fi), nil
}

func (h *SSHHost) statNoLinks(name string) (fs.FileInfo, error) {
	p, err := h.path("stat", name)
	if err != nil {
		return nil, err
	}
	fi, err := h.sftp.Stat(p)
	return fi, h.opErr("stat", p, err)
}

// Rename moves oldname to newname, replacing newname (posix-rename@openssh.com).
func (h *SSHHost) Rename(oldname, newname string) error {
	o, n, err := h.paths("rename", oldname, newname)
	if err != nil {
		return err
	}
	if h.posixRename {
		err = h.sftp.PosixRename(o, n)
	} else {
		err = h.sftp.Rename(o, n)
	}
	return h.opErr("rename", o+" -> "+n, err)
}

// Link makes newname a hard link to oldname (hardlink@openssh.com).
func (h *SSHHost) Link(oldname, newname string) error {
	o, n, err := h.paths("link", oldname, newname)
	if err != nil {
		return err
	}
	return h.opErr("link", o+" -> "+n, h.sftp.Link(o, n))
}

// Remove deletes a file or an empty directory.
func (h *SSHHost) Remove(name string) error {
	p, err := h.path("remove", name)
	if err != nil {
		return err
	}
	if p == "/" {
		return h.opErr("remove", p, errors.New("refusing to remove the root"))
	}
	return h.opErr("remove", p, h.sftp.Remove(p))
}

// RemoveAll deletes name and everything under it, without following
// symbolic links. A missing name is not an error.
func (h *SSHHost) RemoveAll(name string) error {
	p, err := h.path("remove all", name)
	if err != nil {
		return err
	}
	if p == "/" {
		return h.opErr("remove all", p, errors.New("refusing to remove the root"))
	}
	return h.removeAll(p, 0)
}

func (h *SSHHost) removeAll(p string, depth int) error {
	fi, err := h.sftp.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return h.opErr("remove all", p, err)
	}
	if fi.IsDir() {
		if depth > 64 {
			return h.opErr("remove all", p, errors.New("directory tree too deep"))
		}
		ents, err := h.sftp.ReadDir(p)
		if err != nil {
			return h.opErr("remove all", p, err)
		}
		for _, e := range ents {
			if CheckBaseName(e.Name()) != nil {
				return h.opErr("remove all", p, fmt.Errorf("%w: server listed %q", ErrBadName, clip(e.Name())))
			}
			if err := h.removeAll(p+"/"+e.Name(), depth+1); err != nil {
				return err
			}
		}
		err = h.sftp.RemoveDirectory(p)
	} else {
		err = h.sftp.Remove(p)
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return h.opErr("remove all", p, err)
}

// MkdirAll creates a directory and its missing parents. Each directory it
// creates gets the permission bits perm, less the server's umask, as with
// os.MkdirAll: the request that creates it carries them (see createModes).
func (h *SSHHost) MkdirAll(name string, perm fs.FileMode) error {
	p, err := h.path("mkdir", name)
	if err != nil {
		return err
	}
	return h.mkdirAll(p, perm, 0)
}

func (h *SSHHost) mkdirAll(p string, perm fs.FileMode, depth int) error {
	fi, err := h.sftp.Stat(p)
	switch {
	case err == nil && fi.IsDir():
		return nil
	case err == nil:
		return h.opErr("mkdir", p, errors.New("exists and is not a directory"))
	case !errors.Is(err, fs.ErrNotExist):
		return h.opErr("mkdir", p, err)
	case depth > 64:
		return h.opErr("mkdir", p, errors.New("directory tree too deep"))
	}
	if err := h.mkdirAll(path.Dir(p), perm, depth+1); err != nil {
		return err
	}
	if perm != 0 {
		defer h.modes.set(p, perm)()
	}
	if err := h.sftp.Mkdir(p); err != nil {
		// Someone else may have made it meanwhile.
		if fi, serr := h.sftp.Stat(p); serr == nil && fi.IsDir() {
			return nil
		}
		return h.opErr("mkdir", p, err)
	}
	return nil
}

// ReadDir lists a directory, sorted by name. Names the server returns that
// could not be a single path element are refused.
func (h *SSHHost) ReadDir(name string) ([]fs.DirEntry, error) {
	p, err := h.path("read dir", name)
	if err != nil {
		return nil, err
	}
	infos, err := h.sftp.ReadDir(p)
	if err != nil {
		return nil, h.opErr("read dir", p, err)
	}
	ents := make([]fs.DirEntry, 0, len(infos))
	for _, fi := range infos {
		if err := CheckBaseName(fi.Name()); err != nil {
			return nil, h.opErr("read dir", p, err)
		}
		ents = append(ents, fs.FileInfoToDirEntry(fi))
	}
	sort.Slice(ents, func(i, j int) bool { return ents[i].Name() < ents[j].Name() })
	return ents, nil
}

// Chmod changes permission bits.
func (h *SSHHost) Chmod(name string, mode fs.FileMode) error {
	p, err := h.path("chmod", name)
	if err != nil {
		return err
	}
	return h.opErr("chmod", p, h.sftp.Chmod(p, mode))
}

// Truncate changes a file's length.
func (h *SSHHost) Truncate(name string, size int64) error {
	p, err := h.path("truncate", name)
	if err != nil {
		return err
	}
	return h.opErr("truncate", p, h.sftp.Truncate(p, size))
}

// Run executes argv on the host, each argument quoted for the login shell,
// after "cd /" (so relative paths, see RunPath, start at the root as on
// every Host). Cancelling ctx kills the command and closes its session.
func (h *SSHHost) Run(ctx context.Context, argv []string) ([]byte, []byte, error) {
	// sshd neither forwards signals to a command without a terminal nor
	// kills it when the channel closes. So the command runs in the
	// background of a small shell that kills it when its standard input
	// (held open by us) reaches end of file: closing stdin cancels.
	cmd, err := h.commandLine("exec sh -c "+Quote(runWrapper)+" sh ", argv)
	if err != nil {
		return nil, nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, h.opErr("run", argv[0], err)
	}
	s, err := h.client.NewSession()
	if err != nil {
		return nil, nil, h.opErr("run", argv[0], err)
	}
	defer s.Close()
	stdout := &limitedBuffer{max: MaxRunOutput}
	stderr := &limitedBuffer{max: MaxRunOutput}
	s.Stdout, s.Stderr = stdout, stderr
	stdin, err := s.StdinPipe()
	if err != nil {
		return nil, nil, h.opErr("run", argv[0], err)
	}
	if err := s.Start(cmd); err != nil {
		return nil, nil, h.opErr("run", argv[0], err)
	}
	waited := make(chan error, 1)
	go func() { waited <- s.Wait() }()
	select {
	case err = <-waited:
	case <-ctx.Done():
		stdin.Close()
		select {
		case <-waited:
		case <-time.After(5 * time.Second):
		}
		s.Close()
		return nil, nil, h.opErr("run", argv[0], ctx.Err())
	}
	stdin.Close()
	out, errOut := stdout.buf.Bytes(), stderr.buf.Bytes()
	if ctx.Err() != nil {
		return out, errOut, h.opErr("run", argv[0], ctx.Err())
	}
	if err != nil {
		var ee *ssh.ExitError
		if errors.As(err, &ee) {
			x := &ExitError{Host: h.name, Argv: append([]string(nil), argv...), Code: ee.ExitStatus(), Stderr: firstLine(errOut, 4096)}
			if ee.Signal() != "" {
				x.Code, x.Signal = -1, ee.Signal()
			}
			return out, errOut, x
		}
		return out, errOut, h.opErr("run", argv[0], err)
	}
	if stdout.overflow || stderr.overflow {
		return out, errOut, h.opErr("run", argv[0], ErrOutputTooLong)
	}
	return out, errOut, nil
}

// runWrapper runs "$@" in its own process group (setsid, when the host has
// it) and kills that group when standard input ends. "--" keeps a program
// whose name starts with "-" from being read as an option of setsid.
const runWrapper = `exec 3<&0; if command -v setsid >/dev/null 2>&1; then setsid -- "$@" </dev/null 3<&- & else "$@" </dev/null 3<&- & fi; p=$!; (cat >/dev/null; kill -9 -$p || kill -9 $p) <&3 >/dev/null 2>&1 & exec 3<&-; wait $p`

// commandLine checks argv and returns the command line sshd hands to the
// login shell: "cd / && " + prefix + argv, each argument quoted. Arguments
// that cannot pass (see ErrBadArgument) are refused before anything is
// sent, since sshd drops the whole connection on a NUL byte and on a
// request larger than its packets.
func (h *SSHHost) commandLine(prefix string, argv []string) (string, error) {
	if err := checkArgv(argv); err != nil {
		return "", h.opErr("run", runName(argv), err)
	}
	cmd := "cd / && " + prefix + QuoteCommand(argv)
	if len(cmd) > MaxArgLen {
		return "", h.opErr("run", runName(argv), fmt.Errorf("%w: command line of %d bytes once quoted, more than %d", ErrBadArgument, len(cmd), MaxArgLen))
	}
	return cmd, nil
}

// discardHandler is a slog.Handler that drops everything (slog.DiscardHandler
// arrived after Go 1.23).
type discardHandler struct{}

func (discardHandler) Enabled(context.Context, slog.Level) bool  { return false }
func (discardHandler) Handle(context.Context, slog.Record) error { return nil }
func (h discardHandler) WithAttrs([]slog.Attr) slog.Handler      { return h }
func (h discardHandler) WithGroup(string) slog.Handler           { return h }
