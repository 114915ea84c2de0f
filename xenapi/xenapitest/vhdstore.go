package xenapitest

import (
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/xenflow/xenflow/vhd"
)

// vhdStore keeps an SR's VDIs as real VHD files made and read by package
// vhd, in one directory.
type vhdStore struct {
	dir  string
	fsys vhd.FS
	opts vhd.CreateOptions // the pool's randomness and clock
}

// newDiskStore returns the store of one SR directory. rand and now are the
// pool's; the pool lock serialises their use.
func newDiskStore(dir string, rand io.Reader, now func() time.Time) diskStore {
	return &vhdStore{dir: dir, fsys: vhd.DirFS(dir), opts: vhd.CreateOptions{Rand: rand, Now: now}}
}

func (s *vhdStore) create(name string, size int64) error {
	o := s.opts
	d, err := vhd.Create(s.fsys, name, size, &o)
	if err != nil {
		return err
	}
	return d.Close()
}

func (s *vhdStore) snapshot(child, parent string) error {
	o := s.opts
	d, err := vhd.Snapshot(s.fsys, child, parent, &o)
	if err != nil {
		return err
	}
	return d.Close()
}

func (s *vhdStore) setHidden(name string, hidden bool) error {
	d, err := vhd.OpenFile(s.fsys, name, os.O_RDWR)
	if err != nil {
		return err
	}
	err = d.SetHidden(hidden)
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

func (s *vhdStore) query(name string) (diskInfo, error) {
	info, err := vhd.Query(s.fsys, name)
	if err != nil {
		return diskInfo{}, err
	}
	return diskInfo{
		virtualSize:  info.VirtualSize,
		physicalSize: info.PhysicalSize,
		hidden:       info.Hidden,
		parent:       parentName(info.Parent),
		depth:        info.Depth,
	}, nil
}

func parentName(p string) string {
	if p == "" {
		return ""
	}
	return path.Base(p)
}

func (s *vhdStore) resize(name string, size int64) error { return vhd.Resize(s.fsys, name, size) }

func (s *vhdStore) writeAt(name string, p []byte, off int64) error {
	d, err := vhd.OpenFile(s.fsys, name, os.O_RDWR)
	if err != nil {
		return err
	}
	_, err = d.WriteAt(p, off)
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

func (s *vhdStore) readAt(name string, p []byte, off int64) error {
	c, err := vhd.OpenChain(s.fsys, name)
	if err != nil {
		return err
	}
	_, err = c.ReadAt(p, off)
	if cerr := c.Close(); err == nil {
		err = cerr
	}
	return err
}

func (s *vhdStore) rename(from, to string) error { return s.fsys.Rename(from, to) }
func (s *vhdStore) remove(name string) error     { return s.fsys.Remove(name) }

func (s *vhdStore) exists(name string) bool {
	_, err := s.fsys.Stat(name)
	return err == nil
}

func (s *vhdStore) list() ([]string, error) {
	ents, err := s.fsys.ReadDir(".")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".vhd") {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out, nil
}

func (s *vhdStore) chainFiles(name string) ([]string, error) {
	c, err := vhd.OpenChain(s.fsys, name)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	var out []string
	for _, d := range c.Disks() {
		out = append(out, path.Base(path.Clean(d.Name())))
	}
	return out, nil
}

func (s *vhdStore) blocks(name string) (map[uint32]bool, error) { return layerBlocks(s.fsys, name) }

func (s *vhdStore) openChain(name string, writable bool) (diskChain, error) {
	return vhd.OpenChainWithOptions(s.fsys, name, &vhd.ChainOptions{Writable: writable})
}

func (s *vhdStore) identity(name string) (*streamParent, error) {
	d, err := vhd.Open(s.fsys, name)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	fi, err := s.fsys.Stat(name)
	if err != nil {
		return nil, err
	}
	return &streamParent{uuid: d.UUID(), name: name, timestamp: vhd.Timestamp(fi.ModTime())}, nil
}
