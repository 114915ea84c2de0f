package vhd

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestCHS(t *testing.T) {
	tests := []struct {
		size int64
		want Geometry
	}{
		{48 << 20, Geometry{963, 6, 17}},           // blktap's tap-base.vhd
		{1 << 30, Geometry{2080, 16, 63}},          // spec algorithm
		{1073995776, Geometry{2081, 16, 63}},       // qemu-img's rounded 1 GiB
		{1 << 20, Geometry{30, 4, 17}},             // heads at least 4
		{0, Geometry{0, 4, 17}},                    // at least one sector
		{127 << 30, Geometry{65278, 16, 255}},      // ts >= 65535*16*63: 255 spt
		{MaxVirtualSize, Geometry{65535, 16, 255}}, // clamped
	}
	for _, tc := range tests {
		if got := CHS(tc.size); got != tc.want {
			t.Errorf("CHS(%d) = %+v, want %+v", tc.size, got, tc.want)
		}
	}
}

func TestUUID(t *testing.T) {
	s := "9169f17b-e2a6-45c3-aadd-bbfb654c8084"
	u, err := ParseUUID(s)
	if err != nil || u.String() != s {
		t.Fatalf("ParseUUID(%q) = %v, %v", s, u, err)
	}
	if v, err := ParseUUID("9169F17B-E2A6-45C3-AADD-BBFB654C8084"); err != nil || v != u {
		t.Fatalf("upper case: %v %v", v, err)
	}
	for _, bad := range []string{"", "9169f17b", "9169f17b-e2a6-45c3-aadd-bbfb654c808g", "9169f17be-2a6-45c3-aadd-bbfb654c8084"} {
		if _, err := ParseUUID(bad); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("ParseUUID(%q): %v", bad, err)
		}
	}
	r, err := NewUUID(bytes.NewReader(bytes.Repeat([]byte{0xFF}, 16)))
	if err != nil || r.String() != "ffffffff-ffff-4fff-bfff-ffffffffffff" {
		t.Fatalf("NewUUID: %v %v", r, err)
	}
	if _, err := NewUUID(bytes.NewReader(nil)); err == nil {
		t.Fatal("NewUUID from an empty reader")
	}
}

