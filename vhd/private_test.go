package vhd_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"testing"

	"github.com/xenflow/xenflow/vhd"
)

// TestImagesArePrivate: every file the package creates through DirFS, and
// Create's and Snapshot's default mode on any FS, is 0600, whatever the
// umask.
func TestImagesArePrivate(t *testing.T) {
	dir := t.TempDir()
	fsys := vhd.DirFS(dir)
	steps := []struct {
		name string
		make func() error
	}{
		{"dynamic.vhd", func() error {
			d, err := vhd.Create(fsys, "dynamic.vhd", 4<<20, nil)
			if err == nil {
				err = d.Close()
			}
			return err
		}},
		{"fixed.vhd", func() error {
			d, err := vhd.Create(fsys, "fixed.vhd", 1<<20, &vhd.CreateOptions{Type: vhd.DiskFixed})
			if err == nil {
				err = d.Close()
			}
			return err
		}},
		{"child.vhd", func() error {
			d, err := vhd.Snapshot(fsys, "child.vhd", "dynamic.vhd", nil)
			if err == nil {
				err = d.Close()
			}
			return err
		}},
		{"opened.vhd", func() error {
			// A caller asking DirFS for 0644 still gets a private file.
			f, err := fsys.OpenFile("opened.vhd", os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
			if err == nil {
				err = f.Close()
			}
			return err
		}},
	}
	for _, s := range steps {
		if err := s.make(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		fi, err := os.Stat(filepath.Join(dir, s.name))
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != 0o600 {
			t.Errorf("%s created with mode %#o, want 0600", s.name, got)
		}
	}
}

// sysFS is an FS whose FileInfo.Sys() is sys: nil says nothing about hard
// links, as pkg/sftp's FileStat does not; a struct with an Nlink field is
// how an FS over another transport reports them (dom0's SSH host does).
type sysFS struct {
	vhd.FS
	sys any
}

type sysInfo struct {
	fs.FileInfo
	sys any
}

func (i sysInfo) Sys() any { return i.sys }

type sysFile struct {
	vhd.File
	sys any
}

func (f sysFile) Stat() (fs.FileInfo, error) {
	fi, err := f.File.Stat()
	if err != nil {
		return nil, err
	}
	return sysInfo{fi, f.sys}, nil
}

func (s sysFS) Open(name string) (vhd.File, error) {
	return s.OpenFile(name, os.O_RDONLY, 0)
}

func (s sysFS) OpenFile(name string, flag int, perm fs.FileMode) (vhd.File, error) {
	f, err := s.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return sysFile{f, s.sys}, nil
}

func (s sysFS) Stat(name string) (fs.FileInfo, error) {
	fi, err := s.FS.Stat(name)
	if err != nil {
		return nil, err
	}
	return sysInfo{fi, s.sys}, nil
}

// nlinkStat is a Sys() of another transport: an Nlink field of its own
// integer type.
type nlinkStat struct{ Nlink uint32 }

// TestImportNeedsTheLinkCount: over an FS that cannot report link counts
// Import refuses the staged set before touching anything, with
// ErrLinkCountUnknown saying why; an FS reporting Nlink through Sys() is
// trusted.
func TestImportNeedsTheLinkCount(t *testing.T) {
	w := newWorld(t)
	want := w.staged(t, 2, 41)
	before := dirState(t, w.root)
	_, err := vhd.Import(context.Background(), sysFS{FS: w.fsys}, w.staging, w.dst, seededImport(1))
	var se *vhd.StagingError
	if !errors.Is(err, vhd.ErrLinkCountUnknown) || !errors.As(err, &se) || se.Step != "inspect" || se.Name != "0.vhd" {
		t.Fatalf("Import = %v, want a *StagingError at inspect of 0.vhd wrapping ErrLinkCountUnknown", err)
	}
	sameState(t, "after the refused import", before, dirState(t, w.root))

	res, err := vhd.Import(context.Background(), sysFS{w.fsys, &nlinkStat{Nlink: 1}}, w.staging, w.dst, seededImport(1))
	if err != nil {
		t.Fatalf("Import over an FS reporting Nlink: %v", err)
	}
	got, _ := readChain(t, w.fsys, path.Join(w.dst, res.Leaf.String()+".vhd"))
	if string(got) != string(want) {
		t.Fatal("imported chain reads different data")
	}
}
