package vhd

import (
	"encoding/binary"
	"fmt"
	"io"
)

// dataAlign is the alignment of every block's data area: blktap's tapdisk
// places data on 4 KiB page boundaries (gap sectors go before the bitmap).
const dataAlign = 4096

// WriteAt writes p at virtual offset off. For a dynamic or differencing
// disk it allocates blocks the way blktap does: a new block is appended
// where the footer was, its data area 4 KiB-aligned, its bitmap and data
// zero-filled; the written sectors' bitmap bits are set; the footer moves to
// the new end of the file; the BAT entry is written last, so an interrupted
// allocation leaves the disk consistent (the new space unreferenced). When a
// block's bitmap becomes all ones its batmap bit is set. A write that covers
// only part of a sector the disk does not hold reads the rest of that sector
// first: zeros for a dynamic disk, the parent chain's bytes for a
// differencing disk (opened through the parent locators when the disk was
// not opened as part of a Chain). Writing past the virtual size writes what
// fits and returns an error wrapping ErrOutOfRange.
func (d *Disk) WriteAt(p []byte, off int64) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.dataWritableLocked(); err != nil {
		return 0, err
	}
	size := int64(d.footer.CurrentSize)
	if off < 0 || off > size {
		return 0, fmt.Errorf("vhd: %s: write at %d of a %d-byte disk: %w", d.name, off, size, ErrOutOfRange)
	}
	n := len(p)
	var tail error
	if int64(n) > size-off {
		n = int(size - off)
		tail = fmt.Errorf("vhd: %s: write of %d bytes at %d of a %d-byte disk: %w", d.name, len(p), off, size, ErrOutOfRange)
	}
	if n == 0 {
		return 0, tail
	}
	d.dirty = true
	if d.footer.DiskType == DiskFixed {
		w, err := d.f.WriteAt(p[:n], off)
		if err != nil {
			return w, fmt.Errorf("vhd: %s: write: %w", d.name, err)
		}
		return n, tail
	}
	done := 0
	for done < n {
		a := off + int64(done)
		bstart := (a >> d.blockShift) << d.blockShift
		e := min(off+int64(n), bstart+d.blockSize)
		if err := d.writeBlockLocked(uint32(a>>d.blockShift), p[done:done+int(e-a)], a-bstart); err != nil {
			return done, err
		}
		done += int(e - a)
	}
	return n, tail
}

// writeBlockLocked writes p at byte x within block blk.
func (d *Disk) writeBlockLocked(blk uint32, p []byte, x int64) error {
	y := x + int64(len(p))
	s0 := x / SectorSize
	s1 := (y + SectorSize - 1) / SectorSize
	allocated := d.bat[blk] != unusedBAT
	var bm []byte
	if allocated && !d.blockFull(blk) {
		cur, err := d.bitmap(blk)
		if err != nil {
			return err
		}
		bm = cur
	}
	present := func(sec int64) bool {
		return allocated && (d.blockFull(blk) || bitTest(bm, sec))
	}
	data := p
	if x%SectorSize != 0 || y%SectorSize != 0 {
		// Partial sectors: merge with the sectors' current contents.
		data = make([]byte, (s1-s0)*SectorSize)
		vbase := int64(blk)<<d.blockShift + s0*SectorSize
		var partial []int64
		if x%SectorSize != 0 {
			partial = append(partial, s0)
		}
		if y%SectorSize != 0 && (s1-1 != s0 || x%SectorSize == 0) {
			partial = append(partial, s1-1)
		}
		for _, sec := range partial {
			buf := data[(sec-s0)*SectorSize : (sec-s0+1)*SectorSize]
			if err := d.oldSectorLocked(blk, sec, present(sec), buf, vbase+(sec-s0)*SectorSize); err != nil {
				return err
			}
		}
		copy(data[x-s0*SectorSize:], p)
	}
	if !allocated {
		bmOff, err := d.appendBlockLocked()
		if err != nil {
			return err
		}
		if _, err := d.f.WriteAt(data, bmOff+d.bitmapSize+s0*SectorSize); err != nil {
			return fmt.Errorf("vhd: %s: writing block %d: %w", d.name, blk, err)
		}
		nb := make([]byte, d.bitmapSize)
		for s := s0; s < s1; s++ {
			bitSet(nb, s)
		}
		if _, err := d.f.WriteAt(nb, bmOff); err != nil {
			return fmt.Errorf("vhd: %s: writing bitmap of block %d: %w", d.name, blk, err)
		}
		if err := d.writeBATEntryLocked(blk, uint32(bmOff/SectorSize)); err != nil {
			return err
		}
		d.cachePut(blk, nb)
		if s0 == 0 && s1 == d.spb {
			return d.setBatmapLocked(blk)
		}
		return nil
	}
	dataOff := int64(d.bat[blk])*SectorSize + d.bitmapSize
	if _, err := d.f.WriteAt(data, dataOff+s0*SectorSize); err != nil {
		return fmt.Errorf("vhd: %s: writing block %d: %w", d.name, blk, err)
	}
	if d.blockFull(blk) {
		return nil
	}
	return d.setBitsLocked(blk, bm, s0, s1)
}

// oldSectorLocked fills buf with the current contents of sector sec of
// block blk (virtual offset voff).
func (d *Disk) oldSectorLocked(blk uint32, sec int64, present bool, buf []byte, voff int64) error {
	if present {
		return d.readData(buf, int64(d.bat[blk])*SectorSize+d.bitmapSize+sec*SectorSize, "block")
	}
	clear(buf)
	if d.footer.DiskType != DiskDifferencing {
		return nil
	}
	if d.parents == nil {
		ps, err := openAncestors(d.fsys, d, DefaultMaxDepth)
		if err != nil {
			return err
		}
		d.parents = ps
		d.ownsParents = true
	}
	if len(d.parents) == 0 {
		return nil
	}
	if _, err := readAtLayers(d.parents, d.parents[0].Size(), buf, voff); err != nil && err != io.EOF {
		return err
	}
	return nil
}

