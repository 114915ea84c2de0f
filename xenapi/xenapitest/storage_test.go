package xenapitest

import (
	"bytes"
	"context"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/xenflow/xenflow/vhd"
)

func srFS(h *Host) vhd.FS { return vhd.DirFS(h.SRPath()) }

func TestDirectoryLayout(t *testing.T) {
	dir := t.TempDir()
	p := newTestPool(t, Options{Dir: dir, Hosts: 3, HostNames: []string{"alpha", "", "gamma"}})
	names := []string{"alpha", "host2", "gamma"}
	for i, h := range p.Hosts() {
		if h.Name() != names[i] || h.Root() != filepath.Join(dir, names[i]) {
			t.Fatalf("host %d: %s at %s", i, h.Name(), h.Root())
		}
		if want := filepath.Join(h.Root(), "var", "run", "sr-mount", h.SRUUID()); h.SRPath() != want {
			t.Fatalf("SRPath %s, want %s", h.SRPath(), want)
		}
		if h.SRPathInDom0() != "/var/run/sr-mount/"+h.SRUUID() {
			t.Fatalf("SRPathInDom0 %s", h.SRPathInDom0())
		}
		if fi, err := os.Stat(h.SRPath()); err != nil || !fi.IsDir() {
			t.Fatalf("SR directory: %v", err)
		}
		if h.IsMaster() != (i == 0) {
			t.Fatalf("IsMaster %d", i)
		}
	}
	vm, err := p.AddVM(VMSpec{Name: "x", Host: "gamma", Disks: []int64{3 << 20}})
	if err != nil {
		t.Fatal(err)
	}
	uuid := recField(t, p, vm.VDIs[0], "uuid").(string)
	path := filepath.Join(p.Hosts()[2].SRPath(), uuid+".vhd")
	if got, _ := p.VDIPath(vm.VDIs[0]); got != path {
		t.Fatalf("VDIPath %s, want %s", got, path)
	}
	info, err := vhd.Query(srFS(p.Hosts()[2]), uuid+".vhd")
	if err != nil {
		t.Fatal(err)
	}
	// SM rounds 3 MiB up to 4 MiB.
	if info.VirtualSize != 4<<20 || recField(t, p, vm.VDIs[0], "virtual_size") != "4194304" {
		t.Fatalf("virtual size %d / %v", info.VirtualSize, recField(t, p, vm.VDIs[0], "virtual_size"))
	}
}

