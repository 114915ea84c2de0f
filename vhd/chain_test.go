package vhd

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestChainErrors(t *testing.T) {
	mk := func(t *testing.T) *memFS {
		m := newMemFS()
		d, err := Create(m, "base.vhd", 1<<20, testOpts(1))
		if err != nil {
			t.Fatal(err)
		}
		d.Close()
		for i, p := range []string{"base.vhd", "x.vhd"} {
			c, err := Snapshot(m, []string{"x.vhd", "y.vhd"}[i], p, testOpts(int64(i+2)))
			if err != nil {
				t.Fatal(err)
			}
			c.Close()
		}
		return m
	}
	tests := []struct {
		name   string
		break_ func(t *testing.T, m *memFS)
		want   error
	}{
		{"missing parent", func(t *testing.T, m *memFS) { m.Remove("base.vhd") }, ErrParentNotFound},
		{"mismatched parent", func(t *testing.T, m *memFS) {
			m.Remove("base.vhd")
			d, err := Create(m, "base.vhd", 1<<20, testOpts(99))
			if err != nil {
				t.Fatal(err)
			}
			d.Close()
		}, ErrParentMismatch},
		{"parent loop", func(t *testing.T, m *memFS) {
			if err := SetParent(m, "x.vhd", "y.vhd"); err != nil {
				t.Fatal(err)
			}
		}, ErrParentLoop},
		{"parent not a VHD", func(t *testing.T, m *memFS) { m.put("base.vhd", []byte("hello")) }, ErrNotVHD},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := mk(t)
			tc.break_(t, m)
			_, err := OpenChain(m, "y.vhd")
			if !errors.Is(err, tc.want) {
				t.Fatalf("OpenChain: %v, want %v", err, tc.want)
			}
			var pe *ParentError
			if !errors.As(err, &pe) {
				t.Fatalf("OpenChain: %T is not a *ParentError", err)
			}
			if _, err := Query(m, "y.vhd"); !errors.Is(err, tc.want) {
				t.Errorf("Query: %v, want %v", err, tc.want)
			}
			if tc.want != ErrParentLoop {
				if err := Check(m, "x.vhd"); !errors.Is(err, tc.want) {
					t.Errorf("Check: %v, want %v", err, tc.want)
				}
			}
		})
	}
}

func TestChainTooDeep(t *testing.T) {
	m := newMemFS()
	d, err := Create(m, "0.vhd", 1<<20, testOpts(1))
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	for i := 1; i < 31; i++ {
		c, err := Snapshot(m, fmt.Sprintf("%d.vhd", i), fmt.Sprintf("%d.vhd", i-1), testOpts(int64(i+1)))
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	// 30 disks: accepted.
	c, err := OpenChain(m, "29.vhd")
	if err != nil {
		t.Fatal(err)
	}
	if c.Depth() != 30 {
		t.Fatalf("depth %d", c.Depth())
	}
	c.Close()
	if _, err := OpenChain(m, "30.vhd"); !errors.Is(err, ErrChainTooDeep) {
		t.Fatalf("31 disks: %v", err)
	}
	if _, err := OpenChainWithOptions(m, "30.vhd", &ChainOptions{MaxDepth: 31}); err != nil {
		t.Fatalf("31 disks with MaxDepth 31: %v", err)
	}
	if _, err := OpenChainWithOptions(m, "5.vhd", &ChainOptions{MaxDepth: 3}); !errors.Is(err, ErrChainTooDeep) {
		t.Fatalf("MaxDepth 3: %v", err)
	}
}

func TestCheckAcceptsWhatWeWrite(t *testing.T) {
	m := sampleImages(t)
	f, err := Create(m, "fixed.vhd", 1<<20, &CreateOptions{Type: DiskFixed, Rand: testOpts(3).Rand, Timestamp: testTime})
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("x"), 1000)
	f.Close()
	for _, n := range []string{"base.vhd", "child.vhd", "fixed.vhd"} {
		if err := CheckWithOptions(m, n, &CheckOptions{CheckData: true}); err != nil {
			t.Errorf("%s: %v", n, err)
		}
	}
}

