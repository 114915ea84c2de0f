package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/migrate"
	"github.com/xenflow/xenflow/quota"
	sm "github.com/xenflow/xenflow/statemachine"
	"github.com/xenflow/xenflow/xenapi/xenapitest"
)

// job is one run of the orchestrator over a driver: the move, the disk
// check, the confirm or revert, the summary and the trace.
type job struct {
	cfg    *config
	stdout io.Writer
	driver compute.Driver
	hosts  []string
	inst   *compute.Instance
	// from is the instance's flavor, to the one it moves to (equal for
	// a cold migration).
	from, to *compute.Flavor
	// callLog is the pool's XenAPI call log (nil for a real pool).
	callLog func() []xenapitest.CallRecord
	// guest writes during the move (nil for a real pool).
	guest *guestDisk
	// verify checks the instance's disk where its VM is and returns the
	// VDI's uuid.
	verify func(ctx context.Context) (string, error)
	// verified says how the check is made, for the summary.
	verified string
	layout   string
	// base is the length of the call log when the job began.
	base int
	// db holds the Store and the quota ledger.
	db *stores
	// loaded is set when the instance came from a durable Store (an
	// earlier run's), not from the pool.
	loaded bool
	// owner names this orchestrator in leases.
	owner string
}

// measure is what the run measures of the move.
type measure struct {
	mu          sync.Mutex
	info        compute.DiskInfo
	offAt, onAt time.Time
	writes      int
}

// downtime is from the power-off to the destination guest's start, or the
// driver's figure when the power-off was not seen.
func (m *measure) downtime() time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.offAt.IsZero() || m.onAt.IsZero() {
		return m.info.Downtime
	}
	return m.onAt.Sub(m.offAt)
}

// hooks starts the guest's writer with the move and stops it at the
// power-off, and takes the times and the disk info.
func (j *job) hooks(m *measure) moveHooks {
	var stop chan struct{}
	var once sync.Once
	var wg sync.WaitGroup
	halt := func() { once.Do(func() { close(stop) }) }
	return moveHooks{
		moveStarted: func() {
			stop, once = make(chan struct{}), sync.Once{}
			if j.guest == nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				n := j.guest.keepWriting(stop, guestInterval)
				m.mu.Lock()
				m.writes += n
				m.mu.Unlock()
			}()
		},
		poweredOff: func() {
			m.mu.Lock()
			m.offAt = time.Now()
			m.mu.Unlock()
			halt()
		},
		moveDone: func(info compute.DiskInfo, _ error) {
			halt()
			wg.Wait()
			m.mu.Lock()
			m.info = info
			m.mu.Unlock()
		},
		finished: func(error) {
			m.mu.Lock()
			m.onAt = time.Now()
			m.mu.Unlock()
		},
	}
}

// operation names what the run does.
func (j *job) operation() string {
	switch {
	case j.cfg.migrate && j.cfg.suspend:
		return "migrate-suspended"
	case j.cfg.migrate:
		return "migrate"
	case j.cfg.down:
		return "resize-down"
	default:
		return "resize-up"
	}
}

// run does the job and prints the summary last.
func (j *job) run(ctx context.Context) error {
	if j.cfg.suspend && !j.driver.Capabilities().SupportsSuspendMigrate {
		return &UnavailableError{Flag: "-migrate -suspend",
			Reason: "the driver does not support suspended cold migration (compute.DriverCapabilities.SupportsSuspendMigrate is false)"}
	}
	rep := &reporter{w: j.stdout, terminal: isTerminal(j.stdout)}
	obs := &observer{now: time.Now, onEvent: rep.event}
	if j.callLog != nil {
		obs.mark = func() int { return len(j.callLog()) }
		j.base = obs.mark()
	}
	m := &measure{}
	orch, store, err := j.orchestrator(ctx, obs, rep, m)
	if err != nil {
		return err
	}
	switch {
	case j.cfg.resume:
		return resume(ctx, orch, j.stdout)
	case j.loaded && j.inst.VMState == sm.VMResized:
		return j.finishLeft(ctx, orch, rep)
	case j.cfg.confirmLeft:
		return &UsageError{Flag: "-confirm", Reason: fmt.Sprintf("no resize of %s waits in VERIFY_RESIZE in the -db Store", j.inst.Name)}
	}
	rep.line("xenflow resize: %s", j.layout)
	rep.line("instance  %s (%s) on %s, flavor %s -> %s", j.inst.Name, j.inst.UUID, j.inst.Host, j.from.ID, j.to.ID)
	rep.line("state     vm_state/task_state/migration status")
	o, err := j.operate(ctx, orch, obs, rep)
	if err != nil {
		return err
	}
	inst, err := store.GetInstance(ctx, j.inst.UUID)
	if err != nil {
		return err
	}
	if err := j.writeTrace(obs, o.res); err != nil {
		return err
	}
	return j.summary(o, inst.Host, m).print(j.stdout, j.cfg.jsonOut)
}

