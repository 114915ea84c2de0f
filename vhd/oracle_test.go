package vhd_test

// Tests against real, independent implementations of the format: qemu-img
// (qemu-utils) for fixed and dynamic disks, libvhdi's vhdiinfo and
// vhdimount (libvhdi-utils) for differencing chains, and a chain written
// by blktap itself (testdata/blktap). A missing tool skips the test, except
// under CI=true, where it fails.
//
// vhdimount needs FUSE. With /dev/fuse usable it is started in the
// foreground (-v), so the test owns its process id, and stopped by
// unmounting (then, if needed, by killing that process). Where FUSE is not
// usable the chain tests fall back to what works without it, vhdiinfo
// (type, size, identifiers, parent filename), and say so in the log, except
// under CI=true, where that fails; libvhdi-utils 20210425 ships no other
// reader (no vhdiexport). vhdimount refusing to open an image always fails.

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xenflow/xenflow/internal/oracle"
	"github.com/xenflow/xenflow/vhd"
)

// lookOracle returns the path of an external tool, skipping the test when it
// is missing (failing under CI=true).
func lookOracle(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		oracle.Missing(t, "%s not installed: %v", name, err)
	}
	return p
}

// tool runs an oracle and returns its combined output and exit status.
func tool(t *testing.T, bin string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &ee):
		return string(out), ee.ExitCode()
	default:
		t.Fatalf("%s %v: %v", bin, args, err)
		return "", -1
	}
}

// mustTool runs an oracle that must succeed.
func mustTool(t *testing.T, bin string, args ...string) string {
	t.Helper()
	out, code := tool(t, bin, args...)
	if code != 0 {
		t.Fatalf("%s %s: exit %d: %s", filepath.Base(bin), strings.Join(args, " "), code, out)
	}
	return out
}

// writes is a deterministic set of writes: aligned and unaligned, inside a
// block and across block boundaries, some of zeros.
func writes(rng *rand.Rand, size int64, aligned bool, n int) [][2]int64 {
	var w [][2]int64
	for i := 0; i < n; i++ {
		off := rng.Int63n(size)
		ln := 1 + rng.Int63n(300<<10)
		if aligned {
			off &^= 4095
			ln = (ln + 4095) &^ 4095
		}
		if off+ln > size {
			ln = size - off
		}
		w = append(w, [2]int64{off, ln})
	}
	// One write across the first block boundary.
	w = append(w, [2]int64{2<<20 - 8192, 16384})
	return w
}

// fill writes random data (or zeros, one time in four) at each range into
// dst and model.
func fill(t *testing.T, rng *rand.Rand, dst io.WriterAt, model []byte, ranges [][2]int64) {
	t.Helper()
	for _, r := range ranges {
		buf := make([]byte, r[1])
		if rng.Intn(4) != 0 {
			rng.Read(buf)
		}
		if _, err := dst.WriteAt(buf, r[0]); err != nil {
			t.Fatalf("write %d bytes at %d: %v", r[1], r[0], err)
		}
		copy(model[r[0]:], buf)
	}
}

func qemuVirtualSize(t *testing.T, qemu, file string) int64 {
	t.Helper()
	out := mustTool(t, qemu, "info", "-f", "vpc", "--output=json", file)
	var info struct {
		VirtualSize int64  `json:"virtual-size"`
		Format      string `json:"format"`
	}
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatalf("qemu-img info: %v: %s", err, out)
	}
	if info.Format != "vpc" {
		t.Fatalf("qemu-img info format %q", info.Format)
	}
	return info.VirtualSize
}

