package crosscell

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/migrate"
	"github.com/xenflow/xenflow/scheduler"
	sm "github.com/xenflow/xenflow/statemachine"
)

// task is one sub-task of CrossCellMigrationTask: execute finds its work
// done (by the copies' states) or does it; rollback undoes it and is
// idempotent.
type task struct {
	name     string
	execute  func(context.Context) error
	rollback func(context.Context) error
}

// tasks are the sub-tasks in their order.
func (m *move) tasks() []task {
	return []task{
		{"TargetDBSetupTask", m.targetDBSetup, m.undoTargetDBSetup},
		{"PrepResizeAtDestTask", m.prepAtDest, m.undoPrepAtDest},
		{"PrepResizeAtSourceTask", m.prepAtSource, m.undoPrepAtSource},
		{"FinishResizeAtDestTask", m.finishAtDest, m.undoFinishAtDest},
	}
}

// forward runs the tasks from the first not done; a failing task rolls
// back every task up to it, in reverse.
func (m *move) forward(ctx context.Context) error {
	ts := m.tasks()
	for i, t := range ts {
		if err := t.execute(ctx); err != nil {
			if interrupted(ctx, err) {
				return err
			}
			return m.rollback(ctx, i, &TaskError{InstanceUUID: m.instanceUUID(), MigrationUUID: m.migUUID,
				Task: t.name, Cell: m.taskCell(i), Err: err})
		}
	}
	return nil
}

func (m *move) taskCell(i int) string {
	if i == 2 {
		return m.src.cell.Name
	}
	return m.dst.cell.Name
}

// targetDBSetup is TargetDBSetupTask: the instance (hidden), its
// migration and its action copied into the target cell's database.
func (m *move) targetDBSetup(ctx context.Context) error {
	if rank(m.src.state()) >= 1 {
		return nil
	}
	if !m.dst.exists() {
		ti := m.src.inst.Clone()
		ti.Hidden, ti.Cell = true, m.dst.cell.Name
		if err := m.dst.cell.Store.CreateInstance(ctx, ti); err != nil && !alreadyExists(err) {
			return err
		}
	}
	tm := m.src.mig.Clone()
	tm.CrossCellMove = true
	if err := m.dst.cell.Store.CreateMigration(ctx, tm); err != nil && !alreadyExists(err) {
		return err
	}
	if err := m.copyAction(ctx); err != nil {
		return err
	}
	if err := m.read(ctx, m.dst); err != nil {
		return err
	}
	return m.write(ctx, m.src, []sm.Event{sm.EvCrossCellTargetDBSetup}, nil)
}

// copyAction copies the instance action of the move into the target cell.
func (m *move) copyAction(ctx context.Context) error {
	rid := m.src.inst.SystemMetadata[migrate.SysMetaRequestID]
	a, err := m.src.cell.Store.GetAction(ctx, m.src.inst.UUID, rid)
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := m.dst.cell.Store.CreateAction(ctx, a); err != nil && !alreadyExists(err) {
		return err
	}
	return nil
}

// undoTargetDBSetup puts the mapping back on the source cell, shows the
// source copy and hard-deletes the target cell's records.
func (m *move) undoTargetDBSetup(ctx context.Context) error {
	if err := m.mapTo(ctx, m.src); err != nil {
		return err
	}
	if m.src.inst.Hidden {
		if err := m.write(ctx, m.src, nil, func(i *compute.Instance, _ *compute.Migration) { i.Hidden = false }); err != nil {
			return err
		}
	}
	return m.destroyCopy(ctx, m.dst)
}

// destroyCopy hard-deletes a cell's copy after giving up its lease.
func (m *move) destroyCopy(ctx context.Context, k *copyOf) error {
	if k.lease.Owner != "" {
		if err := k.cell.Store.ReleaseLease(ctx, k.lease); err != nil {
			return err
		}
		k.lease = compute.Lease{}
	}
	d, err := k.cell.destroyer()
	if err != nil {
		return err
	}
	if err := d.DestroyInstance(ctx, m.instanceUUID()); err != nil {
		return err
	}
	k.inst, k.mig = nil, nil
	return nil
}

// mapTo points the instance mapping at k's cell.
func (m *move) mapTo(ctx context.Context, k *copyOf) error {
	cur, err := m.c.api.GetMapping(ctx, m.instanceUUID())
	if err != nil {
		return err
	}
	if cur.Cell == k.cell.Name {
		return nil
	}
	cur.Cell = k.cell.Name
	return m.c.api.SaveMapping(ctx, cur)
}

