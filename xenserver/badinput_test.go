package xenserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/statemachine"
	"github.com/xenflow/xenflow/xenapi"
	"github.com/xenflow/xenflow/xenapi/xenapitest"
)

// proxyExports puts an HTTP proxy on 127.0.0.1 in front of a pool's
// master: the driver reaches the pool through it, and its exports go
// through change.
func proxyExports(t *testing.T, e *testEnv, pool string, change func(w http.ResponseWriter, r *http.Request, next http.Handler)) {
	t.Helper()
	ep := e.cfg.Inventory.Pools[pool]
	target, err := url.Parse(ep.URL)
	if err != nil {
		t.Fatal(err)
	}
	next := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == xenapitest.ExportRawVDIPath {
			change(w, r, next)
			return
		}
		next.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	ep.URL = srv.URL
	e.cfg.Inventory.Pools[pool] = ep
	e.newDriver(t)
}

// truncated passes the first n bytes of the export on and drops the
// rest, so the export ends early but cleanly.
type truncated struct {
	http.ResponseWriter
	left int
}

func (w *truncated) Write(p []byte) (int, error) {
	n := len(p)
	if len(p) > w.left {
		p = p[:w.left]
	}
	w.left -= len(p)
	if _, err := w.ResponseWriter.Write(p); err != nil {
		return 0, err
	}
	return n, nil
}

// checkRolledBack checks the source guest is as it was: its name, its
// nova_uuid, running, its data intact; and nothing of the migration left.
func checkRolledBack(t *testing.T, e *testEnv, g *guest, mig *compute.Migration, err error) {
	t.Helper()
	var rb *compute.InstanceFaultRollback
	if !errors.As(err, &rb) {
		t.Fatalf("error %v is not an *InstanceFaultRollback", err)
	}
	checkSourceIntact(t, e, g, true)
	checkNoLeftovers(t, e, g, mig)
}

func checkSourceIntact(t *testing.T, e *testEnv, g *guest, running bool) {
	t.Helper()
	vms := e.vms(g.host)
	vm, ok := vms[g.inst.Name]
	if !ok || vm.Rec.OtherConfig[KeyNovaUUID] != g.inst.UUID || vm.Rec.OtherConfig[KeyOrigOf] != "" ||
		vm.Rec.OtherConfig[KeyMigration] != "" {
		t.Fatalf("source VM not as it was: %+v", vms)
	}
	if _, ok := vms[g.inst.Name+origSuffix]; ok {
		t.Fatal("an -orig VM is left")
	}
	if running && vm.Rec.PowerState != xenapi.VMPowerStateRunning {
		t.Fatalf("source VM is %s, it ran before", vm.Rec.PowerState)
	}
	checkSourceData(t, e, g)
}

func checkSourceData(t *testing.T, e *testEnv, g *guest) {
	t.Helper()
	for i, vdi := range g.vm.VDIs {
		rec, err := e.poolOf[g.host].Record(vdi)
		if err != nil {
			t.Fatalf("source disk %d is gone: %v", i, err)
		}
		e.checkDisk(g.host, rec["uuid"].(string), g.disks[i])
	}
}

func checkNoLeftovers(t *testing.T, e *testEnv, g *guest, mig *compute.Migration) {
	t.Helper()
	ctx := context.Background()
	for _, host := range []string{mig.SourceCompute, mig.DestCompute} {
		tg, err := e.d.pool(ctx, host)
		if err != nil {
			t.Fatal(err)
		}
		for _, role := range []string{RoleSnapshot, RoleCopy} {
			if v, _ := taggedVDIs(ctx, tg.Client, "", mig.UUID, role); len(v) != 0 {
				t.Errorf("%d %s VDIs of the migration left in the pool of %s", len(v), role, host)
			}
		}
	}
}

