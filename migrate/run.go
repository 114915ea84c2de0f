package migrate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/xenflow/xenflow/compute"
	sm "github.com/xenflow/xenflow/statemachine"
)

// System metadata keys the orchestrator keeps with an instance while an
// operation is in progress, so that Resume finds what the steps need.
const (
	// SysMetaMigration is the UUID of the instance's current migration.
	SysMetaMigration = "xenflow_migration"
	// SysMetaRequestID is the request id of the instance action.
	SysMetaRequestID = "xenflow_request_id"
	// SysMetaTargetHost is the host a cold migration asked for.
	SysMetaTargetHost = "xenflow_target_host"
	// SysMetaSuspend is "true" for a cold migration with the guest suspended.
	SysMetaSuspend = "xenflow_suspend"
)

// run is one operation on one instance driven by this orchestrator under
// its lease.
type run struct {
	o    *Orchestrator
	op   sm.Operation
	flow sm.FlowName
	// lease is renewed by keepAlive from the run's start to its end.
	leaseMu sync.Mutex
	lease   compute.Lease
	inst    *compute.Instance
	mig     *compute.Migration
	// facts overrides the instance's facts for the next step when set.
	facts *sm.Facts
	// failure is the outcome error of a run that ended in a failure state.
	failure error
	// cause is the error that led to the failure outcome in progress.
	cause error
	// attempts counts the destinations prepped.
	attempts int
	// held are action events kept while the guest is powered off.
	held []compute.InstanceActionEvent
}

// acquire takes the lease on an instance; a lease held by another owner
// is returned as the *compute.LeaseHeldError. Within the orchestrator an
// instance is also locked (Nova's utils.synchronized(instance.uuid)): the
// Store cannot tell two goroutines of one owner apart, so a second
// operation on an instance this orchestrator is driving gets a
// *compute.LeaseHeldError naming this owner.
func (o *Orchestrator) acquire(ctx context.Context, uuid string) (compute.Lease, error) {
	o.activeMu.Lock()
	if o.active[uuid] {
		o.activeMu.Unlock()
		return compute.Lease{}, &compute.LeaseHeldError{InstanceUUID: uuid, Holder: o.owner}
	}
	o.active[uuid] = true
	o.activeMu.Unlock()
	l, err := o.store.AcquireLease(ctx, compute.LeaseRequest{InstanceUUID: uuid, Owner: o.owner, TTL: o.ttl})
	if err != nil {
		o.unlock(uuid)
	}
	return l, err
}

func (o *Orchestrator) unlock(uuid string) {
	o.activeMu.Lock()
	delete(o.active, uuid)
	o.activeMu.Unlock()
}

// release gives a lease up; failures only matter to the log, since the
// lease expires anyway. It waits at most the lease's lifetime: past it
// the release has nothing left to give up, and a Store that does not
// answer (a row lock a dead client's session holds) must not stop the
// orchestrator.
func (o *Orchestrator) release(l compute.Lease) {
	defer o.unlock(l.InstanceUUID)
	ctx, cancel := context.WithTimeout(context.Background(), o.ttl)
	defer cancel()
	if err := o.store.ReleaseLease(ctx, l); err != nil {
		o.log.Warn("migrate: lease release failed", slog.String("instance", l.InstanceUUID), slog.Any("err", err))
	}
}

// renew extends the lease before a step when half of it has passed (the
// keep-alive renews it every third, so this only acts when the clock
// Now reads and the one AfterFunc schedules on disagree).
func (r *run) renew(ctx context.Context) error {
	l := r.getLease()
	if r.o.now().Before(l.Expires.Add(-r.o.ttl / 2)) {
		return nil
	}
	l, err := r.o.store.RenewLease(ctx, l, r.o.ttl)
	if err != nil {
		return err
	}
	r.setLease(l)
	return nil
}

func (r *run) getLease() compute.Lease {
	r.leaseMu.Lock()
	defer r.leaseMu.Unlock()
	return r.lease
}

func (r *run) setLease(l compute.Lease) {
	r.leaseMu.Lock()
	r.lease = l
	r.leaseMu.Unlock()
}

