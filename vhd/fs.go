package vhd

import (
	"io"
	"io/fs"
)

// File is a random-access file that holds one VHD. A local *os.File satisfies
// it, and so does a remote file handle over SFTP.
type File interface {
	io.ReaderAt
	io.WriterAt
	io.Closer
	// Stat describes the file; its Size is the file's length in bytes.
	Stat() (fs.FileInfo, error)
	// Truncate changes the file's length.
	Truncate(size int64) error
	// Sync commits the file's contents to stable storage.
	Sync() error
}

// FS is the file tree VHD files live in: a directory on this machine, or a
// XenServer host's control domain reached over SFTP. Names are slash-separated
// paths in the tree's own namespace (path, not path/filepath, rules), so the
// same chain code runs locally and remotely.
type FS interface {
	// Open opens a file for reading.
	Open(name string) (File, error)
	// OpenFile opens a file with os.OpenFile's flags (os.O_RDWR, os.O_CREATE,
	// os.O_EXCL, os.O_TRUNC) and permission bits.
	OpenFile(name string, flag int, perm fs.FileMode) (File, error)
	// Stat describes a file or directory; a missing one gives an error that
	// matches fs.ErrNotExist.
	Stat(name string) (fs.FileInfo, error)
	// Rename moves oldname to newname, replacing newname if it exists.
	Rename(oldname, newname string) error
	// Link makes newname a hard link to oldname.
	Link(oldname, newname string) error
	// Remove deletes a file or an empty directory.
	Remove(name string) error
	// MkdirAll creates a directory and any missing parents.
	MkdirAll(name string, perm fs.FileMode) error
	// ReadDir lists a directory, sorted by name.
	ReadDir(name string) ([]fs.DirEntry, error)
}
