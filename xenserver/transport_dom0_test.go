package xenserver

import (
	"context"
	"errors"
	"testing"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/dom0"
	"github.com/xenflow/xenflow/statemachine"
	"github.com/xenflow/xenflow/xenapi"
)

// dom0Env gives every compute host its dom0 (dom0.LocalHost over the
// simulated host's root) and the dom0 transport.
func dom0Env(t *testing.T, l layout, rounds bool) *testEnv {
	t.Helper()
	e := newEnv(t, l, envOptions{})
	for name, entry := range e.cfg.Inventory.Hosts {
		h, err := dom0.Local(e.hostOf[name].Root())
		if err != nil {
			t.Fatal(err)
		}
		entry.Dom0, entry.Transport = h, TransportDom0
		e.cfg.Inventory.Hosts[name] = entry
	}
	e.cfg.Transports = map[string]Transport{TransportDom0: NewDom0Transport(nil)}
	if rounds {
		e.cfg.Migrate.PreCopyThreshold = 1 // every write asks for another round
	}
	d, err := New(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close(context.Background()) })
	e.d = d
	return e
}

func TestDom0TransportResize(t *testing.T) {
	for _, l := range layouts {
		for _, rounds := range []bool{false, true} {
			name := string(l)
			if rounds {
				name += "/pre-copy-rounds"
			}
			t.Run(name, func(t *testing.T) {
				ctx := context.Background()
				e := dom0Env(t, l, rounds)
				g := e.addGuest("compute1", guestSpec{running: true, disks: []int64{8 << 20, 4 << 20}})
				newFlavor := &compute.Flavor{ID: "large", MemoryMB: 512, VCPUs: 2, RootGB: 1}
				r := &resizeRun{e: e, g: g, dest: "compute2", mig: newMigration(g, "compute2", newFlavor)}
				r.migrate(t)
				if r.info.Transport != TransportDom0 || len(r.info.Disks) != 2 || r.info.BytesSentRunning == 0 {
					t.Fatalf("DiskInfo %+v", r.info)
				}
				for i, d := range r.info.Disks {
					e.checkDisk("compute2", d.VDI, g.disks[i])
					checkHasParent(t, e, "compute2", d.VDI)
				}
				r.finish(t, true)
				info, err := e.d.GetInfo(ctx, compute.InstanceRequest{Instance: g.inst, Host: "compute2"})
				if err != nil || info.PowerState != statemachine.PowerRunning || info.MemoryMB != 512 {
					t.Fatalf("destination %+v, %v", info, err)
				}
				for i, d := range r.info.Disks {
					e.checkDisk("compute2", d.VDI, g.disks[i])
				}
				if err := e.d.ConfirmMigration(ctx, compute.ConfirmMigrationRequest{Instance: g.inst, Migration: r.mig,
					Host: "compute1"}); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}

// checkHasParent: the copy kept the chain structure (its leaf has a
// parent VHD).
func checkHasParent(t *testing.T, e *testEnv, host, uuid string) {
	t.Helper()
	if sm := vdiRecord(t, e, host, uuid).SMConfig; sm["vhd-parent"] == "" {
		t.Fatalf("VDI %s has no parent: the chain was flattened", uuid)
	}
}

// vdiRecord reads a VDI of a compute host's pool by uuid.
func vdiRecord(t *testing.T, e *testEnv, host, uuid string) xenapi.VDIRecord {
	t.Helper()
	ctx := context.Background()
	tg, err := e.d.pool(ctx, host)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := tg.Client.VDI.GetByUUID(ctx, uuid)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := tg.Client.VDI.GetRecord(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// TestDom0TransportNeedsDom0: a host without dom0 access is refused
// before anything moves, and the source is rolled back.
func TestDom0TransportNeedsDom0(t *testing.T) {
	e := dom0Env(t, standalone, false)
	entry := e.cfg.Inventory.Hosts["compute2"]
	entry.Dom0 = nil
	e.cfg.Inventory.Hosts["compute2"] = entry
	d, err := New(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.d = d
	g := e.addGuest("compute1", guestSpec{running: true})
	mig := newMigration(g, "compute2", &compute.Flavor{MemoryMB: 512, VCPUs: 1})
	_, err = d.MigrateDiskAndPowerOff(context.Background(), compute.MigrateDiskRequest{Instance: g.inst, Migration: mig,
		Host: "compute1", DestHost: "compute2", NewFlavor: mig.NewFlavor})
	var nd *NoDom0Error
	if !errors.As(err, &nd) || nd.ComputeHost != "compute2" || !errors.As(err, new(*compute.InstanceFaultRollback)) {
		t.Fatalf("got %v", err)
	}
	checkSourceIntact(t, e, g, true)
}
