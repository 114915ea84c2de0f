package main

import (
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/xenflow/xenflow/vhd"
)

// benchSize is the virtual size of the benchmark disk.
const benchSize = 1 << 30

// BenchmarkReadRaw compares "vhdutil read" with "qemu-img convert -f vpc -O
// raw" on the same fully allocated 1 GiB dynamic VHD (random data, so
// neither side can skip zeros), page cache warm for reads and flushed of
// dirty pages before each run, the output in /dev/shm when it has room, each writing a raw file
// into the same directory. Both are run as processes: the vhdutil binary
// is built with go build into the benchmark's temporary directory, so the
// two sides pay the same start-up, open and write-back costs and the
// comparison is of the commands a user runs, not of a library call against
// a process.
//
// Run: go test -run '^$' -bench ReadRaw -benchtime 2x -count 6 ./examples/vhdutil | tee out.txt
// and compare: benchstat -col /tool out.txt
func BenchmarkReadRaw(b *testing.B) {
	if testing.Short() {
		b.Skip("1 GiB fixture; skipped with -short")
	}
	qemu, err := exec.LookPath("qemu-img")
	if err != nil {
		if os.Getenv("CI") == "true" {
			b.Fatalf("qemu-img not installed (CI=true): %v", err)
		}
		b.Skipf("qemu-img not installed: %v", err)
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		b.Skipf("go tool not found to build vhdutil: %v", err)
	}
	dir := b.TempDir()
	bin := filepath.Join(dir, "vhdutil")
	if out, err := exec.Command(gobin, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	fixture := filepath.Join(dir, "disk.vhd")
	makeAllocated(b, dir, "disk.vhd")
	// Warm the page cache.
	if f, err := os.Open(fixture); err == nil {
		_, _ = io.Copy(io.Discard, f)
		f.Close()
	}
	out := filepath.Join(outputDir(b, dir), "out.raw")
	bench := func(name string, args ...string) {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(benchSize)
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				// Start every run from a clean page cache for writes: the
				// previous run's dirty output pages are flushed and its
				// file removed, so one run's write-back does not land in
				// the next one's time.
				_ = os.Remove(out)
				syscall.Sync()
				b.StartTimer()
				if o, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
					b.Fatalf("%v: %v\n%s", args, err, o)
				}
			}
			b.StopTimer()
			if fi, err := os.Stat(out); err != nil || fi.Size() != benchSize {
				b.Fatalf("output %v, %v", fi, err)
			}
		})
	}
	bench("tool=qemu-img", qemu, "convert", "-f", "vpc", "-O", "raw", fixture, out)
	bench("tool=vhdutil", bin, "read", "-n", fixture, "-o", out)
}

// makeAllocated writes a 1 GiB dynamic VHD with every block allocated and
// filled with random bytes.
func makeAllocated(b *testing.B, dir, name string) {
	b.Helper()
	fsys := vhd.DirFS(dir)
	d, err := vhd.Create(fsys, name, benchSize, nil)
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewSource(1))
	buf := make([]byte, vhd.DefaultBlockSize)
	for off := int64(0); off < benchSize; off += int64(len(buf)) {
		rng.Read(buf)
		if _, err := d.WriteAt(buf, off); err != nil {
			b.Fatal(err)
		}
	}
	if err := d.Close(); err != nil {
		b.Fatal(err)
	}
}

// outputDir is where the raw output goes: a directory in /dev/shm when that
// tmpfs has room (so the comparison is of the two tools, not of the disk's
// write-back under whatever else the machine is doing), else dir.
func outputDir(b *testing.B, dir string) string {
	var st syscall.Statfs_t
	if err := syscall.Statfs("/dev/shm", &st); err != nil || int64(st.Bavail)*int64(st.Bsize) < 3*benchSize {
		return dir
	}
	shm, err := os.MkdirTemp("/dev/shm", "vhdutil-bench")
	if err != nil {
		return dir
	}
	b.Cleanup(func() { os.RemoveAll(shm) })
	return shm
}

// BenchmarkReadRawSparse compares, in one run and on the same VHDs, the
// dense copy "read" used to make (every byte streamed with Chain.WriteTo)
// with the sparse one it makes now (writeSparse), into a fresh file in
// /dev/shm when it has room: disk=full is 256 MiB of random data in every
// block, the sparse copy's worst case (every block read, compared with
// zeros and written); disk=eighth has one block in eight allocated.
//
// Run: go test -run '^$' -bench ReadRawSparse -benchtime 4x -count 5 ./examples/vhdutil
func BenchmarkReadRawSparse(b *testing.B) {
	const size = 256 << 20
	dir := b.TempDir()
	fsys := vhd.DirFS(dir)
	rng := rand.New(rand.NewSource(1))
	buf := make([]byte, vhd.DefaultBlockSize)
	for _, disk := range []struct {
		name  string
		every int64
	}{{"full", 1}, {"eighth", 8}} {
		d, err := vhd.Create(fsys, disk.name+".vhd", size, nil)
		if err != nil {
			b.Fatal(err)
		}
		for off := int64(0); off < size; off += disk.every * int64(len(buf)) {
			rng.Read(buf)
			if _, err := d.WriteAt(buf, off); err != nil {
				b.Fatal(err)
			}
		}
		if err := d.Close(); err != nil {
			b.Fatal(err)
		}
	}
	out := filepath.Join(outputDir(b, dir), "out.raw")
	copies := []struct {
		name string
		copy func(c *vhd.Chain, f *os.File) error
	}{
		{"dense", func(c *vhd.Chain, f *os.File) error { _, err := c.WriteTo(f); return err }},
		{"sparse", func(c *vhd.Chain, f *os.File) error { return writeSparse(c, f) }},
	}
	for _, disk := range []string{"full", "eighth"} {
		for _, cp := range copies {
			b.Run("disk="+disk+"/write="+cp.name, func(b *testing.B) {
				b.SetBytes(size)
				for i := 0; i < b.N; i++ {
					b.StopTimer()
					_ = os.Remove(out)
					b.StartTimer()
					c, err := vhd.OpenChain(fsys, disk+".vhd")
					if err != nil {
						b.Fatal(err)
					}
					f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
					if err != nil {
						b.Fatal(err)
					}
					if err := cp.copy(c, f); err != nil {
						b.Fatal(err)
					}
					if err := f.Close(); err != nil {
						b.Fatal(err)
					}
					c.Close()
				}
			})
		}
	}
}
