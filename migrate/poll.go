package migrate

import (
	"context"
	"errors"
	"log/slog"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/quota"
	sm "github.com/xenflow/xenflow/statemachine"
)

// PollAutoConfirm is ComputeManager._poll_unconfirmed_resizes, a periodic
// task the host program calls: every migration finished longer than
// ResizeConfirmWindow ago (by its UpdatedAt) is confirmed. An instance
// that is gone, in error, or whose state is not VERIFY_RESIZE gets its
// migration set to error; one being deleted or caught in resize_finish is
// skipped; one whose lease another orchestrator holds is left for a later
// poll. It returns the migrations it confirmed; the error joins the
// confirmations that failed. With a window of 0 it does nothing.
func (o *Orchestrator) PollAutoConfirm(ctx context.Context) ([]*Result, error) {
	if o.opts.ResizeConfirmWindow <= 0 {
		return nil, nil
	}
	migs, err := o.store.ListMigrations(ctx, compute.MigrationFilter{Statuses: []sm.MigrationStatus{sm.MigrationFinished},
		UpdatedAtOrBefore: o.now().Add(-o.opts.ResizeConfirmWindow)})
	if err != nil {
		return nil, err
	}
	var done []*Result
	var errs []error
	for _, m := range migs {
		res, err := o.autoConfirm(ctx, m)
		if res != nil {
			done = append(done, res)
		}
		if err != nil && !errors.Is(err, compute.ErrLease) {
			errs = append(errs, err)
		}
	}
	return done, errors.Join(errs...)
}

// autoConfirm handles one finished migration of the poll.
func (o *Orchestrator) autoConfirm(ctx context.Context, m *compute.Migration) (*Result, error) {
	inst, err := o.store.GetInstance(ctx, m.InstanceUUID)
	if errors.Is(err, compute.ErrNotFound) {
		m.Status = sm.MigrationError
		return nil, o.store.SaveMigration(ctx, m, sm.MigrationFinished)
	}
	if err != nil {
		return nil, err
	}
	switch inst.TaskState {
	case sm.TaskDeleting, sm.TaskSoftDeleting, sm.TaskResizeFinish:
		return nil, nil
	}
	lease, err := o.acquire(ctx, inst.UUID)
	if err != nil {
		return nil, err
	}
	defer o.release(lease)
	r := &run{o: o, op: sm.OpConfirmResize, flow: sm.FlowAutoConfirm, lease: lease, inst: inst, mig: m}
	ctx, stop := r.keepAlive(ctx)
	defer stop()
	if inst.VMState != sm.VMResized || inst.TaskState != sm.TaskNone {
		o.log.Info("migrate: auto-confirm found the instance not in VERIFY_RESIZE", slog.String("instance", inst.UUID))
		return nil, r.step(ctx, sm.EvPeriodicPollUnconfirmedResizes, nil)
	}
	rid, err := o.newUUID()
	if err != nil {
		return nil, err
	}
	deltas := quota.DownsizeDelta(quotaFlavor(m.NewFlavor), quotaFlavor(m.OldFlavor))
	if err := r.begin(ctx, sm.EvPeriodicPollUnconfirmedResizes, sm.ActionConfirmResize, rid, deltas); err != nil {
		return nil, err
	}
	return r.finish(ctx)
}
