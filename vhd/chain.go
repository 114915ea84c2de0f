package vhd

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
)

// DefaultMaxDepth is the longest chain OpenChain accepts by default: 30
// disks, XenServer SM's MAX_CHAIN_SIZE.
const DefaultMaxDepth = 30

// ChainOptions tune OpenChainWithOptions.
type ChainOptions struct {
	// MaxDepth is the largest number of disks in the chain, leaf and base
	// included; 0 means DefaultMaxDepth.
	MaxDepth int
	// Writable opens the leaf read-write so Chain.WriteAt can write it
	// (its ancestors stay read-only).
	Writable bool
}

// Chain is a leaf VHD and its ancestors down to the base, opened through the
// parent locators (relative to each child's directory) with each parent's
// UUID checked against its child's header. Reads resolve each sector from
// the first disk that holds it, leaf first.
type Chain struct {
	disks  []*Disk
	closed bool
}

// OpenChain opens leaf and its ancestors read-only, at most
// DefaultMaxDepth disks.
func OpenChain(fsys FS, leaf string) (*Chain, error) {
	return OpenChainWithOptions(fsys, leaf, nil)
}

// OpenChainWithOptions opens a chain with options (nil: defaults).
func OpenChainWithOptions(fsys FS, leaf string, opts *ChainOptions) (*Chain, error) {
	var o ChainOptions
	if opts != nil {
		o = *opts
	}
	if o.MaxDepth <= 0 {
		o.MaxDepth = DefaultMaxDepth
	}
	flag := os.O_RDONLY
	if o.Writable {
		flag = os.O_RDWR
	}
	d, err := OpenFile(fsys, leaf, flag)
	if err != nil {
		return nil, err
	}
	ps, err := openAncestors(fsys, d, o.MaxDepth)
	if err != nil {
		d.Close()
		return nil, err
	}
	d.parents = ps
	c := &Chain{disks: append([]*Disk{d}, ps...)}
	return c, nil
}

// openAncestors opens the ancestors of d (parent first). The chain,
// counting d, may hold at most maxDepth disks.
func openAncestors(fsys FS, d *Disk, maxDepth int) ([]*Disk, error) {
	var ps []*Disk
	closeAll := func() {
		for _, p := range ps {
			p.Close()
		}
	}
	seen := map[UUID]string{d.UUID(): d.name}
	cur := d
	for cur.footer.DiskType == DiskDifferencing {
		if 1+len(ps) >= maxDepth {
			closeAll()
			return nil, fmt.Errorf("vhd: %s: more than %d disks in the chain: %w", d.name, maxDepth, ErrChainTooDeep)
		}
		want := cur.header.ParentUUID
		if want.IsZero() {
			// A raw parent (vhd-util snapshot -m): the base of the chain.
			pname, err := cur.ParentPath()
			if err != nil {
				closeAll()
				return nil, err
			}
			p, err := openRaw(fsys, pname, false)
			if err != nil {
				closeAll()
				return nil, &ParentError{Child: cur.name, Parent: pname, Err: err}
			}
			ps = append(ps, p)
			break
		}
		if prev, ok := seen[want]; ok {
			closeAll()
			return nil, &ParentError{Child: cur.name, Parent: prev, Want: want, Got: want, Err: ErrParentLoop}
		}
		pname, err := cur.ParentPath()
		if err != nil {
			closeAll()
			return nil, err
		}
		p, err := Open(fsys, pname)
		if err != nil {
			closeAll()
			return nil, &ParentError{Child: cur.name, Parent: pname, Want: want, Err: err}
		}
		if p.UUID() != want {
			got := p.UUID()
			p.Close()
			closeAll()
			return nil, &ParentError{Child: cur.name, Parent: pname, Want: want, Got: got, Err: ErrParentMismatch}
		}
		seen[want] = pname
		ps = append(ps, p)
		cur = p
	}
	for i := range ps {
		ps[i].parents = ps[i+1:]
	}
	return ps, nil
}

