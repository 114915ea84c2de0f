package migrate

import (
	"context"
	"errors"
	"fmt"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/quota"
	sm "github.com/xenflow/xenflow/statemachine"
)

// errNoProgress guards drive against a handler that changes nothing.
var errNoProgress = errors.New("migrate: a step made no progress")

// drive runs the run's operation from the state it is in to a resting
// state: VERIFY_RESIZE, or an end of confirm, revert or a failure.
func (r *run) drive(ctx context.Context) error {
	defer r.flushEvents(ctx)
	for i := 0; ; i++ {
		h := r.handler()
		if h == nil {
			r.o.dropClaim(r.migUUID())
			r.finishAction(context.WithoutCancel(ctx), r.inst.SystemMetadata[SysMetaRequestID])
			return nil
		}
		if err := context.Cause(ctx); err != nil {
			return r.stop(err)
		}
		if i > 32 {
			return fmt.Errorf("%w in state %s", errNoProgress, r.state())
		}
		if err := h(ctx); err != nil {
			if interrupted(ctx, err) {
				return r.stop(leaseCause(ctx, err))
			}
			return err
		}
	}
}

// handler returns the step to run from the current state, nil in a
// resting state.
func (r *run) handler() func(context.Context) error {
	s := r.state()
	switch {
	case s.Task == sm.TaskResizePrep && s.Migration == sm.MigrationPreMigrating && s.Phase == sm.PhaseDestClaimed:
		return r.startResize
	case s.Task == sm.TaskResizePrep && s.Migration == sm.MigrationPreMigrating:
		return r.conduct
	case s.Task == sm.TaskResizeMigrating && s.Migration == sm.MigrationMigrating:
		return r.migrateDisk
	case s.Task == sm.TaskResizeMigrated && s.Migration == sm.MigrationPostMigrating:
		return r.startFinish
	case s.Task == sm.TaskResizeFinish && s.Migration == sm.MigrationPostMigrating:
		return r.finishMigration
	case s.VM != sm.VMResized && s.Task == sm.TaskResizeReverting && s.Migration == sm.MigrationReverting:
		return r.rollbackToSource
	case s.VM == sm.VMResized && s.Task == sm.TaskNone && s.Migration == sm.MigrationConfirming:
		return r.confirmSource
	case s.VM == sm.VMResized && s.Task == sm.TaskResizeReverting && s.Migration == sm.MigrationReverting:
		return r.revertDest
	case s.VM == sm.VMResized && s.Task == sm.TaskResizeReverting && s.Migration == sm.MigrationReverted:
		return r.finishRevert
	case s.VM == sm.VMResized && s.Task == sm.TaskPoweringOff && s.Migration == sm.MigrationReverted:
		return r.stopInstance
	}
	return nil
}

// startResize is the start of ComputeManager._resize_instance on the
// source after a prep whose claim was written alone: migration migrating,
// task resize_migrating.
func (r *run) startResize(ctx context.Context) error {
	return r.step(ctx, sm.EvSourceResizeInstance, nil)
}

// migrateDisk is the driver part of _resize_instance:
// migrate_disk_and_power_off, then migration post-migrating, host and node
// switched to the destination, old_flavor kept, task resize_migrated, and
// the DiskInfo the source returned kept on the migration for
// finish_migration.
func (r *run) migrateDisk(ctx context.Context) error {
	src, dest := r.mig.SourceCompute, r.mig.DestCompute
	var info compute.DiskInfo
	err := r.call(ctx, func(ctx context.Context) (err error) {
		info, err = r.o.driver.MigrateDiskAndPowerOff(ctx, compute.MigrateDiskRequest{Instance: r.inst,
			Migration: r.mig, Host: src, DestHost: dest, NewFlavor: r.inst.NewFlavor,
			CleanShutdown: r.o.opts.CleanShutdown, ShutdownTimeout: r.o.opts.ShutdownTimeout,
			Suspend: r.inst.SystemMetadata[SysMetaSuspend] == "true", Progress: r.driverProgress(ctx, 0, 80)})
		return err
	})
	if err != nil {
		if interrupted(ctx, err) {
			return err
		}
		r.event(ctx, "compute_resize_instance", src, err)
		return r.resizeFailed(ctx, err)
	}
	// The source's last save (post-migrating, resize_migrated) and the
	// destination's first (_finish_resize: flavor := new, resize_finish)
	// are one write: nothing acts between them.
	err = r.steps(ctx, []sm.Event{sm.EvSourceMigrateDiskAndPowerOff, sm.EvDestFinishResize},
		func(i *compute.Instance, m *compute.Migration) {
			i.Host, i.Node = m.DestCompute, m.DestNode
			// The step's records are the store's fresh copies, and the
			// store copies them again to keep them: no flavor needs a
			// copy of its own here.
			i.OldFlavor = i.Flavor
			if i.NewFlavor != nil {
				i.Flavor = i.NewFlavor
			}
			i.PowerState = sm.PowerShutdown
			i.Progress = 80
			m.DiskInfo = info
		})
	if err != nil {
		return err
	}
	r.holdEvent("compute_resize_instance", src)
	r.progress(ctx, 80, "resize_migrated", compute.Progress{BytesSent: info.BytesSent,
		BytesSentRunning: info.BytesSentRunning, PoweredOff: true})
	return nil
}

