package vhd

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// ErrUnsafeName is matched (with errors.Is) by every error that refuses a
// file name because it would reach outside the directory it must stay in:
// ".." elements that climb out, symbolic links that lead out, NUL bytes, or
// names that are not a single path element where one is required.
var ErrUnsafeName = errors.New("vhd: unsafe file name")

// NameError reports a file name refused by DirFS or by the chain import and
// staging code. It matches ErrUnsafeName.
type NameError struct {
	Op     string // the operation: "open", "rename", "import", ...
	Dir    string // the directory the name had to stay in
	Name   string // the name as given
	Reason string // what is wrong with it
}

// Error describes the refused name.
func (e *NameError) Error() string {
	return fmt.Sprintf("vhd: %s %q in %q: %s", e.Op, e.Name, e.Dir, e.Reason)
}

// Unwrap makes a NameError match ErrUnsafeName.
func (e *NameError) Unwrap() error { return ErrUnsafeName }

// DirFS returns an FS over the local directory dir. Names are slash-separated
// paths resolved inside dir: a leading "/" is taken as dir itself (so a tree
// laid out like a host's root, "/var/run/sr-mount/…", can live in a test
// directory), "a/../b" is "b", and a name that climbs out of dir with ".." or
// reaches outside it through a symbolic link is refused with a *NameError,
// as is removing or renaming dir itself.
// Files are *os.File; files OpenFile creates are private to their owner
// (perm without group and other bits), and Stat's Sys() is the system's
// (on Unix a *syscall.Stat_t, whose Nlink Import reads).
//
// The symbolic-link check is made when a name is resolved; a link swapped in
// between the check and the system call is not caught. DirFS is meant for
// directories the caller controls, not for confining an adversary.
func DirFS(dir string) FS {
	return dirFS{root: dir}
}

type dirFS struct {
	root string
}

// cleanName turns name into a clean relative slash path ("." for the root),
// refusing names that climb out of the root.
func cleanName(op, dir, name string) (string, error) {
	if strings.IndexByte(name, 0) >= 0 {
		return "", &NameError{Op: op, Dir: dir, Name: name, Reason: "name holds a NUL byte"}
	}
	if name == "" {
		return "", &NameError{Op: op, Dir: dir, Name: name, Reason: "empty name"}
	}
	rel := strings.TrimLeft(name, "/")
	if rel == "" {
		return ".", nil
	}
	rel = path.Clean(rel)
	if rel == ".." || strings.HasPrefix(rel, "../") {
		return "", &NameError{Op: op, Dir: dir, Name: name, Reason: "name climbs out of the directory"}
	}
	return rel, nil
}

// within reports whether p is root or lies below it (both cleaned, absolute).
func within(root, p string) bool {
	if p == root {
		return true
	}
	if root == string(filepath.Separator) {
		return strings.HasPrefix(p, root)
	}
	return strings.HasPrefix(p, root+string(filepath.Separator))
}

// resolve maps name to a local path inside the root. The directory that will
// hold the name must resolve, through any symbolic links, to a place inside
// the root; with followFinal the name itself must too if it is a link
// (including a dangling one, which os.OpenFile with O_CREATE would follow).
func (d dirFS) resolve(op, name string, followFinal bool) (string, error) {
	rel, err := cleanName(op, d.root, name)
	if err != nil {
		return "", err
	}
	full := filepath.Join(d.root, filepath.FromSlash(rel))
	if rel == "." {
		return full, nil
	}
	realRoot, err := filepath.EvalSymlinks(d.root)
	if err != nil {
		// The root itself is missing or unreadable: let the operation fail
		// with the system's own error.
		return full, nil
	}
	realRoot, err = filepath.Abs(realRoot)
	if err != nil {
		return full, nil
	}
	// The deepest existing directory on the way to name must be inside.
	dir := filepath.Dir(full)
	for {
		real, err := filepath.EvalSymlinks(dir)
		if err == nil {
			if real, err = filepath.Abs(real); err == nil && !within(realRoot, real) {
				return "", &NameError{Op: op, Dir: d.root, Name: name, Reason: "a symbolic link on the way leads out of the directory"}
			}
			break
		}
		if dir == filepath.Clean(d.root) || filepath.Dir(dir) == dir {
			break
		}
		dir = filepath.Dir(dir)
	}
	if followFinal {
		fi, err := os.Lstat(full)
		if err == nil && fi.Mode()&fs.ModeSymlink != 0 {
			real, err := filepath.EvalSymlinks(full)
			if err != nil {
				return "", &NameError{Op: op, Dir: d.root, Name: name, Reason: "dangling symbolic link"}
			}
			if real, err = filepath.Abs(real); err != nil || !within(realRoot, real) {
				return "", &NameError{Op: op, Dir: d.root, Name: name, Reason: "symbolic link leads out of the directory"}
			}
		}
	}
	return full, nil
}

// Open opens a file for reading.
func (d dirFS) Open(name string) (File, error) {
	p, err := d.resolve("open", name, true)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	return f, nil
}

// OpenFile opens a file with os.OpenFile's flags. A file it creates gets
// perm without the group and other bits: DirFS holds disk images, which
// are the owner's alone.
func (d dirFS) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	p, err := d.resolve("open", name, true)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(p, flag, perm&^0o077)
	if err != nil {
		return nil, err
	}
	return f, nil
}

// Stat describes a file or directory, following a final symbolic link that
// stays inside the directory.
func (d dirFS) Stat(name string) (fs.FileInfo, error) {
	p, err := d.resolve("stat", name, true)
	if err != nil {
		return nil, err
	}
	return os.Stat(p)
}

// Rename moves oldname to newname, replacing newname if it exists. The
// directory itself can be neither.
func (d dirFS) Rename(oldname, newname string) error {
	o, err := d.resolveNotRoot("rename", oldname)
	if err != nil {
		return err
	}
	n, err := d.resolveNotRoot("rename", newname)
	if err != nil {
		return err
	}
	return os.Rename(o, n)
}

// resolveNotRoot is resolve without following a final link, refusing the
// directory itself: removing or renaming it would change what lies outside.
func (d dirFS) resolveNotRoot(op, name string) (string, error) {
	if rel, err := cleanName(op, d.root, name); err == nil && rel == "." {
		return "", &NameError{Op: op, Dir: d.root, Name: name, Reason: "names the directory itself"}
	}
	return d.resolve(op, name, false)
}

// Link makes newname a hard link to oldname.
func (d dirFS) Link(oldname, newname string) error {
	o, err := d.resolve("link", oldname, false)
	if err != nil {
		return err
	}
	n, err := d.resolve("link", newname, false)
	if err != nil {
		return err
	}
	return os.Link(o, n)
}

// Remove deletes a file or an empty directory (a symbolic link itself, not
// its target); not the directory itself.
func (d dirFS) Remove(name string) error {
	p, err := d.resolveNotRoot("remove", name)
	if err != nil {
		return err
	}
	return os.Remove(p)
}

// MkdirAll creates a directory and any missing parents.
func (d dirFS) MkdirAll(name string, perm fs.FileMode) error {
	p, err := d.resolve("mkdir", name, true)
	if err != nil {
		return err
	}
	return os.MkdirAll(p, perm)
}

// ReadDir lists a directory, sorted by name.
func (d dirFS) ReadDir(name string) ([]fs.DirEntry, error) {
	p, err := d.resolve("readdir", name, true)
	if err != nil {
		return nil, err
	}
	return os.ReadDir(p)
}
