package vhd

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"strconv"
	"strings"
)

// StageOptions tune Stage. The zero value (or nil) stages the whole chain
// as 0.vhd (leaf) ... n-1.vhd (base).
type StageOptions struct {
	// FirstSeq is the sequence number of the first file staged. Nova's
	// resize sends a running instance's immutable ancestors first, as
	// 1.vhd ... n.vhd, then the leaf alone as 0.vhd after power-off: stage
	// the ancestors with FirstSeq 1 and the leaf with Depth 1.
	FirstSeq int
	// Depth is how many disks to stage, from the leaf down; 0 means the
	// whole chain.
	Depth int
	// MaxDepth is the largest chain accepted; 0 means DefaultMaxDepth.
	MaxDepth int
	// Logger receives progress at debug level; nil discards it.
	Logger *slog.Logger
}

// StagedFile is one file of a staging set made by Stage.
type StagedFile struct {
	// Seq is the file's sequence number (0 = leaf).
	Seq int
	// Name is the staging file, <stagingDir>/<Seq>.vhd.
	Name string
	// Source is the SR file it is a hard link to.
	Source string
	// UUID is the VHD's own unique id (footer).
	UUID UUID
	// PhysicalSize is the file's size as vhd-util query -s reports it.
	PhysicalSize int64
}

// Stage makes a sequence-numbered staging set of the chain whose leaf is
// <srDir>/<leaf>.vhd, as Nova's migration plugin did before sending a
// chain: each disk of the chain, leaf first, gets a hard link
// <stagingDir>/<seq>.vhd (so staging costs no copy and the SR files stay
// untouched). The chain is opened through its parent locators and every
// disk must be a file directly in srDir. stagingDir, which must not be
// srDir itself (a subdirectory of it is fine), is created if missing
// (mode 0700, like mkdtemp); an existing <seq>.vhd is never replaced. On
// failure the links made so far are removed.
func Stage(ctx context.Context, fsys FS, srDir string, leaf UUID, stagingDir string, opts *StageOptions) ([]StagedFile, error) {
	var o StageOptions
	if opts != nil {
		o = *opts
	}
	if o.MaxDepth <= 0 {
		o.MaxDepth = DefaultMaxDepth
	}
	log := o.Logger
	if log == nil {
		log = slog.New(discardHandler{})
	}
	fail := func(step, name string, err error) ([]StagedFile, error) {
		return nil, &StagingError{Op: "stage", Step: step, Dir: srDir, Name: name, Err: err}
	}
	if o.FirstSeq < 0 || o.Depth < 0 || o.FirstSeq >= o.MaxDepth {
		return fail("inspect", "", fmt.Errorf("%w: FirstSeq %d, Depth %d", ErrInvalidArgument, o.FirstSeq, o.Depth))
	}
	if leaf.IsZero() {
		return fail("inspect", "", fmt.Errorf("%w: null leaf UUID", ErrInvalidArgument))
	}
	if err := ctx.Err(); err != nil {
		return fail("inspect", "", err)
	}
	leafName := path.Join(srDir, leaf.String()+".vhd")
	c, err := OpenChainWithOptions(fsys, leafName, &ChainOptions{MaxDepth: o.MaxDepth})
	if err != nil {
		return fail("inspect", leafName, err)
	}
	disks := c.Disks()
	if o.Depth > 0 && o.Depth < len(disks) {
		disks = disks[:o.Depth]
	}
	if o.FirstSeq+len(disks) > o.MaxDepth {
		c.Close()
		return fail("inspect", leafName, fmt.Errorf("%w: sequence numbers %d..%d pass the limit %d", ErrChainTooDeep, o.FirstSeq, o.FirstSeq+len(disks)-1, o.MaxDepth))
	}
	files := make([]StagedFile, len(disks))
	sr := path.Clean(srDir)
	for k, d := range disks {
		src := path.Clean(d.Name())
		if path.Dir(src) != sr {
			c.Close()
			return fail("inspect", src, &NameError{Op: "stage", Dir: srDir, Name: src, Reason: "chain member is not a file of the SR directory"})
		}
		files[k] = StagedFile{
			Seq:          o.FirstSeq + k,
			Name:         path.Join(stagingDir, strconv.Itoa(o.FirstSeq+k)+".vhd"),
			Source:       src,
			UUID:         d.UUID(),
			PhysicalSize: d.PhysicalSize(),
		}
	}
	if err := c.Close(); err != nil {
		return fail("inspect", leafName, err)
	}
	if err := ctx.Err(); err != nil {
		return fail("link", "", err)
	}
	if si, err := fsys.Stat(srDir); err == nil && sameDir(fsys, stagingDir, srDir, si) {
		// Sequence-numbered links in the SR itself would be seen by an SR
		// scan as VDIs named 0, 1, ...
		return fail("link", stagingDir, fmt.Errorf("%w: the staging directory is the SR directory", ErrInvalidArgument))
	}
	if err := fsys.MkdirAll(stagingDir, 0o700); err != nil {
		return fail("link", stagingDir, err)
	}
	for k, f := range files {
		err := mustNotExist(fsys, f.Name)
		if err == nil {
			err = fsys.Link(f.Source, f.Name)
		}
		if err != nil {
			for j := k - 1; j >= 0; j-- {
				_ = fsys.Remove(files[j].Name)
			}
			return fail("link", f.Source, err)
		}
	}
	log.Debug("vhd stage: chain staged", "sr", srDir, "leaf", leaf, "staging", stagingDir, "files", len(files))
	return files, nil
}

