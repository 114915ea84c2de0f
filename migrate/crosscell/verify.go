package crosscell

import (
	"context"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/migrate"
	"github.com/xenflow/xenflow/quota"
	sm "github.com/xenflow/xenflow/statemachine"
)

// confirm is API.confirm_resize and ConfirmResizeTask: migration
// confirming, the source guest and disks destroyed, the source cell's
// records hard-deleted, the migration confirmed.
func (m *move) confirm(ctx context.Context, requestID string) error {
	deltas := quota.DownsizeDelta(quotaFlavor(m.dst.mig.NewFlavor), quotaFlavor(m.dst.mig.OldFlavor))
	if err := m.beginAction(ctx, sm.EvAPIConfirmResize, sm.ActionConfirmResize, requestID, deltas); err != nil {
		return err
	}
	return m.finishConfirm(ctx)
}

// finishConfirm is ConfirmResizeTask from the confirming state.
func (m *move) finishConfirm(ctx context.Context) error {
	if m.src.exists() {
		err := retry(ctx, func() error {
			return m.src.cell.Driver.Destroy(ctx, compute.DestroyRequest{Instance: m.src.inst,
				Host: m.dst.mig.SourceCompute, DestroyDisks: true})
		})
		if err != nil {
			return m.failVerify(ctx, sm.EvCrossCellConfirmError, err)
		}
	}
	if m.dst.state().Migration == sm.MigrationConfirming && m.spawnedGuestFound(ctx) {
		m.deleteSnapshot(ctx)
	}
	if err := m.destroyCopy(ctx, m.src); err != nil {
		return err
	}
	m.settle(ctx, m.dst.mig.QuotaReservationID, true)
	if m.dst.state().Migration == sm.MigrationConfirming {
		err := m.write(ctx, m.dst, []sm.Event{sm.EvCrossCellConfirm}, func(i *compute.Instance, _ *compute.Migration) {
			i.OldFlavor, i.NewFlavor = nil, nil
			clearMoveMeta(i)
		})
		if err != nil {
			return err
		}
		m.event(ctx, m.dst, "compute_confirm_snapshot_based_resize_at_source", m.dst.mig.SourceCompute, nil)
		m.finishAction(ctx, m.dst)
	}
	m.c.claims.drop(m.migUUID)
	return nil
}

// revert is API.revert_resize and RevertResizeTask.
func (m *move) revert(ctx context.Context, requestID string) error {
	deltas := quota.ReverseUpsizeDelta(quotaFlavor(m.dst.mig.NewFlavor), quotaFlavor(m.dst.mig.OldFlavor))
	if err := m.beginAction(ctx, sm.EvAPIRevertResize, sm.ActionRevertResize, requestID, deltas); err != nil {
		return err
	}
	return m.finishRevert(ctx)
}

// finishRevert is RevertResizeTask from the reverting state: the
// destination guest and disks destroyed, the source guest started again
// (unless it was stopped), the target copy reverted and hidden, the
// source copy made level with it, mapped and shown, and the target
// cell's records hard-deleted; the move's system metadata goes last, so
// Resume finds a revert until it is complete.
func (m *move) finishRevert(ctx context.Context) error {
	if m.dst.state().Migration == sm.MigrationReverting {
		m.notify(ctx, m.dst.inst, sm.NotifyExists, nil) // revert_snapshot_based_resize_at_dest
		err := retry(ctx, func() error {
			return m.dst.cell.Driver.Destroy(ctx, compute.DestroyRequest{Instance: m.dst.inst,
				Host: m.dst.mig.DestCompute, DestroyDisks: true})
		})
		if err == nil {
			m.event(ctx, m.dst, "compute_revert_snapshot_based_resize_at_dest", m.dst.mig.DestCompute, nil)
			if powerOn(m.dst.inst) {
				err = retry(ctx, func() error {
					return m.src.cell.Driver.PowerOn(ctx, compute.InstanceRequest{Instance: m.src.inst, Host: m.dst.mig.SourceCompute})
				})
			}
		}
		if err != nil {
			return m.failVerify(ctx, sm.EvCrossCellRevertError, err)
		}
		m.event(ctx, m.dst, "compute_finish_revert_snapshot_based_resize_at_source", m.dst.mig.SourceCompute, nil)
		m.finishAction(ctx, m.dst)
		old := m.dst.mig.OldFlavor
		err = m.write(ctx, m.dst, []sm.Event{sm.EvCrossCellRevert}, func(i *compute.Instance, mg *compute.Migration) {
			i.Hidden, i.Flavor, i.OldFlavor, i.NewFlavor = true, old.Clone(), nil, nil
			i.Host, i.Node = mg.SourceCompute, mg.SourceNode
			i.PowerState = sm.PowerShutdown
			if powerOn(i) {
				i.PowerState = sm.PowerRunning
			}
		})
		if err != nil {
			return err
		}
	}
	return m.settleRevert(ctx)
}

