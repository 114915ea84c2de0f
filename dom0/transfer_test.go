package dom0

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io/fs"
	"math/rand"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"github.com/xenflow/xenflow/vhd"
	"io"
	"sync/atomic"
)

// randomFile writes size pseudo-random bytes at root+name and returns them.
func randomFile(t testing.TB, root, name string, size int, seed int64) []byte {
	t.Helper()
	b := make([]byte, size)
	rand.New(rand.NewSource(seed)).Read(b)
	p := filepath.Join(root, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}

func localHost(t testing.TB) *LocalHost {
	t.Helper()
	h, err := Local(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// hostPair returns two hosts of the kind named and their root directories
// on this machine: "local" (two directories) or "ssh" (two directories on
// one real sshd, each seen through its own connection).
func hostPair(t *testing.T, kind string) (src, dst Host, srcRoot, dstRoot string) {
	t.Helper()
	if kind == "local" {
		a, b := localHost(t), localHost(t)
		return a, b, a.Root(), b.Root()
	}
	s := startSSHD(t)
	return s.Dial(t), s.Dial(t), "", ""
}

func TestTransfer(t *testing.T) {
	for _, kind := range []string{"local", "ssh"} {
		t.Run(kind, func(t *testing.T) {
			src, dst, sr, dr := hostPair(t, kind)
			if kind == "ssh" {
				sr, dr = t.TempDir(), t.TempDir()
			}
			sizes := []int{0, 1, 1 << 20, 3<<20 + 12345}
			var files []FileCopy
			var want [][]byte
			for i, n := range sizes {
				name := "/var/run/sr-mount/src/" + string(rune('a'+i)) + ".vhd"
				want = append(want, randomFile(t, sr, name, n, int64(i)))
				files = append(files, FileCopy{Src: sr + name, Dst: dr + "/images/instance1/" + string(rune('0'+i)) + ".vhd"})
			}
			if kind == "local" { // the paths are the hosts' own
				for i := range files {
					files[i].Src = files[i].Src[len(sr):]
					files[i].Dst = files[i].Dst[len(dr):]
				}
			}
			if err := dst.MkdirAll(dirOf(files[0].Dst), 0o755); err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			var last Progress
			perFile := map[string]int64{}
			calls := 0
			res, err := Transfer(context.Background(), src, dst, files, &TransferOptions{
				ChunkSize:  256 << 10,
				FileSHA256: true,
				Progress: func(p Progress) {
					mu.Lock()
					defer mu.Unlock()
					calls++
					if p.Done < last.Done || p.FileDone > p.FileSize || p.Done > p.Total {
						t.Errorf("progress went wrong: %+v after %+v", p, last)
					}
					last = p
					perFile[p.File] = p.FileDone
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(res) != len(files) {
				t.Fatalf("%d results, want %d", len(res), len(files))
			}
			var total int64
			for i, f := range files {
				got, err := os.ReadFile(filepath.Join(dr, f.Dst[len(dirPrefix(kind, dr)):]))
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want[i]) {
					t.Fatalf("%s differs", f.Dst)
				}
				if res[i].SHA256 != sha256.Sum256(want[i]) || res[i].Size != int64(len(want[i])) {
					t.Errorf("result %d: %+v", i, res[i])
				}
				if len(want[i]) > 0 && perFile[f.Dst] != int64(len(want[i])) {
					t.Errorf("progress for %s ended at %d, want %d", f.Dst, perFile[f.Dst], len(want[i]))
				}
				total += int64(len(want[i]))
			}
			if last.Done != total || last.Total != total || calls < 4 {
				t.Errorf("last progress %+v after %d calls, want done=total=%d", last, calls, total)
			}
			ents, _ := os.ReadDir(filepath.Join(dr, "images/instance1"))
			if len(ents) != len(files) {
				t.Errorf("destination holds %d entries, want %d (no part files)", len(ents), len(files))
			}
		})
	}
}

func dirPrefix(kind, root string) string {
	if kind == "local" {
		return ""
	}
	return root
}

func dirOf(p string) string { return filepath.ToSlash(filepath.Dir(p)) }

func TestTransferDiskFull(t *testing.T) {
	src, dst := localHost(t), localHost(t)
	randomFile(t, src.Root(), "/sr/a.vhd", 5<<20, 1)
	full := &diskFullHost{Host: dst, left: 2 << 20}
	_ = dst.MkdirAll("/images", 0o755)
	_, err := Transfer(context.Background(), src, full, []FileCopy{{Src: "/sr/a.vhd", Dst: "/images/0.vhd"}}, &TransferOptions{ChunkSize: 256 << 10})
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("got %v, want ENOSPC", err)
	}
	if _, err := os.Stat(filepath.Join(dst.Root(), "images/0.vhd")); !os.IsNotExist(err) {
		t.Fatal("a final name appeared after a failed transfer")
	}
	// The part file keeps only whole chunks, and the next try resumes.
	res, err := Transfer(context.Background(), src, dst, []FileCopy{{Src: "/sr/a.vhd", Dst: "/images/0.vhd"}}, &TransferOptions{ChunkSize: 256 << 10})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Resumed == 0 {
		t.Error("the second try did not resume")
	}
}

// corruptHost flips one bit of the byte at offset at of every file written.
type corruptHost struct {
	Host
	at int64
}

func (h corruptHost) OpenFile(name string, flag int, perm fs.FileMode) (vhd.File, error) {
	f, err := h.Host.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return corruptFile{f, h.at}, nil
}

type corruptFile struct {
	vhd.File
	at int64
}

func (f corruptFile) WriteAt(p []byte, off int64) (int, error) {
	if off <= f.at && f.at < off+int64(len(p)) {
		p = bytes.Clone(p)
		p[f.at-off] ^= 1
	}
	return f.File.WriteAt(p, off)
}

func TestTransferVerifyCatchesCorruption(t *testing.T) {
	for _, mode := range []VerifyMode{VerifySHA256Sum, VerifyReadBack} {
		src, dst := localHost(t), localHost(t)
		randomFile(t, src.Root(), "/sr/a.vhd", 1<<20, 1)
		_, err := Transfer(context.Background(), src, corruptHost{Host: dst}, []FileCopy{{Src: "/sr/a.vhd", Dst: "/a.vhd"}}, &TransferOptions{Verify: mode})
		var ve *VerifyError
		if !errors.As(err, &ve) || ve.Path != "/a.vhd" {
			t.Fatalf("mode %d: got %v, want *VerifyError", mode, err)
		}
		ents, _ := os.ReadDir(dst.Root())
		if len(ents) != 0 {
			t.Errorf("mode %d: destination keeps %v after a failed verification", mode, ents)
		}
	}
	// A bad byte in the middle is caught in its segment, while the rest
	// is still being sent.
	src, dst := localHost(t), localHost(t)
	randomFile(t, src.Root(), "/sr/a.vhd", 8<<20, 1)
	_, err := Transfer(context.Background(), src, corruptHost{Host: dst, at: 2<<20 + 12345}, []FileCopy{{Src: "/sr/a.vhd", Dst: "/a.vhd"}},
		&TransferOptions{ChunkSize: 256 << 10, VerifySegment: 1 << 20})
	var ve *VerifyError
	if !errors.As(err, &ve) || ve.Offset != 2<<20 || ve.Length != 1<<20 {
		t.Fatalf("got %v, want a *VerifyError for bytes 2 MiB..3 MiB", err)
	}
	if ents, _ := os.ReadDir(dst.Root()); len(ents) != 0 {
		t.Errorf("destination keeps %v after a failed verification", ents)
	}
}

func TestTransferRefusesBadPaths(t *testing.T) {
	src, dst := localHost(t), localHost(t)
	for _, fc := range []FileCopy{
		{Src: "relative.vhd", Dst: "/x.vhd"},
		{Src: "/a/../b.vhd", Dst: "/x.vhd"},
		{Src: "/a.vhd", Dst: "/x/../../etc/passwd"},
		{Src: "/a.vhd", Dst: "/"},
		{Src: "/a.vhd", Dst: ""},
	} {
		_, err := Transfer(context.Background(), src, dst, []FileCopy{fc}, nil)
		if !errors.Is(err, ErrBadName) {
			t.Errorf("%+v: got %v, want ErrBadName", fc, err)
		}
	}
}

func TestTransferCancel(t *testing.T) {
	src, dst := localHost(t), localHost(t)
	randomFile(t, src.Root(), "/sr/a.vhd", 8<<20, 1)
	ctx, cancel := context.WithCancel(context.Background())
	_, err := Transfer(ctx, src, dst, []FileCopy{{Src: "/sr/a.vhd", Dst: "/a.vhd"}}, &TransferOptions{
		ChunkSize: 64 << 10,
		Progress: func(p Progress) {
			if p.Done > 1<<20 {
				cancel()
			}
		},
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if _, err := os.Stat(filepath.Join(dst.Root(), "a.vhd")); !os.IsNotExist(err) {
		t.Fatal("a cancelled transfer left a file under its final name")
	}
}

func TestTransferResumeChecksPrefix(t *testing.T) {
	src, dst := localHost(t), localHost(t)
	want := randomFile(t, src.Root(), "/sr/a.vhd", 4<<20, 1)
	// A part file whose prefix is right: resumed.
	part := filepath.Join(dst.Root(), PartName("/a.vhd"))
	if err := os.WriteFile(part, want[:3<<20], 0o644); err != nil {
		t.Fatal(err)
	}
	opts := &TransferOptions{ChunkSize: 256 << 10, Writers: 2}
	res, err := Transfer(context.Background(), src, dst, []FileCopy{{Src: "/sr/a.vhd", Dst: "/a.vhd"}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Resumed != 3<<20-2*(256<<10) {
		t.Errorf("resumed %d bytes, want %d", res[0].Resumed, 3<<20-2*(256<<10))
	}
	if got, _ := os.ReadFile(filepath.Join(dst.Root(), "a.vhd")); !bytes.Equal(got, want) {
		t.Fatal("resumed copy differs")
	}
	// A part file with garbage: started over.
	bad := bytes.Clone(want[:3<<20])
	bad[100] ^= 1
	if err := os.WriteFile(part, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	_ = os.Rename(part, filepath.Join(dst.Root(), PartName("/b.vhd")))
	res, err = Transfer(context.Background(), src, dst, []FileCopy{{Src: "/sr/a.vhd", Dst: "/b.vhd"}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Resumed != 0 {
		t.Errorf("a corrupt part file was resumed from %d", res[0].Resumed)
	}
	if got, _ := os.ReadFile(filepath.Join(dst.Root(), "b.vhd")); !bytes.Equal(got, want) {
		t.Fatal("copy differs")
	}
}

// failingAt fails the call that touches byte at.
type failingAt struct {
	data []byte
	at   int64
}

func (f *failingAt) ReadAt(p []byte, off int64) (int, error) {
	if off <= f.at && f.at < off+int64(len(p)) {
		return 0, errors.New("read fails here")
	}
	return copy(p, f.data[off:]), nil
}

func (f *failingAt) WriteAt(p []byte, off int64) (int, error) {
	if off <= f.at && f.at < off+int64(len(p)) {
		return 0, errors.New("write fails here")
	}
	return len(p), nil
}

// TestPumpReturnsBuffers ends pump by a failed read, a failed write and a
// cancellation, and checks that every buffer slot of the shared pool is
// given back: the files still moving must not lose their buffers.
func TestPumpReturnsBuffers(t *testing.T) {
	const chunk, size = 4 << 10, 1 << 20
	data := make([]byte, size)
	ok := &failingAt{data: data, at: -1}
	bad := &failingAt{data: data, at: 300 << 10}
	tests := []struct {
		name   string
		r      io.ReaderAt
		w      io.WriterAt
		cancel int64 // cancel once this many bytes are written
	}{
		{name: "read fails", r: bad, w: ok},
		{name: "write fails", r: ok, w: bad},
		{name: "cancelled", r: ok, w: ok, cancel: 200 << 10},
		{name: "completes", r: ok, w: ok},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := (&TransferOptions{ChunkSize: chunk, Readers: 3, Writers: 3, Buffers: 5}).withDefaults()
			pool := newChunkPool(o.Buffers, o.ChunkSize)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var done atomic.Int64
			_, err := pump(ctx, []io.ReaderAt{tt.r}, []io.WriterAt{tt.w}, 0, size, chunk, &o, pool, func([]byte) {}, func(int64) {}, func(n int64) {
				if tt.cancel > 0 && done.Add(n) >= tt.cancel {
					cancel()
				}
			})
			if (err == nil) != (tt.name == "completes") {
				t.Fatalf("pump: %v", err)
			}
			if n := len(pool.slots); n != 0 {
				t.Errorf("%d of %d buffer slots still taken after pump returned", n, o.Buffers)
			}
		})
	}
}

// readCountingHost counts the bytes read from the files it opens.
type readCountingHost struct {
	Host
	n *atomic.Int64
}

func (h readCountingHost) Open(name string) (vhd.File, error) {
	f, err := h.Host.Open(name)
	if err != nil {
		return nil, err
	}
	return readCountingFile{f, h.n}, nil
}

type readCountingFile struct {
	vhd.File
	n *atomic.Int64
}

func (f readCountingFile) ReadAt(p []byte, off int64) (int, error) {
	k, err := f.File.ReadAt(p, off)
	f.n.Add(int64(k))
	return k, err
}

// TestTransferResumeHashesPrefixOnHosts checks who reads a resumed file's
// kept prefix: by default both hosts hash it where it lies, so the
// controller reads only the rest of the source; with FileSHA256 the
// controller must read the prefix too, to hash the whole file.
func TestTransferResumeHashesPrefixOnHosts(t *testing.T) {
	const size, chunk = 4 << 20, 256 << 10
	for _, fileHash := range []bool{false, true} {
		src, dst := localHost(t), localHost(t)
		want := randomFile(t, src.Root(), "/sr/a.vhd", size, 1)
		if err := os.WriteFile(filepath.Join(dst.Root(), PartName("/a.vhd")), want[:3<<20], 0o644); err != nil {
			t.Fatal(err)
		}
		var read atomic.Int64
		res, err := Transfer(context.Background(), readCountingHost{src, &read}, dst, []FileCopy{{Src: "/sr/a.vhd", Dst: "/a.vhd"}},
			&TransferOptions{ChunkSize: chunk, Writers: 2, FileSHA256: fileHash})
		if err != nil {
			t.Fatal(err)
		}
		keep := int64(3<<20 - 2*chunk)
		if res[0].Resumed != keep {
			t.Fatalf("FileSHA256=%v: resumed %d bytes, want %d", fileHash, res[0].Resumed, keep)
		}
		wantRead := size - keep
		if fileHash {
			wantRead = size
			if res[0].SHA256 != sha256.Sum256(want) {
				t.Errorf("FileSHA256: the file's hash does not cover the kept prefix")
			}
		}
		if got := read.Load(); got != wantRead {
			t.Errorf("FileSHA256=%v: the controller read %d bytes of the source, want %d", fileHash, got, wantRead)
		}
		if got, _ := os.ReadFile(filepath.Join(dst.Root(), "a.vhd")); !bytes.Equal(got, want) {
			t.Fatalf("FileSHA256=%v: resumed copy differs", fileHash)
		}
	}
}
