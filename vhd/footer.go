package vhd

import (
	"encoding/binary"
	"fmt"
	"time"
)

// Sizes and constants of the on-disk format.
const (
	// SectorSize is the VHD sector size in bytes.
	SectorSize = 512
	// FooterSize is the size of the footer (and of its copy at offset 0).
	FooterSize = 512
	// HeaderSize is the size of the dynamic disk header.
	HeaderSize = 1024
	// DefaultBlockSize is the block size blktap, qemu and Hyper-V write.
	DefaultBlockSize = 2 << 20
	// MaxBlockSize is the largest block size the package opens; every
	// buffer it allocates per block is bounded by it.
	MaxBlockSize = 64 << 20
	// MaxVirtualSize is the largest virtual size Create and Resize
	// accept: 2 TiB, as far as 32-bit BAT sector offsets reach. Note that
	// qemu and ocaml-vhd refuse disks above 2040 GiB.
	MaxVirtualSize = 2 << 40

	footerCookie = "conectix"
	headerCookie = "cxsparse"
	batmapCookie = "tdbatmap"

	featureTemporary = 0x1
	featureReserved  = 0x2
	formatVersion    = 0x00010000
	headerVersion    = 0x00010000
	unusedBAT        = 0xFFFFFFFF
	noDataOffset     = 0xFFFFFFFFFFFFFFFF
)

// vhdEpoch is 2000-01-01 00:00:00 UTC, the zero of VHD timestamps.
var vhdEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// Timestamp converts t to VHD seconds (since 2000-01-01 UTC), clamped to
// the 32-bit range.
func Timestamp(t time.Time) uint32 {
	s := t.Unix() - vhdEpoch.Unix()
	if s < 0 {
		return 0
	}
	if s > 0xFFFFFFFF {
		return 0xFFFFFFFF
	}
	return uint32(s)
}

// TimestampTime converts VHD seconds to a time.Time in UTC.
func TimestampTime(ts uint32) time.Time {
	return vhdEpoch.Add(time.Duration(ts) * time.Second)
}

// DiskType is the footer's disk type.
type DiskType uint32

// Disk types. Types 1, 5 and 6 are deprecated by the specification.
const (
	DiskNone         DiskType = 0
	DiskFixed        DiskType = 2
	DiskDynamic      DiskType = 3
	DiskDifferencing DiskType = 4
)

// String names the type as vhd-util does.
func (t DiskType) String() string {
	switch t {
	case DiskNone:
		return "none"
	case DiskFixed:
		return "fixed"
	case DiskDynamic:
		return "dynamic"
	case DiskDifferencing:
		return "differencing"
	}
	return fmt.Sprintf("DiskType(%d)", uint32(t))
}

// Creator identifies the application that wrote a VHD (footer bytes 28-31).
type Creator [4]byte

// creatorTap is blktap's vhd-util/tapdisk ("tap\0"), the creator this
// package writes.
func creatorTap() Creator { return Creator{'t', 'a', 'p', 0} }

// String returns the four characters with trailing NULs trimmed.
func (c Creator) String() string {
	n := 4
	for n > 0 && c[n-1] == 0 {
		n--
	}
	return string(c[:n])
}

// isTap reports whether the creator is blktap: like blktap, only the first
// three bytes ("tap") are compared.
func (c Creator) isTap() bool { return c[0] == 't' && c[1] == 'a' && c[2] == 'p' }

// Version packs a major.minor creator or format version.
func Version(major, minor uint16) uint32 { return uint32(major)<<16 | uint32(minor) }

// CreatorVersion is the creator version this package writes with creator
// "tap": blktap 1.3, the newest vhd-util check accepts; files of "tap" 1.2
// and later carry a batmap.
const CreatorVersion = 1<<16 | 3

// Geometry is the CHS geometry stored in the footer.
type Geometry struct {
	Cylinders       uint16
	Heads           uint8
	SectorsPerTrack uint8
}

// packed returns the geometry as the big-endian u32 stored on disk.
func (g Geometry) packed() uint32 {
	return uint32(g.Cylinders)<<16 | uint32(g.Heads)<<8 | uint32(g.SectorsPerTrack)
}

// Size is C×H×S×512 bytes.
func (g Geometry) Size() int64 {
	return int64(g.Cylinders) * int64(g.Heads) * int64(g.SectorsPerTrack) * SectorSize
}

// CHS computes the geometry for a virtual size exactly as the VHD
// specification's appendix (and blktap's vhd_chs, qemu's
// calculate_geometry) do.
func CHS(size int64) Geometry {
	ts := (size + SectorSize - 1) / SectorSize
	if size < 0 {
		ts = 0
	}
	if ts < 1 {
		ts = 1
	}
	const maxTS = 65535 * 16 * 255
	if ts > maxTS {
		ts = maxTS
	}
	var spt, heads, cth int64
	if ts >= 65535*16*63 {
		spt = 255
		heads = 16
		cth = ts / spt
	} else {
		spt = 17
		cth = ts / spt
		heads = (cth + 1023) / 1024
		if heads < 4 {
			heads = 4
		}
		if cth >= heads*1024 || heads > 16 {
			spt = 31
			heads = 16
			cth = ts / spt
		}
		if cth >= heads*1024 {
			spt = 63
			heads = 16
			cth = ts / spt
		}
	}
	return Geometry{Cylinders: uint16(cth / heads), Heads: uint8(heads), SectorsPerTrack: uint8(spt)}
}