// blktapFile returns a decompressed file of the blktap chain in
// testdata/blktap.
func blktapFile(t *testing.T, name string) []byte {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "blktap", name+".gz"))
	if err != nil {
		t.Fatalf("blktap fixture (committed in testdata): %v", err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(z)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestLayoutMatchesBlktap creates, with blktap's UUIDs and times, the disks
// vhd-util create and vhd-util snapshot made, and compares the metadata
// byte for byte: footers, header, batmap header, parent locators.
func TestLayoutMatchesBlktap(t *testing.T) {
	tapBase := blktapFile(t, "tap-base.vhd")
	tapL1 := blktapFile(t, "tap-l1.vhd")
	var bf, lf Footer
	if err := bf.UnmarshalBinary(tapBase[:512]); err != nil {
		t.Fatal(err)
	}
	if err := lf.UnmarshalBinary(tapL1[:512]); err != nil {
		t.Fatal(err)
	}
	var lh Header
	if err := lh.UnmarshalBinary(tapL1[512:1536]); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	fsys := DirFS(dir)
	d, err := Create(fsys, "tap-base.vhd", int64(bf.CurrentSize), &CreateOptions{UUID: bf.UniqueID, Timestamp: TimestampTime(bf.Timestamp)})
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	mtime := TimestampTime(lh.ParentTimestamp)
	if err := os.Chtimes(filepath.Join(dir, "tap-base.vhd"), mtime, mtime); err != nil {
		t.Fatal(err)
	}
	c, err := Snapshot(fsys, "tap-l1.vhd", "tap-base.vhd", &CreateOptions{UUID: lf.UniqueID, Timestamp: TimestampTime(lf.Timestamp)})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	ourBase, _ := os.ReadFile(filepath.Join(dir, "tap-base.vhd"))
	ourL1, _ := os.ReadFile(filepath.Join(dir, "tap-l1.vhd"))
	same := func(what string, a, b []byte) {
		t.Helper()
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs from blktap's:\nours   %x\nblktap %x", what, a, b)
		}
	}
	// The footer and header of the base and the child, and the batmap
	// header (the blktap files have no full block, so their maps are
	// zero like ours).
	same("base footer copy", ourBase[:512], tapBase[:512])
	same("base footer", ourBase[len(ourBase)-512:], tapBase[len(tapBase)-512:])
	same("base header", ourBase[512:1536], tapBase[512:1536])
	same("base batmap header", ourBase[0x800:0xa00], tapBase[0x800:0xa00])
	same("child footer", ourL1[:512], tapL1[:512])
	same("child header", ourL1[512:1536], tapL1[512:1536])
	same("child batmap header", ourL1[0x800:0xa00], tapL1[0x800:0xa00])
	same("child locator payloads", ourL1[0xc00:0x1200], tapL1[0xc00:0x1200])
	if len(ourL1) != 0x1200+512 {
		t.Errorf("empty child is %d bytes, want %d", len(ourL1), 0x1200+512)
	}
}

// TestSetParentRewritesOnlyWhatModifyDoes checks that SetParent changes
// the header and the locator payloads and no other byte.
func TestSetParentRewritesOnlyWhatModifyDoes(t *testing.T) {
	m := sampleImages(t)
	other, err := Create(m, "sr/0f6e3c4b-1d2a-4c5b-8e7f-9a0b1c2d3e4f.vhd", 32<<10, testOpts(40))
	if err != nil {
		t.Fatal(err)
	}
	other.Close()
	before := m.bytes("child.vhd")
	if err := SetParent(m, "child.vhd", "sr/0f6e3c4b-1d2a-4c5b-8e7f-9a0b1c2d3e4f.vhd"); err != nil {
		t.Fatal(err)
	}
	after := m.bytes("child.vhd")
	if len(before) != len(after) {
		t.Fatalf("file size changed: %d → %d", len(before), len(after))
	}
	var h Header
	if err := h.UnmarshalBinary(after[512:1536]); err != nil {
		t.Fatal(err)
	}
	allowed := func(off int) bool {
		if off >= 512 && off < 1536 {
			return true
		}
		for _, l := range h.Locators[:3] {
			if off >= int(l.DataOffset) && off < int(l.DataOffset)+int(l.Space()) {
				return true
			}
		}
		return false
	}
	for i := range before {
		if before[i] != after[i] && !allowed(i) {
			t.Fatalf("byte %d changed outside the header and locators", i)
		}
	}
	d, err := Open(m, "child.vhd")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	want := []string{"./sr/0f6e3c4b-1d2a-4c5b-8e7f-9a0b1c2d3e4f.vhd", "./sr/0f6e3c4b-1d2a-4c5b-8e7f-9a0b1c2d3e4f.vhd", "./sr/0f6e3c4b-1d2a-4c5b-8e7f-9a0b1c2d3e4f.vhd"}
	if got := d.Locators(); len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("locators %q", got)
	}
	if h.ParentName != "0f6e3c4b-1d2a-4c5b-8e7f-9a0b1c2d3e4f.vhd" || h.ParentTimestamp != Timestamp(time.Unix(1700000000, 0)) {
		t.Fatalf("header %q %d", h.ParentName, h.ParentTimestamp)
	}
	if err := Check(m, "child.vhd"); err != nil {
		t.Fatal(err)
	}
	// A path longer than the reserved 512 bytes is refused, nothing written.
	long := "sr/" + string(bytes.Repeat([]byte("x"), 300)) + ".vhd"
	o2, _ := Create(m, long, 32<<10, testOpts(41))
	o2.Close()
	if err := SetParent(m, "child.vhd", long); !errors.Is(err, ErrNameTooLong) {
		t.Fatalf("long name: %v", err)
	}
	if !bytes.Equal(m.bytes("child.vhd"), after) {
		t.Fatal("a refused SetParent wrote to the file")
	}
}