// resizeFailed is _resize_instance's error path: InstanceFaultRollback
// (or NotImplementedError) restores the old vm_state (bug 1551703); any
// other error is vm_state error in Nova's mode, while xenflow restores
// the source first and keeps the old vm_state when it can.
func (r *run) resizeFailed(ctx context.Context, cause error) error {
	src := r.mig.SourceCompute
	var rb *compute.InstanceFaultRollback
	if errors.As(cause, &rb) || errors.Is(cause, compute.ErrNotImplemented) {
		return r.fail(ctx, sm.EvSourceResizeInstanceFaultRollback, src, cause, restoreSource)
	}
	if r.o.opts.NovaCompatibleErrors {
		return r.fail(ctx, sm.EvSourceResizeInstanceError, src, cause, clearMoveKeepFlavor)
	}
	err := r.retry(ctx, func() error {
		if err := r.o.driver.CleanupMigration(ctx, compute.CleanupMigrationRequest{Migration: r.mig,
			Instance: r.inst, Host: r.mig.DestCompute}); err != nil {
			return err
		}
		return r.o.driver.FinishRevertMigration(ctx, compute.FinishRevertRequest{Instance: r.inst,
			Migration: r.mig, Host: src, PowerOn: r.powerOn()})
	})
	if err != nil {
		if interrupted(ctx, err) {
			return err
		}
		return r.fail(ctx, sm.EvSourceResizeInstanceError, src, errors.Join(cause, err), clearMoveKeepFlavor)
	}
	return r.fail(ctx, sm.EvSourceResizeInstanceFaultRollback, src, cause, restoreSource)
}

// startFinish is the start of ComputeManager._finish_resize on the
// destination: the flavor fields := new flavor, task resize_finish (for a
// move found in resize_migrated; the orchestrator writes it with the disk
// move's end).
func (r *run) startFinish(ctx context.Context) error {
	return r.step(ctx, sm.EvDestFinishResize, func(i *compute.Instance, _ *compute.Migration) {
		if i.NewFlavor != nil {
			i.Flavor = i.NewFlavor
		}
	})
}

// finishMigration is the driver part of _finish_resize: finish_migration
// on the destination, the upsize committed, migration finished and
// vm_state resized in one write.
func (r *run) finishMigration(ctx context.Context) error {
	dest := r.mig.DestCompute
	err := r.call(ctx, func(ctx context.Context) error {
		return r.o.driver.FinishMigration(ctx, compute.FinishMigrationRequest{Instance: r.inst, Migration: r.mig,
			Host: dest, DiskInfo: r.mig.DiskInfo, NewFlavor: r.inst.NewFlavor,
			ResizeInstance: disksChange(r.mig.OldFlavor, r.mig.NewFlavor), PowerOn: r.powerOn(),
			Progress: r.offProgress(ctx, 80, 20)})
	})
	r.flushEvents(ctx)
	if err != nil {
		if interrupted(ctx, err) {
			return err
		}
		r.event(ctx, "compute_finish_resize", dest, err)
		return r.finishFailed(ctx, err)
	}
	if err := r.commitQuota(ctx, r.reservation()); err != nil {
		return err
	}
	power := sm.PowerShutdown
	if r.powerOn() {
		power = sm.PowerRunning
	}
	err = r.steps(ctx, []sm.Event{sm.EvDestMigrationFinished, sm.EvDestInstanceResized},
		func(i *compute.Instance, _ *compute.Migration) {
			i.PowerState = power
			i.LaunchedAt = r.o.now()
			i.Progress = 100
		})
	if err != nil {
		return err
	}
	r.o.dropClaim(r.mig.UUID)
	r.event(ctx, "compute_finish_resize", dest, nil)
	r.progress(ctx, 100, "resize_finish", compute.Progress{})
	return nil
}

