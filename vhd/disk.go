package vhd

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
)

// bitmapCacheEntries bounds the per-disk cache of sector bitmaps (each at
// most MaxBlockSize/512/8 = 16 KiB, 512 bytes for 2 MiB blocks).
const bitmapCacheEntries = 64

// Disk is one open VHD file: fixed, dynamic or differencing. Its ReadAt and
// WriteAt address this file only: sectors the file does not hold read as
// zeros. Read a differencing disk through its parents with OpenChain.
//
// A Disk is safe for concurrent use: reads run in parallel, writes are
// serialised.
type Disk struct {
	fsys     FS
	name     string
	f        File
	writable bool
	raw      bool // a raw parent image, no VHD structures

	mu       sync.RWMutex
	closed   bool
	dirty    bool
	footer   Footer
	header   Header
	bat      []uint32
	fileSize int64
	// footerPos is where the primary footer is (file size - 512, or -511
	// for a short footer); new blocks are appended there.
	footerPos int64
	// eoh is the end of metadata (headers, BAT, batmap, locators).
	eoh int64

	blockSize  int64
	blockShift uint
	spb        int64 // sectors per block
	bitmapSize int64 // sector bitmap bytes, padded to a sector

	hasBatmap bool
	batmapHdr batmapHeader
	batmapOff int64 // batmap header offset
	batmap    []byte

	cacheMu sync.Mutex
	bmCache map[uint32][]byte

	// parents are this disk's ancestors (parent first), used for the
	// read-modify-write of partial sectors of a differencing disk. Opened
	// lazily by WriteAt, or supplied by the Chain that owns the disk.
	parents     []*Disk
	ownsParents bool
}

// Open opens a VHD read-only.
func Open(fsys FS, name string) (*Disk, error) {
	return OpenFile(fsys, name, os.O_RDONLY)
}

// OpenFile opens a VHD with os.O_RDONLY or os.O_RDWR. It reads and
// validates the footer (falling back to the copy at offset 0 when the
// primary one is damaged), and for dynamic and differencing disks the
// header, the BAT (every entry inside the file, none overlapping another or
// the metadata) and blktap's batmap. Before anything is allocated the
// tables are bounded by the virtual size: a BAT may declare the entries the
// size needs plus one sector's worth, or 2^20 entries (a 2 TiB disk of
// 2 MiB blocks, what "vhd-util create -S" prepares) when that is more, and
// the batmap as many sectors as that BAT needs; a header claiming more is a
// *FormatError whatever the file's size. A 2 TiB sparse disk costs its
// 4 MiB BAT.
func OpenFile(fsys FS, name string, flag int) (*Disk, error) {
	if flag&^(os.O_RDONLY|os.O_RDWR|os.O_WRONLY) != 0 {
		return nil, fmt.Errorf("%w: OpenFile flag %#x (want os.O_RDONLY or os.O_RDWR)", ErrInvalidArgument, flag)
	}
	writable := flag&(os.O_RDWR|os.O_WRONLY) != 0
	var f File
	var err error
	if writable {
		f, err = fsys.OpenFile(name, os.O_RDWR, 0)
	} else {
		f, err = fsys.Open(name)
	}
	if err != nil {
		return nil, fileErr("open", name, err)
	}
	d, err := newDisk(fsys, name, f, writable)
	if err != nil {
		f.Close()
		return nil, err
	}
	return d, nil
}

func newDisk(fsys FS, name string, f File, writable bool) (*Disk, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, fileErr("stat", name, err)
	}
	d := &Disk{fsys: fsys, name: name, f: f, writable: writable, fileSize: fi.Size()}
	if err := d.load(); err != nil {
		return nil, err
	}
	return d, nil
}

func (d *Disk) ferr(field string, off int64, class error, format string, args ...any) error {
	return formatErr(d.name, field, off, class, format, args...)
}

