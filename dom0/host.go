package dom0

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/xenflow/xenflow/vhd"
)

// Host is a XenServer host's control domain (dom0): its file tree, seen with
// the host's own absolute paths (/var/run/sr-mount/<sr-uuid>/<vdi-uuid>.vhd),
// and the commands it can run.
//
// Names are slash-separated. A relative name is taken relative to the host's
// root directory, so "var/run/sr-mount" and "/var/run/sr-mount" are the same
// file on every implementation; ".." never climbs above the root.
//
// A Host is safe for concurrent use by several goroutines; files opened from
// it are safe for concurrent ReadAt and WriteAt calls.
type Host interface {
	vhd.FS

	// Chmod changes the permission bits of a file or directory.
	Chmod(name string, mode fs.FileMode) error
	// Truncate changes the length of a file.
	Truncate(name string, size int64) error
	// RemoveAll deletes a file or a directory and everything in it. A missing
	// name is not an error.
	RemoveAll(name string) error
	// Run executes argv (no shell: argv[0] is the program, the rest its
	// arguments, each passed as one word) with the host's root directory as
	// working directory, and returns what it wrote to standard output and
	// standard error (each at most MaxRunOutput bytes). A command that exits
	// with a non-zero status gives an *ExitError. Because the working
	// directory is the root, a relative path (RunPath) names the same file
	// for Run as for the file operations on every implementation.
	Run(ctx context.Context, argv []string) (stdout, stderr []byte, err error)
	// Close releases the host's connection; files opened from it stop
	// working.
	Close() error
	// String names the host for messages ("root@10.0.0.2:22", "local:/tmp/x").
	String() string
}

// MaxRunOutput bounds the standard output and the standard error that Run
// keeps from one command. A command that writes more gives an error wrapping
// ErrOutputTooLong.
const MaxRunOutput = 4 << 20

// ErrOutputTooLong is wrapped by Run when a command writes more than
// MaxRunOutput bytes to standard output or standard error.
var ErrOutputTooLong = errors.New("dom0: command output too long")

// ErrConnectionLost is wrapped by operations on an SSH host whose connection
// was found dead (no answer to keepalives, or closed by the peer).
var ErrConnectionLost = errors.New("dom0: connection lost")

// ErrBadArgument is wrapped by Run's error when a command cannot reach the
// host unchanged: an argument holds a NUL byte (which ends a C string, and
// which sshd answers by dropping the whole connection) or is longer than
// MaxArgLen. Nothing is sent.
var ErrBadArgument = errors.New("dom0: argument cannot be passed to a command")

// MaxArgLen bounds one argument of Run, and over SSH the whole quoted
// command line: Linux's limit on one string given to a program
// (MAX_ARG_STRLEN, 128 KiB with its NUL), which also applies to the
// command line sshd hands to the login shell as one argument.
const MaxArgLen = 128<<10 - 1

// maxPathLen bounds a path sent to a host: Linux's PATH_MAX.
const maxPathLen = 4096

// checkArgv refuses an empty command and arguments Run cannot pass on.
func checkArgv(argv []string) error {
	if len(argv) == 0 || argv[0] == "" {
		return errors.New("empty command")
	}
	for i, a := range argv {
		if strings.IndexByte(a, 0) >= 0 {
			return fmt.Errorf("%w: argument %d holds a NUL byte", ErrBadArgument, i)
		}
		if len(a) > MaxArgLen {
			return fmt.Errorf("%w: argument %d is %d bytes, more than %d", ErrBadArgument, i, len(a), MaxArgLen)
		}
	}
	return nil
}

// runName is the program of argv, shortened, for error messages.
func runName(argv []string) string {
	if len(argv) == 0 {
		return ""
	}
	return clip(strings.ReplaceAll(argv[0], "\x00", "\\x00"))
}

// ExitError reports a command that ran and exited with a non-zero status (or
// was killed by a signal, Code -1).
type ExitError struct {
	Host   string   // the host that ran it
	Argv   []string // the command
	Code   int      // exit status; -1 when killed by a signal
	Signal string   // the signal's name when Code is -1
	Stderr []byte   // the start of its standard error
}

func (e *ExitError) Error() string {
	msg := strings.TrimSpace(string(firstLine(e.Stderr, 200)))
	prog := ""
	if len(e.Argv) > 0 {
		prog = e.Argv[0]
	}
	how := fmt.Sprintf("exit status %d", e.Code)
	if e.Code == -1 {
		how = "killed by signal " + e.Signal
	}
	if msg != "" {
		return fmt.Sprintf("dom0 %s: %s: %s: %s", e.Host, prog, how, msg)
	}
	return fmt.Sprintf("dom0 %s: %s: %s", e.Host, prog, how)
}

func firstLine(b []byte, max int) []byte {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	}
	if len(b) > max {
		b = b[:max]
	}
	return b
}

// OpError reports a failed file or command operation on a host: which host,
// what operation, on which path.
type OpError struct {
	Host string // the host, as Host.String gives it
	Op   string // "open", "rename", "link", "run", ...
	Path string // the name in the host's namespace (for rename and link: "old -> new")
	Err  error  // the cause; errors.Is(err, fs.ErrNotExist) and the like work through it
}

func (e *OpError) Error() string {
	if e.Path == "" {
		return fmt.Sprintf("dom0 %s: %s: %v", e.Host, e.Op, e.Err)
	}
	return fmt.Sprintf("dom0 %s: %s %s: %v", e.Host, e.Op, e.Path, e.Err)
}

// Unwrap returns the cause.
func (e *OpError) Unwrap() error { return e.Err }

// hostPath cleans a name into the host's absolute namespace: always starting
// with "/", never climbing above it.
func hostPath(name string) string {
	return path.Clean("/" + name)
}

// RunPath turns a host path into the form to pass to Host.Run: relative to
// the root, which is Run's working directory on every implementation
// ("/var/run/sr-mount/x" becomes "./var/run/sr-mount/x"; "/" becomes ".").
func RunPath(name string) string {
	p := hostPath(name)
	if p == "/" {
		return "."
	}
	return "." + p
}

// limitedBuffer keeps at most max bytes and remembers that more came.
type limitedBuffer struct {
	buf      bytes.Buffer
	max      int
	overflow bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	room := b.max - b.buf.Len()
	if len(p) > room {
		b.overflow = true
		if room > 0 {
			b.buf.Write(p[:room])
		}
		return len(p), nil
	}
	b.buf.Write(p)
	return len(p), nil
}
