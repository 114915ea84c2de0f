package vhd

import (
	"errors"
	"fmt"
	"io/fs"
)

// Sentinel errors. Errors returned by the package wrap one of these (or are a
// *FormatError that does) so callers can test them with errors.Is.
var (
	// ErrNotVHD: the file does not start or end with a VHD footer cookie.
	ErrNotVHD = errors.New("vhd: not a VHD file")
	// ErrChecksum: a footer, header or batmap checksum does not match.
	ErrChecksum = errors.New("vhd: checksum mismatch")
	// ErrTruncated: a structure extends past the end of the file.
	ErrTruncated = errors.New("vhd: file truncated")
	// ErrCorrupt: a structure holds a value the format does not allow.
	ErrCorrupt = errors.New("vhd: corrupt structure")
	// ErrUnsupported: a valid VHD the package does not handle (for
	// example a differencing disk with a raw parent).
	ErrUnsupported = errors.New("vhd: unsupported")
	// ErrParentNotFound: no parent locator of a differencing disk names a
	// file that exists.
	ErrParentNotFound = errors.New("vhd: parent not found")
	// ErrParentMismatch: a parent's footer UUID is not the UUID its child
	// records in its header.
	ErrParentMismatch = errors.New("vhd: parent UUID mismatch")
	// ErrParentLoop: a chain visits the same disk twice.
	ErrParentLoop = errors.New("vhd: parent loop")
	// ErrChainTooDeep: a chain has more disks than the configured limit.
	ErrChainTooDeep = errors.New("vhd: chain too deep")
	// ErrNotDifferencing: the operation needs a differencing disk.
	ErrNotDifferencing = errors.New("vhd: not a differencing disk")
	// ErrReadOnly: a write to a disk opened read-only.
	ErrReadOnly = errors.New("vhd: disk opened read-only")
	// ErrClosed: use of a closed disk or chain.
	ErrClosed = errors.New("vhd: disk closed")
	// ErrOutOfRange: an offset or length outside the virtual disk.
	ErrOutOfRange = errors.New("vhd: offset outside the virtual disk")
	// ErrShrink: Resize was asked to make a disk smaller.
	ErrShrink = errors.New("vhd: shrinking a disk is not supported")
	// ErrNameTooLong: a parent path does not fit the space reserved for
	// it in the existing parent locators.
	ErrNameTooLong = errors.New("vhd: parent path too long for its locator")
	// ErrInvalidArgument: a caller-supplied argument is not acceptable.
	ErrInvalidArgument = errors.New("vhd: invalid argument")
)

// FormatError reports a malformed VHD: which file, which field, where in the
// file, and why. It wraps a sentinel (ErrNotVHD, ErrChecksum, ErrTruncated,
// ErrCorrupt, ...) that errors.Is can test.
type FormatError struct {
	// File is the file's name in its FS ("" when parsing a bare buffer).
	File string
	// Field names the structure and field, for example "footer.cookie",
	// "header.block_size" or "bat[17]".
	Field string
	// Offset is the absolute byte offset of the field in the file, or -1
	// when it is not known.
	Offset int64
	// Reason says what is wrong, in the words vhd-util check uses where
	// there is one ("invalid checksum", "clobbers footer", ...).
	Reason string
	// Err is the sentinel class of the error.
	Err error
}

// Error implements error.
func (e *FormatError) Error() string {
	file := e.File
	if file == "" {
		file = "<buffer>"
	}
	if e.Offset >= 0 {
		return fmt.Sprintf("vhd: %s: %s (offset %d): %s", file, e.Field, e.Offset, e.Reason)
	}
	return fmt.Sprintf("vhd: %s: %s: %s", file, e.Field, e.Reason)
}

// Unwrap returns the sentinel class.
func (e *FormatError) Unwrap() error { return e.Err }

func formatErr(file, field string, off int64, class error, format string, args ...any) *FormatError {
	return &FormatError{File: file, Field: field, Offset: off, Reason: fmt.Sprintf(format, args...), Err: class}
}

// withFile fills in the file name of a *FormatError produced while parsing a
// buffer and shifts its offset by base.
func withFile(err error, file string, base int64) error {
	var fe *FormatError
	if errors.As(err, &fe) {
		c := *fe
		c.File = file
		if c.Offset >= 0 {
			c.Offset += base
		}
		return &c
	}
	return err
}

// fileErr wraps the error of op (open, stat, create ...) on name. A
// *fs.PathError already names its operation and file, so it is wrapped as
// it is: the message says "open X" once, not "open X: open X".
func fileErr(op, name string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("vhd: %w", err)
	}
	return fmt.Errorf("vhd: %s %s: %w", op, name, err)
}

// ParentError reports a broken link between a differencing disk and its
// parent. It wraps ErrParentNotFound, ErrParentMismatch, ErrParentLoop or
// the error met while opening the parent.
type ParentError struct {
	// Child is the differencing disk's name.
	Child string
	// Parent is the parent's resolved name, or the header's parent name
	// when no locator resolved.
	Parent string
	// Want is the parent UUID recorded in the child's header.
	Want UUID
	// Got is the UUID found in the parent's footer (zero if not opened).
	Got UUID
	// Err is the cause.
	Err error
}

// Error implements error.
func (e *ParentError) Error() string {
	if errors.Is(e.Err, ErrParentMismatch) {
		return fmt.Sprintf("vhd: %s: parent %s has UUID %s, child expects %s: %v", e.Child, e.Parent, e.Got, e.Want, e.Err)
	}
	return fmt.Sprintf("vhd: %s: parent %s: %v", e.Child, e.Parent, e.Err)
}

// Unwrap returns the cause.
func (e *ParentError) Unwrap() error { return e.Err }
