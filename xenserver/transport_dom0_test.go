package xenserver

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/dom0"
	"github.com/xenflow/xenflow/dom0/dom0test"
	"github.com/xenflow/xenflow/internal/sshdtest"
	"github.com/xenflow/xenflow/statemachine"
	"github.com/xenflow/xenflow/xenapi"
	"github.com/xenflow/xenflow/xenapi/xenapitest"
)

// dom0Env gives every compute host its dom0 (dom0.LocalHost over the
// simulated host's root) and the dom0 transport.
func dom0Env(t testing.TB, l layout, rounds bool) *testEnv {
	return dom0EnvWith(t, l, rounds, nil)
}

// dom0EnvWith is dom0Env with each compute host's dom0 made by wrap from
// the local host over the simulated host's root (nil: the local host).
func dom0EnvWith(t testing.TB, l layout, rounds bool, wrap func(host string, h *dom0.LocalHost) dom0.Host) *testEnv {
	t.Helper()
	e := newEnv(t, l, envOptions{})
	for name, entry := range e.cfg.Inventory.Hosts {
		h, err := dom0.Local(e.hostOf[name].Root())
		if err != nil {
			t.Fatal(err)
		}
		entry.Dom0, entry.Transport = h, TransportDom0
		if wrap != nil {
			entry.Dom0 = wrap(name, h)
		}
		e.cfg.Inventory.Hosts[name] = entry
	}
	e.cfg.Transports = map[string]Transport{TransportDom0: NewDom0Transport(nil)}
	if rounds {
		e.cfg.Migrate.PreCopyThreshold = 1 // every write asks for another round
	}
	e.newDriver(t)
	return e
}

// TestDom0TransportResize resizes over the dom0 transport with each host's
// dom0 a local host over the simulated host's root.
func TestDom0TransportResize(t *testing.T) {
	dom0ResizeSweep(t, layouts, []bool{false, true}, nil)
}

// TestDom0TransportResizeOverSSH resizes over the dom0 transport with each
// compute host's dom0 reached through a real OpenSSH sshd of its own
// (dom0.DialSSH), the simulated host's root shown as the SSH host's root.
// Every file a VHD chain is opened from costs a command over SSH (its
// link count): the moves run with pre-copy rounds only, which send the
// most, and under the race detector on one pool only (both layouts
// without it).
func TestDom0TransportResizeOverSSH(t *testing.T) {
	ls := layouts
	if raceDetector {
		ls = []layout{onePool}
	}
	dom0ResizeSweep(t, ls, []bool{true}, func(t *testing.T, host string, l *dom0.LocalHost) dom0.Host {
		s := sshdtest.Start(t)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		h, err := dom0.DialSSH(ctx, s.Addr, &dom0.SSHConfig{User: s.User, KnownHostsFiles: []string{s.KnownHosts},
			KeyFiles: []dom0.KeyFile{{Path: s.UserKey}}})
		if err != nil {
			t.Fatalf("dial the dom0 of %s: %v\n%s", host, err, s.Log())
		}
		t.Cleanup(func() { _ = h.Close() })
		return dom0test.Rooted(h, l.Root())
	})
}

// dom0ResizeSweep resizes a running guest with two disks to compute2 on
// the layouts ls, with pre-copy rounds or without as rounds lists, over the
// dom0 transport
// with the hosts' dom0 made by dial (nil: local hosts), and checks the
// guest's data byte for byte, the chain kept, the flavor applied.
func dom0ResizeSweep(t *testing.T, ls []layout, rounds []bool, dial func(t *testing.T, host string, l *dom0.LocalHost) dom0.Host) {
	for _, l := range ls {
		for _, rounds := range rounds {
			name := string(l)
			if rounds {
				name += "/pre-copy-rounds"
			}
			t.Run(name, func(t *testing.T) {
				var wrap func(string, *dom0.LocalHost) dom0.Host
				if dial != nil {
					wrap = func(host string, h *dom0.LocalHost) dom0.Host { return dial(t, host, h) }
				}
				dom0Resize(t, dom0EnvWith(t, l, rounds, wrap))
			})
		}
	}
}

// dom0Resize moves a running guest to compute2, finishes and confirms.
func dom0Resize(t *testing.T, e *testEnv) {
	ctx := context.Background()
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
	e.newDriver(t)
	g := e.addGuest("compute1", guestSpec{running: true})
	mig := newMigration(g, "compute2", &compute.Flavor{MemoryMB: 512, VCPUs: 1})
	_, err := e.d.MigrateDiskAndPowerOff(context.Background(), compute.MigrateDiskRequest{Instance: g.inst, Migration: mig,
		Host: "compute1", DestHost: "compute2", NewFlavor: mig.NewFlavor})
	var nd *NoDom0Error
	if !errors.As(err, &nd) || nd.ComputeHost != "compute2" || !errors.As(err, new(*compute.InstanceFaultRollback)) {
		t.Fatalf("got %v", err)
	}
	checkSourceIntact(t, e, g, true)
}

// TestDom0AbortRemovesImportedChain: when the move fails after the chain
// was imported into the destination SR (the SR scan, or tagging the new
// VDI, fails), the rollback removes the imported chain, leaf and parents,
// whether xapi knew the leaf or not.
func TestDom0AbortRemovesImportedChain(t *testing.T) {
	for _, method := range []string{"SR.scan", "VDI.set_name_label"} {
		t.Run(method, func(t *testing.T) {
			e := dom0Env(t, standalone, false)
			g := e.addGuest("compute1", guestSpec{running: true, disks: []int64{8 << 20, 4 << 20}})
			s := &sweepState{r: &resizeRun{e: e, g: g, dest: "compute2", mig: newMigration(g, "compute2", large)}}
			dest := e.pools["pool2"]
			dest.InjectFault(xenapitest.Fault{Method: method, Code: xenapi.CodeInternalError, Params: []string{"injected"}})
			err := migrateOnce(context.Background(), s)
			dest.ClearFaults()
			if !errors.As(err, new(*compute.InstanceFaultRollback)) {
				t.Fatalf("got %v, want a rollback", err)
			}
			checkSourceIntact(t, e, g, true)
			h := e.hostOf["compute2"]
			files, err := filepath.Glob(filepath.Join(h.Root(), "var", "run", "sr-mount", h.SRUUID(), "*.vhd"))
			if err != nil || len(files) != 0 {
				t.Fatalf("the destination SR holds %v (%v) after the rollback", files, err)
			}
			checkNoOrphanVDI(t, s)
			checkNoStaging(t, s)
		})
	}
}
