package migrate

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/quota"
	"github.com/xenflow/xenflow/scheduler"
	"github.com/xenflow/xenflow/statemachine"
)

// Ledger is the part of a *quota.Ledger the orchestrator uses.
type Ledger interface {
	Reserve(ctx context.Context, project, user string, deltas quota.Deltas) (string, error)
	Commit(ctx context.Context, id string) error
	Rollback(ctx context.Context, id string) error
}

// FlavorSource finds flavors by their flavorid.
type FlavorSource interface {
	// Flavor returns the flavor, or an error matching compute.ErrNotFound.
	Flavor(ctx context.Context, id string) (*compute.Flavor, error)
}

// Flavors is a FlavorSource over a fixed set of flavors, keyed by ID.
type Flavors map[string]*compute.Flavor

// Flavor implements [FlavorSource].
func (f Flavors) Flavor(_ context.Context, id string) (*compute.Flavor, error) {
	if fl, ok := f[id]; ok && fl != nil {
		return fl.Clone(), nil
	}
	return nil, &compute.NotFoundError{Kind: "flavor", ID: id}
}

// Config is what an Orchestrator is built from.
type Config struct {
	// Store keeps the instances, migrations, actions, faults and leases.
	Store  compute.Store
	Driver compute.Driver
	// Quota is the ledger resize deltas are reserved in.
	Quota   Ledger
	Flavors FlavorSource
	// Hosts are the compute hosts the scheduler chooses among.
	Hosts []string
	// Scheduler is the filter scheduler's configuration; its MaxAttempts
	// is Nova's [scheduler]max_attempts. Zero means scheduler.DefaultConfig.
	Scheduler *scheduler.Config
	// Notifier receives Nova's notifications (compute.NopNotifier when nil).
	Notifier compute.Notifier
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// AfterFunc calls f once d has passed on the clock Now reads and
	// returns a function that cancels the call (time.AfterFunc's Stop);
	// the lease keep-alive of every operation is scheduled on it. When
	// nil, time.AfterFunc. A caller that injects Now injects AfterFunc on
	// the same clock.
	AfterFunc func(d time.Duration, f func()) (stop func() bool)
	// Rand is the randomness source for UUIDs, request ids and the
	// scheduler's subset choice (crypto/rand when nil). It is read under
	// a lock.
	Rand io.Reader
	// Owner names this orchestrator in leases; it must differ between
	// orchestrators sharing a Store.
	Owner string
	// LeaseTTL is how long a lease lasts without renewal (30 s when 0).
	LeaseTTL time.Duration
	// Logger receives the orchestrator's log (silent when nil).
	Logger  *slog.Logger
	Options Options
}

// Options are Nova's configuration options the flows read, and
// xenflow's own.
type Options struct {
	// AllowResizeToSameHost is Nova's allow_resize_to_same_host.
	AllowResizeToSameHost bool
	// AllowMigrateToSameHost lets a cold migration stay on its host.
	AllowMigrateToSameHost bool
	// ResizeConfirmWindow is Nova's resize_confirm_window: resizes left
	// in VERIFY_RESIZE longer than this are confirmed by PollAutoConfirm;
	// 0 (the default) turns auto-confirm off.
	ResizeConfirmWindow time.Duration
	// NovaCompatibleErrors ends in vm_state error wherever Nova does,
	// instead of rolling back to the intact source. The instance is then
	// named on the host that holds its guest: after a failed finish that
	// is the source, whose guest is restored powered off (Nova leaves the
	// destination named, bug 1825537, with nothing there to reboot).
	NovaCompatibleErrors bool
	// RecoveryAttempts is how often a step of a rollback (which has no
	// further way back) is tried before the instance is put in error
	// (3 when 0).
	RecoveryAttempts int
	// CleanShutdown asks the driver for a clean shutdown before the disks'
	// last copy, hard after ShutdownTimeout (60 s when 0).
	CleanShutdown   bool
	ShutdownTimeout time.Duration
	// Progress, when not nil, receives the progress of every operation.
	Progress func(ProgressEvent)
	// HostRefresh is how long the scheduler reuses the hosts' states
	// between reads from the driver, consuming each choice from them as
	// Nova's host manager does between compute updates
	// (consume_from_request); 0 reads them for every choice. The
	// destination's claim always reads its host afresh.
	HostRefresh time.Duration
}

// ProgressEvent is the progress of one operation.
type ProgressEvent struct {
	InstanceUUID  string
	MigrationUUID string
	// Percent is 0..100 in Nova's steps (RESIZE_TOTAL_STEPS = 5 of
	// nova/virt/xenapi/vmops.py): 0 prep, 20..80 the disk move, 100 done.
	Percent int
	// Step names what is happening: a flow step or the driver's step.
	Step string
	// State is the instance's state when the event was sent.
	State statemachine.FlowState
	// BytesSent and BytesSentRunning count the disk bytes moved, all and
	// while the guest ran.
	BytesSent        int64
	BytesSentRunning int64
}

// Orchestrator runs resizes, cold migrations, confirms and reverts. It is
// safe for concurrent use.
type Orchestrator struct {
	store    compute.Store
	driver   compute.Driver
	watcher  compute.HostStateWatcher
	ledger   Ledger
	flavors  FlavorSource
	hosts    []string
	sched    *scheduler.Scheduler
	maxTries int
	notifier compute.Notifier
	now      func() time.Time
	// afterFunc schedules the lease keep-alive on the clock now reads.
	afterFunc func(time.Duration, func()) func() bool
	owner     string
	ttl       time.Duration
	log       *slog.Logger
	opts      Options
	caps      compute.DriverCapabilities
	machines  machines
	// pre are the API preconditions of the operations, looked up once.
	pre map[statemachine.Operation]statemachine.Precondition

	randMu sync.Mutex
	rand   io.Reader

	// schedMu makes a choice of host and its claim one step, and guards
	// the cached host states.
	schedMu   sync.Mutex
	hostSet   *scheduler.HostSet
	hostSetAt time.Time
	claimMu   sync.Mutex
	claims    map[string]claim // by migration UUID

	activeMu sync.Mutex
	active   map[string]bool // instances this orchestrator is driving
}

