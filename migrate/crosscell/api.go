package crosscell

import (
	"context"
	"strings"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/migrate"
	"github.com/xenflow/xenflow/quota"
	"github.com/xenflow/xenflow/scheduler"
	sm "github.com/xenflow/xenflow/statemachine"
)

// Result is where an operation ended: the same-cell orchestrator's
// result with the cells the instance was in before and after.
type Result struct {
	migrate.Result
	SourceCell string
	DestCell   string
	// CrossCell is true when the move left its cell.
	CrossCell bool
}

// Resize resizes an instance (nova/compute/api.py, API.resize) and leaves
// it in VERIFY_RESIZE. With the cross-cell policy off (or the instance
// has ephemeral disks the policy does not let a move lose) the move stays
// in the instance's cell (the scheduler sees only its hosts); with it on,
// the scheduler may pick a host in another cell, and then the tasks of
// CrossCellMigrationTask move the instance there. A failed cross-cell
// move is rolled back and returned as a *TaskError.
func (c *Conductor) Resize(ctx context.Context, req migrate.ResizeRequest) (*Result, error) {
	cell, inst, err := c.locate(ctx, req.InstanceUUID)
	if err != nil {
		return nil, err
	}
	flavor, err := c.flavors.Flavor(ctx, req.FlavorID)
	if err != nil || flavor.Disabled || (inst.Flavor != nil && inst.Flavor.ID == flavor.ID) || !c.crossCellAllowed(inst) {
		return c.sameCell(c.same[cell.Name].Resize(ctx, req))(cell)
	}
	return c.start(ctx, startRequest{cell: cell, inst: inst, flavor: flavor, requestID: req.RequestID,
		admin: req.Admin, action: sm.ActionResize, mtype: sm.MigrationTypeResize,
		deltas: quota.UpsizeDelta(quotaFlavor(flavor), quotaFlavor(inst.Flavor)),
		same:   func() (*migrate.Result, error) { return c.same[cell.Name].Resize(ctx, req) }})
}

// Migrate cold-migrates an instance (API.resize without a flavor) within
// or, as Resize, across cells; a TargetHost may name a host of another
// cell when the policy allows it.
func (c *Conductor) Migrate(ctx context.Context, req migrate.MigrateRequest) (*Result, error) {
	cell, inst, err := c.locate(ctx, req.InstanceUUID)
	if err != nil {
		return nil, err
	}
	if !c.crossCellAllowed(inst) || req.Suspend || inst.Flavor == nil {
		return c.sameCell(c.same[cell.Name].Migrate(ctx, req))(cell)
	}
	return c.start(ctx, startRequest{cell: cell, inst: inst, flavor: inst.Flavor.Clone(), requestID: req.RequestID,
		admin: req.Admin, action: sm.ActionMigrate, mtype: sm.MigrationTypeMigration, targetHost: req.TargetHost,
		same: func() (*migrate.Result, error) { return c.same[cell.Name].Migrate(ctx, req) }})
}

// crossCellAllowed reports whether the policy lets the instance's move
// leave its cell: the cross-cell rule allows it, and the instance has no
// ephemeral disk or the policy accepts losing its data (a cross-cell move
// carries the root disk only; see the package documentation).
func (c *Conductor) crossCellAllowed(inst *compute.Instance) bool {
	if !c.policy.AllowCrossCellResize {
		return false
	}
	return inst.Flavor == nil || inst.Flavor.EphemeralGB == 0 || c.policy.AllowEphemeralLoss
}

// sameCell wraps a same-cell orchestrator's answer.
func (c *Conductor) sameCell(r *migrate.Result, err error) func(*Cell) (*Result, error) {
	return func(cell *Cell) (*Result, error) {
		if r == nil {
			return nil, err
		}
		return &Result{Result: *r, SourceCell: cell.Name, DestCell: cell.Name}, err
	}
}

type startRequest struct {
	cell       *Cell
	inst       *compute.Instance
	flavor     *compute.Flavor
	requestID  string
	admin      bool
	action     sm.Action
	mtype      sm.MigrationType
	deltas     quota.Deltas
	targetHost string
	// same runs the move in its cell when the scheduler stays there.
	same func() (*migrate.Result, error)
}