func TestResize(t *testing.T) {
	tests := []struct {
		name      string
		typ       DiskType
		block     uint32
		from, to  int64
		snapshots int
	}{
		{"dynamic within BAT", DiskDynamic, 0, 3 << 20, 4 << 20, 0},
		{"dynamic BAT grows", DiskDynamic, 4096, 64 << 10, 8 << 20, 0},
		{"dynamic BAT and batmap grow a lot", DiskDynamic, 4096, 4 << 20, 64 << 20, 0},
		{"differencing BAT grows", DiskDynamic, 4096, 64 << 10, 4 << 20, 1},
		{"fixed", DiskFixed, 0, 1 << 20, 3 << 20, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := newMemFS()
			o := testOpts(1)
			o.Type, o.BlockSize = tc.typ, tc.block
			d, err := Create(m, "a.vhd", tc.from, o)
			if err != nil {
				t.Fatal(err)
			}
			model := make([]byte, tc.to)
			fill := func(d *Disk, off int64, n int, seed byte) {
				b := make([]byte, n)
				for i := range b {
					b[i] = seed + byte(i)
				}
				if _, err := d.WriteAt(b, off); err != nil {
					t.Fatal(err)
				}
				copy(model[off:], b)
			}
			fill(d, 0, 9000, 1)
			fill(d, tc.from-700, 700, 2)
			d.Close()
			leaf := "a.vhd"
			if tc.snapshots > 0 {
				c, err := Snapshot(m, "b.vhd", "a.vhd", testOpts(2))
				if err != nil {
					t.Fatal(err)
				}
				fill(c, 100, 5000, 3)
				c.Close()
				leaf = "b.vhd"
			}
			if err := Resize(m, leaf, tc.from-512); !errors.Is(err, ErrShrink) {
				t.Fatalf("shrink: %v", err)
			}
			if err := Resize(m, leaf, tc.to); err != nil {
				t.Fatal(err)
			}
			w, err := OpenChainWithOptions(m, leaf, &ChainOptions{Writable: true})
			if err != nil {
				t.Fatal(err)
			}
			if w.Size() != tc.to {
				t.Fatalf("size %d", w.Size())
			}
			fill(w.Leaf(), tc.to-5000, 5000, 4)
			if got := readAll(t, w, tc.to); !bytes.Equal(got, model) {
				t.Fatal("contents changed by resize")
			}
			w.Close()
			if err := CheckWithOptions(m, leaf, &CheckOptions{CheckData: true, Now: func() time.Time { return testTime }}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestCoalesce(t *testing.T) {
	m := sampleImages(t)
	c, err := OpenChain(m, "child.vhd")
	if err != nil {
		t.Fatal(err)
	}
	want := readAll(t, c, c.Size())
	c.Close()
	if err := Coalesce(m, "child.vhd"); err != nil {
		t.Fatal(err)
	}
	b, err := Open(m, "base.vhd")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if got := readAll(t, b, b.Size()); !bytes.Equal(got, want) {
		t.Fatal("parent after coalesce differs from the chain before")
	}
	if err := Check(m, "base.vhd"); err != nil {
		t.Fatal(err)
	}
	if err := Coalesce(m, "base.vhd"); !errors.Is(err, ErrNotDifferencing) {
		t.Fatalf("coalesce of a dynamic disk: %v", err)
	}
}

func TestRawParent(t *testing.T) {
	m := newMemFS()
	raw := make([]byte, 1<<20)
	for i := range raw {
		raw[i] = byte(i / 512)
	}
	m.put("base.raw", raw)
	o := testOpts(1)
	o.RawParent = true
	c, err := Snapshot(m, "leaf.vhd", "base.raw", o)
	if err != nil {
		t.Fatal(err)
	}
	if c.Size() != int64(len(raw)) || !c.ParentUUID().IsZero() {
		t.Fatalf("size %d parent %v", c.Size(), c.ParentUUID())
	}
	c.Close()
	ch, err := OpenChainWithOptions(m, "leaf.vhd", &ChainOptions{Writable: true})
	if err != nil {
		t.Fatal(err)
	}
	model := append([]byte(nil), raw...)
	if _, err := ch.WriteAt([]byte("over the raw image"), 5000); err != nil {
		t.Fatal(err)
	}
	copy(model[5000:], "over the raw image")
	if got := readAll(t, ch, ch.Size()); !bytes.Equal(got, model) {
		t.Fatal("chain over a raw parent reads wrong")
	}
	if ch.Depth() != 2 || !ch.Disks()[1].Raw() {
		t.Fatalf("depth %d", ch.Depth())
	}
	ch.Close()
	info, err := Query(m, "leaf.vhd")
	if err != nil || info.Depth != 2 || info.Parent != "base.raw" {
		t.Fatalf("Query: %+v %v", info, err)
	}
	if err := Check(m, "leaf.vhd"); err != nil {
		t.Fatal(err)
	}
	if err := Coalesce(m, "leaf.vhd"); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(m.bytes("base.raw"), model) {
		t.Fatal("coalesce into the raw parent")
	}
}

func TestSnapshotSkipEmptyAncestors(t *testing.T) {
	m := sampleImages(t) // child.vhd holds a block
	e, err := Snapshot(m, "empty.vhd", "child.vhd", testOpts(20))
	if err != nil {
		t.Fatal(err)
	}
	e.Close()
	o := testOpts(21)
	o.SkipEmptyAncestors = true
	s, err := Snapshot(m, "leaf.vhd", "empty.vhd", o)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	p, err := s.ParentPath()
	if err != nil || p != "child.vhd" {
		t.Fatalf("parent %q, %v: want child.vhd (empty.vhd skipped)", p, err)
	}
	o2 := testOpts(22)
	d, err := Snapshot(m, "leaf2.vhd", "empty.vhd", o2)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if p, _ := d.ParentPath(); p != "empty.vhd" {
		t.Fatalf("without the option the parent is %q", p)
	}
}