func TestHiddenByte(t *testing.T) {
	m := sampleImages(t)
	d, err := OpenFile(m, "base.vhd", os.O_RDWR)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.SetHidden(true); err != nil {
		t.Fatal(err)
	}
	d.Close()
	b := m.bytes("base.vhd")
	if b[85] != 1 || b[len(b)-512+85] != 1 {
		t.Fatalf("hidden byte: copy %d, footer %d", b[85], b[len(b)-512+85])
	}
	if info, _ := Query(m, "base.vhd"); !info.Hidden {
		t.Fatal("Query does not see the flag")
	}
	if err := Check(m, "base.vhd"); err != nil {
		t.Fatal(err)
	}
	// tapdisk 0.1/1.1 set the byte without refreshing the checksum.
	var f Footer
	f.UnmarshalBinary(b[:512])
	f.Hidden, f.CreatorVersion = 0, Version(1, 1)
	raw, _ := f.MarshalBinary()
	raw[85] = 1
	var g Footer
	if err := g.UnmarshalBinary(raw); err != nil || g.Hidden != 1 {
		t.Fatalf("tap 1.1 stale checksum: %v", err)
	}
	f.CreatorVersion = Version(1, 3)
	raw, _ = f.MarshalBinary()
	raw[85] = 1
	if err := g.UnmarshalBinary(raw); !errors.Is(err, ErrChecksum) {
		t.Fatalf("tap 1.3 stale checksum accepted: %v", err)
	}
}

