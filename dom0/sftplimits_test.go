package dom0

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// scriptedSFTP is a server that answers with fixed bytes and records what
// the client sent.
type scriptedSFTP struct {
	in  *bytes.Reader
	out bytes.Buffer
}

func (s *scriptedSFTP) Read(p []byte) (int, error)  { return s.in.Read(p) }
func (s *scriptedSFTP) Write(p []byte) (int, error) { return s.out.Write(p) }

func sftpString(s string) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(s))), s...)
}

func versionMsg(exts ...string) []byte {
	b := binary.BigEndian.AppendUint32(nil, 3)
	for _, e := range exts {
		b = append(b, sftpString(e)...)
		b = append(b, sftpString("1")...)
	}
	return sftpPacket(sshFxpVersion, b)
}

func limitsReply(id uint32, vals ...uint64) []byte {
	b := binary.BigEndian.AppendUint32(nil, id)
	for _, v := range vals {
		b = binary.BigEndian.AppendUint64(b, v)
	}
	return sftpPacket(sshFxpExtendedReply, b)
}

func TestQuerySFTPLimits(t *testing.T) {
	cat := func(bs ...[]byte) []byte { return bytes.Join(bs, nil) }
	tests := []struct {
		name    string
		reply   []byte
		want    sftpLimits
		ok      bool
		errLike string // "" for no error; else a substring of the error
		field   string // the *SFTPProtocolError's field, when one
	}{
		{name: "OpenSSH", reply: cat(versionMsg("posix-rename@openssh.com", limitsExtension), limitsReply(1, 262144, 261120, 261120, 0)),
			want: sftpLimits{MaxPacket: 262144, MaxRead: 261120, MaxWrite: 261120}, ok: true},
		{name: "no limits extension", reply: versionMsg("posix-rename@openssh.com")},
		{name: "no extensions", reply: versionMsg()},
		{name: "not VERSION", reply: sftpPacket(sshFxpStatus, make([]byte, 8)), errLike: "VERSION", field: "type"},
		{name: "old version", reply: sftpPacket(sshFxpVersion, binary.BigEndian.AppendUint32(nil, 2)), errLike: "version 2", field: "version"},
		{name: "version cut", reply: sftpPacket(sshFxpVersion, []byte{0, 0}), errLike: "version", field: "version"},
		{name: "extension name cut", reply: sftpPacket(sshFxpVersion, append(binary.BigEndian.AppendUint32(nil, 3), 0, 0, 0, 9, 'a')), field: "extension name"},
		{name: "extension data missing", reply: sftpPacket(sshFxpVersion, append(binary.BigEndian.AppendUint32(nil, 3), sftpString(limitsExtension)...)), field: "extension data length"},
		{name: "refused", reply: cat(versionMsg(limitsExtension), sftpPacket(sshFxpStatus, append(binary.BigEndian.AppendUint32(nil, 1), 0, 0, 0, 8))), errLike: "status 8", field: "status"},
		{name: "wrong id", reply: cat(versionMsg(limitsExtension), limitsReply(7, 1, 2, 3, 4)), errLike: "got 7, want 1", field: "request id"},
		{name: "reply cut", reply: cat(versionMsg(limitsExtension), limitsReply(1, 1, 2, 3)), field: "max-open-handles"},
		{name: "unexpected type", reply: cat(versionMsg(limitsExtension), sftpPacket(sshFxpVersion, binary.BigEndian.AppendUint32(nil, 1))), errLike: "EXTENDED_REPLY", field: "type"},
		{name: "zero length", reply: []byte{0, 0, 0, 0}, field: "message length"},
		{name: "huge length", reply: []byte{0x7f, 0, 0, 0, 2}, field: "message length"},
		{name: "connection closed", reply: nil, errLike: "EOF"},
		{name: "closed mid-message", reply: []byte{0, 0, 0, 9, 2, 0}, errLike: "unexpected EOF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &scriptedSFTP{in: bytes.NewReader(tt.reply)}
			lim, ok, err := querySFTPLimits(s)
			if lim != tt.want || ok != tt.ok {
				t.Errorf("got %+v, %v; want %+v, %v", lim, ok, tt.want, tt.ok)
			}
			wantErr := tt.errLike != "" || tt.field != ""
			if (err != nil) != wantErr || (err != nil && !strings.Contains(err.Error(), tt.errLike)) {
				t.Fatalf("error %v, want one containing %q", err, tt.errLike)
			}
			var pe *SFTPProtocolError
			if tt.field != "" && (!errors.As(err, &pe) || pe.Field != tt.field) {
				t.Errorf("error %v, want an *SFTPProtocolError on field %q", err, tt.field)
			}
			// The client's first message is always INIT version 3.
			if !bytes.HasPrefix(s.out.Bytes(), []byte{0, 0, 0, 5, sshFxpInit, 0, 0, 0, 3}) {
				t.Errorf("client sent %x, want INIT 3 first", s.out.Bytes())
			}
		})
	}
}

