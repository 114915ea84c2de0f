package vhd

import (
	"fmt"
	"io"
)

// span is a half-open range [a, b) of virtual byte offsets.
type span struct{ a, b int64 }

// ReadAt reads this file's view of the virtual disk: sectors the file does
// not hold (unallocated blocks, clear bitmap bits — for a differencing disk
// the sectors its parents would supply) read as zeros. It follows
// io.ReaderAt: a read that reaches the end of the virtual disk returns
// io.EOF with the bytes it read.
func (d *Disk) ReadAt(p []byte, off int64) (int, error) {
	return readAtLayers([]*Disk{d}, d.Size(), p, off)
}

func readAtLayers(layers []*Disk, size int64, p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("vhd: ReadAt offset %d: %w", off, ErrOutOfRange)
	}
	if off >= size {
		return 0, io.EOF
	}
	n := len(p)
	var eof error
	if int64(n) > size-off {
		n = int(size - off)
		eof = io.EOF
	}
	for _, l := range layers {
		l.mu.RLock()
	}
	defer func() {
		for _, l := range layers {
			l.mu.RUnlock()
		}
	}()
	for _, l := range layers {
		if l.closed {
			return 0, ErrClosed
		}
	}
	if err := readLayers(layers, p[:n], off); err != nil {
		return 0, err
	}
	return n, eof
}

// readLayers fills p with the bytes at virtual offset off, resolving every
// sector from the first layer that holds it (leaf first, as blktap's
// reader does). Sectors no layer holds read as zeros. The caller holds each
// layer's read lock.
func readLayers(layers []*Disk, p []byte, off int64) error {
	pending := []span{{off, off + int64(len(p))}}
	var next []span
	for _, l := range layers {
		if len(pending) == 0 {
			break
		}
		next = next[:0]
		for _, s := range pending {
			var err error
			next, err = l.readSpan(p, off, s, next)
			if err != nil {
				return err
			}
		}
		pending, next = next, pending
		if l.footer.DiskType != DiskDifferencing {
			break
		}
	}
	for _, s := range pending {
		clear(p[s.a-off : s.b-off])
	}
	return nil
}

// readSpan copies from this layer the sectors of s it holds into p (which
// starts at virtual offset base), zero-fills what this layer defines as
// zero, and appends the ranges it leaves to its parent to rest.
func (d *Disk) readSpan(p []byte, base int64, s span, rest []span) ([]span, error) {
	size := int64(d.footer.CurrentSize)
	if s.b > size {
		// Beyond this layer's size: zero, as blktap does.
		z := max(s.a, size)
		clear(p[z-base : s.b-base])
		s.b = z
	}
	if s.a >= s.b {
		return rest, nil
	}
	if d.footer.DiskType == DiskFixed {
		return rest, d.readData(p[s.a-base:s.b-base], s.a, "data")
	}
	diff := d.footer.DiskType == DiskDifferencing
	for a := s.a; a < s.b; {
		blk := a >> d.blockShift
		bstart := blk << d.blockShift
		e := min(s.b, bstart+d.blockSize)
		if blk >= int64(len(d.bat)) || d.bat[blk] == unusedBAT {
			if diff {
				rest = appendSpan(rest, span{a, e})
			} else {
				clear(p[a-base : e-base])
			}
			a = e
			continue
		}
		dataOff := int64(d.bat[blk])*SectorSize + d.bitmapSize
		if d.blockFull(uint32(blk)) {
			if err := d.readData(p[a-base:e-base], dataOff+(a-bstart), "block"); err != nil {
				return rest, err
			}
			a = e
			continue
		}
		bm, err := d.bitmap(uint32(blk))
		if err != nil {
			return rest, err
		}
		first := (a - bstart) / SectorSize
		last := (e - bstart + SectorSize - 1) / SectorSize
		if first == 0 && last == d.spb && bitsAllSet(bm, d.spb) {
			if err := d.readData(p[a-base:e-base], dataOff+(a-bstart), "block"); err != nil {
				return rest, err
			}
			a = e
			continue
		}
		for sec := first; sec < last; {
			end := bitRun(bm, sec, last)
			ra := max(a, bstart+sec*SectorSize)
			rb := min(e, bstart+end*SectorSize)
			switch {
			case bitTest(bm, sec):
				if err := d.readData(p[ra-base:rb-base], dataOff+(ra-bstart), "block"); err != nil {
					return rest, err
				}
			case diff:
				rest = appendSpan(rest, span{ra, rb})
			default:
				clear(p[ra-base : rb-base])
			}
			sec = end
		}
		a = e
	}
	return rest, nil
}

func appendSpan(r []span, s span) []span {
	if n := len(r); n > 0 && r[n-1].b == s.a {
		r[n-1].b = s.b
		return r
	}
	return append(r, s)
}

// readData reads file bytes, turning a short file into a *FormatError.
func (d *Disk) readData(p []byte, off int64, field string) error {
	n, err := d.f.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || err == io.EOF {
		return d.ferr(field, off, ErrTruncated, "short read: %d of %d bytes", n, len(p))
	}
	return fmt.Errorf("vhd: %s: reading at %d: %w", d.name, off, err)
}
