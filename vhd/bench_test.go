package vhd

import (
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// Benchmarks. Fixtures are generated in b.TempDir(); nothing large is
// committed. Compare a run's variants with benchstat, for example
//
//	go test -run '^$' -bench 'Read1GiB|Open2TiB' -benchtime 3x -count 6 ./vhd | tee new.txt
//	benchstat -col /impl new.txt
//
// The baselines ("impl=os.File") read the same file's bytes with
// (*os.File).ReadAt in the same run, page cache warm.

const benchSize = 1 << 30

// benchFill writes every block of blocks into d with non-zero data.
func benchFill(b *testing.B, d *Disk, keep func(blk int64) bool) {
	buf := make([]byte, d.BlockSize())
	for i := range buf {
		buf[i] = byte(i*7 + 1)
	}
	for blk := int64(0); blk*d.BlockSize() < d.Size(); blk++ {
		if !keep(blk) {
			continue
		}
		buf[0] = byte(blk)
		if _, err := d.WriteAt(buf, blk*d.BlockSize()); err != nil {
			b.Fatal(err)
		}
	}
}

// benchReadFile reads a whole file with os.File in chunk-sized ReadAt calls.
func benchReadFile(b *testing.B, name string, chunk int) {
	f, err := os.Open(name)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	buf := make([]byte, chunk)
	for off := int64(0); off < fi.Size(); off += int64(chunk) {
		if _, err := f.ReadAt(buf, off); err != nil && err != io.EOF {
			b.Fatal(err)
		}
	}
}

func benchHash(b *testing.B, fsys FS, leaf string) [32]byte {
	c, err := OpenChain(fsys, leaf)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	h := sha256.New()
	if _, err := c.WriteTo(h); err != nil {
		b.Fatal(err)
	}
	var s [32]byte
	copy(s[:], h.Sum(nil))
	return s
}

func benchReadAt(b *testing.B, r io.ReaderAt, size int64, chunk int) {
	buf := make([]byte, chunk)
	for off := int64(0); off < size; off += int64(chunk) {
		if _, err := r.ReadAt(buf, off); err != nil && err != io.EOF {
			b.Fatal(err)
		}
	}
}

// BenchmarkRead1GiB reads a fully allocated 1 GiB dynamic VHD (2 MiB
// blocks) sequentially: the baseline os.File over the VHD file, the Disk's
// ReadAt, the Chain's WriteTo; and a 10-deep chain where each layer holds a
// tenth of the blocks, read with ReadAt and WriteTo.
func BenchmarkRead1GiB(b *testing.B) {
	if testing.Short() {
		b.Skip("builds 2 GiB of fixtures")
	}
	dir := b.TempDir()
	fsys := DirFS(dir)
	d, err := Create(fsys, "full.vhd", benchSize, nil)
	if err != nil {
		b.Fatal(err)
	}
	benchFill(b, d, func(int64) bool { return true })
	d.Close()
	prev := "full.vhd"
	for layer := int64(0); layer < 10; layer++ {
		name := fmt.Sprintf("chain%d.vhd", layer)
		var d *Disk
		if layer == 0 {
			d, err = Create(fsys, name, benchSize, nil)
		} else {
			d, err = Snapshot(fsys, name, prev, nil)
		}
		if err != nil {
			b.Fatal(err)
		}
		benchFill(b, d, func(blk int64) bool { return blk%10 == layer })
		d.Close()
		prev = name
	}
	// Both chains must read the same bytes.
	if a, c := benchHash(b, fsys, "full.vhd"), benchHash(b, fsys, "chain9.vhd"); a != c {
		b.Fatalf("the 10-deep chain reads differently from the full disk")
	}
	full := filepath.Join(dir, "full.vhd")
	const chunk = 2 << 20
	// Warm the page cache.
	benchReadFile(b, full, chunk)
	for layer := 0; layer < 10; layer++ {
		benchReadFile(b, filepath.Join(dir, fmt.Sprintf("chain%d.vhd", layer)), chunk)
	}
	run := func(name string, f func(b *testing.B)) {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(benchSize)
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				f(b)
			}
		})
	}
	run("impl=os.File", func(b *testing.B) { benchReadFile(b, full, chunk) })
	run("impl=Disk.ReadAt", func(b *testing.B) {
		d, err := Open(fsys, "full.vhd")
		if err != nil {
			b.Fatal(err)
		}
		benchReadAt(b, d, d.Size(), chunk)
		d.Close()
	})
	run("impl=Chain.WriteTo", func(b *testing.B) {
		c, err := OpenChain(fsys, "full.vhd")
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.WriteTo(io.Discard); err != nil {
			b.Fatal(err)
		}
		c.Close()
	})
	run("impl=Chain10.ReadAt", func(b *testing.B) {
		c, err := OpenChain(fsys, "chain9.vhd")
		if err != nil {
			b.Fatal(err)
		}
		if c.Depth() != 10 {
			b.Fatalf("depth %d", c.Depth())
		}
		benchReadAt(b, c, c.Size(), chunk)
		c.Close()
	})
	run("impl=Chain10.WriteTo", func(b *testing.B) {
		c, err := OpenChain(fsys, "chain9.vhd")
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.WriteTo(io.Discard); err != nil {
			b.Fatal(err)
		}
		c.Close()
	})
}

// BenchmarkOpen2TiB opens (and closes) a sparse 2 TiB dynamic VHD: a 4 MiB
// BAT and a 128 KiB batmap. B/op is the memory an open costs; heap-MiB is
// the live heap with the disk open.
func BenchmarkOpen2TiB(b *testing.B) {
	if testing.Short() {
		b.Skip("creates a 4 MiB fixture")
	}
	fsys := DirFS(b.TempDir())
	d, err := Create(fsys, "big.vhd", MaxVirtualSize, nil)
	if err != nil {
		b.Fatal(err)
	}
	d.Close()
	b.Run("op=Open", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			d, err := Open(fsys, "big.vhd")
			if err != nil {
				b.Fatal(err)
			}
			d.Close()
		}
	})
	b.Run("op=OpenHeap", func(b *testing.B) {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		d, err := Open(fsys, "big.vhd")
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		if d.Size() != MaxVirtualSize {
			b.Fatal("size")
		}
		d.Close()
		b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/(1<<20), "heap-MiB")
		for i := 0; i < b.N; i++ {
		}
	})
}