// TestQemuReadsWhatWeWrite: disks created and written by the package,
// read by qemu-img.
func TestQemuReadsWhatWeWrite(t *testing.T) {
	qemu := lookOracle(t, "qemu-img")
	for _, typ := range []vhd.DiskType{vhd.DiskFixed, vhd.DiskDynamic} {
		t.Run(typ.String(), func(t *testing.T) {
			dir := t.TempDir()
			fsys := vhd.DirFS(dir)
			const size = 10<<20 + 3*512
			rng := rand.New(rand.NewSource(int64(typ)))
			d, err := vhd.Create(fsys, "ours.vhd", size, &vhd.CreateOptions{Type: typ, Rand: rng})
			if err != nil {
				t.Fatal(err)
			}
			model := make([]byte, size)
			fill(t, rng, d, model, writes(rng, size, false, 12))
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			if err := vhd.Check(fsys, "ours.vhd"); err != nil {
				t.Fatalf("Check: %v", err)
			}
			vhdPath := filepath.Join(dir, "ours.vhd")
			modelPath := filepath.Join(dir, "model.raw")
			if err := os.WriteFile(modelPath, model, 0o644); err != nil {
				t.Fatal(err)
			}
			if got := qemuVirtualSize(t, qemu, vhdPath); got != size {
				t.Fatalf("qemu-img sees %d bytes, want %d", got, size)
			}
			// qemu 7 has no check for vpc (exit 63); it must open the file.
			if out, code := tool(t, qemu, "check", "-f", "vpc", vhdPath); code != 0 && !(code == 63 && strings.Contains(out, "does not support checks")) {
				t.Fatalf("qemu-img check: exit %d: %s", code, out)
			}
			if out, code := tool(t, qemu, "compare", "-f", "vpc", "-F", "raw", vhdPath, modelPath); code != 0 {
				t.Fatalf("qemu-img compare: exit %d: %s", code, out)
			}
			rawPath := filepath.Join(dir, "qemu.raw")
			mustTool(t, qemu, "convert", "-f", "vpc", "-O", "raw", vhdPath, rawPath)
			got, err := os.ReadFile(rawPath)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, model) {
				t.Fatalf("qemu-img convert gives different bytes (%d vs %d)", len(got), len(model))
			}
		})
	}
}

// TestWeReadWhatQemuWrites: disks created (with and without force_size)
// and filled by qemu-img, read by the package; then written by the package
// and read back by qemu-img.
func TestWeReadWhatQemuWrites(t *testing.T) {
	qemu := lookOracle(t, "qemu-img")
	for _, tc := range []struct{ subformat, opts string }{
		{"dynamic", ""}, {"dynamic", ",force_size=on"}, {"fixed", ""}, {"fixed", ",force_size=on"},
	} {
		t.Run(tc.subformat+tc.opts, func(t *testing.T) {
			dir := t.TempDir()
			fsys := vhd.DirFS(dir)
			rng := rand.New(rand.NewSource(int64(len(tc.subformat + tc.opts))))
			// A raw image with data in some blocks and none in others.
			const rawSize = 12 << 20
			raw := make([]byte, rawSize)
			for _, r := range writes(rng, rawSize, false, 8) {
				rng.Read(raw[r[0] : r[0]+r[1]])
			}
			rawPath := filepath.Join(dir, "in.raw")
			if err := os.WriteFile(rawPath, raw, 0o644); err != nil {
				t.Fatal(err)
			}
			vhdPath := filepath.Join(dir, "qemu.vhd")
			mustTool(t, qemu, "convert", "-f", "raw", "-O", "vpc", "-o", "subformat="+tc.subformat+tc.opts, rawPath, vhdPath)
			size := qemuVirtualSize(t, qemu, vhdPath)

			d, err := vhd.OpenFile(fsys, "qemu.vhd", os.O_RDWR)
			if err != nil {
				t.Fatal(err)
			}
			if d.Size() != size {
				t.Fatalf("we see %d bytes, qemu-img %d", d.Size(), size)
			}
			model := make([]byte, size)
			copy(model, raw)
			got := make([]byte, size)
			if _, err := d.ReadAt(got, 0); err != nil && err != io.EOF {
				t.Fatal(err)
			}
			if !bytes.Equal(got, model) {
				t.Fatal("we read qemu-img's disk differently")
			}
			// Now we write into qemu's file and qemu reads it.
			fill(t, rng, d, model, writes(rng, size, false, 6))
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			modelPath := filepath.Join(dir, "model.raw")
			if err := os.WriteFile(modelPath, model, 0o644); err != nil {
				t.Fatal(err)
			}
			if out, code := tool(t, qemu, "compare", "-f", "vpc", "-F", "raw", vhdPath, modelPath); code != 0 {
				t.Fatalf("qemu-img compare after our writes: exit %d: %s", code, out)
			}
			outPath := filepath.Join(dir, "out.raw")
			mustTool(t, qemu, "convert", "-f", "vpc", "-O", "raw", vhdPath, outPath)
			if b, err := os.ReadFile(outPath); err != nil || !bytes.Equal(b, model) {
				t.Fatalf("qemu-img convert after our writes differs (%v)", err)
			}
		})
	}
}

