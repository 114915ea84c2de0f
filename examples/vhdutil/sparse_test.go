package main

import (
	"bytes"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"github.com/xenflow/xenflow/vhd"
)

// sparseFixture builds in dir a chain of size bytes: base.vhd with random
// data in block 3 and an allocated all-zero block 7, leaf.vhd (its child)
// with random data in block 10. It returns the chain's virtual disk.
func sparseFixture(t testing.TB, dir string, size int64) []byte {
	t.Helper()
	fsys := vhd.DirFS(dir)
	model := make([]byte, size)
	rng := rand.New(rand.NewSource(3))
	block := int64(vhd.DefaultBlockSize)
	put := func(d *vhd.Disk, blk int64, random bool) {
		buf := make([]byte, block)
		if random {
			rng.Read(buf)
		}
		if _, err := d.WriteAt(buf, blk*block); err != nil {
			t.Fatal(err)
		}
		copy(model[blk*block:], buf)
	}
	base, err := vhd.Create(fsys, "base.vhd", size, nil)
	if err != nil {
		t.Fatal(err)
	}
	put(base, 3, true)
	put(base, 7, false)
	if err := base.Close(); err != nil {
		t.Fatal(err)
	}
	leaf, err := vhd.Snapshot(fsys, "leaf.vhd", "base.vhd", nil)
	if err != nil {
		t.Fatal(err)
	}
	put(leaf, 10, true)
	if err := leaf.Close(); err != nil {
		t.Fatal(err)
	}
	return model
}

// allocated returns the bytes of disk space a local file occupies.
func allocated(t *testing.T, p string) int64 {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		t.Skip("no block count on this system")
	}
	return st.Blocks * 512
}

// TestReadWritesSparsely: "read" into a file writes only the blocks that
// hold data (two here) and leaves the rest, unallocated or all-zero, as
// holes, with the file as long as the virtual disk and its bytes the
// chain's. Written densely, the output took all 64 MiB.
func TestReadWritesSparsely(t *testing.T) {
	dir := t.TempDir()
	const size = 64 << 20
	model := sparseFixture(t, dir, size)
	out := filepath.Join(dir, "out.raw")
	// An existing, longer output is replaced, not merged.
	if err := os.WriteFile(out, bytes.Repeat([]byte{0xEE}, size+4096), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := cli(dir, "read", "-n", "{d}/leaf.vhd", "-o", out); code != exitOK {
		t.Fatalf("read: exit %d: %s", code, errs)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, model) {
		t.Fatalf("output of %d bytes differs from the chain's %d", len(got), len(model))
	}
	const data = 2 * vhd.DefaultBlockSize
	if n := allocated(t, out); n > data+(1<<20) {
		t.Errorf("output occupies %d bytes of disk, want about %d (the blocks holding data)", n, data)
	}
}

// TestReadToAPipe: "-o -" and a pipe named as the output get every byte,
// in order.
func TestReadToAPipe(t *testing.T) {
	dir := t.TempDir()
	model := sparseFixture(t, dir, 24<<20)
	code, out, errs := cli(dir, "read", "-n", "{d}/leaf.vhd", "-o", "-")
	if code != exitOK || out != string(model) {
		t.Fatalf("read -o -: exit %d, %d bytes (want %d): %s", code, len(out), len(model), errs)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(r)
		got <- b
	}()
	fdPath := "/dev/fd/" + strconv.Itoa(int(w.Fd()))
	if _, err := os.Stat(fdPath); err != nil {
		w.Close()
		<-got
		t.Skipf("no %s: %v", fdPath, err)
	}
	code, _, errs = cli(dir, "read", "-n", "{d}/leaf.vhd", "-o", fdPath)
	w.Close()
	if b := <-got; code != exitOK || !bytes.Equal(b, model) {
		t.Fatalf("read -o %s: exit %d, %d bytes (want %d): %s", fdPath, code, len(b), len(model), errs)
	}
}

// TestReadOutputIsPrivate: the raw image read out is created 0600.
func TestReadOutputIsPrivate(t *testing.T) {
	dir := t.TempDir()
	sparseFixture(t, dir, 24<<20)
	if code, _, errs := cli(dir, "read", "-n", "{d}/leaf.vhd", "-o", "{d}/out.raw"); code != exitOK {
		t.Fatal(errs)
	}
	fi, err := os.Stat(filepath.Join(dir, "out.raw"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("out.raw has mode %#o, want 0600", fi.Mode().Perm())
	}
}