// TestCheckReasons mutates valid disks and expects vhd-util check's
// verdicts.
func TestCheckReasons(t *testing.T) {
	m := sampleImages(t)
	base, child := m.bytes("base.vhd"), m.bytes("child.vhd")
	d, _ := Open(m, "base.vhd")
	bmOff, bmHdr := int(d.batmapHdr.Offset), int(d.batmapOff)
	var firstUnused int
	for i, e := range d.bat {
		if e == unusedBAT {
			firstUnused = i
			break
		}
	}
	d.Close()
	now := testTime
	tests := []struct {
		name   string
		src    []byte
		mutate func(b []byte)
		opts   CheckOptions
		reason string
		field  string
	}{
		{"valid", base, func([]byte) {}, CheckOptions{}, "", ""},
		{"reserved feature bit clear", base, func(b []byte) { setFooter32(b, 8, 0) }, CheckOptions{}, "primary footer invalid: invalid 'reserved' feature", "footer.features"},
		{"extra feature", base, func(b []byte) { setFooter32(b, 8, 6) }, CheckOptions{}, "invalid extra features", "footer.features"},
		{"format version", base, func(b []byte) { setFooter32(b, 12, 0x00020000) }, CheckOptions{}, "invalid file format version", "footer.file_format_version"},
		{"timestamp in the future", base, func(b []byte) { setFooter32(b, 24, Timestamp(now)+3600) }, CheckOptions{}, "creation time in future", "footer.timestamp"},
		{"timestamp in the future, ignored", base, func(b []byte) { setFooter32(b, 24, Timestamp(now)+3600) }, CheckOptions{IgnoreTimestamps: true}, "", ""},
		{"tap version too new", base, func(b []byte) { setFooter32(b, 32, Version(1, 4)) }, CheckOptions{}, "unsupported tap creator version", "footer.creator_version"},
		{"geometry too large", base, func(b []byte) { setFooter32(b, 56, 0xFFFF10FF) }, CheckOptions{}, "geometry too large", "footer.geometry"},
		{"hidden 2", base, func(b []byte) {
			b[85], b[len(b)-512+85] = 2, 2
			fixFooters(b)
		}, CheckOptions{}, "invalid 'hidden' state", "footer.hidden"},
		{"reserved bytes", base, func(b []byte) {
			b[300], b[len(b)-512+300] = 1, 1
			fixFooters(b)
		}, CheckOptions{}, "invalid 'reserved' bits", "footer.reserved"},
		{"null uuid", base, func(b []byte) {
			clear(b[68:84])
			clear(b[len(b)-512+68 : len(b)-512+84])
			fixFooters(b)
		}, CheckOptions{}, "invalid (NULL) uuid", "footer.unique_id"},
		{"footers differ", base, func(b []byte) {
			b[len(b)-512+40] ^= 1
			fixFooters(b)
		}, CheckOptions{}, "primary and backup footers do not match", "footer_copy"},
		{"header version", base, func(b []byte) { setHeader32(b, 24, 0x00020000) }, CheckOptions{}, "invalid header version", "header.header_version"},
		{"header data offset", base, func(b []byte) { setHeader32(b, 8, 0) }, CheckOptions{}, "invalid data offset", "header.data_offset"},
		{"table offset unaligned", base, func(b []byte) { setHeader32(b, 20, 1537) }, CheckOptions{}, "invalid table offset", "header.table_offset"},
		{"dynamic with a parent uuid", base, func(b []byte) { setHeader32(b, 40, 1) }, CheckOptions{}, "invalid non-null parent uuid", "header.parent_uuid"},
		{"batmap full bit on an unused block", base, func(b []byte) {
			b[bmOff+firstUnused/8] |= 0x80 >> (firstUnused % 8)
			sum := batmapChecksum(b[bmOff:bmOff+512], 512, batmapVersion)
			binary.BigEndian.PutUint32(b[bmHdr+24:], sum)
		}, CheckOptions{}, "batmap shows unallocated block", "batmap.map"},
		{"data where the bitmap is clear", base, func(b []byte) {
			d := sampleBlockData(t, m)
			b[d] = 0xAA
		}, CheckOptions{CheckData: true}, "has data where bitmap is clear", "block["},
		{"parent timestamp in the future", child, func(b []byte) { setHeader32(b, 56, Timestamp(now)+3600) }, CheckOptions{}, "parent creation time in future", "header.parent_timestamp"},
		{"locator name differs from header", child, func(b []byte) {
			b[512+64+1] = 'B' // header name "base.vhd" → "Base.vhd"
			fixHeader(b)
		}, CheckOptions{}, "does not match header name", "header.parent_locator[0]"},
		{"duplicate locator", child, func(b []byte) {
			copy(b[512+576+24:512+576+48], b[512+576:512+576+24])
			fixHeader(b)
		}, CheckOptions{}, "duplicate platform code", "header.parent_locator[1]"},
		{"parent uuid differs", child, func(b []byte) { setHeader32(b, 44, 0x12345678) }, CheckOptions{}, "invalid parent uuid", "header.parent_uuid"},
		{"parent uuid differs, ignored", child, func(b []byte) { setHeader32(b, 44, 0x12345678) }, CheckOptions{IgnoreParentUUID: true}, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := append([]byte(nil), tc.src...)
			tc.mutate(b)
			m.put("x.vhd", b)
			o := tc.opts
			o.Now = func() time.Time { return now }
			err := CheckWithOptions(m, "x.vhd", &o)
			if tc.reason == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("%v is not a *FormatError", err)
			}
			if !bytes.Contains([]byte(fe.Reason), []byte(tc.reason)) || !bytes.HasPrefix([]byte(fe.Field), []byte(tc.field)) {
				t.Fatalf("got field %q reason %q, want %q %q", fe.Field, fe.Reason, tc.field, tc.reason)
			}
			if fe.Offset < 0 || fe.Offset >= int64(len(b)) {
				t.Fatalf("offset %d outside the file", fe.Offset)
			}
		})
	}
}

// sampleBlockData returns the file offset of a sector of base.vhd whose
// bitmap bit is clear, inside an allocated block.
func sampleBlockData(t *testing.T, m *memFS) int {
	d, err := Open(m, "base.vhd")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for i, e := range d.bat {
		if e == unusedBAT {
			continue
		}
		bm, _ := d.bitmap(uint32(i))
		for s := int64(0); s < d.spb; s++ {
			if !bitTest(bm, s) {
				return int(int64(e)*SectorSize + d.bitmapSize + s*SectorSize)
			}
		}
	}
	t.Fatal("no clear sector")
	return 0
}
