package migrate

import (
	"context"
	"errors"
	"fmt"

	"github.com/xenflow/xenflow/compute"
	sm "github.com/xenflow/xenflow/statemachine"
)

// confirmSource is ComputeManager._confirm_resize on the source:
// driver.confirm_migration destroys the kept guest, the downsize is
// committed, the migration confirmed and the vm_state follows the power
// state (stopped when shut down, else active). Outside Nova's mode a
// failing confirm_migration is tried again (it is idempotent by
// contract): one that destroyed part of the kept guest before failing
// must not leave VERIFY_RESIZE with a source that can no longer be
// reverted to.
func (r *run) confirmSource(ctx context.Context) error {
	src := r.mig.SourceCompute
	err := r.retryIntact(ctx, func() error {
		return r.o.driver.ConfirmMigration(ctx, compute.ConfirmMigrationRequest{Instance: r.inst, Migration: r.mig, Host: src})
	})
	if err != nil {
		return r.intactFailed(ctx, "compute_confirm_resize", src, err, sm.EvSourceConfirmResizeError, sm.EvConfirmFailedIntact)
	}
	power := r.powerState(ctx, r.mig.DestCompute)
	if err := r.commitQuota(ctx, r.reservation()); err != nil {
		return err
	}
	facts := r.inst.Facts()
	facts.PowerState = power
	r.facts = &facts
	err = r.step(ctx, sm.EvSourceConfirmResize, func(i *compute.Instance, _ *compute.Migration) {
		i.PowerState = power
		clearMoveKeepFlavor(i, nil)
	})
	if err != nil {
		return err
	}
	r.event(ctx, "compute_confirm_resize", src, nil)
	return nil
}

// intactFailed ends a confirm or revert whose driver call on host failed
// while the destination guest is intact: Nova's error outcome novaEv in
// its mode, else intactEv back to VERIFY_RESIZE. An interruption is
// returned as it is.
func (r *run) intactFailed(ctx context.Context, event, host string, cause error, novaEv, intactEv sm.Event) error {
	if interrupted(ctx, cause) {
		return cause
	}
	r.event(ctx, event, host, cause)
	if r.o.opts.NovaCompatibleErrors {
		return r.fail(ctx, novaEv, host, cause, nil)
	}
	return r.fail(ctx, intactEv, host, cause, nil)
}

// retryIntact is retry outside Nova's mode, where a confirm or revert
// that fails goes back to VERIFY_RESIZE and must leave both guests whole;
// in Nova's mode the one call's failure is the outcome.
func (r *run) retryIntact(ctx context.Context, f func() error) error {
	if r.o.opts.NovaCompatibleErrors {
		return f()
	}
	return r.retry(ctx, f)
}

// powerState asks the driver for the guest's power state on host
// (ComputeManager._get_power_state); when it cannot say, the stored one.
func (r *run) powerState(ctx context.Context, host string) sm.PowerState {
	info, err := r.o.driver.GetInfo(ctx, compute.InstanceRequest{Instance: r.inst, Host: host})
	if err != nil || !info.PowerState.Valid() {
		return r.inst.PowerState
	}
	return info.PowerState
}

// revertDest is ComputeManager.revert_resize on the destination: the
// destination guest destroyed with its disks, the migration reverted.
// A failing destroy is tried again in both modes (it is idempotent by
// contract): a destination half destroyed (its disks gone, its VM left)
// must not become the instance's VERIFY_RESIZE guest, nor, in Nova's
// mode, its guest in error. A destroy that failed but left no guest on
// the destination did its work; what it left is for CleanupMigration.
func (r *run) revertDest(ctx context.Context) error {
	dest := r.mig.DestCompute
	err := r.retry(ctx, func() error {
		return r.o.driver.Destroy(ctx, compute.DestroyRequest{Instance: r.inst, Host: dest, DestroyDisks: true,
			Migration: r.mig})
	})
	if err != nil && !interrupted(ctx, err) && r.guestGone(ctx, dest) {
		r.fault(ctx, dest, fmt.Errorf("migrate: the guest on %s is destroyed, its disks are left for cleanup: %w", dest, err))
		err = nil
	}
	if err != nil {
		return r.intactFailed(ctx, "compute_revert_resize", dest, err, sm.EvDestRevertResizeError, sm.EvRevertFailedIntact)
	}
	if err := r.step(ctx, sm.EvDestRevertResize, nil); err != nil {
		return err
	}
	r.event(ctx, "compute_revert_resize", dest, nil)
	return nil
}

// guestGone reports whether the driver says the instance has no guest on
// host.
func (r *run) guestGone(ctx context.Context, host string) bool {
	_, err := r.o.driver.GetInfo(ctx, compute.InstanceRequest{Instance: r.inst, Host: host})
	return errors.Is(err, compute.ErrNotFound)
}

// finishRevert is ComputeManager.finish_revert_resize on the source:
// driver.finish_revert_migration restores the kept guest (started unless
// old_vm_state is stopped), the reverse upsize is committed, the flavor
// and host go back to the source's; a stopped instance goes on to
// powering-off.
func (r *run) finishRevert(ctx context.Context) error {
	src := r.mig.SourceCompute
	powerOn := r.powerOn()
	call := func() error {
		return r.o.driver.FinishRevertMigration(ctx, compute.FinishRevertRequest{Instance: r.inst, Migration: r.mig,
			Host: src, PowerOn: powerOn})
	}
	var err error
	if r.o.opts.NovaCompatibleErrors {
		err = call()
	} else {
		err = r.retry(ctx, call)
	}
	if err != nil {
		if interrupted(ctx, err) {
			return err
		}
		r.event(ctx, "compute_finish_revert_resize", src, err)
		return r.fail(ctx, sm.EvSourceFinishRevertResizeError, src, err,
			func(i *compute.Instance, m *compute.Migration) { i.Host, i.Node = m.SourceCompute, m.SourceNode })
	}
	if err := r.commitQuota(ctx, r.reservation()); err != nil {
		return err
	}
	power := sm.PowerShutdown
	if powerOn {
		power = sm.PowerRunning
	}
	err = r.step(ctx, sm.EvSourceFinishRevertResize, func(i *compute.Instance, m *compute.Migration) {
		restoreSource(i, m)
		i.PowerState = power
		i.LaunchedAt = r.o.now()
		if !powerOn {
			setMeta(i, compute.SysMetaOldVMState, string(sm.VMStopped))
		}
	})
	if err != nil {
		return err
	}
	r.event(ctx, "compute_finish_revert_resize", src, nil)
	return nil
}

// stopInstance is ComputeManager.stop_instance after the revert of a
// stopped instance: the guest, restored without power-on, is powered off
// (a no-op when it is off) and the instance becomes stopped.
func (r *run) stopInstance(ctx context.Context) error {
	src := r.inst.Host
	err := r.o.driver.PowerOff(ctx, compute.PowerOffRequest{Instance: r.inst, Host: src, Clean: r.o.opts.CleanShutdown,
		Timeout: r.o.opts.ShutdownTimeout})
	if err != nil {
		if interrupted(ctx, err) {
			return err
		}
		// FinishRevertMigration left the guest off: the instance is
		// stopped whatever the extra power-off says.
		r.fault(ctx, src, err)
	}
	err = r.step(ctx, sm.EvSourceStopInstance, func(i *compute.Instance, _ *compute.Migration) {
		i.PowerState = sm.PowerShutdown
		setMeta(i, compute.SysMetaOldVMState, "")
	})
	if err != nil {
		return err
	}
	r.event(ctx, "compute_stop_instance", src, nil)
	return nil
}
