package computetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/statemachine"
)

// pool is a FakeDriver with hosts a and b and instance i1 running on a.
type pool struct {
	d    *FakeDriver
	inst *compute.Instance
	mig  *compute.Migration
	up   *compute.Flavor
}

func newPool(t *testing.T, opts ...FakeDriverOption) *pool {
	t.Helper()
	d := NewFakeDriver(opts...)
	for _, h := range []string{"host-a", "host-b"} {
		if err := d.AddHost(HostConfig{Host: h, TotalUsableRAMMB: 16384, TotalUsableDiskGB: 500, VCPUsTotal: 8}); err != nil {
			t.Fatal(err)
		}
	}
	inst := Instance("i1")
	inst.Flavor.EphemeralGB = 5
	if err := d.AddGuest("host-a", inst, statemachine.PowerRunning); err != nil {
		t.Fatal(err)
	}
	if err := d.WriteDisk("host-a", inst.Name, "0", []byte("guest data")); err != nil {
		t.Fatal(err)
	}
	up := &compute.Flavor{ID: "2", Name: "m1.medium", MemoryMB: 4096, VCPUs: 2, RootGB: 40, EphemeralGB: 5}
	return &pool{d: d, inst: inst, mig: Migration("m1", "i1"), up: up}
}

func (p *pool) migrateReq() compute.MigrateDiskRequest {
	return compute.MigrateDiskRequest{Instance: p.inst, Migration: p.mig, Host: "host-a", DestHost: "host-b", NewFlavor: p.up}
}

func (p *pool) finishReq(info compute.DiskInfo) compute.FinishMigrationRequest {
	return compute.FinishMigrationRequest{Instance: p.inst, Migration: p.mig, Host: "host-b", DiskInfo: info,
		NewFlavor: p.up, ResizeInstance: true, PowerOn: true}
}

// world is what the driver holds, to compare before and after.
type world struct {
	Guests map[string][]Guest
	VDIs   map[string][]VDI
}

func (p *pool) world() world {
	w := world{Guests: map[string][]Guest{}, VDIs: map[string][]VDI{}}
	for _, h := range []string{"host-a", "host-b"} {
		w.Guests[h], w.VDIs[h] = p.d.Guests(h), p.d.VDIs(h)
	}
	return w
}

func (p *pool) guest(t *testing.T, host, name string) Guest {
	t.Helper()
	for _, g := range p.d.Guests(host) {
		if g.Name == name {
			return g
		}
	}
	t.Fatalf("no guest %s on %s; guests: %+v", name, host, p.d.Guests(host))
	return Guest{}
}

func (p *pool) rootDigest(t *testing.T, host, name string) string {
	t.Helper()
	g := p.guest(t, host, name)
	for _, v := range p.d.VDIs(host) {
		if v.UUID == g.VDIs[0] {
			return v.SHA256
		}
	}
	t.Fatalf("guest %s has no root disk on %s", name, host)
	return ""
}

func (p *pool) noOrphans(t *testing.T) {
	t.Helper()
	for _, h := range []string{"host-a", "host-b"} {
		if o := p.d.Orphans(h); len(o) > 0 {
			t.Errorf("orphan disks on %s: %+v", h, o)
		}
	}
}

