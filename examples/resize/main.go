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
	"time"

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
	exitFail  = cli.ExitFail  // the operation or the pool failed
	exitUsage = cli.ExitUsage // bad flags
)

// exitStatus prints err (unless it is -h) and returns the exit status.
func exitStatus(err error, stderr io.Writer) int { return cli.ExitStatus("resize", err, stderr) }

// UsageError is a flag or a combination of flags the command refuses
// before it does anything.
type UsageError = cli.UsageError

// UnavailableError is a flag the command understands but cannot serve
// with the driver it runs: what is missing and why.
type UnavailableError struct {
	Flag   string
	Reason string
}

// Error implements the error interface.
func (e *UnavailableError) Error() string { return e.Flag + " is not available: " + e.Reason }

// VerifyError is a destination disk that differs from what the guest
// wrote, at the first differing byte.
type VerifyError struct {
	VDI    string
	Offset int64
	Want   byte
	Got    byte
}

// Error implements the error interface.
func (e *VerifyError) Error() string {
	return fmt.Sprintf("destination disk %s differs at byte %d: want %#02x, got %#02x", e.VDI, e.Offset, e.Want, e.Got)
}

// urlList collects repeated -xapi URLs.
type urlList []string

func (u *urlList) String() string { return strings.Join(*u, ",") }

// Set adds one URL.
func (u *urlList) Set(s string) error {
	if !strings.HasPrefix(s, "http://") && !strings.HasPrefix(s, "https://") {
		return fmt.Errorf("%q is not an http:// or https:// URL", s)
	}
	*u = append(*u, s)
	return nil
}

// config is what the flags ask for.
type config struct {
	revert, migrate, suspend, down bool
	noConfirm, confirmLeft         bool
	jsonOut                        bool
	hosts                          int
	diskMiB                        int64
	transport                      string
	serve, trace                   string

	xapi                     urlList
	user, passwordFile, vm   string
	memoryMiB, vcpus, rootGi int
	sshKey, knownHosts       string

	// db is the -db DSN (memory when empty), owner and leaseTTL the
	// orchestrator's lease owner and lease period.
	crossCell bool
	db        string
	resume    bool
	owner     string
	leaseTTL  time.Duration
	// submit records resizes of every VM for workers; worker runs one
	// of the orchestrators that do them, parallel operations at once.
	submit, worker bool
	parallel       int
}

// real reports whether the run is against pools given with -xapi.
func (c *config) real() bool { return len(c.xapi) > 0 }

const usageText = `usage: resize [flags]

Resizes an instance with xenflow's orchestrator (package migrate) and
XenServer driver (package xenserver), prints each state transition and
the progress, checks the moved disk, and ends with a one-line summary.

With no -xapi: a simulated pool of -hosts hosts with local SRs is built in
a temporary directory and served on 127.0.0.1; an instance whose root disk
is a VHD chain of several layers is resized up from one host to another
while its guest keeps writing; the destination disk is compared byte for
byte with what the guest wrote; the resize is confirmed.

With -xapi URL (one per pool): the VM -vm is adopted as the instance and
resized to the flavor -memory-mib, -vcpus and -root-gib give (its own
sizes where a flag is left out). A host is named by its name_label, as
<pool>.<name_label> (pool1, pool2, ... in -xapi order) when several pools
are given. The xapi transport needs nothing but each pool's XenAPI
endpoint; the dom0 transport (-transport dom0: VHD chains copied between
the hosts' control domains over SSH/SFTP, as root at each host's address,
port 22) needs -ssh-key and -known-hosts as well. On the simulated pool
-transport dom0 reaches each host's control domain as a local directory.

The Store and the quota ledger are in memory unless -db names a database
(package sqlstore): a SQLite file ("state.db") or PostgreSQL
("postgres://user@host/db"). With -db and -xapi a resize left in
VERIFY_RESIZE by -no-confirm is confirmed or reverted by a later run with
the same -db and -confirm or -revert, and -resume drives to its end every
operation a stopped run left unfinished in that database (a resize,
cold migration, confirm or revert), prints each outcome and exits.

Several orchestrators share the work on one database (PostgreSQL for
several processes): -submit adopts every guest VM of the -xapi pools as
an instance and records in the Store a resize of each to the flavor
-memory-mib, -vcpus and -root-gib give, and exits; each -worker process
(its own -owner) then loops: it takes over the operations whose leases
expired (-lease-ttl), resizes and confirms the recorded instances no
one else holds, -parallel at a time, waits for a notification of new
work when the rest are held, and exits when every one is done. With -db
every lease and step is in the database's fence log (package sqlstore).

-cross-cell moves the instance from cell1 (a simulated pool of 2 hosts)
to cell2 (another pool of 2 hosts) with the cross-cell Conductor, and
checks its disk in the pool that runs it.

Flags:
`

