package vhd_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"

	"io/fs"
	"math/rand"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/xenflow/xenflow/vhd"
)

// chainSize is the virtual size of the test chains: 3 blocks of 2 MiB and a
// bit, so block boundaries are crossed.
const chainSize = 7 << 20

// buildChain creates a chain of depth disks named <uuid>.vhd in dir of fsys
// (base dynamic, the others differencing, ancestors hidden as SM leaves
// them), writes 4 KiB-aligned random data into every layer, and returns
// the leaf's UUID and the bytes the leaf's virtual disk must read as.
func buildChain(t testing.TB, fsys vhd.FS, dir string, depth int, seed int64) (vhd.UUID, []byte) {
	t.Helper()
	rng := rand.New(rand.NewSource(seed))
	model := make([]byte, chainSize)
	var prev string
	var leaf vhd.UUID
	for i := 0; i < depth; i++ {
		opts := &vhd.CreateOptions{Rand: rng, Timestamp: time.Now().Add(-time.Hour)}
		var u vhd.UUID
		rng.Read(u[:])
		u[6] = u[6]&0x0f | 0x40
		u[8] = u[8]&0x3f | 0x80
		opts.UUID = u
		name := path.Join(dir, u.String()+".vhd")
		var d *vhd.Disk
		var err error
		if i == 0 {
			d, err = vhd.Create(fsys, name, chainSize, opts)
		} else {
			d, err = vhd.Snapshot(fsys, name, prev, opts)
		}
		if err != nil {
			t.Fatalf("layer %d: %v", i, err)
		}
		for w := 0; w < 6; w++ {
			off := int64(rng.Intn(chainSize/4096)) * 4096
			n := (1 + rng.Intn(40)) * 4096
			if off+int64(n) > chainSize {
				n = int(chainSize - off)
			}
			buf := make([]byte, n)
			rng.Read(buf)
			if _, err := d.WriteAt(buf, off); err != nil {
				t.Fatalf("layer %d write: %v", i, err)
			}
			copy(model[off:], buf)
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		if i > 0 {
			p, err := vhd.OpenFile(fsys, prev, os.O_RDWR)
			if err != nil {
				t.Fatal(err)
			}
			if err := p.SetHidden(true); err != nil {
				t.Fatal(err)
			}
			if err := p.Close(); err != nil {
				t.Fatal(err)
			}
		}
		prev, leaf = name, u
	}
	return leaf, model
}

// readChain reads the whole virtual disk of the chain whose leaf is name.
func readChain(t testing.TB, fsys vhd.FS, name string) ([]byte, int) {
	t.Helper()
	c, err := vhd.OpenChain(fsys, name)
	if err != nil {
		t.Fatalf("OpenChain %s: %v", name, err)
	}
	defer c.Close()
	var buf bytes.Buffer
	if _, err := c.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), c.Depth()
}