// start is MigrationTask._execute for a move the policy lets leave its
// cell: select_destinations over every cell, then a same-cell move or
// CrossCellMigrationTask.
func (c *Conductor) start(ctx context.Context, sr startRequest) (*Result, error) {
	if err := c.pre[sm.OpCrossCellResize].Check(sr.inst.Subject(sr.admin)); err != nil {
		return nil, err
	}
	sel, err := c.selectDestination(ctx, sr)
	if err != nil {
		return nil, err
	}
	if sel.Cell == sr.cell.Name {
		return c.sameCell(sr.same())(sr.cell)
	}
	if err := c.lock(sr.inst.UUID); err != nil {
		return nil, err
	}
	defer c.unlock(sr.inst.UUID)
	m, err := c.begin(ctx, sr, sel)
	if err != nil {
		return nil, err
	}
	defer m.release()
	err = m.forward(ctx)
	return m.result(), err
}

// selectDestination asks the scheduler for a host in any cell, the
// source cell preferred by the CrossCellWeigher.
func (c *Conductor) selectDestination(ctx context.Context, sr startRequest) (scheduler.Selection, error) {
	var states []scheduler.HostState
	for _, name := range sortedCells(c.cells) {
		cell := c.cells[name]
		for _, h := range cell.Hosts {
			st, err := cell.Driver.GetAvailableResource(ctx, compute.HostRequest{Host: h})
			if err != nil {
				if ctx.Err() != nil {
					return scheduler.Selection{}, err
				}
				continue // a host that does not report is left out
			}
			st.Cell = name
			states = append(states, c.claims.less(name, []scheduler.HostState{st})...)
		}
	}
	hs, err := scheduler.NewHostSet(states)
	if err != nil {
		return scheduler.Selection{}, err
	}
	res, err := c.sched.Select(hs, &scheduler.Request{Flavor: schedFlavor(sr.flavor), InstanceUUID: sr.inst.UUID,
		AvailabilityZone: sr.inst.AvailabilityZone, IgnoreHosts: []string{sr.inst.Host}, RequestedHost: sr.targetHost,
		RequestedCell: sr.cell.Name, AllowCrossCellMove: true})
	if err != nil {
		return scheduler.Selection{}, err
	}
	return res.Selections[0], nil
}

// begin reserves the quota and writes the API's resize_prep with the
// conductor's pre-migrating record, the move's cells and hosts in the
// system metadata, and the request spec marked cross-cell.
func (c *Conductor) begin(ctx context.Context, sr startRequest, sel scheduler.Selection) (*move, error) {
	dst, err := c.cell(sr.inst.UUID, sel.Cell)
	if err != nil {
		return nil, err
	}
	lease, err := sr.cell.Store.AcquireLease(ctx, compute.LeaseRequest{InstanceUUID: sr.inst.UUID, Owner: c.owner, TTL: c.ttl})
	if err != nil {
		return nil, err
	}
	m := &move{c: c, src: &copyOf{cell: sr.cell, inst: sr.inst, lease: lease}, dst: &copyOf{cell: dst}, uuid: sr.inst.UUID}
	if err := c.prepare(ctx, m, sr, sel); err != nil {
		m.release()
		return nil, err
	}
	return m, nil
}

func (c *Conductor) prepare(ctx context.Context, m *move, sr startRequest, sel scheduler.Selection) error {
	resID := ""
	if len(sr.deltas) > 0 {
		id, err := c.ledger.Reserve(ctx, sr.inst.ProjectID, sr.inst.UserID, sr.deltas)
		if err != nil {
			return err
		}
		resID = id
	}
	migUUID, err := c.newUUID()
	if err == nil && sr.requestID == "" {
		sr.requestID, err = c.newUUID()
	}
	if err == nil {
		err = c.api.SaveRequestSpec(ctx, RequestSpec{InstanceUUID: sr.inst.UUID, ProjectID: sr.inst.ProjectID,
			AvailabilityZone: sr.inst.AvailabilityZone, RequestedCell: sr.cell.Name, AllowCrossCellMove: true})
	}
	if err != nil {
		m.settle(ctx, resID, false)
		return err
	}
	m.migUUID = migUUID
	alts := make([]string, 0, len(sel.Alternates))
	for _, a := range sel.Alternates {
		alts = append(alts, a.Host)
	}
	mig := &compute.Migration{UUID: migUUID, InstanceUUID: sr.inst.UUID, SourceCompute: sr.inst.Host,
		SourceNode: sr.inst.Node, DestCompute: sel.Host, DestNode: sel.Node, DestHost: sel.Host,
		OldFlavor: sr.inst.Flavor.Clone(), NewFlavor: sr.flavor.Clone(), Status: sm.MigrationPreMigrating,
		Type: sr.mtype, CrossCellMove: true, QuotaReservationID: resID}
	err = c.writeStart(ctx, m, mig, func(i *compute.Instance) {
		i.Progress, i.OldFlavor, i.NewFlavor = 0, i.Flavor.Clone(), sr.flavor.Clone()
		setMeta(i, migrate.SysMetaMigration, migUUID)
		setMeta(i, migrate.SysMetaRequestID, sr.requestID)
		setMeta(i, SysMetaSourceCell, sr.cell.Name)
		setMeta(i, SysMetaTargetCell, sel.Cell)
		setMeta(i, SysMetaAlternates, strings.Join(alts, ","))
		setMeta(i, SysMetaRollback, "")
	})
	if err != nil {
		m.settle(ctx, resID, false)
		return err
	}
	if err := sr.cell.Store.CreateAction(ctx, &compute.InstanceAction{RequestID: sr.requestID, InstanceUUID: sr.inst.UUID,
		Action: sr.action, UserID: sr.inst.UserID, ProjectID: sr.inst.ProjectID, StartTime: c.now()}); err != nil {
		c.log.Warn("crosscell: instance action not recorded")
	}
	m.event(ctx, m.src, "conductor_migrate_server", "", nil)
	return nil
}

