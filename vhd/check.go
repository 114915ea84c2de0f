package vhd

import (
	"bytes"
	"fmt"
	"io"
	"path"
	"time"
)

// CheckOptions tune CheckWithOptions; they mirror vhd-util check's flags.
type CheckOptions struct {
	// Now is the clock for the timestamp checks; nil means time.Now.
	Now func() time.Time
	// IgnoreTimestamps skips the "in the future" checks (vhd-util -t).
	IgnoreTimestamps bool
	// IgnoreParentUUID does not open the parent to compare its UUID
	// (vhd-util -I).
	IgnoreParentUUID bool
	// CheckData reads every allocated block and fails when a sector whose
	// bitmap bit is clear holds data (vhd-util -b).
	CheckData bool
}

// timestampSlack is how far in the future a timestamp may lie (clock skew
// with NFS servers), as in vhd-util check.
const timestampSlack = 1800

// Check validates name as vhd-util check does and returns nil when the disk
// is valid, else a *FormatError naming the field, its offset and the
// reason (in vhd-util's words, e.g. "primary footer invalid: invalid
// checksum"). Parent problems of a differencing disk come back as a
// *FormatError wrapping a *ParentError.
//
// The checks: primary footer (cookie, checksum, the reserved feature bit set
// and no unknown one, file format version, data offset, timestamp no more
// than 30 minutes ahead, tap creator version at most 1.3, geometry no
// larger than CHS(size), type, saved and hidden 0 or 1, reserved bytes
// zero, non-null UUID); for dynamic and differencing disks the footer copy
// (valid and identical), the header (cookie, checksum, version, data
// offset, table offset, a one-bit block size, reserved zero), the parent
// fields (a differencing disk's parent timestamp and name; zero otherwise),
// the BAT (no block over the metadata or the footer, none overlapping),
// the batmap of tap 1.2+ files (cookie, version, checksum, size, offset,
// no full bit for an unallocated block) and the parent locators (codes, no
// duplicates, offsets and sizes inside the file, each path's base name
// equal to the header's parent name, a MacX target that exists, the
// parent's UUID). Last, the disk must open (Open's own BAT and locator
// checks).
func Check(fsys FS, name string) error {
	return CheckWithOptions(fsys, name, nil)
}

