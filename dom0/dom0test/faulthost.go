// Package dom0test is test support for code that works on a XenServer
// host's control domain through dom0.Host: FaultHost wraps a host, logs
// every operation performed on it and on the files opened from it, and
// fails chosen ones, the way xenapitest's Pool does for XenAPI calls
// (Fault, FailNth, Calls, CallCount), so a test can fail each operation
// once and check what the code under test left behind.
package dom0test

import (
	"context"
	"errors"
	"io/fs"
	"strconv"
	"strings"
	"sync"

	"github.com/xenflow/xenflow/dom0"
	"github.com/xenflow/xenflow/vhd"
)

// Operation names, as Call.Op and Fault.Op spell them: the method of
// dom0.Host (and of vhd.FS it embeds), or "File." and the method of a file
// opened from the host.
const (
	OpOpen      = "Open"
	OpOpenFile  = "OpenFile"
	OpStat      = "Stat"
	OpRename    = "Rename"
	OpLink      = "Link"
	OpRemove    = "Remove"
	OpMkdirAll  = "MkdirAll"
	OpReadDir   = "ReadDir"
	OpChmod     = "Chmod"
	OpTruncate  = "Truncate"
	OpRemoveAll = "RemoveAll"
	OpRun       = "Run"
	OpClose     = "Close"

	OpFileReadAt   = "File.ReadAt"
	OpFileWriteAt  = "File.WriteAt"
	OpFileStat     = "File.Stat"
	OpFileTruncate = "File.Truncate"
	OpFileSync     = "File.Sync"
	OpFileClose    = "File.Close"
)

// ErrInjected is the cause of every failure a Fault injects: the error an
// operation returns is a *dom0.OpError (naming the host, the operation
// and the path) that wraps it, so errors.Is(err, ErrInjected) finds it.
var ErrInjected = errors.New("dom0test: injected fault")

// Call is one operation the host performed (or refused by a fault).
type Call struct {
	Seq  int    // position in the log, from 1
	Op   string // an Op* name, e.g. "Rename" or "File.WriteAt"
	N    int    // this call is the N-th use of Op, as Fault.N counts
	Path string // the name it acted on ("old -> new" for Rename and Link, the command line for Run)
	// Failed is set when a Fault made the call fail (failures of the
	// wrapped host are not recorded).
	Failed bool
}

// String formats the call as "Op#N path", with " -> injected" when a fault
// failed it.
func (c Call) String() string {
	s := c.Op + "#" + strconv.Itoa(c.N) + " " + c.Path
	if c.Failed {
		s += " -> injected"
	}
	return s
}

// Fault makes operations fail. A call matches when every field set
// matches; the matching call fails with a *dom0.OpError wrapping Err (or
// ErrInjected) and is not passed on to the wrapped host.
type Fault struct {
	// Op is the operation to affect (an Op* name); "" matches every one.
	Op string
	// N picks the use of Op to affect, counting from 1 over the host's
	// whole life (as Call.N does); 0 affects every use.
	N int
	// Match, when set, must also accept the call: fail only the writes
	// into one directory, say.
	Match func(Call) bool
	// Err is the cause the failure wraps; nil means ErrInjected. It is
	// wrapped around ErrInjected otherwise, so errors.Is finds both.
	Err error
}

// FaultHost is a dom0.Host that performs every operation on the host it
// wraps, counts each by operation name, logs it and fails the ones its
// faults select. Files opened from it are wrapped the same way. It is
// safe for concurrent use; the count of an operation is deterministic
// when the code under test performs it a deterministic number of times,
// even from several goroutines.
type FaultHost struct {
	dom0.Host

	mu     sync.Mutex
	counts map[string]int
	calls  []Call
	faults []Fault
}

// maxCallLog bounds the log; counts go on past it.
const maxCallLog = 1 << 20