// readFull reads len(b) bytes at off, reporting a short file as a
// *FormatError naming field.
func (d *Disk) readFull(b []byte, off int64, field string) error {
	if off < 0 || off+int64(len(b)) > d.fileSize {
		return d.ferr(field, off, ErrTruncated, "%d bytes at offset %d lie past the end of the %d-byte file", len(b), off, d.fileSize)
	}
	n, err := d.f.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || err == io.EOF {
		return d.ferr(field, off, ErrTruncated, "short read: %d of %d bytes", n, len(b))
	}
	return fmt.Errorf("vhd: %s: reading %s at %d: %w", d.name, field, off, err)
}

func (d *Disk) load() error {
	if d.fileSize < FooterSize-1 {
		return d.ferr("footer", 0, ErrNotVHD, "file is %d bytes, too small for a footer", d.fileSize)
	}
	// Primary footer at EOF (512 or, for old Virtual PC files, 511 bytes).
	flen := int64(FooterSize)
	if d.fileSize%SectorSize == SectorSize-1 {
		flen = FooterSize - 1
	}
	d.footerPos = d.fileSize - flen
	buf := make([]byte, FooterSize)
	if err := d.readFull(buf[:flen], d.footerPos, "footer"); err != nil {
		return err
	}
	perr := d.footer.UnmarshalBinary(buf[:flen])
	if perr != nil {
		// Try the copy at offset 0 (dynamic and differencing disks).
		var backup Footer
		if d.fileSize >= FooterSize+HeaderSize {
			if err := d.readFull(buf, 0, "footer copy"); err != nil {
				return err
			}
			if backup.UnmarshalBinary(buf) == nil && (backup.DiskType == DiskDynamic || backup.DiskType == DiskDifferencing) {
				d.footer = backup
				perr = nil
			}
		}
		if perr != nil {
			return withFile(perr, d.name, d.footerPos)
		}
	}
	ft := &d.footer
	switch ft.DiskType {
	case DiskFixed:
		if ft.CurrentSize%SectorSize != 0 {
			return d.ferr("footer.current_size", d.footerPos+48, ErrCorrupt, "size %d is not a multiple of 512", ft.CurrentSize)
		}
		if ft.CurrentSize > uint64(d.footerPos) {
			return d.ferr("footer.current_size", d.footerPos+48, ErrTruncated, "fixed disk of %d bytes in a %d-byte file", ft.CurrentSize, d.fileSize)
		}
		return nil
	case DiskDynamic, DiskDifferencing:
	default:
		return d.ferr("footer.disk_type", d.footerPos+60, ErrUnsupported, "invalid type %d", uint32(ft.DiskType))
	}
	return d.loadDynamic()
}

