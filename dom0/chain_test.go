package dom0

import (
	"bytes"
	"context"
	"errors"
	"math/rand"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/xenflow/xenflow/vhd"
)

var (
	testInstance = mustUUID("0f8e4b1c-1111-4a4a-8b8b-000000000001")
	testSrcSR    = mustUUID("5a5a5a5a-2222-4b4b-8c8c-000000000002")
	testDstSR    = mustUUID("6b6b6b6b-3333-4c4c-8d8d-000000000003")
)

func mustUUID(s string) vhd.UUID {
	u, err := vhd.ParseUUID(s)
	if err != nil {
		panic(err)
	}
	return u
}

const chainDiskSize = 16 << 20

// makeChain builds a chain of depth disks in the source SR of h, each layer
// writing its own 4 KiB-aligned pieces, ancestors hidden as SM leaves them.
// It returns the leaf's VDI UUID and the chain's content.
func makeChain(t *testing.T, h Host, depth int, seed int64) (vhd.UUID, []byte) {
	t.Helper()
	sr, _ := SRPath(testSrcSR)
	if err := h.MkdirAll(sr, 0o755); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewSource(seed))
	want := make([]byte, chainDiskSize)
	var prev string
	var leaf vhd.UUID
	for k := 0; k < depth; k++ {
		u, _ := vhd.NewUUID(rng)
		name := sr + "/" + u.String() + ".vhd"
		var d *vhd.Disk
		var err error
		if k == 0 {
			d, err = vhd.Create(h, name, chainDiskSize, &vhd.CreateOptions{UUID: u})
		} else {
			d, err = vhd.Snapshot(h, name, prev, &vhd.CreateOptions{UUID: u})
		}
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 6; i++ {
			off := int64(rng.Intn(chainDiskSize/4096-64)) * 4096
			buf := make([]byte, 4096*(1+rng.Intn(60)))
			rng.Read(buf)
			if _, err := d.WriteAt(buf, off); err != nil {
				t.Fatal(err)
			}
			copy(want[off:], buf)
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		if k > 0 { // the parent becomes read-only and hidden
			p, err := vhd.OpenFile(h, prev, os.O_RDWR)
			if err != nil {
				t.Fatal(err)
			}
			if err := p.SetHidden(true); err != nil {
				t.Fatal(err)
			}
			p.Close()
		}
		prev, leaf = name, u
	}
	return leaf, want
}

func readChain(t *testing.T, h Host, leaf string) []byte {
	t.Helper()
	c, err := vhd.OpenChain(h, leaf)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got := make([]byte, c.Size())
	if _, err := c.ReadAt(got, 0); err != nil {
		t.Fatal(err)
	}
	return got
}

// listTree returns every path under dir on this machine, relative to it.
func listTree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && p != dir {
			r, _ := filepath.Rel(dir, p)
			out = append(out, r)
		}
		return nil
	})
	sort.Strings(out)
	return out
}

// chainPair gives two hosts whose roots are directories of this machine:
// local hosts, or SSH hosts on one sshd each seeing its own directory as
// its root through a rootedHost.
func chainPair(t *testing.T, kind string) (src, dst Host, srcRoot, dstRoot string) {
	t.Helper()
	if kind == "local" {
		return hostPair(t, kind)
	}
	s := startSSHD(t)
	srcRoot, dstRoot = t.TempDir(), t.TempDir()
	return &rootedHost{Host: s.Dial(t), root: srcRoot, sshd: s}, &rootedHost{Host: s.Dial(t), root: dstRoot, sshd: s}, srcRoot, dstRoot
}

