package vhd

import (
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// memFS is a test-only in-memory FS, used by the fuzz targets and the
// property test.
type memFS struct {
	mu    sync.Mutex
	files map[string]*memData
}

type memData struct {
	mu    sync.RWMutex
	b     []byte
	mtime time.Time
	// links counts the names the file has, as a Unix inode's st_nlink
	// does; Stat reports it through Sys().(*memStat).Nlink.
	links atomic.Int64
}

// memStat is what memFS's FileInfo.Sys returns: the link count, in the
// field Import reads (as syscall.Stat_t names it).
type memStat struct{ Nlink uint64 }

// bind gives name to d (nil: a new file), unlinking what name named.
// The caller holds m.mu.
func (m *memFS) bind(name string, d *memData) *memData {
	if d == nil {
		d = &memData{mtime: time.Unix(1700000000, 0)}
	}
	if old, ok := m.files[name]; ok {
		old.links.Add(-1)
	}
	d.links.Add(1)
	m.files[name] = d
	return d
}

func newMemFS() *memFS { return &memFS{files: map[string]*memData{}} }

func (m *memFS) put(name string, b []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.bind(path.Clean(name), nil).b = b
}

func (m *memFS) bytes(name string) []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	d := m.files[path.Clean(name)]
	d.mu.RLock()
	defer d.mu.RUnlock()
	return append([]byte(nil), d.b...)
}

func (m *memFS) Open(name string) (File, error) { return m.OpenFile(name, os.O_RDONLY, 0) }

func (m *memFS) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	name = path.Clean(name)
	d, ok := m.files[name]
	switch {
	case ok && flag&os.O_CREATE != 0 && flag&os.O_EXCL != 0:
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrExist}
	case !ok && flag&os.O_CREATE == 0:
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	case !ok:
		d = m.bind(name, nil)
	}
	if flag&os.O_TRUNC != 0 {
		d.b = nil
	}
	return &memFile{name: name, d: d, rw: flag&(os.O_RDWR|os.O_WRONLY) != 0}, nil
}

func (m *memFS) Stat(name string) (fs.FileInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	name = path.Clean(name)
	d, ok := m.files[name]
	if !ok {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: fs.ErrNotExist}
	}
	return d.info(name), nil
}

func (m *memFS) Rename(o, n string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.files[path.Clean(o)]
	if !ok {
		return &fs.PathError{Op: "rename", Path: o, Err: fs.ErrNotExist}
	}
	if path.Clean(o) == path.Clean(n) {
		return nil
	}
	delete(m.files, path.Clean(o))
	m.bind(path.Clean(n), d)
	d.links.Add(-1)
	return nil
}

func (m *memFS) Link(o, n string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.files[path.Clean(o)]
	if !ok {
		return &fs.PathError{Op: "link", Path: o, Err: fs.ErrNotExist}
	}
	if _, ok := m.files[path.Clean(n)]; ok {
		return &fs.PathError{Op: "link", Path: n, Err: fs.ErrExist}
	}
	m.bind(path.Clean(n), d)
	return nil
}

func (m *memFS) Remove(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if d, ok := m.files[path.Clean(name)]; ok {
		d.links.Add(-1)
		delete(m.files, path.Clean(name))
	}
	return nil
}

func (m *memFS) MkdirAll(string, fs.FileMode) error { return nil }

func (m *memFS) ReadDir(dir string) ([]fs.DirEntry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []fs.DirEntry
	for n, d := range m.files {
		if path.Dir(n) == path.Clean(dir) {
			out = append(out, fs.FileInfoToDirEntry(d.info(n)))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out, nil
}

type memInfo struct {
	name  string
	size  int64
	mtime time.Time
	links int64
}

func (i memInfo) Name() string       { return path.Base(i.name) }
func (i memInfo) Size() int64        { return i.size }
func (i memInfo) Mode() fs.FileMode  { return 0o644 }
func (i memInfo) ModTime() time.Time { return i.mtime }
func (i memInfo) IsDir() bool        { return false }
func (i memInfo) Sys() any           { return &memStat{Nlink: uint64(i.links)} }

func (d *memData) info(name string) fs.FileInfo {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return memInfo{name, int64(len(d.b)), d.mtime, d.links.Load()}
}

type memFile struct {
	name string
	d    *memData
	rw   bool
}

func (f *memFile) ReadAt(p []byte, off int64) (int, error) {
	f.d.mu.RLock()
	defer f.d.mu.RUnlock()
	if off < 0 {
		return 0, fs.ErrInvalid
	}
	if off >= int64(len(f.d.b)) {
		return 0, io.EOF
	}
	n := copy(p, f.d.b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (f *memFile) WriteAt(p []byte, off int64) (int, error) {
	if !f.rw {
		return 0, fs.ErrPermission
	}
	f.d.mu.Lock()
	defer f.d.mu.Unlock()
	if end := off + int64(len(p)); end > int64(len(f.d.b)) {
		if end > 1<<32 {
			return 0, fs.ErrInvalid
		}
		f.d.b = append(f.d.b, make([]byte, end-int64(len(f.d.b)))...)
	}
	copy(f.d.b[off:], p)
	return len(p), nil
}

func (f *memFile) Truncate(size int64) error {
	f.d.mu.Lock()
	defer f.d.mu.Unlock()
	if size > 1<<32 {
		return fs.ErrInvalid
	}
	if size <= int64(len(f.d.b)) {
		f.d.b = f.d.b[:size]
	} else {
		f.d.b = append(f.d.b, make([]byte, size-int64(len(f.d.b)))...)
	}
	return nil
}

func (f *memFile) Stat() (fs.FileInfo, error) { return f.d.info(f.name), nil }
func (f *memFile) Sync() error                { return nil }
func (f *memFile) Close() error               { return nil }

// TestMemFSLinkCount: memFS reports link counts as a Unix file system does,
// through the Nlink field Import reads.
func TestMemFSLinkCount(t *testing.T) {
	m := newMemFS()
	m.put("a.vhd", []byte("x"))
	steps := []struct {
		do   func() error
		name string
		want uint64
	}{
		{func() error { return nil }, "a.vhd", 1},
		{func() error { return m.Link("a.vhd", "b.vhd") }, "a.vhd", 2},
		{func() error { return m.Rename("b.vhd", "c.vhd") }, "c.vhd", 2},
		{func() error { m.put("c.vhd", []byte("y")); return nil }, "a.vhd", 1},
		{func() error { return m.Link("a.vhd", "d.vhd") }, "d.vhd", 2},
		{func() error { return m.Remove("a.vhd") }, "d.vhd", 1},
	}
	for i, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		fi, err := m.Stat(s.name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := m.Open(s.name)
		if err != nil {
			t.Fatal(err)
		}
		ffi, _ := f.Stat()
		if got, fgot := linkCount(fi), linkCount(ffi); got != s.want || fgot != s.want {
			t.Errorf("step %d: %s has %d links (file: %d), want %d", i, s.name, got, fgot, s.want)
		}
	}
}
