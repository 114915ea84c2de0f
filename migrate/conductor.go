package migrate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/scheduler"
	sm "github.com/xenflow/xenflow/statemachine"
)

// ClaimError is Nova's ComputeResourcesUnavailable: the destination has
// no room for the new flavor any more (nova/compute/claims.py,
// MoveClaim).
type ClaimError struct {
	Host      string
	Resource  string
	Requested int64
	Limit     int64
	Used      int64
}

// Error implements the error interface.
func (e *ClaimError) Error() string {
	return fmt.Sprintf("migrate: claim on %s failed: %s requested %d, used %d of limit %d", e.Host, e.Resource,
		e.Requested, e.Used, e.Limit)
}

// conduct schedules the move and preps a destination: the selected host,
// then its alternates when prep fails there (Nova's
// ComputeTaskManager._cold_migrate with MigrationTask._execute and
// _reschedule), up to max_attempts hosts.
func (r *run) conduct(ctx context.Context) error {
	if r.state().Phase == sm.PhaseRescheduling {
		// A reschedule was written before a stop: the conductor schedules
		// again (MigrationTask._reschedule) from pre-migrating.
		if err := r.step(ctx, sm.EvConductorReschedule, nil); err != nil {
			return err
		}
	}
	sel, err := r.o.schedule(ctx, r)
	if err != nil {
		if interrupted(ctx, err) {
			return r.stop(err)
		}
		ev := sm.EvConductorError
		if errors.Is(err, scheduler.ErrNoValidHost) {
			ev = sm.EvConductorNoValidHost
		}
		return r.fail(ctx, ev, "", err, restoreSource)
	}
	candidates := append([]scheduler.HostNode{{Host: sel.Host, Node: sel.Node}}, sel.Alternates...)
	if len(candidates) > r.o.maxTries {
		candidates = candidates[:r.o.maxTries]
	}
	for i, c := range candidates {
		err = r.prep(ctx, c)
		if err == nil {
			return nil
		}
		if interrupted(ctx, err) {
			return r.stop(err)
		}
		r.event(ctx, "compute_prep_resize", c.Host, err)
		if i == len(candidates)-1 {
			break
		}
		r.o.log.Info("migrate: rescheduling", slog.String("instance", r.inst.UUID), slog.String("host", c.Host),
			slog.Any("err", err))
		// _reschedule_resize_or_reraise, then MigrationTask._reschedule:
		// pre-migrating, through rescheduling, back to pre-migrating. Both
		// rows are checked; nothing acted, so nothing is written.
		if err := r.checkOnly(ctx, err, sm.EvDestPrepResizeReschedule, sm.EvConductorReschedule); err != nil {
			return err
		}
	}
	ev := sm.EvDestPrepResizeFaultRollback
	var rb *compute.InstanceFaultRollback
	if r.o.opts.NovaCompatibleErrors && !errors.As(err, &rb) && !errors.Is(err, compute.ErrNotImplemented) {
		ev = sm.EvDestPrepResizeError
	}
	return r.fail(ctx, ev, r.mig.DestCompute, err, restoreSource)
}

// prep is ComputeManager._prep_resize on the destination: refuse the
// instance's own host unless the driver supports it
// (UnableToMigrateToSelf), claim the new flavor's resources, fill the
// migration's destination and keep new_flavor and old_vm_state.
func (r *run) prep(ctx context.Context, dest scheduler.HostNode) error {
	r.attempts++
	if dest.Host == r.mig.SourceCompute && !r.o.caps.SupportsMigrateToSameHost {
		return &compute.InstanceFaultRollback{Err: &UnsupportedError{InstanceUUID: r.inst.UUID,
			What: "UnableToMigrateToSelf: the driver cannot migrate to the same host " + dest.Host}}
	}
	f := schedFlavor(r.inst.NewFlavor)
	if err := r.o.claim(ctx, r.mig.UUID, dest.Host, f); err != nil {
		return err
	}
	// prep_resize's save and the source's resize_instance start (migration
	// migrating, task resize_migrating) are one write: the claim is all
	// prep does, and the source acts only after this write.
	err := r.steps(ctx, []sm.Event{sm.EvDestPrepResize, sm.EvSourceResizeInstance}, func(i *compute.Instance, m *compute.Migration) {
		m.DestCompute, m.DestNode, m.DestHost = dest.Host, dest.Node, dest.Host
		if m.DestNode == "" {
			m.DestNode = dest.Host
		}
		setMeta(i, compute.SysMetaOldVMState, string(i.VMState))
	})
	if err != nil {
		r.o.dropClaim(r.mig.UUID)
		return err
	}
	r.event(ctx, "compute_prep_resize", dest.Host, nil)
	return nil
}