func FuzzQuerySFTPLimits(f *testing.F) {
	f.Add(append(versionMsg(limitsExtension), limitsReply(1, 262144, 261120, 261120, 0)...))
	f.Add(versionMsg())
	f.Add([]byte{0, 0, 0, 1, 2})
	f.Fuzz(func(t *testing.T, reply []byte) {
		lim, ok, err := querySFTPLimits(&scriptedSFTP{in: bytes.NewReader(reply)})
		if err != nil && (ok || lim != sftpLimits{}) {
			t.Fatalf("error %v with limits %+v, %v", err, lim, ok)
		}
	})
}

func TestRequestsPerFile(t *testing.T) {
	tests := []struct {
		cfg  SSHConfig
		pkt  int
		want int
	}{
		{pkt: 64 << 10, want: 32},
		{pkt: maxSFTPPayload, want: 8},
		{pkt: 1 << 20, want: 4},
		{pkt: 4 << 10, want: maxRequestsPerFile},
		{pkt: 1, want: maxRequestsPerFile},
		{pkt: 0, want: maxRequestsPerFile},
		{cfg: SSHConfig{SFTPRequestsPerFile: 100}, pkt: 1, want: 100},
	}
	for _, tt := range tests {
		if got := requestsPerFile(&tt.cfg, tt.pkt); got != tt.want {
			t.Errorf("requestsPerFile(%+v, %d) = %d, want %d", tt.cfg.SFTPRequestsPerFile, tt.pkt, got, tt.want)
		}
	}
}

