package dom0

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/pkg/sftp"

	"github.com/xenflow/xenflow/vhd"
)

// badArgvs are commands no host can be given unchanged.
var badArgvs = []struct {
	name string
	argv []string
}{
	{"NUL in an argument", []string{"echo", "a\x00b"}},
	{"NUL in the program", []string{"ec\x00ho"}},
	{"argument too long", []string{"echo", strings.Repeat("x", MaxArgLen+1)}},
	{"command line too long", []string{"echo", strings.Repeat("x", MaxArgLen/2), strings.Repeat("y", MaxArgLen/2)}},
	{"quoting makes it too long", []string{"echo", strings.Repeat("'", MaxArgLen/2)}},
}

// TestRunRefusesBadArguments: a NUL byte or an oversized command is refused
// with ErrBadArgument before anything is sent; over SSH the connection and
// its SFTP session keep working (sshd drops the connection on a NUL).
func TestRunRefusesBadArguments(t *testing.T) {
	s := startSSHD(t)
	hosts := map[string]Host{"ssh": s.Dial(t), "local": localHost(t)}
	ctx := context.Background()
	for hn, h := range hosts {
		for _, tt := range badArgvs {
			if hn == "local" && tt.name != "NUL in an argument" && tt.name != "NUL in the program" && tt.name != "argument too long" {
				continue // no shell quoting on this machine
			}
			_, _, err := h.Run(ctx, tt.argv)
			if !errors.Is(err, ErrBadArgument) {
				t.Errorf("%s: Run with %s: %v, want ErrBadArgument", hn, tt.name, err)
			}
			p, err := h.(starter).start(ctx, tt.argv)
			if !errors.Is(err, ErrBadArgument) {
				if p != nil {
					p.stdin.Close()
					p.wait()
				}
				t.Errorf("%s: start with %s: %v, want ErrBadArgument", hn, tt.name, err)
			}
			if out, _, err := h.Run(ctx, []string{"echo", "alive"}); err != nil || string(out) != "alive\n" {
				t.Fatalf("%s: after %s: Run gives %q, %v", hn, tt.name, out, err)
			}
			if _, err := h.Stat("/"); err != nil {
				t.Fatalf("%s: after %s: Stat: %v", hn, tt.name, err)
			}
		}
	}
	if err := hosts["ssh"].(*SSHHost).Err(); err != nil {
		t.Fatalf("connection: %v", err)
	}
}

// TestRunProgramNamedLikeAnOption: a program whose name starts with "-" is
// run as a program (and not found), never read as an option of the
// wrappers (setsid -V would print its version and succeed).
func TestRunProgramNamedLikeAnOption(t *testing.T) {
	s := startSSHD(t)
	h := s.Dial(t)
	ctx := context.Background()
	for _, argv := range [][]string{{"-V"}, {"-h"}, {"-c", "true"}} {
		_, _, err := h.Run(ctx, argv)
		var ee *ExitError
		if !errors.As(err, &ee) || ee.Code != 127 {
			t.Errorf("Run %q: %v, want exit status 127 (not found)", argv, err)
		}
		p, err := h.start(ctx, argv)
		if err != nil {
			t.Fatal(err)
		}
		p.stdin.Close()
		if err := p.wait(); !errors.As(err, &ee) || ee.Code != 127 {
			t.Errorf("start %q: %v, want exit status 127 (not found)", argv, err)
		}
		if _, _, err := localHost(t).Run(ctx, argv); err == nil {
			t.Errorf("local Run %q succeeded", argv)
		}
	}
}

// TestSFTPPathRefusesNUL: a path with a NUL byte, or longer than PATH_MAX,
// is refused with ErrBadName before it reaches sftp-server, which would end
// the session.
func TestSFTPPathRefusesNUL(t *testing.T) {
	s := startSSHD(t)
	h := s.Dial(t)
	dir := t.TempDir()
	if err := os.WriteFile(dir+"/ok", []byte("ok"), 0o600); err != nil {
		t.Fatal(err)
	}
	ops := map[string]func(p string) error{
		"Stat":      func(p string) error { _, err := h.Stat(p); return err },
		"Open":      func(p string) error { _, err := h.Open(p); return err },
		"OpenFile":  func(p string) error { _, err := h.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600); return err },
		"Remove":    func(p string) error { return h.Remove(p) },
		"RemoveAll": func(p string) error { return h.RemoveAll(p) },
		"MkdirAll":  func(p string) error { return h.MkdirAll(p, 0o700) },
		"ReadDir":   func(p string) error { _, err := h.ReadDir(p); return err },
		"Chmod":     func(p string) error { return h.Chmod(p, 0o600) },
		"Truncate":  func(p string) error { return h.Truncate(p, 0) },
		"Rename":    func(p string) error { return h.Rename(dir+"/ok", p) },
		"Rename2":   func(p string) error { return h.Rename(p, dir+"/ok") },
		"Link":      func(p string) error { return h.Link(dir+"/ok", p) },
	}
	for _, bad := range []string{dir + "/a\x00b", "\x00", dir + "/" + strings.Repeat("x/", 2100)} {
		for name, op := range ops {
			if err := op(bad); !errors.Is(err, ErrBadName) {
				t.Errorf("%s(%.20q...): %v, want ErrBadName", name, bad, err)
			}
			if b, err := readAll(h, dir+"/ok"); err != nil || string(b) != "ok" {
				t.Fatalf("after %s(%.20q...): read %q, %v", name, bad, b, err)
			}
		}
	}
	if err := h.Err(); err != nil {
		t.Fatalf("connection: %v", err)
	}
}

