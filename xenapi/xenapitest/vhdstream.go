package xenapitest

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"sort"
	"time"

	"github.com/xenflow/xenflow/vhd"
)

// MaxVHDSize is the largest virtual size xapi streams as VHD
// (Constants.max_vhd_size, 2040 GiB, ocaml-vhd's max_disk_size): bigger
// VDIs are refused with VDI_TOO_LARGE [vdi, maximum size].
const MaxVHDSize = 2040 << 30

// streamBlockSize is the block size of the VHD streams the pool sends, as
// vhd-tool writes them.
const streamBlockSize = 2 << 20

// streamBitmapSize is the sector bitmap of one stream block, padded to a
// sector.
const streamBitmapSize = (streamBlockSize/vhd.SectorSize/8 + vhd.SectorSize - 1) / vhd.SectorSize * vhd.SectorSize

const unusedBAT = 0xFFFFFFFF

// maxStreamSize bounds the virtual size an incoming stream may claim: what
// 32-bit BAT sector offsets can address.
const maxStreamSize = 2 << 40

// maxStreamBAT bounds the BAT entries of an incoming stream: those of a
// MaxVHDSize disk of 2 MiB blocks.
const maxStreamBAT = MaxVHDSize/streamBlockSize + 1

// streamParent names the base of a differencing stream.
type streamParent struct {
	uuid      vhd.UUID
	name      string // the base's file name
	timestamp uint32 // the base file's mtime, VHD seconds
}

// vhdStream describes a VHD stream as vhd-tool stream sends it: the footer
// copy, the dynamic header, the BAT, for a differencing stream the MacX
// locator naming the parent, then every included block (its sector bitmap
// all ones, then its data) in ascending order, then the footer.
type vhdStream struct {
	size   int64    // virtual size
	blocks []uint32 // included 2 MiB blocks, ascending
	uuid   vhd.UUID
	now    time.Time
	parent *streamParent // nil: a dynamic disk
}

func (s *vhdStream) entries() int64 {
	return (s.size + streamBlockSize - 1) / streamBlockSize
}

// batEnd is the offset after the BAT (and the locator payload of a
// differencing stream): where the first block starts.
func (s *vhdStream) batEnd() int64 {
	end := int64(vhd.FooterSize+vhd.HeaderSize) + roundUpSector(s.entries()*4)
	if s.parent != nil {
		end += vhd.SectorSize
	}
	return end
}

// Len is the number of bytes the stream has.
func (s *vhdStream) Len() int64 {
	return s.batEnd() + int64(len(s.blocks))*(streamBitmapSize+streamBlockSize) + vhd.FooterSize
}

func roundUpSector(n int64) int64 { return (n + vhd.SectorSize - 1) / vhd.SectorSize * vhd.SectorSize }

// creatorCaml is ocaml-vhd's creator application, which vhd-tool (xapi's
// streamer) writes.
var creatorCaml = vhd.Creator{'c', 'a', 'm', 'l'}

func (s *vhdStream) footer() ([]byte, error) {
	f := vhd.Footer{
		Features:       2,
		FormatVersion:  vhd.Version(1, 0),
		DataOffset:     vhd.FooterSize,
		Timestamp:      vhd.Timestamp(s.now),
		CreatorApp:     creatorCaml,
		CreatorVersion: vhd.Version(1, 0),
		OriginalSize:   uint64(s.size),
		CurrentSize:    uint64(s.size),
		Geometry:       vhd.CHS(s.size),
		DiskType:       vhd.DiskDynamic,
		UniqueID:       s.uuid,
	}
	copy(f.Cookie[:], "conectix")
	if s.parent != nil {
		f.DiskType = vhd.DiskDifferencing
	}
	return f.MarshalBinary()
}