// outcome is how the operation ended.
type outcome struct {
	res *migrate.Result
	// final is the final state, name what ended it: confirmed, reverted
	// or verify_resize.
	final, name string
	// total is the time the orchestrator took, the disk checks left out.
	total time.Duration
}

// operate moves the instance, checks its disk on the destination,
// confirms or reverts (checking the source again after a revert).
func (j *job) operate(ctx context.Context, orch *migrate.Orchestrator, obs *observer, rep *reporter) (*outcome, error) {
	start := time.Now()
	res, err := j.move(ctx, orch)
	rep.endBar()
	if err != nil {
		return nil, err
	}
	o := &outcome{res: res, total: time.Since(start)}
	if err := j.check(ctx, obs, rep, res.DestHost); err != nil {
		return nil, err
	}
	start = time.Now()
	if o.final, o.name, err = j.finish(ctx, orch, res); err != nil {
		return nil, err
	}
	o.total += time.Since(start)
	if j.cfg.revert {
		if err := j.check(ctx, obs, rep, res.SourceHost); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// orchestrator builds the Store (observed), the quota ledger, the
// observed driver and the orchestrator, with the instance created.
func (j *job) orchestrator(ctx context.Context, obs *observer, rep *reporter, m *measure) (*migrate.Orchestrator, compute.Store, error) {
	store := &observedStore{Store: j.db.store, obs: obs}
	if !j.loaded && !j.cfg.resume {
		if err := store.CreateInstance(ctx, j.inst); err != nil {
			return nil, nil, err
		}
		if _, err := j.db.ledger.Reconcile(ctx, j.inst.ProjectID, []quota.Charge{migrate.Charge(j.inst)}); err != nil {
			return nil, nil, err
		}
	}
	owner := j.owner
	if owner == "" {
		owner = "examples-resize"
	}
	drv := &observedDriver{Driver: j.driver, obs: obs, hooks: j.hooks(m)}
	orch, err := migrate.New(migrate.Config{Store: store, Driver: drv, Quota: j.db.ledger,
		Flavors: j.flavors(), Hosts: j.hosts, Owner: owner, LeaseTTL: j.cfg.leaseTTL,
		Options: migrate.Options{CleanShutdown: true, Progress: rep.progress}})
	return orch, store, err
}

// flavors are the flavors the orchestrator knows: the run's two and, for
// a move an earlier run left, the instance's old and new ones.
func (j *job) flavors() migrate.Flavors {
	fl := migrate.Flavors{}
	for _, f := range []*compute.Flavor{j.from, j.to} {
		if f != nil {
			fl[f.ID] = f
		}
	}
	if j.inst != nil {
		for _, f := range []*compute.Flavor{j.inst.Flavor, j.inst.OldFlavor, j.inst.NewFlavor} {
			if f != nil {
				fl[f.ID] = f
			}
		}
	}
	return fl
}

// finishLeft confirms or reverts a resize an earlier run left in
// VERIFY_RESIZE in the durable Store.
func (j *job) finishLeft(ctx context.Context, orch *migrate.Orchestrator, rep *reporter) error {
	if !j.cfg.confirmLeft && !j.cfg.revert {
		return &WaitingResizeError{VM: j.inst.Name, Pending: "give -confirm or -revert to finish it"}
	}
	rep.line("instance  %s (%s) on %s left in VERIFY_RESIZE by an earlier run", j.inst.Name, j.inst.UUID, j.inst.Host)
	final, name, err := j.finish(ctx, orch, &migrate.Result{InstanceUUID: j.inst.UUID})
	rep.endBar()
	if err != nil {
		return err
	}
	inst, err := j.db.store.GetInstance(ctx, j.inst.UUID)
	if err != nil {
		return err
	}
	fmt.Fprintf(j.stdout, "%s: instance %s %s on %s\n", name, inst.UUID, final, inst.Host)
	return nil
}

// move resizes or cold-migrates the instance to VERIFY_RESIZE.
func (j *job) move(ctx context.Context, orch *migrate.Orchestrator) (*migrate.Result, error) {
	if j.cfg.migrate {
		return orch.Migrate(ctx, migrate.MigrateRequest{InstanceUUID: j.inst.UUID, Suspend: j.cfg.suspend})
	}
	return orch.Resize(ctx, migrate.ResizeRequest{InstanceUUID: j.inst.UUID, FlavorID: j.to.ID})
}

// check verifies the instance's disk on host.
func (j *job) check(ctx context.Context, obs *observer, rep *reporter, host string) error {
	obs.add(event{Kind: evCheckBegin, Host: host})
	vdi, err := j.verify(ctx)
	obs.add(event{Kind: evCheckEnd, Host: host, Err: err})
	if err != nil {
		return fmt.Errorf("checking the disk on %s: %w", host, err)
	}
	if j.guest != nil {
		rep.line("verified  root disk %s on %s equals what the guest wrote (%d writes)", vdi, host, j.guest.count())
	} else {
		rep.line("verified  root disk %s on %s: %s", vdi, host, j.verified)
	}
	return nil
}

// finish confirms, reverts or leaves the move as the flags say, and
// returns the final state and the outcome's name.
func (j *job) finish(ctx context.Context, orch *migrate.Orchestrator, res *migrate.Result) (string, string, error) {
	req := migrate.ActionRequest{InstanceUUID: res.InstanceUUID}
	switch {
	case j.cfg.noConfirm:
		return res.State.String(), "verify_resize", nil
	case j.cfg.revert:
		r, err := orch.Revert(ctx, req)
		if err != nil {
			return "", "", fmt.Errorf("revert: %w", err)
		}
		return r.State.String(), "reverted", nil
	default:
		r, err := orch.Confirm(ctx, req)
		if err != nil {
			return "", "", fmt.Errorf("confirm: %w", err)
		}
		return r.State.String(), "confirmed", nil
	}
}

// summary assembles the last line.
func (j *job) summary(o *outcome, host string, m *measure) *summary {
	m.mu.Lock()
	info, writes := m.info, m.writes
	m.mu.Unlock()
	verified := j.verified
	if j.guest != nil {
		verified = "byte for byte against the guest's writes"
	}
	return &summary{Operation: j.operation(), Instance: j.inst.UUID, FromFlavor: j.from.ID, ToFlavor: j.to.ID,
		SourceHost: o.res.SourceHost, DestHost: o.res.DestHost, Outcome: o.name, State: o.final, Host: host,
		Transport: info.Transport, BytesSentRunning: info.BytesSentRunning,
		BytesSentPoweredOff: info.BytesSent - info.BytesSentRunning,
		DowntimeSeconds:     m.downtime().Seconds(), TotalSeconds: o.total.Seconds(), GuestWrites: writes,
		Verified: verified}
}

// writeTrace writes the Mermaid diagram when -trace asks for it.
func (j *job) writeTrace(obs *observer, res *migrate.Result) error {
	if j.cfg.trace == "" {
		return nil
	}
	var calls []xenapitest.CallRecord
	if j.callLog != nil {
		calls = j.callLog()
	}
	doc := traceDiagram(obs.list(), calls, j.base, res.SourceHost, res.DestHost)
	if strings.HasSuffix(j.cfg.trace, ".md") {
		doc = traceMarkdown(doc)
	}
	if err := os.WriteFile(j.cfg.trace, []byte(doc), 0o644); err != nil {
		return fmt.Errorf("-trace: %w", err)
	}
	return nil
}