// CheckWithOptions is Check with options (nil: defaults).
func CheckWithOptions(fsys FS, name string, opts *CheckOptions) error {
	var o CheckOptions
	if opts != nil {
		o = *opts
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	f, err := fsys.Open(name)
	if err != nil {
		return fileErr("check", name, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fileErr("check", name, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("vhd: check %s: %w: not a regular file", name, ErrInvalidArgument)
	}
	c := &checker{fsys: fsys, name: name, f: f, eof: fi.Size(), o: o, now: Timestamp(o.Now())}
	return c.run()
}

type checker struct {
	fsys FS
	name string
	f    File
	eof  int64
	o    CheckOptions
	now  uint32
}

func (c *checker) fail(field string, off int64, class error, format string, args ...any) error {
	return formatErr(c.name, field, off, class, format, args...)
}

func (c *checker) read(b []byte, off int64, field string) error {
	if off < 0 || off+int64(len(b)) > c.eof {
		return c.fail(field, off, ErrTruncated, "error reading %s: %d bytes at %d past the end of the %d-byte file", field, len(b), off, c.eof)
	}
	n, err := c.f.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || err == io.EOF {
		return c.fail(field, off, ErrTruncated, "error reading %s: short read", field)
	}
	return fmt.Errorf("vhd: check %s: reading %s: %w", c.name, field, err)
}

// validateFooter returns the field (relative offset) and reason of the first
// problem, as vhd_util_check_validate_footer orders them.
func (c *checker) validateFooter(raw []byte) (string, int64, string, error) {
	var f Footer
	var b [FooterSize]byte
	copy(b[:], raw)
	f.get(b[:])
	if string(f.Cookie[:]) != footerCookie {
		return "cookie", 0, "invalid cookie", ErrNotVHD
	}
	if sum := footerChecksum(b[:]); sum != f.Checksum {
		ok := false
		if f.Hidden != 0 && f.CreatorApp.isTap() && (f.CreatorVersion == Version(0, 1) || f.CreatorVersion == Version(1, 1)) {
			b[85] = 0
			ok = footerChecksum(b[:]) == f.Checksum
		}
		if !ok {
			return "checksum", 64, fmt.Sprintf("invalid checksum (stored %#08x, computed %#08x)", f.Checksum, sum), ErrChecksum
		}
	}
	switch {
	case f.Features&featureReserved == 0:
		return "features", 8, "invalid 'reserved' feature", ErrCorrupt
	case f.Features&^(featureTemporary|featureReserved) != 0:
		return "features", 8, "invalid extra features", ErrCorrupt
	case f.FormatVersion != formatVersion:
		return "file_format_version", 12, "invalid file format version", ErrCorrupt
	case f.DiskType != DiskDynamic && f.DiskType != DiskDifferencing && f.DataOffset != noDataOffset:
		return "data_offset", 16, "invalid data offset", ErrCorrupt
	case !c.o.IgnoreTimestamps && uint64(f.Timestamp) > uint64(c.now)+timestampSlack:
		return "timestamp", 24, "creation time in future", ErrCorrupt
	case f.CreatorApp.isTap() && f.CreatorVersion > CreatorVersion:
		return "creator_version", 32, "unsupported tap creator version", ErrUnsupported
	case CHS(int64(min(f.CurrentSize, 1<<62))).packed() < f.Geometry.packed():
		return "geometry", 56, "geometry too large", ErrCorrupt
	case f.DiskType != DiskFixed && f.DiskType != DiskDynamic && f.DiskType != DiskDifferencing:
		return "disk_type", 60, "invalid type", ErrCorrupt
	case f.SavedState > 1:
		return "saved_state", 84, "invalid 'saved' state", ErrCorrupt
	case f.Hidden > 1:
		return "hidden", 85, "invalid 'hidden' state", ErrCorrupt
	case !allZero(f.Reserved[:]):
		return "reserved", 86, "invalid 'reserved' bits", ErrCorrupt
	case f.UniqueID.IsZero():
		return "unique_id", 68, "invalid (NULL) uuid", ErrCorrupt
	}
	return "", 0, "", nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func (c *checker) run() error {
	if c.eof < FooterSize-1 {
		return c.fail("footer", 0, ErrNotVHD, "primary footer invalid: file is %d bytes", c.eof)
	}
	if r := c.eof % SectorSize; r != 0 && r != SectorSize-1 {
		return c.fail("footer", c.eof-c.eof%SectorSize, ErrTruncated, "invalid file size: %#x", c.eof)
	}
	flen := int64(FooterSize)
	if c.eof%SectorSize == SectorSize-1 {
		flen--
	}
	fpos := c.eof - flen
	primary := make([]byte, FooterSize)
	if err := c.read(primary[:flen], fpos, "footer"); err != nil {
		return err
	}
	if field, off, why, class := c.validateFooter(primary); class != nil {
		return c.fail("footer."+field, fpos+off, class, "primary footer invalid: %s", why)
	}
	var ft Footer
	ft.get(primary)
	if ft.DiskType == DiskFixed {
		if ft.CurrentSize > uint64(fpos) {
			return c.fail("footer.current_size", fpos+48, ErrTruncated, "fixed disk of %d bytes in a %d-byte file", ft.CurrentSize, c.eof)
		}
		return c.openCheck()
	}
	backup := make([]byte, FooterSize)
	if err := c.read(backup, 0, "footer copy"); err != nil {
		return err
	}
	if field, off, why, class := c.validateFooter(backup); class != nil {
		return c.fail("footer_copy."+field, off, class, "backup footer invalid: %s", why)
	}
	if !bytes.Equal(primary, backup) {
		b := append([]byte(nil), backup...)
		b[85] = 0
		if !(backup[85] != 0 && ft.CreatorApp.isTap() && (ft.CreatorVersion == Version(0, 1) || ft.CreatorVersion == Version(1, 1)) && bytes.Equal(primary, b)) {
			return c.fail("footer_copy", 0, ErrCorrupt, "primary and backup footers do not match")
		}
	}
	// Header.
	hoff := int64(ft.DataOffset)
	if ft.DataOffset > uint64(c.eof) {
		return c.fail("footer.data_offset", fpos+16, ErrCorrupt, "error reading header: offset %d past the end of file", ft.DataOffset)
	}
	hb := make([]byte, HeaderSize)
	if err := c.read(hb, hoff, "header"); err != nil {
		return err
	}
	if string(hb[0:8]) != headerCookie {
		return c.fail("header.cookie", hoff, ErrCorrupt, "header is invalid: invalid cookie")
	}
	var h Header
	if err := h.UnmarshalBinary(hb); err != nil {
		e := withFile(err, c.name, hoff).(*FormatError)
		e.Reason = "header is invalid: " + e.Reason
		return e
	}
	switch {
	case h.HeaderVersion != headerVersion:
		return c.fail("header.header_version", hoff+24, ErrCorrupt, "header is invalid: invalid header version")
	case h.DataOffset != noDataOffset:
		return c.fail("header.data_offset", hoff+8, ErrCorrupt, "header is invalid: invalid data offset")
	case h.TableOffset == 0 || h.TableOffset%SectorSize != 0 || h.TableOffset > uint64(c.eof) || int64(h.TableOffset)+int64(h.MaxTableEntries)*4 > c.eof-FooterSize:
		return c.fail("header.table_offset", hoff+16, ErrCorrupt, "header is invalid: invalid table offset")
	case h.BlockSize == 0 || h.BlockSize&(h.BlockSize-1) != 0:
		return c.fail("header.block_size", hoff+32, ErrCorrupt, "header is invalid: invalid block size")
	case h.Reserved1 != 0:
		return c.fail("header.reserved", hoff+60, ErrCorrupt, "header is invalid: invalid reserved bits")
	case !allZero(h.Reserved2[:]):
		return c.fail("header.reserved", hoff+768, ErrCorrupt, "header is invalid: invalid reserved bits")
	}
	// Differencing header.
	if ft.DiskType == DiskDifferencing {
		if !c.o.IgnoreTimestamps && uint64(h.ParentTimestamp) > uint64(c.now)+timestampSlack {
			return c.fail("header.parent_timestamp", hoff+56, ErrCorrupt, "differencing header is invalid: parent creation time in future")
		}
		if h.ParentName == "" {
			return c.fail("header.parent_name", hoff+64, ErrCorrupt, "differencing header is invalid: invalid parent name")
		}
	} else {
		switch {
		case !allZero(hb[64:576]):
			return c.fail("header.parent_name", hoff+64, ErrCorrupt, "differencing header is invalid: invalid non-null parent name")
		case !allZero(hb[576:768]):
			return c.fail("header.parent_locators", hoff+576, ErrCorrupt, "differencing header is invalid: invalid non-null parent locators")
		case !h.ParentUUID.IsZero():
			return c.fail("header.parent_uuid", hoff+40, ErrCorrupt, "differencing header is invalid: invalid non-null parent uuid")
		case h.ParentTimestamp != 0:
			return c.fail("header.parent_timestamp", hoff+56, ErrCorrupt, "differencing header is invalid: invalid non-zero parent timestamp")
		}
	}
	if h.BlockSize < SectorSize || h.BlockSize > MaxBlockSize {
		return c.fail("header.block_size", hoff+32, ErrUnsupported, "unsupported block size %d", h.BlockSize)
	}
	// The rest needs the BAT and batmap: open the disk without its own
	// structural checks failing first, by checking in vhd-util's order on
	// the raw tables.
	if err := c.checkTables(&ft, &h, hoff); err != nil {
		return err
	}
	if ft.DiskType == DiskDifferencing {
		if err := c.checkLocators(&ft, &h, hoff); err != nil {
			return err
		}
	}
	return c.openCheck()
}

func (c *checker) checkTables(ft *Footer, h *Header, hoff int64) error {
	eof := roundUp(c.eof, SectorSize) - FooterSize
	tOff := int64(h.TableOffset)
	n := int64(h.MaxTableEntries)
	// Bound the table by the virtual size before allocating it.
	blocks := int64(ft.CurrentSize / uint64(h.BlockSize))
	if blocks > n {
		return c.fail("header.max_table_entries", hoff+28, ErrCorrupt, "VHD size (%d blocks) exceeds BAT size (%d)", blocks, n)
	}
	if err := checkBATSize(c.name, ft, h, hoff); err != nil {
		return err
	}
	raw := make([]byte, n*4)
	if err := c.read(raw, tOff, "bat"); err != nil {
		return err
	}
	bat := make([]uint32, n)
	for i := range bat {
		bat[i] = uint32(raw[4*i])<<24 | uint32(raw[4*i+1])<<16 | uint32(raw[4*i+2])<<8 | uint32(raw[4*i+3])
	}
	batBytes := roundUp(n*4, SectorSize)
	eoh := max(hoff+HeaderSize, tOff+batBytes)
	// Batmap (read before the BAT checks: it is part of the headers).
	var bh batmapHeader
	var bmap []byte
	hasBatmap := ft.hasBatmap()
	bmOff := tOff + batBytes
	if ft.CreatorApp.isTap() && ft.CreatorVersion == Version(1, 1) {
		b := make([]byte, batmapHeaderSize)
		if c.read(b, bmOff, "batmap") == nil && string(b[:8]) == batmapCookie {
			hasBatmap = true
		}
	}
	if hasBatmap {
		b := make([]byte, batmapHeaderSize)
		if err := c.read(b, bmOff, "batmap"); err != nil {
			return err
		}
		copy(bh.Cookie[:], b[0:8])
		be := func(o int) uint32 { return uint32(b[o])<<24 | uint32(b[o+1])<<16 | uint32(b[o+2])<<8 | uint32(b[o+3]) }
		bh.Offset = uint64(be(8))<<32 | uint64(be(12))
		bh.Size = be(16)
		bh.Version = be(20)
		bh.Checksum = be(24)
		switch {
		case string(bh.Cookie[:]) != batmapCookie:
			return c.fail("batmap.cookie", bmOff, ErrCorrupt, "batmap is invalid: invalid cookie")
		case bh.Version > batmapVersion:
			return c.fail("batmap.version", bmOff+20, ErrUnsupported, "batmap is invalid: unsupported batmap version")
		case bh.Size == 0:
			return c.fail("batmap.size", bmOff+16, ErrCorrupt, "batmap is invalid: invalid size zero")
		case int64(bh.Size)<<12 < n:
			return c.fail("batmap.size", bmOff+16, ErrCorrupt, "batmap is invalid: batmap-BAT size mismatch")
		case bh.Offset == 0 || bh.Offset%SectorSize != 0:
			return c.fail("batmap.offset", bmOff+8, ErrCorrupt, "batmap is invalid: invalid batmap offset")
		case bh.Offset > uint64(c.eof) || int64(bh.Offset)+int64(bh.Size)*SectorSize > eof:
			return c.fail("batmap.size", bmOff+16, ErrCorrupt, "batmap is invalid: invalid batmap size")
		}
		if err := checkBatmapSize(c.name, ft, h, bh.Size, bmOff); err != nil {
			return err
		}
		bmap = make([]byte, int64(bh.Size)*SectorSize)
		if err := c.read(bmap, int64(bh.Offset), "batmap.map"); err != nil {
			return err
		}
		if sum := batmapChecksum(bmap, batmapChecksumLen(ft.CurrentSize), bh.Version); sum != bh.Checksum {
			return c.fail("batmap.checksum", bmOff+24, ErrChecksum, "batmap is invalid: invalid checksum")
		}
		eoh = max(eoh, bmOff+batmapHeaderSize, int64(bh.Offset)+int64(bh.Size)*SectorSize)
	}
	for _, l := range h.Locators {
		if l.Code != PlatformNone {
			eoh = max(eoh, int64(min(l.DataOffset, 1<<62))+l.Space())
		}
	}
	// BAT.
	spb := int64(h.BlockSize) / SectorSize
	span := spb + roundUp((spb+7)/8, SectorSize)/SectorSize
	eofS, eohS := eof/SectorSize, eoh/SectorSize
	type ent struct{ off, i int64 }
	var used []ent
	// vhd-util checks the first curr_size>>21 entries; every entry is
	// checked here.
	for i := int64(0); i < n; i++ {
		off := int64(bat[i])
		if bat[i] == unusedBAT {
			continue
		}
		if off < eohS {
			return c.fail(fmt.Sprintf("bat[%d]", i), tOff+4*i, ErrCorrupt, "block %d (offset %#x) clobbers headers", i, off)
		}
		if off+span > eofS {
			return c.fail(fmt.Sprintf("bat[%d]", i), tOff+4*i, ErrCorrupt, "block %d (offset %#x) clobbers footer", i, off)
		}
		used = append(used, ent{off, i})
	}
	sortEnts := func(a []ent) {
		// insertion-free: use the standard library sort on offsets.
		sortSlice(a, func(x, y ent) bool { return x.off < y.off || (x.off == y.off && x.i < y.i) })
	}
	sortEnts(used)
	for k := 1; k < len(used); k++ {
		if used[k].off < used[k-1].off+span {
			i, j := used[k].i, used[k-1].i
			return c.fail(fmt.Sprintf("bat[%d]", i), tOff+4*i, ErrCorrupt, "block %d (offset %#x) clobbers block %d (offset %#x)", i, used[k].off, j, used[k-1].off)
		}
	}
	if c.o.CheckData {
		// Blocks lie inside the file (checked above), so this buffer is
		// bounded by the file's size.
		bmBytes := roundUp((spb+7)/8, SectorSize)
		blk := make([]byte, bmBytes+int64(h.BlockSize))
		for _, e := range used {
			if err := c.read(blk, e.off*SectorSize, fmt.Sprintf("block[%d]", e.i)); err != nil {
				return err
			}
			bm, data := blk[:bmBytes], blk[bmBytes:]
			for s := int64(0); s < spb; s++ {
				if !bitTest(bm, s) && !allZero(data[s*SectorSize:(s+1)*SectorSize]) {
					return c.fail(fmt.Sprintf("block[%d]", e.i), e.off*SectorSize+bmBytes+s*SectorSize, ErrCorrupt, "sector %#x of block %#x has data where bitmap is clear", s, e.i)
				}
			}
		}
	}
	if hasBatmap {
		// vhd-util looks at the first curr_size>>21 blocks (it assumes
		// 2 MiB blocks); every BAT entry is looked at here.
		for i := int64(0); i < n; i++ {
			if bitTest(bmap, i) && bat[i] == unusedBAT {
				return c.fail("batmap.map", int64(bh.Offset)+i/8, ErrCorrupt, "batmap is invalid: batmap shows unallocated block %d full", i)
			}
		}
	}
	return nil
}

func (c *checker) checkLocators(ft *Footer, h *Header, hoff int64) error {
	eof := roundUp(c.eof, SectorSize) - FooterSize
	seen := map[PlatformCode]bool{}
	found := 0
	for i, l := range h.Locators {
		loff := hoff + 576 + int64(i)*locatorSize
		field := fmt.Sprintf("header.parent_locator[%d]", i)
		if !l.Code.valid() {
			return c.fail(field, loff, ErrCorrupt, "invalid parent locator %d: invalid platform code", i)
		}
		if l.Code == PlatformNone {
			if l != (ParentLocator{}) {
				return c.fail(field, loff, ErrCorrupt, "invalid parent locator %d: non-zero locator", i)
			}
			continue
		}
		switch {
		case l.DataOffset == 0:
			return c.fail(field, loff, ErrCorrupt, "invalid parent locator %d: invalid data offset", i)
		case l.DataSpace == 0:
			return c.fail(field, loff, ErrCorrupt, "invalid parent locator %d: invalid data space", i)
		case l.DataLength == 0:
			return c.fail(field, loff, ErrCorrupt, "invalid parent locator %d: invalid data length", i)
		case l.DataOffset > uint64(c.eof) || int64(l.DataOffset)+l.Space() > eof:
			return c.fail(field, loff, ErrCorrupt, "invalid parent locator %d: invalid size", i)
		case l.Reserved != 0:
			return c.fail(field, loff, ErrCorrupt, "invalid parent locator %d: invalid reserved bits", i)
		}
		if seen[l.Code] {
			return c.fail(field, loff, ErrCorrupt, "duplicate platform code in locator %d: %#x", i, uint32(l.Code))
		}
		seen[l.Code] = true
		if l.Code != PlatformMacX && l.Code != PlatformW2ku && l.Code != PlatformW2ru {
			continue
		}
		n := int64(l.DataLength)
		if sp := l.Space(); n > sp || sp == 0 {
			return c.fail(field, loff, ErrCorrupt, "error reading parent locator %d: length %d exceeds space %d", i, n, sp)
		}
		if n > maxLocatorPayload {
			return c.fail(field, loff, ErrCorrupt, "error reading parent locator %d: length %d exceeds %d", i, n, maxLocatorPayload)
		}
		buf := make([]byte, n)
		if err := c.read(buf, int64(l.DataOffset), field); err != nil {
			return err
		}
		p, err := DecodeLocator(l.Code, buf)
		if err != nil {
			return c.fail(field, int64(l.DataOffset), ErrCorrupt, "error reading parent locator %d: %v", i, err)
		}
		if base := path.Base(p); base != h.ParentName {
			return c.fail(field, int64(l.DataOffset), ErrCorrupt, "parent locator %d name (%s) does not match header name (%s)", i, base, h.ParentName)
		}
		loc := resolveParentPath(c.name, p)
		if _, err := c.fsys.Stat(loc); err != nil {
			if l.Code == PlatformMacX {
				return &FormatError{File: c.name, Field: field, Offset: int64(l.DataOffset),
					Reason: fmt.Sprintf("parent locator %d points to missing file %s (resolved to %s)", i, p, loc),
					Err:    &ParentError{Child: c.name, Parent: loc, Want: h.ParentUUID, Err: ErrParentNotFound}}
			}
			continue
		}
		if !h.ParentUUID.IsZero() && !c.o.IgnoreParentUUID {
			pd, err := Open(c.fsys, loc)
			if err != nil {
				return &FormatError{File: c.name, Field: field, Offset: int64(l.DataOffset),
					Reason: fmt.Sprintf("invalid parent %s: error opening parent", loc),
					Err:    &ParentError{Child: c.name, Parent: loc, Want: h.ParentUUID, Err: err}}
			}
			got := pd.UUID()
			pd.Close()
			if got != h.ParentUUID {
				return &FormatError{File: c.name, Field: "header.parent_uuid", Offset: hoff + 40,
					Reason: fmt.Sprintf("invalid parent %s: invalid parent uuid", loc),
					Err:    &ParentError{Child: c.name, Parent: loc, Want: h.ParentUUID, Got: got, Err: ErrParentMismatch}}
			}
		}
		found++
	}
	if found == 0 {
		return &FormatError{File: c.name, Field: "header.parent_locators", Offset: hoff + 576,
			Reason: fmt.Sprintf("could not find parent %s", h.ParentName),
			Err:    &ParentError{Child: c.name, Parent: h.ParentName, Want: h.ParentUUID, Err: ErrParentNotFound}}
	}
	return nil
}

// openCheck opens the disk read-only: Open's own structural checks
// (every BAT entry, locator payloads) apply too.
func (c *checker) openCheck() error {
	d, err := Open(c.fsys, c.name)
	if err != nil {
		return err
	}
	return d.Close()
}
