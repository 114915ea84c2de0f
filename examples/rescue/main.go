package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/xenflow/xenflow/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	os.Exit(exitStatus(err, os.Stderr))
}

// Exit statuses.
const (
	exitOK    = cli.ExitOK    // the run ended as asked (also -h)
	exitFail  = cli.ExitFail  // the rescue, the unrescue or the pool failed
	exitUsage = cli.ExitUsage // bad flags
)

// exitStatus prints err (unless it is -h) and returns the exit status.
func exitStatus(err error, stderr io.Writer) int { return cli.ExitStatus("rescue", err, stderr) }

// UsageError is a flag or a combination of flags the command refuses
// before it does anything.
type UsageError = cli.UsageError

// config is what the flags ask for.
type config struct {
	jsonOut bool
	serve   string
	diskMiB int64

	xapi, user, passwordFile, vm, rescueImage string

	// db is the -db DSN (memory when empty); resume asks to finish what
	// it holds.
	db     string
	resume bool
}

// real reports whether the run is against a pool given with -xapi.
func (c *config) real() bool { return c.xapi != "" }

const usageText = `usage: rescue [flags]

Rescues an instance with xenflow's orchestrator (package rescue) and
XenServer driver (package xenserver), shows that the rescue VM works on the
instance's root disk, unrescues it, and ends with a one-line summary.

With no -xapi: a simulated pool of one host is built in a temporary
directory and served on 127.0.0.1, with an instance and a rescue image; a
marker written through the rescue VM's second disk is found on the
original's root disk after the unrescue.

With -xapi URL: the VM -vm of that pool is adopted as the instance and
rescued from the VDI -rescue-image.

The Store is in memory unless -db names a database (package sqlstore): a
SQLite file ("state.db") or PostgreSQL ("postgres://user@host/db"). With
-db and -xapi, -resume finishes every rescue and unrescue a stopped run
left unfinished in that database (the VM -vm names the host), prints the
outcome and exits.

Flags:
`

// parseFlags parses args; -h gives flag.ErrHelp, anything else wrong a
// *UsageError.
func parseFlags(args []string, stderr io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("rescue", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usageText)
		fs.PrintDefaults()
	}
	fs.BoolVar(&c.jsonOut, "json", false, "print the summary as one JSON object on the last line")
	fs.StringVar(&c.serve, "serve", "", "simulated pool: serve it at `ADDR` (host:port) and keep serving after the run until interrupted")
	fs.Int64Var(&c.diskMiB, "disk-mib", 16, "simulated pool: size of the instance's root disk in MiB")
	fs.StringVar(&c.xapi, "xapi", "", "a real pool: its XenAPI `URL` (http:// or https://)")
	fs.StringVar(&c.user, "user", "root", "a real pool: the XenAPI user")
	fs.StringVar(&c.passwordFile, "password-file", "", "a real pool: a `FILE` holding the password (its first line)")
	fs.StringVar(&c.vm, "vm", "", "a real pool: the VM to rescue, by `NAME-OR-UUID`")
	fs.StringVar(&c.rescueImage, "rescue-image", "", "a real pool: the `VDI-UUID` of the rescue image")
	fs.StringVar(&c.db, "db", "", "keep the Store in `DSN`: a SQLite file, or postgres://... (default: in memory)")
	fs.BoolVar(&c.resume, "resume", false, "with -db and -xapi: finish every rescue and unrescue left unfinished in the database and exit")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, &UsageError{Flag: "flags", Reason: err.Error()}
	}
	if fs.NArg() > 0 {
		return nil, &UsageError{Flag: "arguments", Reason: fmt.Sprintf("unexpected %q", strings.Join(fs.Args(), " "))}
	}
	return c, c.check()
}

// check refuses combinations that make no sense.
func (c *config) check() error {
	if c.diskMiB < 1 || c.diskMiB > 1<<20 {
		return &UsageError{Flag: "-disk-mib", Reason: "must be 1..1048576"}
	}
	if c.resume && c.db == "" {
		return &UsageError{Flag: "-resume", Reason: "needs -db: the memory Store keeps nothing between runs"}
	}
	if !c.real() {
		if c.resume {
			return &UsageError{Flag: "-resume", Reason: "needs -xapi: the simulated pool ends with its run"}
		}
		for flag, v := range map[string]string{"-vm": c.vm, "-password-file": c.passwordFile, "-rescue-image": c.rescueImage} {
			if v != "" {
				return &UsageError{Flag: flag, Reason: "needs -xapi"}
			}
		}
		return nil
	}
	if !strings.HasPrefix(c.xapi, "http://") && !strings.HasPrefix(c.xapi, "https://") {
		return &UsageError{Flag: "-xapi", Reason: fmt.Sprintf("%q is not an http:// or https:// URL", c.xapi)}
	}
	if c.serve != "" {
		return &UsageError{Flag: "-serve", Reason: "serves the simulated pool only; not with -xapi"}
	}
	for flag, v := range map[string]string{"-vm": c.vm, "-password-file": c.passwordFile, "-rescue-image": c.rescueImage} {
		if v == "" && !(c.resume && flag == "-rescue-image") {
			return &UsageError{Flag: flag, Reason: "required with -xapi"}
		}
	}
	return nil
}

// run is the command.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	if c.real() {
		return runReal(ctx, c, stdout)
	}
	return runSimulated(ctx, c, stdout)
}