func TestMigrateBadExport(t *testing.T) {
	tests := []struct {
		name   string
		change func(w http.ResponseWriter, r *http.Request, next http.Handler)
		check  func(t *testing.T, err error)
	}{
		{"404", func(w http.ResponseWriter, r *http.Request, next http.Handler) {
			http.Error(w, "404 Not Found", http.StatusNotFound)
		}, func(t *testing.T, err error) {
			var he *xenapi.HTTPError
			var te *TransferError
			if !errors.As(err, &he) || he.Status != http.StatusNotFound || !errors.As(err, &te) || te.Step != "export" || te.ComputeHost != "compute1" {
				t.Fatalf("error %v, want the export's 404 from compute1", err)
			}
		}},
		{"short body", func(w http.ResponseWriter, r *http.Request, next http.Handler) {
			next.ServeHTTP(&truncated{ResponseWriter: w, left: 100 << 10}, r)
		}, func(t *testing.T, err error) {
			var sb *ShortBodyError
			if !errors.As(err, &sb) || sb.Got >= sb.Want {
				t.Fatalf("error %v, want a *ShortBodyError", err)
			}
		}},
		{"head cut", func(w http.ResponseWriter, r *http.Request, next http.Handler) {
			next.ServeHTTP(&truncated{ResponseWriter: w, left: 1000}, r)
		}, func(t *testing.T, err error) {
			var sb *ShortBodyError
			if !errors.As(err, &sb) {
				t.Fatalf("error %v, want a *ShortBodyError", err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, standalone, envOptions{})
			proxyExports(t, e, "pool1", tt.change)
			g := e.addGuest("compute1", guestSpec{running: true, flavor: small})
			mig := newMigration(g, "compute2", large)
			_, err := e.d.MigrateDiskAndPowerOff(context.Background(), compute.MigrateDiskRequest{Instance: g.inst,
				Migration: mig, Host: "compute1", DestHost: "compute2", NewFlavor: large})
			tt.check(t, err)
			checkRolledBack(t, e, g, mig, err)
		})
	}
}

// A disk larger than the destination SR's free space, or than a VHD export
// carries, is refused before anything moves.
func TestMigrateRefusedBeforeAnythingMoves(t *testing.T) {
	const tib = int64(1) << 40
	tests := []struct {
		name  string
		opts  envOptions
		disk  int64
		check func(t *testing.T, err error)
	}{
		{"SR full", envOptions{srSizes: map[string]int64{"pool2": 12 << 20}}, 16 << 20, func(t *testing.T, err error) {
			var sf *SRFullError
			if !errors.As(err, &sf) || sf.ComputeHost != "compute2" || sf.Need != 16<<20 || sf.Free > 12<<20 {
				t.Fatalf("error %v, want an *SRFullError on compute2", err)
			}
		}},
		{"VDI too large", envOptions{srSize: 4 * tib}, MaxVHDExportSize + 2<<20, func(t *testing.T, err error) {
			var tl *VDITooLargeError
			if !errors.As(err, &tl) || tl.Size != MaxVHDExportSize+2<<20 || tl.ComputeHost != "compute1" {
				t.Fatalf("error %v, want a *VDITooLargeError", err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, standalone, tt.opts)
			p := e.poolOf["compute1"]
			const uuid = "3c0d9a8b-7e6f-4a5b-8c9d-0e1f2a3b4c5d"
			if _, err := p.AddVM(xenapitest.VMSpec{Name: "instance-big", Disks: []int64{tt.disk}, Running: true,
				Memory: 256 << 20, OtherConfig: map[string]string{KeyNovaUUID: uuid}}); err != nil {
				t.Fatal(err)
			}
			inst := &compute.Instance{UUID: uuid, Name: "instance-big", Flavor: small, VMState: statemachine.VMActive}
			mig := &compute.Migration{UUID: "9d8c7b6a-5f4e-4d3c-2b1a-0f9e8d7c6b5a", InstanceUUID: uuid,
				SourceCompute: "compute1", DestCompute: "compute2"}
			_, err := e.d.MigrateDiskAndPowerOff(context.Background(), compute.MigrateDiskRequest{Instance: inst,
				Migration: mig, Host: "compute1", DestHost: "compute2", NewFlavor: large})
			var rb *compute.InstanceFaultRollback
			if !errors.As(err, &rb) {
				t.Fatalf("error %v is not a rollback", err)
			}
			tt.check(t, err)
			for _, m := range []string{"VDI.create", "VDI.snapshot", "VM.clean_shutdown", "VM.hard_shutdown", "Async.VM.clean_shutdown"} {
				if n := e.poolOf["compute1"].CallCount(m) + e.poolOf["compute2"].CallCount(m); n != 0 {
					t.Errorf("%s called %d times before the refusal", m, n)
				}
			}
			vms := e.vms("compute1")
			if vm := vms["instance-big"]; vm.Rec.PowerState != xenapi.VMPowerStateRunning || vm.Rec.OtherConfig[KeyNovaUUID] != uuid {
				t.Fatalf("source after the refusal: %+v", vms)
			}
		})
	}
}

func TestMigrateBadInstance(t *testing.T) {
	e := newEnv(t, standalone, envOptions{})
	g := e.addGuest("compute1", guestSpec{running: true, flavor: small})
	ctx := context.Background()
	req := func(inst *compute.Instance, host string) compute.MigrateDiskRequest {
		return compute.MigrateDiskRequest{Instance: inst, Migration: newMigration(g, "compute2", large), Host: host,
			DestHost: "compute2", NewFlavor: large}
	}
	// No VM claims this instance (a VM of the same name without nova_uuid
	// does not count).
	if _, err := e.poolOf["compute1"].AddVM(xenapitest.VMSpec{Name: "instance-ghost", Disks: []int64{2 << 20}}); err != nil {
		t.Fatal(err)
	}
	ghost := &compute.Instance{UUID: "1f2e3d4c-5b6a-4978-8695-a4b3c2d1e0f9", Name: "instance-ghost", Flavor: small}
	_, err := e.d.MigrateDiskAndPowerOff(ctx, req(ghost, "compute1"))
	var nf *compute.NotFoundError
	if !errors.As(err, &nf) || nf.ID != ghost.UUID {
		t.Fatalf("move of an instance no VM claims: %v", err)
	}
	_, err = e.d.MigrateDiskAndPowerOff(ctx, req(g.inst, "compute7"))
	if !errors.Is(err, ErrUnknownHost) {
		t.Fatalf("move from an unknown host: %v", err)
	}
	if _, err := e.poolOf["compute1"].AddVM(xenapitest.VMSpec{Name: "twin", Disks: []int64{2 << 20},
		OtherConfig: map[string]string{KeyNovaUUID: g.inst.UUID}}); err != nil {
		t.Fatal(err)
	}
	_, err = e.d.MigrateDiskAndPowerOff(ctx, req(g.inst, "compute1"))
	var dup *DuplicateInstanceError
	if !errors.As(err, &dup) || len(dup.VMs) != 2 {
		t.Fatalf("move of an instance two VMs claim: %v", err)
	}
	checkSourceData(t, e, g)
	// FinishMigration with a DiskInfo naming a disk the destination does
	// not have.
	err = e.d.FinishMigration(ctx, compute.FinishMigrationRequest{Instance: g.inst, Migration: newMigration(g, "compute2", large),
		Host: "compute2", NewFlavor: large, DiskInfo: compute.DiskInfo{Disks: []compute.Disk{{VDI: "0a0b0c0d-1e1f-4a4b-8c8d-9e9f0a0b0c0d", Userdevice: "0"}}}})
	var nd *NoDiskError
	if !errors.As(err, &nd) || nd.ComputeHost != "compute2" {
		t.Fatalf("FinishMigration of a missing disk: %v", err)
	}
}

// With Transfer.Verify the copy and the source are exported back as raw
// and compared; a copy that reads back differently fails the move.
func TestVerify(t *testing.T) {
	for _, corrupt := range []bool{false, true} {
		t.Run(fmt.Sprint("corrupt=", corrupt), func(t *testing.T) {
			e := newEnv(t, standalone, envOptions{config: func(c *Config) { c.Transfer.Verify = true }})
			var raws atomic.Int32
			proxyExports(t, e, "pool2", func(w http.ResponseWriter, r *http.Request, next http.Handler) {
				if r.URL.Query().Get("format") != "raw" {
					next.ServeHTTP(w, r)
					return
				}
				raws.Add(1)
				if !corrupt {
					next.ServeHTTP(w, r)
					return
				}
				next.ServeHTTP(&flipFirst{ResponseWriter: w}, r)
			})
			g := e.addGuest("compute1", guestSpec{running: true, flavor: small})
			mig := newMigration(g, "compute2", large)
			info, err := e.d.MigrateDiskAndPowerOff(context.Background(), compute.MigrateDiskRequest{Instance: g.inst,
				Migration: mig, Host: "compute1", DestHost: "compute2", NewFlavor: large})
			if n := raws.Load(); n != 1 {
				t.Errorf("%d raw exports of the copy, want 1", n)
			}
			if !corrupt {
				if err != nil {
					t.Fatal(err)
				}
				e.checkDisk("compute2", info.Disks[0].VDI, g.disks[0])
				return
			}
			var dm *DigestMismatchError
			if !errors.As(err, &dm) {
				t.Fatalf("error %v, want a *DigestMismatchError", err)
			}
			checkRolledBack(t, e, g, mig, err)
		})
	}
}

// flipFirst changes the first byte of a response.
type flipFirst struct {
	http.ResponseWriter
	done bool
}

func (w *flipFirst) Write(p []byte) (int, error) {
	if !w.done && len(p) > 0 {
		w.done = true
		q := append([]byte(nil), p...)
		q[0] ^= 0xFF
		return w.ResponseWriter.Write(q)
	}
	return w.ResponseWriter.Write(p)
}

// A destination pool without the source's network refuses to finish,
// naming the network.
func TestFinishWithoutNetwork(t *testing.T) {
	e := newEnv(t, standalone, envOptions{})
	p := e.poolOf["compute1"]
	ctx := context.Background()
	net, err := p.Call(ctx, "network.create", e.session("compute1"), map[string]any{"name_label": "storage-vlan",
		"name_description": "", "other_config": map[string]any{}})
	if err != nil {
		t.Fatal(err)
	}
	const uuid = "4d5e6f70-8192-4a3b-9c4d-5e6f708192a3"
	if _, err := p.AddVM(xenapitest.VMSpec{Name: "instance-net", Disks: []int64{4 << 20}, Memory: 256 << 20,
		Networks: []string{net.(string)}, OtherConfig: map[string]string{KeyNovaUUID: uuid}}); err != nil {
		t.Fatal(err)
	}
	inst := &compute.Instance{UUID: uuid, Name: "instance-net", Flavor: small}
	mig := &compute.Migration{UUID: "5e6f7081-92a3-4b4c-8d5e-6f708192a3b4", InstanceUUID: uuid,
		SourceCompute: "compute1", DestCompute: "compute2"}
	info, err := e.d.MigrateDiskAndPowerOff(ctx, compute.MigrateDiskRequest{Instance: inst, Migration: mig,
		Host: "compute1", DestHost: "compute2", NewFlavor: small})
	if err != nil {
		t.Fatal(err)
	}
	err = e.d.FinishMigration(ctx, compute.FinishMigrationRequest{Instance: inst, Migration: mig, Host: "compute2",
		DiskInfo: info, NewFlavor: small, PowerOn: true})
	var nip *NotInPoolError
	if !errors.As(err, &nip) || nip.Kind != "network" || nip.Name != "storage-vlan" || nip.ComputeHost != "compute2" {
		t.Fatalf("FinishMigration: %v, want a *NotInPoolError for the network", err)
	}
	if _, err := e.d.GetInfo(ctx, compute.InstanceRequest{Instance: inst, Host: "compute2"}); !errors.Is(err, compute.ErrNotFound) {
		t.Fatalf("a VM was made on the destination: %v", err)
	}
	// Nothing on the source was touched: a revert brings it back.
	if err := e.d.Destroy(ctx, compute.DestroyRequest{Instance: inst, Host: "compute2", DestroyDisks: true, Migration: mig}); err != nil {
		t.Fatal(err)
	}
	if err := e.d.FinishRevertMigration(ctx, compute.FinishRevertRequest{Instance: inst, Migration: mig, Host: "compute1", PowerOn: true}); err != nil {
		t.Fatal(err)
	}
	if got, err := e.d.GetInfo(ctx, compute.InstanceRequest{Instance: inst, Host: "compute1"}); err != nil || got.PowerState != statemachine.PowerRunning {
		t.Fatalf("after the revert: %+v, %v", got, err)
	}
}

// An import that fails is named as the import's failure, on the
// destination, and the source is rolled back.
func TestMigrateImportFails(t *testing.T) {
	e := newEnv(t, standalone, envOptions{})
	g := e.addGuest("compute1", guestSpec{running: true, flavor: small})
	mig := newMigration(g, "compute2", large)
	e.poolOf["compute2"].FailNth(xenapitest.ImportRawVDIAction, 1, xenapitest.ErrVDIIOError, "injected")
	_, err := e.d.MigrateDiskAndPowerOff(context.Background(), compute.MigrateDiskRequest{Instance: g.inst,
		Migration: mig, Host: "compute1", DestHost: "compute2", NewFlavor: large})
	var te *TransferError
	var he *xenapi.HTTPError
	if !errors.As(err, &te) || te.Step != "import" || te.ComputeHost != "compute2" || !errors.As(err, &he) {
		t.Fatalf("error %v, want the import's failure on compute2", err)
	}
	checkRolledBack(t, e, g, mig, err)
}
