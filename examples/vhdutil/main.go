package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/xenflow/xenflow/vhd"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// Exit statuses.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
	exitInvalid = 22 // EINVAL, what vhd-util returns for a bad VHD
)

const usage = `usage: vhdutil COMMAND [OPTIONS]
commands:
  create   -n FILE -s MiB [-r]
  snapshot -n CHILD -p PARENT
  query    -n FILE [-v] [-s] [-p] [-f] [-d] [-a]
  modify   -n FILE -p PARENT
  set      -n FILE -f hidden -v 0|1
  check    -n FILE [-t] [-I] [-b]
  coalesce -n FILE
  read     -n FILE -o RAW|-     (a file is written sparsely; - is stdout)
  write    -n FILE -i RAW -O BYTE_OFFSET
  resize   -n FILE -s MiB
  import   -d STAGING_DIR -s SR_DIR
           (staged files still hard-linked into the SR they were staged
           from are refused: relinking them would rewrite that SR's disks;
           copy the staging directory, or import on the destination host)
  stage    -s SR_DIR -u LEAF_UUID -d STAGING_DIR [-q FIRST_SEQ] [-l DEPTH]
  scan     -d DIR
`

// usageError is a command-line mistake.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// run executes one vhdutil command line and returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	cmd, ok := commands[args[0]]
	if !ok {
		if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
			fmt.Fprint(stdout, usage)
			return exitOK
		}
		fmt.Fprintf(stderr, "vhdutil: unknown command %q\n%s", args[0], usage)
		return exitUsage
	}
	fs := flag.NewFlagSet("vhdutil "+args[0], flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c := &cmdline{fs: fs, stdout: stdout, stderr: stderr}
	bind := cmd(c)
	rest := args[1:]
	if args[0] == "query" {
		rest = splitShortFlags(rest, "vspfda")
	}
	if err := fs.Parse(rest); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, usage)
			return exitOK
		}
		fmt.Fprintf(stderr, "vhdutil %s: %v\n", args[0], err)
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "vhdutil %s: unexpected argument %q\n", args[0], fs.Arg(0))
		return exitUsage
	}
	err := bind()
	if err == nil {
		return exitOK
	}
	code := exitFailure
	var ue usageError
	switch {
	case errors.As(err, &ue):
		code = exitUsage
	case invalid(err):
		code = exitInvalid
	}
	if !errors.As(err, new(reported)) {
		fmt.Fprintf(stderr, "vhdutil %s: %v\n", args[0], err)
	}
	return code
}

// reported is an error a command has already told the user about (check's
// "FILE is invalid: reason" on stdout, as vhd-util prints it): run takes
// the exit status from it and prints nothing more.
type reported struct{ error }

func (r reported) Unwrap() error { return r.error }

// invalid reports whether err means a bad VHD or chain (vhd-util's EINVAL).
func invalid(err error) bool {
	var fe *vhd.FormatError
	var pe *vhd.ParentError
	for _, s := range []error{vhd.ErrNotVHD, vhd.ErrChecksum, vhd.ErrTruncated, vhd.ErrCorrupt,
		vhd.ErrParentNotFound, vhd.ErrParentMismatch, vhd.ErrParentLoop, vhd.ErrChainTooDeep,
		vhd.ErrSequenceGap, vhd.ErrStagingName, vhd.ErrHiddenLeaf, vhd.ErrChainIncomplete,
		vhd.ErrUnsafeName, vhd.ErrEmptyStaging, vhd.ErrInvalidArgument, vhd.ErrNotDifferencing, vhd.ErrOutOfRange, vhd.ErrHardLinked} {
		if errors.Is(err, s) {
			return true
		}
	}
	return errors.As(err, &fe) || errors.As(err, &pe)
}

// splitShortFlags turns "-vsfp" into "-v -s -f -p" when every letter is one
// of letters.
func splitShortFlags(args []string, letters string) []string {
	var out []string
	for _, a := range args {
		if len(a) > 2 && a[0] == '-' && a[1] != '-' && strings.Trim(a[1:], letters) == "" {
			for _, r := range a[1:] {
				out = append(out, "-"+string(r))
			}
			continue
		}
		out = append(out, a)
	}
	return out
}

// cmdline is one command being parsed and run.
type cmdline struct {
	fs             *flag.FlagSet
	stdout, stderr io.Writer
}

// localFS is the whole local tree; file arguments are made absolute.
var localFS = vhd.DirFS("/")