// head returns everything before the first block: footer copy, header,
// BAT and locator payload.
func (s *vhdStream) head() ([]byte, error) {
	out := make([]byte, s.batEnd())
	ft, err := s.footer()
	if err != nil {
		return nil, err
	}
	copy(out, ft)
	h := vhd.Header{
		DataOffset:      ^uint64(0),
		TableOffset:     vhd.FooterSize + vhd.HeaderSize,
		HeaderVersion:   vhd.Version(1, 0),
		MaxTableEntries: uint32(s.entries()),
		BlockSize:       streamBlockSize,
	}
	copy(h.Cookie[:], "cxsparse")
	batOff := int64(vhd.FooterSize + vhd.HeaderSize)
	if s.parent != nil {
		loc, err := vhd.EncodeLocator(vhd.PlatformMacX, s.parent.name)
		if err != nil {
			return nil, err
		}
		locOff := batOff + roundUpSector(s.entries()*4)
		copy(out[locOff:], loc)
		h.ParentUUID = s.parent.uuid
		h.ParentTimestamp = s.parent.timestamp
		h.ParentName = s.parent.name
		h.Locators[0] = vhd.ParentLocator{Code: vhd.PlatformMacX, DataSpace: vhd.SectorSize, DataLength: uint32(len(loc)), DataOffset: uint64(locOff)}
	}
	hb, err := h.MarshalBinary()
	if err != nil {
		return nil, err
	}
	copy(out[vhd.FooterSize:], hb)
	bat := out[batOff : batOff+roundUpSector(s.entries()*4)]
	for i := range bat {
		bat[i] = 0xFF
	}
	off := s.batEnd()
	for _, b := range s.blocks {
		binary.BigEndian.PutUint32(bat[4*b:], uint32(off/vhd.SectorSize))
		off += streamBitmapSize + streamBlockSize
	}
	return out, nil
}

// WriteTo sends the stream to w, reading block data from src (the virtual
// disk). progress is told the bytes sent after each block; an error from it
// stops the stream.
func (s *vhdStream) writeTo(w io.Writer, src io.ReaderAt, progress func(int64) error) error {
	head, err := s.head()
	if err != nil {
		return err
	}
	if _, err := w.Write(head); err != nil {
		return err
	}
	sent := int64(len(head))
	buf := make([]byte, streamBitmapSize+streamBlockSize)
	for i := range buf[:streamBitmapSize] {
		buf[i] = 0xFF
	}
	data := buf[streamBitmapSize:]
	for _, b := range s.blocks {
		if err := readPadded(src, data, int64(b)*streamBlockSize, s.size); err != nil {
			return err
		}
		if _, err := w.Write(buf); err != nil {
			return err
		}
		sent += int64(len(buf))
		if err := progress(sent); err != nil {
			return err
		}
	}
	ft, err := s.footer()
	if err != nil {
		return err
	}
	_, err = w.Write(ft)
	return err
}

// readPadded fills p from src at off; what lies past size reads as zeros.
func readPadded(src io.ReaderAt, p []byte, off, size int64) error {
	n := int64(len(p))
	if off+n > size {
		n = max(size-off, 0)
		clear(p[n:])
	}
	if n == 0 {
		return nil
	}
	_, err := src.ReadAt(p[:n], off)
	if errors.Is(err, io.EOF) {
		err = nil
	}
	return err
}

// copyRaw sends size bytes of src to w, one 2 MiB chunk at a time.
func copyRaw(w io.Writer, src io.ReaderAt, size int64, progress func(int64) error) error {
	buf := make([]byte, streamBlockSize)
	for off := int64(0); off < size; off += int64(len(buf)) {
		chunk := buf[:min(int64(len(buf)), size-off)]
		if err := readPadded(src, chunk, off, size); err != nil {
			return err
		}
		if _, err := w.Write(chunk); err != nil {
			return err
		}
		if err := progress(off + int64(len(chunk))); err != nil {
			return err
		}
	}
	return nil
}

// layerBlocks reports which 2 MiB stream blocks one VHD file holds data
// for (its own BAT, not its parents').
func layerBlocks(fsys vhd.FS, name string) (map[uint32]bool, error) {
	d, err := vhd.Open(fsys, name)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	h, ok := d.Header()
	if !ok {
		return nil, fmt.Errorf("%s: %w: not a sparse VHD", name, vhd.ErrUnsupported)
	}
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	bat := make([]byte, 4*int64(h.MaxTableEntries))
	if _, err := f.ReadAt(bat, int64(h.TableOffset)); err != nil {
		return nil, fmt.Errorf("%s: read BAT: %w", name, err)
	}
	bs := int64(h.BlockSize)
	out := map[uint32]bool{}
	for i := int64(0); i < int64(h.MaxTableEntries); i++ {
		if binary.BigEndian.Uint32(bat[4*i:]) == unusedBAT {
			continue
		}
		start, end := i*bs, min((i+1)*bs, d.Size())
		for b := start / streamBlockSize; b*streamBlockSize < end; b++ {
			out[uint32(b)] = true
		}
	}
	return out, nil
}