// call runs a driver call on the run's context. When the run's
// keep-alive found the lease lost and cancelled that context, the lease
// error is returned, whatever f returned.
func (r *run) call(ctx context.Context, f func(context.Context) error) error {
	return leaseCause(ctx, f(ctx))
}

// leaseCause is the lease error that cancelled ctx, if one did, else err.
func leaseCause(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); errors.Is(cause, compute.ErrLease) {
		return cause
	}
	return err
}

// keepAlive renews the run's lease every third of its TTL on the
// orchestrator's clock (Config.AfterFunc), from the run's start until
// stop is called, so that every step of the run (Store writes, quota,
// every driver call) is covered, not only the long ones. A renewal that
// finds the lease lost (expired and taken by another owner) cancels the
// returned context with the *compute.LeaseLostError as its cause: the
// driver call in progress stops and no further step is written, so the
// new owner resumes where this run stopped.
func (r *run) keepAlive(ctx context.Context) (context.Context, func()) {
	cctx, cancel := context.WithCancelCause(ctx)
	k := &keepAlive{r: r, ctx: cctx, cancel: cancel}
	k.mu.Lock()
	k.stopTimer = r.o.afterFunc(r.o.ttl/3, k.renew)
	k.mu.Unlock()
	return cctx, func() {
		k.stop()
		cancel(nil)
	}
}

// keepAlive is a run's lease renewal.
type keepAlive struct {
	r      *run
	ctx    context.Context
	cancel context.CancelCauseFunc

	mu        sync.Mutex
	stopTimer func() bool
	stopped   bool
}

// renew renews the lease and schedules the next renewal; a lost lease
// cancels the run. Any other failure (the Store unreachable for a
// moment) is tried again at the next third of the TTL.
func (k *keepAlive) renew() {
	k.mu.Lock()
	if k.stopped {
		k.mu.Unlock()
		return
	}
	k.mu.Unlock()
	l, err := k.r.o.store.RenewLease(k.ctx, k.r.getLease(), k.r.o.ttl)
	if errors.Is(err, compute.ErrLease) {
		k.cancel(err)
		return
	}
	if err == nil {
		k.r.setLease(l)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if !k.stopped && k.ctx.Err() == nil {
		k.stopTimer = k.r.o.afterFunc(k.r.o.ttl/3, k.renew)
	}
}

func (k *keepAlive) stop() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.stopped = true
	k.stopTimer()
}

func (r *run) state() sm.FlowState { return r.inst.FlowState(r.mig) }

func (r *run) migUUID() string {
	if r.mig == nil {
		return ""
	}
	return r.mig.UUID
}

// step fires ev in the run's flow table and writes the row's target state
// with apply's changes in one Transition, then sends the row's
// notifications.
func (r *run) step(ctx context.Context, ev sm.Event, apply func(*compute.Instance, *compute.Migration)) error {
	return r.steps(ctx, []sm.Event{ev}, apply)
}

// steps fires evs one after another from the current state and writes the
// last target state in one Transition: steps Nova saves separately that
// are one atomic write here.
func (r *run) steps(ctx context.Context, evs []sm.Event, apply func(*compute.Instance, *compute.Migration)) error {
	return r.write(ctx, evs, nil, apply)
}

// write is steps with, when newMig is set, the migration the step creates.
func (r *run) write(ctx context.Context, evs []sm.Event, newMig *compute.Migration,
	apply func(*compute.Instance, *compute.Migration)) error {
	m := r.o.machines[r.flow]
	facts := r.inst.Facts()
	if r.facts != nil {
		facts, r.facts = *r.facts, nil
	}
	from := r.state()
	to := from
	var notes []sm.Notification
	for _, ev := range evs {
		row, err := m.Fire(to, ev, facts)
		if err != nil {
			return fmt.Errorf("migrate: instance %s: %w", r.inst.UUID, err)
		}
		to = row.To
		notes = append(notes, row.Notifications...)
	}
	if err := r.renew(ctx); err != nil {
		return err
	}
	if cause := context.Cause(ctx); cause != nil {
		return cause // the run stopped (its lease lost): no further step
	}
	inst, mig, err := r.o.store.Transition(ctx, compute.TransitionRequest{
		InstanceUUID: r.inst.UUID, MigrationUUID: r.migUUID(), NewMigration: newMig, Expect: from, Lease: r.getLease(),
		Apply: func(i *compute.Instance, mg *compute.Migration) error {
			if apply != nil {
				apply(i, mg)
			}
			i.SetFlowState(mg, to)
			return nil
		}})
	if err != nil {
		return err
	}
	r.inst, r.mig = inst, mig
	for _, n := range notes {
		r.notify(ctx, n, nil)
	}
	return nil
}