// prepAtDest is PrepResizeAtDestTask: the resources of the chosen host
// claimed, or of the next alternate of its cell when they do not fit.
func (m *move) prepAtDest(ctx context.Context) error {
	if rank(m.src.state()) >= 2 {
		// a resumed move: its claim is held again, as it was checked
		h := m.src.mig.DestCompute
		cl := claim{cell: m.dst.cell.Name, host: h, instance: m.uuid, flavor: schedFlavor(m.src.inst.NewFlavor)}
		return m.c.claims.take(m.migUUID, cl, scheduler.HostState{Host: h}, func(scheduler.HostState) error { return nil })
	}
	hosts := []string{m.src.mig.DestCompute}
	if alts := m.src.inst.SystemMetadata[SysMetaAlternates]; alts != "" {
		hosts = append(hosts, strings.Split(alts, ",")...)
	}
	var last error
	for _, h := range hosts {
		st, err := m.claim(ctx, h)
		if err != nil {
			if interrupted(ctx, err) {
				return err
			}
			last = err
			continue
		}
		m.event(ctx, m.src, "compute_prep_snapshot_based_resize_at_dest", h, nil)
		// prep_snapshot_based_resize_at_dest: _send_prep_resize_notifications
		for _, n := range []sm.Notification{sm.NotifyExists, sm.NotifyResizePrepStart, sm.NotifyResizePrepEnd} {
			m.notify(ctx, m.src.inst, n, nil)
		}
		return m.write(ctx, m.src, []sm.Event{sm.EvCrossCellPrepAtDest}, func(_ *compute.Instance, mg *compute.Migration) {
			mg.DestCompute, mg.DestNode, mg.DestHost = st.Host, st.Node, st.Host
		})
	}
	return last
}

// claim checks that the flavor fits host h of the target cell now, with
// the other moves' claims on it taken off: the scheduler's filters run on
// that one host (Nova's MoveClaim). The claim is then held until the
// move is confirmed, reverted or rolled back.
func (m *move) claim(ctx context.Context, h string) (scheduler.HostState, error) {
	st, err := m.dst.cell.Driver.GetAvailableResource(ctx, compute.HostRequest{Host: h})
	if err != nil {
		return st, err
	}
	st.Cell = m.dst.cell.Name
	f := schedFlavor(m.src.inst.NewFlavor)
	cl := claim{cell: m.dst.cell.Name, host: h, instance: m.uuid, flavor: f}
	return st, m.c.claims.take(m.migUUID, cl, st, func(free scheduler.HostState) error {
		hs, err := scheduler.NewHostSet([]scheduler.HostState{free})
		if err == nil {
			_, err = m.c.sched.Select(hs, &scheduler.Request{Flavor: f, InstanceUUID: m.uuid, RequestedHost: h})
		}
		return err
	})
}

// undoPrepAtDest releases the destination's claim.
func (m *move) undoPrepAtDest(context.Context) error {
	m.c.claims.drop(m.migUUID)
	return nil
}

// prepAtSource is PrepResizeAtSourceTask: old_vm_state stashed, the root
// disk snapshotted into the image store and the guest powered off; the
// source guest and its disks are kept for a revert.
func (m *move) prepAtSource(ctx context.Context) error {
	if rank(m.src.state()) == 2 {
		err := m.write(ctx, m.src, []sm.Event{sm.EvCrossCellPrepAtSource, sm.EvCrossCellSourceMigrating},
			func(i *compute.Instance, _ *compute.Migration) {
				setMeta(i, compute.SysMetaOldVMState, string(i.VMState))
				setMeta(i, SysMetaSnapshot, "xenflow-snapshot-"+m.migUUID)
			})
		if err != nil {
			return err
		}
	}
	if rank(m.src.state()) >= 5 {
		return nil
	}
	if rank(m.src.state()) == 3 {
		if err := m.write(ctx, m.src, []sm.Event{sm.EvCrossCellSourceMigrating}, nil); err != nil {
			return err
		}
	}
	inst, host := m.src.inst, m.src.mig.SourceCompute
	drv := m.src.cell.Driver
	m.notify(ctx, inst, sm.NotifyResizeStart, nil)
	if err := drv.Snapshot(ctx, compute.SnapshotRequest{Instance: inst, Host: host,
		ImageID: inst.SystemMetadata[SysMetaSnapshot]}); err != nil {
		return err
	}
	if err := drv.PowerOff(ctx, compute.PowerOffRequest{Instance: inst, Host: host}); err != nil {
		return err
	}
	m.event(ctx, m.src, "compute_prep_snapshot_based_resize_at_source", host, nil)
	err := m.write(ctx, m.src, []sm.Event{sm.EvCrossCellSourcePoweredOff}, func(i *compute.Instance, _ *compute.Migration) {
		i.PowerState, i.Progress = sm.PowerShutdown, 40
	})
	if err == nil {
		m.notify(ctx, m.src.inst, sm.NotifyResizeEnd, nil)
	}
	return err
}

