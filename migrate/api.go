package migrate

import (
	"context"
	"errors"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/quota"
	sm "github.com/xenflow/xenflow/statemachine"
)

// ResizeRequest asks for a resize (nova/compute/api.py, API.resize with a
// flavor_id).
type ResizeRequest struct {
	InstanceUUID string
	// FlavorID is the new flavor's flavorid.
	FlavorID string
	// RequestID names the instance action (random when empty).
	RequestID string
	// Admin is an admin context: a locked instance may be resized.
	Admin bool
}

// MigrateRequest asks for a cold migration (API.resize without a flavor).
type MigrateRequest struct {
	InstanceUUID string
	// TargetHost, when set, is the only destination considered (Nova's
	// microversion 2.56 host); there is no reschedule.
	TargetHost string
	// Suspend moves the guest suspended so it keeps its running state;
	// the driver must support it.
	Suspend   bool
	RequestID string
	Admin     bool
}

// ActionRequest asks to confirm or revert an instance's resize.
type ActionRequest struct {
	InstanceUUID string
	RequestID    string
	Admin        bool
}

// Result is where an operation ended.
type Result struct {
	InstanceUUID  string
	MigrationUUID string
	SourceHost    string
	DestHost      string
	// State is the instance's and migration's final state.
	State sm.FlowState
	// Attempts counts the destinations prepped (more than one after a
	// reschedule).
	Attempts int
}

func (r *run) result() *Result {
	res := &Result{InstanceUUID: r.inst.UUID, State: r.state(), Attempts: r.attempts}
	if r.mig != nil {
		res.MigrationUUID, res.SourceHost, res.DestHost = r.mig.UUID, r.mig.SourceCompute, r.mig.DestCompute
	}
	return res
}

// Resize resizes an instance to another flavor and leaves it in
// VERIFY_RESIZE (vm_state resized) on the destination, for Confirm or
// Revert. It checks what nova/compute/api.py API.resize checks, in its
// order: the instance exists, is not locked, its vm_state and task_state
// allow a resize; the flavor exists, is enabled and differs; the upsize
// delta fits the quota (a *quota.OverQuotaError with the headroom
// otherwise). Those refusals change nothing. Then it runs the conductor
// and compute steps; an outcome other than VERIFY_RESIZE is returned as an
// *OperationError with the state it ended in.
func (o *Orchestrator) Resize(ctx context.Context, req ResizeRequest) (*Result, error) {
	inst, err := o.checked(ctx, sm.OpResize, req.InstanceUUID, req.Admin)
	if err != nil {
		return nil, err
	}
	newFlavor, err := o.flavors.Flavor(ctx, req.FlavorID)
	if err != nil {
		return nil, &FlavorNotFoundError{FlavorID: req.FlavorID, Err: err}
	}
	same := inst.Flavor != nil && inst.Flavor.ID == newFlavor.ID
	if !same && newFlavor.Disabled {
		return nil, &FlavorNotFoundError{FlavorID: req.FlavorID, Disabled: true}
	}
	if same {
		return nil, &CannotResizeToSameFlavorError{InstanceUUID: inst.UUID, FlavorID: req.FlavorID}
	}
	flow := sm.FlowResize
	if shrinks(inst.Flavor, newFlavor) {
		flow = sm.FlowResizeDown
	}
	return o.start(ctx, startRequest{op: sm.OpResize, flow: flow, ev: sm.EvAPIResize, inst: inst,
		newFlavor: newFlavor, requestID: req.RequestID, action: sm.ActionResize,
		deltas: quota.UpsizeDelta(quotaFlavor(newFlavor), quotaFlavor(inst.Flavor))})
}

// Migrate cold-migrates an instance with its flavor unchanged and leaves
// it in VERIFY_RESIZE on the destination. No quota is reserved. The
// instance's own host is ignored unless AllowMigrateToSameHost (and a
// driver that supports it); a TargetHost equal to it is refused.
func (o *Orchestrator) Migrate(ctx context.Context, req MigrateRequest) (*Result, error) {
	inst, err := o.checked(ctx, sm.OpMigrate, req.InstanceUUID, req.Admin)
	if err != nil {
		return nil, err
	}
	if req.TargetHost != "" && req.TargetHost == inst.Host {
		return nil, &UnsupportedError{InstanceUUID: inst.UUID, What: "cannot migrate to its own host " + inst.Host}
	}
	if req.Suspend && !o.caps.SupportsSuspendMigrate {
		return nil, &UnsupportedError{InstanceUUID: inst.UUID, What: "the driver cannot migrate a suspended guest"}
	}
	return o.start(ctx, startRequest{op: sm.OpMigrate, flow: sm.FlowMigrate, ev: sm.EvAPIMigrate, inst: inst,
		newFlavor: inst.Flavor.Clone(), requestID: req.RequestID, action: sm.ActionMigrate,
		targetHost: req.TargetHost, suspend: req.Suspend})
}