func TestFakeDriverResizeConfirm(t *testing.T) {
	ctx := context.Background()
	p := newPool(t)
	// The guest writes while its disks are sent, before the power-off.
	p.d.SetHook(func(c Call) error {
		if c.Step == "power-off" {
			return p.d.WriteDisk("host-a", p.inst.Name, "0", make([]byte, 1000))
		}
		return nil
	})
	var steps []int
	req := p.migrateReq()
	req.Progress = func(pr compute.Progress) { steps = append(steps, pr.Percent) }
	info, err := p.d.MigrateDiskAndPowerOff(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]int{20, 40, 60, 80, 100}, steps); d != "" {
		t.Errorf("progress (-want +got):\n%s", d)
	}
	want := p.rootDigest(t, "host-a", p.inst.Name+OrigSuffix)
	root, eph := gib(20), gib(5)
	if info.BytesSentRunning != root+eph || info.BytesSent != root+eph+1000 || len(info.Disks) != 2 || info.Disks[0].SHA256 != want {
		t.Errorf("DiskInfo %+v: want %d bytes sent running, 1000 more powered off, root digest %s", info, root+eph, want)
	}
	orig := p.guest(t, "host-a", p.inst.Name+OrigSuffix)
	if orig.Power != statemachine.PowerShutdown || orig.MigrationUUID != "m1" {
		t.Errorf("source kept as %+v, want halted -orig of m1", orig)
	}
	if err := p.d.FinishMigration(ctx, p.finishReq(info)); err != nil {
		t.Fatal(err)
	}
	g := p.guest(t, "host-b", p.inst.Name)
	if g.Power != statemachine.PowerRunning || g.Flavor.ID != "2" || p.rootDigest(t, "host-b", g.Name) != want {
		t.Errorf("destination guest %+v: want running flavor 2 with the source's data", g)
	}
	hs, err := p.d.GetAvailableResource(ctx, compute.HostRequest{Host: "host-b"})
	if err != nil {
		t.Fatal(err)
	}
	if hs.FreeRAMMB != 16384-4096 || hs.VCPUsUsed != 2 || hs.NumInstances != 1 || hs.FreeDiskMB != 500*1024-45*1024 {
		t.Errorf("host-b resources %+v: want 4096 MB and 2 vCPUs used, 45 GiB of disk", hs)
	}
	if err := p.d.ConfirmMigration(ctx, compute.ConfirmMigrationRequest{Instance: p.inst, Migration: p.mig, Host: "host-a"}); err != nil {
		t.Fatal(err)
	}
	if gs, vs := p.d.Guests("host-a"), p.d.VDIs("host-a"); len(gs) != 0 || len(vs) != 0 {
		t.Errorf("after confirm the source holds %+v and %+v", gs, vs)
	}
	p.noOrphans(t)
}

func TestFakeDriverRevert(t *testing.T) {
	ctx := context.Background()
	p := newPool(t)
	before := p.world()
	info, err := p.d.MigrateDiskAndPowerOff(ctx, p.migrateReq())
	if err != nil {
		t.Fatal(err)
	}
	if err := p.d.FinishMigration(ctx, p.finishReq(info)); err != nil {
		t.Fatal(err)
	}
	if err := p.d.Destroy(ctx, compute.DestroyRequest{Instance: p.inst, Host: "host-b", DestroyDisks: true, Migration: p.mig}); err != nil {
		t.Fatal(err)
	}
	if err := p.d.FinishRevertMigration(ctx, compute.FinishRevertRequest{Instance: p.inst, Migration: p.mig, Host: "host-a", PowerOn: true}); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(before, p.world()); d != "" {
		t.Errorf("revert did not restore the pool (-before +after):\n%s", d)
	}
}