// openRaw opens a raw image — the parent of a differencing disk whose
// parent UUID is null — as a layer that reads (and writes) the file's bytes
// at their own offsets, like a fixed disk without a footer.
func openRaw(fsys FS, name string, writable bool) (*Disk, error) {
	var f File
	var err error
	if writable {
		f, err = fsys.OpenFile(name, os.O_RDWR, 0)
	} else {
		f, err = fsys.Open(name)
	}
	if err != nil {
		return nil, fileErr("open raw parent", name, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fileErr("stat raw parent", name, err)
	}
	size := fi.Size() / SectorSize * SectorSize
	d := &Disk{fsys: fsys, name: name, f: f, writable: writable, raw: true, fileSize: fi.Size(), footerPos: size}
	d.footer.DiskType = DiskFixed
	d.footer.CurrentSize = uint64(size)
	return d, nil
}

// Raw reports whether the disk is a raw image opened as the parent of a
// differencing disk with a null parent UUID (it has no footer: Footer,
// UUID and Hidden are zero).
func (d *Disk) Raw() bool { return d.raw }

// Locators returns the parent paths stored in a differencing disk's MacX,
// W2ku and W2ru locators, decoded but not resolved, in header order.
// Locators that cannot be read or decoded are skipped.
func (d *Disk) Locators() []string {
	var out []string
	for _, l := range d.header.Locators {
		if s, err := d.readLocator(l); err == nil {
			out = append(out, s)
		}
	}
	return out
}

// maxLocatorPayload bounds the parent locator payload read: a path of
// PATH_MAX (4096) UTF-16 code units fits many times over.
const maxLocatorPayload = 64 << 10

func (d *Disk) readLocator(l ParentLocator) (string, error) {
	switch l.Code {
	case PlatformMacX, PlatformW2ku, PlatformW2ru:
	default:
		return "", fmt.Errorf("%w: locator code %s", ErrUnsupported, l.Code)
	}
	n := int64(l.DataLength)
	if n == 0 || n > l.Space() || n > maxLocatorPayload {
		return "", d.ferr("parent_locator."+l.Code.String(), int64(l.DataOffset), ErrCorrupt, "invalid data length %d", n)
	}
	buf := make([]byte, n)
	if err := d.readFull(buf, int64(l.DataOffset), "parent_locator."+l.Code.String()); err != nil {
		return "", err
	}
	s, err := DecodeLocator(l.Code, buf)
	if err != nil {
		return "", withFile(err, d.name, int64(l.DataOffset))
	}
	return s, nil
}

// ParentPath resolves a differencing disk's parent in its FS as blktap
// does: the first MacX, W2ku or W2ru locator whose path (absolute, or
// relative to this disk's directory) names an existing file. When no
// locator does, the header's parent name in this disk's directory is tried
// (what libvhdi does). The error wraps ErrNotDifferencing or
// ErrParentNotFound.
func (d *Disk) ParentPath() (string, error) {
	if d.footer.DiskType != DiskDifferencing {
		return "", fmt.Errorf("vhd: %s: %w", d.name, ErrNotDifferencing)
	}
	var tried []string
	for _, l := range d.header.Locators {
		s, err := d.readLocator(l)
		if err != nil {
			continue
		}
		p := resolveParentPath(d.name, s)
		if _, err := d.fsys.Stat(p); err == nil {
			return p, nil
		}
		tried = append(tried, p)
	}
	if n := d.header.ParentName; n != "" && path.Base(n) == n && n != "." && n != ".." {
		p := path.Join(path.Dir(d.name), n)
		if _, err := d.fsys.Stat(p); err == nil {
			return p, nil
		}
		tried = append(tried, p)
	}
	return "", &ParentError{Child: d.name, Parent: d.header.ParentName, Want: d.header.ParentUUID,
		Err: fmt.Errorf("%w (tried %q)", ErrParentNotFound, tried)}
}

// Disks returns the chain's disks, leaf first, base last.
func (c *Chain) Disks() []*Disk { return append([]*Disk(nil), c.disks...) }

// Leaf returns the chain's leaf.
func (c *Chain) Leaf() *Disk { return c.disks[0] }

// Depth returns the number of disks in the chain (1 for a lone disk), as
// vhd-util query -d counts.
func (c *Chain) Depth() int { return len(c.disks) }

// Size returns the leaf's virtual size.
func (c *Chain) Size() int64 { return c.disks[0].Size() }

// ReadAt reads the virtual disk through the chain. Sectors no disk holds
// read as zeros; so do sectors past an ancestor's (smaller) virtual size.
func (c *Chain) ReadAt(p []byte, off int64) (int, error) {
	if c.closed {
		return 0, ErrClosed
	}
	return readAtLayers(c.disks, c.Size(), p, off)
}

// WriteAt writes to the leaf (the chain must have been opened Writable);
// partial sectors are completed from the ancestors.
func (c *Chain) WriteAt(p []byte, off int64) (int, error) {
	if c.closed {
		return 0, ErrClosed
	}
	return c.disks[0].WriteAt(p, off)
}

// WriteTo streams the whole virtual disk as raw bytes to w, one block at a
// time: memory stays in O(block size) whatever the disk's size.
func (c *Chain) WriteTo(w io.Writer) (int64, error) {
	if c.closed {
		return 0, ErrClosed
	}
	size := c.Size()
	chunk := c.disks[0].blockSize
	if chunk == 0 {
		chunk = DefaultBlockSize
	}
	buf := make([]byte, chunk)
	var written int64
	for off := int64(0); off < size; {
		n := int(min(chunk, size-off))
		if _, err := c.ReadAt(buf[:n], off); err != nil && err != io.EOF {
			return written, err
		}
		m, err := w.Write(buf[:n])
		written += int64(m)
		if err != nil {
			return written, err
		}
		if m != n {
			return written, io.ErrShortWrite
		}
		off += int64(n)
	}
	return written, nil
}

// Allocated reports whether any disk of the chain holds data in the
// virtual range [off, off+n): an allocated block of a dynamic or
// differencing disk, or any byte of a fixed disk or raw image, within that
// disk's size. false means the range reads as zeros, without reading it:
// a copy can leave a hole there, as qemu-img convert does with the block
// status of its source.
func (c *Chain) Allocated(off, n int64) (bool, error) {
	if c.closed {
		return false, ErrClosed
	}
	if off < 0 || n < 0 {
		return false, fmt.Errorf("vhd: Allocated(%d, %d): %w", off, n, ErrOutOfRange)
	}
	for _, d := range c.disks {
		d.mu.RLock()
		held, closed := d.holds(off, off+n), d.closed
		d.mu.RUnlock()
		if closed {
			return false, ErrClosed
		}
		if held {
			return true, nil
		}
		if d.footer.DiskType != DiskDifferencing {
			break
		}
	}
	return false, nil
}

// holds reports whether d itself allocates any of the virtual range
// [a, b). The caller holds d.mu.
func (d *Disk) holds(a, b int64) bool {
	b = min(b, int64(d.footer.CurrentSize))
	if a >= b {
		return false
	}
	if d.footer.DiskType == DiskFixed {
		return true
	}
	last := min((b-1)>>d.blockShift, int64(len(d.bat))-1)
	for blk := a >> d.blockShift; blk <= last; blk++ {
		if d.bat[blk] != unusedBAT {
			return true
		}
	}
	return false
}

// Close closes every disk of the chain.
func (c *Chain) Close() error {
	if c.closed {
		return ErrClosed
	}
	c.closed = true
	var errs []error
	for _, d := range c.disks {
		d.parents = nil
		if err := d.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
