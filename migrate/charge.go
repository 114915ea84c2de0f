package migrate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/quota"
)

// Charge is what an instance costs its user's quota, for
// quota.Ledger.Reconcile: max(old, new) per resource while the
// orchestrator keeps both flavors on it (a resize that reached the
// destination and is neither confirmed nor reverted), its flavor
// otherwise. A ledger the orchestrator alone changes always equals this
// recount, whatever failed.
func Charge(inst *compute.Instance) quota.Charge {
	if inst.OldFlavor != nil && inst.NewFlavor != nil {
		return quota.ResizeCharge(inst.UserID, quotaFlavor(inst.OldFlavor), quotaFlavor(inst.NewFlavor))
	}
	return quota.InstanceCharge(inst.UserID, quotaFlavor(inst.Flavor))
}

// reserve reserves deltas for the instance's project and user (Nova's
// _reserve_quota_delta); nothing to reserve (a cold migration, the
// downsize of a resize up) makes no reservation and gives "".
func (o *Orchestrator) reserve(ctx context.Context, inst *compute.Instance, deltas quota.Deltas) (string, error) {
	if len(deltas) == 0 {
		return "", nil
	}
	id, err := o.ledger.Reserve(ctx, inst.ProjectID, inst.UserID, deltas)
	if err != nil {
		return "", fmt.Errorf("migrate: instance %s: %w", inst.UUID, err)
	}
	return id, nil
}

// settle rolls a pending reservation back. An id already settled changes
// nothing; a failure is logged (the ledger expires what it keeps).
func (o *Orchestrator) settle(ctx context.Context, id string) {
	if id == "" {
		return
	}
	o.logRollback(id, o.ledger.Rollback(context.WithoutCancel(ctx), id))
}

func (o *Orchestrator) logRollback(id string, err error) {
	if err == nil || errors.Is(err, quota.ErrAlreadyRolledBack) || errors.Is(err, quota.ErrReservationExpired) ||
		errors.Is(err, quota.ErrUnknownReservation) {
		return
	}
	o.log.Warn("migrate: quota rollback failed", slog.String("reservation", id), slog.Any("err", err))
}

// rollbackQuota rolls back the run's pending reservation. When an earlier
// attempt of the step committed it already (a resumed step that
// committed before its write), undo is reserved and committed to take
// the committed deltas out again.
func (r *run) rollbackQuota(ctx context.Context, id string, undo quota.Deltas) {
	if id == "" {
		return
	}
	err := r.o.ledger.Rollback(context.WithoutCancel(ctx), id)
	if !errors.Is(err, quota.ErrAlreadyCommitted) {
		r.o.logRollback(id, err)
		return
	}
	if len(undo) == 0 {
		return
	}
	uid, err := r.o.ledger.Reserve(context.WithoutCancel(ctx), r.inst.ProjectID, r.inst.UserID, undo)
	if err == nil {
		err = r.o.ledger.Commit(context.WithoutCancel(ctx), uid)
	}
	if err != nil {
		r.o.log.Warn("migrate: quota undo failed", slog.String("reservation", id), slog.Any("err", err))
	}
}

// commitQuota commits a reservation; a retried commit is success.
func (r *run) commitQuota(ctx context.Context, id string) error {
	if id == "" {
		return nil
	}
	err := r.o.ledger.Commit(ctx, id)
	if err == nil || errors.Is(err, quota.ErrAlreadyCommitted) {
		return nil
	}
	if interrupted(ctx, err) {
		return err
	}
	r.o.log.Warn("migrate: quota commit failed", slog.String("reservation", id), slog.Any("err", err))
	return nil
}

// reservation is the run's pending reservation, kept on the migration.
func (r *run) reservation() string {
	if r.mig == nil {
		return ""
	}
	return r.mig.QuotaReservationID
}