func (d *Disk) loadDynamic() error {
	ft := &d.footer
	if ft.DataOffset < FooterSize || ft.DataOffset > uint64(d.fileSize) || ft.DataOffset%SectorSize != 0 {
		return d.ferr("footer.data_offset", d.footerPos+16, ErrCorrupt, "header offset %d outside the %d-byte file", ft.DataOffset, d.fileSize)
	}
	hoff := int64(ft.DataOffset)
	hb := make([]byte, HeaderSize)
	if err := d.readFull(hb, hoff, "header"); err != nil {
		return err
	}
	if err := d.header.UnmarshalBinary(hb); err != nil {
		return withFile(err, d.name, hoff)
	}
	h := &d.header
	bs := h.BlockSize
	if bs < SectorSize || bs > MaxBlockSize || bs&(bs-1) != 0 {
		return d.ferr("header.block_size", hoff+32, ErrCorrupt, "invalid block size %d (a power of two from 512 to %d)", bs, MaxBlockSize)
	}
	d.blockSize = int64(bs)
	for 1<<d.blockShift < bs {
		d.blockShift++
	}
	d.spb = d.blockSize / SectorSize
	d.bitmapSize = roundUp((d.spb+7)/8, SectorSize)
	if ft.CurrentSize%SectorSize != 0 {
		return d.ferr("footer.current_size", d.footerPos+48, ErrCorrupt, "size %d is not a multiple of 512", ft.CurrentSize)
	}
	if ft.CurrentSize > uint64(bs)<<32 {
		return d.ferr("footer.current_size", d.footerPos+48, ErrCorrupt, "size %d needs more than 2^32 blocks of %d bytes", ft.CurrentSize, bs)
	}
	need := blocksFor(ft.CurrentSize, bs)
	if uint64(h.MaxTableEntries) < need {
		return d.ferr("header.max_table_entries", hoff+28, ErrCorrupt, "%d entries cannot map a %d-byte disk of %d-byte blocks", h.MaxTableEntries, ft.CurrentSize, bs)
	}
	if err := checkBATSize(d.name, ft, h, hoff); err != nil {
		return err
	}
	batBytes := roundUp(int64(h.MaxTableEntries)*4, SectorSize)
	if h.TableOffset%SectorSize != 0 || h.TableOffset < FooterSize || h.TableOffset > uint64(d.fileSize) || int64(h.TableOffset)+int64(h.MaxTableEntries)*4 > d.footerPos {
		return d.ferr("header.table_offset", hoff+16, ErrCorrupt, "BAT of %d entries at %d does not fit in the %d-byte file", h.MaxTableEntries, h.TableOffset, d.fileSize)
	}
	tOff := int64(h.TableOffset)
	// Read the BAT in bounded chunks straight into the table.
	d.bat = make([]uint32, h.MaxTableEntries)
	chunk := make([]byte, min(int64(len(d.bat))*4, 256<<10))
	for i := 0; i < len(d.bat); {
		n := min(len(d.bat)-i, len(chunk)/4)
		if err := d.readFull(chunk[:n*4], tOff+int64(i)*4, "bat"); err != nil {
			return err
		}
		for j := 0; j < n; j++ {
			d.bat[i+j] = binary.BigEndian.Uint32(chunk[j*4:])
		}
		i += n
	}
	d.eoh = max(hoff+HeaderSize, tOff+batBytes)

	// blktap's batmap.
	d.batmapOff = tOff + batBytes
	if ft.hasBatmap() || (ft.CreatorApp.isTap() && ft.CreatorVersion == Version(1, 1)) {
		if err := d.loadBatmap(ft.CreatorVersion == Version(1, 1)); err != nil {
			return err
		}
	}

	// Parent locators.
	for i, l := range h.Locators {
		if l.Code == PlatformNone {
			continue
		}
		loff := hoff + 576 + int64(i)*locatorSize
		if !l.Code.valid() {
			return d.ferr(fmt.Sprintf("header.parent_locator[%d].code", i), loff, ErrCorrupt, "invalid platform code %#08x", uint32(l.Code))
		}
		sp := l.Space()
		if sp == 0 || l.DataOffset > uint64(d.fileSize) || int64(l.DataOffset)+sp > d.footerPos || int64(l.DataLength) > sp {
			return d.ferr(fmt.Sprintf("header.parent_locator[%d]", i), loff, ErrCorrupt, "payload (offset %d, space %d, length %d) does not fit in the file", l.DataOffset, l.DataSpace, l.DataLength)
		}
		d.eoh = max(d.eoh, int64(l.DataOffset)+sp)
	}
	return d.checkBAT()
}

func (d *Disk) loadBatmap(probe bool) error {
	hb := make([]byte, batmapHeaderSize)
	if err := d.readFull(hb, d.batmapOff, "batmap"); err != nil {
		if probe {
			return nil
		}
		return err
	}
	var bh batmapHeader
	if err := bh.get(hb); err != nil {
		if probe {
			return nil
		}
		return withFile(err, d.name, d.batmapOff)
	}
	if bh.Size == 0 || int64(bh.Size)*SectorSize*8 < int64(len(d.bat)) {
		return d.ferr("batmap.size", d.batmapOff+16, ErrCorrupt, "batmap of %d sectors does not cover %d blocks", bh.Size, len(d.bat))
	}
	if err := checkBatmapSize(d.name, &d.footer, &d.header, bh.Size, d.batmapOff); err != nil {
		return err
	}
	mapLen := int64(bh.Size) * SectorSize
	if bh.Offset%SectorSize != 0 || bh.Offset < uint64(d.batmapOff+batmapHeaderSize) || bh.Offset > uint64(d.fileSize) || int64(bh.Offset)+mapLen > d.footerPos {
		return d.ferr("batmap.offset", d.batmapOff+8, ErrCorrupt, "batmap of %d sectors at %d does not fit in the file", bh.Size, bh.Offset)
	}
	m := make([]byte, mapLen)
	if err := d.readFull(m, int64(bh.Offset), "batmap.map"); err != nil {
		return err
	}
	if sum := batmapChecksum(m, batmapChecksumLen(d.footer.CurrentSize), bh.Version); sum != bh.Checksum {
		return d.ferr("batmap.checksum", d.batmapOff+24, ErrChecksum, "invalid checksum: stored %#08x, computed %#08x", bh.Checksum, sum)
	}
	d.hasBatmap = true
	d.batmapHdr = bh
	d.batmap = m
	d.eoh = max(d.eoh, d.batmapOff+batmapHeaderSize, int64(bh.Offset)+mapLen)
	return nil
}

