package crosscell

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/migrate"
	"github.com/xenflow/xenflow/quota"
	sm "github.com/xenflow/xenflow/statemachine"
)

// copyOf is one cell's copy of the instance and its migration, with the
// conductor's lease in that cell.
type copyOf struct {
	cell  *Cell
	inst  *compute.Instance
	mig   *compute.Migration
	lease compute.Lease
}

func (k *copyOf) exists() bool { return k != nil && k.inst != nil }

func (k *copyOf) state() sm.FlowState { return k.inst.FlowState(k.mig) }

// move is one cross-cell operation driven by this conductor.
type move struct {
	c        *Conductor
	src, dst *copyOf
	uuid     string
	migUUID  string
}

// load reads both copies of a move from the cells the instance's system
// metadata names and takes the leases of those that exist.
func (c *Conductor) load(ctx context.Context, inst *compute.Instance) (*move, error) {
	meta := inst.SystemMetadata
	src, err := c.cell(inst.UUID, meta[SysMetaSourceCell])
	if err != nil {
		return nil, err
	}
	dst, err := c.cell(inst.UUID, meta[SysMetaTargetCell])
	if err != nil {
		return nil, err
	}
	m := &move{c: c, src: &copyOf{cell: src}, dst: &copyOf{cell: dst}, uuid: inst.UUID, migUUID: meta[migrate.SysMetaMigration]}
	for _, k := range []*copyOf{m.src, m.dst} {
		if err := m.read(ctx, k); err != nil {
			m.release()
			return nil, err
		}
	}
	return m, nil
}

// read loads a copy and takes its lease; a cell without the copy leaves
// it empty.
func (m *move) read(ctx context.Context, k *copyOf) error {
	inst, err := k.cell.Store.GetInstance(ctx, m.instanceUUID())
	if isNotFound(err) {
		k.inst, k.mig = nil, nil
		return nil
	}
	if err != nil {
		return err
	}
	if k.lease.Owner == "" {
		l, err := k.cell.Store.AcquireLease(ctx, compute.LeaseRequest{InstanceUUID: inst.UUID, Owner: m.c.owner, TTL: m.c.ttl})
		if err != nil {
			return err
		}
		k.lease = l
	}
	k.inst = inst
	k.mig = nil
	if m.migUUID != "" {
		mig, err := k.cell.Store.GetMigration(ctx, m.migUUID)
		if err != nil && !isNotFound(err) {
			return err
		}
		k.mig = mig
	}
	return nil
}

func (m *move) instanceUUID() string { return m.uuid }

// release gives up the leases held.
func (m *move) release() {
	for _, k := range []*copyOf{m.src, m.dst} {
		if k != nil && k.lease.Owner != "" {
			if err := k.cell.Store.ReleaseLease(context.Background(), k.lease); err != nil {
				m.c.log.Warn("crosscell: lease release failed", slog.Any("err", err))
			}
			k.lease = compute.Lease{}
		}
	}
}

// write fires evs in the cross-cell flow table from the copy's state and
// stores the last target state with apply's changes in one Transition of
// the copy's cell, then sends the rows' notifications. With no events it
// writes apply's changes in the same state.
func (m *move) write(ctx context.Context, k *copyOf, evs []sm.Event, apply func(*compute.Instance, *compute.Migration)) error {
	to := k.state()
	var notes []sm.Notification
	for _, ev := range evs {
		row, err := m.c.flow.Fire(to, ev, k.inst.Facts())
		if err != nil {
			return fmt.Errorf("crosscell: instance %s in cell %s: %w", k.inst.UUID, k.cell.Name, err)
		}
		to, notes = row.To, append(notes, row.Notifications...)
	}
	if err := m.writeTo(ctx, k, to, nil, apply); err != nil {
		return err
	}
	for _, n := range notes {
		m.notify(ctx, k.inst, n, nil)
	}
	return nil
}

// set writes a copy to state s directly, with apply's changes: the steps
// that bring one cell's copy level with the other's.
func (m *move) set(ctx context.Context, k *copyOf, s sm.FlowState, apply func(*compute.Instance, *compute.Migration)) error {
	return m.writeTo(ctx, k, s, nil, apply)
}

