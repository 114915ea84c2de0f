package xenserver

import (
	"context"
	"errors"
	"testing"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/statemachine"
	"github.com/xenflow/xenflow/xenapi"
)

func suspendReq(g *guest, mig *compute.Migration, flavor *compute.Flavor) compute.MigrateDiskRequest {
	return compute.MigrateDiskRequest{Instance: g.inst, Migration: mig, Host: g.host, DestHost: mig.DestCompute,
		NewFlavor: flavor, Suspend: true}
}

func TestSuspendedMove(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, onePool, envOptions{})
	g := e.addGuest("compute1", guestSpec{running: true, disks: []int64{8 << 20, 4 << 20}})
	mig := newMigration(g, "compute2", g.inst.Flavor)
	var info compute.DiskInfo
	for i := 0; i < 2; i++ {
		var err error
		if info, err = e.d.MigrateSuspended(ctx, suspendReq(g, mig, g.inst.Flavor)); err != nil {
			t.Fatalf("MigrateSuspended #%d: %v", i+1, err)
		}
	}
	if info.SuspendVDI == "" || len(info.Disks) != 2 {
		t.Fatalf("DiskInfo %+v", info)
	}
	if vm := e.vms("compute1")[g.inst.Name]; vm.Rec.PowerState != xenapi.VMPowerStateSuspended {
		t.Fatalf("the guest is %s after the move", vm.Rec.PowerState)
	}
	for i, d := range info.Disks {
		e.checkDisk("compute2", d.VDI, g.disks[i])
	}
	finish := compute.FinishMigrationRequest{Instance: g.inst, Migration: mig, Host: "compute2", DiskInfo: info,
		NewFlavor: g.inst.Flavor, PowerOn: true}
	for i := 0; i < 2; i++ {
		if err := e.d.FinishSuspended(ctx, finish); err != nil {
			t.Fatalf("FinishSuspended #%d: %v", i+1, err)
		}
	}
	got, err := e.d.GetInfo(ctx, compute.InstanceRequest{Instance: g.inst, Host: "compute2"})
	if err != nil || got.PowerState != statemachine.PowerRunning {
		t.Fatalf("guest on the destination: %+v, %v", got, err)
	}
	tg, err := e.d.pool(ctx, "compute2")
	if err != nil {
		t.Fatal(err)
	}
	vm, err := e.d.instanceVM(ctx, tg, g.inst)
	if err != nil {
		t.Fatal(err)
	}
	disks, err := vmDisks(ctx, tg.Client, vm)
	if err != nil || len(disks) != 2 {
		t.Fatalf("disks %+v, %v", disks, err)
	}
	for i, d := range disks {
		if d.VDIRec.UUID != info.Disks[i].VDI {
			t.Fatalf("disk %d is %s, not the copy %s", i, d.VDIRec.UUID, info.Disks[i].VDI)
		}
		e.checkDisk("compute2", d.VDIRec.UUID, g.disks[i])
	}
	checkSourceData(t, e, g) // kept until the confirm
	if err := e.d.ConfirmSuspended(ctx, compute.ConfirmMigrationRequest{Instance: g.inst, Migration: mig, Host: "compute1"}); err != nil {
		t.Fatal(err)
	}
	for _, vdi := range g.vm.VDIs {
		if _, err := e.poolOf["compute1"].Record(vdi); err == nil {
			t.Fatalf("source disk %s survived the confirm", vdi)
		}
	}
}

func TestSuspendedMoveRefusals(t *testing.T) {
	bigger := &compute.Flavor{ID: "big", MemoryMB: 1024, VCPUs: 1}
	tests := []struct {
		name    string
		l       layout
		running bool
		flavor  func(g *guest) *compute.Flavor
	}{
		{"memory changes", onePool, true, func(*guest) *compute.Flavor { return bigger }},
		{"vCPUs change", onePool, true, func(g *guest) *compute.Flavor {
			f := *g.inst.Flavor
			f.VCPUs++
			return &f
		}},
		{"two pools", standalone, true, func(g *guest) *compute.Flavor { return g.inst.Flavor }},
		{"halted guest", onePool, false, func(g *guest) *compute.Flavor { return g.inst.Flavor }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.l, envOptions{})
			g := e.addGuest("compute1", guestSpec{running: tc.running})
			f := tc.flavor(g)
			_, err := e.d.MigrateSuspended(context.Background(), suspendReq(g, newMigration(g, "compute2", f), f))
			var sr *SuspendRefusedError
			if !errors.As(err, &sr) || !errors.As(err, new(*compute.InstanceFaultRollback)) {
				t.Fatalf("got %v", err)
			}
			checkSourceIntact(t, e, g, tc.running)
		})
	}
}

// TestSuspendedMoveRollback: a copy that fails resumes the guest where it
// was and leaves no copy.
func TestSuspendedMoveRollback(t *testing.T) {
	for _, method := range []string{"VDI.create", "VDI.set_other_config"} {
		t.Run(method, func(t *testing.T) {
			e := newEnv(t, onePool, envOptions{})
			g := e.addGuest("compute1", guestSpec{running: true, disks: []int64{8 << 20, 4 << 20}})
			p := e.poolOf["compute1"]
			p.FailNth(method, p.CallCount(method)+2, xenapi.CodeInternalError, "injected")
			mig := newMigration(g, "compute2", g.inst.Flavor)
			_, err := e.d.MigrateSuspended(context.Background(), suspendReq(g, mig, g.inst.Flavor))
			if !errors.As(err, new(*compute.InstanceFaultRollback)) {
				t.Fatalf("got %v", err)
			}
			checkSourceIntact(t, e, g, true)
			checkNoLeftovers(t, e, g, mig)
		})
	}
}
