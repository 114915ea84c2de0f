package xenapitest

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// vmIn makes a VM with one disk and drives it to state.
func vmIn(t *testing.T, p *Pool, s, state string) VMInfo {
	t.Helper()
	vm, err := p.AddVM(VMSpec{Name: "vm-" + strings.ToLower(state), Disks: []int64{4 << 20}})
	if err != nil {
		t.Fatal(err)
	}
	switch state {
	case "Halted":
	case "Running":
		mustCall(t, p, "VM.start", s, vm.Ref, false, false)
	case "Paused":
		mustCall(t, p, "VM.start", s, vm.Ref, true, false)
	case "Suspended":
		mustCall(t, p, "VM.start", s, vm.Ref, false, false)
		mustCall(t, p, "VM.suspend", s, vm.Ref)
	default:
		t.Fatalf("no state %s", state)
	}
	return vm
}

func TestPowerStateMachine(t *testing.T) {
	p := newTestPool(t, Options{})
	s := login(t, p)
	host := p.Master().Ref()
	type tc struct {
		op       string
		from     string
		to       string // "" when the call must fail
		expected string // VM_BAD_POWER_STATE's expected parameter
	}
	ops := []struct {
		name     string
		params   func(vm string) []any
		allowed  map[string]string // from -> to
		expected string
	}{
		{"VM.start", func(vm string) []any { return []any{vm, false, false} }, map[string]string{"Halted": "Running"}, "halted"},
		{"VM.start_on", func(vm string) []any { return []any{vm, host, false, false} }, map[string]string{"Halted": "Running"}, "halted"},
		{"VM.clean_shutdown", func(vm string) []any { return []any{vm} }, map[string]string{"Running": "Halted"}, "running"},
		{"VM.hard_shutdown", func(vm string) []any { return []any{vm} }, map[string]string{"Running": "Halted", "Paused": "Halted", "Suspended": "Halted"}, "paused, suspended, running"},
		{"VM.shutdown", func(vm string) []any { return []any{vm} }, map[string]string{"Running": "Halted", "Paused": "Halted", "Suspended": "Halted"}, "paused, suspended, running"},
		{"VM.clean_reboot", func(vm string) []any { return []any{vm} }, map[string]string{"Running": "Running"}, "running"},
		{"VM.hard_reboot", func(vm string) []any { return []any{vm} }, map[string]string{"Running": "Running", "Paused": "Running"}, "paused, running"},
		{"VM.suspend", func(vm string) []any { return []any{vm} }, map[string]string{"Running": "Suspended"}, "running"},
		{"VM.resume", func(vm string) []any { return []any{vm, false, false} }, map[string]string{"Suspended": "Running"}, "suspended"},
		{"VM.pause", func(vm string) []any { return []any{vm} }, map[string]string{"Running": "Paused"}, "running"},
		{"VM.unpause", func(vm string) []any { return []any{vm} }, map[string]string{"Paused": "Running"}, "paused"},
		{"VM.destroy", func(vm string) []any { return []any{vm} }, map[string]string{"Halted": "", "Suspended": ""}, "halted, suspended"},
	}
	for tname, call := range transports(t, p) {
		for _, op := range ops {
			for _, from := range powerStates {
				to, ok := op.allowed[from]
				t.Run(fmt.Sprintf("%s/%s from %s", tname, op.name, from), func(t *testing.T) {
					vm := vmIn(t, p, s, from)
					_, err := call(context.Background(), op.name, append([]any{s}, op.params(vm.Ref)...)...)
					if !ok {
						wantFailure(t, err, ErrVMBadPowerState, vm.Ref, op.expected, strings.ToLower(from))
						if got := recField(t, p, vm.Ref, "power_state"); got != from {
							t.Fatalf("power_state changed to %v on a failed call", got)
						}
						return
					}
					if err != nil {
						t.Fatal(err)
					}
					if op.name == "VM.destroy" {
						_, err := p.Call(context.Background(), "VM.get_record", s, vm.Ref)
						wantFailure(t, err, ErrHandleInvalid, "VM", vm.Ref)
						return
					}
					if got := recField(t, p, vm.Ref, "power_state"); got != to {
						t.Fatalf("power_state %v, want %s", got, to)
					}
					attached := recField(t, p, vm.VBDs[0], "currently_attached")
					if want := to == "Running" || to == "Paused"; attached != want {
						t.Fatalf("VBD currently_attached %v in %s", attached, to)
					}
					resident := recField(t, p, vm.Ref, "resident_on")
					if (to == "Running" || to == "Paused") != (resident == host) {
						t.Fatalf("resident_on %v in %s", resident, to)
					}
				})
			}
		}
	}
}