func TestSFTPPacketSizes(t *testing.T) {
	openssh := sftpLimits{MaxPacket: 262144, MaxRead: 261120, MaxWrite: 261120}
	tests := []struct {
		name    string
		cfg     SSHConfig
		lim     sftpLimits
		haveLim bool
		want    sftpPackets
	}{
		{name: "no limits", want: sftpPackets{read: 64 << 10, write: maxSFTPPayload}},
		{name: "OpenSSH limits", lim: openssh, haveLim: true, want: sftpPackets{read: 261120, write: 261120}},
		{name: "large limits clamped", lim: sftpLimits{MaxRead: 1 << 30, MaxWrite: 1 << 30}, haveLim: true, want: sftpPackets{read: maxSFTPPayload, write: maxSFTPPayload}},
		{name: "small packet limit", lim: sftpLimits{MaxPacket: 34000, MaxRead: 1 << 20, MaxWrite: 1 << 20}, haveLim: true, want: sftpPackets{read: 34000 - 1024, write: 34000 - 1024}},
		{name: "write smaller than read", lim: sftpLimits{MaxRead: 200000, MaxWrite: 100000}, haveLim: true, want: sftpPackets{read: 100000, write: 100000}},
		{name: "zero means unknown", lim: sftpLimits{}, haveLim: true, want: sftpPackets{read: 64 << 10, write: maxSFTPPayload}},
		{name: "small limits kept", lim: sftpLimits{MaxRead: 8192, MaxWrite: 16384}, haveLim: true, want: sftpPackets{read: 8192, write: 16384}},
		{name: "tiny limits ignored", lim: sftpLimits{MaxRead: 1000, MaxWrite: 2000}, haveLim: true, want: sftpPackets{read: 64 << 10, write: maxSFTPPayload}},
		{name: "all 1", lim: sftpLimits{MaxPacket: 1, MaxRead: 1, MaxWrite: 1, MaxHandles: 1}, haveLim: true, want: sftpPackets{read: 64 << 10, write: maxSFTPPayload}},
		{name: "tiny packet limit", lim: sftpLimits{MaxPacket: 1025, MaxRead: 1 << 20, MaxWrite: 1 << 20}, haveLim: true, want: sftpPackets{read: 64 << 10, write: maxSFTPPayload}},
		{name: "floor", lim: sftpLimits{MaxRead: minSFTPPayload, MaxWrite: minSFTPPayload - 1}, haveLim: true, want: sftpPackets{read: minSFTPPayload, write: maxSFTPPayload}},
		{name: "configuration wins", cfg: SSHConfig{SFTPMaxPacket: 32768, SFTPMaxWritePacket: 65536}, lim: openssh, haveLim: true, want: sftpPackets{read: 32768, write: 65536}},
	}
	for _, tt := range tests {
		if got := sftpPacketSizes(&tt.cfg, tt.lim, tt.haveLim); got != tt.want {
			t.Errorf("%s: got %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

// TestProbeSFTPLimits asks the real sshd for its limits: OpenSSH 8.7 and
// later give them.
func TestProbeSFTPLimits(t *testing.T) {
	s := startSSHD(t)
	h := s.Dial(t)
	lim, ok, err := probeSFTPLimits(h.Client())
	if err != nil {
		t.Fatal(err)
	}
	v := string(h.Client().ServerVersion())
	major, minor, found := opensshVersion(v)
	if !found {
		t.Fatalf("the test's sshd says it is %q, not OpenSSH", v)
	}
	if major*10+minor < 87 {
		if ok {
			t.Logf("OpenSSH %d.%d gives limits %+v", major, minor, lim)
		}
		return
	}
	if !ok || lim.MaxRead < 64<<10 || lim.MaxWrite < 64<<10 {
		t.Fatalf("OpenSSH %d.%d: limits %+v, %v; want reads and writes of at least 64 KiB", major, minor, lim, ok)
	}
	if got := sftpPacketSizes(&SSHConfig{}, lim, ok); got.read <= 64<<10 {
		t.Errorf("reads of %d bytes from OpenSSH %d.%d, want more than 64 KiB", got.read, major, minor)
	}
}

// opensshVersion parses "SSH-2.0-OpenSSH_9.2p1 Debian-2".
func opensshVersion(v string) (major, minor int, ok bool) {
	_, rest, found := strings.Cut(v, "OpenSSH_")
	if !found {
		return 0, 0, false
	}
	maj, rest, found := strings.Cut(rest, ".")
	if !found || len(rest) == 0 {
		return 0, 0, false
	}
	major, err1 := strconv.Atoi(maj)
	minor, err2 := strconv.Atoi(rest[:1])
	return major, minor, err1 == nil && err2 == nil
}

// TestHostileSFTPLimits dials a server whose limits@openssh.com reply says
// every limit is 1 byte, then reads and writes 256 KiB: the requests in
// flight (one goroutine each in pkg/sftp) and the memory they take must stay
// bounded, as with an honest server.
func TestHostileSFTPLimits(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, _ := ssh.NewSignerFromKey(priv)
	tests := []struct {
		name string
		lim  sftpLimits
	}{
		{name: "all 1", lim: sftpLimits{MaxPacket: 1, MaxRead: 1, MaxWrite: 1, MaxHandles: 1}},
		{name: "packet 1025", lim: sftpLimits{MaxPacket: 1025, MaxRead: 1 << 20, MaxWrite: 1 << 20}},
		{name: "read 100 write 4095", lim: sftpLimits{MaxRead: 100, MaxWrite: 4095}},
	}
	const size = 256 << 10
	want := bytes.Repeat([]byte("xenflow!"), size/8)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startInProcessServerLimits(t, "", signer.PublicKey(), &tt.lim)
			h, err := DialSSH(context.Background(), s.addr, &SSHConfig{User: "root", KnownHostsFiles: []string{s.knownHosts}, Signers: []ssh.Signer{signer}, KeepaliveInterval: -1})
			if err != nil {
				t.Fatal(err)
			}
			defer h.Close()
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "src"), want, 0o600); err != nil {
				t.Fatal(err)
			}
			ops := []struct {
				name string
				do   func() error
			}{
				{"read", func() error {
					f, err := h.Open(filepath.Join(dir, "src"))
					if err != nil {
						return err
					}
					defer f.Close()
					got := make([]byte, size)
					if _, err := f.ReadAt(got, 0); err != nil {
						return err
					}
					if !bytes.Equal(got, want) {
						return errors.New("read back other bytes")
					}
					return nil
				}},
				{"write", func() error {
					f, err := h.OpenFile(filepath.Join(dir, "dst"), os.O_WRONLY|os.O_CREATE, 0o600)
					if err != nil {
						return err
					}
					if _, err := f.WriteAt(want, 0); err != nil {
						f.Close()
						return err
					}
					return f.Close()
				}},
			}
			for _, op := range ops {
				peak, alloc, err := goroutinePeak(op.do)
				if err != nil {
					t.Fatalf("%s: %v", op.name, err)
				}
				t.Logf("%s of %d KiB: %d more goroutines at the peak, %.1f MiB allocated", op.name, size>>10, peak, float64(alloc)/(1<<20))
				if peak > 4*maxRequestsPerFile {
					t.Errorf("%s: %d more goroutines at the peak, want at most %d", op.name, peak, 4*maxRequestsPerFile)
				}
				if alloc > 64<<20 {
					t.Errorf("%s: %d MiB allocated, want at most 64 MiB", op.name, alloc>>20)
				}
			}
		})
	}
}

// goroutinePeak runs fn while sampling runtime.NumGoroutine, and returns
// how far the count rose above where it started and the bytes allocated.
func goroutinePeak(fn func() error) (peak int, alloc uint64, err error) {
	var before, after runtime.MemStats
	base := runtime.NumGoroutine()
	stop, sampled := make(chan struct{}), make(chan int)
	go func() {
		top := 0
		for {
			top = max(top, runtime.NumGoroutine())
			select {
			case <-stop:
				sampled <- top
				return
			default:
				time.Sleep(50 * time.Microsecond)
			}
		}
	}()
	runtime.ReadMemStats(&before)
	err = fn()
	runtime.ReadMemStats(&after)
	close(stop)
	return <-sampled - base - 1, after.TotalAlloc - before.TotalAlloc, err
}