// finishFailed is _finish_resize's error path. Nova: vm_state error with
// the flavor reset to the old one and host/node left on the destination
// (bug 1825537), where nothing of the guest may be left to recover by a
// hard reboot. In Nova's mode xenflow keeps the vm_state error but
// restores the intact source guest first, powered off, and names the
// source, so the instance's data is where the Store says. Otherwise the
// fault is recorded and the move rolled back to the source.
func (r *run) finishFailed(ctx context.Context, cause error) error {
	dest := r.mig.DestCompute
	if r.o.opts.NovaCompatibleErrors {
		return r.finishFailedNova(ctx, cause)
	}
	r.fault(ctx, dest, cause)
	r.cause = cause
	if err := r.step(ctx, sm.EvRollbackToSource, nil); err != nil {
		return err
	}
	return nil
}

// finishFailedNova ends a failed finish in vm_state error on the host
// that holds the guest: the source, restored and off, unless the
// destination could not be destroyed and its guest is still there
// (Nova's outcome then).
func (r *run) finishFailedNova(ctx context.Context, cause error) error {
	dest := r.mig.DestCompute
	destLeft, err := r.restoreGuest(ctx, false)
	if err != nil && interrupted(ctx, err) {
		return err
	}
	if err != nil {
		r.fault(ctx, r.mig.SourceCompute, err)
	}
	if destLeft {
		return r.fail(ctx, sm.EvDestFinishResizeError, dest, errors.Join(cause, err), resetFlavor)
	}
	return r.fail(ctx, sm.EvDestFinishResizeError, dest, cause, func(i *compute.Instance, m *compute.Migration) {
		restoreSource(i, m)
		if err == nil {
			i.PowerState = sm.PowerShutdown
		}
	})
}

// rollbackToSource destroys the destination guest and restores the
// source guest (started unless it was stopped), then puts the instance
// back on the source in its old vm_state with the migration in error.
func (r *run) rollbackToSource(ctx context.Context) error {
	src := r.mig.SourceCompute
	if _, err := r.restoreGuest(ctx, r.powerOn()); err != nil {
		if interrupted(ctx, err) {
			return err
		}
		return r.rollbackFailed(ctx, src, err)
	}
	power := sm.PowerShutdown
	if r.powerOn() {
		power = sm.PowerRunning
	}
	r.event(ctx, "compute_finish_revert_resize", src, nil)
	return r.failed(ctx, sm.EvRolledBack, r.causeOr(), func(i *compute.Instance, m *compute.Migration) {
		restoreSource(i, m)
		i.PowerState = power
	})
}

// restoreGuest destroys the destination guest and restores the source
// guest (started when powerOn). A destination that cannot destroy its
// guest is lost when it cannot say that guest runs either: the source is
// restored all the same (what the destination keeps is for
// CleanupMigration once it is back, and a fault says so); a destination
// guest that runs keeps the source off, and destLeft says so.
func (r *run) restoreGuest(ctx context.Context, powerOn bool) (destLeft bool, err error) {
	src, dest := r.mig.SourceCompute, r.mig.DestCompute
	err = r.retry(ctx, func() error {
		return r.o.driver.Destroy(ctx, compute.DestroyRequest{Instance: r.inst, Host: dest, DestroyDisks: true,
			Migration: r.mig})
	})
	if err != nil && !interrupted(ctx, err) {
		info, ierr := r.o.driver.GetInfo(ctx, compute.InstanceRequest{Instance: r.inst, Host: dest})
		if ierr == nil && info.PowerState == sm.PowerRunning {
			return true, err
		}
		r.fault(ctx, dest, fmt.Errorf("migrate: destination %s lost; its copy is left for cleanup: %w", dest, err))
		err = nil
	}
	if err != nil {
		return false, err
	}
	return false, r.retry(ctx, func() error {
		return r.o.driver.FinishRevertMigration(ctx, compute.FinishRevertRequest{Instance: r.inst,
			Migration: r.mig, Host: src, PowerOn: powerOn})
	})
}