// schedule asks the scheduler for a destination and its alternates
// (select_destinations with return_alternates) and holds the chosen
// host's resources for the migration at once, as placement claims them in
// select_destinations, so that concurrent moves see each other's choice.
func (o *Orchestrator) schedule(ctx context.Context, r *run) (scheduler.Selection, error) {
	o.schedMu.Lock()
	defer o.schedMu.Unlock()
	hs, err := o.hostSetLocked(ctx)
	if err != nil {
		return scheduler.Selection{}, err
	}
	req := &scheduler.Request{Flavor: schedFlavor(r.inst.NewFlavor), InstanceUUID: r.inst.UUID,
		AvailabilityZone: r.inst.AvailabilityZone, RequestedHost: r.inst.SystemMetadata[SysMetaTargetHost]}
	sameOK := o.opts.AllowResizeToSameHost
	if r.op == sm.OpMigrate {
		sameOK = o.opts.AllowMigrateToSameHost && o.caps.SupportsMigrateToSameHost
	}
	if !sameOK {
		req.IgnoreHosts = []string{r.mig.SourceCompute}
	}
	res, err := o.sched.Select(hs, req)
	if err != nil {
		return scheduler.Selection{}, err
	}
	sel := res.Selections[0]
	if req.RequestedHost != "" {
		sel.Alternates = nil // a requested host is not rescheduled (retry popped)
	}
	if o.opts.HostRefresh > 0 {
		if err := hs.Consume(sel.Index, req, r.inst.UUID); err != nil {
			return scheduler.Selection{}, err
		}
	}
	o.claimMu.Lock()
	o.claims[r.mig.UUID] = claim{host: sel.Host, flavor: req.Flavor}
	o.claimMu.Unlock()
	return sel, nil
}

// hostSetLocked returns the hosts' states for a choice: read afresh, or
// the cached set while it is younger than HostRefresh.
func (o *Orchestrator) hostSetLocked(ctx context.Context) (*scheduler.HostSet, error) {
	now := o.now()
	if o.hostSet != nil && o.opts.HostRefresh > 0 && now.Sub(o.hostSetAt) < o.opts.HostRefresh {
		return o.hostSet, nil
	}
	states, err := o.hostStates(ctx, o.hosts)
	if err != nil {
		return nil, err
	}
	hs, err := scheduler.NewHostSet(states)
	if err != nil {
		return nil, err
	}
	o.hostSet, o.hostSetAt = hs, now
	return hs, nil
}

// hostStates asks the driver for the hosts' states: the watcher when the
// driver has one, else GetAvailableResource per host (a host that does
// not answer is left out, as Nova's ComputeFilter drops a service that
// does not report). The resources this orchestrator has claimed for
// moves in progress are taken off.
func (o *Orchestrator) hostStates(ctx context.Context, hosts []string) ([]scheduler.HostState, error) {
	states, err := o.readHostStates(ctx, hosts)
	if err != nil {
		return nil, err
	}
	return o.lessClaims(states), nil
}

// readHostStates asks the driver for the hosts' states, as they are.
func (o *Orchestrator) readHostStates(ctx context.Context, hosts []string) ([]scheduler.HostState, error) {
	var states []scheduler.HostState
	if o.watcher != nil {
		s, err := o.watcher.HostStates(ctx, hosts)
		if err != nil {
			return nil, fmt.Errorf("migrate: host states: %w", err)
		}
		states = s
	} else {
		states = make([]scheduler.HostState, 0, len(hosts))
		for _, h := range hosts {
			s, err := o.driver.GetAvailableResource(ctx, compute.HostRequest{Host: h})
			if err != nil {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				o.log.Warn("migrate: host did not report", slog.String("host", h), slog.Any("err", err))
				continue
			}
			states = append(states, s)
		}
	}
	return states, nil
}

