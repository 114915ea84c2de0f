package xenapitest_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path"
	"testing"

	"github.com/xenflow/xenflow/vhd"
	"github.com/xenflow/xenflow/xenapi"
	"github.com/xenflow/xenflow/xenapi/xenapitest"
)

// copyFile copies name from one dom0 tree to another, as rsync would.
func copyFile(t *testing.T, from, to vhd.FS, name, dst string) {
	t.Helper()
	src, err := from.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	fi, err := src.Stat()
	if err != nil {
		t.Fatal(err)
	}
	out, err := to.OpenFile(dst, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.NewOffsetWriter(out, 0), io.NewSectionReader(src, 0, fi.Size())); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestResizeUpAcrossHosts walks the XenServer side of Nova's resize up on
// the pool, with the host directories standing for dom0 filesystems: the
// running VM's disk is snapshotted, its immutable ancestor sent while it
// runs, the VM shut down, its leaf sent, the chain imported into the
// destination SR, scanned, attached to a new VM, grown and booted; the
// data the guest wrote before and after the snapshot arrives intact.
func TestResizeUpAcrossHosts(t *testing.T) {
	p, c := servedPool(t, 2)
	ctx := context.Background()
	src, dst := p.Hosts()[0], p.Hosts()[1]
	srcFS, dstFS := vhd.DirFS(src.Root()), vhd.DirFS(dst.Root())
	vm, err := p.AddVM(xenapitest.VMSpec{Name: "instance-1", Host: src.Name(), Disks: []int64{32 << 20}, Running: true})
	if err != nil {
		t.Fatal(err)
	}
	early := bytes.Repeat([]byte("E"), 64<<10)
	late := bytes.Repeat([]byte("L"), 4<<10)
	if err := p.WriteGuestDisk(vm.Ref, "0", 0, early); err != nil {
		t.Fatal(err)
	}
	root := xenapi.VDIRef(vm.VDIs[0])
	rootUUID, err := c.VDI.GetUUID(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.VM.SetNameLabel(ctx, xenapi.VMRef(vm.Ref), "instance-1-orig"); err != nil {
		t.Fatal(err)
	}
	snap, err := c.VDI.Snapshot(ctx, root, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.WriteGuestDisk(vm.Ref, "0", 32<<10, late); err != nil {
		t.Fatal(err)
	}
	sm, err := c.VDI.GetSMConfig(ctx, snap)
	if err != nil {
		t.Fatal(err)
	}
	parent, err := vhd.ParseUUID(sm["vhd-parent"])
	if err != nil {
		t.Fatalf("snapshot sm_config %v: %v", sm, err)
	}

	staging := "/images/instance" + vm.UUID
	srcStage := "/var/run/sr-mount/" + src.SRUUID() + "/stage-" + vm.UUID
	ancestors, err := vhd.Stage(ctx, srcFS, src.SRPathInDom0(), parent, srcStage, &vhd.StageOptions{FirstSeq: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := dstFS.MkdirAll(staging, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range ancestors {
		copyFile(t, srcFS, dstFS, f.Name, path.Join(staging, path.Base(f.Name)))
	}
	if err := c.VM.CleanShutdown(ctx, xenapi.VMRef(vm.Ref)); err != nil {
		t.Fatal(err)
	}
	leafUUID, _ := vhd.ParseUUID(rootUUID)
	leaf, err := vhd.Stage(ctx, srcFS, src.SRPathInDom0(), leafUUID, srcStage+"-leaf", &vhd.StageOptions{Depth: 1})
	if err != nil {
		t.Fatal(err)
	}
	copyFile(t, srcFS, dstFS, leaf[0].Name, path.Join(staging, "0.vhd"))

	res, err := vhd.Import(ctx, dstFS, staging, dst.SRPathInDom0(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SR.Scan(ctx, xenapi.SRRef(dst.SR())); err != nil {
		t.Fatal(err)
	}
	newRoot, err := c.VDI.GetByUUID(ctx, res.Leaf.String())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.VDI.SetNameLabel(ctx, newRoot, "instance-1 root"); err != nil {
		t.Fatal(err)
	}
	newVM, err := c.VM.Create(ctx, xenapi.VMRecord{
		NameLabel: "instance-1", UserVersion: 1, MemoryStaticMax: 2 << 30, MemoryDynamicMax: 2 << 30,
		MemoryDynamicMin: 2 << 30, MemoryTarget: 2 << 30, VCPUsMax: 2, VCPUsAtStartup: 2,
		ActionsAfterShutdown: "destroy", ActionsAfterReboot: "restart", ActionsAfterCrash: "destroy",
		PVBootloader: "pygrub", Affinity: xenapi.HostRef(xenapi.NullRef),
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Call(ctx, "VBD.create", map[string]any{
		"VM": string(newVM), "VDI": string(newRoot), "userdevice": "0", "bootable": true, "mode": "RW",
		"type": "Disk", "empty": false, "other_config": map[string]any{}, "qos_algorithm_type": "",
		"qos_algorithm_params": map[string]any{},
	}); err != nil {
		t.Fatal(err)
	}
	if err := c.VDI.Resize(ctx, newRoot, 64<<20); err != nil {
		t.Fatal(err)
	}
	if err := c.VM.Start(ctx, newVM, false, false); err != nil {
		t.Fatal(err)
	}
	if on, _ := c.VM.GetResidentOn(ctx, newVM); string(on) != dst.Ref() {
		t.Fatalf("resident_on %s", on)
	}
	got, err := p.ReadVDI(string(newRoot))
	if err != nil {
		t.Fatal(err)
	}
	want := append(append(append([]byte{}, early[:32<<10]...), late...), early[36<<10:]...)
	if len(got) != 64<<20 || !bytes.Equal(got[:len(want)], want) {
		t.Fatal("the destination disk does not hold the guest's data")
	}
	if !bytes.Equal(got[len(want):], make([]byte, len(got)-len(want))) {
		t.Fatal("the grown part is not zeros")
	}
}

// TestRescueAndUnrescue walks Nova's rescue on the pool: shut the VM down,
// bootlock it, boot <name>-rescue with the original root disk as its second
// disk, then undo exactly that.
func TestRescueAndUnrescue(t *testing.T) {
	p, c := servedPool(t, 1)
	ctx := context.Background()
	orig, err := p.AddVM(xenapitest.VMSpec{Name: "instance-2", Disks: []int64{8 << 20}, Running: true})
	if err != nil {
		t.Fatal(err)
	}
	o := xenapi.VMRef(orig.Ref)
	if err := c.VM.HardShutdown(ctx, o); err != nil {
		t.Fatal(err)
	}
	if err := c.VM.SetBlockedOperations(ctx, o, map[xenapi.VMOperation]string{"start": ""}); err != nil {
		t.Fatal(err)
	}
	rescue, err := p.AddVM(xenapitest.VMSpec{Name: "instance-2-rescue", Disks: []int64{4 << 20}})
	if err != nil {
		t.Fatal(err)
	}
	vbd, err := c.Call(ctx, "VBD.create", map[string]any{
		"VM": rescue.Ref, "VDI": orig.VDIs[0], "userdevice": "1", "bootable": false, "mode": "RW",
		"type": "Disk", "empty": false, "other_config": map[string]any{}, "qos_algorithm_type": "",
		"qos_algorithm_params": map[string]any{},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.VM.Start(ctx, xenapi.VMRef(rescue.Ref), false, false); err != nil {
		t.Fatal(err)
	}
	// The user fixes the broken disk from the rescue VM.
	if err := p.WriteGuestDisk(rescue.Ref, "1", 0, []byte("fixed")); err != nil {
		t.Fatal(err)
	}
	// The original cannot start while locked.
	err = c.VM.Start(ctx, o, false, false)
	if f, ok := xenapi.AsFailure(err); !ok || f.Code != xenapi.CodeOperationBlocked {
		t.Fatalf("start of a bootlocked VM: %v", err)
	}

	// Unrescue.
	if err := c.VM.HardShutdown(ctx, xenapi.VMRef(rescue.Ref)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Call(ctx, "VBD.destroy", vbd); err != nil {
		t.Fatal(err)
	}
	if err := c.VDI.Destroy(ctx, xenapi.VDIRef(rescue.VDIs[0])); err != nil {
		t.Fatal(err)
	}
	if err := c.VM.Destroy(ctx, xenapi.VMRef(rescue.Ref)); err != nil {
		t.Fatal(err)
	}
	if err := c.VM.RemoveFromBlockedOperations(ctx, o, "start"); err != nil {
		t.Fatal(err)
	}
	if err := c.VM.Start(ctx, o, false, false); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 5)
	if err := p.ReadVDIAt(orig.VDIs[0], got, 0); err != nil || string(got) != "fixed" {
		t.Fatalf("root disk after rescue %q %v", got, err)
	}
	if _, err := c.VM.GetRecord(ctx, xenapi.VMRef(rescue.Ref)); !errors.Is(err, xenapi.ErrHandleInvalid) {
		t.Fatalf("rescue VM left: %v", err)
	}
}