// TestFakeDriverIdempotent runs every step of a move twice: the second call
// changes nothing.
func TestFakeDriverIdempotent(t *testing.T) {
	ctx := context.Background()
	p := newPool(t)
	var info compute.DiskInfo
	steps := []struct {
		name string
		call func() error
	}{
		{"migrate", func() (err error) { info, err = p.d.MigrateDiskAndPowerOff(ctx, p.migrateReq()); return err }},
		{"finish", func() error { return p.d.FinishMigration(ctx, p.finishReq(info)) }},
		{"power off", func() error {
			return p.d.PowerOff(ctx, compute.PowerOffRequest{Instance: p.inst, Host: "host-b"})
		}},
		{"confirm", func() error {
			return p.d.ConfirmMigration(ctx, compute.ConfirmMigrationRequest{Instance: p.inst, Migration: p.mig, Host: "host-a"})
		}},
		{"destroy", func() error {
			return p.d.Destroy(ctx, compute.DestroyRequest{Instance: p.inst, Host: "host-b", DestroyDisks: true})
		}},
	}
	for _, s := range steps {
		if err := s.call(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		once, firstInfo := p.world(), info
		if err := s.call(); err != nil {
			t.Fatalf("%s again: %v", s.name, err)
		}
		if d := cmp.Diff(once, p.world()); d != "" {
			t.Errorf("%s twice changed the pool (-once +twice):\n%s", s.name, d)
		}
		if d := cmp.Diff(firstInfo, info); d != "" {
			t.Errorf("%s twice returned another DiskInfo:\n%s", s.name, d)
		}
	}
	p.noOrphans(t)
}

// TestFakeDriverMigrateRollback fails MigrateDiskAndPowerOff at each of
// its points: the source is as it was, nothing is left on the destination,
// and the next call succeeds.
func TestFakeDriverMigrateRollback(t *testing.T) {
	for _, step := range append([]string{""}, MethodSteps(MethodMigrateDiskAndPowerOff)...) {
		t.Run(stepName(step), func(t *testing.T) {
			ctx := context.Background()
			p := newPool(t)
			before := p.world()
			p.d.InjectFault(Fault{Method: MethodMigrateDiskAndPowerOff, Step: step, Nth: 1})
			_, err := p.d.MigrateDiskAndPowerOff(ctx, p.migrateReq())
			if !errors.Is(err, ErrInjected) {
				t.Fatalf("error %v, want the injected one", err)
			}
			var rb *compute.InstanceFaultRollback
			if step != "" && !errors.As(err, &rb) {
				t.Fatalf("error %v (%T), want an *InstanceFaultRollback", err, err)
			}
			if d := cmp.Diff(before, p.world()); d != "" {
				t.Fatalf("a failed move changed the pool (-before +after):\n%s", d)
			}
			if _, err := p.d.MigrateDiskAndPowerOff(ctx, p.migrateReq()); err != nil {
				t.Fatalf("the retry: %v", err)
			}
		})
	}
}

// TestFakeDriverCrashResume cancels a move after each step, as a crash
// would, and calls it again: it ends as an uninterrupted move does.
func TestFakeDriverCrashResume(t *testing.T) {
	ref := newPool(t)
	refInfo, err := ref.d.MigrateDiskAndPowerOff(context.Background(), ref.migrateReq())
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range MethodSteps(MethodMigrateDiskAndPowerOff) {
		t.Run(step, func(t *testing.T) {
			p := newPool(t)
			ctx, cancel := context.WithCancel(context.Background())
			p.d.SetHook(func(c Call) error {
				if c.Step == step {
					cancel() // the crash comes before the step's effect
					return ctx.Err()
				}
				return nil
			})
			if _, err := p.d.MigrateDiskAndPowerOff(ctx, p.migrateReq()); !errors.Is(err, context.Canceled) {
				t.Fatalf("error %v, want context.Canceled", err)
			}
			p.d.SetHook(nil)
			info, err := p.d.MigrateDiskAndPowerOff(context.Background(), p.migrateReq())
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(ref.world(), p.world()); d != "" {
				t.Errorf("resumed move differs from an uninterrupted one (-want +got):\n%s", d)
			}
			if info.Disks[0].SHA256 != refInfo.Disks[0].SHA256 || len(info.Disks) != len(refInfo.Disks) {
				t.Errorf("DiskInfo %+v, want %+v", info.Disks, refInfo.Disks)
			}
		})
	}
}

func TestFakeDriverRefusals(t *testing.T) {
	cases := []struct {
		name string
		edit func(req *compute.MigrateDiskRequest)
		want func(err error) bool
	}{
		{"ephemeral shrink", func(r *compute.MigrateDiskRequest) {
			r.NewFlavor = &compute.Flavor{ID: "3", MemoryMB: 2048, VCPUs: 1, RootGB: 20}
		}, isRollback},
		{"root to 0", func(r *compute.MigrateDiskRequest) {
			r.NewFlavor = &compute.Flavor{ID: "3", MemoryMB: 2048, VCPUs: 1, EphemeralGB: 5}
		}, isRollback},
		{"same host", func(r *compute.MigrateDiskRequest) { r.DestHost = "host-a" }, isRollback},
		{"suspend with a new flavor", func(r *compute.MigrateDiskRequest) { r.Suspend = true }, isRollback},
		{"unknown destination", func(r *compute.MigrateDiskRequest) { r.DestHost = "host-z" }, isNotFound},
		{"no migration", func(r *compute.MigrateDiskRequest) { r.Migration = nil }, isInvalid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := newPool(t)
			before := p.world()
			req := p.migrateReq()
			c.edit(&req)
			_, err := p.d.MigrateDiskAndPowerOff(context.Background(), req)
			if !c.want(err) {
				t.Fatalf("error %v (%T)", err, err)
			}
			if d := cmp.Diff(before, p.world()); d != "" {
				t.Fatalf("a refused move changed the pool:\n%s", d)
			}
		})
	}
}

func isRollback(err error) bool {
	var rb *compute.InstanceFaultRollback
	return errors.As(err, &rb)
}