// writeStart is the one write of API.resize's resize_prep and the
// conductor's pre-migrating migration.
func (c *Conductor) writeStart(ctx context.Context, m *move, mig *compute.Migration, apply func(*compute.Instance)) error {
	k := m.src
	to, err := c.flow.Next(k.state(), sm.EvAPIResize, k.inst.Facts())
	if err == nil {
		to, err = c.flow.Next(to, sm.EvConductorCreateMigration, k.inst.Facts())
	}
	if err != nil {
		return err
	}
	return m.writeTo(ctx, k, to, mig, func(i *compute.Instance, _ *compute.Migration) { apply(i) })
}

// result is the move's result from the visible copy.
func (m *move) result() *Result {
	k := m.src
	if m.dst.exists() && !m.dst.inst.Hidden {
		k = m.dst
	}
	r := &Result{SourceCell: m.src.cell.Name, DestCell: k.cell.Name, CrossCell: true}
	if !k.exists() {
		return r
	}
	r.InstanceUUID, r.State = k.inst.UUID, k.state()
	if k.mig != nil {
		r.MigrationUUID, r.SourceHost, r.DestHost = k.mig.UUID, k.mig.SourceCompute, k.mig.DestCompute
	}
	return r
}

// crossCellCopy reports whether inst is the copy a cross-cell move
// made in its target cell.
func crossCellCopy(inst *compute.Instance) bool {
	t := inst.SystemMetadata[SysMetaTargetCell]
	return t != "" && t == inst.Cell
}

// Confirm confirms a resize waiting in VERIFY_RESIZE (ConfirmResizeTask
// for a cross-cell move): the source guest and its disks are cleaned up
// and the source cell's records hard-deleted.
func (c *Conductor) Confirm(ctx context.Context, req migrate.ActionRequest) (*Result, error) {
	return c.verifyAction(ctx, req, sm.OpConfirmResize)
}

// Revert reverts a resize waiting in VERIFY_RESIZE (RevertResizeTask for
// a cross-cell move): the destination is cleaned up, the source guest
// started again, the hidden flags and the mapping swapped back and the
// target cell's records hard-deleted.
func (c *Conductor) Revert(ctx context.Context, req migrate.ActionRequest) (*Result, error) {
	return c.verifyAction(ctx, req, sm.OpRevertResize)
}

func (c *Conductor) verifyAction(ctx context.Context, req migrate.ActionRequest, op sm.Operation) (*Result, error) {
	cell, inst, err := c.locate(ctx, req.InstanceUUID)
	if err != nil {
		return nil, err
	}
	if !crossCellCopy(inst) {
		same := c.same[cell.Name].Confirm
		if op == sm.OpRevertResize {
			same = c.same[cell.Name].Revert
		}
		return c.sameCell(same(ctx, req))(cell)
	}
	if err := c.lock(inst.UUID); err != nil {
		return nil, err
	}
	defer c.unlock(inst.UUID)
	m, err := c.load(ctx, inst)
	if err != nil {
		return nil, err
	}
	defer m.release()
	if err := c.pre[op].Check(m.dst.inst.Subject(req.Admin)); err != nil {
		return nil, err
	}
	if rank(m.dst.state()) != 9 {
		return nil, &migrate.NoMigrationError{InstanceUUID: inst.UUID, Status: sm.MigrationFinished}
	}
	if req.RequestID == "" {
		if req.RequestID, err = c.newUUID(); err != nil {
			return nil, err
		}
	}
	if op == sm.OpConfirmResize {
		err = m.confirm(ctx, req.RequestID)
	} else {
		err = m.revert(ctx, req.RequestID)
	}
	return m.result(), err
}