func TestBlockedOperations(t *testing.T) {
	p := newTestPool(t, Options{})
	s := login(t, p)
	tests := []struct {
		blocked map[string]any
		state   string
		call    string
		params  []any
	}{
		{map[string]any{"start": ""}, "Halted", "VM.start", []any{false, false}},
		{map[string]any{"start": "bootlock"}, "Halted", "VM.start", []any{false, false}},
		{map[string]any{"clean_shutdown": "x"}, "Running", "VM.clean_shutdown", nil},
		{map[string]any{"hard_shutdown": "y"}, "Running", "VM.hard_shutdown", nil},
		{map[string]any{"destroy": "keep"}, "Halted", "VM.destroy", nil},
		{map[string]any{"snapshot": "no"}, "Running", "VM.snapshot", []any{"snap"}},
		// blocked_operations is checked before the power state
		{map[string]any{"start": "first"}, "Running", "VM.start", []any{false, false}},
	}
	for _, tt := range tests {
		t.Run(tt.call+" in "+tt.state, func(t *testing.T) {
			vm := vmIn(t, p, s, tt.state)
			mustCall(t, p, "VM.set_blocked_operations", s, vm.Ref, tt.blocked)
			var code string
			for _, v := range tt.blocked {
				code = v.(string)
			}
			_, err := p.Call(context.Background(), tt.call, append([]any{s, vm.Ref}, tt.params...)...)
			wantFailure(t, err, ErrOperationBlocked, vm.Ref, code)
			for k := range tt.blocked {
				mustCall(t, p, "VM.remove_from_blocked_operations", s, vm.Ref, k)
			}
			if _, err := p.Call(context.Background(), tt.call, append([]any{s, vm.Ref}, tt.params...)...); err != nil && tt.state != "Running" || tt.call == "VM.start" && tt.state == "Running" && err == nil {
				t.Fatalf("after unblocking: %v", err)
			}
		})
	}
	t.Run("keys match case-insensitively", func(t *testing.T) {
		vm := vmIn(t, p, s, "Halted")
		mustCall(t, p, "VM.add_to_blocked_operations", s, vm.Ref, "Start", "lock")
		_, err := p.Call(context.Background(), "VM.start", s, vm.Ref, false, false)
		wantFailure(t, err, ErrOperationBlocked, vm.Ref, "lock")
		mustCall(t, p, "VM.remove_from_blocked_operations", s, vm.Ref, "START")
		mustCall(t, p, "VM.set_blocked_operations", s, vm.Ref, map[string]any{"Changing_vcpus": "v"})
		_, err = p.Call(context.Background(), "VM.set_VCPUs_max", s, vm.Ref, "2")
		wantFailure(t, err, ErrOperationBlocked, vm.Ref, "v")
	})
	t.Run("add_to_blocked_operations duplicate", func(t *testing.T) {
		vm := vmIn(t, p, s, "Halted")
		mustCall(t, p, "VM.add_to_blocked_operations", s, vm.Ref, "start", "")
		_, err := p.Call(context.Background(), "VM.add_to_blocked_operations", s, vm.Ref, "start", "")
		wantFailure(t, err, ErrMapDuplicateKey, "VM", "blocked_operations", vm.UUID, "start")
	})
}

