package xenapitest

import (
	"bytes"
	"testing"
)

func TestSmoke(t *testing.T) {
	p := newTestPool(t, Options{Hosts: 2})
	vm, err := p.AddVM(VMSpec{Name: "vm1", Disks: []int64{8 << 20}, Running: true})
	if err != nil {
		t.Fatal(err)
	}
	s := login(t, p)
	if got := mustCall(t, p, "VM.get_power_state", s, vm.Ref); got != "Running" {
		t.Fatalf("power_state %v", got)
	}
	data := bytes.Repeat([]byte("abcd"), 1024)
	if err := p.WriteGuestDisk(vm.Ref, "0", 4096, data); err != nil {
		t.Fatal(err)
	}
	snap := mustCall(t, p, "VDI.snapshot", s, vm.VDIs[0]).(string)
	got, err := p.ReadVDI(snap)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got[4096:4096+len(data)], data) {
		t.Fatal("snapshot lost the data")
	}
	t.Log(p.CallsSummary())
}
