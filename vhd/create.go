package vhd

import (
	"crypto/rand"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"time"
)

// CreateOptions tune Create and Snapshot. The zero value (or nil) creates a
// dynamic disk with 2 MiB blocks, a random UUID and the current time.
type CreateOptions struct {
	// Type is DiskDynamic (the default when zero) or DiskFixed for
	// Create; Snapshot always makes a DiskDifferencing disk and ignores it.
	Type DiskType
	// BlockSize is the block size of a dynamic or differencing disk: a
	// power of two from 4 KiB to 2 MiB; 0 means 2 MiB (DefaultBlockSize),
	// the only size blktap accepts. Snapshot defaults to the parent's.
	BlockSize uint32
	// UUID is the new disk's unique id; the zero UUID means draw a random
	// (version 4) one from Rand.
	UUID UUID
	// Rand is the randomness for the UUID; nil means crypto/rand.
	Rand io.Reader
	// Timestamp is the creation time written in the footer; the zero time
	// means Now().
	Timestamp time.Time
	// Now is the clock used when Timestamp is zero; nil means time.Now.
	Now func() time.Time
	// Size is, for Snapshot, the child's virtual size in bytes (0: the
	// parent's; smaller than the parent's is an error). Create ignores it.
	Size int64
	// RawParent makes Snapshot treat the parent as a raw image (vhd-util
	// snapshot -m): the child records a null parent UUID and takes the
	// parent file's size (rounded down to a sector).
	RawParent bool
	// SkipEmptyAncestors makes Snapshot behave like vhd-util snapshot's
	// default: while the given parent is a differencing disk holding no
	// block, link to its parent instead.
	SkipEmptyAncestors bool
	// Overwrite replaces an existing file; by default creating over an
	// existing file fails with an error matching fs.ErrExist.
	Overwrite bool
	// Perm is the new file's permission bits; 0 means 0600: a disk image
	// holds a guest's data, readable by root alone as on a host's SR.
	Perm fs.FileMode
}

