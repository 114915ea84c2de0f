package crosscell

import (
	"context"
	"errors"
	"log/slog"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/migrate"
	sm "github.com/xenflow/xenflow/statemachine"
)

// PollAutoConfirm is ComputeManager._poll_unconfirmed_resizes over every
// cell, a periodic task the host program calls: each cell's same-cell
// orchestrator confirms its own resizes (migrate.Orchestrator.PollAutoConfirm),
// and the conductor confirms every cross-cell move that has waited in
// VERIFY_RESIZE longer than Options.ResizeConfirmWindow (by its
// migration's UpdatedAt, on the conductor's clock) with ConfirmResizeTask,
// as Nova's poll does through compute_api.confirm_resize. A move whose
// instance is gone, hidden, not in VERIFY_RESIZE, being deleted or held
// by another conductor's lease is left alone. It returns the cross-cell
// moves it confirmed; the error joins the confirmations that failed.
// With a window of 0 it does nothing.
func (c *Conductor) PollAutoConfirm(ctx context.Context) ([]*Result, error) {
	if c.confirmWindow <= 0 {
		return nil, nil
	}
	var done []*Result
	var errs []error
	for _, name := range sortedCells(c.cells) {
		if _, err := c.same[name].PollAutoConfirm(ctx); err != nil {
			errs = append(errs, err)
		}
		migs, err := c.cells[name].Store.ListMigrations(ctx, compute.MigrationFilter{
			Statuses: []sm.MigrationStatus{sm.MigrationFinished}, UpdatedAtOrBefore: c.now().Add(-c.confirmWindow)})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, mg := range migs {
			r, err := c.autoConfirm(ctx, c.cells[name], mg)
			if r != nil {
				done = append(done, r)
			}
			if err != nil && !errors.Is(err, compute.ErrLease) {
				errs = append(errs, err)
			}
		}
	}
	return done, errors.Join(errs...)
}

// autoConfirm confirms one cross-cell move of the poll, when the cell
// holds its visible copy waiting in VERIFY_RESIZE.
func (c *Conductor) autoConfirm(ctx context.Context, cell *Cell, mg *compute.Migration) (*Result, error) {
	if !mg.CrossCellMove {
		return nil, nil
	}
	inst, err := cell.Store.GetInstance(ctx, mg.InstanceUUID)
	if isNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if inst.Hidden || !crossCellCopy(inst) || inst.SystemMetadata[migrate.SysMetaMigration] != mg.UUID {
		return nil, nil
	}
	if inst.VMState != sm.VMResized || inst.TaskState != sm.TaskNone {
		c.log.Info("crosscell: auto-confirm found the instance not in VERIFY_RESIZE", slog.String("instance", inst.UUID))
		return nil, nil
	}
	return c.Confirm(ctx, migrate.ActionRequest{InstanceUUID: inst.UUID, Admin: true})
}
