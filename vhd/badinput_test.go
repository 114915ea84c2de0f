package vhd

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// sampleImages builds, in memory, a small dynamic disk with three blocks
// written and a differencing child with one; returns the FS.
func sampleImages(t testing.TB) *memFS {
	t.Helper()
	m := newMemFS()
	o := testOpts(7)
	o.BlockSize = 4096
	d, err := Create(m, "base.vhd", 32<<10, o)
	if err != nil {
		t.Fatal(err)
	}
	for i, off := range []int64{0, 8192 + 100, 20000} {
		buf := make([]byte, 1000+i*500)
		for j := range buf {
			buf[j] = byte(i + j)
		}
		if _, err := d.WriteAt(buf, off); err != nil {
			t.Fatal(err)
		}
	}
	d.Close()
	c, err := Snapshot(m, "child.vhd", "base.vhd", testOpts(8))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WriteAt([]byte("child data"), 20000); err != nil {
		t.Fatal(err)
	}
	c.Close()
	return m
}

// fixFooters recomputes the checksum of the footer at 0 and at EOF.
func fixFooters(b []byte) {
	for _, off := range []int{0, len(b) - FooterSize} {
		f := b[off : off+FooterSize]
		binary.BigEndian.PutUint32(f[64:], 0)
		binary.BigEndian.PutUint32(f[64:], footerChecksum(f))
	}
}

func fixHeader(b []byte) {
	h := b[512 : 512+HeaderSize]
	binary.BigEndian.PutUint32(h[36:], 0)
	binary.BigEndian.PutUint32(h[36:], headerChecksum(h))
}

func setFooter32(b []byte, off int, v uint32) {
	binary.BigEndian.PutUint32(b[off:], v)
	binary.BigEndian.PutUint32(b[len(b)-FooterSize+off:], v)
	fixFooters(b)
}

func setHeader32(b []byte, off int, v uint32) {
	binary.BigEndian.PutUint32(b[512+off:], v)
	fixHeader(b)
}