// setBitsLocked sets bits [s0, s1) of block blk's bitmap (bm is the cached
// bitmap, not modified) and writes it, then maintains the batmap.
func (d *Disk) setBitsLocked(blk uint32, bm []byte, s0, s1 int64) error {
	nb := make([]byte, d.bitmapSize)
	copy(nb, bm)
	changed := false
	for s := s0; s < s1; s++ {
		if !bitTest(nb, s) {
			bitSet(nb, s)
			changed = true
		}
	}
	if changed {
		if _, err := d.f.WriteAt(nb, int64(d.bat[blk])*SectorSize); err != nil {
			return fmt.Errorf("vhd: %s: writing bitmap of block %d: %w", d.name, blk, err)
		}
		d.cachePut(blk, nb)
	}
	if bitsAllSet(nb, d.spb) {
		return d.setBatmapLocked(blk)
	}
	return nil
}

// setBatmapLocked marks block blk full in the batmap and rewrites the
// changed map sector and the batmap header (checksum).
func (d *Disk) setBatmapLocked(blk uint32) error {
	if !d.hasBatmap || bitTest(d.batmap, int64(blk)) {
		return nil
	}
	bitSet(d.batmap, int64(blk))
	return d.writeBatmapLocked(int64(blk>>3) / SectorSize * SectorSize)
}

// writeBatmapLocked recomputes the batmap checksum and writes the header and
// the map sector at byte mapOff of the map (-1: the whole map).
func (d *Disk) writeBatmapLocked(mapOff int64) error {
	d.batmapHdr.Checksum = batmapChecksum(d.batmap, batmapChecksumLen(d.footer.CurrentSize), d.batmapHdr.Version)
	if mapOff < 0 {
		if _, err := d.f.WriteAt(d.batmap, int64(d.batmapHdr.Offset)); err != nil {
			return fmt.Errorf("vhd: %s: writing batmap: %w", d.name, err)
		}
	} else if _, err := d.f.WriteAt(d.batmap[mapOff:mapOff+SectorSize], int64(d.batmapHdr.Offset)+mapOff); err != nil {
		return fmt.Errorf("vhd: %s: writing batmap: %w", d.name, err)
	}
	hb := make([]byte, batmapHeaderSize)
	d.batmapHdr.put(hb)
	if _, err := d.f.WriteAt(hb, d.batmapOff); err != nil {
		return fmt.Errorf("vhd: %s: writing batmap header: %w", d.name, err)
	}
	return nil
}

// appendBlockLocked reserves a new block at the end of the file: it writes
// the footer past the block (extending the file), zeroes the old footer,
// gap and bitmap, and returns the bitmap offset. The BAT is not updated.
func (d *Disk) appendBlockLocked() (int64, error) {
	pos := max(roundUp(d.footerPos, SectorSize), d.eoh)
	dataOff := roundUp(pos+d.bitmapSize, dataAlign)
	bmOff := dataOff - d.bitmapSize
	newFooter := dataOff + d.blockSize
	if newFooter/SectorSize > 0xFFFFFFFF {
		return 0, fmt.Errorf("vhd: %s: file would exceed the 2 TiB a BAT can address: %w", d.name, ErrOutOfRange)
	}
	old := d.footerPos
	d.footerPos = newFooter
	if err := d.writeFooterLocked(); err != nil {
		d.footerPos = old
		return 0, err
	}
	zeros := make([]byte, dataOff-pos)
	if _, err := d.f.WriteAt(zeros, pos); err != nil {
		return 0, fmt.Errorf("vhd: %s: zeroing new block: %w", d.name, err)
	}
	return bmOff, nil
}

func (d *Disk) writeBATEntryLocked(blk uint32, sector uint32) error {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], sector)
	if _, err := d.f.WriteAt(b[:], int64(d.header.TableOffset)+int64(blk)*4); err != nil {
		return fmt.Errorf("vhd: %s: writing BAT entry %d: %w", d.name, blk, err)
	}
	d.bat[blk] = sector
	return nil
}

// CopyFrom streams r into the disk starting at virtual offset off until r
// ends, one block at a time (memory O(block size)), and returns the number
// of bytes consumed. On a dynamic disk, zeros bound for a block the disk
// does not hold are skipped rather than allocated, so the disk stays sparse;
// on other types every byte is written. Data past the virtual size
// is an error wrapping ErrOutOfRange.
func (d *Disk) CopyFrom(r io.Reader, off int64) (int64, error) {
	chunk := d.blockSize
	if chunk == 0 {
		chunk = DefaultBlockSize
	}
	buf := make([]byte, chunk)
	var total int64
	for {
		// Align chunks to block boundaries.
		n := chunk - (off+total)%chunk
		m, err := io.ReadFull(r, buf[:n])
		if m > 0 {
			if werr := d.copyChunk(buf[:m], off+total); werr != nil {
				return total, werr
			}
			total += int64(m)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

func (d *Disk) copyChunk(p []byte, off int64) error {
	if d.footer.DiskType == DiskDynamic && allZero(p) {
		d.mu.RLock()
		blk := off >> d.blockShift
		unheld := off+int64(len(p)) <= int64(d.footer.CurrentSize) && blk < int64(len(d.bat)) && d.bat[blk] == unusedBAT
		d.mu.RUnlock()
		if unheld {
			return nil
		}
	}
	_, err := d.WriteAt(p, off)
	return err
}
