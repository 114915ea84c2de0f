package vhd

import (
	"encoding/binary"
	"fmt"
	"path"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// PlatformCode is a parent locator's platform code.
type PlatformCode uint32

// Parent locator platform codes.
const (
	PlatformNone PlatformCode = 0
	PlatformWi2r PlatformCode = 0x57693272 // deprecated
	PlatformWi2k PlatformCode = 0x5769326B // deprecated
	PlatformW2ru PlatformCode = 0x57327275 // relative Windows path, UTF-16LE
	PlatformW2ku PlatformCode = 0x57326B75 // absolute Windows path, UTF-16LE
	PlatformMac  PlatformCode = 0x4D616320 // Mac OS alias blob
	PlatformMacX PlatformCode = 0x4D616358 // file:// URL, UTF-8
)

// String returns the four-character code ("MacX", "W2ku", ...).
func (c PlatformCode) String() string {
	if c == PlatformNone {
		return "none"
	}
	b := []byte{byte(c >> 24), byte(c >> 16), byte(c >> 8), byte(c)}
	return string(b)
}

func (c PlatformCode) valid() bool {
	switch c {
	case PlatformNone, PlatformWi2r, PlatformWi2k, PlatformW2ru, PlatformW2ku, PlatformMac, PlatformMacX:
		return true
	}
	return false
}

// ParentLocator is one of the eight 24-byte parent locator entries of the
// dynamic header. The payload itself lives at DataOffset in the file.
type ParentLocator struct {
	Code       PlatformCode
	DataSpace  uint32 // sectors per the specification, bytes as Microsoft and blktap write it
	DataLength uint32 // payload length in bytes
	Reserved   uint32
	DataOffset uint64 // absolute offset of the payload
}

// Space returns the payload's reserved space in bytes, interpreting
// DataSpace as blktap does: below 512 it counts sectors, a multiple of 512
// counts bytes, anything else is invalid (0).
func (l ParentLocator) Space() int64 {
	switch {
	case l.DataSpace < 512:
		return int64(l.DataSpace) * SectorSize
	case l.DataSpace%512 == 0:
		return int64(l.DataSpace)
	}
	return 0
}

const locatorSize = 24

// MarshalBinary encodes the 24-byte entry.
func (l *ParentLocator) MarshalBinary() ([]byte, error) {
	b := make([]byte, locatorSize)
	l.put(b)
	return b, nil
}

func (l *ParentLocator) put(b []byte) {
	be := binary.BigEndian
	be.PutUint32(b[0:], uint32(l.Code))
	be.PutUint32(b[4:], l.DataSpace)
	be.PutUint32(b[8:], l.DataLength)
	be.PutUint32(b[12:], l.Reserved)
	be.PutUint64(b[16:], l.DataOffset)
}

// UnmarshalBinary decodes a 24-byte entry. It checks only the length; Open
// and Check validate the values.
func (l *ParentLocator) UnmarshalBinary(b []byte) error {
	if len(b) != locatorSize {
		return formatErr("", "parent_locator", 0, ErrTruncated, "locator entry is %d bytes, want 24", len(b))
	}
	be := binary.BigEndian
	l.Code = PlatformCode(be.Uint32(b[0:]))
	l.DataSpace = be.Uint32(b[4:])
	l.DataLength = be.Uint32(b[8:])
	l.Reserved = be.Uint32(b[12:])
	l.DataOffset = be.Uint64(b[16:])
	return nil
}

// DecodeLocator decodes a parent locator payload (the DataLength bytes at
// DataOffset) into a slash-separated path, as blktap does: MacX is a UTF-8
// "file://" URL; W2ku and W2ru are UTF-16LE Windows paths whose
// backslashes become slashes and whose "C:" drive prefix is dropped. Other
// codes give ErrUnsupported.
func DecodeLocator(code PlatformCode, data []byte) (string, error) {
	switch code {
	case PlatformMacX:
		if !utf8.Valid(data) {
			return "", formatErr("", "locator."+code.String(), 0, ErrCorrupt, "payload is not UTF-8")
		}
		s := string(data)
		if i := strings.IndexByte(s, 0); i >= 0 {
			s = s[:i]
		}
		if !strings.HasPrefix(s, "file://") {
			return "", formatErr("", "locator."+code.String(), 0, ErrCorrupt, "payload %q is not a file:// URL", s)
		}
		s = s[len("file://"):]
		if s == "" {
			return "", formatErr("", "locator."+code.String(), 0, ErrCorrupt, "empty path")
		}
		return s, nil
	case PlatformW2ku, PlatformW2ru:
		s, err := decodeUTF16(data, binary.LittleEndian)
		if err != nil {
			return "", formatErr("", "locator."+code.String(), 0, ErrCorrupt, "%v", err)
		}
		s = strings.ReplaceAll(s, `\`, "/")
		if strings.HasPrefix(s, "C:") || strings.HasPrefix(s, "c:") {
			s = s[2:]
		}
		if s == "" {
			return "", formatErr("", "locator."+code.String(), 0, ErrCorrupt, "empty path")
		}
		return s, nil
	}
	return "", fmt.Errorf("%w: parent locator code %s", ErrUnsupported, code)
}

// EncodeLocator encodes a relative or absolute slash-separated parent path
// as blktap writes it: MacX "file://" + path (relative paths start with
// "./"); W2ku and W2ru ".\" + the path with backslashes, UTF-16LE.
func EncodeLocator(code PlatformCode, p string) ([]byte, error) {
	if p == "" {
		return nil, fmt.Errorf("%w: empty parent path", ErrInvalidArgument)
	}
	rel := !strings.HasPrefix(p, "/")
	switch code {
	case PlatformMacX:
		if rel && !strings.HasPrefix(p, "./") && !strings.HasPrefix(p, "../") {
			p = "./" + p
		}
		return []byte("file://" + p), nil
	case PlatformW2ku, PlatformW2ru:
		if rel {
			p = strings.TrimPrefix(p, "./")
			p = ".\\" + p
		}
		p = strings.ReplaceAll(p, "/", `\`)
		return encodeUTF16(p, binary.LittleEndian), nil
	}
	return nil, fmt.Errorf("%w: cannot encode parent locator code %s", ErrUnsupported, code)
}

func decodeUTF16(b []byte, order binary.ByteOrder) (string, error) {
	if len(b)%2 != 0 {
		b = b[:len(b)-1]
	}
	u := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		c := order.Uint16(b[i:])
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	for i := 0; i < len(u); i++ {
		c := u[i]
		if utf16.IsSurrogate(rune(c)) {
			if c >= 0xDC00 || i+1 >= len(u) || u[i+1] < 0xDC00 || u[i+1] > 0xDFFF {
				return "", fmt.Errorf("invalid UTF-16 at code unit %d", i)
			}
			i++
		}
	}
	return string(utf16.Decode(u)), nil
}

func encodeUTF16(s string, order binary.ByteOrder) []byte {
	u := utf16.Encode([]rune(s))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		order.PutUint16(b[2*i:], c)
	}
	return b
}

// Header is the 1024-byte dynamic disk header of dynamic and differencing
// disks.
type Header struct {
	Cookie          [8]byte // "cxsparse"
	DataOffset      uint64  // all ones
	TableOffset     uint64  // absolute BAT offset
	HeaderVersion   uint32  // 0x00010000
	MaxTableEntries uint32  // BAT entries
	BlockSize       uint32  // bytes, a power of two
	Checksum        uint32
	ParentUUID      UUID   // differencing: the parent's footer UUID
	ParentTimestamp uint32 // blktap: the parent file's mtime, VHD seconds
	Reserved1       uint32
	// ParentName is the parent's file name (blktap writes the basename),
	// stored as 512 bytes of UTF-16BE. When decoding, the name ends at the
	// first NUL code unit.
	ParentName string
	Locators   [8]ParentLocator
	Reserved2  [256]byte
}

func headerChecksum(b []byte) uint32 {
	var sum uint32
	for i, c := range b[:HeaderSize] {
		if i >= 36 && i < 40 {
			continue
		}
		sum += uint32(c)
	}
	return ^sum
}

// MarshalBinary encodes the header into 1024 bytes with a computed
// checksum (h.Checksum is ignored). A ParentName longer than 256 UTF-16
// code units is an error.
func (h *Header) MarshalBinary() ([]byte, error) {
	b := make([]byte, HeaderSize)
	if err := h.put(b); err != nil {
		return nil, err
	}
	return b, nil
}

func (h *Header) put(b []byte) error {
	name := encodeUTF16(h.ParentName, binary.BigEndian)
	if len(name) > 512 {
		return fmt.Errorf("%w: parent name %q longer than 256 UTF-16 code units", ErrNameTooLong, h.ParentName)
	}
	be := binary.BigEndian
	copy(b[0:8], h.Cookie[:])
	be.PutUint64(b[8:], h.DataOffset)
	be.PutUint64(b[16:], h.TableOffset)
	be.PutUint32(b[24:], h.HeaderVersion)
	be.PutUint32(b[28:], h.MaxTableEntries)
	be.PutUint32(b[32:], h.BlockSize)
	be.PutUint32(b[36:], 0)
	copy(b[40:56], h.ParentUUID[:])
	be.PutUint32(b[56:], h.ParentTimestamp)
	be.PutUint32(b[60:], h.Reserved1)
	clear(b[64:576])
	copy(b[64:576], name)
	for i := range h.Locators {
		h.Locators[i].put(b[576+locatorSize*i:])
	}
	copy(b[768:], h.Reserved2[:])
	be.PutUint32(b[36:], headerChecksum(b))
	return nil
}

// UnmarshalBinary decodes a 1024-byte header, checking the cookie and the
// checksum. A parent name that is not valid UTF-16 is an error.
func (h *Header) UnmarshalBinary(b []byte) error {
	if len(b) != HeaderSize {
		return formatErr("", "header", 0, ErrTruncated, "header is %d bytes, want 1024", len(b))
	}
	if string(b[0:8]) != headerCookie {
		return formatErr("", "header.cookie", 0, ErrCorrupt, "invalid cookie %q", b[0:8])
	}
	be := binary.BigEndian
	var g Header
	copy(g.Cookie[:], b[0:8])
	g.DataOffset = be.Uint64(b[8:])
	g.TableOffset = be.Uint64(b[16:])
	g.HeaderVersion = be.Uint32(b[24:])
	g.MaxTableEntries = be.Uint32(b[28:])
	g.BlockSize = be.Uint32(b[32:])
	g.Checksum = be.Uint32(b[36:])
	if sum := headerChecksum(b); sum != g.Checksum {
		return formatErr("", "header.checksum", 36, ErrChecksum, "invalid checksum: stored %#08x, computed %#08x", g.Checksum, sum)
	}
	copy(g.ParentUUID[:], b[40:56])
	g.ParentTimestamp = be.Uint32(b[56:])
	g.Reserved1 = be.Uint32(b[60:])
	name, err := decodeUTF16(b[64:576], binary.BigEndian)
	if err != nil {
		return formatErr("", "header.parent_name", 64, ErrCorrupt, "invalid parent name: %v", err)
	}
	g.ParentName = name
	for i := range g.Locators {
		_ = g.Locators[i].UnmarshalBinary(b[576+locatorSize*i : 576+locatorSize*(i+1)])
	}
	copy(g.Reserved2[:], b[768:])
	*h = g
	return nil
}

// relativeParentPath returns the path of parent relative to the directory of
// child, as blktap stores it in locators: "./name" for a sibling,
// "../dir/name" otherwise. Both are slash-separated names in the same FS.
func relativeParentPath(child, parent string) string {
	cdir := path.Dir(path.Clean(child))
	p := path.Clean(parent)
	if path.IsAbs(p) != path.IsAbs(cdir) {
		return p
	}
	cs := splitPath(cdir)
	ps := splitPath(path.Dir(p))
	i := 0
	for i < len(cs) && i < len(ps) && cs[i] == ps[i] {
		i++
	}
	var parts []string
	for range cs[i:] {
		parts = append(parts, "..")
	}
	parts = append(parts, ps[i:]...)
	parts = append(parts, path.Base(p))
	r := strings.Join(parts, "/")
	if !strings.HasPrefix(r, "../") {
		r = "./" + r
	}
	return r
}

func splitPath(p string) []string {
	if p == "." || p == "/" || p == "" {
		return nil
	}
	return strings.Split(strings.TrimPrefix(p, "/"), "/")
}

// resolveParentPath resolves a locator path against the child's directory:
// absolute paths stay as they are, others are joined to the child's
// directory.
func resolveParentPath(child, loc string) string {
	if path.IsAbs(loc) {
		return path.Clean(loc)
	}
	return path.Join(path.Dir(child), loc)
}