// vhdiInfo is what vhdiinfo reports.
type vhdiInfo struct {
	Type, Identifier, ParentIdentifier, ParentFilename string
	MediaSize                                          int64
}

var vhdiLine = regexp.MustCompile(`(?m)^\s*([A-Za-z ]+?)\s*:\s*(.*?)\s*$`)

func runVhdiinfo(t *testing.T, bin, file string) vhdiInfo {
	t.Helper()
	out := mustTool(t, bin, file)
	var info vhdiInfo
	for _, m := range vhdiLine.FindAllStringSubmatch(out, -1) {
		switch m[1] {
		case "Disk type":
			info.Type = m[2]
		case "Identifier":
			info.Identifier = m[2]
		case "Parent identifier":
			info.ParentIdentifier = m[2]
		case "Parent filename":
			info.ParentFilename = m[2]
		case "Media size":
			if i := strings.Index(m[2], "("); i >= 0 {
				fmt.Sscanf(m[2][i+1:], "%d", &info.MediaSize)
			}
		}
	}
	return info
}

// vhdiMount mounts image with vhdimount and returns the mount point, or ""
// when FUSE does not work here (the reason is logged).
func vhdiMount(t *testing.T, bin, image string) string {
	t.Helper()
	if _, err := os.Stat("/dev/fuse"); err != nil {
		noFUSE(t, fmt.Sprintf("vhdimount not usable: %v", err))
		return ""
	}
	mnt, err := os.MkdirTemp("", "vhdimount")
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(bin, "-v", image, mnt)
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	unmount := func() {
		if err := syscall.Unmount(mnt, 0); err != nil {
			for _, fm := range []string{"fusermount3", "fusermount"} {
				if p, lerr := exec.LookPath(fm); lerr == nil && exec.Command(p, "-u", mnt).Run() == nil {
					break
				}
			}
		}
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill() // our own child, by its process id
			<-done
			_ = syscall.Unmount(mnt, syscall.MNT_DETACH)
		}
		_ = os.Remove(mnt)
	}
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			done <- err
			_ = os.Remove(mnt)
			if strings.Contains(stderr.String(), "Unable to open") {
				// libvhdi refused the image or its parents: the verdict
				// this oracle is here for.
				t.Fatalf("vhdimount cannot open %s (%v): %s", image, err, stderr.String())
			}
			noFUSE(t, fmt.Sprintf("vhdimount exited (%v): %s", err, stderr.String()))
			return ""
		default:
		}
		if ents, err := os.ReadDir(mnt); err == nil && len(ents) > 0 {
			t.Cleanup(unmount)
			return mnt
		}
		time.Sleep(50 * time.Millisecond)
	}
	unmount()
	t.Fatalf("vhdimount did not mount %s in time: %s", image, stderr.String())
	return ""
}

// noFUSE reports that vhdimount cannot mount here: the test goes on with
// vhdiinfo alone, except under CI=true, where a missing oracle fails.
func noFUSE(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s (CI=true needs FUSE for vhdimount)", why)
	}
	t.Logf("%s; checking with vhdiinfo only", why)
}