// name turns a command-line path into a name in localFS.
func name(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	return filepath.ToSlash(abs), nil
}

// need returns the named file arguments as names in localFS, or a usage
// error naming the first missing flag.
func need(flags ...[2]string) ([]string, error) {
	out := make([]string, len(flags))
	for i, f := range flags {
		if f[1] == "" {
			return nil, usagef("missing -%s", f[0])
		}
		n, err := name(f[1])
		if err != nil {
			return nil, err
		}
		out[i] = n
	}
	return out, nil
}

func mib(flagName string, v int64) (int64, error) {
	if v <= 0 || v > vhd.MaxVirtualSize>>20 {
		return 0, usagef("-%s %d: size in MiB must be between 1 and %d", flagName, v, vhd.MaxVirtualSize>>20)
	}
	return v, nil
}

var commands = map[string]func(c *cmdline) func() error{
	"create": func(c *cmdline) func() error {
		n := c.fs.String("n", "", "file")
		size := c.fs.Int64("s", 0, "size in MiB")
		fixed := c.fs.Bool("r", false, "fixed (raw) disk")
		return func() error {
			names, err := need([2]string{"n", *n})
			if err != nil {
				return err
			}
			m, err := mib("s", *size)
			if err != nil {
				return err
			}
			opts := &vhd.CreateOptions{Type: vhd.DiskDynamic}
			if *fixed {
				opts.Type = vhd.DiskFixed
			}
			d, err := vhd.Create(localFS, names[0], vhd.SizeFromMiB(m), opts)
			if err != nil {
				return err
			}
			return d.Close()
		}
	},
	"snapshot": func(c *cmdline) func() error {
		n := c.fs.String("n", "", "child")
		p := c.fs.String("p", "", "parent")
		return func() error {
			names, err := need([2]string{"n", *n}, [2]string{"p", *p})
			if err != nil {
				return err
			}
			d, err := vhd.Snapshot(localFS, names[0], names[1], nil)
			if err != nil {
				return err
			}
			return d.Close()
		}
	},
	"query": func(c *cmdline) func() error {
		n := c.fs.String("n", "", "file")
		v := c.fs.Bool("v", false, "virtual size in MiB")
		s := c.fs.Bool("s", false, "physical size in bytes")
		p := c.fs.Bool("p", false, "parent")
		f := c.fs.Bool("f", false, "hidden flag")
		d := c.fs.Bool("d", false, "chain depth")
		a := c.fs.Bool("a", false, "allocated blocks")
		return func() error {
			names, err := need([2]string{"n", *n})
			if err != nil {
				return err
			}
			if !*v && !*s && !*p && !*f && !*d && !*a {
				return usagef("one of -v -s -p -f -d -a is needed")
			}
			info, qerr := vhd.Query(localFS, names[0])
			if qerr != nil && info.UUID.IsZero() {
				return qerr // the file itself could not be read
			}
			if *v {
				fmt.Fprintln(c.stdout, info.VirtualSize>>20)
			}
			if *s {
				fmt.Fprintln(c.stdout, info.PhysicalSize)
			}
			if *p {
				switch {
				case info.Type != vhd.DiskDifferencing:
					fmt.Fprintf(c.stdout, "%s has no parent\n", *n)
				case info.Parent == "":
					fmt.Fprintln(c.stdout, "query failed")
					return qerr
				default:
					fmt.Fprintln(c.stdout, info.Parent)
				}
			}
			if *f {
				fmt.Fprintf(c.stdout, "hidden: %d\n", b2i(info.Hidden))
			}
			if *d {
				if qerr != nil {
					return qerr
				}
				fmt.Fprintf(c.stdout, "chain depth: %d\n", info.Depth)
			}
			if *a {
				disk, err := vhd.Open(localFS, names[0])
				if err != nil {
					return err
				}
				fmt.Fprintln(c.stdout, disk.AllocatedBlocks())
				disk.Close()
			}
			return nil
		}
	},
	"modify": func(c *cmdline) func() error {
		n := c.fs.String("n", "", "file")
		p := c.fs.String("p", "", "new parent")
		return func() error {
			names, err := need([2]string{"n", *n}, [2]string{"p", *p})
			if err != nil {
				return err
			}
			return vhd.SetParent(localFS, names[0], names[1])
		}
	},
	"set": func(c *cmdline) func() error {
		n := c.fs.String("n", "", "file")
		field := c.fs.String("f", "", "field")
		val := c.fs.String("v", "", "value")
		return func() error {
			names, err := need([2]string{"n", *n})
			if err != nil {
				return err
			}
			if *field != "hidden" {
				return usagef("-f %q: only hidden can be set", *field)
			}
			if *val != "0" && *val != "1" {
				return usagef("-v %q: hidden is 0 or 1", *val)
			}
			d, err := vhd.OpenFile(localFS, names[0], os.O_RDWR)
			if err != nil {
				return err
			}
			err = d.SetHidden(*val == "1")
			if cerr := d.Close(); err == nil {
				err = cerr
			}
			return err
		}
	},
	"check": func(c *cmdline) func() error {
		n := c.fs.String("n", "", "file")
		ignoreTS := c.fs.Bool("t", false, "ignore timestamps")
		ignoreParent := c.fs.Bool("I", false, "do not check the parent's UUID")
		data := c.fs.Bool("b", false, "check that no data sits where the bitmap is clear")
		return func() error {
			names, err := need([2]string{"n", *n})
			if err != nil {
				return err
			}
			opts := &vhd.CheckOptions{IgnoreTimestamps: *ignoreTS, IgnoreParentUUID: *ignoreParent, CheckData: *data}
			if err := vhd.CheckWithOptions(localFS, names[0], opts); err != nil {
				if !invalid(err) {
					return err // not a verdict: the file could not be read
				}
				fmt.Fprintf(c.stdout, "%s is invalid: %v\n", *n, err)
				return reported{err}
			}
			fmt.Fprintf(c.stdout, "%s is valid\n", *n)
			return nil
		}
	},
	"coalesce": func(c *cmdline) func() error {
		n := c.fs.String("n", "", "file")
		return func() error {
			names, err := need([2]string{"n", *n})
			if err != nil {
				return err
			}
			return vhd.Coalesce(localFS, names[0])
		}
	},
	"read": func(c *cmdline) func() error {
		n := c.fs.String("n", "", "file")
		o := c.fs.String("o", "", "raw output")
		return func() error {
			names, err := need([2]string{"n", *n}, [2]string{"o", *o})
			if err != nil {
				return err
			}
			return readRaw(names[0], *o, c.stdout)
		}
	},
	"write": func(c *cmdline) func() error {
		n := c.fs.String("n", "", "file")
		in := c.fs.String("i", "", "raw input")
		off := c.fs.Int64("O", 0, "byte offset")
		return func() error {
			names, err := need([2]string{"n", *n}, [2]string{"i", *in})
			if err != nil {
				return err
			}
			if *off < 0 {
				return usagef("-O %d: negative offset", *off)
			}
			return writeRaw(names[0], *in, *off)
		}
	},
	"resize": func(c *cmdline) func() error {
		n := c.fs.String("n", "", "file")
		size := c.fs.Int64("s", 0, "new size in MiB")
		return func() error {
			names, err := need([2]string{"n", *n})
			if err != nil {
				return err
			}
			m, err := mib("s", *size)
			if err != nil {
				return err
			}
			return vhd.Resize(localFS, names[0], m<<20)
		}
	},
	"import": func(c *cmdline) func() error {
		d := c.fs.String("d", "", "staging directory")
		s := c.fs.String("s", "", "SR directory")
		return func() error {
			names, err := need([2]string{"d", *d}, [2]string{"s", *s})
			if err != nil {
				return err
			}
			res, err := vhd.Import(context.Background(), localFS, names[0], names[1], nil)
			if err != nil {
				return err
			}
			fmt.Fprintln(c.stdout, res.Leaf)
			return nil
		}
	},
	"stage": func(c *cmdline) func() error {
		s := c.fs.String("s", "", "SR directory")
		u := c.fs.String("u", "", "leaf UUID")
		d := c.fs.String("d", "", "staging directory")
		first := c.fs.Int("q", 0, "first sequence number")
		depth := c.fs.Int("l", 0, "number of disks (0: the whole chain)")
		return func() error {
			names, err := need([2]string{"s", *s}, [2]string{"d", *d})
			if err != nil {
				return err
			}
			leaf, err := vhd.ParseUUID(*u)
			if err != nil {
				return usagef("-u %q: %v", *u, err)
			}
			files, err := vhd.Stage(context.Background(), localFS, names[0], leaf, names[1],
				&vhd.StageOptions{FirstSeq: *first, Depth: *depth})
			if err != nil {
				return err
			}
			for _, f := range files {
				fmt.Fprintf(c.stdout, "%s %s\n", f.Name, f.Source)
			}
			return nil
		}
	},
	"scan": func(c *cmdline) func() error {
		d := c.fs.String("d", "", "directory")
		return func() error {
			names, err := need([2]string{"d", *d})
			if err != nil {
				return err
			}
			ents, err := vhd.Scan(localFS, names[0])
			if err != nil {
				return err
			}
			for _, e := range ents {
				base := path.Base(e.Name)
				if e.Err != nil {
					fmt.Fprintf(c.stdout, "vhd=%s scan-error=%q\n", base, e.Err.Error())
					continue
				}
				parent := "none"
				if e.Parent != "" {
					parent = e.Parent
					if path.Dir(e.Parent) == path.Dir(e.Name) {
						parent = path.Base(e.Parent)
					}
				}
				fmt.Fprintf(c.stdout, "vhd=%s capacity=%d size=%d hidden=%d parent=%s\n",
					base, e.VirtualSize, e.PhysicalSize, b2i(e.Hidden), parent)
			}
			return nil
		}
	},
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// readRaw writes the virtual disk of the chain whose leaf is name to out:
// "-" is stdout, anything else a local file (created 0600: it holds a
// guest's disk).
func readRaw(name, out string, stdout io.Writer) (err error) {
	c, err := vhd.OpenChain(localFS, name)
	if err != nil {
		return err
	}
	defer c.Close()
	if out == "-" {
		_, err = c.WriteTo(stdout)
		return err
	}
	// Truncating the output must not destroy the chain being read.
	if oi, err := os.Stat(out); err == nil {
		for _, d := range c.Disks() {
			if di, err := os.Stat(filepath.FromSlash(d.Name())); err == nil && os.SameFile(oi, di) {
				return fmt.Errorf("-o %s is %s, a disk of the chain being read: %w", out, d.Name(), vhd.ErrInvalidArgument)
			}
		}
	}
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		// A pipe, a terminal or a device: every byte must be written.
		_, err = c.WriteTo(f)
		return err
	}
	return writeSparse(c, f)
}