// checked reads an instance and checks op's API preconditions on it
// (check_instance_lock, check_instance_state): a *compute.NotFoundError,
// *statemachine.LockedError or *statemachine.InvalidStateError otherwise.
func (o *Orchestrator) checked(ctx context.Context, op sm.Operation, uuid string, admin bool) (*compute.Instance, error) {
	inst, err := o.store.GetInstance(ctx, uuid)
	if err != nil {
		return nil, err
	}
	if err := o.pre[op].Check(inst.Subject(admin)); err != nil {
		return nil, err
	}
	return inst, nil
}

type startRequest struct {
	op         sm.Operation
	flow       sm.FlowName
	ev         sm.Event
	inst       *compute.Instance
	newFlavor  *compute.Flavor
	requestID  string
	action     sm.Action
	deltas     quota.Deltas
	targetHost string
	suspend    bool
}

// start is the rest of API.resize: the lease, the quota reservation, the
// task_state resize_prep written with compare-and-set, the instance
// action; then the conductor and compute steps.
func (o *Orchestrator) start(ctx context.Context, sr startRequest) (*Result, error) {
	lease, err := o.acquire(ctx, sr.inst.UUID)
	if err != nil {
		return nil, err
	}
	defer o.release(lease)
	r := &run{o: o, op: sr.op, flow: sr.flow, lease: lease, inst: sr.inst}
	ctx, stop := r.keepAlive(ctx)
	defer stop()
	resID, err := o.reserve(ctx, sr.inst, sr.deltas)
	if err != nil {
		return nil, err
	}
	migUUID, err := o.newUUID()
	if err == nil && sr.requestID == "" {
		sr.requestID, err = o.newUUID()
	}
	if err != nil {
		o.settle(ctx, resID)
		return nil, err
	}
	mtype := sm.MigrationTypeMigration
	if sr.op == sm.OpResize {
		mtype = sm.MigrationTypeResize
	}
	mig := &compute.Migration{UUID: migUUID, InstanceUUID: sr.inst.UUID, SourceCompute: sr.inst.Host,
		SourceNode: sr.inst.Node, OldFlavor: sr.inst.Flavor, NewFlavor: sr.newFlavor,
		Status: sm.MigrationPreMigrating, Type: mtype, QuotaReservationID: resID}
	// API.resize's save of resize_prep and the conductor's pre-migrating
	// record (MigrationTask._execute) are one write: nothing acts between.
	err = r.write(ctx, []sm.Event{sr.ev, sm.EvConductorCreateMigration}, mig,
		func(i *compute.Instance, _ *compute.Migration) {
			i.Progress = 0
			i.NewFlavor = sr.newFlavor
			setMeta(i, SysMetaMigration, migUUID)
			setMeta(i, SysMetaRequestID, sr.requestID)
			setMeta(i, SysMetaTargetHost, sr.targetHost)
			if sr.suspend {
				setMeta(i, SysMetaSuspend, "true")
			}
		})
	if err != nil {
		o.settle(ctx, resID)
		return nil, err
	}
	if err := o.store.CreateAction(ctx, &compute.InstanceAction{RequestID: sr.requestID, InstanceUUID: r.inst.UUID,
		Action: sr.action, UserID: r.inst.UserID, ProjectID: r.inst.ProjectID, StartTime: o.now()}); err != nil {
		o.log.Warn("migrate: instance action not recorded", "err", err)
	}
	r.event(ctx, "conductor_migrate_server", "", nil)
	r.progress(ctx, 0, "resize_prep", compute.Progress{})
	return r.finish(ctx)
}

// finish drives the run to a resting state and returns its result.
func (r *run) finish(ctx context.Context) (*Result, error) {
	if err := r.drive(ctx); err != nil {
		return r.result(), err
	}
	return r.result(), r.failure
}

// Confirm confirms a resize or cold migration waiting in VERIFY_RESIZE
// (nova/compute/api.py, API.confirm_resize, then the source's
// ComputeManager._confirm_resize): the source's kept guest is destroyed,
// the migration confirmed, the instance active or stopped by its power
// state, and the downsize delta settled.
func (o *Orchestrator) Confirm(ctx context.Context, req ActionRequest) (*Result, error) {
	return o.verifyAction(ctx, req, sm.OpConfirmResize)
}