// checkBAT verifies that every allocated block lies between the end of the
// metadata and the footer, and that no two blocks overlap.
func (d *Disk) checkBAT() error {
	span := d.bitmapSize + d.blockSize
	tOff := int64(d.header.TableOffset)
	var used []uint64 // sector<<32 | index
	for i, e := range d.bat {
		if e == unusedBAT {
			continue
		}
		off := int64(e) * SectorSize
		field := fmt.Sprintf("bat[%d]", i)
		if off < d.eoh {
			return d.ferr(field, tOff+int64(i)*4, ErrCorrupt, "block %d (offset %#x) clobbers headers (end %#x)", i, off, d.eoh)
		}
		if off+span > d.footerPos {
			return d.ferr(field, tOff+int64(i)*4, ErrCorrupt, "block %d (offset %#x) clobbers footer (at %#x)", i, off, d.footerPos)
		}
		used = append(used, uint64(e)<<32|uint64(i))
	}
	slices.Sort(used)
	spanSecs := uint64(span / SectorSize)
	for k := 1; k < len(used); k++ {
		prev, cur := used[k-1]>>32, used[k]>>32
		if cur < prev+spanSecs {
			i, j := uint32(used[k]), uint32(used[k-1])
			return d.ferr(fmt.Sprintf("bat[%d]", i), tOff+int64(i)*4, ErrCorrupt, "block %d (offset %#x) clobbers block %d (offset %#x)", i, cur*SectorSize, j, prev*SectorSize)
		}
	}
	return nil
}

func roundUp(n, m int64) int64 { return (n + m - 1) / m * m }

// Bounds on what a header may make the package allocate. A header claims
// its table's length (max_table_entries) and a batmap header claims the
// map's; a sparse file, or a remote one whose size is what the server
// says, costs nothing to make claim gigabytes. The tables are therefore
// bounded by the virtual size, which is what they describe, before
// anything is allocated.
const (
	// batSlack is how many BAT entries beyond those the virtual size
	// needs a header may declare: one sector of the table, what a writer
	// rounding the table up to whole sectors adds.
	batSlack = SectorSize / 4
	// batResizeAhead is how many entries a BAT may declare whatever the
	// virtual size: a table for a MaxVirtualSize disk of DefaultBlockSize
	// blocks (2^20 entries, 4 MiB). blktap's "vhd-util create -S MiB"
	// lays out the metadata for a later, larger size so a resize moves no
	// block, and XenServer's storage manager creates its VHDs so, with
	// -S of 2 TiB (MSIZE_MB in sm's vhdutil).
	batResizeAhead = MaxVirtualSize / DefaultBlockSize
)

// blocksFor returns how many blocks of bs bytes a virtual size of size
// bytes needs, without overflowing.
func blocksFor(size uint64, bs uint32) uint64 {
	n := size / uint64(bs)
	if size%uint64(bs) != 0 {
		n++
	}
	return n
}

// batEntryLimit is the largest max_table_entries accepted for a disk of
// size bytes in blocks of bs bytes: the entries the size needs plus
// batSlack, or batResizeAhead when that is more.
func batEntryLimit(size uint64, bs uint32) uint64 {
	return max(blocksFor(size, bs)+batSlack, batResizeAhead)
}