// parseFlags parses args; -h gives flag.ErrHelp, anything else wrong a
// *UsageError.
func parseFlags(args []string, stderr io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("resize", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usageText)
		fs.PrintDefaults()
	}
	fs.BoolVar(&c.revert, "revert", false, "revert the resize instead of confirming it")
	fs.BoolVar(&c.migrate, "migrate", false, "cold-migrate (same flavor) instead of resizing")
	fs.BoolVar(&c.suspend, "suspend", false, "with -migrate: move the guest suspended, so it keeps its running state (needs a driver that supports it)")
	fs.BoolVar(&c.down, "down", false, "resize down: memory and vCPUs shrink")
	fs.IntVar(&c.hosts, "hosts", 2, "simulated pool: number of hosts")
	fs.Int64Var(&c.diskMiB, "disk-mib", 64, "simulated pool: size of the instance's root disk in MiB")
	fs.StringVar(&c.transport, "transport", "xapi", "disk transport: xapi or dom0")
	fs.BoolVar(&c.jsonOut, "json", false, "print the summary as one JSON object on the last line")
	fs.StringVar(&c.serve, "serve", "", "simulated pool: serve it at `ADDR` (host:port) and, after the run, until interrupted")
	fs.StringVar(&c.trace, "trace", "", "write the run as a Mermaid sequence diagram to `FILE` (a Markdown page when it ends in .md; with -xapi without XenAPI calls: a real pool keeps no call log)")
	fs.Var(&c.xapi, "xapi", "XenAPI `URL` of a real pool (repeatable, one per pool)")
	fs.StringVar(&c.user, "user", "root", "real pool: user name")
	fs.StringVar(&c.passwordFile, "password-file", "", "real pool: `FILE` holding the password")
	fs.StringVar(&c.vm, "vm", "", "real pool: name_label or uuid of the VM to adopt as the instance")
	fs.IntVar(&c.memoryMiB, "memory-mib", 0, "real pool: the new flavor's memory in MiB (0: the VM's)")
	fs.IntVar(&c.vcpus, "vcpus", 0, "real pool: the new flavor's vCPUs (0: the VM's)")
	fs.IntVar(&c.rootGi, "root-gib", 0, "real pool: the new flavor's root disk in GiB (0: the VM's)")
	fs.StringVar(&c.sshKey, "ssh-key", "", "dom0 transport: private key `FILE` for the hosts' control domains")
	fs.StringVar(&c.knownHosts, "known-hosts", "", "dom0 transport: known_hosts `FILE` for the hosts' control domains")
	fs.BoolVar(&c.noConfirm, "no-confirm", false, "leave the instance in VERIFY_RESIZE")
	fs.BoolVar(&c.confirmLeft, "confirm", false, "confirm a resize an earlier run left in VERIFY_RESIZE (needs its -db; see above)")
	fs.BoolVar(&c.crossCell, "cross-cell", false, "simulated pools: move the instance from cell1 (one pool of 2 hosts) to cell2 (another pool of 2 hosts) with migrate/crosscell's Conductor")
	fs.StringVar(&c.db, "db", "", "keep the Store and quota in `DSN`: a SQLite file, or postgres://... (default: in memory)")
	fs.BoolVar(&c.resume, "resume", false, "with -db and -xapi: finish every operation left unfinished in the database, print the outcomes and exit")
	fs.StringVar(&c.owner, "owner", "examples-resize", "the orchestrator's name in the Store's leases")
	fs.BoolVar(&c.submit, "submit", false, "with -db and -xapi: record a resize of every guest VM of the pools for -worker processes and exit")
	fs.BoolVar(&c.worker, "worker", false, "with -db and -xapi: do the resizes -submit recorded, with the other workers, until none is left")
	fs.IntVar(&c.parallel, "parallel", 1, "with -worker: operations driven at once")
	fs.DurationVar(&c.leaseTTL, "lease-ttl", 0, "how long the orchestrator's lease on an instance lasts without renewal (0: the orchestrator's default, 30s)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, &UsageError{Flag: "flags", Reason: err.Error()}
	}
	if fs.NArg() != 0 {
		return nil, &UsageError{Flag: "arguments", Reason: fmt.Sprintf("unexpected %q", fs.Args())}
	}
	return c, c.check()
}