// Revert reverts a resize or cold migration waiting in VERIFY_RESIZE
// (API.revert_resize, ComputeManager.revert_resize on the destination and
// finish_revert_resize on the source): the destination guest is
// destroyed, the source guest restored and started unless it was
// stopped, the migration reverted, and the reverse upsize settled.
func (o *Orchestrator) Revert(ctx context.Context, req ActionRequest) (*Result, error) {
	return o.verifyAction(ctx, req, sm.OpRevertResize)
}

func (o *Orchestrator) verifyAction(ctx context.Context, req ActionRequest, op sm.Operation) (*Result, error) {
	inst, err := o.checked(ctx, op, req.InstanceUUID, req.Admin)
	if err != nil {
		return nil, err
	}
	mig, err := o.finishedMigration(ctx, inst)
	if err != nil {
		return nil, err
	}
	lease, err := o.acquire(ctx, inst.UUID)
	if err != nil {
		return nil, err
	}
	defer o.release(lease)
	r := &run{o: o, op: op, flow: sm.FlowConfirm, lease: lease, inst: inst, mig: mig}
	ctx, stop := r.keepAlive(ctx)
	defer stop()
	if req.RequestID == "" {
		if req.RequestID, err = o.newUUID(); err != nil {
			return nil, err
		}
	}
	ev, action := sm.EvAPIConfirmResize, sm.ActionConfirmResize
	deltas := quota.DownsizeDelta(quotaFlavor(mig.NewFlavor), quotaFlavor(mig.OldFlavor))
	if op == sm.OpRevertResize {
		r.flow, ev, action = sm.FlowRevert, sm.EvAPIRevertResize, sm.ActionRevertResize
		deltas = quota.ReverseUpsizeDelta(quotaFlavor(mig.NewFlavor), quotaFlavor(mig.OldFlavor))
	}
	if err := r.begin(ctx, ev, action, req.RequestID, deltas); err != nil {
		return nil, err
	}
	return r.finish(ctx)
}

// begin reserves deltas, writes the API step ev and records the action.
func (r *run) begin(ctx context.Context, ev sm.Event, action sm.Action, requestID string, deltas quota.Deltas) error {
	o := r.o
	resID, err := o.reserve(ctx, r.inst, deltas)
	if err != nil {
		return err
	}
	err = r.step(ctx, ev, func(i *compute.Instance, m *compute.Migration) {
		m.QuotaReservationID = resID
		setMeta(i, SysMetaRequestID, requestID)
	})
	if err != nil {
		o.settle(ctx, resID)
		return err
	}
	if err := o.store.CreateAction(ctx, &compute.InstanceAction{RequestID: requestID, InstanceUUID: r.inst.UUID,
		Action: action, UserID: r.inst.UserID, ProjectID: r.inst.ProjectID, StartTime: o.now()}); err != nil {
		o.log.Warn("migrate: instance action not recorded", "err", err)
	}
	return nil
}

// finishedMigration finds the instance's migration in status finished.
func (o *Orchestrator) finishedMigration(ctx context.Context, inst *compute.Instance) (*compute.Migration, error) {
	if id := inst.SystemMetadata[SysMetaMigration]; id != "" {
		m, err := o.store.GetMigration(ctx, id)
		if err == nil && m.Status == sm.MigrationFinished {
			return m, nil
		}
		if err != nil && !errors.Is(err, compute.ErrNotFound) {
			return nil, err
		}
	}
	ms, err := o.store.ListMigrations(ctx, compute.MigrationFilter{InstanceUUID: inst.UUID,
		Statuses: []sm.MigrationStatus{sm.MigrationFinished}})
	if err != nil {
		return nil, err
	}
	if len(ms) == 0 {
		return nil, &NoMigrationError{InstanceUUID: inst.UUID, Status: sm.MigrationFinished}
	}
	return ms[len(ms)-1], nil
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

// shrinks reports whether any size of the flavor goes down (a resize
// down, nova/virt/xenapi/vmops.py _migrate_disk_resizing_down).
func shrinks(old, nw *compute.Flavor) bool {
	if old == nil || nw == nil {
		return false
	}
	return nw.RootGB < old.RootGB || nw.EphemeralGB < old.EphemeralGB || nw.MemoryMB < old.MemoryMB ||
		nw.VCPUs < old.VCPUs
}

func quotaFlavor(f *compute.Flavor) quota.Flavor {
	if f == nil {
		return quota.Flavor{}
	}
	return quota.Flavor{VCPUs: int64(f.VCPUs), MemoryMB: int64(f.MemoryMB), RootGB: int64(f.RootGB),
		EphemeralGB: int64(f.EphemeralGB)}
}