// undoPrepAtSource starts the kept source guest again when it ran.
func (m *move) undoPrepAtSource(ctx context.Context) error {
	if !powerOn(m.src.inst) || m.src.mig == nil {
		return nil
	}
	return m.src.cell.Driver.PowerOn(ctx, compute.InstanceRequest{Instance: m.src.inst, Host: m.src.mig.SourceCompute})
}

// powerOn reports whether the guest ran before the move (old_vm_state is
// not stopped).
func powerOn(i *compute.Instance) bool {
	old := i.SystemMetadata[compute.SysMetaOldVMState]
	if old == "" {
		old = string(i.VMState)
	}
	return old != string(sm.VMStopped)
}

// finishAtDest is FinishResizeAtDestTask: the target copy brought level
// with the source, the guest spawned on the destination from the
// snapshot, the hidden flags and the instance mapping swapped.
func (m *move) finishAtDest(ctx context.Context) error {
	if rank(m.dst.state()) < 5 {
		src, srcMig := m.src.inst, m.src.mig
		err := m.set(ctx, m.dst, m.src.state(), func(i *compute.Instance, mg *compute.Migration) {
			*i = *levelled(src, i)
			keep := mg.UUID
			*mg = *srcMig.Clone()
			mg.UUID, mg.CrossCellMove = keep, true
		})
		if err != nil {
			return err
		}
	}
	if rank(m.dst.state()) == 5 {
		err := m.write(ctx, m.dst, []sm.Event{sm.EvCrossCellFinishAtDest}, func(i *compute.Instance, mg *compute.Migration) {
			i.Host, i.Node, i.Progress = mg.DestCompute, mg.DestNode, 60
		})
		if err != nil {
			return err
		}
	}
	if rank(m.dst.state()) == 6 {
		if err := m.spawn(ctx); err != nil {
			return err
		}
	}
	if rank(m.dst.state()) == 8 {
		if err := m.swap(ctx); err != nil {
			return err
		}
	}
	m.settle(ctx, m.dst.mig.QuotaReservationID, true)
	return nil
}

// levelled is the source copy src as the target cell keeps it: hidden,
// in cell of the target copy t, with t's timestamps.
func levelled(src, t *compute.Instance) *compute.Instance {
	c := src.Clone()
	c.Hidden, c.Cell, c.CreatedAt, c.UpdatedAt = true, t.Cell, t.CreatedAt, t.UpdatedAt
	return c
}

// spawn creates the destination guest from the snapshot and finishes the
// target copy in vm_state resized.
func (m *move) spawn(ctx context.Context) error {
	inst := m.dst.inst
	on := powerOn(inst)
	err := m.dst.cell.Driver.Spawn(ctx, compute.SpawnRequest{Instance: inst, Host: m.dst.mig.DestCompute,
		ImageRef: inst.SystemMetadata[SysMetaSnapshot], Flavor: inst.NewFlavor, PowerOn: on})
	if err != nil {
		return err
	}
	m.event(ctx, m.dst, "compute_finish_snapshot_based_resize_at_dest", m.dst.mig.DestCompute, nil)
	return m.write(ctx, m.dst, []sm.Event{sm.EvDestMigrationFinished, sm.EvDestInstanceResized},
		func(i *compute.Instance, _ *compute.Migration) {
			i.Flavor, i.Progress, i.LaunchedAt = i.NewFlavor.Clone(), 100, m.c.now()
			i.PowerState = sm.PowerShutdown
			if on {
				i.PowerState = sm.PowerRunning
			}
		})
}

