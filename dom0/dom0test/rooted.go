package dom0test

import (
	"context"
	"io/fs"
	"path"

	"github.com/xenflow/xenflow/dom0"
	"github.com/xenflow/xenflow/vhd"
)

// RootedHost shows a directory of a host as that host's root: every name
// is taken inside Dir, and commands run with Dir as their working
// directory (through env -C, GNU coreutils 8.28 or later on the host), so
// the relative names dom0.RunPath gives name the same files for Run as
// for the file operations. A test uses it to give a host reached over SSH
// the file tree of a simulated host kept under a temporary directory.
type RootedHost struct {
	dom0.Host
	// Dir is the directory, an absolute name on Host, that stands for "/".
	Dir string
}

// Rooted returns h with dir as its root.
func Rooted(h dom0.Host, dir string) *RootedHost {
	return &RootedHost{Host: h, Dir: path.Clean("/" + dir)}
}

// p is a name of the rooted tree as a name on the host ("" and ".." stay
// inside Dir, as dom0.Host requires).
func (h *RootedHost) p(name string) string {
	return path.Join(h.Dir, path.Clean("/"+name))
}

// Open opens name for reading.
func (h *RootedHost) Open(name string) (vhd.File, error) { return h.Host.Open(h.p(name)) }

// OpenFile opens name with flags and permission bits.
func (h *RootedHost) OpenFile(name string, flag int, perm fs.FileMode) (vhd.File, error) {
	return h.Host.OpenFile(h.p(name), flag, perm)
}

// Stat describes name.
func (h *RootedHost) Stat(name string) (fs.FileInfo, error) { return h.Host.Stat(h.p(name)) }

// Rename moves oldname to newname.
func (h *RootedHost) Rename(oldname, newname string) error {
	return h.Host.Rename(h.p(oldname), h.p(newname))
}

// Link makes newname a hard link to oldname.
func (h *RootedHost) Link(oldname, newname string) error {
	return h.Host.Link(h.p(oldname), h.p(newname))
}

// Remove deletes a file or an empty directory.
func (h *RootedHost) Remove(name string) error { return h.Host.Remove(h.p(name)) }

// MkdirAll creates a directory and its parents.
func (h *RootedHost) MkdirAll(name string, perm fs.FileMode) error {
	return h.Host.MkdirAll(h.p(name), perm)
}

// ReadDir lists a directory.
func (h *RootedHost) ReadDir(name string) ([]fs.DirEntry, error) { return h.Host.ReadDir(h.p(name)) }

// Chmod changes permission bits.
func (h *RootedHost) Chmod(name string, mode fs.FileMode) error {
	return h.Host.Chmod(h.p(name), mode)
}

// Truncate changes a file's length.
func (h *RootedHost) Truncate(name string, size int64) error {
	return h.Host.Truncate(h.p(name), size)
}

// RemoveAll deletes a tree.
func (h *RootedHost) RemoveAll(name string) error { return h.Host.RemoveAll(h.p(name)) }

// Run runs argv with Dir as its working directory: env -C ./Dir -- argv,
// Dir relative to the host's root, where Run starts.
func (h *RootedHost) Run(ctx context.Context, argv []string) ([]byte, []byte, error) {
	return h.Host.Run(ctx, append([]string{"env", "-C", dom0.RunPath(h.Dir), "--"}, argv...))
}

// Streams is the host's number of SFTP data sessions (1 when it does not
// say).
func (h *RootedHost) Streams() int { return streams(h.Host) }

// String names the host and the directory.
func (h *RootedHost) String() string { return h.Host.String() + ":" + h.Dir }