// check refuses combinations that cannot work.
func (c *config) check() error {
	switch {
	case c.hosts < 2:
		return &UsageError{Flag: "-hosts", Reason: "a move needs at least 2 hosts"}
	case c.diskMiB < 8 || c.diskMiB > 2040<<10:
		return &UsageError{Flag: "-disk-mib", Reason: fmt.Sprintf("%d is outside 8..%d", c.diskMiB, 2040<<10)}
	case c.transport != "xapi" && c.transport != "dom0":
		return &UsageError{Flag: "-transport", Reason: fmt.Sprintf("%q: want xapi or dom0", c.transport)}
	case c.suspend && !c.migrate:
		return &UsageError{Flag: "-suspend", Reason: "only with -migrate (a resize changes the flavor, so the guest cannot keep its running state)"}
	case c.down && c.migrate:
		return &UsageError{Flag: "-down", Reason: "a cold migration keeps the flavor"}
	case c.revert && c.noConfirm:
		return &UsageError{Flag: "-revert", Reason: "-revert and -no-confirm exclude each other"}
	case c.confirmLeft && (c.revert || c.noConfirm):
		return &UsageError{Flag: "-confirm", Reason: "-confirm excludes -revert and -no-confirm"}
	case (c.resume || c.confirmLeft) && c.db == "":
		return &UsageError{Flag: "-resume/-confirm", Reason: "need -db: the memory Store keeps nothing between runs"}
	case c.resume && (c.confirmLeft || c.revert || c.noConfirm || c.migrate || c.down):
		return &UsageError{Flag: "-resume", Reason: "finishes what the database holds; it takes no operation flags"}
	case (c.submit || c.worker) && (c.db == "" || !c.real()):
		return &UsageError{Flag: "-submit/-worker", Reason: "need -db and -xapi: the workers share the database and the pools"}
	case (c.submit || c.worker) && (c.submit == c.worker || c.resume || c.vm != "" || c.confirmLeft || c.revert || c.noConfirm || c.migrate):
		return &UsageError{Flag: "-submit/-worker", Reason: "one of the two, without -resume, -vm, -confirm, -revert, -no-confirm or -migrate"}
	case c.parallel < 1 || (c.parallel > 1 && !c.worker):
		return &UsageError{Flag: "-parallel", Reason: "at least 1, and more only with -worker"}
	case c.crossCell && (c.real() || c.db != "" || c.down || c.suspend || c.transport != "xapi" || c.trace != "" || c.serve != ""):
		return &UsageError{Flag: "-cross-cell", Reason: "runs on its own two simulated pools with the xapi transport and a memory Store; not with -xapi, -db, -down, -suspend, -transport dom0, -trace or -serve"}
	case c.owner == "":
		return &UsageError{Flag: "-owner", Reason: "must not be empty"}
	case c.leaseTTL < 0:
		return &UsageError{Flag: "-lease-ttl", Reason: "must not be negative"}
	case c.memoryMiB < 0 || c.vcpus < 0 || c.rootGi < 0:
		return &UsageError{Flag: "-memory-mib/-vcpus/-root-gib", Reason: "must not be negative"}
	}
	if !c.real() {
		for _, f := range []struct {
			name string
			set  bool
		}{{"-vm", c.vm != ""}, {"-password-file", c.passwordFile != ""}, {"-memory-mib", c.memoryMiB != 0},
			{"-vcpus", c.vcpus != 0}, {"-root-gib", c.rootGi != 0}, {"-ssh-key", c.sshKey != ""},
			{"-known-hosts", c.knownHosts != ""}, {"-resume", c.resume}, {"-confirm", c.confirmLeft}} {
			if f.set {
				return &UsageError{Flag: f.name, Reason: "only with -xapi (a real pool)"}
			}
		}
		return nil
	}
	switch {
	case c.vm == "" && !c.resume && !c.submit && !c.worker:
		return &UsageError{Flag: "-vm", Reason: "required with -xapi"}
	case c.serve != "":
		return &UsageError{Flag: "-serve", Reason: "serves the simulated pool; not with -xapi"}
	case c.transport == "dom0" && (c.sshKey == "" || c.knownHosts == ""):
		return &UsageError{Flag: "-transport dom0", Reason: "with -xapi it needs -ssh-key and -known-hosts for the hosts' control domains"}
	case c.down:
		return &UsageError{Flag: "-down", Reason: "the simulated pool's flavors; with -xapi give the new sizes (-memory-mib, -vcpus, -root-gib)"}
	}
	return nil
}

// run parses args and runs the job; output goes to stdout, the usage and
// log to stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	if c.crossCell {
		return runCrossCell(ctx, c, stdout)
	}
	if c.real() {
		return runReal(ctx, c, stdout, stderr)
	}
	return runSimulated(ctx, c, stdout, stderr)
}