// rollbackFailed ends a rollback that could not restore the source.
func (r *run) rollbackFailed(ctx context.Context, host string, err error) error {
	r.fault(ctx, host, err)
	return r.failed(ctx, sm.EvRollbackError, errors.Join(r.causeOr(), err), restoreSource)
}

func (r *run) causeOr() error {
	if r.cause != nil {
		return r.cause
	}
	return errors.New("migrate: the move was rolled back to the source after an interruption")
}

// fail records cause as an instance fault and ends the run with ev.
func (r *run) fail(ctx context.Context, ev sm.Event, host string, cause error,
	apply func(*compute.Instance, *compute.Migration)) error {
	r.fault(ctx, host, cause)
	return r.failed(ctx, ev, cause, apply)
}

// failed writes the failure outcome ev, rolls the pending quota back and
// keeps the outcome as the run's error.
func (r *run) failed(ctx context.Context, ev sm.Event, cause error, apply func(*compute.Instance, *compute.Migration)) error {
	r.cause = cause
	resID := r.reservation()
	if err := r.step(ctx, ev, apply); err != nil {
		return err
	}
	r.rollbackQuota(ctx, resID, r.undo())
	r.o.dropClaim(r.migUUID())
	r.failure = &OperationError{Op: r.op, InstanceUUID: r.inst.UUID, MigrationUUID: r.migUUID(), State: r.state(),
		Err: cause}
	return nil
}

// undo is what takes the run's reservation out of usage again if an
// earlier attempt committed it.
func (r *run) undo() quota.Deltas {
	if r.mig == nil {
		return nil
	}
	old, nw := quotaFlavor(r.mig.OldFlavor), quotaFlavor(r.mig.NewFlavor)
	switch r.flow {
	case sm.FlowConfirm, sm.FlowAutoConfirm:
		return quota.UpsizeDelta(old, nw)
	case sm.FlowRevert:
		return quota.UpsizeDelta(nw, old)
	}
	return quota.ReverseUpsizeDelta(nw, old)
}

// powerOn is Nova's power_on = old_vm_state != stopped.
func (r *run) powerOn() bool {
	return sm.VMState(r.inst.SystemMetadata[compute.SysMetaOldVMState]) != sm.VMStopped
}

// restoreSource puts the instance back on the source with its old flavor
// and clears what the move kept.
func restoreSource(i *compute.Instance, m *compute.Migration) {
	if m != nil && m.SourceCompute != "" {
		i.Host, i.Node = m.SourceCompute, m.SourceNode
	}
	resetFlavor(i, m)
}

// resetFlavor sets the flavor back to the old one and clears the move.
func resetFlavor(i *compute.Instance, m *compute.Migration) {
	if i.OldFlavor != nil {
		i.Flavor = i.OldFlavor
	}
	clearMoveKeepFlavor(i, m)
}

// clearMoveKeepFlavor clears old_flavor, new_flavor, old_vm_state and
// the keys of the steps (Nova's finally blocks).
func clearMoveKeepFlavor(i *compute.Instance, _ *compute.Migration) {
	i.OldFlavor, i.NewFlavor = nil, nil
	for _, k := range []string{compute.SysMetaOldVMState, SysMetaTargetHost, SysMetaSuspend} {
		setMeta(i, k, "")
	}
}

// disksChange is finish_migration's resize_instance: a root, ephemeral
// or swap size differs.
func disksChange(old, nw *compute.Flavor) bool {
	if old == nil || nw == nil {
		return false
	}
	return old.RootGB != nw.RootGB || old.EphemeralGB != nw.EphemeralGB || old.SwapMB != nw.SwapMB
}