// dirState maps every file under dir (a local directory) to a hash of its
// contents, to show a directory is untouched.
func dirState(t testing.TB, dir string) map[string]string {
	t.Helper()
	st := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if e.IsDir() {
			st[rel+"/"] = "dir"
			return nil
		}
		if e.Type()&fs.ModeSymlink != 0 {
			target, _ := os.Readlink(p)
			st[rel] = "link:" + target
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		st[rel] = fmt.Sprintf("%x", sha256.Sum256(b))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func sameState(t testing.TB, what string, before, after map[string]string) {
	t.Helper()
	if len(before) != len(after) {
		t.Fatalf("%s changed: %v -> %v", what, keys(before), keys(after))
	}
	for k, v := range before {
		if after[k] != v {
			t.Fatalf("%s changed at %s", what, k)
		}
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// world is a host root with a source SR, a destination SR and a staging
// directory, all in one DirFS.
type world struct {
	root, src, dst, staging string
	fsys                    vhd.FS
}

func newWorld(t testing.TB) world {
	w := world{root: t.TempDir(), src: "/var/run/sr-mount/src", dst: "/var/run/sr-mount/dst", staging: "/images/instance-1"}
	w.fsys = vhd.DirFS(w.root)
	for _, d := range []string{w.src, w.dst} {
		if err := w.fsys.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

func (w world) local(p string) string { return filepath.Join(w.root, filepath.FromSlash(p)) }

// staged builds a depth-deep chain in the source SR and stages it.
func (w world) staged(t testing.TB, depth int, seed int64) []byte {
	t.Helper()
	leaf, want := buildChain(t, w.fsys, w.src, depth, seed)
	send := path.Join(w.src, "stage-1")
	files, err := vhd.Stage(context.Background(), w.fsys, w.src, leaf, send, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != depth {
		t.Fatalf("staged %d files, want %d", len(files), depth)
	}
	w.transfer(t, files)
	return want
}

// transfer copies a staging set into the receiving staging directory, as
// rsync does, and removes the sending side's links and directory.
func (w world) transfer(t testing.TB, files []vhd.StagedFile) {
	t.Helper()
	if err := w.fsys.MkdirAll(w.staging, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		b, err := os.ReadFile(w.local(f.Name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(w.local(path.Join(w.staging, path.Base(f.Name))), b, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := w.fsys.Remove(f.Name); err != nil {
			t.Fatal(err)
		}
	}
	if len(files) > 0 {
		if err := w.fsys.Remove(path.Dir(files[0].Name)); err != nil {
			t.Fatal(err)
		}
	}
}

func seededImport(seed int64) *vhd.ImportOptions {
	return &vhd.ImportOptions{Rand: rand.New(rand.NewSource(seed))}
}

func TestImportStagedChain(t *testing.T) {
	w := newWorld(t)
	want := w.staged(t, 3, 1)
	srcBefore := dirState(t, w.local(w.src))

	res, err := vhd.Import(context.Background(), w.fsys, w.staging, w.dst, seededImport(7))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Chain) != 3 || res.Leaf != res.Chain[0] || len(res.Files) != 3 {
		t.Fatalf("result %+v", res)
	}
	got, depth := readChain(t, w.fsys, path.Join(w.dst, res.Leaf.String()+".vhd"))
	if depth != 3 {
		t.Fatalf("depth %d, want 3", depth)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("imported chain does not read as the source chain")
	}
	for k, f := range res.Files {
		if f != path.Join(w.dst, res.Chain[k].String()+".vhd") {
			t.Errorf("file %d = %s", k, f)
		}
		if err := vhd.Check(w.fsys, f); err != nil {
			t.Errorf("Check %s: %v", f, err)
		}
		info, err := vhd.Query(w.fsys, f)
		if err != nil {
			t.Fatal(err)
		}
		if info.Depth != 3-k {
			t.Errorf("%s depth %d, want %d", f, info.Depth, 3-k)
		}
		if k < 2 && info.Parent != res.Files[k+1] {
			t.Errorf("%s parent %q, want %q", f, info.Parent, res.Files[k+1])
		}
	}
	// The staging directory is empty; the source SR is as it was.
	if ents, err := os.ReadDir(w.local(w.staging)); err != nil || len(ents) != 0 {
		t.Fatalf("staging holds %v (%v)", ents, err)
	}
	sameState(t, "source SR", srcBefore, dirState(t, w.local(w.src)))
	// The destination has exactly the three files.
	if ents, _ := os.ReadDir(w.local(w.dst)); len(ents) != 3 {
		t.Fatalf("destination holds %d entries", len(ents))
	}
}

func TestImportLegacyAndLoneNames(t *testing.T) {
	cases := []struct {
		name   string
		depth  int
		rename map[string]string
	}{
		{"snap image base", 3, map[string]string{"0.vhd": "snap.vhd", "1.vhd": "image.vhd", "2.vhd": "base.vhd"}},
		{"snap base", 2, map[string]string{"0.vhd": "snap.vhd", "1.vhd": "base.vhd"}},
		{"lone base.vhd", 1, map[string]string{"0.vhd": "base.vhd"}},
		{"lone any name", 1, map[string]string{"0.vhd": "disk.vhd"}},
		{"lone 3.vhd", 1, map[string]string{"0.vhd": "3.vhd"}},
		{"lone number past the limit", 1, map[string]string{"0.vhd": "99999999999999999999.vhd"}},
		{"swap and other files ignored", 2, map[string]string{}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			want := w.staged(t, tc.depth, int64(10+i))
			for from, to := range tc.rename {
				if err := w.fsys.Rename(path.Join(w.staging, from), path.Join(w.staging, to)); err != nil {
					t.Fatal(err)
				}
			}
			if len(tc.rename) == 0 {
				for _, extra := range []string{vhd.SwapName, "notes.txt"} {
					if err := os.WriteFile(w.local(path.Join(w.staging, extra)), []byte("x"), 0o644); err != nil {
						t.Fatal(err)
					}
				}
			}
			res, err := vhd.Import(context.Background(), w.fsys, w.staging, w.dst, seededImport(int64(i)))
			if err != nil {
				t.Fatal(err)
			}
			got, depth := readChain(t, w.fsys, res.Files[0])
			if depth != tc.depth || !bytes.Equal(got, want) {
				t.Fatalf("depth %d (want %d), equal %v", depth, tc.depth, bytes.Equal(got, want))
			}
			if len(tc.rename) == 0 {
				for _, extra := range []string{vhd.SwapName, "notes.txt"} {
					if _, err := os.Stat(w.local(path.Join(w.staging, extra))); err != nil {
						t.Errorf("%s was not left alone: %v", extra, err)
					}
				}
			}
		})
	}
}

// hostileFS lists extra, hostile names in one directory.
type hostileFS struct {
	vhd.FS
	dir   string
	names []string
}

type fakeEntry string

func (e fakeEntry) Name() string               { return string(e) }
func (e fakeEntry) IsDir() bool                { return false }
func (e fakeEntry) Type() fs.FileMode          { return 0 }
func (e fakeEntry) Info() (fs.FileInfo, error) { return nil, fs.ErrNotExist }

func (h hostileFS) ReadDir(name string) ([]fs.DirEntry, error) {
	ents, err := h.FS.ReadDir(name)
	if err != nil || path.Clean(name) != path.Clean(h.dir) {
		return ents, err
	}
	for _, n := range h.names {
		ents = append(ents, fakeEntry(n))
	}
	return ents, nil
}

func TestImportRefusesBeforeTouchingTheSR(t *testing.T) {
	type setup func(t *testing.T, w *world)
	renameStaged := func(from, to string) setup {
		return func(t *testing.T, w *world) {
			if err := w.fsys.Rename(path.Join(w.staging, from), path.Join(w.staging, to)); err != nil {
				t.Fatal(err)
			}
		}
	}
	hostile := func(names ...string) setup {
		return func(t *testing.T, w *world) {
			w.fsys = hostileFS{FS: w.fsys, dir: w.staging, names: names}
		}
	}
	cases := []struct {
		name  string
		setup setup
		want  error
		opts  func(o *vhd.ImportOptions)
		// renamed: the failure comes after the staged files were renamed
		// to UUIDs (validation), so the staging directory changed.
		renamed bool
	}{
		{name: "gap", setup: renameStaged("1.vhd", "3.vhd"), want: vhd.ErrSequenceGap},
		{name: "no leaf", setup: renameStaged("0.vhd", "3.vhd"), want: vhd.ErrSequenceGap},
		{name: "hidden leaf", setup: func(t *testing.T, w *world) {
			d, err := vhd.OpenFile(w.fsys, path.Join(w.staging, "0.vhd"), os.O_RDWR)
			if err != nil {
				t.Fatal(err)
			}
			if err := d.SetHidden(true); err != nil {
				t.Fatal(err)
			}
			d.Close()
		}, want: vhd.ErrHiddenLeaf},
		{name: "corrupt footer checksum", setup: func(t *testing.T, w *world) {
			corrupt(t, w.local(path.Join(w.staging, "1.vhd")), -512+64)
		}, want: vhd.ErrChecksum},
		{name: "not a VHD", setup: func(t *testing.T, w *world) {
			if err := os.WriteFile(w.local(path.Join(w.staging, "2.vhd")), make([]byte, 4096), 0o644); err != nil {
				t.Fatal(err)
			}
		}, want: vhd.ErrNotVHD},
		{name: "parent UUID mismatch", setup: func(t *testing.T, w *world) {
			// Another chain's middle disk takes 1.vhd's place.
			if err := w.fsys.MkdirAll("/other", 0o755); err != nil {
				t.Fatal(err)
			}
			other, _ := buildChain(t, w.fsys, "/other", 2, 99)
			if err := w.fsys.Rename(path.Join("/other", other.String()+".vhd"), path.Join(w.staging, "1.vhd")); err != nil {
				t.Fatal(err)
			}
		}, want: vhd.ErrParentMismatch},
		{name: "base is differencing", setup: func(t *testing.T, w *world) {
			if err := w.fsys.Remove(path.Join(w.staging, "2.vhd")); err != nil {
				t.Fatal(err)
			}
		}, want: vhd.ErrChainIncomplete, opts: func(o *vhd.ImportOptions) { o.TrustOrder = true }},
		{name: "footer copy differs", setup: func(t *testing.T, w *world) {
			// Open reads the primary footer; only Check compares the copy,
			// so this is refused at validation, after the renaming.
			corrupt(t, w.local(path.Join(w.staging, "1.vhd")), 64)
		}, want: vhd.ErrChecksum, renamed: true},
		{name: "hard-linked into the source SR", setup: func(t *testing.T, w *world) {
			// Staged in place, not copied: 0.vhd is still the SR's file.
			if err := w.fsys.Remove(path.Join(w.staging, "0.vhd")); err != nil {
				t.Fatal(err)
			}
			ents, err := w.fsys.ReadDir(w.src)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range ents {
				if info, err := vhd.Query(w.fsys, path.Join(w.src, e.Name())); err == nil && info.Depth == 3 {
					if err := w.fsys.Link(path.Join(w.src, e.Name()), path.Join(w.staging, "0.vhd")); err != nil {
						t.Fatal(err)
					}
				}
			}
		}, want: vhd.ErrHardLinked},
		{name: "legacy mixed with numbers", setup: renameStaged("2.vhd", "base.vhd"), want: vhd.ErrStagingName},
		{name: "non-integer", setup: renameStaged("2.vhd", "two.vhd"), want: vhd.ErrStagingName},
		{name: "leading zero", setup: renameStaged("2.vhd", "02.vhd"), want: vhd.ErrStagingName},
		{name: "sign", setup: renameStaged("2.vhd", "+2.vhd"), want: vhd.ErrStagingName},
		{name: "huge number", setup: renameStaged("2.vhd", "99999999999999999999999.vhd"), want: vhd.ErrChainTooDeep},
		{name: "past the limit", setup: renameStaged("2.vhd", "30.vhd"), want: vhd.ErrChainTooDeep},
		{name: "symlink", setup: func(t *testing.T, w *world) {
			// 2.vhd becomes a link to the real file elsewhere.
			target := w.local("/elsewhere.vhd")
			if err := os.Rename(w.local(path.Join(w.staging, "2.vhd")), target); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, w.local(path.Join(w.staging, "2.vhd"))); err != nil {
				t.Fatal(err)
			}
		}, want: vhd.ErrUnsafeName},
		{name: "directory", setup: func(t *testing.T, w *world) {
			if err := os.Mkdir(w.local(path.Join(w.staging, "3.vhd")), 0o755); err != nil {
				t.Fatal(err)
			}
		}, want: vhd.ErrUnsafeName},
		{name: "dot dot", setup: hostile(".."), want: vhd.ErrUnsafeName},
		{name: "absolute", setup: hostile("/etc/3.vhd"), want: vhd.ErrUnsafeName},
		{name: "climbing", setup: hostile("1.vhd/../x"), want: vhd.ErrUnsafeName},
		{name: "climbing vhd", setup: hostile("../../3.vhd"), want: vhd.ErrUnsafeName},
		{name: "NUL", setup: hostile("3\x00.vhd"), want: vhd.ErrUnsafeName},
		{name: "SR file exists", setup: func(t *testing.T, w *world) {
			// The UUID source will draw a UUID already used in the SR.
			u, err := vhd.NewUUID(rand.New(rand.NewSource(5)))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(w.local(path.Join(w.dst, u.String()+".vhd")), []byte("mine"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, want: vhd.ErrExists},
		{name: "canceled", setup: func(t *testing.T, w *world) {}, want: context.Canceled},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			w.staged(t, 3, 3)
			tc.setup(t, &w)
			stagingBefore := dirState(t, w.local(w.staging))
			dstBefore := dirState(t, w.local(w.dst))
			rootBefore := dirState(t, filepath.Dir(w.root))
			opts := seededImport(5)
			if tc.opts != nil {
				tc.opts(opts)
			}
			ctx := context.Background()
			if tc.want == context.Canceled {
				c, cancel := context.WithCancel(ctx)
				cancel()
				ctx = c
			}
			res, err := vhd.Import(ctx, w.fsys, w.staging, w.dst, opts)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Import = %+v, %v; want %v", res, err, tc.want)
			}
			var se *vhd.StagingError
			if !errors.As(err, &se) || se.Op != "import" || se.Step == "" {
				t.Fatalf("error %#v is not a *StagingError", err)
			}
			if strings.Contains(err.Error(), w.root) {
				t.Errorf("error leaks the local root: %v", err)
			}
			sameState(t, "destination SR", dstBefore, dirState(t, w.local(w.dst)))
			stagingAfter := dirState(t, w.local(w.staging))
			if !tc.renamed {
				sameState(t, "staging directory", stagingBefore, stagingAfter)
			} else if fmt.Sprint(keys(stagingBefore)) != fmt.Sprint(keys(stagingAfter)) {
				t.Fatalf("staging names not restored: %v -> %v", keys(stagingBefore), keys(stagingAfter))
			}
			rootAfter := dirState(t, filepath.Dir(w.root))
			if tc.renamed {
				// The relinked staged files changed; only their names count.
				for k := range rootBefore {
					if strings.Contains(k, "images/instance-1/") && rootAfter[k] != "" {
						rootAfter[k] = rootBefore[k]
					}
				}
			}
			sameState(t, "the directory around the root", rootBefore, rootAfter)
		})
	}
}

// TestImportRefusesStagingInTheSR: with the SR directory as the staging
// directory (by the same name or another way to it) the renaming to UUIDs
// would happen inside the SR; Import must refuse before touching anything.
func TestImportRefusesStagingInTheSR(t *testing.T) {
	for _, staging := range []string{"/var/run/sr-mount/dst", "/var/run/sr-mount/dst/", "/var/run/sr-mount/../sr-mount/dst", "/alias"} {
		t.Run(staging, func(t *testing.T) {
			w := newWorld(t)
			w.staging = w.dst
			w.staged(t, 2, 8)
			if err := os.Symlink(w.local(w.dst), w.local("/alias")); err != nil {
				t.Fatal(err)
			}
			before := dirState(t, w.local(w.dst))
			res, err := vhd.Import(context.Background(), w.fsys, staging, w.dst, seededImport(9))
			if !errors.Is(err, vhd.ErrInvalidArgument) {
				t.Fatalf("Import = %+v, %v; want ErrInvalidArgument", res, err)
			}
			var se *vhd.StagingError
			if !errors.As(err, &se) || se.Step != "inspect" {
				t.Fatalf("error %#v is not an inspect *StagingError", err)
			}
			sameState(t, "SR", before, dirState(t, w.local(w.dst)))
		})
	}
}

func TestImportTrustOrderRelinksLikeOSXenAPI(t *testing.T) {
	// With TrustOrder a differencing disk from elsewhere is stitched in by
	// position alone, as os-xenapi's import_vhds does.
	w := newWorld(t)
	w.staged(t, 3, 4)
	if err := w.fsys.MkdirAll("/other", 0o755); err != nil {
		t.Fatal(err)
	}
	other, _ := buildChain(t, w.fsys, "/other", 2, 98)
	if err := w.fsys.Rename(path.Join("/other", other.String()+".vhd"), path.Join(w.staging, "1.vhd")); err != nil {
		t.Fatal(err)
	}
	opts := seededImport(6)
	opts.TrustOrder = true
	res, err := vhd.Import(context.Background(), w.fsys, w.staging, w.dst, opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, depth := readChain(t, w.fsys, res.Files[0]); depth != 3 {
		t.Fatalf("depth %d", depth)
	}
}

func TestImportEmptyStaging(t *testing.T) {
	w := newWorld(t)
	if err := w.fsys.MkdirAll(w.staging, 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := vhd.Import(context.Background(), w.fsys, w.staging, w.dst, nil)
	if !errors.Is(err, vhd.ErrEmptyStaging) {
		t.Fatalf("err = %v", err)
	}
	_, err = vhd.Import(context.Background(), w.fsys, "/missing", w.dst, nil)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("err = %v", err)
	}
}

// corrupt flips a byte at off (negative: from the end) of a local file.
func corrupt(t testing.TB, name string, off int64) {
	t.Helper()
	f, err := os.OpenFile(name, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if off < 0 {
		fi, err := f.Stat()
		if err != nil {
			t.Fatal(err)
		}
		off += fi.Size()
	}
	b := []byte{0}
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x5a
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// ExampleImport moves a staged chain (0.vhd leaf, 1.vhd its parent, 2.vhd
// the base) into an SR directory under fresh UUIDs.
func ExampleImport() {
	root, err := os.MkdirTemp("", "import")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(root)
	fsys := vhd.DirFS(root)
	_ = fsys.MkdirAll("sr", 0o755)
	_ = fsys.MkdirAll("staging", 0o755)

	// Stage a two-disk chain by hand: a base and a snapshot of it.
	base, _ := vhd.Create(fsys, "staging/1.vhd", 4<<20, nil)
	_, _ = base.WriteAt([]byte("written in the base"), 0)
	base.Close()
	leaf, _ := vhd.Snapshot(fsys, "staging/0.vhd", "staging/1.vhd", nil)
	_, _ = leaf.WriteAt([]byte("leaf"), 0)
	leaf.Close()

	res, err := vhd.Import(context.Background(), fsys, "staging", "sr", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	c, _ := vhd.OpenChain(fsys, "sr/"+res.Leaf.String()+".vhd")
	defer c.Close()
	buf := make([]byte, 19)
	_, _ = c.ReadAt(buf, 0)
	fmt.Println(len(res.Chain), "disks;", c.Depth(), "deep;", string(buf))
	// Output: 2 disks; 2 deep; leaften in the base
}

// FuzzImportStagingNames feeds Import staging directories whose listings
// hold arbitrary names (newline-separated), as a hostile SFTP server could
// return them: Import must fail with a *StagingError, never panic, and
// never put anything into the SR or outside the root.
func FuzzImportStagingNames(f *testing.F) {
	for _, seed := range []string{
		"0.vhd\n1.vhd", "0.vhd\n2.vhd", "..", "/etc/passwd.vhd", "1.vhd/../x", "../../0.vhd",
		"99999999999999999999.vhd", "snap.vhd\n0.vhd", "snap.vhd\nimage.vhd\nbase.vhd",
		"0\x00.vhd", "swap.vhd", "-1.vhd", "01.vhd", "disk.vhd", ".vhd", "0.vhd\n0.vhd",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, list string) {
		names := strings.Split(list, "\n")
		if len(names) > 40 {
			names = names[:40]
		}
		root := t.TempDir()
		base := filepath.Join(root, "host")
		if err := os.MkdirAll(filepath.Join(base, "staging"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(base, "sr"), 0o755); err != nil {
			t.Fatal(err)
		}
		var fake []string
		for _, n := range names {
			// Plain names become real (non-VHD) files; the rest are only
			// listed, never created.
			if n != "" && n != "." && n != ".." && !strings.ContainsAny(n, "/\\\x00") {
				if os.WriteFile(filepath.Join(base, "staging", n), []byte("not a vhd"), 0o644) == nil {
					continue
				}
			}
			fake = append(fake, n)
		}
		fsys := hostileFS{FS: vhd.DirFS(base), dir: "staging", names: fake}
		before := dirState(t, root)
		res, err := vhd.Import(context.Background(), fsys, "staging", "sr", seededImport(1))
		if err == nil {
			t.Fatalf("Import of non-VHD files succeeded: %+v", res)
		}
		var se *vhd.StagingError
		if !errors.As(err, &se) {
			t.Fatalf("error %v (%T) is not a *StagingError", err, err)
		}
		if ents, _ := os.ReadDir(filepath.Join(base, "sr")); len(ents) != 0 {
			t.Fatalf("SR holds %v", ents)
		}
		after := dirState(t, root)
		if len(after) != len(before) {
			t.Fatalf("files appeared or vanished: %v -> %v", keys(before), keys(after))
		}
	})
}

// FuzzImportDamagedChain imports a staged two-disk chain with bytes of one
// file overwritten: Import must not panic; when it fails the SR is as it
// was, and when it succeeds every imported file passes Check.
func FuzzImportDamagedChain(f *testing.F) {
	for _, s := range []struct {
		leaf bool
		off  uint32
		data []byte
	}{
		{true, 0, []byte("conectix")}, {false, 512 + 16, []byte{0xff, 0xff}}, {true, 1536, []byte{0, 0, 0, 9}},
		{true, 512 + 8*64 + 24, []byte{0xff}}, {false, 1 << 20, []byte{1}}, {true, 512 + 40, []byte("..")},
	} {
		f.Add(s.leaf, s.off, s.data)
	}
	f.Fuzz(func(t *testing.T, leaf bool, off uint32, data []byte) {
		w := newWorld(t)
		w.staged(t, 2, 21)
		name := w.local(path.Join(w.staging, "1.vhd"))
		if leaf {
			name = w.local(path.Join(w.staging, "0.vhd"))
		}
		fi, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if len(data) > 4096 {
			data = data[:4096]
		}
		at := int64(off) % fi.Size()
		file, err := os.OpenFile(name, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := file.WriteAt(data, at); err != nil {
			t.Fatal(err)
		}
		file.Close()
		before := dirState(t, w.local(w.dst))
		res, err := vhd.Import(context.Background(), w.fsys, w.staging, w.dst, seededImport(2))
		if err != nil {
			var se *vhd.StagingError
			if !errors.As(err, &se) {
				t.Fatalf("error %v (%T) is not a *StagingError", err, err)
			}
			sameState(t, "SR after a failed import", before, dirState(t, w.local(w.dst)))
			return
		}
		for _, f := range res.Files {
			if err := vhd.Check(w.fsys, f); err != nil {
				t.Fatalf("imported %s fails Check: %v", f, err)
			}
		}
		if _, depth := readChain(t, w.fsys, res.Files[0]); depth != 2 {
			t.Fatalf("imported chain is %d deep", depth)
		}
	})
}

// moveFailFS fails renames into dir after the first allow of them.
type moveFailFS struct {
	vhd.FS
	dir   string
	allow int
	seen  *int
}

func (m moveFailFS) Rename(oldname, newname string) error {
	if path.Dir(path.Clean(newname)) == path.Clean(m.dir) {
		*m.seen++
		if *m.seen > m.allow {
			return fmt.Errorf("rename %s: %w", newname, fs.ErrPermission)
		}
	}
	return m.FS.Rename(oldname, newname)
}

// TestImportRollsBackAFailedMove: a rename into the SR that fails after
// others succeeded takes those back out, the staged files get their
// sequence names back, and the same set then imports cleanly.
func TestImportRollsBackAFailedMove(t *testing.T) {
	for allow := 0; allow < 3; allow++ {
		t.Run(fmt.Sprint(allow), func(t *testing.T) {
			w := newWorld(t)
			want := w.staged(t, 3, 30)
			stagingBefore := dirState(t, w.local(w.staging))
			dstBefore := dirState(t, w.local(w.dst))
			seen := 0
			fsys := moveFailFS{FS: w.fsys, dir: w.dst, allow: allow, seen: &seen}
			_, err := vhd.Import(context.Background(), fsys, w.staging, w.dst, seededImport(31))
			if !errors.Is(err, fs.ErrPermission) {
				t.Fatalf("Import = %v, want the move's error", err)
			}
			var se *vhd.StagingError
			if !errors.As(err, &se) || se.Step != "move" || se.Dir != w.dst {
				t.Fatalf("error %#v is not a move *StagingError in the SR", err)
			}
			sameState(t, "SR after a failed move", dstBefore, dirState(t, w.local(w.dst)))
			if got := keys(dirState(t, w.local(w.staging))); fmt.Sprint(got) != fmt.Sprint(keys(stagingBefore)) {
				t.Fatalf("staging names not restored: %v -> %v", keys(stagingBefore), got)
			}
			res, err := vhd.Import(context.Background(), w.fsys, w.staging, w.dst, seededImport(32))
			if err != nil {
				t.Fatalf("importing the restored set again: %v", err)
			}
			got, depth := readChain(t, w.fsys, res.Files[0])
			if depth != 3 || !bytes.Equal(got, want) {
				t.Fatalf("re-imported chain: depth %d, equal %v", depth, bytes.Equal(got, want))
			}
		})
	}
}