// sortedBlocks returns the union of block sets, ascending.
func sortedBlocks(sets ...map[uint32]bool) []uint32 {
	all := map[uint32]bool{}
	for _, s := range sets {
		for b := range s {
			all[b] = true
		}
	}
	out := make([]uint32, 0, len(all))
	for b := range all {
		out = append(out, b)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// StreamError says what is wrong with a stream sent to /import_raw_vdi.
type StreamError struct {
	Offset int64  // where in the stream
	Reason string // what is wrong there
	Err    error  // the read error that ended the stream, if one did
}

// Error implements error.
func (e *StreamError) Error() string {
	return fmt.Sprintf("xenapitest: import stream at byte %d: %s", e.Offset, e.Reason)
}

// Unwrap returns the read error.
func (e *StreamError) Unwrap() error { return e.Err }

// streamReader reads a stream front to back, counting bytes.
type streamReader struct {
	r   io.Reader
	pos int64
}

func (s *streamReader) skipTo(off int64) error {
	if off < s.pos {
		return &StreamError{Offset: s.pos, Reason: fmt.Sprintf("structure at %d lies behind what was already read", off)}
	}
	n, err := io.CopyN(io.Discard, s.r, off-s.pos)
	s.pos += n
	if err != nil {
		return &StreamError{Offset: s.pos, Reason: "stream ends early: " + err.Error(), Err: err}
	}
	return nil
}

func (s *streamReader) read(p []byte) error {
	n, err := io.ReadFull(s.r, p)
	s.pos += int64(n)
	if err != nil {
		return &StreamError{Offset: s.pos, Reason: "stream ends early: " + err.Error(), Err: err}
	}
	return nil
}

// batEntry is one allocated block of an incoming stream.
type batEntry struct {
	block  int64
	offset int64
}

// readStreamHead reads the footer copy, header and BAT of a VHD stream and
// returns the header and the allocated blocks in stream order.
func readStreamHead(sr *streamReader) (vhd.Header, []batEntry, error) {
	var h vhd.Header
	fb := make([]byte, vhd.FooterSize)
	if err := sr.read(fb); err != nil {
		return h, nil, err
	}
	var ft vhd.Footer
	if err := ft.UnmarshalBinary(fb); err != nil {
		return h, nil, &StreamError{Offset: 0, Reason: "footer copy: " + err.Error()}
	}
	if ft.DiskType != vhd.DiskDynamic && ft.DiskType != vhd.DiskDifferencing {
		return h, nil, &StreamError{Offset: 60, Reason: fmt.Sprintf("disk type %s cannot be streamed; send a dynamic or differencing VHD", ft.DiskType)}
	}
	if ft.CurrentSize > maxStreamSize {
		return h, nil, &StreamError{Offset: 48, Reason: fmt.Sprintf("virtual size %d is more than a VHD can hold", ft.CurrentSize)}
	}
	if err := sr.skipTo(int64(ft.DataOffset)); err != nil {
		return h, nil, err
	}
	hb := make([]byte, vhd.HeaderSize)
	if err := sr.read(hb); err != nil {
		return h, nil, err
	}
	if err := h.UnmarshalBinary(hb); err != nil {
		return h, nil, &StreamError{Offset: int64(ft.DataOffset), Reason: "header: " + err.Error()}
	}
	bs := int64(h.BlockSize)
	if bs < vhd.SectorSize || bs > 64<<20 || bits.OnesCount64(uint64(bs)) != 1 {
		return h, nil, &StreamError{Offset: int64(ft.DataOffset) + 32, Reason: fmt.Sprintf("block size %d is not a power of two from 512 bytes to 64 MiB", bs)}
	}
	// blktap may preallocate BAT entries for a later resize (vhd-util
	// create -S), so the count is not checked against the size; but never
	// more than a 2040 GiB disk of 2 MiB blocks has, so the BAT read here
	// stays under 4 MiB whatever the stream claims.
	if n := int64(h.MaxTableEntries); n > maxStreamBAT {
		return h, nil, &StreamError{Offset: int64(ft.DataOffset) + 28, Reason: fmt.Sprintf("%d BAT entries, more than the %d a VHD stream may have", n, maxStreamBAT)}
	}
	if err := sr.skipTo(int64(h.TableOffset)); err != nil {
		return h, nil, err
	}
	bat := make([]byte, 4*int64(h.MaxTableEntries))
	if err := sr.read(bat); err != nil {
		return h, nil, err
	}
	var blocks []batEntry
	for i := int64(0); i < int64(h.MaxTableEntries); i++ {
		if e := binary.BigEndian.Uint32(bat[4*i:]); e != unusedBAT {
			blocks = append(blocks, batEntry{block: i, offset: int64(e) * vhd.SectorSize})
		}
	}
	sort.Slice(blocks, func(i, j int) bool { return blocks[i].offset < blocks[j].offset })
	return h, blocks, nil
}

// vhdWriter is where an import writes: the VDI's chain, written at its leaf.
type vhdWriter interface {
	io.ReaderAt
	io.WriterAt
}

// applyVHDStream writes the sectors a VHD stream holds (those whose bitmap
// bit is set, in every allocated block) onto dst, a disk of size bytes, as
// vhd-tool serve does: nothing else is touched and the stream's parent is
// ignored. progress is told the bytes read after each block.
func applyVHDStream(ctx context.Context, r io.Reader, dst vhdWriter, size int64, progress func(int64) error) error {
	sr := &streamReader{r: r}
	h, blocks, err := readStreamHead(sr)
	if err != nil {
		return err
	}
	bs := int64(h.BlockSize)
	bitmap := make([]byte, roundUpSector(bs/vhd.SectorSize/8))
	chunk := make([]byte, min(bs, streamBlockSize)) // memory stays bounded whatever the block size
	for _, b := range blocks {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := sr.skipTo(b.offset); err != nil {
			return err
		}
		if err := sr.read(bitmap); err != nil {
			return err
		}
		for off := int64(0); off < bs; off += int64(len(chunk)) {
			if err := sr.read(chunk); err != nil {
				return err
			}
			pc := blockPiece{bitmap: bitmap, first: off / vhd.SectorSize, data: chunk, base: b.block*bs + off, at: b.offset}
			if err := pc.write(dst, size); err != nil {
				return err
			}
		}
		if err := progress(sr.pos); err != nil {
			return err
		}
	}
	_, err = io.Copy(io.Discard, r) // the trailing footer
	return err
}

// blockPiece is part of one block of an incoming stream.
type blockPiece struct {
	bitmap []byte // the block's sector bitmap
	first  int64  // the bitmap bit of data's first sector
	data   []byte
	base   int64 // the virtual offset of data
	at     int64 // the block's offset in the stream, for errors
}

// write writes the runs of sectors whose bitmap bit is set onto dst, a
// disk of size bytes.
func (pc blockPiece) write(dst io.WriterAt, size int64) error {
	sectors := int64(len(pc.data)) / vhd.SectorSize
	set := func(i int64) bool { k := pc.first + i; return pc.bitmap[k/8]&(0x80>>(k%8)) != 0 }
	for i := int64(0); i < sectors; {
		if !set(i) {
			i++
			continue
		}
		j := i
		for j < sectors && set(j) {
			j++
		}
		off, end := pc.base+i*vhd.SectorSize, pc.base+j*vhd.SectorSize
		if end > size {
			// qemu-img pads a disk up to its CHS size: zeros past the
			// VDI's end are dropped, data there cannot be written.
			if !allZero(pc.data[max(size-pc.base, i*vhd.SectorSize) : j*vhd.SectorSize]) {
				return &StreamError{Offset: pc.at, Reason: fmt.Sprintf("data at virtual offset %d lies past the VDI's end (%d bytes)", max(size, off), size)}
			}
			end = size
		}
		if off < end {
			if _, err := dst.WriteAt(pc.data[i*vhd.SectorSize:end-pc.base], off); err != nil {
				return err
			}
		}
		i = j
	}
	return nil
}

// applyRaw writes a raw stream onto dst from offset 0, one 2 MiB chunk at a
// time; a chunk of zeros is written only where dst holds data, so the disk
// stays sparse and reads back as exactly the stream.
func applyRaw(ctx context.Context, r io.Reader, dst vhdWriter, size int64, progress func(int64) error) error {
	buf := make([]byte, streamBlockSize)
	cur := make([]byte, streamBlockSize)
	var off int64
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			if off+int64(n) > size {
				return &StreamError{Offset: size, Reason: fmt.Sprintf("raw stream is longer than the VDI's %d bytes", size)}
			}
			if werr := writeUnlessSame(dst, buf[:n], cur[:n], off); werr != nil {
				return werr
			}
			off += int64(n)
			if perr := progress(off); perr != nil {
				return perr
			}
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func writeUnlessSame(dst vhdWriter, p, cur []byte, off int64) error {
	if allZero(p) {
		if _, err := dst.ReadAt(cur, off); err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		if bytes.Equal(cur, p) {
			return nil
		}
	}
	_, err := dst.WriteAt(p, off)
	return err
}

func allZero(p []byte) bool {
	for _, c := range p {
		if c != 0 {
			return false
		}
	}
	return true
}