// TestLibvhdiReadsOurChains: a base and two differencing layers written by
// the package with 4 KiB-aligned writes (libvhdi misreads partial bitmap
// bytes), confirmed by vhdiinfo and, through vhdimount, byte for byte
// against the model and against what the package reads.
func TestLibvhdiReadsOurChains(t *testing.T) {
	info := lookOracle(t, "vhdiinfo")
	mount := lookOracle(t, "vhdimount")
	dir := t.TempDir()
	fsys := vhd.DirFS(dir)
	const size = 9 << 20
	rng := rand.New(rand.NewSource(42))
	model := make([]byte, size)
	names := []string{"base.vhd", "mid.vhd", "leaf.vhd"}
	models := make([][]byte, len(names))
	for i, name := range names {
		var d *vhd.Disk
		var err error
		if i == 0 {
			d, err = vhd.Create(fsys, name, size, &vhd.CreateOptions{Rand: rng})
		} else {
			d, err = vhd.Snapshot(fsys, name, names[i-1], &vhd.CreateOptions{Rand: rng})
		}
		if err != nil {
			t.Fatal(err)
		}
		fill(t, rng, d, model, writes(rng, size, true, 10))
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		models[i] = append([]byte(nil), model...)
	}
	for i, name := range names {
		d, err := vhd.Open(fsys, name)
		if err != nil {
			t.Fatal(err)
		}
		got := runVhdiinfo(t, info, filepath.Join(dir, name))
		if got.MediaSize != size || got.Identifier != d.UUID().String() {
			t.Errorf("%s: vhdiinfo %+v, want size %d id %s", name, got, size, d.UUID())
		}
		wantType := "Dynamic"
		if i > 0 {
			wantType = "Differential"
			if got.ParentIdentifier != d.ParentUUID().String() || got.ParentFilename != names[i-1] {
				t.Errorf("%s: vhdiinfo parent %s %q, want %s %q", name, got.ParentIdentifier, got.ParentFilename, d.ParentUUID(), names[i-1])
			}
		}
		if got.Type != wantType {
			t.Errorf("%s: vhdiinfo type %q, want %q", name, got.Type, wantType)
		}
		d.Close()

		ours, depth := readChain(t, fsys, name)
		if depth != i+1 || !bytes.Equal(ours, models[i]) {
			t.Fatalf("%s: we read the chain wrong (depth %d)", name, depth)
		}
		mnt := vhdiMount(t, mount, filepath.Join(dir, name))
		if mnt == "" {
			continue
		}
		// vhdi1 is the base, vhdiN the image given.
		for layer := 0; layer <= i; layer++ {
			b, err := os.ReadFile(filepath.Join(mnt, fmt.Sprintf("vhdi%d", layer+1)))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b, models[layer]) {
				t.Fatalf("vhdimount of %s: layer %d (vhdi%d) differs from what we wrote", name, layer, layer+1)
			}
		}
	}
}