// checkOnly fires evs from the current state, which they must lead back
// to, and sends their notifications (with cause on the error ones):
// steps that change nothing persisted.
func (r *run) checkOnly(ctx context.Context, cause error, evs ...sm.Event) error {
	m := r.o.machines[r.flow]
	s := r.state()
	var notes []sm.Notification
	for _, ev := range evs {
		row, err := m.Fire(s, ev, r.inst.Facts())
		if err != nil {
			return fmt.Errorf("migrate: instance %s: %w", r.inst.UUID, err)
		}
		s = row.To
		notes = append(notes, row.Notifications...)
	}
	if s != r.state() {
		return fmt.Errorf("migrate: instance %s: %v lead to %s, not back to %s", r.inst.UUID, evs, s, r.state())
	}
	for _, n := range notes {
		r.notify(ctx, n, cause)
	}
	return nil
}

// notify sends one notification about the run's instance; a failure to
// send is only logged.
func (r *run) notify(ctx context.Context, n sm.Notification, fault error) {
	if _, nop := r.o.notifier.(compute.NopNotifier); nop {
		return
	}
	p := compute.NewPayload(r.inst)
	p.MigrationUUID = r.migUUID()
	prio := compute.PriorityInfo
	if n == sm.NotifyResizeError || n == sm.NotifyMigrateServerError {
		prio = compute.PriorityError
		if fault == nil {
			fault = r.cause
		}
	}
	if fault != nil {
		p.Fault = fault.Error()
	}
	service := "compute."
	if n == sm.NotifyMigrateServerError {
		service = "conductor."
	}
	err := r.o.notifier.Notify(ctx, compute.Notification{EventType: n, Priority: prio,
		PublisherID: service + r.inst.Host, Timestamp: r.o.now(), Payload: p})
	if err != nil {
		r.o.log.Warn("migrate: notification not sent", slog.String("event_type", string(n)), slog.Any("err", err))
	}
}

// event records one event of the instance action (Nova's
// wrap_instance_event): its name, host and result.
func (r *run) event(ctx context.Context, name, host string, cause error) {
	if ev, ok := r.newEvent(name, host, cause); ok {
		r.saveEvent(ctx, ev)
	}
}

// holdEvent is event for a step that ends with the guest powered off:
// the event is kept, with its time, and saved by flushEvents once the
// guest runs again (or the run stops), so that no Store write but the
// step's own lengthens the downtime.
func (r *run) holdEvent(name, host string) {
	if ev, ok := r.newEvent(name, host, nil); ok {
		r.held = append(r.held, ev)
	}
}

// flushEvents saves the events holdEvent kept.
func (r *run) flushEvents(ctx context.Context) {
	for _, ev := range r.held {
		r.saveEvent(ctx, ev)
	}
	r.held = nil
}

func (r *run) newEvent(name, host string, cause error) (compute.InstanceActionEvent, bool) {
	if r.inst.SystemMetadata[SysMetaRequestID] == "" {
		return compute.InstanceActionEvent{}, false
	}
	now := r.o.now()
	ev := compute.InstanceActionEvent{Event: name, Host: host, StartTime: now, FinishTime: now,
		Result: compute.EventResultSuccess}
	if cause != nil {
		ev.Result, ev.Traceback = compute.EventResultError, cause.Error()
	}
	return ev, true
}

func (r *run) saveEvent(ctx context.Context, ev compute.InstanceActionEvent) {
	rid := r.inst.SystemMetadata[SysMetaRequestID]
	if err := r.o.store.SaveActionEvent(context.WithoutCancel(ctx), r.inst.UUID, rid, ev); err != nil {
		r.o.log.Warn("migrate: action event not saved", slog.String("event", ev.Event), slog.Any("err", err))
	}
}

