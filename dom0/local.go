package dom0

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"syscall"
	"time"

	"github.com/xenflow/xenflow/vhd"
)

// LocalHost is a Host whose root is a directory on this machine: the
// simulated pool's hosts (xenapitest lays each out as <dir>/<host>/ standing
// for its dom0 root), or dom0 itself when the controller runs there (root "/").
//
// File operations map a host path under the root: "/var/run/sr-mount/x"
// is <root>/var/run/sr-mount/x. The root is a namespace, not a security
// boundary: a symbolic link inside it may point outside.
//
// Run executes the program on this machine with <root> as the working
// directory. Arguments are passed unchanged, so an absolute path in an
// argument names a file of this machine, not one under the root: pass
// RunPath(name) (relative to the root) to name a host file, which is also
// what the SSH implementation expects.
type LocalHost struct {
	root string
}

var _ Host = (*LocalHost)(nil)

// Local returns a Host rooted at dir, which must be an existing directory.
func Local(dir string) (*LocalHost, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, &OpError{Host: "local:" + dir, Op: "open root", Err: err}
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, &OpError{Host: "local:" + abs, Op: "open root", Err: unwrapPathErr(err)}
	}
	if !fi.IsDir() {
		return nil, &OpError{Host: "local:" + abs, Op: "open root", Err: fmt.Errorf("not a directory")}
	}
	return &LocalHost{root: abs}, nil
}

// Root returns the directory that stands for the host's "/".
func (h *LocalHost) Root() string { return h.root }

// String names the host: "local:" and its root directory.
func (h *LocalHost) String() string { return "local:" + h.root }

func (h *LocalHost) real(name string) string {
	return filepath.Join(h.root, filepath.FromSlash(hostPath(name)))
}

func (h *LocalHost) opErr(op, name string, err error) error {
	if err == nil {
		return nil
	}
	return &OpError{Host: h.String(), Op: op, Path: hostPath(name), Err: unwrapPathErr(err)}
}

// unwrapPathErr drops *fs.PathError and *os.LinkError wrappers, whose paths
// are this machine's and not the host's.
func unwrapPathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return le.Err
	}
	return err
}

// localFile wraps *os.File so that errors name the host path.
type localFile struct {
	f    *os.File
	h    *LocalHost
	name string
}

func (f *localFile) ReadAt(p []byte, off int64) (int, error) {
	n, err := f.f.ReadAt(p, off)
	if err != nil && !errors.Is(err, io.EOF) {
		err = f.h.opErr("read", f.name, err)
	}
	return n, err
}

func (f *localFile) WriteAt(p []byte, off int64) (int, error) {
	n, err := f.f.WriteAt(p, off)
	return n, f.h.opErr("write", f.name, err)
}

func (f *localFile) Close() error { return f.h.opErr("close", f.name, f.f.Close()) }

func (f *localFile) Stat() (fs.FileInfo, error) {
	fi, err := f.f.Stat()
	return fi, f.h.opErr("stat", f.name, err)
}

func (f *localFile) Truncate(size int64) error {
	return f.h.opErr("truncate", f.name, f.f.Truncate(size))
}

func (f *localFile) Sync() error { return f.h.opErr("sync", f.name, f.f.Sync()) }

// Open opens a file for reading.
func (h *LocalHost) Open(name string) (vhd.File, error) {
	return h.OpenFile(name, os.O_RDONLY, 0)
}

// OpenFile opens a file with os.OpenFile's flags.
func (h *LocalHost) OpenFile(name string, flag int, perm fs.FileMode) (vhd.File, error) {
	f, err := os.OpenFile(h.real(name), flag, perm)
	if err != nil {
		return nil, h.opErr("open", name, err)
	}
	return &localFile{f: f, h: h, name: hostPath(name)}, nil
}

// Stat describes a file or directory.
func (h *LocalHost) Stat(name string) (fs.FileInfo, error) {
	fi, err := os.Stat(h.real(name))
	return fi, h.opErr("stat", name, err)
}

// Rename moves oldname to newname, replacing newname.
func (h *LocalHost) Rename(oldname, newname string) error {
	err := os.Rename(h.real(oldname), h.real(newname))
	return h.opErr("rename", hostPath(oldname)+" -> "+hostPath(newname), err)
}

// Link makes newname a hard link to oldname.
func (h *LocalHost) Link(oldname, newname string) error {
	err := os.Link(h.real(oldname), h.real(newname))
	return h.opErr("link", hostPath(oldname)+" -> "+hostPath(newname), err)
}

// Remove deletes a file or an empty directory.
func (h *LocalHost) Remove(name string) error {
	if hostPath(name) == "/" {
		return h.opErr("remove", name, errors.New("refusing to remove the root"))
	}
	return h.opErr("remove", name, os.Remove(h.real(name)))
}

// RemoveAll deletes name and everything under it.
func (h *LocalHost) RemoveAll(name string) error {
	if hostPath(name) == "/" {
		return h.opErr("remove all", name, errors.New("refusing to remove the root"))
	}
	return h.opErr("remove all", name, os.RemoveAll(h.real(name)))
}

// MkdirAll creates a directory and its missing parents.
func (h *LocalHost) MkdirAll(name string, perm fs.FileMode) error {
	return h.opErr("mkdir", name, os.MkdirAll(h.real(name), perm))
}

// ReadDir lists a directory, sorted by name.
func (h *LocalHost) ReadDir(name string) ([]fs.DirEntry, error) {
	ents, err := os.ReadDir(h.real(name))
	if err != nil {
		return nil, h.opErr("read dir", name, err)
	}
	sort.Slice(ents, func(i, j int) bool { return ents[i].Name() < ents[j].Name() })
	return ents, nil
}

// Chmod changes permission bits.
func (h *LocalHost) Chmod(name string, mode fs.FileMode) error {
	return h.opErr("chmod", name, os.Chmod(h.real(name), mode))
}

// Truncate changes a file's length.
func (h *LocalHost) Truncate(name string, size int64) error {
	return h.opErr("truncate", name, os.Truncate(h.real(name), size))
}

// Run executes argv on this machine with the root as working directory.
func (h *LocalHost) Run(ctx context.Context, argv []string) ([]byte, []byte, error) {
	if err := checkArgv(argv); err != nil {
		return nil, nil, &OpError{Host: h.String(), Op: "run", Path: runName(argv), Err: err}
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = h.root
	// Cancelling kills the command's whole process group (a shell
	// pipeline's members too), and Run returns even if something still
	// holds its output open.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	stdout := &limitedBuffer{max: MaxRunOutput}
	stderr := &limitedBuffer{max: MaxRunOutput}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	err := cmd.Run()
	out, errOut := stdout.buf.Bytes(), stderr.buf.Bytes()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			x := &ExitError{Host: h.String(), Argv: append([]string(nil), argv...), Code: ee.ExitCode(), Stderr: firstLine(errOut, 4096)}
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				x.Code, x.Signal = -1, ws.Signal().String()
			}
			if ctx.Err() != nil {
				return out, errOut, &OpError{Host: h.String(), Op: "run", Path: argv[0], Err: errors.Join(ctx.Err(), x)}
			}
			return out, errOut, x
		}
		return out, errOut, &OpError{Host: h.String(), Op: "run", Path: argv[0], Err: err}
	}
	if stdout.overflow || stderr.overflow {
		return out, errOut, &OpError{Host: h.String(), Op: "run", Path: argv[0], Err: ErrOutputTooLong}
	}
	return out, errOut, nil
}

// Close does nothing for a local host.
func (h *LocalHost) Close() error { return nil }
