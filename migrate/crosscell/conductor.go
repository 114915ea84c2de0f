package crosscell

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/migrate"
	"github.com/xenflow/xenflow/scheduler"
	sm "github.com/xenflow/xenflow/statemachine"
)

// System metadata keys a cross-cell move keeps with both copies of the
// instance, so that Resume finds what the tasks need.
const (
	// SysMetaSourceCell and SysMetaTargetCell name the move's cells.
	SysMetaSourceCell = "xenflow_source_cell"
	SysMetaTargetCell = "xenflow_target_cell"
	// SysMetaAlternates are the alternate hosts of the target cell,
	// comma-separated, best first.
	SysMetaAlternates = "xenflow_alternates"
	// SysMetaSnapshot is the image the source's root disk was
	// snapshotted to.
	SysMetaSnapshot = "xenflow_snapshot_image"
	// SysMetaRollback is set, with the failed task and its error, before
	// the tasks' rollbacks run.
	SysMetaRollback = "xenflow_crosscell_rollback"
)

// Policy holds the policy rules of a move.
type Policy struct {
	// AllowCrossCellResize is Nova's compute:servers:resize:cross_cell
	// rule: false (the default) keeps every move in its cell.
	AllowCrossCellResize bool
	// AllowEphemeralLoss lets an instance with ephemeral disks leave its
	// cell, as Nova does: the destination gets blank ephemeral disks and
	// the data of the source's is gone once the move is confirmed. False
	// (the default) keeps such an instance's moves in its cell, where
	// its ephemeral disks travel with it.
	AllowEphemeralLoss bool
}

// Config is what a Conductor is built from.
type Config struct {
	// Cells are the cells, each with its Store, driver and hosts.
	Cells []Cell
	// API is the API database.
	API     APIStore
	Quota   migrate.Ledger
	Flavors migrate.FlavorSource
	// Scheduler is the filter scheduler's configuration, shared by the
	// cells (scheduler.DefaultConfig when nil); its CrossCellWeigher
	// prefers the source cell.
	Scheduler *scheduler.Config
	Notifier  compute.Notifier
	// Now is the clock (time.Now when nil); Rand the randomness of UUIDs
	// (crypto/rand when nil).
	Now  func() time.Time
	Rand io.Reader
	// Owner names this conductor in the cells' leases.
	Owner string
	// LeaseTTL is how long a lease lasts without renewal (30 s when 0).
	LeaseTTL time.Duration
	Logger   *slog.Logger
	Policy   Policy
	// Options are the same-cell orchestrators' options; the conductor
	// reads ResizeConfirmWindow for the cross-cell moves' auto-confirm.
	Options migrate.Options
}

// Conductor runs resizes and cold migrations within and across cells.
type Conductor struct {
	cells    map[string]*Cell
	same     map[string]*migrate.Orchestrator
	api      APIStore
	ledger   migrate.Ledger
	flavors  migrate.FlavorSource
	sched    *scheduler.Scheduler
	flow     *sm.FlowMachine
	pre      map[sm.Operation]sm.Precondition
	notifier compute.Notifier
	now      func() time.Time
	owner    string
	ttl      time.Duration
	log      *slog.Logger
	policy   Policy
	// confirmWindow is resize_confirm_window (PollAutoConfirm).
	confirmWindow time.Duration

	randMu sync.Mutex
	rand   io.Reader

	activeMu sync.Mutex
	active   map[string]bool

	// claims are the destinations' resources held by moves in progress.
	claims claimSet
}

// New builds a Conductor, with one same-cell orchestrator per cell.
func New(cfg Config) (*Conductor, error) {
	if err := checkConfig(cfg); err != nil {
		return nil, err
	}
	c := &Conductor{cells: map[string]*Cell{}, same: map[string]*migrate.Orchestrator{}, api: cfg.API,
		ledger: cfg.Quota, flavors: cfg.Flavors, notifier: cfg.Notifier, now: cfg.Now, owner: cfg.Owner,
		ttl: cfg.LeaseTTL, log: cfg.Logger, policy: cfg.Policy, rand: cfg.Rand, active: map[string]bool{},
		pre: map[sm.Operation]sm.Precondition{}, confirmWindow: cfg.Options.ResizeConfirmWindow}
	c.setDefaults()
	sc := scheduler.DefaultConfig()
	if cfg.Scheduler != nil {
		sc = *cfg.Scheduler
	}
	var err error
	if c.sched, err = scheduler.New(sc); err != nil {
		return nil, fmt.Errorf("crosscell: scheduler: %w", err)
	}
	if c.flow, err = flowMachine(); err != nil {
		return nil, err
	}
	for _, op := range []sm.Operation{sm.OpCrossCellResize, sm.OpConfirmResize, sm.OpRevertResize} {
		if c.pre[op], err = sm.LookupPrecondition(op); err != nil {
			return nil, err
		}
	}
	for i := range cfg.Cells {
		cell := cfg.Cells[i]
		o, err := migrate.New(migrate.Config{Store: sameCellStore{cell.Store}, Driver: c.sameCellDriver(&cell), Quota: cfg.Quota,
			Flavors: cfg.Flavors, Hosts: cell.Hosts, Scheduler: cfg.Scheduler, Notifier: cfg.Notifier, Now: cfg.Now,
			Rand: cfg.Rand, Owner: cfg.Owner, LeaseTTL: cfg.LeaseTTL, Logger: cfg.Logger, Options: cfg.Options})
		if err != nil {
			return nil, fmt.Errorf("crosscell: cell %s: %w", cell.Name, err)
		}
		c.cells[cell.Name], c.same[cell.Name] = &cell, o
	}
	return c, nil
}

