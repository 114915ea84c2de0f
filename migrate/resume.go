package migrate

import (
	"context"
	"errors"

	"github.com/xenflow/xenflow/compute"
	sm "github.com/xenflow/xenflow/statemachine"
)

// ResumeOutcome is what Resume did with one operation.
type ResumeOutcome struct {
	InstanceUUID string
	// From is the state the operation was found in, To where it ended.
	From, To sm.FlowState
	// Err is the operation's failure outcome (an *OperationError), a
	// *compute.LeaseHeldError when another orchestrator holds it, or the
	// error that stopped it.
	Err error
}

// Resume drives every resize, cold migration, confirm and revert left in
// progress in the Store (by a process that stopped, or an orchestrator
// whose context ended) to a resting state. Operations held by another
// owner's unexpired lease are skipped: their outcome carries the
// *compute.LeaseHeldError, and the returned error joins those errors and
// any that stopped an operation (failure outcomes such as a rollback are
// results, not errors, and are only in the outcomes).
func (o *Orchestrator) Resume(ctx context.Context) ([]ResumeOutcome, error) {
	uuids, err := o.unfinished(ctx)
	if err != nil {
		return nil, err
	}
	var out []ResumeOutcome
	var errs []error
	for _, id := range uuids {
		oc := o.resumeOne(ctx, id)
		if oc == nil {
			continue
		}
		out = append(out, *oc)
		var opErr *OperationError
		if oc.Err != nil && !errors.As(oc.Err, &opErr) {
			errs = append(errs, oc.Err)
		}
	}
	return out, errors.Join(errs...)
}

// unfinished lists the instances with a move, confirm or revert in
// progress: a resize task_state, resize_reverting or powering-off after a
// revert, or a migration confirming (which has no task_state).
func (o *Orchestrator) unfinished(ctx context.Context) ([]string, error) {
	insts, err := o.store.ListInstances(ctx, compute.InstanceFilter{TaskStates: append(sm.ResizingTaskStates(),
		sm.TaskResizeReverting, sm.TaskPoweringOff)})
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []string
	for _, i := range insts {
		if i.SystemMetadata[SysMetaMigration] != "" && !seen[i.UUID] {
			seen[i.UUID] = true
			out = append(out, i.UUID)
		}
	}
	migs, err := o.store.ListMigrations(ctx, compute.MigrationFilter{Statuses: []sm.MigrationStatus{sm.MigrationConfirming}})
	if err != nil {
		return nil, err
	}
	for _, m := range migs {
		if !seen[m.InstanceUUID] {
			seen[m.InstanceUUID] = true
			out = append(out, m.InstanceUUID)
		}
	}
	return out, nil
}

// resumeOne takes the lease on one instance and drives its operation; nil
// when there is nothing left to do.
func (o *Orchestrator) resumeOne(ctx context.Context, uuid string) *ResumeOutcome {
	// A first look without the lease: an instance with nothing of ours to
	// do is not leased at all, so the orchestrator driving another kind of
	// operation on it (a rescue) is not disturbed.
	peek, err := o.load(ctx, uuid, compute.Lease{})
	if err != nil {
		return &ResumeOutcome{InstanceUUID: uuid, Err: err}
	}
	if peek.handler() == nil {
		return nil
	}
	lease, err := o.acquire(ctx, uuid)
	if err != nil {
		return &ResumeOutcome{InstanceUUID: uuid, From: peek.state(), To: peek.state(), Err: err}
	}
	defer o.release(lease)
	r, err := o.load(ctx, uuid, lease)
	if err != nil {
		return &ResumeOutcome{InstanceUUID: uuid, Err: err}
	}
	if r.handler() == nil {
		return nil
	}
	ctx, stop := r.keepAlive(ctx)
	defer stop()
	oc := &ResumeOutcome{InstanceUUID: uuid, From: r.state()}
	if err := r.drive(ctx); err != nil {
		oc.Err = err
	} else if r.failure != nil {
		oc.Err = r.failure
	}
	oc.To = r.state()
	return oc
}

// load reads an instance and its current migration (read under the
// lease, so no one else changes them) into a run of the right flow.
func (o *Orchestrator) load(ctx context.Context, uuid string, lease compute.Lease) (*run, error) {
	inst, err := o.store.GetInstance(ctx, uuid)
	if err != nil {
		return nil, err
	}
	r := &run{o: o, lease: lease, inst: inst, op: sm.OpResize, flow: sm.FlowResize}
	if id := inst.SystemMetadata[SysMetaMigration]; id != "" {
		r.mig, err = o.store.GetMigration(ctx, id)
		if err != nil && !errors.Is(err, compute.ErrNotFound) {
			return nil, err
		}
	}
	if r.mig == nil {
		ms, err := o.store.ListMigrations(ctx, compute.MigrationFilter{InstanceUUID: uuid,
			Statuses: []sm.MigrationStatus{sm.MigrationConfirming}})
		if err != nil {
			return nil, err
		}
		if len(ms) > 0 {
			r.mig = ms[len(ms)-1]
		}
	}
	r.classify()
	return r, nil
}

// classify picks the operation and flow table from the records.
func (r *run) classify() {
	s := r.state()
	switch {
	case s.Migration == sm.MigrationConfirming:
		r.op, r.flow = sm.OpConfirmResize, sm.FlowConfirm
	case s.VM == sm.VMResized && (s.Migration == sm.MigrationReverting || s.Migration == sm.MigrationReverted):
		r.op, r.flow = sm.OpRevertResize, sm.FlowRevert
	default:
		old, nw := r.inst.Flavor, r.inst.NewFlavor
		if r.mig != nil {
			old, nw = r.mig.OldFlavor, r.mig.NewFlavor
		}
		switch {
		case old == nil || nw == nil || old.ID == nw.ID:
			r.op, r.flow = sm.OpMigrate, sm.FlowMigrate
		case shrinks(old, nw):
			r.flow = sm.FlowResizeDown
		}
	}
}
