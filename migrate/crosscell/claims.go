package crosscell

import (
	"context"
	"slices"
	"sync"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/scheduler"
)

// claim is what PrepResizeAtDestTask holds on a destination host for a
// move (Nova's MoveClaim on the destination, kept as the migration's
// allocations until the confirm or revert): the new flavor's resources,
// taken off what the host reports until the move is confirmed, reverted
// or rolled back.
type claim struct {
	cell, host, instance string
	flavor               scheduler.Flavor
}

// claimSet is the conductor's claims in force, by migration UUID.
type claimSet struct {
	mu    sync.Mutex
	byMig map[string]claim
}

// less returns the states of cell's hosts with the claims in force on
// them taken off; a claim whose instance the host already reports (its
// guest was spawned there and counts in the host's usage) is not taken
// off twice.
func (cs *claimSet) less(cell string, states []scheduler.HostState) []scheduler.HostState {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.lessLocked(cell, states)
}

func (cs *claimSet) lessLocked(cell string, states []scheduler.HostState) []scheduler.HostState {
	if len(cs.byMig) == 0 {
		return states
	}
	out := append([]scheduler.HostState(nil), states...) // the caller's slice is not ours to change
	for i := range out {
		for _, c := range cs.byMig {
			if c.cell != cell || c.host != out[i].Host || slices.Contains(out[i].Instances, c.instance) {
				continue
			}
			out[i].FreeRAMMB -= c.flavor.MemoryMB
			out[i].FreeDiskMB -= (c.flavor.RootGB + c.flavor.EphemeralGB) * 1024
			out[i].VCPUsUsed += c.flavor.VCPUs
		}
	}
	return out
}

// take checks c's host, as it reported st, with the other claims in force
// taken off, and holds c for the migration when check accepts it; the
// check and the hold are one step, so two moves never both count a
// host's last room.
func (cs *claimSet) take(migUUID string, c claim, st scheduler.HostState, check func(scheduler.HostState) error) error {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	delete(cs.byMig, migUUID)
	if err := check(cs.lessLocked(c.cell, []scheduler.HostState{st})[0]); err != nil {
		return err
	}
	if cs.byMig == nil {
		cs.byMig = map[string]claim{}
	}
	cs.byMig[migUUID] = c
	return nil
}

// drop releases the migration's claim; one not held is no error.
func (cs *claimSet) drop(migUUID string) {
	cs.mu.Lock()
	delete(cs.byMig, migUUID)
	cs.mu.Unlock()
}

// held reports whether the migration holds a claim.
func (cs *claimSet) held(migUUID string) bool {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	_, ok := cs.byMig[migUUID]
	return ok
}

// claimingDriver is a cell's driver as the cell's same-cell orchestrator
// sees it: the hosts' resources with the cross-cell claims in force on
// them taken off, so a move within the cell does not take the room a
// cross-cell move into it holds.
type claimingDriver struct {
	compute.Driver
	claims *claimSet
	cell   string
}

// GetAvailableResource implements compute.Driver.
func (d claimingDriver) GetAvailableResource(ctx context.Context, req compute.HostRequest) (scheduler.HostState, error) {
	st, err := d.Driver.GetAvailableResource(ctx, req)
	if err != nil {
		return st, err
	}
	return d.claims.less(d.cell, []scheduler.HostState{st})[0], nil
}

// watchingClaimingDriver is a claimingDriver over a driver that watches
// its hosts' states.
type watchingClaimingDriver struct {
	claimingDriver
	w compute.HostStateWatcher
}

// HostStates implements compute.HostStateWatcher.
func (d watchingClaimingDriver) HostStates(ctx context.Context, hosts []string) ([]scheduler.HostState, error) {
	states, err := d.w.HostStates(ctx, hosts)
	if err != nil {
		return nil, err
	}
	return d.claims.less(d.cell, states), nil
}

// sameCellDriver returns the cell's driver for its same-cell
// orchestrator, a HostStateWatcher when the driver is one.
func (c *Conductor) sameCellDriver(cell *Cell) compute.Driver {
	d := claimingDriver{Driver: cell.Driver, claims: &c.claims, cell: cell.Name}
	if w, ok := cell.Driver.(compute.HostStateWatcher); ok {
		return watchingClaimingDriver{claimingDriver: d, w: w}
	}
	return d
}
