package xenserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/statemachine"
	"github.com/xenflow/xenflow/xenapi"
	"github.com/xenflow/xenflow/xenapi/xenapitest"
)

const spawnedUUID = "c0ffee00-0000-4000-8000-00000000c0de"

// spawnedRoot returns the content of the root disk of the instance's VM
// on a compute host, with its virtual size.
func spawnedRoot(t *testing.T, e *testEnv, host string, inst *compute.Instance, n int) ([]byte, int64) {
	t.Helper()
	ctx := context.Background()
	tg, err := e.d.pool(ctx, host)
	if err != nil {
		t.Fatal(err)
	}
	vm, err := e.d.instanceVM(ctx, tg, inst)
	if err != nil {
		t.Fatal(err)
	}
	var ephemeral []int
	if inst.Flavor != nil {
		ephemeral = ephemeralSizes(inst.Flavor.EphemeralGB)
	}
	disks, err := vmDisks(ctx, tg.Client, vm)
	if err != nil || len(disks) != 1+len(ephemeral) || disks[0].VBDRec.Userdevice != "0" {
		t.Fatalf("spawned VM disks %+v, %v", disks, err)
	}
	for i, gb := range ephemeral {
		d := disks[1+i]
		if want := fmt.Sprint(deviceEphemeral + i); d.VBDRec.Userdevice != want || d.VDIRec.VirtualSize != int64(gb)<<30 {
			t.Fatalf("ephemeral disk %d at userdevice %s of %d bytes, want %s of %d GiB", i, d.VBDRec.Userdevice,
				d.VDIRec.VirtualSize, want, gb)
		}
	}
	buf := make([]byte, n)
	if err := e.poolOf[host].ReadVDIAt(string(disks[0].VDI), buf, 0); err != nil {
		t.Fatal(err)
	}
	return buf, disks[0].VDIRec.VirtualSize
}

func TestSnapshotSpawn(t *testing.T) {
	for _, l := range layouts {
		for _, storeKind := range []string{"pools", "dir"} {
			t.Run(string(l)+"/"+storeKind, func(t *testing.T) {
				ctx := context.Background()
				e := newEnv(t, l, envOptions{})
				g := e.addGuest("compute1", guestSpec{running: true, disks: []int64{8 << 20}})
				dir := DirImageStore{Dir: t.TempDir()}
				snapshot := func(req compute.SnapshotRequest) error {
					if storeKind == "dir" {
						return e.d.SnapshotTo(ctx, req, dir)
					}
					return e.d.Snapshot(ctx, req)
				}
				spawn := func(req compute.SpawnRequest) error {
					if storeKind == "dir" {
						return e.d.SpawnFrom(ctx, req, dir)
					}
					return e.d.Spawn(ctx, req)
				}
				const image = "snap-of-web1"
				for i := 0; i < 2; i++ { // the second call finds the image stored
					if err := snapshot(compute.SnapshotRequest{Instance: g.inst, Host: "compute1", ImageID: image}); err != nil {
						t.Fatalf("Snapshot #%d: %v", i+1, err)
					}
				}
				checkSourceIntact(t, e, g, true)
				flavor := &compute.Flavor{ID: "f", MemoryMB: 512, VCPUs: 2, RootGB: 1, EphemeralGB: 2}
				inst := &compute.Instance{UUID: spawnedUUID, Name: "instance-spawned", Hostname: "web2", Host: "compute2", Flavor: flavor}
				for i := 0; i < 2; i++ {
					if err := spawn(compute.SpawnRequest{Instance: inst, Host: "compute2", ImageRef: image, Flavor: flavor, PowerOn: true}); err != nil {
						t.Fatalf("Spawn #%d: %v", i+1, err)
					}
				}
				got, size := spawnedRoot(t, e, "compute2", inst, len(g.disks[0]))
				if !bytes.Equal(got, g.disks[0]) {
					t.Fatal("the spawned root disk differs from the snapshotted one")
				}
				if size != 1<<30 {
					t.Fatalf("root disk has %d bytes, flavor says 1 GiB", size)
				}
				info, err := e.d.GetInfo(ctx, compute.InstanceRequest{Instance: inst, Host: "compute2"})
				if err != nil || info.PowerState != statemachine.PowerRunning || info.MemoryMB != 512 || info.VCPUs != 2 {
					t.Fatalf("spawned guest %+v, %v", info, err)
				}
				checkNoImageSnapshots(t, e, "compute1")
			})
		}
	}
}