// checkBATSize refuses a header whose BAT is longer than batEntryLimit
// allows for the footer's virtual size. h.BlockSize must be non-zero.
func checkBATSize(file string, ft *Footer, h *Header, hoff int64) error {
	if lim := batEntryLimit(ft.CurrentSize, h.BlockSize); uint64(h.MaxTableEntries) > lim {
		return formatErr(file, "header.max_table_entries", hoff+28, ErrCorrupt,
			"%d entries for a %d-byte disk of %d-byte blocks: more than the %d it may declare",
			h.MaxTableEntries, ft.CurrentSize, h.BlockSize, lim)
	}
	return nil
}

// checkBatmapSize refuses a batmap of more sectors than the largest BAT
// batEntryLimit allows needs (one bit per entry, whole sectors).
func checkBatmapSize(file string, ft *Footer, h *Header, secs uint32, bmOff int64) error {
	lim := max(1, (batEntryLimit(ft.CurrentSize, h.BlockSize)+8*SectorSize-1)/(8*SectorSize))
	if uint64(secs) > lim {
		return formatErr(file, "batmap.size", bmOff+16, ErrCorrupt,
			"batmap of %d sectors for a %d-byte disk of %d-byte blocks: more than the %d it may take",
			secs, ft.CurrentSize, h.BlockSize, lim)
	}
	return nil
}

// Name returns the name the disk was opened with.
func (d *Disk) Name() string { return d.name }

// Footer returns a copy of the footer.
func (d *Disk) Footer() Footer {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.footer
}

// Header returns a copy of the dynamic header; false for a fixed disk.
func (d *Disk) Header() (Header, bool) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.footer.DiskType == DiskFixed {
		return Header{}, false
	}
	return d.header, true
}

// Type returns the disk type.
func (d *Disk) Type() DiskType { return d.footer.DiskType }

// UUID returns the footer's unique id.
func (d *Disk) UUID() UUID { return d.footer.UniqueID }

// Size returns the virtual size in bytes.
func (d *Disk) Size() int64 {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return int64(d.footer.CurrentSize)
}

// BlockSize returns the block size (0 for a fixed disk).
func (d *Disk) BlockSize() int64 { return d.blockSize }

// Hidden reports blktap's hidden flag.
func (d *Disk) Hidden() bool {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.footer.Hidden != 0
}

// ParentUUID returns the parent UUID of a differencing disk (zero
// otherwise).
func (d *Disk) ParentUUID() UUID {
	if d.footer.DiskType != DiskDifferencing {
		return UUID{}
	}
	return d.header.ParentUUID
}

// PhysicalSize returns the file size vhd-util query -s reports: the end
// of the last block (or of the metadata) plus the footer, for dynamic and
// differencing disks; the file size for fixed ones.
func (d *Disk) PhysicalSize() int64 {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.footer.DiskType == DiskFixed {
		return d.fileSize
	}
	return d.endOfData() + FooterSize
}

// endOfData is vhd_end_of_data: the end of the metadata or of the last
// allocated block, whichever is later.
func (d *Disk) endOfData() int64 {
	end := d.eoh
	span := d.bitmapSize + d.blockSize
	for _, e := range d.bat {
		if e != unusedBAT {
			end = max(end, int64(e)*SectorSize+span)
		}
	}
	return end
}

// AllocatedBlocks returns the number of allocated blocks (0 for fixed).
func (d *Disk) AllocatedBlocks() int {
	d.mu.RLock()
	defer d.mu.RUnlock()
	n := 0
	for _, e := range d.bat {
		if e != unusedBAT {
			n++
		}
	}
	return n
}

// SetHidden sets or clears blktap's hidden flag (footer byte 85) and
// rewrites both footer copies.
func (d *Disk) SetHidden(hidden bool) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.writableLocked(); err != nil {
		return err
	}
	var v uint8
	if hidden {
		v = 1
	}
	d.footer.Hidden = v
	return d.writeFooterLocked()
}

func (d *Disk) writableLocked() error {
	if err := d.dataWritableLocked(); err != nil {
		return err
	}
	if d.raw {
		return fmt.Errorf("vhd: %s: %w: a raw image has no VHD metadata", d.name, ErrUnsupported)
	}
	if !d.writable {
		return fmt.Errorf("vhd: %s: %w", d.name, ErrReadOnly)
	}
	return nil
}