func TestSnapshotChain(t *testing.T) {
	p := newTestPool(t, Options{})
	s := login(t, p)
	ctx := context.Background()
	vm, err := p.AddVM(VMSpec{Name: "guest", Disks: []int64{8 << 20}, Running: true})
	if err != nil {
		t.Fatal(err)
	}
	root := vm.VDIs[0]
	before := bytes.Repeat([]byte("before-snapshot!"), 512) // 8 KiB
	after := bytes.Repeat([]byte("after--snapshot!"), 256)  // 4 KiB
	if err := p.WriteGuestDisk(vm.Ref, "0", 1<<20, before); err != nil {
		t.Fatal(err)
	}
	rootUUID := recField(t, p, root, "uuid").(string)
	snap := mustCall(t, p, "VDI.snapshot", s, root).(string)
	if err := p.WriteGuestDisk(vm.Ref, "0", 1<<20, after); err != nil {
		t.Fatal(err)
	}
	fsys := srFS(p.Master())

	// The VDI kept its uuid on a new leaf whose parent is the old file.
	leafInfo, err := vhd.Query(fsys, rootUUID+".vhd")
	if err != nil {
		t.Fatal(err)
	}
	if leafInfo.Type != vhd.DiskDifferencing || leafInfo.Hidden || leafInfo.Depth != 2 {
		t.Fatalf("leaf %+v", leafInfo)
	}
	baseUUID := recField(t, p, root, "sm_config").(map[string]any)["vhd-parent"].(string)
	if leafInfo.Parent != baseUUID+".vhd" {
		t.Fatalf("leaf parent %q, sm_config vhd-parent %q", leafInfo.Parent, baseUUID)
	}
	baseInfo, err := vhd.Query(fsys, baseUUID+".vhd")
	if err != nil {
		t.Fatal(err)
	}
	if !baseInfo.Hidden || baseInfo.Parent != "" {
		t.Fatalf("base %+v", baseInfo)
	}
	baseRef := mustCall(t, p, "VDI.get_by_uuid", s, baseUUID).(string)
	baseRec := mustCall(t, p, "VDI.get_record", s, baseRef).(map[string]any)
	if baseRec["managed"] != false || baseRec["read_only"] != true || baseRec["name_label"] != "base copy" {
		t.Fatalf("base copy record %v", baseRec)
	}
	if sm := baseRec["sm_config"].(map[string]any); sm["vhd-parent"] != nil {
		t.Fatalf("base copy sm_config %v", sm)
	}
	snapRec := mustCall(t, p, "VDI.get_record", s, snap).(map[string]any)
	if snapRec["is_a_snapshot"] != true || snapRec["snapshot_of"] != root || snapRec["sm_config"].(map[string]any)["vhd-parent"] != baseUUID {
		t.Fatalf("snapshot record %v", snapRec)
	}

	// The chains read back what the guest wrote, through package vhd.
	read := func(name string, n int) []byte {
		c, err := vhd.OpenChain(fsys, name)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		b := make([]byte, n)
		if _, err := c.ReadAt(b, 1<<20); err != nil {
			t.Fatal(err)
		}
		return b
	}
	want := append(append([]byte{}, after...), before[len(after):]...)
	if got := read(rootUUID+".vhd", len(before)); !bytes.Equal(got, want) {
		t.Fatal("the VM's chain does not read the guest's writes")
	}
	if got := read(snapRec["uuid"].(string)+".vhd", len(before)); !bytes.Equal(got, before) {
		t.Fatal("the snapshot does not read the data at snapshot time")
	}
	if got := read(baseUUID+".vhd", len(before)); !bytes.Equal(got, before) {
		t.Fatal("the base copy does not hold the data")
	}
	if err := vhd.Check(fsys, rootUUID+".vhd"); err != nil {
		t.Fatalf("vhd.Check leaf: %v", err)
	}

	// Second snapshot: the chain grows to depth 3.
	mustCall(t, p, "VDI.snapshot", s, root)
	if info, _ := vhd.Query(fsys, rootUUID+".vhd"); info.Depth != 3 {
		t.Fatalf("depth after two snapshots %d", info.Depth)
	}
	all, err := p.ReadVDI(root)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(all[1<<20:1<<20+len(want)], want) {
		t.Fatal("ReadVDI after the second snapshot")
	}
	_, err = p.Call(ctx, "VDI.snapshot", s, baseRef)
	wantFailure(t, err, ErrVDINotManaged, baseRef)
}

