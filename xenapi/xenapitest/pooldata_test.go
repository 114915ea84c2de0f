package xenapitest

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestSharedSR runs a VM whose disk is on the shared SR on every host in
// turn, with its data, and checks that a local-SR VM stays where its disk
// is.
func TestSharedSR(t *testing.T) {
	p := newTestPool(t, Options{Hosts: 3, SharedSR: true})
	s := login(t, p)
	sr := p.SharedSR()
	if sr == "" || recField(t, p, p.Ref(), "default_SR") != sr || recField(t, p, sr, "shared") != true {
		t.Fatalf("shared SR %q not the pool's default or not shared", sr)
	}
	if pbds := recField(t, p, sr, "PBDs").([]any); len(pbds) != 3 {
		t.Fatalf("%d PBDs, want one per host", len(pbds))
	}
	hosts := p.Hosts()
	vm, err := p.AddVM(VMSpec{Name: "shared", Host: hosts[1].Name(), SR: sr, Disks: []int64{4 << 20}, Running: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := recField(t, p, vm.Ref, "resident_on"); got != hosts[1].Ref() {
		t.Fatalf("resident on %v, want %s", got, hosts[1].Name())
	}
	if err := p.WriteGuestDisk(vm.Ref, "0", 0, []byte("written on host2")); err != nil {
		t.Fatal(err)
	}
	uuid := recField(t, p, vm.VDIs[0], "uuid").(string)
	for _, h := range hosts {
		if _, err := os.Stat(filepath.Join(h.Root(), "var", "run", "sr-mount", recField(t, p, sr, "uuid").(string), uuid+".vhd")); err != nil {
			t.Fatalf("%s does not see the disk under its root: %v", h.Name(), err)
		}
	}
	for _, h := range []*Host{hosts[2], hosts[0]} {
		mustCall(t, p, "VM.hard_shutdown", s, vm.Ref)
		mustCall(t, p, "VM.start_on", s, vm.Ref, h.Ref(), false, false)
		if got := recField(t, p, vm.Ref, "resident_on"); got != h.Ref() {
			t.Fatalf("resident on %v, want %s", got, h.Name())
		}
		data, err := p.ReadVDI(vm.VDIs[0])
		if err != nil || !bytes.HasPrefix(data, []byte("written on host2")) {
			t.Fatalf("data on %s: %v", h.Name(), err)
		}
	}
	local, err := p.AddVM(VMSpec{Name: "local", Host: hosts[1].Name(), Disks: []int64{2 << 20}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Call(context.Background(), "VM.start_on", s, local.Ref, hosts[2].Ref(), false, false)
	wantFailure(t, err, ErrVMRequiresSR, local.Ref, hosts[1].SR())
}

// TestHostFreeMemory follows host.compute_free_memory and
// host_metrics.memory_free as VMs start, suspend and stop.
func TestHostFreeMemory(t *testing.T) {
	const total = 16 << 30
	p := newTestPool(t, Options{HostMemory: total})
	s := login(t, p)
	h := p.Master().Ref()
	metrics := mustCall(t, p, "host.get_metrics", s, h).(string)
	vm, err := p.AddVM(VMSpec{Name: "m", Memory: 2 << 30, Disks: []int64{2 << 20}})
	if err != nil {
		t.Fatal(err)
	}
	big, err := p.AddVM(VMSpec{Name: "big", Memory: 11 << 30})
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name string
		call []any
		free int64
	}{
		{"dom0 only", nil, total - controlDomainMemory},
		{"VM running", []any{"VM.start", s, vm.Ref, false, false}, total - controlDomainMemory - 2<<30},
		{"VM suspended", []any{"VM.suspend", s, vm.Ref}, total - controlDomainMemory},
		{"VM resumed", []any{"VM.resume", s, vm.Ref, false, false}, total - controlDomainMemory - 2<<30},
		{"VM halted", []any{"VM.hard_shutdown", s, vm.Ref}, total - controlDomainMemory},
	}
	for _, st := range steps {
		if st.call != nil {
			mustCall(t, p, st.call[0].(string), st.call[1:]...)
		}
		want := strconv.FormatInt(st.free, 10)
		if got := mustCall(t, p, "host.compute_free_memory", s, h); got != want {
			t.Errorf("%s: compute_free_memory %v, want %s", st.name, got, want)
		}
		if got := mustCall(t, p, "host_metrics.get_memory_free", s, metrics); got != want {
			t.Errorf("%s: host_metrics.memory_free %v, want %s", st.name, got, want)
		}
		if got := p.Master().HostFreeMemory(); got != st.free {
			t.Errorf("%s: HostFreeMemory %d, want %d", st.name, got, st.free)
		}
	}
	mustCall(t, p, "VM.start", s, vm.Ref, false, false)
	_, err = p.Call(context.Background(), "VM.start", s, big.Ref, false, false)
	wantFailure(t, err, ErrHostNotEnoughFreeMemory, strconv.Itoa(11<<30), strconv.Itoa(total-controlDomainMemory-2<<30))
}

// TestNetworkAndVIFs gives a VM a VIF, recreates it with the same network
// and MAC on a VM of another host (what a move does), and checks the
// refusals.
func TestNetworkAndVIFs(t *testing.T) {
	p := newTestPool(t, Options{Hosts: 2})
	s := login(t, p)
	ctx := context.Background()
	nets := mustCall(t, p, "network.get_by_name_label", s, DefaultNetworkName).([]any)
	if len(nets) != 1 || nets[0] != p.Network() || recField(t, p, p.Network(), "bridge") != "xenbr0" {
		t.Fatalf("default network %v", nets)
	}
	src, err := p.AddVM(VMSpec{Name: "src", Networks: []string{p.Network()}, Running: true})
	if err != nil {
		t.Fatal(err)
	}
	vifs := mustCall(t, p, "VM.get_VIFs", s, src.Ref).([]any)
	if len(vifs) != 1 || vifs[0] != src.VIFs[0] {
		t.Fatalf("VM.get_VIFs %v", vifs)
	}
	vif := mustCall(t, p, "VIF.get_record", s, src.VIFs[0]).(map[string]any)
	if vif["currently_attached"] != true || vif["network"] != p.Network() || !macPattern.MatchString(vif["MAC"].(string)) {
		t.Fatalf("VIF %v", vif)
	}
	dst, err := p.AddVM(VMSpec{Name: "dst", Host: p.Hosts()[1].Name()})
	if err != nil {
		t.Fatal(err)
	}
	rec := func(vm, device, mac string) map[string]any {
		return map[string]any{"device": device, "network": p.Network(), "VM": vm, "MAC": mac, "MTU": "1500",
			"other_config": map[string]any{}, "qos_algorithm_type": "", "qos_algorithm_params": map[string]any{}}
	}
	moved := mustCall(t, p, "VIF.create", s, rec(dst.Ref, "0", vif["MAC"].(string))).(string)
	if recField(t, p, moved, "MAC") != vif["MAC"] || recField(t, p, moved, "network") != p.Network() {
		t.Fatal("the recreated VIF lost its network or MAC")
	}
	for _, tc := range []struct {
		name   string
		call   []any
		code   string
		params []string
	}{
		{"device taken", []any{"VIF.create", s, rec(dst.Ref, "0", "")}, ErrDeviceAlreadyExists, []string{"0"}},
		{"bad device", []any{"VIF.create", s, rec(dst.Ref, "eth1", "")}, ErrInvalidDevice, []string{"eth1"}},
		{"bad MAC", []any{"VIF.create", s, rec(dst.Ref, "1", "00:11:22")}, ErrMACInvalid, []string{"00:11:22"}},
		{"destroy attached", []any{"VIF.destroy", s, src.VIFs[0]}, ErrOperationNotAllowed, []string{"VIF '" + vif["uuid"].(string) + "' still attached to '" + src.UUID + "'"}},
		{"network in use", []any{"network.destroy", s, p.Network()}, ErrNetworkContainsVIF, []string{src.VIFs[0], moved}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := p.Call(ctx, tc.call[0].(string), tc.call[1:]...)
			wantFailure(t, err, tc.code, tc.params...)
		})
	}
	mustCall(t, p, "VM.hard_shutdown", s, src.Ref)
	if recField(t, p, src.VIFs[0], "currently_attached") != false {
		t.Fatal("VIF attached after shutdown")
	}
	snap := mustCall(t, p, "VM.snapshot", s, src.Ref, "snap").(string)
	clone := mustCall(t, p, "VM.clone", s, src.Ref, "clone").(string)
	macOf := func(vm string) string {
		v := recField(t, p, vm, "VIFs").([]any)
		if len(v) != 1 {
			t.Fatalf("%s has %d VIFs", vm, len(v))
		}
		return recField(t, p, v[0].(string), "MAC").(string)
	}
	if macOf(snap) != vif["MAC"] || macOf(clone) == vif["MAC"] {
		t.Fatal("a snapshot keeps the MAC, a clone gets a new one")
	}
	for _, vm := range []string{src.Ref, snap, clone, dst.Ref} {
		mustCall(t, p, "VM.destroy", s, vm)
	}
	if n := recField(t, p, p.Network(), "VIFs").([]any); len(n) != 0 {
		t.Fatalf("network keeps VIFs %v of destroyed VMs", n)
	}
	mustCall(t, p, "network.destroy", s, mustCall(t, p, "network.create", s, map[string]any{
		"name_label": "private", "name_description": "", "other_config": map[string]any{}}))
}

// TestSuspendResume suspends a VM to an image of its memory size, resumes
// it on another host of a shared-storage pool, replaces the image by an
// identical copy, and checks the refusals.
func TestSuspendResume(t *testing.T) {
	const mem = 64 << 20
	p := newTestPool(t, Options{Hosts: 2, SharedSR: true})
	s := login(t, p)
	ctx := context.Background()
	hosts := p.Hosts()
	vm, err := p.AddVM(VMSpec{Name: "sleepy", Memory: mem, SR: p.SharedSR(), Disks: []int64{2 << 20}, Running: true})
	if err != nil {
		t.Fatal(err)
	}
	suspend := func() string {
		t.Helper()
		mustCall(t, p, "VM.suspend", s, vm.Ref)
		img := recField(t, p, vm.Ref, "suspend_VDI").(string)
		r, err := p.Record(img)
		if err != nil {
			t.Fatal(err)
		}
		if recField(t, p, vm.Ref, "power_state") != "Suspended" || r["type"] != "suspend" || r["virtual_size"] != strconv.Itoa(mem) || r["SR"] != p.SharedSR() {
			t.Fatalf("suspend image %v", r)
		}
		head := make([]byte, 64)
		if err := p.ReadVDIAt(img, head, 0); err != nil || !strings.Contains(string(head), "vm="+vm.UUID) {
			t.Fatalf("suspend image holds %q (%v)", head, err)
		}
		return img
	}
	img := suspend()
	mustCall(t, p, "VM.resume_on", s, vm.Ref, hosts[1].Ref(), false, false)
	if recField(t, p, vm.Ref, "resident_on") != hosts[1].Ref() || recField(t, p, vm.Ref, "suspend_VDI") != nullRef {
		t.Fatal("resume_on did not run the VM on host2 or kept the image")
	}
	if _, err := p.Record(img); err == nil {
		t.Fatal("the suspend image outlived the resume")
	}

	img = suspend()
	copied := mustCall(t, p, "VDI.copy", s, img, hosts[1].SR()).(string)
	other := mustCall(t, p, "VDI.create", s, map[string]any{"name_label": "x", "name_description": "", "SR": p.SharedSR(),
		"virtual_size": strconv.Itoa(mem), "type": "suspend", "sharable": false, "read_only": false, "other_config": map[string]any{}}).(string)
	_, err = p.Call(ctx, "VM.set_suspend_VDI", s, vm.Ref, other)
	var f *Failure
	if !asFailure(err, &f) || f.Code != ErrSuspendVDIReplacement || len(f.Params) != 2 {
		t.Fatalf("replacement by other content: %v", err)
	}
	mustCall(t, p, "VM.set_suspend_VDI", s, vm.Ref, copied)
	// The image is now on host2's local SR: the VM resumes there only.
	_, err = p.Call(ctx, "VM.resume_on", s, vm.Ref, hosts[0].Ref(), false, false)
	wantFailure(t, err, ErrVMRequiresSR, vm.Ref, hosts[1].SR())
	mustCall(t, p, "VM.resume", s, vm.Ref, false, false)
	if recField(t, p, vm.Ref, "resident_on") != hosts[1].Ref() {
		t.Fatal("resume did not go to the host that sees the image")
	}

	img = suspend()
	if err := p.WriteVDI(img, 0, make([]byte, 512)); err != nil {
		t.Fatal(err)
	}
	_, err = p.Call(ctx, "VM.resume", s, vm.Ref, false, false)
	if !asFailure(err, &f) || f.Code != ErrInternalError {
		t.Fatalf("resume from a wiped image: %v", err)
	}
	mustCall(t, p, "VM.hard_shutdown", s, vm.Ref)
	if _, err := p.Record(img); err == nil || recField(t, p, vm.Ref, "suspend_VDI") != nullRef {
		t.Fatal("hard_shutdown of a suspended VM kept its image")
	}
}

func asFailure(err error, f **Failure) bool {
	x, ok := err.(*Failure)
	*f = x
	return ok
}
