package vhd

import (
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

// tmpFS is a test-only FS over a local directory.
type tmpFS struct{ root string }

func (t tmpFS) path(name string) string { return filepath.Join(t.root, filepath.FromSlash(name)) }

func (t tmpFS) Open(name string) (File, error) { return os.Open(t.path(name)) }
func (t tmpFS) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	return os.OpenFile(t.path(name), flag, perm)
}
func (t tmpFS) Stat(name string) (fs.FileInfo, error) { return os.Stat(t.path(name)) }
func (t tmpFS) Rename(o, n string) error              { return os.Rename(t.path(o), t.path(n)) }
func (t tmpFS) Link(o, n string) error                { return os.Link(t.path(o), t.path(n)) }
func (t tmpFS) Remove(name string) error              { return os.Remove(t.path(name)) }
func (t tmpFS) MkdirAll(name string, perm fs.FileMode) error {
	return os.MkdirAll(t.path(name), perm)
}
func (t tmpFS) ReadDir(name string) ([]fs.DirEntry, error) {
	es, err := os.ReadDir(t.path(name))
	sort.Slice(es, func(i, j int) bool { return es[i].Name() < es[j].Name() })
	return es, err
}
