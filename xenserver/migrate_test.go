package xenserver

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/statemachine"
)

var (
	small = &compute.Flavor{ID: "small", MemoryMB: 256, VCPUs: 1, RootGB: 1}
	large = &compute.Flavor{ID: "large", MemoryMB: 512, VCPUs: 2, RootGB: 2}
)

// resizeRun is one resize of a guest from compute1 to dest, with guest
// writes while it runs.
type resizeRun struct {
	e     *testEnv
	g     *guest
	dest  string
	mig   *compute.Migration
	info  compute.DiskInfo
	steps []compute.Progress
}

// migrate runs MigrateDiskAndPowerOff; the guest writes after the
// snapshot and after the base was sent, so only the deltas carry them.
func (r *resizeRun) migrate(t *testing.T) {
	t.Helper()
	write := func(step string, off int64) {
		if !r.steps[len(r.steps)-1].PoweredOff && r.steps[len(r.steps)-1].Step == step {
			r.e.write(r.g, 0, off, pattern("written during "+step, 3<<20), false)
		}
	}
	info, err := r.e.d.MigrateDiskAndPowerOff(context.Background(), compute.MigrateDiskRequest{
		Instance: r.g.inst, Migration: r.mig, Host: r.g.host, DestHost: r.dest, NewFlavor: r.mig.NewFlavor,
		CleanShutdown: true,
		Progress: func(p compute.Progress) {
			r.steps = append(r.steps, p)
			write("snapshot", 1<<20)
			write("send-base", 4<<20)
		},
	})
	if err != nil {
		t.Fatalf("MigrateDiskAndPowerOff: %v", err)
	}
	r.info = info
}

func (r *resizeRun) finish(t *testing.T, powerOn bool) {
	t.Helper()
	err := r.e.d.FinishMigration(context.Background(), compute.FinishMigrationRequest{Instance: r.g.inst,
		Migration: r.mig, Host: r.dest, DiskInfo: r.info, NewFlavor: r.mig.NewFlavor, ResizeInstance: true, PowerOn: powerOn})
	if err != nil {
		t.Fatalf("FinishMigration: %v", err)
	}
}

func newResize(t *testing.T, l layout, dest string, running bool) *resizeRun {
	e := newEnv(t, l, envOptions{})
	g := e.addGuest("compute1", guestSpec{running: running, flavor: small, disks: []int64{8 << 20, 4 << 20}})
	return &resizeRun{e: e, g: g, dest: dest, mig: newMigration(g, dest, large)}
}

func TestResizeUpConfirm(t *testing.T) {
	for _, l := range layouts {
		t.Run(string(l), func(t *testing.T) {
			r := newResize(t, l, "compute2", true)
			r.migrate(t)
			e, ctx := r.e, context.Background()
			if r.info.Transport != TransportXAPI || len(r.info.Disks) != 2 || r.info.BytesSentRunning == 0 ||
				r.info.BytesSent <= r.info.BytesSentRunning {
				t.Fatalf("DiskInfo = %+v", r.info)
			}
			checkSteps(t, r.steps)
			// The source is kept as -orig, halted, claiming nothing.
			src := e.vms("compute1")
			orig, ok := src[r.g.inst.Name+origSuffix]
			if !ok || orig.Rec.PowerState != "Halted" || orig.Rec.OtherConfig[KeyNovaUUID] != "" ||
				orig.Rec.OtherConfig[KeyOrigOf] != r.g.inst.UUID {
				t.Fatalf("source VMs after the move: %+v", src)
			}
			for i, d := range r.info.Disks {
				e.checkDisk(r.dest, d.VDI, r.g.disks[i])
			}
			r.finish(t, true)
			info, err := e.d.GetInfo(ctx, compute.InstanceRequest{Instance: r.g.inst, Host: r.dest})
			if err != nil {
				t.Fatal(err)
			}
			if info != (compute.InstanceInfo{PowerState: statemachine.PowerRunning, MemoryMB: 512, VCPUs: 2}) {
				t.Fatalf("destination GetInfo = %+v", info)
			}
			checkRootSize(t, e, r.dest, r.info.Disks[0].VDI, 2<<30)
			e.checkVIFs(r.g, r.dest)
			for i, d := range r.info.Disks {
				e.checkDisk(r.dest, d.VDI, r.g.disks[i])
			}
			for i := 0; i < 2; i++ {
				if err := e.d.ConfirmMigration(ctx, compute.ConfirmMigrationRequest{Instance: r.g.inst, Migration: r.mig, Host: "compute1"}); err != nil {
					t.Fatalf("ConfirmMigration %d: %v", i, err)
				}
			}
			if _, ok := e.vms("compute1")[r.g.inst.Name+origSuffix]; ok {
				t.Fatal("the -orig VM survived the confirm")
			}
			for _, vdi := range r.g.vm.VDIs {
				if _, err := e.poolOf["compute1"].Record(vdi); err == nil {
					t.Errorf("source VDI %s survived the confirm", vdi)
				}
			}
			// The destination is untouched.
			for i, d := range r.info.Disks {
				e.checkDisk(r.dest, d.VDI, r.g.disks[i])
			}
		})
	}
}