// ScanEntry is one line of Scan's answer, what vhd-util scan prints for a
// file: vhd=NAME capacity=BYTES size=PHYS hidden=N parent=NAME|none.
type ScanEntry struct {
	// Name is the file's path in the FS (dir joined with its name).
	Name string
	// UUID is the VHD's unique id.
	UUID UUID
	// Type is the disk type.
	Type DiskType
	// VirtualSize is the capacity in bytes.
	VirtualSize int64
	// PhysicalSize is the size vhd-util query -s reports.
	PhysicalSize int64
	// Hidden is blktap's hidden flag.
	Hidden bool
	// Parent is the resolved parent's path in the FS ("" for none).
	Parent string
	// ParentUUID is the parent UUID a differencing disk records.
	ParentUUID UUID
	// Err is set when the file could not be read or its parent not found
	// (vhd-util's scan-error=); the other fields hold what was learnt.
	Err error
}

// Scan lists the VHDs (regular files named *.vhd) of dir, sorted by name,
// with their sizes, hidden flag and resolved parent, as vhd-util scan does.
// A file that cannot be read gets an entry with Err set; only failing to
// list dir is an error.
func Scan(fsys FS, dir string) ([]ScanEntry, error) {
	ents, err := fsys.ReadDir(dir)
	if err != nil {
		return nil, &StagingError{Op: "scan", Step: "list", Dir: dir, Err: err}
	}
	var out []ScanEntry
	for _, e := range ents {
		name := e.Name()
		if !strings.HasSuffix(name, ".vhd") || e.IsDir() {
			continue
		}
		p := path.Join(dir, name)
		if err := singleElement("scan", dir, name); err != nil {
			out = append(out, ScanEntry{Name: p, Err: err})
			continue
		}
		if !e.Type().IsRegular() && e.Type()&fs.ModeSymlink == 0 {
			continue
		}
		info, err := Query(fsys, p)
		ent := ScanEntry{
			Name: p, UUID: info.UUID, Type: info.Type, VirtualSize: info.VirtualSize,
			PhysicalSize: info.PhysicalSize, Hidden: info.Hidden, Parent: info.Parent,
			ParentUUID: info.ParentUUID,
		}
		if err != nil {
			ent.Err = err
			if errors.Is(err, fs.ErrNotExist) {
				ent.Err = fmt.Errorf("%s: %w", p, err)
			}
		}
		out = append(out, ent)
	}
	return out, nil
}