func isNotFound(err error) bool { return errors.Is(err, compute.ErrNotFound) }

func isInvalid(err error) bool { return errors.Is(err, compute.ErrInvalidRecord) }

// TestFakeDriverSuspendedMigration moves a guest suspended: it resumes
// running on the destination.
func TestFakeDriverSuspendedMigration(t *testing.T) {
	ctx := context.Background()
	p := newPool(t)
	p.up = p.inst.Flavor
	req := p.migrateReq()
	req.Suspend = true
	info, err := p.d.MigrateDiskAndPowerOff(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if g := p.guest(t, "host-a", p.inst.Name+OrigSuffix); g.Power != statemachine.PowerSuspended {
		t.Fatalf("source power %s, want suspended", g.Power)
	}
	fr := p.finishReq(info)
	fr.ResizeInstance = false
	if err := p.d.FinishMigration(ctx, fr); err != nil {
		t.Fatal(err)
	}
	if g := p.guest(t, "host-b", p.inst.Name); g.Power != statemachine.PowerRunning {
		t.Fatalf("destination power %s, want running", g.Power)
	}
}

// TestFakeDriverFinishFailure: a failed FinishMigration removes the guest
// it made and keeps the staged disks; CleanupMigration removes them on the
// destination and keeps the source's -orig, the only copy.
func TestFakeDriverFinishFailure(t *testing.T) {
	ctx := context.Background()
	p := newPool(t)
	info, err := p.d.MigrateDiskAndPowerOff(ctx, p.migrateReq())
	if err != nil {
		t.Fatal(err)
	}
	p.d.InjectFault(Fault{Method: MethodFinishMigration, Step: "power-on"})
	if err := p.d.FinishMigration(ctx, p.finishReq(info)); !errors.Is(err, ErrInjected) {
		t.Fatalf("error %v, want the injected one", err)
	}
	if gs := p.d.Guests("host-b"); len(gs) != 0 {
		t.Fatalf("failed finish left %+v", gs)
	}
	if len(p.d.Orphans("host-b")) != 2 {
		t.Fatalf("staged disks: %+v, want 2 kept", p.d.VDIs("host-b"))
	}
	for _, h := range []string{"host-b", "host-a"} {
		if err := p.d.CleanupMigration(ctx, compute.CleanupMigrationRequest{Migration: p.mig, Instance: p.inst, Host: h}); err != nil {
			t.Fatal(err)
		}
	}
	if vs := p.d.VDIs("host-b"); len(vs) != 0 {
		t.Errorf("cleanup left %+v on the destination", vs)
	}
	p.guest(t, "host-a", p.inst.Name+OrigSuffix)
	if err := p.d.FinishRevertMigration(ctx, compute.FinishRevertRequest{Instance: p.inst, Migration: p.mig, Host: "host-a", PowerOn: true}); err != nil {
		t.Fatal(err)
	}
	if g := p.guest(t, "host-a", p.inst.Name); g.Power != statemachine.PowerRunning || g.Flavor.ID != "1" {
		t.Errorf("reverted guest %+v", g)
	}
	p.noOrphans(t)
}

func TestFakeDriverRescue(t *testing.T) {
	ctx := context.Background()
	p := newPool(t)
	before := p.world()
	rescue := compute.RescueRequest{Instance: p.inst, Host: "host-a", ImageRef: "rescue-img"}
	p.d.InjectFault(Fault{Method: MethodRescue, Step: "start-rescue", Nth: 1})
	if err := p.d.Rescue(ctx, rescue); !errors.Is(err, ErrInjected) {
		t.Fatalf("error %v, want the injected one", err)
	}
	if g := p.guest(t, "host-a", p.inst.Name); g.Bootlocked || len(p.d.Guests("host-a")) != 1 {
		t.Fatalf("failed rescue left %+v", p.d.Guests("host-a"))
	}
	for i := 0; i < 2; i++ {
		if err := p.d.Rescue(ctx, rescue); err != nil {
			t.Fatal(err)
		}
	}
	orig, r := p.guest(t, "host-a", p.inst.Name), p.guest(t, "host-a", p.inst.Name+RescueSuffix)
	if !orig.Bootlocked || orig.Power != statemachine.PowerShutdown || r.Power != statemachine.PowerRunning || r.VDIs[1] != orig.VDIs[0] {
		t.Fatalf("rescued: original %+v, rescue %+v", orig, r)
	}
	if err := p.d.PowerOn(ctx, compute.InstanceRequest{Instance: p.inst, Host: "host-a"}); !errors.Is(err, ErrBootlocked) {
		t.Fatalf("PowerOn of a bootlocked guest: %v", err)
	}
	for i := 0; i < 2; i++ {
		if err := p.d.Unrescue(ctx, compute.InstanceRequest{Instance: p.inst, Host: "host-a"}); err != nil {
			t.Fatal(err)
		}
	}
	if d := cmp.Diff(before, p.world()); d != "" {
		t.Errorf("rescue and unrescue changed the pool (-before +after):\n%s", d)
	}
}

func TestFakeDriverNthCallAndLog(t *testing.T) {
	ctx := context.Background()
	p := newPool(t)
	p.d.InjectFault(Fault{Method: MethodPowerOn, Nth: 2, Err: errors.New("HOST_NOT_ENOUGH_FREE_MEMORY")})
	req := compute.InstanceRequest{Instance: p.inst, Host: "host-a"}
	var got []bool
	for i := 0; i < 3; i++ {
		got = append(got, p.d.PowerOn(ctx, req) == nil)
	}
	if d := cmp.Diff([]bool{true, false, true}, got); d != "" {
		t.Errorf("PowerOn successes (-want +got):\n%s", d)
	}
	if n := p.d.CallCount(MethodPowerOn); n != 3 {
		t.Errorf("CallCount(PowerOn) = %d, want 3", n)
	}
	calls := p.d.Calls()
	if len(calls) != 3 || calls[2].Seq != 3 || calls[0].InstanceUUID != "i1" || calls[0].Host != "host-a" {
		t.Errorf("call log %+v", calls)
	}
	p.d.ClearFaults()
	if _, err := p.d.GetInfo(ctx, compute.InstanceRequest{Instance: Instance("i9"), Host: "host-a"}); !isNotFound(err) {
		t.Errorf("GetInfo of an unknown guest: %v", err)
	}
}

func TestFakeDriverCrossCell(t *testing.T) {
	ctx := context.Background()
	p := newPool(t)
	if err := p.d.Snapshot(ctx, compute.SnapshotRequest{Instance: p.inst, Host: "host-a", ImageID: "snap-1"}); err != nil {
		t.Fatal(err)
	}
	if err := p.d.Spawn(ctx, compute.SpawnRequest{Instance: p.inst, Host: "host-b", ImageRef: "snap-1", Flavor: p.up, PowerOn: true}); err != nil {
		t.Fatal(err)
	}
	if p.rootDigest(t, "host-b", p.inst.Name) != p.rootDigest(t, "host-a", p.inst.Name) {
		t.Error("spawned guest's root disk differs from the snapshot's")
	}
	for i := 0; i < 2; i++ { // the second delete finds nothing to do
		if err := p.d.DeleteImage(ctx, compute.DeleteImageRequest{Host: "host-b", ImageID: "snap-1"}); err != nil {
			t.Fatalf("DeleteImage #%d: %v", i+1, err)
		}
	}
	if imgs := p.d.Images(); len(imgs) != 0 {
		t.Errorf("images after DeleteImage: %v", imgs)
	}
	if p.rootDigest(t, "host-b", p.inst.Name) != p.rootDigest(t, "host-a", p.inst.Name) {
		t.Error("the spawned guest's root disk changed when its image was deleted")
	}
	if err := p.d.DeleteImage(ctx, compute.DeleteImageRequest{Host: "host-b"}); !errors.Is(err, compute.ErrInvalidRecord) {
		t.Errorf("DeleteImage without an image ID: %v", err)
	}
	eph := Instance("i-eph")
	p.d.AddImage("img-eph", 1<<30)
	if err := p.d.Spawn(ctx, compute.SpawnRequest{Instance: eph, Host: "host-b", ImageRef: "img-eph",
		Flavor: &compute.Flavor{ID: "e", MemoryMB: 512, VCPUs: 1, RootGB: 1, EphemeralGB: 2}}); err != nil {
		t.Fatal(err)
	}
	if got := p.d.GuestDisks("host-b", eph.Name); len(got) != 2 || got["4"].SHA256 != BlankDigest || BlankDigest != digest("") {
		t.Errorf("a guest spawned with ephemeral_gb has disks %v, want a root and a blank ephemeral disk", got)
	}
	off := NewFakeDriver(WithCapabilities(compute.DriverCapabilities{}))
	if err := off.Snapshot(ctx, compute.SnapshotRequest{Instance: p.inst, Host: "host-a", ImageID: "x"}); !errors.Is(err, compute.ErrNotImplemented) {
		t.Errorf("Snapshot without cross-cell support: %v", err)
	}
}

// TestFakeDriverConcurrent moves many guests at once between hosts.
func TestFakeDriverConcurrent(t *testing.T) {
	const n = 40
	ctx := context.Background()
	d := NewFakeDriver()
	for h := 0; h < 4; h++ {
		if err := d.AddHost(HostConfig{Host: fmt.Sprint("h", h), TotalUsableRAMMB: 1 << 20, TotalUsableDiskGB: 1 << 16, VCPUsTotal: 1024}); err != nil {
			t.Fatal(err)
		}
	}
	insts := make([]*compute.Instance, n)
	for i := range insts {
		insts[i] = Instance(fmt.Sprint("i", i))
		if err := d.AddGuest(fmt.Sprint("h", i%4), insts[i], statemachine.PowerRunning); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i, inst := range insts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			src, dst := fmt.Sprint("h", i%4), fmt.Sprint("h", (i+1)%4)
			mig := Migration(fmt.Sprint("m", i), inst.UUID)
			info, err := d.MigrateDiskAndPowerOff(ctx, compute.MigrateDiskRequest{Instance: inst, Migration: mig,
				Host: src, DestHost: dst, NewFlavor: inst.Flavor})
			if err == nil {
				err = d.FinishMigration(ctx, compute.FinishMigrationRequest{Instance: inst, Migration: mig, Host: dst,
					DiskInfo: info, NewFlavor: inst.Flavor, PowerOn: true})
			}
			if err == nil {
				err = d.ConfirmMigration(ctx, compute.ConfirmMigrationRequest{Instance: inst, Migration: mig, Host: src})
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	states, err := d.HostStates(ctx, []string{"h0", "h1", "h2", "h3"})
	if err != nil {
		t.Fatal(err)
	}
	for _, hs := range states {
		if hs.NumInstances != n/4 || len(d.Orphans(hs.Host)) != 0 {
			t.Errorf("%s: %d instances (want %d), orphans %v", hs.Host, hs.NumInstances, n/4, d.Orphans(hs.Host))
		}
	}
	if got := d.CallCount(MethodMigrateDiskAndPowerOff); got != n {
		t.Errorf("%d migrate calls logged, want %d", got, n)
	}
}

// TestFakeDriverFaultAtStart fails every method at its start: it returns
// the injected error and changes nothing; the call is logged.
func TestFakeDriverFaultAtStart(t *testing.T) {
	ctx := context.Background()
	calls := map[Method]func(p *pool) error{
		MethodGetInfo: func(p *pool) error {
			_, err := p.d.GetInfo(ctx, compute.InstanceRequest{Instance: p.inst, Host: "host-a"})
			return err
		},
		MethodGetAvailableResource: func(p *pool) error {
			_, err := p.d.GetAvailableResource(ctx, compute.HostRequest{Host: "host-a"})
			return err
		},
		MethodMigrateDiskAndPowerOff: func(p *pool) error {
			_, err := p.d.MigrateDiskAndPowerOff(ctx, p.migrateReq())
			return err
		},
		MethodFinishMigration: func(p *pool) error { return p.d.FinishMigration(ctx, p.finishReq(compute.DiskInfo{})) },
		MethodConfirmMigration: func(p *pool) error {
			return p.d.ConfirmMigration(ctx, compute.ConfirmMigrationRequest{Instance: p.inst, Migration: p.mig, Host: "host-a"})
		},
		MethodFinishRevertMigration: func(p *pool) error {
			return p.d.FinishRevertMigration(ctx, compute.FinishRevertRequest{Instance: p.inst, Migration: p.mig, Host: "host-a"})
		},
		MethodDestroy: func(p *pool) error {
			return p.d.Destroy(ctx, compute.DestroyRequest{Instance: p.inst, Host: "host-a", DestroyDisks: true})
		},
		MethodPowerOff: func(p *pool) error {
			return p.d.PowerOff(ctx, compute.PowerOffRequest{Instance: p.inst, Host: "host-a"})
		},
		MethodPowerOn: func(p *pool) error {
			return p.d.PowerOn(ctx, compute.InstanceRequest{Instance: p.inst, Host: "host-a"})
		},
		MethodRescue: func(p *pool) error {
			return p.d.Rescue(ctx, compute.RescueRequest{Instance: p.inst, Host: "host-a", ImageRef: "img"})
		},
		MethodUnrescue: func(p *pool) error {
			return p.d.Unrescue(ctx, compute.InstanceRequest{Instance: p.inst, Host: "host-a"})
		},
		MethodSnapshot: func(p *pool) error {
			return p.d.Snapshot(ctx, compute.SnapshotRequest{Instance: p.inst, Host: "host-a", ImageID: "s"})
		},
		MethodSpawn: func(p *pool) error {
			return p.d.Spawn(ctx, compute.SpawnRequest{Instance: Instance("i2"), Host: "host-b", ImageRef: "s", Flavor: p.up})
		},
		MethodCleanupMigration: func(p *pool) error {
			return p.d.CleanupMigration(ctx, compute.CleanupMigrationRequest{Migration: p.mig, Host: "host-a"})
		},
		MethodDeleteImage: func(p *pool) error {
			return p.d.DeleteImage(ctx, compute.DeleteImageRequest{Host: "host-a", ImageID: "img"})
		},
	}
	for m, call := range calls {
		t.Run(string(m), func(t *testing.T) {
			p := newPool(t)
			before := p.world()
			p.d.InjectFault(Fault{Method: m, Nth: 1})
			if err := call(p); !errors.Is(err, ErrInjected) {
				t.Fatalf("error %v, want the injected one", err)
			}
			if d := cmp.Diff(before, p.world()); d != "" {
				t.Fatalf("a call failed at its start changed the pool:\n%s", d)
			}
			if log := p.d.Calls(); len(log) != 1 || log[0].Method != m {
				t.Fatalf("call log %+v", log)
			}
		})
	}
	if len(calls) != 15 {
		t.Fatalf("%d methods tried, want every method of compute.Driver but Capabilities, and DeleteImage", len(calls))
	}
}

// TestFakeDriverStepSweep fails each step MethodSteps names, once: the call
// returns the injected error, and the same call again succeeds.
func TestFakeDriverStepSweep(t *testing.T) {
	ctx := context.Background()
	calls := map[Method]func(p *pool, info compute.DiskInfo) error{
		MethodMigrateDiskAndPowerOff: func(p *pool, _ compute.DiskInfo) error {
			_, err := p.d.MigrateDiskAndPowerOff(ctx, p.migrateReq())
			return err
		},
		MethodFinishMigration: func(p *pool, info compute.DiskInfo) error { return p.d.FinishMigration(ctx, p.finishReq(info)) },
		MethodFinishRevertMigration: func(p *pool, _ compute.DiskInfo) error {
			return p.d.FinishRevertMigration(ctx, compute.FinishRevertRequest{Instance: p.inst, Migration: p.mig, Host: "host-a", PowerOn: true})
		},
		MethodRescue: func(p *pool, _ compute.DiskInfo) error {
			return p.d.Rescue(ctx, compute.RescueRequest{Instance: p.inst, Host: "host-a", ImageRef: "img"})
		},
	}
	for m, call := range calls {
		steps := MethodSteps(m)
		if len(steps) == 0 {
			t.Fatalf("%s: no steps", m)
		}
		for _, step := range steps {
			t.Run(string(m)+"/"+step, func(t *testing.T) {
				p := newPool(t)
				var info compute.DiskInfo
				if m != MethodMigrateDiskAndPowerOff && m != MethodRescue {
					var err error
					if info, err = p.d.MigrateDiskAndPowerOff(ctx, p.migrateReq()); err != nil {
						t.Fatal(err)
					}
				}
				p.d.InjectFault(Fault{Method: m, Step: step, Nth: 1})
				if err := call(p, info); !errors.Is(err, ErrInjected) {
					t.Fatalf("error %v, want the injected one", err)
				}
				if err := call(p, info); err != nil {
					t.Fatalf("again: %v", err)
				}
			})
		}
	}
	if MethodSteps(MethodPowerOn) != nil {
		t.Error("PowerOn has no steps")
	}
}