func checkSteps(t *testing.T, steps []compute.Progress) {
	t.Helper()
	var names []string
	off := false
	for _, p := range steps {
		names = append(names, p.Step)
		if off && !p.PoweredOff {
			t.Errorf("progress went from powered off back to running: %+v", steps)
		}
		off = p.PoweredOff
	}
	got := strings.Join(names, ",")
	if !strings.HasPrefix(got, "snapshot,send-base,") || !strings.HasSuffix(got, "power-off,send-delta,finish") {
		t.Errorf("progress steps %s", got)
	}
}

func checkRootSize(t *testing.T, e *testEnv, host, uuid string, want int64) {
	t.Helper()
	tg, err := e.d.pool(context.Background(), host)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := tg.Client.VDI.GetByUUID(context.Background(), uuid)
	if err != nil {
		t.Fatal(err)
	}
	size, err := tg.Client.VDI.GetVirtualSize(context.Background(), ref)
	if err != nil || size != want {
		t.Fatalf("VDI %s: virtual size %d (%v), want %d", uuid, size, err, want)
	}
}

func TestResizeUpRevert(t *testing.T) {
	for _, l := range layouts {
		t.Run(string(l), func(t *testing.T) {
			r := newResize(t, l, "compute2", true)
			r.migrate(t)
			r.finish(t, true)
			e, ctx := r.e, context.Background()
			for i := 0; i < 2; i++ {
				err := e.d.Destroy(ctx, compute.DestroyRequest{Instance: r.g.inst, Host: r.dest, DestroyDisks: true, Migration: r.mig})
				if err != nil {
					t.Fatalf("Destroy %d: %v", i, err)
				}
			}
			if _, err := e.d.GetInfo(ctx, compute.InstanceRequest{Instance: r.g.inst, Host: r.dest}); !errors.Is(err, compute.ErrNotFound) {
				t.Fatalf("destination VM after Destroy: %v", err)
			}
			for i := 0; i < 2; i++ {
				err := e.d.FinishRevertMigration(ctx, compute.FinishRevertRequest{Instance: r.g.inst, Migration: r.mig, Host: "compute1", PowerOn: true})
				if err != nil {
					t.Fatalf("FinishRevertMigration %d: %v", i, err)
				}
			}
			info, err := e.d.GetInfo(ctx, compute.InstanceRequest{Instance: r.g.inst, Host: "compute1"})
			if err != nil || info.PowerState != statemachine.PowerRunning || info.MemoryMB != 256 {
				t.Fatalf("source after revert: %+v, %v", info, err)
			}
			vms := e.vms("compute1")
			if _, ok := vms[r.g.inst.Name]; !ok {
				t.Fatalf("the source VM is not named %s again: %v", r.g.inst.Name, vms)
			}
			for i, vdi := range r.g.vm.VDIs {
				rec, err := e.poolOf["compute1"].Record(vdi)
				if err != nil {
					t.Fatal(err)
				}
				e.checkDisk("compute1", rec["uuid"].(string), r.g.disks[i])
			}
		})
	}
}

func TestColdMigrateHaltedGuest(t *testing.T) {
	for _, l := range layouts {
		t.Run(string(l), func(t *testing.T) {
			r := newResize(t, l, "compute2", false)
			r.mig.NewFlavor = small
			r.migrate(t)
			if r.info.BytesSentRunning != 0 || r.info.BytesSent == 0 {
				t.Fatalf("DiskInfo = %+v", r.info)
			}
			r.finish(t, false)
			info, err := r.e.d.GetInfo(context.Background(), compute.InstanceRequest{Instance: r.g.inst, Host: r.dest})
			if err != nil || info.PowerState != statemachine.PowerShutdown {
				t.Fatalf("destination: %+v, %v", info, err)
			}
			for i, d := range r.info.Disks {
				r.e.checkDisk(r.dest, d.VDI, r.g.disks[i])
			}
		})
	}
}