func readAll(h Host, name string) ([]byte, error) {
	f, err := h.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, 64)
	n, err := f.ReadAt(b, 0)
	if errors.Is(err, io.EOF) {
		err = nil
	}
	return b[:n], err
}

// recordingReader keeps a copy of what passes through it.
type recordingReader struct {
	r   io.Reader
	mu  sync.Mutex
	buf bytes.Buffer
}

func (r *recordingReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.mu.Lock()
	r.buf.Write(p[:n])
	r.mu.Unlock()
	return n, err
}

// requests splits what the client sent into messages.
func (r *recordingReader) requests() [][]byte {
	r.mu.Lock()
	b := bytes.Clone(r.buf.Bytes())
	r.mu.Unlock()
	var out [][]byte
	for len(b) >= 4 {
		n := 4 + int(binary.BigEndian.Uint32(b))
		if n > len(b) {
			break
		}
		out = append(out, b[:n])
		b = b[n:]
	}
	return out
}

// pipeHost is an SSHHost whose one SFTP session talks to pkg/sftp's server
// over pipes, the client's requests recorded.
func pipeHost(t *testing.T) (*SSHHost, *recordingReader) {
	cr, sw := io.Pipe()
	sr, cw := io.Pipe()
	rec := &recordingReader{r: sr}
	srv, err := sftp.NewServer(struct {
		io.Reader
		io.WriteCloser
	}{rec, sw})
	if err != nil {
		t.Fatal(err)
	}
	go func() { srv.Serve(); sw.Close() }()
	h := &SSHHost{name: "pipe", dead: make(chan struct{})}
	cl, err := sftp.NewClientPipe(cr, &packetWriter{w: cw, modes: &h.modes})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close(); srv.Close() })
	h.sftp, h.reads = cl, []*sftp.Client{cl}
	return h, rec
}

// TestCreateModes: the request that creates a file or a directory carries
// its mode, so that it never exists with the server's default mode; every
// directory MkdirAll creates gets the mode.
func TestCreateModes(t *testing.T) {
	h, rec := pipeHost(t)
	dir := t.TempDir()
	f, err := h.OpenFile(dir+"/x.vhd", os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := h.MkdirAll(dir+"/a/b/c", 0o700); err != nil {
		t.Fatal(err)
	}
	want := map[string]uint32{dir + "/x.vhd": 0o600, dir + "/a": 0o700, dir + "/a/b": 0o700, dir + "/a/b/c": 0o700}
	got := map[string]uint32{}
	for _, m := range rec.requests() {
		if len(m) < 13 || (m[4] != sshFxpOpen && m[4] != sshFxpMkdir) {
			continue
		}
		d := sftpDecoder{b: m[9:]}
		p := d.string("path")
		if m[4] == sshFxpOpen {
			d.uint32("pflags")
		}
		if flags := d.uint32("attr flags"); flags&sshFileXferAttrPermissions != 0 {
			got[p] = d.uint32("permissions")
		} else {
			got[p] = 0
		}
	}
	for p, perm := range want {
		if got[p] != perm {
			t.Errorf("%s: request carries mode %#o, want %#o", p, got[p], perm)
		}
		// pkg/sftp's server ignores MKDIR's attributes (sshd's does not:
		// TestSSHMkdirAllModes).
		if fi, err := os.Stat(p); err != nil || (!fi.IsDir() && uint32(fi.Mode().Perm()) != perm) {
			t.Errorf("%s: %v, %v; want mode %#o", p, fi.Mode(), err, perm)
		}
	}
	// Opening without creating carries no mode.
	if m := (&createModes{}).apply(rec.requests()[len(rec.requests())-1]); !bytes.Equal(m, rec.requests()[len(rec.requests())-1]) {
		t.Error("a request of an unregistered path was changed")
	}
}

// TestSSHMkdirAllModes: over a real sshd, every directory MkdirAll creates
// has the mode asked for, not only the last.
func TestSSHMkdirAllModes(t *testing.T) {
	s := startSSHD(t)
	h := s.Dial(t)
	dir := t.TempDir()
	if err := h.MkdirAll(dir+"/a/b/c", 0o700); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"a", "a/b", "a/b/c"} {
		if fi, err := os.Stat(filepath.Join(dir, p)); err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("%s: %v, %v; want 0700", p, fi.Mode(), err)
		}
	}
	if err := h.MkdirAll(dir+"/a/b/c", 0o755); err != nil {
		t.Fatalf("existing directory: %v", err)
	}
	os.WriteFile(dir+"/file", nil, 0o600)
	if err := h.MkdirAll(dir+"/file/d", 0o700); err == nil {
		t.Error("MkdirAll under a file succeeded")
	}
}