// lessClaims takes the resources this orchestrator has claimed for moves
// in progress off states.
func (o *Orchestrator) lessClaims(states []scheduler.HostState) []scheduler.HostState {
	o.claimMu.Lock()
	defer o.claimMu.Unlock()
	if len(o.claims) == 0 {
		return states
	}
	states = append([]scheduler.HostState(nil), states...) // the watcher's slice is not ours to change
	for i := range states {
		for _, c := range o.claims {
			if c.host == states[i].Host {
				states[i].FreeRAMMB -= c.flavor.MemoryMB
				states[i].FreeDiskMB -= (c.flavor.RootGB + c.flavor.EphemeralGB) * 1024
				states[i].VCPUsUsed += c.flavor.VCPUs
			}
		}
	}
	return states
}

// claim checks that dest has room for f within its allocation ratios and
// holds it for the migration until the move ends. The destination is read
// before the lock (a driver's read is I/O, and claims on other hosts need
// not wait for it); the claims in force are taken off it under the lock,
// so two claims on one host never both count its last room.
func (o *Orchestrator) claim(ctx context.Context, migUUID, dest string, f scheduler.Flavor) error {
	raw, err := o.readHostStates(ctx, []string{dest})
	if err != nil {
		return err
	}
	o.schedMu.Lock()
	defer o.schedMu.Unlock()
	o.dropClaim(migUUID)
	states := o.lessClaims(raw)
	if len(states) != 1 {
		return fmt.Errorf("migrate: destination %s did not report its resources", dest)
	}
	if err := fits(states[0], f); err != nil {
		return err
	}
	o.claimMu.Lock()
	o.claims[migUUID] = claim{host: dest, flavor: f}
	o.claimMu.Unlock()
	return nil
}

func (o *Orchestrator) dropClaim(migUUID string) {
	o.claimMu.Lock()
	delete(o.claims, migUUID)
	o.claimMu.Unlock()
}

// fits is the MoveClaim test: used + requested <= total × ratio for RAM,
// vCPUs and disk (a total of 0 is not limited).
func fits(h scheduler.HostState, f scheduler.Flavor) error {
	ratio := func(r, def float64) float64 {
		if r <= 0 {
			return def
		}
		return r
	}
	check := func(name string, total int64, r float64, used, req int64) error {
		if total <= 0 {
			return nil
		}
		limit := int64(float64(total) * r)
		if used+req > limit {
			return &ClaimError{Host: h.Host, Resource: name, Requested: req, Limit: limit, Used: used}
		}
		return nil
	}
	if err := check("memory_mb", h.TotalUsableRAMMB, ratio(h.RAMAllocationRatio, scheduler.DefaultRAMAllocationRatio),
		h.TotalUsableRAMMB-h.FreeRAMMB, f.MemoryMB); err != nil {
		return err
	}
	if err := check("vcpus", h.VCPUsTotal, ratio(h.CPUAllocationRatio, scheduler.DefaultCPUAllocationRatio),
		h.VCPUsUsed, f.VCPUs); err != nil {
		return err
	}
	return check("disk_mb", h.TotalUsableDiskGB*1024, ratio(h.DiskAllocationRatio, scheduler.DefaultDiskAllocationRatio),
		h.TotalUsableDiskGB*1024-h.FreeDiskMB, (f.RootGB+f.EphemeralGB)*1024)
}

func schedFlavor(f *compute.Flavor) scheduler.Flavor {
	if f == nil {
		return scheduler.Flavor{}
	}
	return scheduler.Flavor{MemoryMB: int64(f.MemoryMB), VCPUs: int64(f.VCPUs), RootGB: int64(f.RootGB),
		EphemeralGB: int64(f.EphemeralGB), SwapMB: int64(f.SwapMB)}
}