// NewFaultHost wraps h.
func NewFaultHost(h dom0.Host) *FaultHost {
	return &FaultHost{Host: h, counts: map[string]int{}}
}

// InjectFault adds a fault. When several match one call the first added
// gives the error.
func (h *FaultHost) InjectFault(f Fault) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.faults = append(h.faults, f)
}

// FailNth makes the n-th use of op fail with ErrInjected.
func (h *FaultHost) FailNth(op string, n int) {
	h.InjectFault(Fault{Op: op, N: n})
}

// ClearFaults removes every fault.
func (h *FaultHost) ClearFaults() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.faults = nil
}

// Calls returns a copy of the log.
func (h *FaultHost) Calls() []Call {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Call(nil), h.calls...)
}

// CallCount returns how many times op has been called.
func (h *FaultHost) CallCount(op string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.counts[op]
}

// ResetCalls empties the log. Use counts (Call.N, Fault.N) go on from
// where they were.
func (h *FaultHost) ResetCalls() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls = nil
}

// Unwrap returns the wrapped host.
func (h *FaultHost) Unwrap() dom0.Host { return h.Host }

// Streams is the wrapped host's number of SFTP data sessions (1 when it
// does not say), so a transfer through the wrapper runs as it would on the
// host.
func (h *FaultHost) Streams() int { return streams(h.Host) }

// streams is a host's number of SFTP data sessions, 1 when it does not
// say.
func streams(h dom0.Host) int {
	if s, ok := h.(interface{ Streams() int }); ok {
		return s.Streams()
	}
	return 1
}

// enter counts and logs one operation and returns the error a fault gives
// it, nil to let it through.
func (h *FaultHost) enter(op, name string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.counts[op]++
	c := Call{Seq: len(h.calls) + 1, Op: op, N: h.counts[op], Path: name}
	var cause error
	for _, f := range h.faults {
		if (f.Op == "" || f.Op == c.Op) && (f.N == 0 || f.N == c.N) && (f.Match == nil || f.Match(c)) {
			cause = ErrInjected
			if f.Err != nil {
				cause = &injected{err: f.Err}
			}
			c.Failed = true
			break
		}
	}
	if len(h.calls) < maxCallLog {
		h.calls = append(h.calls, c)
	}
	if cause == nil {
		return nil
	}
	return &dom0.OpError{Host: h.Host.String(), Op: op, Path: name, Err: cause}
}

// injected is a caller's cause that also matches ErrInjected.
type injected struct{ err error }

func (e *injected) Error() string   { return e.err.Error() + " (injected)" }
func (e *injected) Unwrap() []error { return []error{e.err, ErrInjected} }

// Open opens name for reading on the wrapped host.
func (h *FaultHost) Open(name string) (vhd.File, error) {
	if err := h.enter(OpOpen, name); err != nil {
		return nil, err
	}
	return h.wrapFile(name)(h.Host.Open(name))
}

// OpenFile opens name with flags on the wrapped host.
func (h *FaultHost) OpenFile(name string, flag int, perm fs.FileMode) (vhd.File, error) {
	if err := h.enter(OpOpenFile, name); err != nil {
		return nil, err
	}
	return h.wrapFile(name)(h.Host.OpenFile(name, flag, perm))
}

// wrapFile returns what wraps a file opened as name.
func (h *FaultHost) wrapFile(name string) func(vhd.File, error) (vhd.File, error) {
	return func(f vhd.File, err error) (vhd.File, error) {
		if err != nil {
			return nil, err
		}
		return &faultFile{File: f, h: h, name: name}, nil
	}
}

// Stat describes name on the wrapped host.
func (h *FaultHost) Stat(name string) (fs.FileInfo, error) {
	if err := h.enter(OpStat, name); err != nil {
		return nil, err
	}
	return h.Host.Stat(name)
}