// swap hides the source copy, maps the instance to the target cell and
// shows the target copy: the instance is in VERIFY_RESIZE there.
func (m *move) swap(ctx context.Context) error {
	if !m.src.inst.Hidden {
		if err := m.write(ctx, m.src, nil, func(i *compute.Instance, _ *compute.Migration) { i.Hidden = true }); err != nil {
			return err
		}
	}
	if err := m.mapTo(ctx, m.dst); err != nil {
		return err
	}
	err := m.write(ctx, m.dst, []sm.Event{sm.EvCrossCellSwapHidden}, func(i *compute.Instance, _ *compute.Migration) {
		i.Hidden = false
	})
	if err == nil {
		m.finishAction(ctx, m.dst)
	}
	return err
}

// undoFinishAtDest removes what the destination got: its guest and disks.
func (m *move) undoFinishAtDest(ctx context.Context) error {
	if !m.dst.exists() || m.dst.mig == nil || m.dst.mig.DestCompute == "" {
		return nil
	}
	return m.dst.cell.Driver.Destroy(ctx, compute.DestroyRequest{Instance: m.dst.inst, Host: m.dst.mig.DestCompute,
		DestroyDisks: true})
}

// rollback marks the source copy as rolling back, runs the rollbacks of
// tasks failed..0 in reverse and ends the source copy in the flow's
// failure state; cause is returned.
func (m *move) rollback(ctx context.Context, failed int, cause *TaskError) error {
	err := m.write(ctx, m.src, nil, func(i *compute.Instance, _ *compute.Migration) {
		setMeta(i, SysMetaRollback, fmt.Sprintf("%s: %v", cause.Task, cause.Err))
	})
	if err != nil {
		return err
	}
	return m.finishRollback(ctx, failed, cause)
}

// finishRollback is rollback after the mark was written (a resumed
// rollback starts here).
func (m *move) finishRollback(ctx context.Context, failed int, cause error) error {
	ts := m.tasks()
	for i := failed; i >= 0; i-- {
		if err := retry(ctx, func() error { return ts[i].rollback(ctx) }); err != nil {
			return fmt.Errorf("crosscell: rollback of %s: %w (after %w)", ts[i].name, err, cause)
		}
	}
	m.settle(ctx, m.src.mig.QuotaReservationID, false)
	m.deleteSnapshot(ctx)
	ev := failureEvent(m.c.flow, m.src)
	apply := func(i *compute.Instance, mg *compute.Migration) {
		clearMoveMeta(i)
		i.Hidden, i.OldFlavor, i.NewFlavor, i.Progress = false, nil, nil, 0
	}
	var err error
	if ev == "" {
		err = m.set(ctx, m.src, sm.FlowState{VM: sm.VMError, Migration: sm.MigrationError}, apply)
	} else {
		err = m.write(ctx, m.src, []sm.Event{ev}, apply)
	}
	if err != nil {
		return err
	}
	m.notify(ctx, m.src.inst, sm.NotifyMigrateServerError, cause)
	m.event(ctx, m.src, "conductor_migrate_server", "", cause)
	m.finishAction(ctx, m.src)
	if err := m.src.cell.Store.AddFault(ctx, &compute.Fault{InstanceUUID: m.src.inst.UUID, Code: 500,
		Message: cause.Error(), Host: m.src.inst.Host}); err != nil {
		m.c.log.Warn("crosscell: fault not recorded")
	}
	return cause
}

// failureEvent is the flow's error event from the copy's state: the
// move ends rolled back (vm_state unchanged) before the source was
// touched, in error after.
func failureEvent(flow *sm.FlowMachine, k *copyOf) sm.Event {
	for _, ev := range []sm.Event{sm.EvCrossCellPrepAtDestError, sm.EvConductorNoValidHost,
		sm.EvCrossCellPrepAtSourceError, sm.EvCrossCellFinishAtDestError} {
		if flow.Can(k.state(), ev, k.inst.Facts()) {
			return ev
		}
	}
	return ""
}

// retry calls f up to three times while it fails and ctx is live: the
// steps of a rollback, which has no further way back.
func retry(ctx context.Context, f func() error) error {
	var err error
	for i := 0; i < 3; i++ {
		if err = f(); err == nil || interrupted(ctx, err) {
			return err
		}
	}
	return err
}

func alreadyExists(err error) bool { return err != nil && errors.Is(err, compute.ErrAlreadyExists) }

func schedFlavor(f *compute.Flavor) scheduler.Flavor {
	if f == nil {
		return scheduler.Flavor{}
	}
	return scheduler.Flavor{MemoryMB: int64(f.MemoryMB), VCPUs: int64(f.VCPUs), RootGB: int64(f.RootGB),
		EphemeralGB: int64(f.EphemeralGB), SwapMB: int64(f.SwapMB)}
}