func (o *CreateOptions) orDefault() CreateOptions {
	var c CreateOptions
	if o != nil {
		c = *o
	}
	if c.Rand == nil {
		c.Rand = rand.Reader
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Timestamp.IsZero() {
		c.Timestamp = c.Now()
	}
	if c.Perm == 0 {
		c.Perm = 0o600
	}
	return c
}

// SizeFromMiB converts a vhd-util "-s MiB" size to bytes with vhd-util
// create's rounding: up to a whole number of 2 MiB blocks.
func SizeFromMiB(mib int64) int64 {
	const block = DefaultBlockSize
	b := mib << 20
	return (b + block - 1) / block * block
}

// Create makes a new VHD of size bytes (a multiple of 512, at most
// MaxVirtualSize) and returns it open read-write. A fixed disk is size
// bytes of zeros (a sparse file) and a footer. A dynamic disk is laid out
// as blktap lays it out: footer copy at 0, header at 512, BAT at 1536
// (all unused), batmap header and map after the sector-padded BAT, footer.
// The footer names creator "tap" version 1.3 with host OS 0, like vhd-util.
// Use SizeFromMiB for vhd-util's MiB rounding.
func Create(fsys FS, name string, size int64, opts *CreateOptions) (*Disk, error) {
	o := opts.orDefault()
	typ := o.Type
	if typ == DiskNone {
		typ = DiskDynamic
	}
	if typ != DiskDynamic && typ != DiskFixed {
		return nil, fmt.Errorf("%w: Create type %s (want dynamic or fixed; use Snapshot for differencing)", ErrInvalidArgument, typ)
	}
	return create(fsys, name, size, typ, &o, nil)
}

// parentInfo is what a new differencing disk records about its parent.
type parentInfo struct {
	uuid  UUID
	mtime time.Time
	rel   string // locator path relative to the child's directory
	base  string
}

func create(fsys FS, name string, size int64, typ DiskType, o *CreateOptions, par *parentInfo) (*Disk, error) {
	if size <= 0 || size%SectorSize != 0 || size > MaxVirtualSize {
		return nil, fmt.Errorf("%w: size %d (want a positive multiple of 512 up to %d)", ErrInvalidArgument, size, int64(MaxVirtualSize))
	}
	bs := o.BlockSize
	if bs == 0 {
		bs = DefaultBlockSize
	}
	if typ != DiskFixed && (bs < 4096 || bs > DefaultBlockSize || bs&(bs-1) != 0) {
		return nil, fmt.Errorf("%w: block size %d (want a power of two from 4096 to 2097152)", ErrInvalidArgument, bs)
	}
	id := o.UUID
	if id.IsZero() {
		var err error
		if id, err = NewUUID(o.Rand); err != nil {
			return nil, err
		}
	}
	ft := Footer{
		Features:       featureReserved,
		FormatVersion:  formatVersion,
		DataOffset:     noDataOffset,
		Timestamp:      Timestamp(o.Timestamp),
		CreatorApp:     creatorTap(),
		CreatorVersion: CreatorVersion,
		OriginalSize:   uint64(size),
		CurrentSize:    uint64(size),
		Geometry:       CHS(size),
		DiskType:       typ,
		UniqueID:       id,
	}
	copy(ft.Cookie[:], footerCookie)

	flag := os.O_RDWR | os.O_CREATE | os.O_EXCL
	if o.Overwrite {
		flag = os.O_RDWR | os.O_CREATE | os.O_TRUNC
	}
	f, err := fsys.OpenFile(name, flag, o.Perm)
	if err != nil {
		return nil, fileErr("create", name, err)
	}
	fail := func(err error) (*Disk, error) {
		f.Close()
		fsys.Remove(name)
		return nil, err
	}
	var img []byte // metadata image written at offset 0
	fb := make([]byte, FooterSize)
	ft.put(fb)
	if typ == DiskFixed {
		if err := f.Truncate(size); err != nil {
			return fail(fileErr("create", name, err))
		}
		if _, err := f.WriteAt(fb, size); err != nil {
			return fail(fileErr("create", name, err))
		}
	} else {
		ft.DataOffset = FooterSize
		entries := (size + int64(bs) - 1) / int64(bs)
		h := Header{
			DataOffset:      noDataOffset,
			TableOffset:     FooterSize + HeaderSize,
			HeaderVersion:   headerVersion,
			MaxTableEntries: uint32(entries),
			BlockSize:       bs,
		}
		copy(h.Cookie[:], headerCookie)
		batBytes := roundUp(entries*4, SectorSize)
		bmHdrOff := int64(h.TableOffset) + batBytes
		mapSecs := max(1, ((entries+7)/8+SectorSize-1)/SectorSize)
		bh := batmapHeader{Offset: uint64(bmHdrOff + batmapHeaderSize), Size: uint32(mapSecs), Version: batmapVersion}
		copy(bh.Cookie[:], batmapCookie)
		mp := make([]byte, mapSecs*SectorSize)
		bh.Checksum = batmapChecksum(mp, batmapChecksumLen(uint64(size)), bh.Version)
		end := int64(bh.Offset) + mapSecs*SectorSize
		var locs [][]byte
		if par != nil {
			h.ParentUUID = par.uuid
			h.ParentTimestamp = Timestamp(par.mtime)
			h.ParentName = par.base
			for i, code := range []PlatformCode{PlatformMacX, PlatformW2ku, PlatformW2ru} {
				payload, err := EncodeLocator(code, par.rel)
				if err != nil {
					return fail(err)
				}
				space := roundUp(int64(len(payload)), SectorSize)
				h.Locators[i] = ParentLocator{Code: code, DataSpace: uint32(space), DataLength: uint32(len(payload)), DataOffset: uint64(end)}
				buf := make([]byte, space)
				copy(buf, payload)
				locs = append(locs, buf)
				end += space
			}
		}
		img = make([]byte, end)
		ft.put(img[0:FooterSize])
		if err := h.put(img[FooterSize : FooterSize+HeaderSize]); err != nil {
			return fail(err)
		}
		bat := img[h.TableOffset : int64(h.TableOffset)+batBytes]
		for i := range bat {
			bat[i] = 0xFF
		}
		bh.put(img[bmHdrOff : bmHdrOff+batmapHeaderSize])
		off := int64(bh.Offset) + mapSecs*SectorSize
		for _, l := range locs {
			copy(img[off:], l)
			off += int64(len(l))
		}
		img = append(img, img[:FooterSize]...)
		if _, err := f.WriteAt(img, 0); err != nil {
			return fail(fileErr("create", name, err))
		}
	}
	d, err := newDisk(fsys, name, f, true)
	if err != nil {
		return fail(err)
	}
	d.dirty = true
	return d, nil
}

// Snapshot creates child, a new differencing disk whose parent is parent,
// as vhd-util snapshot does: the child's size is the parent's (or
// opts.Size), its header records the parent's UUID, the parent file's
// modification time and its base name (UTF-16BE), and three locators — MacX,
// W2ku, W2ru — all holding the parent's path relative to the child's
// directory ("file://./p.vhd", ".\p.vhd"). The parent is not modified
// (hiding it is the caller's business, as it is SM's). Unlike vhd-util it
// does not skip empty ancestors unless opts.SkipEmptyAncestors is set.
func Snapshot(fsys FS, child, parent string, opts *CreateOptions) (*Disk, error) {
	o := opts.orDefault()
	var p *Disk
	var err error
	if o.SkipEmptyAncestors && !o.RawParent {
		if parent, err = firstNonEmptyAncestor(fsys, parent); err != nil {
			return nil, err
		}
	}
	if o.RawParent {
		p, err = openRaw(fsys, parent, false)
	} else {
		p, err = Open(fsys, parent)
	}
	if err != nil {
		return nil, err
	}
	pid, psize := p.UUID(), p.Size()
	if o.BlockSize == 0 && p.blockSize != 0 {
		o.BlockSize = uint32(p.blockSize)
	}
	p.Close()
	if pid.IsZero() && !o.RawParent {
		return nil, fmt.Errorf("vhd: snapshot of %s: parent has a null UUID: %w", parent, ErrCorrupt)
	}
	fi, err := fsys.Stat(parent)
	if err != nil {
		return nil, fmt.Errorf("vhd: snapshot: stat %s: %w", parent, err)
	}
	size := o.Size
	if size == 0 {
		size = psize
	}
	if size < psize {
		return nil, fmt.Errorf("%w: snapshot size %d smaller than parent's %d", ErrInvalidArgument, size, psize)
	}
	par := &parentInfo{uuid: pid, mtime: fi.ModTime(), rel: relativeParentPath(child, parent), base: path.Base(parent)}
	return create(fsys, child, size, DiskDifferencing, &o, par)
}

// firstNonEmptyAncestor follows parent links from name while the disk is a
// differencing disk with no allocated block (at most DefaultMaxDepth steps).
func firstNonEmptyAncestor(fsys FS, name string) (string, error) {
	for i := 0; i < DefaultMaxDepth; i++ {
		d, err := Open(fsys, name)
		if err != nil {
			return "", err
		}
		if d.Type() != DiskDifferencing || d.AllocatedBlocks() > 0 || d.ParentUUID().IsZero() {
			d.Close()
			return name, nil
		}
		next, err := d.ParentPath()
		d.Close()
		if err != nil {
			return "", err
		}
		name = next
	}
	return "", fmt.Errorf("vhd: snapshot of %s: more than %d empty ancestors: %w", name, DefaultMaxDepth, ErrChainTooDeep)
}