func checkConfig(cfg Config) error {
	switch {
	case len(cfg.Cells) == 0:
		return &ConfigError{Field: "Cells", Reason: "none"}
	case cfg.API == nil:
		return &ConfigError{Field: "API", Reason: "missing"}
	case cfg.Quota == nil:
		return &ConfigError{Field: "Quota", Reason: "missing"}
	case cfg.Flavors == nil:
		return &ConfigError{Field: "Flavors", Reason: "missing"}
	case cfg.Owner == "":
		return &ConfigError{Field: "Owner", Reason: "empty"}
	case cfg.LeaseTTL < 0:
		return &ConfigError{Field: "LeaseTTL", Reason: "negative"}
	}
	seen := map[string]bool{}
	for i, cell := range cfg.Cells {
		field := fmt.Sprintf("Cells[%d]", i)
		switch {
		case cell.Name == "" || seen[cell.Name]:
			return &ConfigError{Field: field + ".Name", Reason: "empty or repeated"}
		case cell.Store == nil:
			return &ConfigError{Field: field + ".Store", Reason: "missing"}
		case cell.Driver == nil:
			return &ConfigError{Field: field + ".Driver", Reason: "missing"}
		}
		if _, err := cell.destroyer(); err != nil {
			return err
		}
		seen[cell.Name] = true
	}
	return nil
}

func (c *Conductor) setDefaults() {
	if c.notifier == nil {
		c.notifier = compute.NopNotifier{}
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.rand == nil {
		c.rand = rand.Reader
	}
	if c.ttl == 0 {
		c.ttl = 30 * time.Second
	}
	if c.log == nil {
		c.log = slog.New(discard{})
	}
}

// flowMachine returns the cross-cell flow's table.
func flowMachine() (*sm.FlowMachine, error) {
	m := sm.LookupFlow(sm.FlowCrossCellResize).Machine()
	if m == nil {
		return nil, fmt.Errorf("crosscell: flow %s has no table", sm.FlowCrossCellResize)
	}
	return m, nil
}

// newUUID returns a random (version 4) UUID.
func (c *Conductor) newUUID() (string, error) {
	var b [16]byte
	c.randMu.Lock()
	_, err := io.ReadFull(c.rand, b[:])
	c.randMu.Unlock()
	if err != nil {
		return "", fmt.Errorf("crosscell: randomness: %w", err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:], nil
}

// lock keeps one operation per instance within this conductor (the cells'
// leases cannot tell two goroutines of one owner apart).
func (c *Conductor) lock(uuid string) error {
	c.activeMu.Lock()
	defer c.activeMu.Unlock()
	if c.active[uuid] {
		return &compute.LeaseHeldError{InstanceUUID: uuid, Holder: c.owner}
	}
	c.active[uuid] = true
	return nil
}

func (c *Conductor) unlock(uuid string) {
	c.activeMu.Lock()
	delete(c.active, uuid)
	c.activeMu.Unlock()
}

// cell returns the named cell or an *UnknownCellError.
func (c *Conductor) cell(uuid, name string) (*Cell, error) {
	cell, ok := c.cells[name]
	if !ok {
		return nil, &UnknownCellError{InstanceUUID: uuid, Cell: name}
	}
	return cell, nil
}

// locate reads the instance mapping and the copy in the mapped cell: a
// *NoCopyError when that cell holds none.
func (c *Conductor) locate(ctx context.Context, uuid string) (*Cell, *compute.Instance, error) {
	m, err := c.api.GetMapping(ctx, uuid)
	if err != nil {
		return nil, nil, err
	}
	cell, err := c.cell(uuid, m.Cell)
	if err != nil {
		return nil, nil, err
	}
	inst, err := cell.Store.GetInstance(ctx, uuid)
	if isNotFound(err) {
		return nil, nil, &NoCopyError{InstanceUUID: uuid, Cell: m.Cell, Err: err}
	}
	return cell, inst, err
}

// SameCell returns the same-cell orchestrator of the named cell, for the
// operations that never leave it (PollAutoConfirm). It does not see the
// cross-cell moves' copies and migrations.
func (c *Conductor) SameCell(name string) (*migrate.Orchestrator, bool) {
	o, ok := c.same[name]
	return o, ok
}

// discard is a slog.Handler that drops everything.
type discard struct{}

func (discard) Enabled(context.Context, slog.Level) bool  { return false }
func (discard) Handle(context.Context, slog.Record) error { return nil }
func (d discard) WithAttrs([]slog.Attr) slog.Handler      { return d }
func (d discard) WithGroup(string) slog.Handler           { return d }
