package vhd

import (
	"fmt"
	"os"
	"path"
)

// SetParent makes child's parent be parent, rewriting exactly what
// vhd-util modify -p rewrites: the header's parent UUID (parent's footer
// UUID), parent name (its base name), parent timestamp (the parent file's
// modification time) and, in place, every existing MacX, W2ku and W2ru
// locator (the path relative to the child's directory); then the header
// checksum. The footer is untouched. A path that does not fit a locator's
// reserved space fails with ErrNameTooLong before anything is written.
func SetParent(fsys FS, child, parent string) error {
	p, err := Open(fsys, parent)
	if err != nil {
		return err
	}
	pid := p.UUID()
	p.Close()
	fi, err := fsys.Stat(parent)
	if err != nil {
		return fmt.Errorf("vhd: set parent: stat %s: %w", parent, err)
	}
	d, err := OpenFile(fsys, child, os.O_RDWR)
	if err != nil {
		return err
	}
	err = d.setParent(pid, Timestamp(fi.ModTime()), relativeParentPath(child, parent), path.Base(parent))
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

func (d *Disk) setParent(pid UUID, ts uint32, rel, base string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.footer.DiskType != DiskDifferencing {
		return fmt.Errorf("vhd: set parent of %s: %w", d.name, ErrNotDifferencing)
	}
	h := d.header
	h.ParentUUID = pid
	h.ParentTimestamp = ts
	h.ParentName = base
	type pending struct {
		off  int64
		data []byte
	}
	var writes []pending
	for i, l := range h.Locators {
		switch l.Code {
		case PlatformMacX, PlatformW2ku, PlatformW2ru:
		default:
			continue
		}
		payload, err := EncodeLocator(l.Code, rel)
		if err != nil {
			return err
		}
		space := l.Space()
		if int64(len(payload)) > space {
			return fmt.Errorf("vhd: %s: locator %d (%s) has %d bytes, path %q needs %d: %w", d.name, i, l.Code, space, rel, len(payload), ErrNameTooLong)
		}
		buf := make([]byte, space)
		copy(buf, payload)
		writes = append(writes, pending{int64(l.DataOffset), buf})
		h.Locators[i].DataLength = uint32(len(payload))
	}
	if _, err := h.MarshalBinary(); err != nil {
		return err
	}
	d.dirty = true
	for _, w := range writes {
		if _, err := d.f.WriteAt(w.data, w.off); err != nil {
			return fmt.Errorf("vhd: %s: writing parent locator: %w", d.name, err)
		}
	}
	d.header = h
	return d.writeHeaderLocked()
}

// Info is what Query reports about one VHD, the answers of vhd-util query.
type Info struct {
	UUID UUID
	Type DiskType
	// VirtualSize is the virtual size in bytes (query -v prints it in MiB).
	VirtualSize int64
	// PhysicalSize is the end of the data plus the footer (query -s).
	PhysicalSize int64
	// Parent is the resolved parent name in the FS ("" when none).
	Parent string
	// ParentUUID is the UUID recorded for the parent (zero when none).
	ParentUUID UUID
	// Hidden is blktap's hidden flag (query -f).
	Hidden bool
	// Depth is the number of disks in the chain from this one to the base
	// (query -d): 1 for a disk with no parent.
	Depth int
}

// Query opens name and reports its Info. For a differencing disk it
// resolves the parent and walks the chain to count its depth (checking
// each parent's UUID); when the chain is broken it returns the Info it
// could fill (Parent empty, Depth 0) together with the error.
func Query(fsys FS, name string) (Info, error) {
	d, err := Open(fsys, name)
	if err != nil {
		return Info{}, err
	}
	defer d.Close()
	info := Info{
		UUID:         d.UUID(),
		Type:         d.Type(),
		VirtualSize:  d.Size(),
		PhysicalSize: d.PhysicalSize(),
		ParentUUID:   d.ParentUUID(),
		Hidden:       d.Hidden(),
		Depth:        1,
	}
	if d.Type() != DiskDifferencing {
		return info, nil
	}
	info.Depth = 0
	p, err := d.ParentPath()
	if err != nil {
		return info, err
	}
	info.Parent = p
	ps, err := openAncestors(fsys, d, DefaultMaxDepth)
	if err != nil {
		return info, err
	}
	info.Depth = 1 + len(ps)
	for _, a := range ps {
		a.Close()
	}
	return info, nil
}

// Coalesce copies every sector child holds into its parent (resolved and
// UUID-checked as OpenChain does), the work of vhd-util coalesce. Whole
// blocks are copied when the child's bitmap is full, runs of sectors
// otherwise. Like vhd-util it neither deletes nor relinks anything. A child
// larger than its parent fails with ErrInvalidArgument (grow the parent
// first).
func Coalesce(fsys FS, child string) error {
	c, err := Open(fsys, child)
	if err != nil {
		return err
	}
	defer c.Close()
	if c.Type() != DiskDifferencing {
		return fmt.Errorf("vhd: coalesce %s: %w", child, ErrNotDifferencing)
	}
	pname, err := c.ParentPath()
	if err != nil {
		return err
	}
	var p *Disk
	if c.ParentUUID().IsZero() {
		p, err = openRaw(fsys, pname, true)
	} else {
		p, err = OpenFile(fsys, pname, os.O_RDWR)
	}
	if err != nil {
		return &ParentError{Child: child, Parent: pname, Want: c.ParentUUID(), Err: err}
	}
	if p.UUID() != c.ParentUUID() {
		got := p.UUID()
		p.Close()
		return &ParentError{Child: child, Parent: pname, Want: c.ParentUUID(), Got: got, Err: ErrParentMismatch}
	}
	err = coalesceInto(c, p)
	if cerr := p.Close(); err == nil {
		err = cerr
	}
	return err
}

func coalesceInto(c, p *Disk) error {
	if c.Size() > p.Size() {
		// Only data past the parent's size would be lost; refuse.
		return fmt.Errorf("vhd: coalesce %s (%d bytes) into smaller %s (%d bytes): %w", c.name, c.Size(), p.name, p.Size(), ErrInvalidArgument)
	}
	buf := make([]byte, c.blockSize)
	for blk, e := range c.bat {
		if e == unusedBAT {
			continue
		}
		bstart := int64(blk) << c.blockShift
		if bstart >= c.Size() {
			break
		}
		bend := min(bstart+c.blockSize, c.Size())
		dataOff := int64(e)*SectorSize + c.bitmapSize
		var bm []byte
		if !c.blockFull(uint32(blk)) {
			var err error
			if bm, err = c.bitmap(uint32(blk)); err != nil {
				return err
			}
		}
		nsec := (bend - bstart) / SectorSize
		for sec := int64(0); sec < nsec; {
			end := nsec
			if bm != nil {
				end = bitRun(bm, sec, nsec)
				if !bitTest(bm, sec) {
					sec = end
					continue
				}
			}
			b := buf[:(end-sec)*SectorSize]
			if err := c.readData(b, dataOff+sec*SectorSize, "block"); err != nil {
				return err
			}
			if _, err := p.WriteAt(b, bstart+sec*SectorSize); err != nil {
				return err
			}
			sec = end
		}
	}
	return p.Sync()
}

// Resize grows name's virtual size to newSize bytes (a multiple of 512).
// A fixed disk is extended with zeros. A dynamic or differencing disk whose
// BAT has room keeps it; otherwise the BAT (and batmap) grow in place, the
// blocks and parent locators in their way moved to the end of the file
// first. Shrinking fails with ErrShrink. OriginalSize is kept; CurrentSize
// and the CHS geometry change.
func Resize(fsys FS, name string, newSize int64) error {
	d, err := OpenFile(fsys, name, os.O_RDWR)
	if err != nil {
		return err
	}
	err = d.Resize(newSize)
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// Resize grows the disk's virtual size; see the package function Resize.
func (d *Disk) Resize(newSize int64) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.writableLocked(); err != nil {
		return err
	}
	cur := int64(d.footer.CurrentSize)
	if newSize < cur {
		return fmt.Errorf("vhd: resize %s from %d to %d bytes: %w", d.name, cur, newSize, ErrShrink)
	}
	if newSize%SectorSize != 0 || newSize > MaxVirtualSize {
		return fmt.Errorf("%w: size %d (want a multiple of 512 up to %d)", ErrInvalidArgument, newSize, int64(MaxVirtualSize))
	}
	if newSize == cur {
		return nil
	}
	if d.footer.DiskType == DiskFixed {
		if newSize > d.footerPos {
			// Zero the old footer, extend, write the footer at the end.
			if _, err := d.f.WriteAt(make([]byte, d.fileSize-d.footerPos), d.footerPos); err != nil {
				return fmt.Errorf("vhd: %s: resize: %w", d.name, err)
			}
			if err := d.f.Truncate(newSize); err != nil {
				return fmt.Errorf("vhd: %s: resize: %w", d.name, err)
			}
			d.fileSize = newSize
			d.footerPos = newSize
		}
		d.footer.CurrentSize = uint64(newSize)
		d.footer.Geometry = CHS(newSize)
		return d.writeFooterLocked()
	}
	need := (newSize + d.blockSize - 1) / d.blockSize
	if need > int64(len(d.bat)) {
		if err := d.growBATLocked(need); err != nil {
			return err
		}
	}
	d.footer.CurrentSize = uint64(newSize)
	d.footer.Geometry = CHS(newSize)
	if d.hasBatmap {
		// The checksummed region depends on the virtual size.
		if err := d.writeBatmapLocked(-1); err != nil {
			return err
		}
	}
	return d.writeFooterLocked()
}

// growBATLocked enlarges the BAT to entries, moving whatever lies after the
// current BAT (batmap, locators, blocks) out of the way.
func (d *Disk) growBATLocked(entries int64) error {
	if entries > 0xFFFFFFFF {
		return fmt.Errorf("%w: %d BAT entries", ErrInvalidArgument, entries)
	}
	tOff := int64(d.header.TableOffset)
	batBytes := roundUp(entries*4, SectorSize)
	newEnd := tOff + batBytes
	var bh batmapHeader
	var mapSecs int64
	if d.hasBatmap {
		mapSecs = max(1, ((entries+7)/8+SectorSize-1)/SectorSize)
		newEnd += batmapHeaderSize + mapSecs*SectorSize
	}
	// Locator payloads move right after the batmap.
	h := d.header
	locData := make([][]byte, len(h.Locators))
	for i, l := range h.Locators {
		if l.Code == PlatformNone {
			continue
		}
		// Only the payload moves; the rest of the reserved space is
		// padding, and the space a header claims is no bound on memory.
		sp := l.Space()
		n := min(sp, roundUp(int64(l.DataLength), SectorSize))
		if n > maxLocatorPayload {
			return d.ferr(fmt.Sprintf("header.parent_locator[%d]", i), int64(d.footer.DataOffset)+576+int64(i)*locatorSize,
				ErrCorrupt, "payload of %d bytes exceeds %d", l.DataLength, maxLocatorPayload)
		}
		buf := make([]byte, n)
		if err := d.readFull(buf, int64(l.DataOffset), fmt.Sprintf("parent_locator[%d]", i)); err != nil {
			return err
		}
		locData[i] = buf
		h.Locators[i].DataOffset = uint64(newEnd)
		newEnd += sp
	}
	// Move blocks that start before newEnd to the end of the file.
	d.eoh = max(d.eoh, newEnd)
	span := d.bitmapSize + d.blockSize
	buf := make([]byte, span)
	for blk, e := range d.bat {
		if e == unusedBAT || int64(e)*SectorSize >= newEnd {
			continue
		}
		src := int64(e) * SectorSize
		if err := d.readFull(buf, src, fmt.Sprintf("block %d", blk)); err != nil {
			return err
		}
		bmOff, err := d.appendBlockLocked()
		if err != nil {
			return err
		}
		if _, err := d.f.WriteAt(buf, bmOff); err != nil {
			return fmt.Errorf("vhd: %s: moving block %d: %w", d.name, blk, err)
		}
		if err := d.writeBATEntryLocked(uint32(blk), uint32(bmOff/SectorSize)); err != nil {
			return err
		}
	}
	d.cacheMu.Lock()
	d.bmCache = nil
	d.cacheMu.Unlock()
	// The moved blocks now lie past the old metadata; appendBlock placed
	// them at or after max(footer, eoh). Make sure new metadata fits below
	// every block.
	for blk, e := range d.bat {
		if e != unusedBAT && int64(e)*SectorSize < newEnd {
			return fmt.Errorf("vhd: %s: block %d still inside the new metadata area: %w", d.name, blk, ErrCorrupt)
		}
	}
	if d.footerPos < newEnd {
		d.footerPos = newEnd
	}
	// Write the new BAT.
	nb := make([]uint32, entries)
	copy(nb, d.bat)
	for i := len(d.bat); i < len(nb); i++ {
		nb[i] = unusedBAT
	}
	raw := make([]byte, batBytes)
	for i, e := range nb {
		raw[4*i], raw[4*i+1], raw[4*i+2], raw[4*i+3] = byte(e>>24), byte(e>>16), byte(e>>8), byte(e)
	}
	if _, err := d.f.WriteAt(raw, tOff); err != nil {
		return fmt.Errorf("vhd: %s: writing BAT: %w", d.name, err)
	}
	d.bat = nb
	end := tOff + batBytes
	if d.hasBatmap {
		bh = d.batmapHdr
		bh.Offset = uint64(end + batmapHeaderSize)
		bh.Size = uint32(mapSecs)
		m := make([]byte, mapSecs*SectorSize)
		copy(m, d.batmap)
		d.batmap = m
		d.batmapHdr = bh
		d.batmapOff = end
		end += batmapHeaderSize + mapSecs*SectorSize
	}
	for i, b := range locData {
		if b == nil {
			continue
		}
		if _, err := d.f.WriteAt(b, int64(h.Locators[i].DataOffset)); err != nil {
			return fmt.Errorf("vhd: %s: moving parent locator: %w", d.name, err)
		}
	}
	h.MaxTableEntries = uint32(entries)
	d.header = h
	d.eoh = newEnd
	if err := d.writeHeaderLocked(); err != nil {
		return err
	}
	return nil
}