func TestVCPURules(t *testing.T) {
	p := newTestPool(t, Options{})
	s := login(t, p)
	tests := []struct {
		name       string
		state      string
		max, start int // initial values (both start at 1 by AddVM, set in order)
		call       string
		value      int
		code       string
		param0     string
	}{
		{"grow max halted", "Halted", 1, 1, "VM.set_VCPUs_max", 4, "", ""},
		{"max below startup", "Halted", 4, 4, "VM.set_VCPUs_max", 2, ErrInvalidValue, vcpuRule},
		{"max zero", "Halted", 1, 1, "VM.set_VCPUs_max", 0, ErrInvalidValue, vcpuRule},
		{"startup above max", "Halted", 2, 2, "VM.set_VCPUs_at_startup", 3, ErrInvalidValue, vcpuRule},
		{"startup zero", "Halted", 2, 2, "VM.set_VCPUs_at_startup", 0, ErrInvalidValue, vcpuRule},
		{"startup shrink", "Halted", 4, 4, "VM.set_VCPUs_at_startup", 2, "", ""},
		{"max running", "Running", 1, 1, "VM.set_VCPUs_max", 2, ErrVMBadPowerState, ""},
		{"startup running", "Running", 1, 1, "VM.set_VCPUs_at_startup", 1, ErrVMBadPowerState, ""},
		{"live within max", "Running", 1, 1, "VM.set_VCPUs_number_live", 1, "", ""},
		{"live halted", "Halted", 1, 1, "VM.set_VCPUs_number_live", 1, ErrVMBadPowerState, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vm := vmIn(t, p, s, "Halted")
			mustCall(t, p, "VM.set_VCPUs_max", s, vm.Ref, tt.max)
			mustCall(t, p, "VM.set_VCPUs_at_startup", s, vm.Ref, tt.start)
			if tt.state == "Running" {
				mustCall(t, p, "VM.start", s, vm.Ref, false, false)
			}
			_, err := p.Call(context.Background(), tt.call, s, vm.Ref, fmt.Sprint(tt.value))
			switch tt.code {
			case "":
				if err != nil {
					t.Fatal(err)
				}
			case ErrInvalidValue:
				wantFailure(t, err, ErrInvalidValue, tt.param0, fmt.Sprint(tt.value))
			case ErrVMBadPowerState:
				if tt.state == "Running" {
					wantFailure(t, err, ErrVMBadPowerState, vm.Ref, "halted", "running")
				} else {
					wantFailure(t, err, ErrVMBadPowerState, vm.Ref, "running", "halted")
				}
			}
		})
	}
	t.Run("grow then shrink in the right order", func(t *testing.T) {
		vm := vmIn(t, p, s, "Halted")
		mustCall(t, p, "VM.set_VCPUs_max", s, vm.Ref, "8")
		mustCall(t, p, "VM.set_VCPUs_at_startup", s, vm.Ref, "8")
		mustCall(t, p, "VM.set_VCPUs_at_startup", s, vm.Ref, "2")
		mustCall(t, p, "VM.set_VCPUs_max", s, vm.Ref, "2")
		if got := mustCall(t, p, "VM.get_VCPUs_max", s, vm.Ref); got != "2" {
			t.Fatalf("VCPUs_max %v", got)
		}
	})
}

