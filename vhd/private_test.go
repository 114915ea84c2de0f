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

// noLinkCountFS is an FS whose FileInfo says nothing about hard links, as
// pkg/sftp's FileStat does not.
type noLinkCountFS struct{ vhd.FS }

type noSysInfo struct{ fs.FileInfo }

func (noSysInfo) Sys() any { return nil }

type noSysFile struct{ vhd.File }

func (f noSysFile) Stat() (fs.FileInfo, error) {
	fi, err := f.File.Stat()
	if err != nil {
		return nil, err
	}
	return noSysInfo{fi}, nil
}

func (n noLinkCountFS) Open(name string) (vhd.File, error) {
	f, err := n.FS.Open(name)
	if err != nil {
		return nil, err
	}
	return noSysFile{f}, nil
}

func (n noLinkCountFS) OpenFile(name string, flag int, perm fs.FileMode) (vhd.File, error) {
	f, err := n.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return noSysFile{f}, nil
}

func (n noLinkCountFS) Stat(name string) (fs.FileInfo, error) {
	fi, err := n.FS.Stat(name)
	if err != nil {
		return nil, err
	}
	return noSysInfo{fi}, nil
}

// nlinkStat is what an FS over another transport may put in Sys(): a
// struct with an Nlink field (as dom0's SSH host reports it).
type nlinkStat struct{ Nlink uint32 }

type nlinkFS struct{ noLinkCountFS }

type nlinkInfo struct {
	fs.FileInfo
	n uint32
}

func (i nlinkInfo) Sys() any { return &nlinkStat{Nlink: i.n} }

type nlinkFile struct {
	vhd.File
	n uint32
}

func (f nlinkFile) Stat() (fs.FileInfo, error) {
	fi, err := f.File.Stat()
	if err != nil {
		return nil, err
	}
	return nlinkInfo{fi, f.n}, nil
}

func (n nlinkFS) Open(name string) (vhd.File, error) {
	f, err := n.FS.Open(name)
	if err != nil {
		return nil, err
	}
	return nlinkFile{f, 1}, nil
}

// TestImportNeedsTheLinkCount: over an FS that cannot report link counts
// Import refuses the staged set before touching anything, with
// ErrLinkCountUnknown saying why; an FS reporting Nlink through Sys() is
// trusted.
func TestImportNeedsTheLinkCount(t *testing.T) {
	w := newWorld(t)
	want := w.staged(t, 2, 41)
	before := dirState(t, w.root)
	_, err := vhd.Import(context.Background(), noLinkCountFS{w.fsys}, w.staging, w.dst, seededImport(1))
	var se *vhd.StagingError
	if !errors.Is(err, vhd.ErrLinkCountUnknown) || !errors.As(err, &se) || se.Step != "inspect" || se.Name != "0.vhd" {
		t.Fatalf("Import = %v, want a *StagingError at inspect of 0.vhd wrapping ErrLinkCountUnknown", err)
	}
	sameState(t, "after the refused import", before, dirState(t, w.root))

	res, err := vhd.Import(context.Background(), nlinkFS{noLinkCountFS{w.fsys}}, w.staging, w.dst, seededImport(1))
	if err != nil {
		t.Fatalf("Import over an FS reporting Nlink: %v", err)
	}
	got, _ := readChain(t, w.fsys, path.Join(w.dst, res.Leaf.String()+".vhd"))
	if string(got) != string(want) {
		t.Fatal("imported chain reads different data")
	}
}