// finishAction closes the instance action of the run.
func (r *run) finishAction(ctx context.Context, rid string) {
	if rid == "" {
		return
	}
	if err := r.o.store.FinishAction(ctx, r.inst.UUID, rid, r.o.now()); err != nil {
		r.o.log.Warn("migrate: action not finished", slog.Any("err", err))
	}
}

// fault records an instance fault (Nova's add_instance_fault_from_exc).
func (r *run) fault(ctx context.Context, host string, cause error) {
	code := 500
	var rb *compute.InstanceFaultRollback
	if errors.As(cause, &rb) {
		code = 400
	}
	f := &compute.Fault{InstanceUUID: r.inst.UUID, Code: code, Message: cause.Error(), Host: host,
		Details: fmt.Sprintf("%T", errors.Unwrap(cause))}
	if err := r.o.store.AddFault(ctx, f); err != nil {
		r.o.log.Warn("migrate: fault not recorded", slog.Any("err", err))
	}
}

// progress saves percent on the instance when it grew and streams it to
// the callback. While the guest is powered off (the end of the disk move,
// the finish) it is only streamed: a Store write there would lengthen the
// downtime, and the steps that end those calls save 80 and 100.
func (r *run) progress(ctx context.Context, percent int, step string, p compute.Progress) {
	if percent > r.inst.Progress && percent <= 100 && !p.PoweredOff {
		inst, mig, err := r.o.store.Transition(ctx, compute.TransitionRequest{InstanceUUID: r.inst.UUID,
			MigrationUUID: r.migUUID(), Expect: r.state(), Lease: r.getLease(),
			Apply: func(i *compute.Instance, _ *compute.Migration) error { i.Progress = percent; return nil }})
		if err == nil {
			r.inst, r.mig = inst, mig
		}
	}
	if cb := r.o.opts.Progress; cb != nil {
		cb(ProgressEvent{InstanceUUID: r.inst.UUID, MigrationUUID: r.migUUID(), Percent: percent, Step: step,
			State: r.state(), BytesSent: p.BytesSent, BytesSentRunning: p.BytesSentRunning})
	}
}

// driverProgress is the ProgressFunc handed to the driver: the driver's
// percentage of its own call is mapped onto [base, base+span] of the
// operation (Nova's steps: the disk move up to 80, the finish to 100),
// saved and streamed.
func (r *run) driverProgress(ctx context.Context, base, span int) compute.ProgressFunc {
	return func(p compute.Progress) {
		pct := min(max(p.Percent, 0), 100)
		r.progress(ctx, base+pct*span/100, p.Step, p)
	}
}

// offProgress is driverProgress for a call that runs with the guest
// powered off from its start (finish_migration starts it at its end).
func (r *run) offProgress(ctx context.Context, base, span int) compute.ProgressFunc {
	f := r.driverProgress(ctx, base, span)
	return func(p compute.Progress) {
		p.PoweredOff = true
		f(p)
	}
}

// interrupted reports whether err means the run must stop where it is
// (its context ended or its lease was lost) rather than fail the step.
func interrupted(ctx context.Context, err error) bool {
	return ctx.Err() != nil || errors.Is(err, compute.ErrLease)
}

// stop wraps an interruption with the state the run stopped in, and
// drops the run's claim: whoever resumes the move claims for itself.
func (r *run) stop(err error) error {
	r.o.dropClaim(r.migUUID())
	var ie *InterruptedError
	if errors.As(err, &ie) {
		return err
	}
	return &InterruptedError{InstanceUUID: r.inst.UUID, State: r.state(), Err: err}
}

// retry calls f up to the orchestrator's RecoveryAttempts times while it
// fails and the context is live: for steps of a rollback, which have no
// further way back.
func (r *run) retry(ctx context.Context, f func() error) error {
	var err error
	for i := 0; i < r.o.opts.RecoveryAttempts; i++ {
		if err = f(); err == nil || interrupted(ctx, err) {
			return err
		}
	}
	return err
}