// While the guest writes more than the threshold between snapshots, the
// move sends more deltas with the guest running, at most MaxPreCopyRounds.
func TestPreCopyRounds(t *testing.T) {
	tests := []struct {
		name       string
		rounds     int
		writes     int // rounds in which the guest writes 3 MiB
		wantDeltas int // pre-copy deltas sent while running
	}{
		{"quiet guest", 3, 0, 0},
		{"busy guest", 3, 2, 2},
		{"bounded", 1, 3, 1},
		{"none", -1, 2, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, standalone, envOptions{config: func(c *Config) {
				c.Migrate.PreCopyThreshold = 1 << 20
				c.Migrate.MaxPreCopyRounds = tt.rounds
			}})
			g := e.addGuest("compute1", guestSpec{running: true, flavor: small})
			mig := newMigration(g, "compute2", large)
			writes, deltas := 0, 0
			info, err := e.d.MigrateDiskAndPowerOff(context.Background(), compute.MigrateDiskRequest{
				Instance: g.inst, Migration: mig, Host: "compute1", DestHost: "compute2", NewFlavor: large,
				Progress: func(p compute.Progress) {
					if p.PoweredOff || (p.Step != "send-base" && p.Step != "send-delta") {
						return
					}
					if p.Step == "send-delta" {
						deltas++
					}
					if writes < tt.writes {
						writes++
						e.write(g, 0, int64(writes)<<20, pattern(fmt.Sprint("round ", writes), 3<<20), false)
					}
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			if deltas != tt.wantDeltas {
				t.Errorf("%d pre-copy deltas, want %d", deltas, tt.wantDeltas)
			}
			e.checkDisk("compute2", info.Disks[0].VDI, g.disks[0])
			// Only the migration's copy is left tagged: its snapshots are gone.
			tg, _ := e.d.pool(context.Background(), "compute1")
			if snaps, _ := taggedVDIs(context.Background(), tg.Client, "", mig.UUID, RoleSnapshot); len(snaps) != 0 {
				t.Errorf("%d snapshots left on the source", len(snaps))
			}
		})
	}
}

func TestResizeDown(t *testing.T) {
	base := compute.Flavor{ID: "m", MemoryMB: 1024, VCPUs: 4, RootGB: 2, EphemeralGB: 1}
	tests := []struct {
		name  string
		edit  func(*compute.Flavor)
		field string // "" when the resize goes ahead
	}{
		{"memory and vcpus shrink", func(f *compute.Flavor) { f.MemoryMB, f.VCPUs = 256, 1 }, ""},
		{"root shrinks", func(f *compute.Flavor) { f.RootGB = 1 }, "root_gb"},
		{"root to zero", func(f *compute.Flavor) { f.RootGB = 0 }, "root_gb"},
		{"ephemeral shrinks", func(f *compute.Flavor) { f.EphemeralGB = 0 }, "ephemeral_gb"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, standalone, envOptions{})
			old := base
			g := e.addGuest("compute1", guestSpec{running: true, flavor: &old})
			nf := base
			nf.ID = "n"
			tt.edit(&nf)
			mig := newMigration(g, "compute2", &nf)
			before := e.poolOf["compute1"].CallCount("VM.set_other_config")
			info, err := e.d.MigrateDiskAndPowerOff(context.Background(), compute.MigrateDiskRequest{
				Instance: g.inst, Migration: mig, Host: "compute1", DestHost: "compute2", NewFlavor: &nf})
			if tt.field != "" {
				var rb *compute.InstanceFaultRollback
				var rr *ResizeRefusedError
				if !errors.As(err, &rb) || !errors.As(err, &rr) || rr.Field != tt.field {
					t.Fatalf("MigrateDiskAndPowerOff: %v, want a rollback refusing %s", err, tt.field)
				}
				// Nothing was touched: not even a session was opened.
				for _, p := range e.pools {
					if n := len(p.Calls()); n != 0 {
						t.Fatalf("%d calls made before the refusal:\n%s", n, p.CallsSummary())
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if e.poolOf["compute1"].CallCount("VM.set_other_config") == before {
				t.Fatal("the move did not run")
			}
			err = e.d.FinishMigration(context.Background(), compute.FinishMigrationRequest{Instance: g.inst, Migration: mig,
				Host: "compute2", DiskInfo: info, NewFlavor: &nf, PowerOn: true})
			if err != nil {
				t.Fatal(err)
			}
			got, err := e.d.GetInfo(context.Background(), compute.InstanceRequest{Instance: g.inst, Host: "compute2"})
			if err != nil || got.MemoryMB != 256 || got.VCPUs != 1 || got.PowerState != statemachine.PowerRunning {
				t.Fatalf("destination: %+v, %v", got, err)
			}
			e.checkDisk("compute2", info.Disks[0].VDI, g.disks[0])
		})
	}
}

// On a shared SR nothing moves: the guest is powered off and its disks
// cloned, so a revert finds the original untouched.
func TestSharedSR(t *testing.T) {
	for _, revert := range []bool{false, true} {
		t.Run(fmt.Sprint("revert=", revert), func(t *testing.T) {
			e := newEnv(t, onePool, envOptions{sharedSR: true})
			g := e.addGuest("compute1", guestSpec{running: true, flavor: small, disks: []int64{8 << 20, 4 << 20}})
			r := &resizeRun{e: e, g: g, dest: "compute3", mig: newMigration(g, "compute3", large)}
			r.migrate(t)
			p := e.poolOf["compute1"]
			if r.info.Transport != TransportShared || r.info.BytesSent != 0 ||
				p.CallCount("get_export_raw_vdi")+p.CallCount("put_import_raw_vdi") != 0 {
				t.Fatalf("DiskInfo %+v; %d exports", r.info, p.CallCount("get_export_raw_vdi"))
			}
			r.finish(t, true)
			for i, d := range r.info.Disks {
				e.checkDisk("compute3", d.VDI, g.disks[i])
			}
			// The guest writes on the destination; the original must not see it.
			dst := e.vms("compute3")[g.inst.Name]
			if err := p.WriteGuestDisk(string(dst.Ref), "0", 0, pattern("after the move", 4096)); err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if !revert {
				if err := e.d.ConfirmMigration(ctx, compute.ConfirmMigrationRequest{Instance: g.inst, Migration: r.mig, Host: "compute1"}); err != nil {
					t.Fatal(err)
				}
				want := append([]byte(nil), g.disks[0]...)
				copy(want, pattern("after the move", 4096))
				e.checkDisk("compute3", r.info.Disks[0].VDI, want)
				return
			}
			if err := e.d.Destroy(ctx, compute.DestroyRequest{Instance: g.inst, Host: "compute3", DestroyDisks: true, Migration: r.mig}); err != nil {
				t.Fatal(err)
			}
			if err := e.d.FinishRevertMigration(ctx, compute.FinishRevertRequest{Instance: g.inst, Migration: r.mig, Host: "compute1", PowerOn: true}); err != nil {
				t.Fatal(err)
			}
			checkSourceIntact(t, e, g, true)
			checkNoLeftovers(t, e, g, r.mig)
		})
	}
}

// Each step called twice in a row ends as one call: the same DiskInfo,
// one destination VM.
func TestMigrateTwice(t *testing.T) {
	for _, l := range layouts {
		t.Run(string(l), func(t *testing.T) {
			r := newResize(t, l, "compute2", true)
			r.migrate(t)
			first := r.info
			r.migrate(t)
			if !reflect.DeepEqual(first, r.info) {
				t.Fatalf("second call returned %+v, first %+v", r.info, first)
			}
			r.finish(t, true)
			r.finish(t, true)
			n := 0
			for _, vm := range r.e.vms(r.dest) {
				if vm.Rec.OtherConfig[KeyNovaUUID] == r.g.inst.UUID {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("%d VMs claim the instance", n)
			}
			checkFinished(t, &sweepState{r: r})
		})
	}
}

// With a bandwidth limit a disk's stream takes at least its size (less
// one burst) over the rate.
func TestBandwidthLimit(t *testing.T) {
	const rate = 1 << 20
	e := newEnv(t, standalone, envOptions{config: func(c *Config) { c.Transfer.BandwidthLimit = rate }})
	g := e.addGuest("compute1", guestSpec{flavor: small, disks: []int64{2 << 20}})
	start := time.Now()
	info, err := e.d.MigrateDiskAndPowerOff(context.Background(), compute.MigrateDiskRequest{Instance: g.inst,
		Migration: newMigration(g, "compute2", small), Host: "compute1", DestHost: "compute2", NewFlavor: small})
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	if min := time.Duration(float64(info.BytesSent-rate) / rate * float64(time.Second)); took < min {
		t.Fatalf("%d bytes in %v, faster than %d B/s allows (%v)", info.BytesSent, took, rate, min)
	}
	e.checkDisk("compute2", info.Disks[0].VDI, g.disks[0])
}