// Rename renames on the wrapped host.
func (h *FaultHost) Rename(oldname, newname string) error {
	if err := h.enter(OpRename, oldname+" -> "+newname); err != nil {
		return err
	}
	return h.Host.Rename(oldname, newname)
}

// Link makes a hard link on the wrapped host.
func (h *FaultHost) Link(oldname, newname string) error {
	if err := h.enter(OpLink, oldname+" -> "+newname); err != nil {
		return err
	}
	return h.Host.Link(oldname, newname)
}

// Remove deletes name on the wrapped host.
func (h *FaultHost) Remove(name string) error {
	if err := h.enter(OpRemove, name); err != nil {
		return err
	}
	return h.Host.Remove(name)
}

// MkdirAll creates a directory on the wrapped host.
func (h *FaultHost) MkdirAll(name string, perm fs.FileMode) error {
	if err := h.enter(OpMkdirAll, name); err != nil {
		return err
	}
	return h.Host.MkdirAll(name, perm)
}

// ReadDir lists a directory of the wrapped host.
func (h *FaultHost) ReadDir(name string) ([]fs.DirEntry, error) {
	if err := h.enter(OpReadDir, name); err != nil {
		return nil, err
	}
	return h.Host.ReadDir(name)
}

// Chmod changes permission bits on the wrapped host.
func (h *FaultHost) Chmod(name string, mode fs.FileMode) error {
	if err := h.enter(OpChmod, name); err != nil {
		return err
	}
	return h.Host.Chmod(name, mode)
}

// Truncate changes a file's length on the wrapped host.
func (h *FaultHost) Truncate(name string, size int64) error {
	if err := h.enter(OpTruncate, name); err != nil {
		return err
	}
	return h.Host.Truncate(name, size)
}

// RemoveAll deletes a tree on the wrapped host.
func (h *FaultHost) RemoveAll(name string) error {
	if err := h.enter(OpRemoveAll, name); err != nil {
		return err
	}
	return h.Host.RemoveAll(name)
}

// Run runs argv on the wrapped host; the log's Path is the command line,
// words joined by spaces.
func (h *FaultHost) Run(ctx context.Context, argv []string) ([]byte, []byte, error) {
	if err := h.enter(OpRun, strings.Join(argv, " ")); err != nil {
		return nil, nil, err
	}
	return h.Host.Run(ctx, argv)
}

// Close closes the wrapped host, also when a fault fails the call (a
// failed close still releases the connection).
func (h *FaultHost) Close() error {
	ferr := h.enter(OpClose, "")
	err := h.Host.Close()
	if ferr != nil {
		return ferr
	}
	return err
}

// faultFile is a file opened from a FaultHost.
type faultFile struct {
	vhd.File
	h    *FaultHost
	name string // as opened
}

func (f *faultFile) ReadAt(p []byte, off int64) (int, error) {
	if err := f.h.enter(OpFileReadAt, f.name); err != nil {
		return 0, err
	}
	return f.File.ReadAt(p, off)
}

func (f *faultFile) WriteAt(p []byte, off int64) (int, error) {
	if err := f.h.enter(OpFileWriteAt, f.name); err != nil {
		return 0, err
	}
	return f.File.WriteAt(p, off)
}

func (f *faultFile) Stat() (fs.FileInfo, error) {
	if err := f.h.enter(OpFileStat, f.name); err != nil {
		return nil, err
	}
	return f.File.Stat()
}

func (f *faultFile) Truncate(size int64) error {
	if err := f.h.enter(OpFileTruncate, f.name); err != nil {
		return err
	}
	return f.File.Truncate(size)
}

func (f *faultFile) Sync() error {
	if err := f.h.enter(OpFileSync, f.name); err != nil {
		return err
	}
	return f.File.Sync()
}

// Close closes the file also when a fault fails the call.
func (f *faultFile) Close() error {
	ferr := f.h.enter(OpFileClose, f.name)
	err := f.File.Close()
	if ferr != nil {
		return ferr
	}
	return err
}