// claim is a destination's resources held by a move in progress on this
// orchestrator (Nova's MoveClaim in the resource tracker).
type claim struct {
	host   string
	flavor scheduler.Flavor
}

// ConfigError says which field of a Config is unusable.
type ConfigError struct {
	Field  string
	Reason string
}

// Error implements the error interface.
func (e *ConfigError) Error() string {
	return fmt.Sprintf("migrate: config %s: %s", e.Field, e.Reason)
}

// New builds an Orchestrator from cfg.
func New(cfg Config) (*Orchestrator, error) {
	switch {
	case cfg.Store == nil:
		return nil, &ConfigError{Field: "Store", Reason: "missing"}
	case cfg.Driver == nil:
		return nil, &ConfigError{Field: "Driver", Reason: "missing"}
	case cfg.Quota == nil:
		return nil, &ConfigError{Field: "Quota", Reason: "missing"}
	case cfg.Flavors == nil:
		return nil, &ConfigError{Field: "Flavors", Reason: "missing"}
	case cfg.Owner == "":
		return nil, &ConfigError{Field: "Owner", Reason: "empty"}
	case cfg.LeaseTTL < 0:
		return nil, &ConfigError{Field: "LeaseTTL", Reason: "negative"}
	case cfg.Options.ResizeConfirmWindow < 0:
		return nil, &ConfigError{Field: "Options.ResizeConfirmWindow", Reason: "negative"}
	}
	o := &Orchestrator{store: cfg.Store, driver: cfg.Driver, ledger: cfg.Quota, flavors: cfg.Flavors,
		hosts: append([]string(nil), cfg.Hosts...), notifier: cfg.Notifier, now: cfg.Now, afterFunc: cfg.AfterFunc,
		owner: cfg.Owner,
		ttl:   cfg.LeaseTTL, log: cfg.Logger, opts: cfg.Options, rand: cfg.Rand, claims: map[string]claim{},
		active: map[string]bool{}}
	o.watcher, _ = cfg.Driver.(compute.HostStateWatcher)
	o.caps = cfg.Driver.Capabilities()
	o.setDefaults()
	sc := scheduler.DefaultConfig()
	if cfg.Scheduler != nil {
		sc = *cfg.Scheduler
	}
	s, err := scheduler.New(sc, scheduler.WithRand(o.intn))
	if err != nil {
		return nil, fmt.Errorf("migrate: scheduler: %w", err)
	}
	o.sched, o.maxTries = s, sc.MaxAttempts
	o.machines = buildMachines()
	o.pre = map[statemachine.Operation]statemachine.Precondition{}
	for _, op := range []statemachine.Operation{statemachine.OpResize, statemachine.OpMigrate,
		statemachine.OpConfirmResize, statemachine.OpRevertResize} {
		if o.pre[op], err = statemachine.LookupPrecondition(op); err != nil {
			return nil, err
		}
	}
	return o, nil
}

func (o *Orchestrator) setDefaults() {
	if o.notifier == nil {
		o.notifier = compute.NopNotifier{}
	}
	if o.now == nil {
		o.now = time.Now
	}
	if o.afterFunc == nil {
		o.afterFunc = func(d time.Duration, f func()) func() bool { return time.AfterFunc(d, f).Stop }
	}
	if o.rand == nil {
		o.rand = rand.Reader
	}
	if o.ttl == 0 {
		o.ttl = 30 * time.Second
	}
	if o.log == nil {
		o.log = slog.New(discard{})
	}
	if o.opts.RecoveryAttempts <= 0 {
		o.opts.RecoveryAttempts = 3
	}
	if o.opts.ShutdownTimeout == 0 {
		o.opts.ShutdownTimeout = 60 * time.Second
	}
}

// discard is a slog.Handler that drops everything.
type discard struct{}

func (discard) Enabled(context.Context, slog.Level) bool  { return false }
func (discard) Handle(context.Context, slog.Record) error { return nil }
func (d discard) WithAttrs([]slog.Attr) slog.Handler      { return d }
func (d discard) WithGroup(string) slog.Handler           { return d }

// randomBytes fills b from the randomness source.
func (o *Orchestrator) randomBytes(b []byte) error {
	o.randMu.Lock()
	defer o.randMu.Unlock()
	_, err := io.ReadFull(o.rand, b)
	return err
}

// intn is the scheduler's random choice; on a failing source it picks 0
// (the best host), which is Nova's choice with host_subset_size 1.
func (o *Orchestrator) intn(n int) int {
	var b [8]byte
	if n <= 1 || o.randomBytes(b[:]) != nil {
		return 0
	}
	return int(binary.LittleEndian.Uint64(b[:]) % uint64(n))
}

// newUUID returns a random (version 4) UUID.
func (o *Orchestrator) newUUID() (string, error) {
	var b [16]byte
	if err := o.randomBytes(b[:]); err != nil {
		return "", fmt.Errorf("migrate: randomness: %w", err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	hex.Encode(s[9:13], b[4:6])
	hex.Encode(s[14:18], b[6:8])
	hex.Encode(s[19:23], b[8:10])
	hex.Encode(s[24:], b[10:])
	s[8], s[13], s[18], s[23] = '-', '-', '-', '-'
	return string(s[:]), nil
}