// dataWritableLocked allows WriteAt: the disk is open for writing (a raw
// parent's data may be written, its metadata may not).
func (d *Disk) dataWritableLocked() error {
	if d.closed {
		return ErrClosed
	}
	if !d.writable {
		return fmt.Errorf("vhd: %s: %w", d.name, ErrReadOnly)
	}
	return nil
}

// writeFooterLocked writes the footer at footerPos and, for dynamic and
// differencing disks, at offset 0.
func (d *Disk) writeFooterLocked() error {
	b := make([]byte, FooterSize)
	d.footer.put(b)
	d.footer.Checksum = binary.BigEndian.Uint32(b[64:])
	d.dirty = true
	if d.footerPos%SectorSize != 0 {
		// A short footer: rewrite as a full one, sector aligned.
		d.footerPos = roundUp(d.footerPos, SectorSize)
	}
	if _, err := d.f.WriteAt(b, d.footerPos); err != nil {
		return fmt.Errorf("vhd: %s: writing footer: %w", d.name, err)
	}
	d.fileSize = max(d.fileSize, d.footerPos+FooterSize)
	if d.footer.DiskType != DiskFixed {
		if _, err := d.f.WriteAt(b, 0); err != nil {
			return fmt.Errorf("vhd: %s: writing footer copy: %w", d.name, err)
		}
	}
	return nil
}

func (d *Disk) writeHeaderLocked() error {
	b := make([]byte, HeaderSize)
	if err := d.header.put(b); err != nil {
		return err
	}
	d.header.Checksum = binary.BigEndian.Uint32(b[36:])
	d.dirty = true
	if _, err := d.f.WriteAt(b, int64(d.footer.DataOffset)); err != nil {
		return fmt.Errorf("vhd: %s: writing header: %w", d.name, err)
	}
	return nil
}

// Sync commits written data to stable storage.
func (d *Disk) Sync() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return ErrClosed
	}
	if !d.dirty {
		return nil
	}
	if err := d.f.Sync(); err != nil {
		return fmt.Errorf("vhd: %s: sync: %w", d.name, err)
	}
	d.dirty = false
	return nil
}

// Close syncs a written disk, closes the file and any parents opened for
// writing.
func (d *Disk) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return ErrClosed
	}
	d.closed = true
	var errs []error
	if d.dirty {
		if err := d.f.Sync(); err != nil {
			errs = append(errs, fmt.Errorf("vhd: %s: sync: %w", d.name, err))
		}
	}
	if err := d.f.Close(); err != nil {
		errs = append(errs, fmt.Errorf("vhd: %s: close: %w", d.name, err))
	}
	if d.ownsParents {
		for _, p := range d.parents {
			if err := p.Close(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	d.parents = nil
	return errors.Join(errs...)
}

// bitmap returns block b's sector bitmap (spb bits), from the cache when
// present. The caller must not modify it. b must be allocated.
func (d *Disk) bitmap(b uint32) ([]byte, error) {
	d.cacheMu.Lock()
	m, ok := d.bmCache[b]
	d.cacheMu.Unlock()
	if ok {
		return m, nil
	}
	m = make([]byte, d.bitmapSize)
	off := int64(d.bat[b]) * SectorSize
	if err := d.readFull(m, off, fmt.Sprintf("bitmap[%d]", b)); err != nil {
		return nil, err
	}
	d.cachePut(b, m)
	return m, nil
}

func (d *Disk) cachePut(b uint32, m []byte) {
	d.cacheMu.Lock()
	defer d.cacheMu.Unlock()
	if d.bmCache == nil {
		d.bmCache = make(map[uint32][]byte)
	}
	if _, ok := d.bmCache[b]; !ok && len(d.bmCache) >= bitmapCacheEntries {
		for k := range d.bmCache {
			delete(d.bmCache, k)
			break
		}
	}
	d.bmCache[b] = m
}

// blockFull reports whether the batmap marks block b as fully written.
func (d *Disk) blockFull(b uint32) bool {
	return d.hasBatmap && bitTest(d.batmap, int64(b))
}
