package xenapitest

import (
	"context"
	"errors"
	"testing"
)

func vbdRecord(vm, vdi, userdevice, typ string, empty bool) map[string]any {
	return map[string]any{
		"VM": vm, "VDI": vdi, "userdevice": userdevice, "bootable": false, "mode": "RW", "type": typ,
		"empty": empty, "other_config": map[string]any{}, "qos_algorithm_type": "", "qos_algorithm_params": map[string]any{},
	}
}

func TestVBDs(t *testing.T) {
	p := newTestPool(t, Options{Hosts: 2})
	s := login(t, p)
	ctx := context.Background()
	vm := vmIn(t, p, s, "Running")
	extra, err := p.AddVM(VMSpec{Name: "disks", Disks: []int64{2 << 20, 2 << 20}})
	if err != nil {
		t.Fatal(err)
	}
	// A disk moved over from a halted VM: detach it there first.
	mustCall(t, p, "VBD.destroy", s, extra.VBDs[1])
	disk := extra.VDIs[1]

	vbd := mustCall(t, p, "VBD.create", s, vbdRecord(vm.Ref, disk, "autodetect", "Disk", false)).(string)
	rec := mustCall(t, p, "VBD.get_record", s, vbd).(map[string]any)
	if rec["userdevice"] != "1" || rec["device"] != "xvdb" || rec["currently_attached"] != false || rec["unpluggable"] != true {
		t.Fatalf("record %v", rec)
	}
	if vdis := recField(t, p, disk, "VBDs").([]any); len(vdis) != 1 || vdis[0] != vbd {
		t.Fatalf("VDI.VBDs %v", vdis)
	}
	_, err = p.Call(ctx, "VBD.create", s, vbdRecord(vm.Ref, disk, "1", "Disk", false))
	wantFailure(t, err, ErrDeviceAlreadyExists, "1")
	_, err = p.Call(ctx, "VBD.create", s, vbdRecord("OpaqueRef:nope", disk, "3", "Disk", false))
	wantFailure(t, err, ErrHandleInvalid, "VM", "OpaqueRef:nope")

	mustCall(t, p, "VBD.plug", s, vbd)
	_, err = p.Call(ctx, "VBD.plug", s, vbd)
	wantFailure(t, err, ErrDeviceAlreadyAttached, vbd)
	_, err = p.Call(ctx, "VBD.destroy", s, vbd)
	wantFailure(t, err, ErrOperationNotAllowed, "VBD '"+recField(t, p, vbd, "uuid").(string)+"' still attached to '"+vm.UUID+"'")
	mustCall(t, p, "VBD.set_unpluggable", s, vbd, false)
	_, err = p.Call(ctx, "VBD.unplug", s, vbd)
	wantFailure(t, err, ErrVBDNotUnpluggable, vbd)
	mustCall(t, p, "VBD.unplug_force", s, vbd)
	_, err = p.Call(ctx, "VBD.unplug", s, vbd)
	wantFailure(t, err, ErrDeviceAlreadyDetached, vbd)
	mustCall(t, p, "VBD.destroy", s, vbd)
	if vdis := recField(t, p, disk, "VBDs").([]any); len(vdis) != 0 {
		t.Fatalf("VDI.VBDs after destroy %v", vdis)
	}

	t.Run("plug needs a running VM", func(t *testing.T) {
		halted := vmIn(t, p, s, "Halted")
		v := mustCall(t, p, "VBD.create", s, vbdRecord(halted.Ref, disk, "1", "Disk", false)).(string)
		_, err := p.Call(ctx, "VBD.plug", s, v)
		wantFailure(t, err, ErrVMBadPowerState, halted.Ref, "running", "halted")
		_, err = p.Call(ctx, "VBD.unplug", s, v)
		wantFailure(t, err, ErrVMBadPowerState, halted.Ref, "running", "halted")
		mustCall(t, p, "VBD.destroy", s, v)
	})
	t.Run("plug a disk of another host", func(t *testing.T) {
		far, err := p.AddVM(VMSpec{Name: "far", Host: p.Hosts()[1].Name(), Disks: []int64{2 << 20}})
		if err != nil {
			t.Fatal(err)
		}
		v := mustCall(t, p, "VBD.create", s, vbdRecord(vm.Ref, far.VDIs[0], "5", "Disk", false)).(string)
		_, err = p.Call(ctx, "VBD.plug", s, v)
		wantFailure(t, err, ErrVMRequiresSR, vm.Ref, p.Hosts()[1].SR())
	})
	t.Run("plug a disk another VM writes", func(t *testing.T) {
		other := vmIn(t, p, s, "Running")
		v := mustCall(t, p, "VBD.create", s, vbdRecord(vm.Ref, other.VDIs[0], "6", "Disk", false)).(string)
		_, err := p.Call(ctx, "VBD.plug", s, v)
		wantFailure(t, err, ErrVDIInUse, other.VDIs[0], "plug")
	})
	t.Run("CD insert and eject", func(t *testing.T) {
		cd := mustCall(t, p, "VBD.create", s, vbdRecord(vm.Ref, nullRef, "3", "CD", true)).(string)
		_, err := p.Call(ctx, "VBD.eject", s, cd)
		wantFailure(t, err, ErrVBDIsEmpty, cd)
		mustCall(t, p, "VBD.insert", s, cd, disk)
		_, err = p.Call(ctx, "VBD.insert", s, cd, disk)
		wantFailure(t, err, ErrVBDNotEmpty, cd)
		if recField(t, p, cd, "VDI") != disk || recField(t, p, cd, "empty") != false {
			t.Fatal("insert did not fill the drive")
		}
		mustCall(t, p, "VBD.eject", s, cd)
		if recField(t, p, cd, "VDI") != nullRef {
			t.Fatal("eject left the VDI")
		}
	})
	t.Run("destroying a VDI removes its VBDs", func(t *testing.T) {
		v := mustCall(t, p, "VBD.create", s, vbdRecord(extra.Ref, disk, "1", "Disk", false)).(string)
		mustCall(t, p, "VDI.destroy", s, disk)
		_, err := p.Call(ctx, "VBD.get_record", s, v)
		wantFailure(t, err, ErrHandleInvalid, "VBD", v)
	})
}

func TestFailureError(t *testing.T) {
	f := &Failure{Code: ErrHandleInvalid, Params: []string{"VM", "x"}}
	if f.Error() != "xenapitest: HANDLE_INVALID [VM, x]" || (&Failure{Code: "X"}).Error() != "xenapitest: X" {
		t.Fatal(f.Error())
	}
	if !errors.Is(f, &Failure{Code: ErrHandleInvalid}) || errors.Is(f, &Failure{Code: ErrSessionInvalid}) {
		t.Fatal("Is")
	}
	if d := f.Description(); len(d) != 3 || d[0] != ErrHandleInvalid {
		t.Fatal(d)
	}
}