// Footer is the 512-byte hard disk footer, at the end of every VHD and, for
// dynamic and differencing disks, copied at offset 0. Every field is kept,
// including blktap's hidden byte (offset 85) and the reserved area, so a
// parsed footer marshals back to the same bytes.
type Footer struct {
	Cookie         [8]byte  // "conectix"
	Features       uint32   // bit 1 must be set; bit 0 = temporary
	FormatVersion  uint32   // 0x00010000
	DataOffset     uint64   // dynamic header offset; all ones for fixed disks
	Timestamp      uint32   // seconds since 2000-01-01 UTC (see TimestampTime)
	CreatorApp     Creator  // "tap\0", "qemu", "win ", ...
	CreatorVersion uint32   // major<<16 | minor
	CreatorHostOS  uint32   // "Wi2k", "Mac " or 0 (blktap)
	OriginalSize   uint64   // virtual size at creation, bytes
	CurrentSize    uint64   // virtual size, bytes
	Geometry       Geometry // CHS
	DiskType       DiskType
	Checksum       uint32 // one's complement of the byte sum with this field zero
	UniqueID       UUID
	SavedState     uint8
	Hidden         uint8 // blktap extension: 1 = hidden (not a leaf)
	Reserved       [426]byte
}

// footerChecksum computes the checksum of a 512-byte footer, treating the
// checksum field (bytes 64-67) as zero.
func footerChecksum(b []byte) uint32 {
	var sum uint32
	for i, c := range b[:FooterSize] {
		if i >= 64 && i < 68 {
			continue
		}
		sum += uint32(c)
	}
	return ^sum
}

// MarshalBinary encodes the footer into 512 bytes. The checksum field is
// computed, not copied: f.Checksum is ignored.
func (f *Footer) MarshalBinary() ([]byte, error) {
	b := make([]byte, FooterSize)
	f.put(b)
	return b, nil
}

func (f *Footer) put(b []byte) {
	be := binary.BigEndian
	copy(b[0:8], f.Cookie[:])
	be.PutUint32(b[8:], f.Features)
	be.PutUint32(b[12:], f.FormatVersion)
	be.PutUint64(b[16:], f.DataOffset)
	be.PutUint32(b[24:], f.Timestamp)
	copy(b[28:32], f.CreatorApp[:])
	be.PutUint32(b[32:], f.CreatorVersion)
	be.PutUint32(b[36:], f.CreatorHostOS)
	be.PutUint64(b[40:], f.OriginalSize)
	be.PutUint64(b[48:], f.CurrentSize)
	be.PutUint16(b[56:], f.Geometry.Cylinders)
	b[58] = f.Geometry.Heads
	b[59] = f.Geometry.SectorsPerTrack
	be.PutUint32(b[60:], uint32(f.DiskType))
	be.PutUint32(b[64:], 0)
	copy(b[68:84], f.UniqueID[:])
	b[84] = f.SavedState
	b[85] = f.Hidden
	copy(b[86:], f.Reserved[:])
	be.PutUint32(b[64:], footerChecksum(b))
}

// UnmarshalBinary decodes a footer. It accepts 512 bytes, or 511 (the
// "short footer" of old Virtual PC files, read as if a zero byte followed).
// It checks the cookie and the checksum (accepting, as blktap does, tapdisk
// 0.1/1.1 footers whose hidden byte was set without refreshing the
// checksum) and nothing else; Open and Check validate the fields.
func (f *Footer) UnmarshalBinary(data []byte) error {
	if len(data) != FooterSize && len(data) != FooterSize-1 {
		return formatErr("", "footer", 0, ErrTruncated, "footer is %d bytes, want 512", len(data))
	}
	var b [FooterSize]byte
	copy(b[:], data)
	if string(b[0:8]) != footerCookie {
		return formatErr("", "footer.cookie", 0, ErrNotVHD, "invalid cookie %q", b[0:8])
	}
	var g Footer
	g.get(b[:])
	if sum := footerChecksum(b[:]); sum != g.Checksum {
		ok := false
		if g.Hidden != 0 && g.CreatorApp.isTap() && (g.CreatorVersion == Version(0, 1) || g.CreatorVersion == Version(1, 1)) {
			b[85] = 0
			ok = footerChecksum(b[:]) == g.Checksum
		}
		if !ok {
			return formatErr("", "footer.checksum", 64, ErrChecksum, "invalid checksum: stored %#08x, computed %#08x", g.Checksum, sum)
		}
	}
	*f = g
	return nil
}

func (f *Footer) get(b []byte) {
	be := binary.BigEndian
	copy(f.Cookie[:], b[0:8])
	f.Features = be.Uint32(b[8:])
	f.FormatVersion = be.Uint32(b[12:])
	f.DataOffset = be.Uint64(b[16:])
	f.Timestamp = be.Uint32(b[24:])
	copy(f.CreatorApp[:], b[28:32])
	f.CreatorVersion = be.Uint32(b[32:])
	f.CreatorHostOS = be.Uint32(b[36:])
	f.OriginalSize = be.Uint64(b[40:])
	f.CurrentSize = be.Uint64(b[48:])
	f.Geometry.Cylinders = be.Uint16(b[56:])
	f.Geometry.Heads = b[58]
	f.Geometry.SectorsPerTrack = b[59]
	f.DiskType = DiskType(be.Uint32(b[60:]))
	f.Checksum = be.Uint32(b[64:])
	copy(f.UniqueID[:], b[68:84])
	f.SavedState = b[84]
	f.Hidden = b[85]
	copy(f.Reserved[:], b[86:])
}

// hasBatmap reports whether blktap would look for a batmap in a disk with
// this footer: dynamic or differencing, creator "tap", version >= 1.2.
// (Version 1.1 files are probed: see Disk.)
func (f *Footer) hasBatmap() bool {
	return (f.DiskType == DiskDynamic || f.DiskType == DiskDifferencing) &&
		f.CreatorApp.isTap() && f.CreatorVersion >= Version(1, 2)
}
