package vhd

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// hostileMetadataBudget is the most an Open or Check of a file whose
// tables claim more than its virtual size needs may allocate before it is
// refused: the footer, header and error, nowhere near the claim.
const hostileMetadataBudget = 256 << 10

// hostileVHD writes dir/name: the metadata of an 8 MiB dynamic disk (footer
// copy, header, BAT and batmap as Create lays them out) with edit applied to
// it, in a sparse file of size bytes ending with the footer. edit gets the
// first 4 KiB of the file and returns nothing; the checksums are fixed
// afterwards.
func hostileVHD(t testing.TB, dir, name string, size int64, edit func(meta []byte)) {
	t.Helper()
	m := newMemFS()
	d, err := Create(m, "src.vhd", 8<<20, testOpts(11))
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	src := m.bytes("src.vhd")
	meta := make([]byte, 4096)
	copy(meta, src[:len(src)-FooterSize])
	edit(meta)
	fixHeader(meta)
	f, err := os.Create(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(meta, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(meta[:FooterSize], size-FooterSize); err != nil {
		t.Fatal(err)
	}
}

// totalAlloc returns the bytes fn allocates.
func totalAlloc(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// hostileCases are files of a few KiB of content whose tables claim far
// more than their 8 MiB virtual size needs, in files (sparse here, or
// whatever size an SFTP server reports) large enough to hold the claim.
var hostileCases = []struct {
	name    string
	entries uint32 // header.max_table_entries
	mapSecs uint32 // batmap.size; 0 keeps Create's
	field   string
}{
	{"BAT of 2^28 entries (1 GiB)", 1 << 28, 0, "header.max_table_entries"},
	{"BAT of 2^32-1 entries (16 GiB)", 0xFFFFFFFF, 0, "header.max_table_entries"},
	{"batmap of 2^21 sectors (1 GiB)", 0, 1 << 21, "batmap.size"},
}

func writeHostile(t testing.TB, dir string, i int) string {
	tc := hostileCases[i]
	name := "hostile.vhd"
	size := int64(64 << 20)
	if tc.entries != 0 {
		size = 1536 + roundUp(int64(tc.entries)*4, SectorSize) + 1024
	}
	if tc.mapSecs != 0 {
		size = 4096 + int64(tc.mapSecs)*SectorSize + FooterSize
	}
	hostileVHD(t, dir, name, size, func(meta []byte) {
		if tc.entries != 0 {
			binary.BigEndian.PutUint32(meta[512+28:], tc.entries)
		}
		if tc.mapSecs != 0 {
			// The batmap header follows the one-sector BAT at 1536.
			binary.BigEndian.PutUint32(meta[2048+16:], tc.mapSecs)
		}
	})
	return name
}

// TestHostileTablesRefusedBeforeAllocation: Open and Check refuse a BAT or
// batmap longer than the virtual size allows with a *FormatError naming the
// field, having allocated next to nothing (before the bound, Open
// allocated the 1 GiB or 16 GiB claim and Check twice that).
func TestHostileTablesRefusedBeforeAllocation(t *testing.T) {
	now := func() time.Time { return testTime }
	for i, tc := range hostileCases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			name := writeHostile(t, dir, i)
			fsys := DirFS(dir)
			ops := map[string]func() error{
				"Open": func() error {
					d, err := Open(fsys, name)
					if err == nil {
						d.Close()
					}
					return err
				},
				"Check": func() error {
					return CheckWithOptions(fsys, name, &CheckOptions{Now: now})
				},
			}
			for op, fn := range ops {
				var err error
				n := totalAlloc(func() { err = fn() })
				var fe *FormatError
				if !errors.As(err, &fe) || !errors.Is(err, ErrCorrupt) {
					t.Fatalf("%s: error %v (%T), want a *FormatError wrapping ErrCorrupt", op, err, err)
				}
				if fe.File != name || fe.Field != tc.field || fe.Offset <= 0 || fe.Reason == "" {
					t.Errorf("%s: %+v, want file %s, field %s, an offset and a reason", op, *fe, name, tc.field)
				}
				t.Logf("%s allocated %d bytes", op, n)
				if n > hostileMetadataBudget {
					t.Errorf("%s allocated %d bytes before refusing, want at most %d", op, n, hostileMetadataBudget)
				}
			}
		})
	}
}

