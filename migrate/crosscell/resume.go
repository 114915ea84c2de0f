package crosscell

import (
	"context"
	"errors"

	"github.com/xenflow/xenflow/compute"
	sm "github.com/xenflow/xenflow/statemachine"
)

// Resume finishes every move, confirm and revert a conductor stopped
// part-way (a crash, a lost lease), in every cell: moves within one cell
// by the cell's own orchestrator (migrate.Orchestrator.Resume), cross-cell
// ones from the task they stopped in, or their rollback finished. It
// returns the cross-cell instances it drove and the first error met; a
// move whose lease another conductor holds is left to that one.
func (c *Conductor) Resume(ctx context.Context) ([]*Result, error) {
	seen := map[string]bool{}
	var out []*Result
	var first error
	for _, name := range sortedCells(c.cells) {
		if _, err := c.same[name].Resume(ctx); err != nil && first == nil && !errors.Is(err, compute.ErrLease) {
			first = err
		}
	}
	for _, name := range sortedCells(c.cells) {
		insts, err := c.cells[name].Store.ListInstances(ctx, compute.InstanceFilter{})
		if err != nil {
			return out, err
		}
		for _, i := range insts {
			if seen[i.UUID] || i.SystemMetadata[SysMetaSourceCell] == "" {
				continue
			}
			seen[i.UUID] = true
			r, err := c.ResumeInstance(ctx, i.UUID)
			if r != nil {
				out = append(out, r)
			}
			if err != nil && first == nil && !errors.Is(err, compute.ErrLease) {
				first = err
			}
		}
	}
	return out, first
}

// ResumeInstance finishes the cross-cell operation of one instance, found
// through its instance mapping: a *NoCopyError when the mapped cell holds
// no copy. An instance without a cross-cell move gives a nil Result.
func (c *Conductor) ResumeInstance(ctx context.Context, uuid string) (*Result, error) {
	_, inst, err := c.locate(ctx, uuid)
	if err != nil {
		return nil, err
	}
	if inst.SystemMetadata[SysMetaSourceCell] == "" {
		return nil, nil
	}
	if err := c.lock(uuid); err != nil {
		return nil, err
	}
	defer c.unlock(uuid)
	m, err := c.load(ctx, inst)
	if err != nil {
		return nil, err
	}
	defer m.release()
	err = m.resume(ctx)
	return m.result(), err
}

// resume picks up the move from the copies' states.
func (m *move) resume(ctx context.Context) error {
	src, dst := m.src, m.dst
	if src.exists() && src.inst.SystemMetadata[SysMetaRollback] != "" {
		return m.finishRollback(ctx, len(m.tasks())-1, errors.New(src.inst.SystemMetadata[SysMetaRollback]))
	}
	if dst.exists() && dst.mig != nil {
		switch dst.mig.Status {
		case sm.MigrationConfirming, sm.MigrationConfirmed:
			return m.finishConfirm(ctx)
		case sm.MigrationReverting:
			return m.finishRevert(ctx)
		case sm.MigrationReverted:
			return m.settleRevert(ctx)
		}
		if r := rank(dst.state()); r >= 6 {
			return m.forward(ctx)
		}
	}
	if !src.exists() {
		return nil
	}
	if src.mig != nil && src.mig.Status == sm.MigrationReverted {
		return m.settleRevert(ctx)
	}
	if r := rank(src.state()); r >= 0 && r <= 5 {
		return m.forward(ctx)
	}
	if dst.exists() && dst.inst.Hidden {
		return m.destroyCopy(ctx, dst) // a rolled-back move's leftover
	}
	return nil
}