func TestVDILifecycle(t *testing.T) {
	p := newTestPool(t, Options{Hosts: 2, SRSize: 64 << 20})
	s := login(t, p)
	ctx := context.Background()
	sr := p.Master().SR()
	create := func(size int64) (string, error) {
		v, err := p.Call(ctx, "VDI.create", s, map[string]any{
			"name_label": "d", "name_description": "", "SR": sr, "virtual_size": fmt.Sprint(size),
			"type": "User", "sharable": false, "read_only": false, "other_config": map[string]any{},
			"sm_config": map[string]any{}, "xenstore_data": map[string]any{}, "tags": []any{},
		})
		if err != nil {
			return "", err
		}
		return v.(string), nil
	}
	vdi, err := create(4 << 20)
	if err != nil {
		t.Fatal(err)
	}
	if got := recField(t, p, vdi, "type"); got != "user" {
		t.Fatalf("type %v", got)
	}
	t.Run("missing field", func(t *testing.T) {
		_, err := p.Call(ctx, "VDI.create", s, map[string]any{"name_label": "d", "name_description": "", "SR": sr})
		wantFailure(t, err, ErrInternalError, `Server_helpers.Dispatcher_FieldNotFound("virtual_size")`)
	})
	t.Run("SR_FULL", func(t *testing.T) {
		_, err := create(128 << 20)
		wantFailure(t, err, ErrSRFull, fmt.Sprint(128<<20), fmt.Sprint(64<<20))
	})
	t.Run("resize up", func(t *testing.T) {
		data := []byte("keep me")
		if err := p.WriteVDI(vdi, 100, data); err != nil {
			t.Fatal(err)
		}
		mustCall(t, p, "VDI.resize", s, vdi, fmt.Sprint(10<<20))
		if got := mustCall(t, p, "VDI.get_virtual_size", s, vdi); got != fmt.Sprint(10<<20) {
			t.Fatalf("virtual_size %v", got)
		}
		uuid := recField(t, p, vdi, "uuid").(string)
		info, err := vhd.Query(srFS(p.Master()), uuid+".vhd")
		if err != nil || info.VirtualSize != 10<<20 {
			t.Fatalf("file size %d: %v", info.VirtualSize, err)
		}
		buf := make([]byte, len(data))
		if err := p.ReadVDIAt(vdi, buf, 100); err != nil || string(buf) != string(data) {
			t.Fatalf("data after resize %q %v", buf, err)
		}
	})
	t.Run("shrink fails", func(t *testing.T) {
		_, err := p.Call(ctx, "VDI.resize", s, vdi, fmt.Sprint(2<<20))
		wantFailure(t, err, "SR_BACKEND_FAILURE_79", "", "VDI Invalid size [opterr=shrinking not allowed]", "")
	})
	t.Run("resize_online removed", func(t *testing.T) {
		_, err := p.Call(ctx, "VDI.resize_online", s, vdi, fmt.Sprint(12<<20))
		wantFailure(t, err, ErrMessageRemoved)
	})
	t.Run("resize attached", func(t *testing.T) {
		vm := vmIn(t, p, s, "Running")
		_, err := p.Call(ctx, "VDI.resize", s, vm.VDIs[0], fmt.Sprint(8<<20))
		wantFailure(t, err, ErrVDIInUse, vm.VDIs[0], "resize")
		_, err = p.Call(ctx, "VDI.destroy", s, vm.VDIs[0])
		wantFailure(t, err, ErrVDIInUse, vm.VDIs[0], "destroy")
	})
	t.Run("copy to another host", func(t *testing.T) {
		h2 := p.Hosts()[1]
		cp := mustCall(t, p, "VDI.copy", s, vdi, h2.SR()).(string)
		if got := recField(t, p, cp, "SR"); got != h2.SR() {
			t.Fatalf("copy SR %v", got)
		}
		a, _ := p.ReadVDI(vdi)
		b, _ := p.ReadVDI(cp)
		if !bytes.Equal(a, b) {
			t.Fatal("copy differs")
		}
		uuid := recField(t, p, cp, "uuid").(string)
		if _, err := os.Stat(filepath.Join(h2.SRPath(), uuid+".vhd")); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("destroy removes the file", func(t *testing.T) {
		path, _ := p.VDIPath(vdi)
		mustCall(t, p, "VDI.destroy", s, vdi)
		if _, err := os.Stat(path); !os.IsNotExist(err) {
			t.Fatalf("file still there: %v", err)
		}
		_, err := p.Call(ctx, "VDI.get_record", s, vdi)
		wantFailure(t, err, ErrHandleInvalid, "VDI", vdi)
	})
	t.Run("destroy of a parent keeps the data", func(t *testing.T) {
		v, err := create(4 << 20)
		if err != nil {
			t.Fatal(err)
		}
		snap := mustCall(t, p, "VDI.snapshot", s, v).(string)
		mustCall(t, p, "VDI.destroy", s, snap)
		mustCall(t, p, "VDI.destroy", s, v)
		// the base copy is left for a garbage collector, as SM leaves it
		left := 0
		for _, ref := range mustCall(t, p, "SR.get_VDIs", s, sr).([]any) {
			if recField(t, p, ref.(string), "managed") == false {
				left++
			}
		}
		if left == 0 {
			t.Fatal("no base copy left")
		}
		removed, err := p.CollectGarbage()
		if err != nil || removed != left {
			t.Fatalf("CollectGarbage removed %d of %d: %v", removed, left, err)
		}
		for _, ref := range mustCall(t, p, "SR.get_VDIs", s, sr).([]any) {
			if recField(t, p, ref.(string), "managed") == false {
				t.Fatalf("base copy %s left after garbage collection", ref)
			}
		}
	})
	t.Run("garbage collection keeps what is used", func(t *testing.T) {
		vm := vmIn(t, p, s, "Running")
		snap := mustCall(t, p, "VDI.snapshot", s, vm.VDIs[0]).(string)
		mustCall(t, p, "VDI.snapshot", s, vm.VDIs[0])
		mustCall(t, p, "VDI.destroy", s, snap)
		if n, err := p.CollectGarbage(); err != nil || n != 0 {
			t.Fatalf("removed %d: %v", n, err)
		}
		if _, err := p.ReadVDI(vm.VDIs[0]); err != nil {
			t.Fatal(err)
		}
	})
}

func TestSnapshotChainTooLong(t *testing.T) {
	p := newTestPool(t, Options{})
	s := login(t, p)
	vm := vmIn(t, p, s, "Halted")
	for i := 1; i < maxChainDepth; i++ {
		mustCall(t, p, "VDI.snapshot", s, vm.VDIs[0])
	}
	uuid := recField(t, p, vm.VDIs[0], "uuid").(string)
	if info, err := vhd.Query(srFS(p.Master()), uuid+".vhd"); err != nil || info.Depth != maxChainDepth {
		t.Fatalf("depth %d: %v", info.Depth, err)
	}
	_, err := p.Call(context.Background(), "VDI.snapshot", s, vm.VDIs[0])
	wantFailure(t, err, "SR_BACKEND_FAILURE_109", "", "The snapshot chain is too long", "")
	// The disk still works.
	mustCall(t, p, "VM.start", s, vm.Ref, false, false)
}

func TestResizeOnlineOption(t *testing.T) {
	p := newTestPool(t, Options{ResizeOnline: true})
	s := login(t, p)
	vm := vmIn(t, p, s, "Running")
	mustCall(t, p, "VDI.resize_online", s, vm.VDIs[0], fmt.Sprint(16<<20))
	if got := recField(t, p, vm.VDIs[0], "virtual_size"); got != fmt.Sprint(16<<20) {
		t.Fatalf("virtual_size %v", got)
	}
}

func TestSRScan(t *testing.T) {
	p := newTestPool(t, Options{})
	s := login(t, p)
	h := p.Master()
	fsys := srFS(h)
	vm := vmIn(t, p, s, "Halted")
	gone := vm.VDIs[0]
	goneUUID := recField(t, p, gone, "uuid").(string)

	// A chain moved into the SR by other means: a hidden base and a leaf.
	base, leaf := "11111111-2222-4333-8444-555555555555", "66666666-7777-4888-8999-aaaaaaaaaaaa"
	d, err := vhd.Create(fsys, base+".vhd", 6<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.WriteAt([]byte("imported"), 0); err != nil {
		t.Fatal(err)
	}
	if err := d.SetHidden(true); err != nil {
		t.Fatal(err)
	}
	d.Close()
	d, err = vhd.Snapshot(fsys, leaf+".vhd", base+".vhd", nil)
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	// Files that are not VDIs are left alone.
	if err := os.WriteFile(filepath.Join(h.SRPath(), "notes.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(h.SRPath(), "0.vhd"), []byte("staging"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(h.SRPath(), goneUUID+".vhd")); err != nil {
		t.Fatal(err)
	}

	mustCall(t, p, "SR.scan", s, h.SR())

	_, err = p.Call(context.Background(), "VDI.get_record", s, gone)
	wantFailure(t, err, ErrHandleInvalid, "VDI", gone)
	if vbds := recField(t, p, vm.Ref, "VBDs").([]any); len(vbds) != 0 {
		t.Fatalf("VBDs of a forgotten VDI left: %v", vbds)
	}
	leafRef := mustCall(t, p, "VDI.get_by_uuid", s, leaf).(string)
	rec := mustCall(t, p, "VDI.get_record", s, leafRef).(map[string]any)
	if rec["managed"] != true || rec["virtual_size"] != fmt.Sprint(6<<20) || rec["sm_config"].(map[string]any)["vhd-parent"] != base || rec["SR"] != h.SR() {
		t.Fatalf("scanned leaf %v", rec)
	}
	baseRef := mustCall(t, p, "VDI.get_by_uuid", s, base).(string)
	if recField(t, p, baseRef, "managed") != false {
		t.Fatal("hidden base introduced as managed")
	}
	got := make([]byte, 8)
	if err := p.ReadVDIAt(leafRef, got, 0); err != nil || string(got) != "imported" {
		t.Fatalf("read scanned leaf %q %v", got, err)
	}
	// A second scan changes nothing.
	n := len(mustCall(t, p, "SR.get_VDIs", s, h.SR()).([]any))
	mustCall(t, p, "SR.scan", s, h.SR())
	if m := len(mustCall(t, p, "SR.get_VDIs", s, h.SR()).([]any)); m != n {
		t.Fatalf("rescan: %d VDIs, then %d", n, m)
	}
	// The imported disk can be grown and booted.
	mustCall(t, p, "VDI.resize", s, leafRef, fmt.Sprint(20<<20))
	if info, _ := vhd.Query(fsys, leaf+".vhd"); info.VirtualSize != 20<<20 {
		t.Fatalf("resized leaf %d", info.VirtualSize)
	}
}

// TestDeterministic: with the same Rand and Clock, two pools make the same
// refs, uuids and VHD files. A differencing header records its parent
// file's modification time, which comes from the file system, so that
// field and the header checksum are left out of the comparison.
func TestDeterministic(t *testing.T) {
	build := func() (*Pool, VMInfo) {
		clock := func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }
		p := newTestPool(t, Options{Rand: rand.New(rand.NewSource(7)), Clock: clock})
		vm, err := p.AddVM(VMSpec{Name: "d", Disks: []int64{4 << 20}, Running: true})
		if err != nil {
			t.Fatal(err)
		}
		if err := p.WriteGuestDisk(vm.Ref, "0", 0, []byte("x")); err != nil {
			t.Fatal(err)
		}
		if _, err := p.internal("VDI.snapshot", vm.VDIs[0]); err != nil {
			t.Fatal(err)
		}
		return p, vm
	}
	p1, vm1 := build()
	p2, vm2 := build()
	if vm1.Ref != vm2.Ref || vm1.VDIs[0] != vm2.VDIs[0] {
		t.Fatalf("refs differ: %v %v", vm1, vm2)
	}
	files := func(p *Pool) map[string][]byte {
		out := map[string][]byte{}
		ents, err := os.ReadDir(p.Master().SRPath())
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			b, err := os.ReadFile(filepath.Join(p.Master().SRPath(), e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			if len(b) > 1024 {
				copy(b[512+36:512+40], make([]byte, 4)) // header checksum
				copy(b[512+56:512+60], make([]byte, 4)) // parent time stamp
			}
			out[e.Name()] = b
		}
		return out
	}
	f1, f2 := files(p1), files(p2)
	if len(f1) != 3 || len(f1) != len(f2) {
		t.Fatalf("%d and %d files", len(f1), len(f2))
	}
	for name, b := range f1 {
		if !bytes.Equal(b, f2[name]) {
			t.Fatalf("%s differs", name)
		}
	}
}