func checkNoImageSnapshots(t *testing.T, e *testEnv, host string) {
	t.Helper()
	tg, err := e.d.pool(context.Background(), host)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := tg.Client.VDI.GetAllRecords(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range recs {
		if r := rec.OtherConfig[KeyRole]; r == RoleImageSnapshot || r == RoleSpawnRoot || r == RoleSpawnEphemeral {
			t.Fatalf("VDI %s left with role %s", rec.UUID, rec.OtherConfig[KeyRole])
		}
	}
}

// TestSpawnRetries: Spawn failing at each of its calls once, then called
// again, ends with one VM whose root holds the image.
func TestSpawnRetries(t *testing.T) {
	if testing.Short() {
		t.Skip("one run per call")
	}
	ctx := context.Background()
	setup := func(t *testing.T) (*testEnv, *guest, DirImageStore) {
		e := newEnv(t, standalone, envOptions{srSize: 4 << 40})
		g := e.addGuest("compute1", guestSpec{running: true, disks: []int64{8 << 20}})
		dir := DirImageStore{Dir: t.TempDir()}
		if err := e.d.SnapshotTo(ctx, compute.SnapshotRequest{Instance: g.inst, Host: "compute1", ImageID: "img"}, dir); err != nil {
			t.Fatal(err)
		}
		return e, g, dir
	}
	// Two ephemeral disks: ephemeral_gb 2048 is split in two of 1 TiB
	// (sparse, nothing is written to them).
	flavor := &compute.Flavor{MemoryMB: 256, VCPUs: 1, EphemeralGB: 2048}
	req := compute.SpawnRequest{Instance: &compute.Instance{UUID: spawnedUUID, Name: "spawned", Flavor: flavor}, Host: "compute2",
		ImageRef: "img", Flavor: flavor, PowerOn: true}
	e, _, dir := setup(t)
	p := e.poolOf["compute2"]
	before := len(p.Calls())
	if err := e.d.SpawnFrom(ctx, req, dir); err != nil {
		t.Fatal(err)
	}
	for _, c := range p.Calls()[before:] {
		if strings.HasPrefix(c.Method, "task.") || strings.HasPrefix(c.Method, "event.") {
			continue
		}
		t.Run(fmt.Sprintf("%s#%d", c.Method, c.N), func(t *testing.T) {
			t.Parallel()
			e, g, dir := setup(t)
			p := e.poolOf["compute2"]
			p.FailNth(c.Method, c.N, xenapi.CodeInternalError, "injected")
			_ = e.d.SpawnFrom(ctx, req, dir)
			p.ClearFaults()
			if err := e.d.SpawnFrom(ctx, req, dir); err != nil {
				t.Fatalf("called again: %v", err)
			}
			got, _ := spawnedRoot(t, e, "compute2", req.Instance, len(g.disks[0]))
			if !bytes.Equal(got, g.disks[0]) {
				t.Fatal("the spawned root disk differs from the image")
			}
			if vms := e.vms("compute2"); len(vms) != 1 {
				t.Fatalf("VMs %v", vmNames(vms))
			}
			checkNoImageSnapshots(t, e, "compute2")
		})
	}
}

func TestDirImageStore(t *testing.T) {
	ctx := context.Background()
	s := DirImageStore{Dir: t.TempDir()}
	for _, id := range []string{"", "../x", "a/b", ".hidden", "sp ace"} {
		if err := s.Put(ctx, id, strings.NewReader("x"), 1); !errors.As(err, new(*BadImageIDError)) {
			t.Errorf("Put(%q): %v", id, err)
		}
	}
	if err := s.Put(ctx, "short", strings.NewReader("abc"), 10); err == nil {
		t.Fatal("a short stream was stored")
	}
	if ok, _ := s.Has(ctx, "short"); ok {
		t.Fatal("a failed Put left an image")
	}
	if entries, _ := os.ReadDir(s.Dir); len(entries) != 0 {
		t.Fatalf("a failed Put left %v", entries)
	}
	if err := s.Put(ctx, "ok-1.0", strings.NewReader("hello"), 5); err != nil {
		t.Fatal(err)
	}
	r, n, err := s.Open(ctx, "ok-1.0")
	if err != nil || n != 5 {
		t.Fatalf("Open: %d, %v", n, err)
	}
	b, _ := io.ReadAll(r)
	r.Close()
	if string(b) != "hello" {
		t.Fatalf("read %q", b)
	}
	if _, _, err := s.Open(ctx, "missing"); !errors.Is(err, compute.ErrNotFound) {
		t.Fatalf("Open(missing): %v", err)
	}
	if _, err := os.Stat(filepath.Join(s.Dir, "ok-1.0.vhd")); err != nil {
		t.Fatal(err)
	}
}

func TestSpawnMissingImage(t *testing.T) {
	e := newEnv(t, standalone, envOptions{})
	err := e.d.Spawn(context.Background(), compute.SpawnRequest{Instance: &compute.Instance{UUID: spawnedUUID},
		Host: "compute2", ImageRef: "nothing", Flavor: &compute.Flavor{MemoryMB: 256, VCPUs: 1}})
	var nf *ImageNotFoundError
	if !errors.As(err, &nf) || nf.ImageRef != "nothing" {
		t.Fatalf("got %v", err)
	}
	if vms := e.vms("compute2"); len(vms) != 0 {
		t.Fatalf("VMs %v", vmNames(vms))
	}
}

func vmNames(vms map[string]vmEntry) []string {
	return sortedKeys(vms)
}

// SnapshotTo stores an instance's root disk in an image store; SpawnFrom
// makes a new instance from it (in another pool, for a cross-cell
// resize).
func ExampleDriver_SnapshotTo() {
	d, p, stop := exampleDriver()
	defer stop()
	ctx := context.Background()
	const uuid = "0a0a0a0a-0000-4000-8000-000000000005"
	if _, err := p.AddVM(xenapitest.VMSpec{Name: "instance-0a0a0a0a", Disks: []int64{4 << 20}, Running: true,
		OtherConfig: map[string]string{KeyNovaUUID: uuid}}); err != nil {
		log.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "images")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	store := DirImageStore{Dir: dir}
	inst := &compute.Instance{UUID: uuid, Name: "instance-0a0a0a0a"}
	if err := d.SnapshotTo(ctx, compute.SnapshotRequest{Instance: inst, Host: "compute1", ImageID: "snap-1"}, store); err != nil {
		log.Fatal(err)
	}
	fmt.Println(store.Has(ctx, "snap-1"))
	copyOf := &compute.Instance{UUID: "0a0a0a0a-0000-4000-8000-000000000006", Name: "instance-copy"}
	err = d.SpawnFrom(ctx, compute.SpawnRequest{Instance: copyOf, Host: "compute1", ImageRef: "snap-1",
		Flavor: &compute.Flavor{MemoryMB: 256, VCPUs: 1, RootGB: 1}, PowerOn: true}, store)
	if err != nil {
		log.Fatal(err)
	}
	info, err := d.GetInfo(ctx, compute.InstanceRequest{Instance: copyOf, Host: "compute1"})
	fmt.Println(info.PowerState == statemachine.PowerRunning, info.MemoryMB, err)
	// Output:
	// true <nil>
	// true 256 <nil>
}
