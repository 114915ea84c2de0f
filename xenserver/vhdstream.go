package xenserver

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/xenflow/xenflow/vhd"
)

// maxStreamHead bounds the head of a VHD stream the relay holds in
// memory: the BAT of a 2040 GiB disk in 2 MiB blocks is 4 MiB.
const maxStreamHead = 16 << 20

// StreamError is a VHD export whose head (footer copy, dynamic header,
// BAT) does not describe a stream the relay can size: which field and why.
type StreamError struct {
	Field  string
	Reason string
}

func (e *StreamError) Error() string {
	return fmt.Sprintf("xenserver: VHD stream %s: %s", e.Field, e.Reason)
}

// streamHead reads the head of a dynamic or differencing VHD stream, as
// xapi's vhd-tool sends it (footer copy, dynamic header, BAT, parent
// locator payloads, then the blocks the BAT points at, then the footer),
// and returns the head and the length of the whole stream: the end of the
// last block the BAT points at, plus the footer. xapi sends no
// Content-Length with an export, and its VHD import needs one.
func streamHead(r io.Reader) ([]byte, int64, error) {
	head := make([]byte, vhd.FooterSize+vhd.HeaderSize)
	if _, err := io.ReadFull(r, head); err != nil {
		return nil, 0, fmt.Errorf("xenserver: VHD stream head: %w", shortRead(err, 0))
	}
	var f vhd.Footer
	if err := f.UnmarshalBinary(head[:vhd.FooterSize]); err != nil {
		return nil, 0, &StreamError{Field: "footer", Reason: err.Error()}
	}
	if f.DiskType != vhd.DiskDynamic && f.DiskType != vhd.DiskDifferencing {
		return nil, 0, &StreamError{Field: "footer.disk_type", Reason: fmt.Sprintf("%v is not dynamic or differencing", f.DiskType)}
	}
	var h vhd.Header
	if err := h.UnmarshalBinary(head[vhd.FooterSize:]); err != nil {
		return nil, 0, &StreamError{Field: "header", Reason: err.Error()}
	}
	headEnd, err := headLength(&h)
	if err != nil {
		return nil, 0, err
	}
	head = append(head, make([]byte, headEnd-int64(len(head)))...)
	if _, err := io.ReadFull(r, head[vhd.FooterSize+vhd.HeaderSize:]); err != nil {
		return nil, 0, fmt.Errorf("xenserver: VHD stream head: %w", shortRead(err, vhd.FooterSize+vhd.HeaderSize))
	}
	end, err := dataEnd(&h, head, headEnd)
	if err != nil {
		return nil, 0, err
	}
	return head, end + vhd.FooterSize, nil
}

func shortRead(err error, at int64) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return &ShortBodyError{Want: at + 1, Got: at}
	}
	return err
}

// headLength is where the head ends: after the BAT and every parent
// locator payload.
func headLength(h *vhd.Header) (int64, error) {
	bs := int64(h.BlockSize)
	if bs < vhd.SectorSize || bs&(bs-1) != 0 {
		return 0, &StreamError{Field: "header.block_size", Reason: fmt.Sprintf("%d is not a power of two of at least 512", bs)}
	}
	if h.TableOffset < vhd.FooterSize+vhd.HeaderSize {
		return 0, &StreamError{Field: "header.table_offset", Reason: fmt.Sprintf("%d is inside the footer and header", h.TableOffset)}
	}
	end := int64(h.TableOffset) + roundSector(int64(h.MaxTableEntries)*4)
	for i, l := range h.Locators {
		if l.Code == 0 {
			continue
		}
		if e := int64(l.DataOffset) + l.Space(); e > end {
			if l.DataOffset > maxStreamHead {
				return 0, &StreamError{Field: fmt.Sprintf("header.parent_locator[%d]", i), Reason: "payload too far"}
			}
			end = e
		}
	}
	if end > maxStreamHead || int64(h.TableOffset) > maxStreamHead {
		return 0, &StreamError{Field: "header.max_table_entries", Reason: fmt.Sprintf("a head of %d bytes is more than the relay holds", end)}
	}
	return end, nil
}

// dataEnd returns the end of the last block the BAT points at (the head's
// end when it points at none); a block inside the head is refused.
func dataEnd(h *vhd.Header, head []byte, headEnd int64) (int64, error) {
	bs := int64(h.BlockSize)
	bitmap := roundSector(bs / vhd.SectorSize / 8)
	end := headEnd
	bat := head[h.TableOffset:]
	for i := 0; i < int(h.MaxTableEntries); i++ {
		e := binary.BigEndian.Uint32(bat[4*i:])
		if e == 0xFFFFFFFF {
			continue
		}
		off := int64(e) * vhd.SectorSize
		if off < headEnd {
			return 0, &StreamError{Field: fmt.Sprintf("bat[%d]", i), Reason: fmt.Sprintf("block at %d is inside the head (%d bytes)", off, headEnd)}
		}
		if b := off + bitmap + bs; b > end {
			end = b
		}
	}
	return end, nil
}

func roundSector(n int64) int64 { return (n + vhd.SectorSize - 1) / vhd.SectorSize * vhd.SectorSize }
