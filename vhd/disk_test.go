package vhd

import (
	"bytes"
	"errors"
	"math/rand"
	"os"
	"testing"
	"time"
)

var testTime = time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)

func testOpts(seed int64) *CreateOptions {
	return &CreateOptions{Rand: rand.New(rand.NewSource(seed)), Timestamp: testTime}
}

func newTestFS(t testing.TB) FS { return DirFS(t.TempDir()) }

func readAll(t *testing.T, r interface {
	ReadAt([]byte, int64) (int, error)
}, size int64) []byte {
	t.Helper()
	b := make([]byte, size)
	if n, err := r.ReadAt(b, 0); n != len(b) {
		t.Fatalf("ReadAt: %d bytes, %v", n, err)
	}
	return b
}

func TestCreateWriteReadRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		typ  DiskType
		size int64
	}{
		{"dynamic", DiskDynamic, 10 << 20},
		{"fixed", DiskFixed, 10 << 20},
		{"dynamic odd size", DiskDynamic, 5<<20 + 3*512},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fsys := newTestFS(t)
			o := testOpts(1)
			o.Type = tc.typ
			d, err := Create(fsys, "a.vhd", tc.size, o)
			if err != nil {
				t.Fatal(err)
			}
			model := make([]byte, tc.size)
			r := rand.New(rand.NewSource(2))
			for i := 0; i < 20; i++ {
				off := r.Int63n(tc.size)
				n := min(int64(r.Intn(300000)+1), tc.size-off)
				buf := make([]byte, n)
				r.Read(buf)
				if _, err := d.WriteAt(buf, off); err != nil {
					t.Fatal(err)
				}
				copy(model[off:], buf)
			}
			if got := readAll(t, d, tc.size); !bytes.Equal(got, model) {
				t.Fatal("read back differs before reopen")
			}
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			d, err = Open(fsys, "a.vhd")
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			if d.Type() != tc.typ || d.Size() != tc.size {
				t.Fatalf("type %v size %d", d.Type(), d.Size())
			}
			if got := readAll(t, d, tc.size); !bytes.Equal(got, model) {
				t.Fatal("read back differs after reopen")
			}
		})
	}
}

func TestSnapshotChainRead(t *testing.T) {
	fsys := newTestFS(t)
	size := int64(8 << 20)
	base, err := Create(fsys, "base.vhd", size, testOpts(1))
	if err != nil {
		t.Fatal(err)
	}
	model := make([]byte, size)
	w := func(d *Disk, off int64, n int, v byte) {
		t.Helper()
		b := bytes.Repeat([]byte{v}, n)
		if _, err := d.WriteAt(b, off); err != nil {
			t.Fatal(err)
		}
		copy(model[off:], b)
	}
	w(base, 1000, 5000, 1)
	w(base, 3<<20, 2<<20, 2)
	base.Close()
	child, err := Snapshot(fsys, "child.vhd", "base.vhd", testOpts(2))
	if err != nil {
		t.Fatal(err)
	}
	w(child, 1100, 100, 3) // partial sectors: rest from the parent
	w(child, 4<<20+7, 513, 4)
	child.Close()
	c, err := OpenChain(fsys, "child.vhd")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Depth() != 2 {
		t.Fatalf("depth %d", c.Depth())
	}
	if got := readAll(t, c, size); !bytes.Equal(got, model) {
		t.Fatal("chain read differs from model")
	}
	info, err := Query(fsys, "child.vhd")
	if err != nil {
		t.Fatal(err)
	}
	if info.Parent != "base.vhd" || info.Depth != 2 || info.Type != DiskDifferencing || info.ParentUUID != c.Disks()[1].UUID() {
		t.Fatalf("info %+v", info)
	}
}

func TestSetHiddenAndParent(t *testing.T) {
	fsys := newTestFS(t)
	b, err := Create(fsys, "b.vhd", 4<<20, testOpts(1))
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	c, err := Snapshot(fsys, "c.vhd", "b.vhd", testOpts(2))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetHidden(true); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if err := fsys.Rename("b.vhd", "11111111-2222-3333-4444-555555555555.vhd"); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenChain(fsys, "c.vhd"); !errors.Is(err, ErrParentNotFound) {
		t.Fatalf("renamed parent: %v", err)
	}
	if err := SetParent(fsys, "c.vhd", "11111111-2222-3333-4444-555555555555.vhd"); err != nil {
		t.Fatal(err)
	}
	ch, err := OpenChain(fsys, "c.vhd")
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	if !ch.Leaf().Hidden() {
		t.Fatal("hidden flag lost")
	}
	d, err := OpenFile(fsys, "c.vhd", os.O_RDONLY)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.SetHidden(false); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("SetHidden on read-only: %v", err)
	}
}
