package xenserver

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/dom0"
	"github.com/xenflow/xenflow/xenapi"
)

func cleanup(t *testing.T, r *resizeRun, host string, inst *compute.Instance) {
	t.Helper()
	for i := 0; i < 2; i++ { // the second call finds nothing to do
		err := r.e.d.CleanupMigration(context.Background(), compute.CleanupMigrationRequest{Migration: r.mig, Instance: inst, Host: host})
		if err != nil {
			t.Fatalf("CleanupMigration on %s (#%d): %v", host, i+1, err)
		}
	}
}

func vdiExists(t *testing.T, r *resizeRun, host, uuid string) bool {
	t.Helper()
	tg, err := r.e.d.pool(context.Background(), host)
	if err != nil {
		t.Fatal(err)
	}
	_, err = tg.Client.VDI.GetByUUID(context.Background(), uuid)
	if xenapi.IsCode(err, xenapi.CodeUUIDInvalid) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	return true
}

func hasOrig(r *resizeRun) bool {
	_, ok := r.e.vms(r.g.host)[r.g.inst.Name+origSuffix]
	return ok
}

func TestCleanupMigration(t *testing.T) {
	tests := []struct {
		name string
		// stop runs the move as far as it got.
		stop func(t *testing.T, r *resizeRun)
		// deleted: the instance no longer exists.
		deleted bool
		// origKept: the -orig VM and the destination copies are still needed.
		origKept bool
	}{
		{"moved, not finished", func(t *testing.T, r *resizeRun) { r.migrate(t) }, false, true},
		{"finished", func(t *testing.T, r *resizeRun) { r.migrate(t); r.finish(t, true) }, false, false},
		{"moved, instance deleted", func(t *testing.T, r *resizeRun) { r.migrate(t) }, true, false},
	}
	for _, l := range layouts {
		for _, tc := range tests {
			t.Run(string(l)+"/"+tc.name, func(t *testing.T) {
				r := newResize(t, l, "compute2", true)
				tc.stop(t, r)
				inst := r.g.inst
				if tc.deleted {
					inst = nil
				}
				cleanup(t, r, r.g.host, inst)
				cleanup(t, r, r.dest, inst)
				if hasOrig(r) != tc.origKept {
					t.Fatalf("-orig VM kept: %v, want %v", hasOrig(r), tc.origKept)
				}
				for i, d := range r.info.Disks {
					inUse := !tc.deleted && !tc.origKept
					if exists := vdiExists(t, r, r.dest, d.VDI); exists != (tc.origKept || inUse) {
						t.Fatalf("destination disk %d exists: %v", i, exists)
					}
					if tc.origKept || inUse {
						r.e.checkDisk(r.dest, d.VDI, r.g.disks[i])
					}
				}
				if tc.origKept {
					checkSourceData(t, r.e, r.g)
				}
				for _, vdi := range r.g.vm.VDIs {
					if _, err := r.e.poolOf[r.g.host].Record(vdi); (err == nil) != tc.origKept {
						t.Fatalf("source disk %s exists: %v", vdi, err == nil)
					}
				}
				if tc.deleted {
					checkNoLeftovers(t, r.e, r.g, r.mig)
				}
				for _, host := range []string{r.g.host, r.dest} {
					tg, err := r.e.d.pool(context.Background(), host)
					if err != nil {
						t.Fatal(err)
					}
					if v, _ := taggedVDIs(context.Background(), tg.Client, "", r.mig.UUID, RoleSnapshot); len(v) != 0 {
						t.Errorf("%d snapshots of the migration left on %s", len(v), host)
					}
				}
			})
		}
	}
}

// TestCleanupLeftovers: an incomplete copy and a snapshot of the
// migration go; a complete copy stays while the instance needs it, and
// another migration's copy stays.
func TestCleanupLeftovers(t *testing.T) {
	ctx := context.Background()
	r := newResize(t, standalone, "compute2", true)
	tg, err := r.e.d.pool(ctx, "compute2")
	if err != nil {
		t.Fatal(err)
	}
	mk := func(oc map[string]string) string {
		ref, err := tg.Client.VDI.Create(ctx, xenapi.VDIRecord{NameLabel: "leftover", SR: tg.SR, VirtualSize: 1 << 20,
			Type: "user", OtherConfig: oc})
		if err != nil {
			t.Fatal(err)
		}
		uuid, err := tg.Client.VDI.GetUUID(ctx, ref)
		if err != nil {
			t.Fatal(err)
		}
		return uuid
	}
	mig := r.mig.UUID
	incomplete := mk(map[string]string{KeyMigration: mig, KeyRole: RoleCopy})
	snapshot := mk(map[string]string{KeyMigration: mig, KeyRole: RoleSnapshot})
	complete := mk(map[string]string{KeyMigration: mig, KeyRole: RoleCopy, KeyComplete: "true"})
	other := mk(map[string]string{KeyMigration: "another-migration", KeyRole: RoleCopy})
	// The instance's VM is on compute1, not marked for this migration:
	// the instance is claimed, so nothing of the migration is needed.
	for _, tc := range []struct {
		inst *compute.Instance
		gone []string
		kept []string
	}{
		{r.g.inst, []string{incomplete, snapshot, complete}, []string{other}},
	} {
		cleanup(t, r, "compute2", tc.inst)
		for _, u := range tc.gone {
			if vdiExists(t, r, "compute2", u) {
				t.Errorf("VDI %s survived", u)
			}
		}
		for _, u := range tc.kept {
			if !vdiExists(t, r, "compute2", u) {
				t.Errorf("VDI %s was destroyed", u)
			}
		}
	}
	checkSourceIntact(t, r.e, r.g, true)
}