// sparseFile is a freshly truncated regular file.
type sparseFile interface {
	io.WriterAt
	Truncate(size int64) error
}

// writeSparse copies the chain's virtual disk into f (empty), as qemu-img
// convert does: a block no disk of the chain allocates is not read, a
// block that reads as zeros is not written, and the file is truncated to
// the virtual size at the end, so both stay holes.
func writeSparse(c *vhd.Chain, f sparseFile) error {
	size := c.Size()
	chunk := c.Leaf().BlockSize()
	if chunk == 0 {
		chunk = vhd.DefaultBlockSize
	}
	buf, zero := make([]byte, chunk), make([]byte, chunk)
	for off := int64(0); off < size; off += chunk {
		n := min(chunk, size-off)
		used, err := c.Allocated(off, n)
		if err != nil {
			return err
		}
		if !used {
			continue
		}
		if _, err := c.ReadAt(buf[:n], off); err != nil && err != io.EOF {
			return err
		}
		if bytes.Equal(buf[:n], zero[:n]) {
			continue
		}
		if _, err := f.WriteAt(buf[:n], off); err != nil {
			return err
		}
	}
	return f.Truncate(size)
}

// writeRaw copies the local file in into name's virtual disk at off,
// through the chain so partial sectors of a differencing disk keep their
// parents' bytes.
func writeRaw(name, in string, off int64) (err error) {
	src, err := os.Open(in)
	if err != nil {
		return err
	}
	defer src.Close()
	c, err := vhd.OpenChainWithOptions(localFS, name, &vhd.ChainOptions{Writable: true})
	if err != nil {
		return err
	}
	defer func() {
		if cerr := c.Close(); err == nil {
			err = cerr
		}
	}()
	fi, err := src.Stat()
	if err != nil {
		return err
	}
	if off > c.Size() || fi.Size() > c.Size()-off {
		return fmt.Errorf("%s: %d bytes at offset %d pass the virtual size %d: %w", in, fi.Size(), off, c.Size(), vhd.ErrOutOfRange)
	}
	buf := make([]byte, vhd.DefaultBlockSize)
	for {
		n, rerr := io.ReadFull(src, buf)
		if n > 0 {
			if _, err := c.WriteAt(buf[:n], off); err != nil {
				return err
			}
			off += int64(n)
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}