// TestBATLimit pins the bound: the entries the size needs plus one
// sector's worth, or a 2 TiB disk's worth of 2 MiB blocks when that is
// more.
func TestBATLimit(t *testing.T) {
	tests := []struct {
		size    uint64
		bs      uint32
		entries uint32
		ok      bool
	}{
		{8 << 20, DefaultBlockSize, 4, true},
		{8 << 20, DefaultBlockSize, 1 << 20, true}, // vhd-util create -S 2 TiB
		{8 << 20, DefaultBlockSize, 1<<20 + 1, false},
		{MaxVirtualSize, DefaultBlockSize, 1<<20 + batSlack, true},
		{MaxVirtualSize, DefaultBlockSize, 1<<20 + batSlack + 1, false},
		{MaxVirtualSize, 4096, 1<<29 + batSlack, true},
		{MaxVirtualSize, 4096, 1<<29 + batSlack + 1, false},
		{MaxVirtualSize + 1, 4096, 1<<29 + 1 + batSlack, true},
		{1<<64 - 1, SectorSize, 0xFFFFFFFF, true}, // no overflow
		{0, MaxBlockSize, 1<<20 + 1, false},
	}
	for _, tc := range tests {
		ft := &Footer{CurrentSize: tc.size}
		h := &Header{BlockSize: tc.bs, MaxTableEntries: tc.entries}
		err := checkBATSize("x.vhd", ft, h, 512)
		if (err == nil) != tc.ok {
			t.Errorf("size %d, block %d, %d entries: error %v, want ok=%v", tc.size, tc.bs, tc.entries, err, tc.ok)
		}
	}
}

// TestResizeAheadOpens: a small disk whose BAT and batmap were laid out for
// 2 TiB (vhd-util create -S, as XenServer's storage manager creates VHDs)
// opens and checks.
func TestResizeAheadOpens(t *testing.T) {
	dir := t.TempDir()
	fsys := DirFS(dir)
	d, err := Create(fsys, "ahead.vhd", MaxVirtualSize, testOpts(12))
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	p := filepath.Join(dir, "ahead.vhd")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	binary.BigEndian.PutUint64(b[48:], 8<<20)
	binary.BigEndian.PutUint64(b[len(b)-FooterSize+48:], 8<<20)
	g := CHS(8 << 20).packed()
	binary.BigEndian.PutUint32(b[56:], g)
	binary.BigEndian.PutUint32(b[len(b)-FooterSize+56:], g)
	fixFooters(b)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	d, err = Open(fsys, "ahead.vhd")
	if err != nil {
		t.Fatal(err)
	}
	if h, _ := d.Header(); h.MaxTableEntries != 1<<20 || d.Size() != 8<<20 {
		t.Fatalf("%d entries, size %d", h.MaxTableEntries, d.Size())
	}
	d.Close()
	if err := CheckWithOptions(fsys, "ahead.vhd", &CheckOptions{Now: func() time.Time { return testTime }}); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkOpenHostileBAT opens the file whose header claims 2^28 BAT
// entries for an 8 MiB disk: B/op is what refusing it costs (1 GiB before
// the bound).
func BenchmarkOpenHostileBAT(b *testing.B) {
	dir := b.TempDir()
	name := writeHostile(b, dir, 0)
	fsys := DirFS(dir)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Open(fsys, name); err == nil {
			b.Fatal("hostile BAT opened")
		}
	}
}

// TestResizeMovesLocatorPayloadsOnly: growing the BAT of a differencing
// disk whose first parent locator reserves 1 GiB (a sparse file) moves the
// payload, not the claimed space, through memory; the chain still opens
// and checks. Before, Resize allocated the whole reserved space.
func TestResizeMovesLocatorPayloadsOnly(t *testing.T) {
	dir := t.TempDir()
	fsys := DirFS(dir)
	base, err := Create(fsys, "base.vhd", 8<<20, testOpts(13))
	if err != nil {
		t.Fatal(err)
	}
	base.Close()
	child, err := Snapshot(fsys, "child.vhd", "base.vhd", testOpts(14))
	if err != nil {
		t.Fatal(err)
	}
	child.Close()
	p := filepath.Join(dir, "child.vhd")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	const space = 1 << 30
	loc := 512 + 576
	binary.BigEndian.PutUint32(b[loc+4:], space)
	fixHeader(b)
	end := int64(binary.BigEndian.Uint64(b[loc+16:])) + space + FooterSize
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteAt(b[:len(b)-FooterSize], 0)
	if err == nil {
		_, err = f.WriteAt(b[:FooterSize], end-FooterSize)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	var rerr error
	n := totalAlloc(func() { rerr = Resize(fsys, "child.vhd", 12<<20) })
	if rerr != nil {
		t.Fatal(rerr)
	}
	t.Logf("Resize allocated %d bytes", n)
	if n > 16<<20 {
		t.Errorf("Resize allocated %d bytes for a 1 GiB locator space, want at most %d", n, 16<<20)
	}
	c, err := OpenChain(fsys, "child.vhd")
	if err != nil {
		t.Fatal(err)
	}
	if c.Depth() != 2 || c.Size() != 12<<20 {
		t.Errorf("chain of %d disks, %d bytes", c.Depth(), c.Size())
	}
	c.Close()
	if err := CheckWithOptions(fsys, "child.vhd", &CheckOptions{IgnoreTimestamps: true}); err != nil {
		t.Fatal(err)
	}
}