// TestBlktapChain reads the chain blktap wrote (sector-granular writes,
// partial bitmap bytes, batmaps): every leaf's whole virtual disk must hash
// as blktap reads it, and Check must accept every file.
func TestBlktapChain(t *testing.T) {
	src := filepath.Join("testdata", "blktap")
	var expect struct {
		VirtualSize int64             `json:"virtual_size"`
		SHA256      map[string]string `json:"sha256_by_leaf"`
	}
	b, err := os.ReadFile(filepath.Join(src, "expect.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &expect); err != nil {
		t.Fatal(err)
	}
	if len(expect.SHA256) != 4 {
		t.Fatalf("expect.json lists %d leaves", len(expect.SHA256))
	}
	dir := t.TempDir()
	for name := range expect.SHA256 {
		gunzip(t, filepath.Join(src, name+".gz"), filepath.Join(dir, name))
	}
	fsys := vhd.DirFS(dir)
	for _, name := range []string{"tap-base.vhd", "tap-l1.vhd", "tap-l2.vhd", "tap-l3.vhd"} {
		t.Run(name, func(t *testing.T) {
			if err := vhd.Check(fsys, name); err != nil {
				t.Errorf("Check: %v", err)
			}
			c, err := vhd.OpenChain(fsys, name)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if c.Size() != expect.VirtualSize {
				t.Fatalf("size %d, want %d", c.Size(), expect.VirtualSize)
			}
			h := sha256.New()
			if n, err := c.WriteTo(h); err != nil || n != expect.VirtualSize {
				t.Fatalf("WriteTo = %d, %v", n, err)
			}
			if got := hex.EncodeToString(h.Sum(nil)); got != expect.SHA256[name] {
				t.Fatalf("sha256 %s, blktap reads %s", got, expect.SHA256[name])
			}
		})
	}
	// The same chain survives staging and import into another SR.
	t.Run("import", func(t *testing.T) {
		root := t.TempDir()
		w := vhd.DirFS(root)
		for i, name := range []string{"tap-l3.vhd", "tap-l2.vhd", "tap-l1.vhd", "tap-base.vhd"} {
			if i == 0 {
				_ = w.MkdirAll("staging", 0o755)
				_ = w.MkdirAll("sr", 0o755)
			}
			b, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(root, "staging", fmt.Sprintf("%d.vhd", i)), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		res, err := vhd.Import(context.Background(), w, "staging", "sr", seededImport(3))
		if err != nil {
			t.Fatal(err)
		}
		c, err := vhd.OpenChain(w, res.Files[0])
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		h := sha256.New()
		if _, err := c.WriteTo(h); err != nil {
			t.Fatal(err)
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != expect.SHA256["tap-l3.vhd"] {
			t.Fatalf("imported chain hashes %s", got)
		}
	})
}

func gunzip(t *testing.T, src, dst string) {
	t.Helper()
	f, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, io.LimitReader(zr, 1<<30)); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestLibvhdiConfirmsChainOnQemuBase: a base written by qemu-img (creator
// "qemu", CHS-rounded size), two differencing layers on top written by the
// package; vhdimount must read every layer as the package does.
func TestLibvhdiConfirmsChainOnQemuBase(t *testing.T) {
	qemu := lookOracle(t, "qemu-img")
	info := lookOracle(t, "vhdiinfo")
	mount := lookOracle(t, "vhdimount")
	dir := t.TempDir()
	fsys := vhd.DirFS(dir)
	rng := rand.New(rand.NewSource(77))
	raw := make([]byte, 7<<20)
	for _, r := range writes(rng, int64(len(raw)), true, 5) {
		rng.Read(raw[r[0] : r[0]+r[1]])
	}
	rawPath := filepath.Join(dir, "in.raw")
	if err := os.WriteFile(rawPath, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	mustTool(t, qemu, "convert", "-f", "raw", "-O", "vpc", "-o", "subformat=dynamic", rawPath, filepath.Join(dir, "base.vhd"))
	size := qemuVirtualSize(t, qemu, filepath.Join(dir, "base.vhd"))
	model := make([]byte, size)
	copy(model, raw)
	models := [][]byte{append([]byte(nil), model...)}
	names := []string{"base.vhd", "l1.vhd", "l2.vhd"}
	for i := 1; i < len(names); i++ {
		d, err := vhd.Snapshot(fsys, names[i], names[i-1], &vhd.CreateOptions{Rand: rng})
		if err != nil {
			t.Fatal(err)
		}
		if d.Size() != size {
			t.Fatalf("snapshot size %d, qemu-img says %d", d.Size(), size)
		}
		fill(t, rng, d, model, writes(rng, size, true, 8))
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		models = append(models, append([]byte(nil), model...))
		if err := vhd.Check(fsys, names[i]); err != nil {
			t.Fatalf("Check %s: %v", names[i], err)
		}
		if got := runVhdiinfo(t, info, filepath.Join(dir, names[i])); got.ParentFilename != names[i-1] || got.MediaSize != size {
			t.Fatalf("vhdiinfo %s: %+v", names[i], got)
		}
	}
	for i, name := range names {
		ours, _ := readChain(t, fsys, name)
		if !bytes.Equal(ours, models[i]) {
			t.Fatalf("%s: we read the chain wrong", name)
		}
	}
	mnt := vhdiMount(t, mount, filepath.Join(dir, "l2.vhd"))
	if mnt == "" {
		return
	}
	for layer := range names {
		b, err := os.ReadFile(filepath.Join(mnt, fmt.Sprintf("vhdi%d", layer+1)))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, models[layer]) {
			t.Fatalf("vhdimount layer %d (%s) differs from what we read", layer, names[layer])
		}
	}
}