// directTo says how the source reaches dst's sshd by itself. The two
// "hosts" share one machine, so rooted paths are passed as seen from "/".
func directTo(t *testing.T, src, dst Host) *DirectOptions {
	t.Helper()
	rs, rd := src.(*rootedHost), dst.(*rootedHost)
	s := rd.sshd
	// The key and known_hosts live on the source "host".
	for _, f := range []struct{ from, to string }{{s.UserKey, "/etc/xenflow/key"}, {s.KnownHosts, "/etc/xenflow/known_hosts"}} {
		b, err := os.ReadFile(f.from)
		if err != nil {
			t.Fatal(err)
		}
		os.MkdirAll(rs.root+"/etc/xenflow", 0o700)
		if err := os.WriteFile(rs.root+f.to, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	rs.peerRoot = rd.root
	host, port, _ := strings.Cut(s.Addr, ":")
	p, _ := strconv.Atoi(port)
	return &DirectOptions{Addr: host, Port: p, User: s.User, IdentityFile: "/etc/xenflow/key", KnownHostsFile: "/etc/xenflow/known_hosts"}
}

func TestMoveChain(t *testing.T) {
	for _, kind := range []string{"local", "ssh", "ssh-direct"} {
		t.Run(kind, func(t *testing.T) {
			src, dst, srcRoot, dstRoot := chainPair(t, kind)
			leaf, want := makeChain(t, src, 3, 1)
			dstSR, _ := SRPath(testDstSR)
			if err := dst.MkdirAll(dstSR, 0o755); err != nil {
				t.Fatal(err)
			}
			req := SendRequest{Label: ChainLabel{Instance: testInstance}, SrcSR: testSrcSR, Leaf: leaf, DstSR: testDstSR}
			var last Progress
			opts := &ChainOptions{Transfer: &TransferOptions{Progress: func(p Progress) { last = p }}}
			if kind == "ssh-direct" {
				opts.Direct = directTo(t, src, dst)
			}
			before := listTree(t, srcRoot)
			res, err := MoveChain(context.Background(), src, dst, req, opts)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Chain) != 3 || len(res.Files) != 3 {
				t.Fatalf("import result %+v", res)
			}
			if last.Done != last.Total || last.Total == 0 {
				t.Errorf("last progress %+v", last)
			}
			if got := readChain(t, dst, res.Files[0]); !bytes.Equal(got, want) {
				t.Fatal("the chain on the destination reads differently")
			}
			if after := listTree(t, srcRoot); !equalStrings(after, before) {
				t.Errorf("source changed: %v, was %v", after, before)
			}
			var wantDst []string
			wantDst = append(wantDst, "var", "var/run", "var/run/sr-mount", "var/run/sr-mount/"+testDstSR.String())
			for _, f := range res.Files {
				wantDst = append(wantDst, f[1:])
			}
			sort.Strings(wantDst)
			if got := listTree(t, dstRoot); !equalStrings(got, wantDst) {
				t.Errorf("destination holds %v, want %v (no staging left)", got, wantDst)
			}
		})
	}
}

func TestSendChainInTwoPhases(t *testing.T) {
	// Nova's resize up: ancestors while the instance runs (seq 1..n), then
	// the leaf alone after power-off (seq 0).
	src, dst := localHost(t), localHost(t)
	leaf, want := makeChain(t, src, 3, 2)
	srcSR, _ := SRPath(testSrcSR)
	c, err := vhd.OpenChain(src, srcSR+"/"+leaf.String()+".vhd")
	if err != nil {
		t.Fatal(err)
	}
	parent := c.Disks()[1].UUID()
	c.Close()
	dstSR, _ := SRPath(testDstSR)
	_ = dst.MkdirAll(dstSR, 0o755)
	label := ChainLabel{Instance: testInstance, Ephemeral: 0}
	ctx := context.Background()
	if _, err := SendChain(ctx, src, dst, SendRequest{Label: label, SrcSR: testSrcSR, Leaf: parent, DstSR: testDstSR, FirstSeq: 1}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := SendChain(ctx, src, dst, SendRequest{Label: label, SrcSR: testSrcSR, Leaf: leaf, DstSR: testDstSR, Depth: 1}, nil); err != nil {
		t.Fatal(err)
	}
	res, err := ImportChain(ctx, dst, label, testDstSR, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := readChain(t, dst, res.Files[0]); !bytes.Equal(got, want) {
		t.Fatal("chain sent in two phases reads differently")
	}
}

func TestChainFaults(t *testing.T) {
	ctx := context.Background()
	label := ChainLabel{Instance: testInstance}
	setup := func(t *testing.T, seed int64) (*LocalHost, *LocalHost, SendRequest, string) {
		src, dst := localHost(t), localHost(t)
		leaf, _ := makeChain(t, src, 3, seed)
		dstSR, _ := SRPath(testDstSR)
		_ = dst.MkdirAll(dstSR, 0o755)
		return src, dst, SendRequest{Label: label, SrcSR: testSrcSR, Leaf: leaf, DstSR: testDstSR}, dstSR
	}
	emptySR := func(t *testing.T, dst *LocalHost, dstSR string) {
		t.Helper()
		if ents, err := dst.ReadDir(dstSR); err != nil || len(ents) != 0 {
			t.Fatalf("destination SR holds %v (%v), want it untouched and empty", ents, err)
		}
	}
	noStaging := func(t *testing.T, src, dst *LocalHost, req SendRequest) {
		t.Helper()
		s, r, _ := StagingDirs(req, nil)
		for _, x := range []struct {
			h *LocalHost
			p string
		}{{src, s}, {dst, r}} {
			if _, err := x.h.Stat(x.p); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("staging %s left on %s (%v)", x.p, x.h, err)
			}
		}
	}

	t.Run("gap in the staging set", func(t *testing.T) {
		src, dst, req, dstSR := setup(t, 3)
		if _, err := SendChain(ctx, src, dst, req, nil); err != nil {
			t.Fatal(err)
		}
		_, recv, _ := StagingDirs(req, nil)
		if err := dst.Remove(recv + "/1.vhd"); err != nil {
			t.Fatal(err)
		}
		_, err := ImportChain(ctx, dst, label, testDstSR, nil)
		if !errors.Is(err, vhd.ErrSequenceGap) {
			t.Fatalf("got %v, want vhd.ErrSequenceGap", err)
		}
		emptySR(t, dst, dstSR)
		noStaging(t, src, dst, req)
	})
	t.Run("hidden leaf", func(t *testing.T) {
		src, dst, req, dstSR := setup(t, 4)
		srcSR, _ := SRPath(testSrcSR)
		d, err := vhd.OpenFile(src, srcSR+"/"+req.Leaf.String()+".vhd", os.O_RDWR)
		if err != nil {
			t.Fatal(err)
		}
		d.SetHidden(true)
		d.Close()
		_, err = MoveChain(ctx, src, dst, req, nil)
		if !errors.Is(err, vhd.ErrHiddenLeaf) {
			t.Fatalf("got %v, want vhd.ErrHiddenLeaf", err)
		}
		emptySR(t, dst, dstSR)
		noStaging(t, src, dst, req)
	})
	t.Run("corrupt VHD in the chain", func(t *testing.T) {
		src, dst, req, dstSR := setup(t, 5)
		if _, err := SendChain(ctx, src, dst, req, nil); err != nil {
			t.Fatal(err)
		}
		_, recv, _ := StagingDirs(req, nil)
		p := filepath.Join(dst.Root(), recv, "1.vhd")
		b, _ := os.ReadFile(p)
		b[len(b)-512+70] ^= 0xff // in the footer's checksummed fields
		b[70] ^= 0xff            // and its copy at offset 0
		os.WriteFile(p, b, 0o644)
		_, err := ImportChain(ctx, dst, label, testDstSR, nil)
		var se *vhd.StagingError
		if err == nil || !errors.As(err, &se) {
			t.Fatalf("got %v, want a *vhd.StagingError", err)
		}
		if se.Step != "inspect" && se.Step != "validate" {
			t.Errorf("refused at step %q: %v", se.Step, err)
		}
		t.Log(err)
		emptySR(t, dst, dstSR)
		noStaging(t, src, dst, req)
	})
	t.Run("destination disk full", func(t *testing.T) {
		src, dst, req, dstSR := setup(t, 6)
		full := &diskFullHost{Host: dst, left: 8 << 10}
		_, err := MoveChain(ctx, src, full, req, nil)
		if !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("got %v, want ENOSPC", err)
		}
		emptySR(t, dst, dstSR)
		noStaging(t, src, dst, req)
	})
	t.Run("cancelled mid-transfer", func(t *testing.T) {
		src, dst, req, dstSR := setup(t, 7)
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		_, err := MoveChain(cctx, src, dst, req, &ChainOptions{
			KeepPartialOnFailure: true, // ignored on cancellation
			Transfer:             &TransferOptions{ChunkSize: 4096, Progress: func(p Progress) { cancel() }},
		})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want context.Canceled", err)
		}
		emptySR(t, dst, dstSR)
		noStaging(t, src, dst, req)
	})
	t.Run("bad requests", func(t *testing.T) {
		src, dst, req, _ := setup(t, 8)
		for _, r := range []SendRequest{
			{Label: ChainLabel{}, SrcSR: req.SrcSR, Leaf: req.Leaf, DstSR: req.DstSR},
			{Label: label, Leaf: req.Leaf, DstSR: req.DstSR},
			{Label: label, SrcSR: req.SrcSR, DstSR: req.DstSR},
			{Label: label, SrcSR: req.SrcSR, Leaf: req.Leaf},
			{Label: ChainLabel{Instance: testInstance, Ephemeral: -1}, SrcSR: req.SrcSR, Leaf: req.Leaf, DstSR: req.DstSR},
		} {
			if _, err := MoveChain(ctx, src, dst, r, nil); !errors.Is(err, ErrBadName) {
				t.Errorf("%+v: got %v, want ErrBadName", r, err)
			}
		}
		if _, err := MoveChain(ctx, src, dst, req, &ChainOptions{DestStagingRoot: "/images/../etc"}); !errors.Is(err, ErrBadName) {
			t.Errorf("DestStagingRoot with ..: got %v", err)
		}
	})
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// rootedHost shows a Host's directory as the root of another: the two
// "hosts" of one sshd are two directories on it.
type rootedHost struct {
	Host
	root     string
	sshd     *testSSHD
	peerRoot string // root of the host that scp targets ("user@host:/path")
}

func (h *rootedHost) p(name string) string { return h.root + hostPath(name) }
func (h *rootedHost) Open(name string) (vhd.File, error) {
	return h.Host.Open(h.p(name))
}
func (h *rootedHost) OpenFile(name string, flag int, perm os.FileMode) (vhd.File, error) {
	return h.Host.OpenFile(h.p(name), flag, perm)
}
func (h *rootedHost) Stat(name string) (os.FileInfo, error) { return h.Host.Stat(h.p(name)) }
func (h *rootedHost) Rename(o, n string) error              { return h.Host.Rename(h.p(o), h.p(n)) }
func (h *rootedHost) Link(o, n string) error                { return h.Host.Link(h.p(o), h.p(n)) }
func (h *rootedHost) Remove(name string) error              { return h.Host.Remove(h.p(name)) }
func (h *rootedHost) RemoveAll(name string) error           { return h.Host.RemoveAll(h.p(name)) }
func (h *rootedHost) MkdirAll(name string, perm os.FileMode) error {
	return h.Host.MkdirAll(h.p(name), perm)
}
func (h *rootedHost) ReadDir(name string) ([]os.DirEntry, error) { return h.Host.ReadDir(h.p(name)) }
func (h *rootedHost) Chmod(name string, m os.FileMode) error     { return h.Host.Chmod(h.p(name), m) }
func (h *rootedHost) Truncate(name string, n int64) error        { return h.Host.Truncate(h.p(name), n) }

// Run rewrites RunPath arguments ("./x") to the rooted directory, and scp
// targets ("user@host:/x") to the peer's.
func (h *rootedHost) Run(ctx context.Context, argv []string) ([]byte, []byte, error) {
	a := append([]string(nil), argv...)
	for i, s := range a {
		if len(s) > 2 && s[:2] == "./" {
			a[i] = RunPath(h.root + "/" + path.Clean(s[2:]))
		}
		if k, v, ok := strings.Cut(s, "=./"); ok {
			a[i] = k + "=" + RunPath(h.root+"/"+path.Clean(v))
		}
		if at, p, ok := strings.Cut(s, ":/"); ok && h.peerRoot != "" && strings.Contains(at, "@") {
			a[i] = at + ":" + h.peerRoot + "/" + p
		}
	}
	return h.Host.Run(ctx, a)
}

// TestSendChainKeepPartialResumes: with KeepPartialOnFailure a send that
// fails part-way leaves the destination staging for the next SendChain of
// the same label to resume; DestStagingRoot puts it at Nova's place.
func TestSendChainKeepPartialResumes(t *testing.T) {
	src, dst := localHost(t), localHost(t)
	leaf, want := makeChain(t, src, 2, 11)
	dstSR, _ := SRPath(testDstSR)
	_ = dst.MkdirAll(dstSR, 0o755)
	req := SendRequest{Label: ChainLabel{Instance: testInstance, Ephemeral: 1}, SrcSR: testSrcSR, Leaf: leaf, DstSR: testDstSR}
	opts := &ChainOptions{
		DestStagingRoot:      "/images",
		KeepPartialOnFailure: true,
		Transfer:             &TransferOptions{ChunkSize: 16 << 10, Writers: 1, Files: 1},
	}
	ctx := context.Background()
	_, err := SendChain(ctx, src, &diskFullHost{Host: dst, left: 300 << 10}, req, opts)
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("got %v, want ENOSPC", err)
	}
	send, recv, _ := StagingDirs(req, opts)
	if recv != "/images/instance"+testInstance.String()+"_ephemeral_1" {
		t.Errorf("receive staging %s", recv)
	}
	if _, err := src.Stat(send); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("source staging left: %v", err)
	}
	if _, err := dst.Stat(recv); err != nil {
		t.Fatalf("destination staging not kept: %v", err)
	}
	res, err := SendChain(ctx, src, dst, req, opts)
	if err != nil {
		t.Fatal(err)
	}
	var resumed int64
	for _, r := range res {
		resumed += r.Resumed
	}
	if resumed == 0 {
		t.Error("the second send resumed nothing")
	}
	imp, err := ImportChain(ctx, dst, req.Label, testDstSR, opts)
	if err != nil {
		t.Fatal(err)
	}
	if got := readChain(t, dst, imp.Files[0]); !bytes.Equal(got, want) {
		t.Fatal("resumed chain reads differently")
	}
	if _, err := dst.Stat(recv); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("staging left after import: %v", err)
	}
	if err := CleanupChain(ctx, src, dst, req, opts); err != nil {
		t.Errorf("CleanupChain after everything is gone: %v", err)
	}
}