// TestTransferCreatesPrivateFiles: a copy is 0600 unless asked otherwise,
// whichever way it travels.
func TestTransferCreatesPrivateFiles(t *testing.T) {
	s := startSSHD(t)
	src, dst := s.Dial(t), s.Dial(t)
	sr, dr := t.TempDir(), t.TempDir()
	randomFile(t, sr, "/0.vhd", 1<<20, 1) // 0644
	host, port, _ := strings.Cut(s.Addr, ":")
	pn := 0
	for _, c := range port {
		pn = pn*10 + int(c-'0')
	}
	direct := DirectOptions{Addr: host, Port: pn, User: s.User, IdentityFile: s.UserKey, KnownHostsFile: s.KnownHosts}
	tests := []struct {
		name string
		do   func(dst string, o *TransferOptions) error
		perm fs.FileMode
		want fs.FileMode
	}{
		{"ssh default", func(d string, o *TransferOptions) error {
			_, err := Transfer(context.Background(), src, dst, []FileCopy{{Src: sr + "/0.vhd", Dst: d}}, o)
			return err
		}, 0, 0o600},
		{"ssh 0640", func(d string, o *TransferOptions) error {
			_, err := Transfer(context.Background(), src, dst, []FileCopy{{Src: sr + "/0.vhd", Dst: d}}, o)
			return err
		}, 0o640, 0o640},
		{"local default", func(d string, o *TransferOptions) error {
			l, _ := Local("/")
			_, err := Transfer(context.Background(), l, l, []FileCopy{{Src: sr + "/0.vhd", Dst: d}}, o)
			return err
		}, 0, 0o600},
		{"direct default", func(d string, o *TransferOptions) error {
			_, err := TransferDirect(context.Background(), src, dst, []FileCopy{{Src: sr + "/0.vhd", Dst: d}}, direct, o)
			return err
		}, 0, 0o600},
	}
	for i, tt := range tests {
		d := dr + "/" + string(rune('a'+i)) + ".vhd"
		if err := tt.do(d, &TransferOptions{Perm: tt.perm}); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if fi, err := os.Stat(d); err != nil || fi.Mode().Perm() != tt.want {
			t.Errorf("%s: %v, %v; want %v", tt.name, fi.Mode(), err, tt.want)
		}
	}
}

// closeFailHost fails the Close of every file opened write-only without
// O_CREATE: Transfer's extra write handles.
type closeFailHost struct{ Host }

func (h closeFailHost) Streams() int { return 2 }

func (h closeFailHost) OpenFile(name string, flag int, perm fs.FileMode) (vhd.File, error) {
	f, err := h.Host.OpenFile(name, flag, perm)
	if err != nil || flag != os.O_WRONLY {
		return f, err
	}
	return closeFailFile{f}, nil
}

type closeFailFile struct{ vhd.File }

var errCloseFailed = errors.New("close: write failed on the server")

func (f closeFailFile) Close() error {
	f.File.Close()
	return errCloseFailed
}

// TestTransferReportsExtraHandleClose: a failed Close of one of the extra
// write handles fails the file, which is not renamed to its final name.
func TestTransferReportsExtraHandleClose(t *testing.T) {
	h := localHost(t)
	randomFile(t, h.Root(), "/src/0.vhd", 3<<20, 1)
	h.MkdirAll("/dst", 0o700)
	_, err := Transfer(context.Background(), h, closeFailHost{h}, []FileCopy{{Src: "/src/0.vhd", Dst: "/dst/0.vhd"}}, nil)
	if !errors.Is(err, errCloseFailed) {
		t.Fatalf("got %v, want the close error", err)
	}
	if _, err := h.Stat("/dst/0.vhd"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("final name: %v, want none", err)
	}
}
