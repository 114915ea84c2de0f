package migrate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/compute/computetest"
	sm "github.com/xenflow/xenflow/statemachine"
)

// invariants checks what must hold of an instance whenever no operation
// runs on it: a resting state (ACTIVE or SHUTOFF with its one guest on
// the host the Store names, VERIFY_RESIZE with the new guest on the
// destination and the kept one on the source, or, in Nova's mode only,
// ERROR with a fault); its root disk intact; its migrations terminal or
// finished; no orphan disk (xenflow mode); quota usage equal to a recount
// and no reservation pending.
func (h *harness) invariants(ctx context.Context, id string) error {
	inst, err := h.mem.GetInstance(ctx, id)
	if err != nil {
		return err
	}
	if inst.TaskState != sm.TaskNone {
		return fmt.Errorf("instance %s left with task_state %s", id, inst.TaskState)
	}
	if err := h.placement(ctx, inst); err != nil {
		return err
	}
	migs, err := h.mem.ListMigrations(ctx, compute.MigrationFilter{InstanceUUID: id})
	if err != nil {
		return err
	}
	for _, m := range migs {
		switch m.Status {
		case sm.MigrationError, sm.MigrationConfirmed, sm.MigrationReverted, sm.MigrationFinished:
		default:
			return fmt.Errorf("migration of %s left in %s", id, m.Status)
		}
		if m.Status == sm.MigrationFinished && inst.VMState != sm.VMResized {
			return fmt.Errorf("migration finished but instance %s is %s", id, inst.VMState)
		}
	}
	if !h.opts.NovaCompatibleErrors {
		for _, host := range h.hosts {
			for _, v := range h.driver.Orphans(host) {
				if strings.HasPrefix(v.Label, id) {
					return fmt.Errorf("orphan disk %s of %s on %s (migration %s)", v.Label, id, host, v.MigrationUUID)
				}
			}
		}
	}
	return h.quotaSettled(ctx)
}

// placement checks the instance's guests against its state.
func (h *harness) placement(ctx context.Context, inst *compute.Instance) error {
	guests := map[string]computetest.Guest{}
	for _, host := range h.hosts {
		for _, g := range h.driver.Guests(host) {
			if g.InstanceUUID == inst.UUID {
				guests[host+"/"+g.Name] = g
			}
		}
	}
	name := inst.Name
	switch inst.VMState {
	case sm.VMActive, sm.VMStopped:
		g, ok := guests[inst.Host+"/"+name]
		if !ok || len(guests) != 1 {
			return fmt.Errorf("instance %s %s on %s: guests %v", inst.UUID, inst.VMState, inst.Host, keys(guests))
		}
		want := sm.PowerRunning
		if inst.VMState == sm.VMStopped {
			want = sm.PowerShutdown
		}
		if g.Power != want {
			return fmt.Errorf("instance %s %s but its guest is %s", inst.UUID, inst.VMState, g.Power)
		}
		return h.rootIntact(inst, g)
	case sm.VMResized:
		g, ok := guests[inst.Host+"/"+name]
		if !ok || len(guests) != 2 {
			return fmt.Errorf("instance %s resized on %s: guests %v", inst.UUID, inst.Host, keys(guests))
		}
		return h.rootIntact(inst, g)
	case sm.VMError:
		if !h.opts.NovaCompatibleErrors {
			return fmt.Errorf("instance %s in error outside Nova's mode", inst.UUID)
		}
		faults, err := h.mem.ListFaults(ctx, inst.UUID)
		if err != nil || len(faults) == 0 {
			return fmt.Errorf("instance %s in error without a fault (%v)", inst.UUID, err)
		}
		return nil
	}
	return fmt.Errorf("instance %s in vm_state %s", inst.UUID, inst.VMState)
}

// rootIntact checks that the guest's root disk holds what the instance
// was booted with.
func (h *harness) rootIntact(inst *compute.Instance, g computetest.Guest) error {
	sum := sha256.Sum256([]byte(inst.UUID))
	want := hex.EncodeToString(sum[:])
	for _, v := range h.driver.VDIs(g.Host) {
		if v.UUID == g.VDIs[0] {
			if v.SHA256 != want {
				return fmt.Errorf("instance %s: root disk on %s changed", inst.UUID, g.Host)
			}
			return nil
		}
	}
	return fmt.Errorf("instance %s: root disk of %s missing", inst.UUID, g.Name)
}

// quotaSettled checks that usage equals a recount of every instance and
// that no reservation is pending.
func (h *harness) quotaSettled(ctx context.Context) error {
	u, err := h.ledger.Usage(ctx, testProject)
	if err != nil {
		return err
	}
	if u.Pending != 0 {
		return fmt.Errorf("quota: %d reservations pending", u.Pending)
	}
	drift, err := h.ledger.Reconcile(ctx, testProject, h.charges(ctx))
	if err != nil {
		return err
	}
	if len(drift) > 0 {
		return fmt.Errorf("quota drift: %v", drift)
	}
	return nil
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
