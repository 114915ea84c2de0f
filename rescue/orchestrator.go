package rescue

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"time"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/statemachine"
)

// Defaults of Config.
const (
	// DefaultPasswordLength is Nova's password_length option.
	DefaultPasswordLength = 12
	// DefaultLeaseTTL is how long a lease lasts between renewals.
	DefaultLeaseTTL = 30 * time.Second
	// DefaultAttempts is how many times a driver call is tried.
	DefaultAttempts = 3
	// DefaultRetryDelay is the pause between two tries of a driver call.
	DefaultRetryDelay = time.Second
	// DefaultOwner names the orchestrator when Config.Owner is empty.
	DefaultOwner = "rescue"
)

// System metadata keys the rescue flow keeps on the instance while it
// runs. They hold no secret.
const (
	// SysMetaRescueImageRef is the rescue image an interrupted rescue was
	// using.
	SysMetaRescueImageRef = "rescue_image_ref"
	// SysMetaPreRescueVMState is the vm_state the instance had before the
	// rescue (Nova reads it back as "active" on unrescue whatever it was).
	SysMetaPreRescueVMState = "pre_rescue_vm_state"
)

// ImageChecker says whether an image exists. A rescue checks its image
// before anything changes.
type ImageChecker interface {
	// ImageExists reports whether ref names an image the driver can
	// boot a rescue guest from on the compute host.
	ImageExists(ctx context.Context, host, ref string) (bool, error)
}

// Driver is the part of compute.Driver a rescue and an unrescue call;
// every compute.Driver is one.
type Driver interface {
	GetInfo(ctx context.Context, req compute.InstanceRequest) (compute.InstanceInfo, error)
	PowerOff(ctx context.Context, req compute.PowerOffRequest) error
	Rescue(ctx context.Context, req compute.RescueRequest) error
	Unrescue(ctx context.Context, req compute.InstanceRequest) error
}

// Config is what an Orchestrator needs. Store and Driver are required.
type Config struct {
	Store  compute.Store
	Driver Driver
	// Notifier receives Nova's notifications; nil drops them.
	Notifier compute.Notifier
	// Images checks the rescue image; nil accepts any non-empty ref.
	Images ImageChecker
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Rand is the randomness passwords and request IDs are drawn from
	// (crypto/rand when nil).
	Rand io.Reader
	// Owner names this orchestrator in the leases it takes.
	Owner string
	// LeaseTTL is the lease period (DefaultLeaseTTL when zero); the lease
	// is renewed every third of it while a driver call runs.
	LeaseTTL time.Duration
	// PasswordLength is the length of a generated rescue password
	// (DefaultPasswordLength when zero).
	PasswordLength int
	// RescueTimeout is Nova's rescue_timeout: Poll unrescues instances
	// rescued longer than it. Zero turns Poll off, as in Nova.
	RescueTimeout time.Duration
	// Attempts is how many times a failing driver call is tried before
	// the flow gives up on it (DefaultAttempts when zero); the driver's
	// calls are idempotent, so a retry finishes what a transient XenAPI
	// failure interrupted.
	Attempts int
	// RetryDelay is the pause between two tries (DefaultRetryDelay when
	// zero; negative means none).
	RetryDelay time.Duration
	// CleanShutdown is passed to the driver when a failed rescue of a
	// stopped instance powers the original off again.
	CleanShutdown bool
	// Logger receives debug logs; nil is silent. Passwords are never
	// logged.
	Logger *slog.Logger
}

// Orchestrator runs rescues and unrescues. It is safe for concurrent use;
// several orchestrators may share one Store, and leases keep each
// instance's operation with one of them.
type Orchestrator struct {
	store    compute.Store
	driver   Driver
	notifier compute.Notifier
	images   ImageChecker
	now      func() time.Time
	rand     io.Reader
	owner    string
	ttl      time.Duration
	pwLen    int
	timeout  time.Duration
	attempts int
	delay    time.Duration
	clean    bool
	log      *slog.Logger
	machine  *statemachine.FlowMachine
}

// New checks cfg and returns an Orchestrator.
func New(cfg Config) (*Orchestrator, error) {
	if cfg.Store == nil {
		return nil, &ConfigError{Field: "Store", Reason: "nil"}
	}
	if cfg.Driver == nil {
		return nil, &ConfigError{Field: "Driver", Reason: "nil"}
	}
	if cfg.LeaseTTL < 0 {
		return nil, &ConfigError{Field: "LeaseTTL", Reason: "negative"}
	}
	if cfg.PasswordLength < 0 || cfg.PasswordLength > 255 {
		return nil, &ConfigError{Field: "PasswordLength", Reason: "outside 0..255"}
	}
	if cfg.PasswordLength > 0 && cfg.PasswordLength < len(symbolGroups) {
		return nil, &ConfigError{Field: "PasswordLength", Reason: "shorter than the number of symbol groups (3)"}
	}
	if cfg.Attempts < 0 {
		return nil, &ConfigError{Field: "Attempts", Reason: "negative"}
	}
	if cfg.RescueTimeout < 0 {
		return nil, &ConfigError{Field: "RescueTimeout", Reason: "negative"}
	}
	o := &Orchestrator{store: cfg.Store, driver: cfg.Driver, notifier: cfg.Notifier, images: cfg.Images,
		now: cfg.Now, rand: cfg.Rand, owner: cfg.Owner, ttl: cfg.LeaseTTL, pwLen: cfg.PasswordLength,
		timeout: cfg.RescueTimeout, attempts: cfg.Attempts, delay: cfg.RetryDelay, clean: cfg.CleanShutdown, log: cfg.Logger,
		machine: rescueMachine()}
	if o.notifier == nil {
		o.notifier = compute.NopNotifier{}
	}
	if o.now == nil {
		o.now = time.Now
	}
	if o.rand == nil {
		o.rand = rand.Reader
	}
	if o.owner == "" {
		o.owner = DefaultOwner
	}
	if o.ttl == 0 {
		o.ttl = DefaultLeaseTTL
	}
	if o.attempts == 0 {
		o.attempts = DefaultAttempts
	}
	switch {
	case o.delay == 0:
		o.delay = DefaultRetryDelay
	case o.delay < 0:
		o.delay = 0
	}
	if o.pwLen == 0 {
		o.pwLen = DefaultPasswordLength
	}
	if o.log == nil {
		o.log = slog.New(discard{})
	}
	return o, nil
}

// discard is a slog.Handler that drops everything.
type discard struct{}

func (discard) Enabled(context.Context, slog.Level) bool  { return false }
func (discard) Handle(context.Context, slog.Record) error { return nil }
func (d discard) WithAttrs([]slog.Attr) slog.Handler      { return d }
func (d discard) WithGroup(string) slog.Handler           { return d }

// ErrRescue matches every error of this package's own types.
var ErrRescue = errors.New("rescue")