// TestCleanupKeepsNeededCopy: with the instance unclaimed (its move
// stopped after the source was kept as -orig), a complete copy stays.
func TestCleanupKeepsNeededCopy(t *testing.T) {
	r := newResize(t, standalone, "compute2", true)
	r.migrate(t)
	cleanup(t, r, "compute2", r.g.inst)
	for _, d := range r.info.Disks {
		if !vdiExists(t, r, "compute2", d.VDI) {
			t.Fatalf("needed copy %s destroyed", d.VDI)
		}
	}
}

// TestCleanupStaging: the chain staging directories of the migration's
// instance go from the host's SR; another instance's stay.
func TestCleanupStaging(t *testing.T) {
	e := newEnv(t, standalone, envOptions{})
	root := e.hostOf["compute1"].Root()
	h, err := dom0.Local(root)
	if err != nil {
		t.Fatal(err)
	}
	e.cfg.Inventory.Hosts["compute1"] = withDom0(e.cfg.Inventory.Hosts["compute1"], h)
	e.newDriver(t)
	g := e.addGuest("compute1", guestSpec{running: true})
	sr := filepath.Join(root, "var", "run", "sr-mount", e.hostOf["compute1"].SRUUID())
	const other = "11111111-2222-4333-8444-555555555555"
	mine := []string{"xenflow-send-instance" + g.inst.UUID, "xenflow-receive-instance" + g.inst.UUID + "_ephemeral_1"}
	theirs := []string{"xenflow-receive-instance" + other, "xenflow-send-instance" + g.inst.UUID + "x"}
	for _, dir := range append(append([]string(nil), mine...), theirs...) {
		if err := os.MkdirAll(filepath.Join(sr, dir), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(sr, dir, "0.vhd.part"), []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	mig := &compute.Migration{UUID: "9d9d9d9d-0000-4000-8000-000000000001", InstanceUUID: g.inst.UUID,
		SourceCompute: "compute1", DestCompute: "compute2"}
	for i := 0; i < 2; i++ {
		if err := e.d.CleanupMigration(context.Background(), compute.CleanupMigrationRequest{Migration: mig, Instance: g.inst,
			Host: "compute1"}); err != nil {
			t.Fatal(err)
		}
	}
	for _, dir := range mine {
		if _, err := os.Stat(filepath.Join(sr, dir)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s survived: %v", dir, err)
		}
	}
	for _, dir := range theirs {
		if _, err := os.Stat(filepath.Join(sr, dir)); err != nil {
			t.Errorf("%s removed: %v", dir, err)
		}
	}
	checkSourceData(t, e, g)
}

func withDom0(e HostEntry, h dom0.Host) HostEntry {
	e.Dom0 = h
	return e
}

func TestCleanupBadRequest(t *testing.T) {
	e := newEnv(t, standalone, envOptions{})
	err := e.d.CleanupMigration(context.Background(), compute.CleanupMigrationRequest{Host: "compute1"})
	if !errors.As(err, new(*RequestError)) {
		t.Fatalf("got %v", err)
	}
	err = e.d.CleanupMigration(context.Background(), compute.CleanupMigrationRequest{Host: "nowhere",
		Migration: &compute.Migration{UUID: "m"}})
	if !errors.Is(err, ErrUnknownHost) {
		t.Fatalf("got %v", err)
	}
}

// TestMigrateAfterKillBeforeKeep: a process killed after the copies were
// complete but before the source was kept as -orig (no rollback ran)
// leaves complete copies no DiskInfo names; the next call discards them,
// so after its move the destination holds exactly its own copies.
func TestMigrateAfterKillBeforeKeep(t *testing.T) {
	ctx := context.Background()
	r := newResize(t, standalone, "compute2", true)
	r.migrate(t)
	first := r.info
	src, err := r.e.d.pool(ctx, "compute1")
	if err != nil {
		t.Fatal(err)
	}
	orig, err := findOrigVM(ctx, src.Client, r.g.inst.UUID, r.mig.UUID)
	if err != nil {
		t.Fatal(err)
	}
	// The state of a kill just before keepOrig: tagged for the move,
	// still claiming the instance under its own name.
	err = updateVMOtherConfig(ctx, src.Client, orig.Ref, func(oc map[string]string) {
		delete(oc, KeyOrigOf)
		delete(oc, KeyDiskInfo)
		oc[KeyNovaUUID] = r.g.inst.UUID
	})
	if err == nil {
		err = ensureName(ctx, src.Client, orig.Ref, orig.Rec.NameLabel, false)
	}
	if err != nil {
		t.Fatal(err)
	}
	r.migrate(t)
	dst, err := r.e.d.pool(ctx, "compute2")
	if err != nil {
		t.Fatal(err)
	}
	copies, err := taggedVDIs(ctx, dst.Client, "", r.mig.UUID, RoleCopy)
	if err != nil {
		t.Fatal(err)
	}
	if len(copies) != len(r.info.Disks) {
		t.Fatalf("%d copies of the migration on the destination, want the %d of the last call", len(copies), len(r.info.Disks))
	}
	for _, d := range first.Disks {
		if vdiExists(t, r, "compute2", d.VDI) {
			t.Errorf("the first call's copy %s survived", d.VDI)
		}
	}
	for i, d := range r.info.Disks {
		r.e.checkDisk("compute2", d.VDI, r.g.disks[i])
	}
}
