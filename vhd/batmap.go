package vhd

import (
	"encoding/binary"
	"slices"
)

// batmapHeader is blktap's batmap header (struct dd_batmap_hdr), a 512-byte
// sector right after the padded BAT of "tap" files of version 1.2 or later.
// The map that follows has one bit per block, MSB first, set when the
// block's sector bitmap is all ones.
type batmapHeader struct {
	Cookie   [8]byte
	Offset   uint64 // absolute offset of the map
	Size     uint32 // map size in sectors
	Version  uint32 // 0x00010002
	Checksum uint32 // NOT(sum of map bytes) over the checksummed region
	Marker   uint8
	KeyHash  [65]byte
	Reserved [418]byte
}

const (
	batmapHeaderSize = 512
	batmapVersion    = 0x00010002
	batmapVersion11  = 0x00010001
)

func (h *batmapHeader) put(b []byte) {
	be := binary.BigEndian
	copy(b[0:8], h.Cookie[:])
	be.PutUint64(b[8:], h.Offset)
	be.PutUint32(b[16:], h.Size)
	be.PutUint32(b[20:], h.Version)
	be.PutUint32(b[24:], h.Checksum)
	b[28] = h.Marker
	copy(b[29:94], h.KeyHash[:])
	copy(b[94:512], h.Reserved[:])
}

func (h *batmapHeader) get(b []byte) error {
	if len(b) != batmapHeaderSize {
		return formatErr("", "batmap", 0, ErrTruncated, "batmap header is %d bytes, want 512", len(b))
	}
	be := binary.BigEndian
	copy(h.Cookie[:], b[0:8])
	if string(h.Cookie[:]) != batmapCookie {
		return formatErr("", "batmap.cookie", 0, ErrCorrupt, "invalid cookie %q", b[0:8])
	}
	h.Offset = be.Uint64(b[8:])
	h.Size = be.Uint32(b[16:])
	h.Version = be.Uint32(b[20:])
	h.Checksum = be.Uint32(b[24:])
	h.Marker = b[28]
	copy(h.KeyHash[:], b[29:94])
	copy(h.Reserved[:], b[94:512])
	if h.Version > batmapVersion {
		return formatErr("", "batmap.version", 20, ErrUnsupported, "unsupported batmap version %#x", h.Version)
	}
	return nil
}

// batmapChecksumLen is the number of map bytes blktap's checksum covers: the
// sector-rounded (at least one sector) size of curr_size>>24 bytes, a
// formula that assumes 2 MiB blocks. Writers and readers must agree on it,
// so the package uses the same formula whatever the block size.
func batmapChecksumLen(currentSize uint64) int64 {
	n := int64(currentSize >> 24)
	secs := (n + SectorSize - 1) / SectorSize
	if secs < 1 {
		secs = 1
	}
	return secs * SectorSize
}

// batmapChecksum computes the checksum over the first n bytes of the map
// (bytes past the end of the map count as zero). Version 1.1 summed signed
// chars.
func batmapChecksum(m []byte, n int64, version uint32) uint32 {
	var sum uint32
	if int64(len(m)) < n {
		n = int64(len(m))
	}
	for _, c := range m[:n] {
		if version == batmapVersion11 {
			sum += uint32(int32(int8(c)))
		} else {
			sum += uint32(c)
		}
	}
	return ^sum
}

// bitTest reports bit i (MSB first) of a bitmap; out of range bits are 0.
func bitTest(m []byte, i int64) bool {
	if i < 0 || i>>3 >= int64(len(m)) {
		return false
	}
	return m[i>>3]&(0x80>>(i&7)) != 0
}

func bitSet(m []byte, i int64) { m[i>>3] |= 0x80 >> (i & 7) }

// bitsAllSet reports whether bits [0, n) are all set.
func bitsAllSet(m []byte, n int64) bool {
	full := n >> 3
	for _, c := range m[:full] {
		if c != 0xFF {
			return false
		}
	}
	for i := full << 3; i < n; i++ {
		if !bitTest(m, i) {
			return false
		}
	}
	return true
}

// bitRun returns the end of the run of bits equal to bit start, scanning
// no further than end.
func bitRun(m []byte, start, end int64) int64 {
	v := bitTest(m, start)
	i := start + 1
	for i < end {
		if i&7 == 0 && i+8 <= end {
			c := m[i>>3]
			if (v && c == 0xFF) || (!v && c == 0) {
				i += 8
				continue
			}
		}
		if bitTest(m, i) != v {
			break
		}
		i++
	}
	return i
}

func sortSlice[T any](a []T, less func(x, y T) bool) {
	slices.SortFunc(a, func(x, y T) int {
		switch {
		case less(x, y):
			return -1
		case less(y, x):
			return 1
		}
		return 0
	})
}