// settleRevert brings the source copy level with the reverted target
// copy, maps the instance back and hard-deletes the target cell's records.
func (m *move) settleRevert(ctx context.Context) error {
	if m.dst.exists() {
		t, tm := m.dst.inst, m.dst.mig
		if m.src.mig != nil && m.src.state() != m.dst.state() {
			err := m.set(ctx, m.src, m.dst.state(), func(i *compute.Instance, mg *compute.Migration) {
				*i = *levelled(t, i)
				i.Cell = m.src.cell.Name
				keep := mg.UUID
				*mg = *tm.Clone()
				mg.UUID = keep
			})
			if err != nil {
				return err
			}
		}
		if err := m.mapTo(ctx, m.src); err != nil {
			return err
		}
	}
	if m.src.inst.Hidden {
		if err := m.write(ctx, m.src, nil, func(i *compute.Instance, _ *compute.Migration) { i.Hidden = false }); err != nil {
			return err
		}
	}
	if err := m.copyActions(ctx, m.dst, m.src); err != nil {
		return err
	}
	if err := m.destroyCopy(ctx, m.dst); err != nil {
		return err
	}
	if m.src.mig != nil {
		m.settle(ctx, m.src.mig.QuotaReservationID, true)
	}
	m.deleteSnapshot(ctx)
	m.c.claims.drop(m.migUUID)
	return m.write(ctx, m.src, nil, func(i *compute.Instance, _ *compute.Migration) { clearMoveMeta(i) })
}

// beginAction reserves deltas, writes the API step ev on the visible
// (target) copy and records the instance action there.
func (m *move) beginAction(ctx context.Context, ev sm.Event, action sm.Action, requestID string, deltas quota.Deltas) error {
	k := m.dst
	resID := ""
	if len(deltas) > 0 {
		id, err := m.c.ledger.Reserve(ctx, k.inst.ProjectID, k.inst.UserID, deltas)
		if err != nil {
			return err
		}
		resID = id
	}
	err := m.write(ctx, k, []sm.Event{ev}, func(i *compute.Instance, mg *compute.Migration) {
		mg.QuotaReservationID = resID
		setMeta(i, migrate.SysMetaRequestID, requestID)
	})
	if err != nil {
		m.settle(ctx, resID, false)
		return err
	}
	if err := k.cell.Store.CreateAction(ctx, &compute.InstanceAction{RequestID: requestID, InstanceUUID: k.inst.UUID,
		Action: action, UserID: k.inst.UserID, ProjectID: k.inst.ProjectID, StartTime: m.c.now()}); err != nil {
		m.c.log.Warn("crosscell: instance action not recorded")
	}
	return nil
}

// failVerify ends a confirm or revert whose driver call failed in error
// after its retries (the flow's ConfirmResizeTask / RevertResizeTask error
// rows); the quota
// reservation is rolled back.
func (m *move) failVerify(ctx context.Context, ev sm.Event, cause error) error {
	if interrupted(ctx, cause) {
		return cause
	}
	te := &TaskError{InstanceUUID: m.instanceUUID(), MigrationUUID: m.migUUID, Task: "ConfirmResizeTask",
		Cell: m.src.cell.Name, Err: cause}
	if ev == sm.EvCrossCellRevertError {
		te.Task, te.Cell = "RevertResizeTask", m.dst.cell.Name
	}
	if err := m.write(ctx, m.dst, []sm.Event{ev}, nil); err != nil {
		return err
	}
	m.event(ctx, m.dst, "conductor_"+te.Task, "", te)
	m.settle(ctx, m.dst.mig.QuotaReservationID, false)
	return te
}

// clearMoveMeta drops the move's keys from the system metadata.
func clearMoveMeta(i *compute.Instance) {
	for _, k := range []string{SysMetaSourceCell, SysMetaTargetCell, SysMetaAlternates, SysMetaSnapshot, SysMetaRollback} {
		delete(i.SystemMetadata, k)
	}
}

// copyActions copies the instance actions and events from's cell holds
// and to's lacks into to's cell (RevertResizeTask's
// _update_instance_actions_in_source_cell), before from's records are
// hard-deleted.
func (m *move) copyActions(ctx context.Context, from, to *copyOf) error {
	if !from.exists() {
		return nil
	}
	acts, err := from.cell.Store.ListActions(ctx, m.uuid)
	if err != nil {
		return err
	}
	for _, a := range acts {
		have, err := to.cell.Store.GetAction(ctx, m.uuid, a.RequestID)
		if isNotFound(err) {
			if err := to.cell.Store.CreateAction(ctx, a); err != nil && !alreadyExists(err) {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		for _, ev := range a.Events {
			if !hasEvent(have, ev.Event) {
				if err := to.cell.Store.SaveActionEvent(ctx, m.uuid, a.RequestID, ev); err != nil {
					return err
				}
			}
		}
		if !a.FinishTime.IsZero() && have.FinishTime.IsZero() {
			if err := to.cell.Store.FinishAction(ctx, m.uuid, a.RequestID, a.FinishTime); err != nil {
				return err
			}
		}
	}
	return nil
}

func hasEvent(a *compute.InstanceAction, name string) bool {
	for _, e := range a.Events {
		if e.Event == name {
			return true
		}
	}
	return false
}