// writeTo stores the copy in state to with apply's changes, under the
// copy's lease, compared with the state it was read in; newMig, when set,
// is the migration the write creates.
func (m *move) writeTo(ctx context.Context, k *copyOf, to sm.FlowState, newMig *compute.Migration,
	apply func(*compute.Instance, *compute.Migration)) error {
	if err := m.renew(ctx, k); err != nil {
		return err
	}
	inst, mig, err := k.cell.Store.Transition(ctx, compute.TransitionRequest{InstanceUUID: k.inst.UUID,
		MigrationUUID: migUUIDOf(k.mig), NewMigration: newMig, Expect: k.state(), Lease: k.lease,
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
	k.inst, k.mig = inst, mig
	return nil
}

// renew extends a copy's lease once half of it has passed.
func (m *move) renew(ctx context.Context, k *copyOf) error {
	if m.c.now().Before(k.lease.Expires.Add(-m.c.ttl / 2)) {
		return nil
	}
	l, err := k.cell.Store.RenewLease(ctx, k.lease, m.c.ttl)
	if err != nil {
		return err
	}
	k.lease = l
	return nil
}

func migUUIDOf(mg *compute.Migration) string {
	if mg == nil {
		return ""
	}
	return mg.UUID
}

// notify sends one notification about inst; a failure is only logged.
func (m *move) notify(ctx context.Context, inst *compute.Instance, n sm.Notification, fault error) {
	p := compute.NewPayload(inst)
	p.MigrationUUID = m.migUUID
	prio, service := compute.PriorityInfo, "compute."
	if n == sm.NotifyMigrateServerError || n == sm.NotifyResizeError {
		prio, service = compute.PriorityError, "conductor."
		if fault != nil {
			p.Fault = fault.Error()
		}
	}
	if err := m.c.notifier.Notify(ctx, compute.Notification{EventType: n, Priority: prio,
		PublisherID: service + inst.Host, Timestamp: m.c.now(), Payload: p}); err != nil {
		m.c.log.Warn("crosscell: notification not sent", slog.String("event_type", string(n)), slog.Any("err", err))
	}
}

// event records an event of the instance action in the copy's cell.
func (m *move) event(ctx context.Context, k *copyOf, name, host string, cause error) {
	rid := k.inst.SystemMetadata[migrate.SysMetaRequestID]
	if rid == "" {
		return
	}
	now := m.c.now()
	ev := compute.InstanceActionEvent{Event: name, Host: host, StartTime: now, FinishTime: now, Result: compute.EventResultSuccess}
	if cause != nil {
		ev.Result, ev.Traceback = compute.EventResultError, cause.Error()
	}
	if err := k.cell.Store.SaveActionEvent(ctx, k.inst.UUID, rid, ev); err != nil {
		m.c.log.Warn("crosscell: action event not saved", slog.String("event", name), slog.Any("err", err))
	}
}

// finishAction closes the instance action of the copy's request.
func (m *move) finishAction(ctx context.Context, k *copyOf) {
	rid := k.inst.SystemMetadata[migrate.SysMetaRequestID]
	if rid == "" {
		return
	}
	if err := k.cell.Store.FinishAction(ctx, k.inst.UUID, rid, m.c.now()); err != nil {
		m.c.log.Warn("crosscell: action not finished", slog.Any("err", err))
	}
}

// settle commits a quota reservation; one committed or rolled back
// before (by a run that stopped) is no error.
func (m *move) settle(ctx context.Context, id string, commit bool) {
	if id == "" {
		return
	}
	f := m.c.ledger.Rollback
	if commit {
		f = m.c.ledger.Commit
	}
	if err := f(ctx, id); err != nil && !alreadySettled(err) {
		m.c.log.Warn("crosscell: quota reservation not settled", slog.String("reservation", id), slog.Any("err", err))
	}
}

// interrupted reports whether err means the move must stop where it is.
func interrupted(ctx context.Context, err error) bool {
	return ctx.Err() != nil || errors.Is(err, compute.ErrLease)
}

// rank orders the states of a forward cross-cell move: the source copy
// goes 0..5, the target copy 5..9; -1 is a state outside the forward
// flow.
func rank(s sm.FlowState) int {
	type key struct {
		task  sm.TaskState
		mig   sm.MigrationStatus
		phase sm.MovePhase
	}
	ranks := map[key]int{
		{sm.TaskResizePrep, sm.MigrationPreMigrating, ""}:                      0,
		{sm.TaskResizePrep, sm.MigrationPreMigrating, sm.PhaseTargetCellReady}: 1,
		{sm.TaskResizePrep, sm.MigrationPreMigrating, sm.PhaseDestClaimed}:     2,
		{sm.TaskResizeMigrating, sm.MigrationPreMigrating, ""}:                 3,
		{sm.TaskResizeMigrating, sm.MigrationMigrating, ""}:                    4,
		{sm.TaskResizeMigrated, sm.MigrationPostMigrating, ""}:                 5,
		{sm.TaskResizeFinish, sm.MigrationPostMigrating, ""}:                   6,
		{sm.TaskResizeFinish, sm.MigrationFinished, ""}:                        7,
		{sm.TaskNone, sm.MigrationFinished, ""}:                                8,
		{sm.TaskNone, sm.MigrationFinished, sm.PhaseMappingSwapped}:            9,
	}
	if r, ok := ranks[key{s.Task, s.Migration, s.Phase}]; ok {
		return r
	}
	return -1
}

func setMeta(i *compute.Instance, k, v string) {
	if v == "" {
		delete(i.SystemMetadata, k)
		return
	}
	if i.SystemMetadata == nil {
		i.SystemMetadata = map[string]string{}
	}
	i.SystemMetadata[k] = v
}

func alreadySettled(err error) bool {
	return errors.Is(err, quota.ErrAlreadyCommitted) || errors.Is(err, quota.ErrAlreadyRolledBack) ||
		errors.Is(err, quota.ErrUnknownReservation)
}