func TestMemoryRules(t *testing.T) {
	p := newTestPool(t, Options{})
	s := login(t, p)
	const G = 1 << 30
	tests := []struct {
		name   string
		state  string
		call   string
		values []int64
		ok     bool
		want   [4]int64 // smin, dmin, dmax, smax after the call
	}{
		{"static max grow", "Halted", "VM.set_memory_static_max", []int64{2 * G}, true, [4]int64{0, G, G, 2 * G}},
		{"static max below dynamic max", "Halted", "VM.set_memory_static_max", []int64{G / 2}, false, [4]int64{}},
		{"dynamic range in order", "Halted", "VM.set_memory_dynamic_range", []int64{G / 2, G}, true, [4]int64{0, G / 2, G, G}},
		{"dynamic range reversed", "Halted", "VM.set_memory_dynamic_range", []int64{G, G / 2}, false, [4]int64{}},
		{"dynamic range running", "Running", "VM.set_memory_dynamic_range", []int64{G / 2, G}, true, [4]int64{0, G / 2, G, G}},
		{"limits", "Halted", "VM.set_memory_limits", []int64{G / 4, 4 * G, G, 2 * G}, true, [4]int64{G / 4, G, 2 * G, 4 * G}},
		{"limits out of order", "Halted", "VM.set_memory_limits", []int64{G, 4 * G, G / 2, 2 * G}, false, [4]int64{}},
		{"set_memory", "Halted", "VM.set_memory", []int64{2 * G}, true, [4]int64{0, 2 * G, 2 * G, 2 * G}},
		{"static range", "Halted", "VM.set_memory_static_range", []int64{G / 8, 3 * G}, true, [4]int64{G / 8, G, G, 3 * G}},
		{"static max running", "Running", "VM.set_memory_static_max", []int64{2 * G}, false, [4]int64{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vm := vmIn(t, p, s, tt.state)
			params := []any{s, vm.Ref}
			for _, v := range tt.values {
				params = append(params, fmt.Sprint(v))
			}
			_, err := p.Call(context.Background(), tt.call, params...)
			if !tt.ok {
				if tt.state == "Running" {
					wantFailure(t, err, ErrVMBadPowerState, vm.Ref, "halted", "running")
				} else {
					wantFailure(t, err, ErrMemoryConstraintViolation)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for i, f := range []string{"memory_static_min", "memory_dynamic_min", "memory_dynamic_max", "memory_static_max"} {
				if got := recField(t, p, vm.Ref, f); got != fmt.Sprint(tt.want[i]) {
					t.Errorf("%s = %v, want %d", f, got, tt.want[i])
				}
			}
		})
	}
}

// vmRecord is a complete VM.create record like Nova's.
func vmRecord() map[string]any {
	return map[string]any{
		"name_label": "new", "name_description": "", "user_version": "0", "is_a_template": false,
		"affinity": "", "memory_static_min": "0", "memory_static_max": "1073741824",
		"memory_dynamic_min": "1073741824", "memory_dynamic_max": "1073741824", "memory_target": "1073741824",
		"VCPUs_params": map[string]any{}, "VCPUs_max": "2", "VCPUs_at_startup": "2",
		"actions_after_shutdown": "destroy", "actions_after_reboot": "restart", "actions_after_crash": "destroy",
		"PV_bootloader": "pygrub", "PV_kernel": "", "PV_ramdisk": "", "PV_args": "", "PV_bootloader_args": "",
		"PV_legacy_args": "", "HVM_boot_policy": "", "HVM_boot_params": map[string]any{},
		"platform": map[string]any{}, "PCI_bus": "", "other_config": map[string]any{"nova_uuid": "x"},
		"recommendations": "", "xenstore_data": map[string]any{"vm-data/hostname": "h"},
		"unknown_extra_key": "ignored",
	}
}

func TestVMCreate(t *testing.T) {
	p := newTestPool(t, Options{})
	s := login(t, p)
	ref := mustCall(t, p, "VM.create", s, vmRecord()).(string)
	rec := mustCall(t, p, "VM.get_record", s, ref).(map[string]any)
	for k, want := range map[string]any{
		"power_state": "Halted", "VCPUs_max": "2", "memory_static_max": "1073741824", "domain_type": "unspecified",
		"HVM_shadow_multiplier": 1.0, "is_a_snapshot": false, "resident_on": nullRef, "domid": "-1",
	} {
		if rec[k] != want {
			t.Errorf("%s = %#v, want %#v", k, rec[k], want)
		}
	}
	if rec["xenstore_data"].(map[string]any)["vm-data/hostname"] != "h" {
		t.Errorf("xenstore_data %v", rec["xenstore_data"])
	}
	for _, missing := range []string{"name_label", "memory_static_max", "VCPUs_max", "actions_after_crash", "PV_args", "other_config", "recommendations"} {
		t.Run("missing "+missing, func(t *testing.T) {
			r := vmRecord()
			delete(r, missing)
			_, err := p.Call(context.Background(), "VM.create", s, r)
			wantFailure(t, err, ErrInternalError, `Server_helpers.Dispatcher_FieldNotFound("`+missing+`")`)
		})
	}
	for _, optional := range []string{"xenstore_data", "memory_target", "tags", "blocked_operations", "ha_restart_priority"} {
		t.Run("optional "+optional, func(t *testing.T) {
			r := vmRecord()
			delete(r, optional)
			mustCall(t, p, "VM.create", s, r)
		})
	}
	t.Run("memory out of order", func(t *testing.T) {
		r := vmRecord()
		r["memory_dynamic_min"] = "2147483648"
		_, err := p.Call(context.Background(), "VM.create", s, r)
		wantFailure(t, err, ErrMemoryConstraintViolation)
	})
	t.Run("VCPUs_at_startup above max", func(t *testing.T) {
		r := vmRecord()
		r["VCPUs_at_startup"] = "3"
		_, err := p.Call(context.Background(), "VM.create", s, r)
		wantFailure(t, err, ErrInvalidValue, "VCPUs_at_startup", "3")
	})
	t.Run("enum case-insensitive", func(t *testing.T) {
		r := vmRecord()
		r["actions_after_crash"] = "Restart"
		ref := mustCall(t, p, "VM.create", s, r).(string)
		if got := recField(t, p, ref, "actions_after_crash"); got != "restart" {
			t.Fatalf("actions_after_crash %v", got)
		}
	})
	t.Run("other_config and xenstore_data maps", func(t *testing.T) {
		mustCall(t, p, "VM.add_to_other_config", s, ref, "k", "v")
		_, err := p.Call(context.Background(), "VM.add_to_other_config", s, ref, "k", "w")
		rec := mustCall(t, p, "VM.get_record", s, ref).(map[string]any)
		wantFailure(t, err, ErrMapDuplicateKey, "VM", "other_config", rec["uuid"].(string), "k")
		mustCall(t, p, "VM.remove_from_other_config", s, ref, "k")
		mustCall(t, p, "VM.add_to_xenstore_data", s, ref, "vm-data/x", "1")
		mustCall(t, p, "VM.set_name_label", s, ref, "renamed-orig")
		mustCall(t, p, "VM.set_name_description", s, ref, "d")
		got := mustCall(t, p, "VM.get_by_name_label", s, "renamed-orig").([]any)
		if len(got) != 1 || got[0] != ref {
			t.Fatalf("get_by_name_label %v", got)
		}
		oc := mustCall(t, p, "VM.get_other_config", s, ref).(map[string]any)
		if _, ok := oc["k"]; ok || oc["nova_uuid"] != "x" {
			t.Fatalf("other_config %v", oc)
		}
	})
}

func TestVMSnapshotAndDom0(t *testing.T) {
	p := newTestPool(t, Options{})
	s := login(t, p)
	vm := vmIn(t, p, s, "Running")
	snap := mustCall(t, p, "VM.snapshot", s, vm.Ref, "snap1").(string)
	rec := mustCall(t, p, "VM.get_record", s, snap).(map[string]any)
	if rec["is_a_snapshot"] != true || rec["snapshot_of"] != vm.Ref || rec["power_state"] != "Halted" || rec["name_label"] != "snap1" {
		t.Fatalf("snapshot record %v", rec)
	}
	if snaps := recField(t, p, vm.Ref, "snapshots").([]any); len(snaps) != 1 || snaps[0] != snap {
		t.Fatalf("snapshots %v", snaps)
	}
	_, err := p.Call(context.Background(), "VM.start", s, snap, false, false)
	wantFailure(t, err, ErrVMIsSnapshot, snap, "start")
	mustCall(t, p, "VM.destroy", s, snap)

	dom0 := recField(t, p, p.Master().Ref(), "control_domain").(string)
	_, err = p.Call(context.Background(), "VM.hard_shutdown", s, dom0)
	wantFailure(t, err, ErrOperationNotAllowed, "Operations on domain 0 are not allowed")

	where := mustCall(t, p, "VM.get_all_records_where", s, `field "is_control_domain"="false" and not field "power_state"="Halted"`).(map[string]any)
	if len(where) != 1 || where[vm.Ref] == nil {
		t.Fatalf("get_all_records_where: %d records", len(where))
	}
}

func TestStartChecks(t *testing.T) {
	p := newTestPool(t, Options{Hosts: 2, HostMemory: 6 << 30})
	s := login(t, p)
	h2 := p.Hosts()[1]
	vm, err := p.AddVM(VMSpec{Name: "on-h2", Host: h2.Name(), Disks: []int64{4 << 20}})
	if err != nil {
		t.Fatal(err)
	}
	t.Run("VM_REQUIRES_SR on the wrong host", func(t *testing.T) {
		_, err := p.Call(context.Background(), "VM.start_on", s, vm.Ref, p.Master().Ref(), false, false)
		wantFailure(t, err, ErrVMRequiresSR, vm.Ref, h2.SR())
	})
	t.Run("starts where its disks are", func(t *testing.T) {
		mustCall(t, p, "VM.start", s, vm.Ref, false, false)
		if got := recField(t, p, vm.Ref, "resident_on"); got != h2.Ref() {
			t.Fatalf("resident_on %v", got)
		}
		mustCall(t, p, "VM.hard_shutdown", s, vm.Ref)
	})
	t.Run("HOST_NOT_ENOUGH_FREE_MEMORY", func(t *testing.T) {
		big, err := p.AddVM(VMSpec{Name: "big", Memory: 3 << 30})
		if err != nil {
			t.Fatal(err)
		}
		_, err = p.Call(context.Background(), "VM.start", s, big.Ref, false, false)
		wantFailure(t, err, ErrHostNotEnoughFreeMemory, fmt.Sprint(3<<30), fmt.Sprint(2<<30))
		if got := mustCall(t, p, "host.compute_free_memory", s, p.Master().Ref()); got != fmt.Sprint(2<<30) {
			t.Fatalf("free memory %v", got)
		}
	})
	t.Run("VDI_IN_USE when another VM writes the disk", func(t *testing.T) {
		a := vmIn(t, p, s, "Running")
		b := vmIn(t, p, s, "Halted")
		vbd := mustCall(t, p, "VBD.create", s, map[string]any{
			"VM": b.Ref, "VDI": a.VDIs[0], "userdevice": "1", "bootable": false, "mode": "RW", "type": "Disk",
			"empty": false, "other_config": map[string]any{}, "qos_algorithm_type": "", "qos_algorithm_params": map[string]any{},
		}).(string)
		_, err := p.Call(context.Background(), "VM.start", s, b.Ref, false, false)
		wantFailure(t, err, ErrVDIInUse, a.VDIs[0], "start")
		mustCall(t, p, "VM.hard_shutdown", s, a.Ref)
		mustCall(t, p, "VM.start", s, b.Ref, false, false)
		if got := recField(t, p, vbd, "currently_attached"); got != true {
			t.Fatalf("rescue disk not attached")
		}
	})
	t.Run("VDI_MISSING when the file is gone", func(t *testing.T) {
		v := vmIn(t, p, s, "Halted")
		path, err := p.VDIPath(v.VDIs[0])
		if err != nil {
			t.Fatal(err)
		}
		if err := removeFile(path); err != nil {
			t.Fatal(err)
		}
		_, err = p.Call(context.Background(), "VM.start", s, v.Ref, false, false)
		wantFailure(t, err, ErrVDIMissing, p.Master().SR(), v.VDIs[0])
	})
}

func TestVMCloneCopyAndAllowedOperations(t *testing.T) {
	p := newTestPool(t, Options{Hosts: 2})
	s := login(t, p)
	vm := vmIn(t, p, s, "Halted")
	if err := p.WriteVDI(vm.VDIs[0], 512, []byte("payload")); err != nil {
		t.Fatal(err)
	}
	ops := func(ref string) map[string]bool {
		m := map[string]bool{}
		for _, o := range mustCall(t, p, "VM.get_allowed_operations", s, ref).([]any) {
			m[o.(string)] = true
		}
		return m
	}
	if a := ops(vm.Ref); !a["start"] || !a["destroy"] || !a["copy"] || a["clean_shutdown"] {
		t.Fatalf("halted allowed_operations %v", a)
	}
	mustCall(t, p, "VM.add_to_blocked_operations", s, vm.Ref, "start", "")
	if a := ops(vm.Ref); a["start"] {
		t.Fatal("a blocked operation is listed as allowed")
	}
	mustCall(t, p, "VM.remove_from_blocked_operations", s, vm.Ref, "start")

	h2 := p.Hosts()[1]
	cp := mustCall(t, p, "VM.copy", s, vm.Ref, "copied", h2.SR()).(string)
	clone := mustCall(t, p, "VM.clone", s, vm.Ref, "cloned").(string)
	for _, ref := range []string{cp, clone} {
		rec := mustCall(t, p, "VM.get_record", s, ref).(map[string]any)
		if rec["is_a_snapshot"] != false || len(rec["VBDs"].([]any)) != 1 {
			t.Fatalf("record %v", rec)
		}
		vbd := rec["VBDs"].([]any)[0].(string)
		vdi := recField(t, p, vbd, "VDI").(string)
		buf := make([]byte, 7)
		if err := p.ReadVDIAt(vdi, buf, 512); err != nil || string(buf) != "payload" {
			t.Fatalf("%s disk: %q %v", rec["name_label"], buf, err)
		}
		if ref == cp && recField(t, p, vdi, "SR") != h2.SR() {
			t.Fatal("copy not in the target SR")
		}
	}
	mustCall(t, p, "VM.start", s, cp, false, false)
	if recField(t, p, cp, "resident_on") != h2.Ref() {
		t.Fatal("copy did not start where its disk is")
	}
	if a := ops(cp); !a["clean_shutdown"] || a["start"] || a["copy"] {
		t.Fatalf("running allowed_operations %v", a)
	}
	_, err := p.Call(context.Background(), "VM.copy", s, cp, "x", nullRef)
	wantFailure(t, err, ErrVMBadPowerState, cp, "halted", "running")
}

// TestAllowedOperationsAgreeWithChecks: the computed allowed_operations
// lists exactly the operations checkVMOp lets through.
func TestAllowedOperationsAgreeWithChecks(t *testing.T) {
	p := newTestPool(t, Options{})
	s := login(t, p)
	var vms []string
	for _, st := range powerStates {
		vms = append(vms, vmIn(t, p, s, st).Ref)
	}
	snap := mustCall(t, p, "VM.snapshot", s, vms[0], "snap").(string)
	locked := vmIn(t, p, s, "Halted").Ref
	mustCall(t, p, "VM.set_blocked_operations", s, locked, map[string]any{"start": "", "destroy": "x"})
	dom0 := recField(t, p, p.Master().Ref(), "control_domain").(string)
	vms = append(vms, snap, locked, dom0)
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, ref := range vms {
		vm := p.objs[ref]
		allowed := map[string]bool{}
		for _, op := range vmAllowedOperations(vm) {
			allowed[op] = true
		}
		for _, op := range listedVMOperations {
			if allowed[op] != (checkVMOp(vm, op) == nil) {
				t.Errorf("%s in %s: allowed_operations says %v, checkVMOp says %v", op, vm.str("name_label"), allowed[op], checkVMOp(vm, op))
			}
		}
	}
}