func TestOpenBadInput(t *testing.T) {
	m := sampleImages(t)
	base := m.bytes("base.vhd")
	child := m.bytes("child.vhd")
	var probe Disk
	{
		d, err := Open(m, "base.vhd")
		if err != nil {
			t.Fatal(err)
		}
		probe = Disk{bat: d.bat, header: d.header, batmapHdr: d.batmapHdr, batmapOff: d.batmapOff}
		d.Close()
	}
	firstBlock := -1
	var allocated []int
	for i, e := range probe.bat {
		if e != unusedBAT {
			allocated = append(allocated, i)
			if firstBlock < 0 {
				firstBlock = i
			}
		}
	}
	batOff := int(probe.header.TableOffset)
	tests := []struct {
		name   string
		src    []byte
		mutate func(b []byte) []byte
		class  error
		field  string // prefix of FormatError.Field
	}{
		{"empty file", base, func(b []byte) []byte { return nil }, ErrNotVHD, "footer"},
		{"100 bytes", base, func(b []byte) []byte { return b[:100] }, ErrNotVHD, "footer"},
		{"truncated inside footer", base, func(b []byte) []byte { return b[:len(b)-300] }, ErrCorrupt, "bat["},
		{"truncated to the metadata", base, func(b []byte) []byte { return b[:4096] }, ErrCorrupt, "bat["},
		{"wrong cookies", base, func(b []byte) []byte {
			copy(b[0:], "notavhd!")
			copy(b[len(b)-FooterSize:], "notavhd!")
			return b
		}, ErrNotVHD, "footer.cookie"},
		{"bad footer checksums", base, func(b []byte) []byte {
			b[40] ^= 1
			b[len(b)-FooterSize+40] ^= 1
			return b
		}, ErrChecksum, "footer.checksum"},
		{"bad header checksum", base, func(b []byte) []byte { b[512+100] ^= 1; return b }, ErrChecksum, "header.checksum"},
		{"wrong header cookie", base, func(b []byte) []byte { copy(b[512:], "cxsparsX"); return b }, ErrCorrupt, "header.cookie"},
		{"unknown disk type", base, func(b []byte) []byte { setFooter32(b, 60, 7); return b }, ErrUnsupported, "footer.disk_type"},
		{"header offset past EOF", base, func(b []byte) []byte {
			binary.BigEndian.PutUint64(b[16:], 1<<40)
			binary.BigEndian.PutUint64(b[len(b)-FooterSize+16:], 1<<40)
			fixFooters(b)
			return b
		}, ErrCorrupt, "footer.data_offset"},
		{"block size not a power of two", base, func(b []byte) []byte { setHeader32(b, 32, 3<<20); return b }, ErrCorrupt, "header.block_size"},
		{"block size absurd", base, func(b []byte) []byte { setHeader32(b, 32, 1<<31); return b }, ErrCorrupt, "header.block_size"},
		{"absurd table size", base, func(b []byte) []byte { setHeader32(b, 28, 0xFFFFFFF0); return b }, ErrCorrupt, "header.max_table_entries"},
		{"table too small for the size", base, func(b []byte) []byte { setHeader32(b, 28, 2); return b }, ErrCorrupt, "header.max_table_entries"},
		{"BAT entry past EOF", base, func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[batOff+4*allocated[1]:], uint32(len(b)/512+10))
			return b
		}, ErrCorrupt, fmt.Sprintf("bat[%d]", allocated[1])},
		{"BAT entries overlapping", base, func(b []byte) []byte {
			copy(b[batOff+4*allocated[1]:batOff+4*allocated[1]+4], b[batOff+4*firstBlock:])
			return b
		}, ErrCorrupt, "bat["},
		{"BAT entry over the headers", base, func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[batOff+4*firstBlock:], 3)
			return b
		}, ErrCorrupt, fmt.Sprintf("bat[%d]", firstBlock)},
		{"batmap checksum", base, func(b []byte) []byte { b[probe.batmapHdr.Offset] ^= 0x80; return b }, ErrChecksum, "batmap.checksum"},
		{"batmap size zero", base, func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[probe.batmapOff+16:], 0)
			return b
		}, ErrCorrupt, "batmap.size"},
		{"locator past EOF", child, func(b []byte) []byte {
			binary.BigEndian.PutUint64(b[512+576+16:], uint64(len(b)))
			fixHeader(b)
			return b
		}, ErrCorrupt, "header.parent_locator[0]"},
		{"locator bad code", child, func(b []byte) []byte { setHeader32(b, 576, 0x41414141); return b }, ErrCorrupt, "header.parent_locator[0].code"},
		{"fixed disk larger than its file", func() []byte {
			f := make([]byte, 4096+FooterSize)
			ft := Footer{Features: 2, FormatVersion: formatVersion, DataOffset: noDataOffset, CurrentSize: 1 << 20, DiskType: DiskFixed, UniqueID: UUID{1}}
			copy(ft.Cookie[:], footerCookie)
			ft.put(f[4096:])
			return f
		}(), func(b []byte) []byte { return b }, ErrTruncated, "footer.current_size"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.mutate(append([]byte(nil), tc.src...))
			m.put("bad.vhd", b)
			for _, op := range []string{"Open", "Check"} {
				var err error
				if op == "Open" {
					var d *Disk
					if d, err = Open(m, "bad.vhd"); err == nil {
						d.Close()
					}
				} else {
					err = CheckWithOptions(m, "bad.vhd", &CheckOptions{IgnoreParentUUID: true, Now: func() time.Time { return testTime }})
				}
				if err == nil {
					t.Fatalf("%s accepted the file", op)
				}
				if op == "Open" && !errors.Is(err, tc.class) {
					t.Errorf("%s: %v does not wrap %v", op, err, tc.class)
				}
				var fe *FormatError
				if !errors.As(err, &fe) {
					t.Fatalf("%s: %v is not a *FormatError", op, err)
				}
				if op == "Open" && !strings.HasPrefix(fe.Field, tc.field) {
					t.Errorf("%s: field %q, want prefix %q (%v)", op, fe.Field, tc.field, err)
				}
				if fe.File != "bad.vhd" {
					t.Errorf("%s: file %q", op, fe.File)
				}
			}
		})
	}
}
