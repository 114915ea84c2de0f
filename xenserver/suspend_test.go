package xenserver

import (
	"context"
	"errors"
	"testing"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/statemachine"
	"github.com/xenflow/xenflow/xenapi"
)

// newSuspendRun is a running guest with two disks on compute1, to move
// suspended to compute2 with its flavor unchanged.
func newSuspendRun(t *testing.T, l layout) *resizeRun {
	return newSuspendRunIn(newEnv(t, l, envOptions{}))
}

func newSuspendRunIn(e *testEnv) *resizeRun {
	g := e.addGuest("compute1", guestSpec{running: true, flavor: small, disks: []int64{8 << 20, 4 << 20}})
	mig := newMigration(g, "compute2", small)
	mig.Type = statemachine.MigrationTypeMigration
	return &resizeRun{e: e, g: g, dest: "compute2", mig: mig}
}

func setupSuspendGuest(t *testing.T, l layout) *sweepState {
	return &sweepState{r: newSuspendRun(t, l)}
}

func setupSuspendMigrated(t *testing.T, l layout) *sweepState {
	s := setupSuspendGuest(t, l)
	if err := migrateSuspendedOnce(context.Background(), s); err != nil {
		t.Fatalf("MigrateDiskAndPowerOff (suspend): %v", err)
	}
	return s
}

func setupSuspendFinished(t *testing.T, l layout) *sweepState {
	s := setupSuspendMigrated(t, l)
	if err := finishSuspendedOnce(context.Background(), s); err != nil {
		t.Fatalf("FinishMigration (suspended): %v", err)
	}
	return s
}

func migrateSuspendedOnce(ctx context.Context, s *sweepState) error {
	r := s.r
	info, err := r.e.d.MigrateDiskAndPowerOff(ctx, compute.MigrateDiskRequest{Instance: r.g.inst, Migration: r.mig,
		Host: r.g.host, DestHost: r.dest, NewFlavor: r.mig.NewFlavor, Suspend: true})
	if err == nil {
		r.info = info
	}
	return err
}

func finishSuspendedOnce(ctx context.Context, s *sweepState) error {
	r := s.r
	return r.e.d.FinishMigration(ctx, compute.FinishMigrationRequest{Instance: r.g.inst, Migration: r.mig,
		Host: r.dest, DiskInfo: r.info, NewFlavor: r.mig.NewFlavor, PowerOn: true})
}

// checkSuspendMigrated: the source kept as a suspended -orig claiming
// nothing, the copies hold the guest's data.
func checkSuspendMigrated(t *testing.T, s *sweepState) {
	t.Helper()
	r := s.r
	vms := r.e.vms(r.g.host)
	orig, ok := vms[r.g.inst.Name+origSuffix]
	if !ok || orig.Rec.OtherConfig[KeyOrigOf] != r.g.inst.UUID || orig.Rec.OtherConfig[KeyNovaUUID] != "" ||
		orig.Rec.PowerState != xenapi.VMPowerStateSuspended {
		t.Fatalf("no suspended -orig VM after the move: %v", names(vms))
	}
	if r.info.SuspendVDI == "" || len(r.info.Disks) != len(r.g.disks) {
		t.Fatalf("DiskInfo %+v", r.info)
	}
	for i, d := range r.info.Disks {
		r.e.checkDisk(r.dest, d.VDI, r.g.disks[i])
	}
	checkSourceData(t, r.e, r.g)
}

// checkSuspendFinished: the guest runs on the destination host with the
// copies as its disks and the source's network interfaces.
func checkSuspendFinished(t *testing.T, s *sweepState) {
	t.Helper()
	r := s.r
	ctx := context.Background()
	info, err := r.e.d.GetInfo(ctx, compute.InstanceRequest{Instance: r.g.inst, Host: r.dest})
	if err != nil || info.PowerState != statemachine.PowerRunning || info.MemoryMB != r.g.inst.Flavor.MemoryMB {
		t.Fatalf("destination after finish: %+v, %v", info, err)
	}
	tg, err := r.e.d.pool(ctx, r.dest)
	if err != nil {
		t.Fatal(err)
	}
	vm, err := r.e.d.instanceVM(ctx, tg, r.g.inst)
	if err != nil {
		t.Fatal(err)
	}
	if vm.Rec.ResidentOn != tg.Host || vm.Rec.NameLabel != r.g.inst.Name || vm.Rec.OtherConfig[KeyMigration] != r.mig.UUID ||
		vm.Rec.OtherConfig[KeyPowerState] != "" || vm.Rec.OtherConfig[KeyOrigOf] != "" {
		t.Fatalf("destination VM %q on %s, other_config %v", vm.Rec.NameLabel, vm.Rec.ResidentOn, vm.Rec.OtherConfig)
	}
	disks, err := vmDisks(ctx, tg.Client, vm)
	if err != nil || len(disks) != len(r.g.disks) {
		t.Fatalf("destination disks %+v, %v", disks, err)
	}
	for i, d := range disks {
		if d.VDIRec.UUID != r.info.Disks[i].VDI {
			t.Fatalf("disk %d is %s, not the copy %s", i, d.VDIRec.UUID, r.info.Disks[i].VDI)
		}
		r.e.checkDisk(r.dest, d.VDIRec.UUID, r.g.disks[i])
	}
	r.e.checkVIFs(r.g, r.dest)
}

func checkSuspendReverted(t *testing.T, s *sweepState) {
	t.Helper()
	checkSourceIntact(t, s.e(), s.r.g, true)
	checkNoLeftovers(t, s.e(), s.r.g, s.r.mig)
	if s.e().poolOf[s.r.dest] != s.e().poolOf[s.r.g.host] {
		if vms := s.e().vms(s.r.dest); len(vms) != 0 {
			t.Fatalf("VMs left on the destination: %v", names(vms))
		}
	}
}

func confirmSuspendedOnce(ctx context.Context, s *sweepState) error {
	r := s.r
	return r.e.d.ConfirmMigration(ctx, compute.ConfirmMigrationRequest{Instance: r.g.inst, Migration: r.mig, Host: r.g.host})
}

func revertSuspendedOnce(ctx context.Context, s *sweepState) error {
	r := s.r
	err := r.e.d.Destroy(ctx, compute.DestroyRequest{Instance: r.g.inst, Host: r.dest, DestroyDisks: true, Migration: r.mig})
	if err != nil {
		return err
	}
	return r.e.d.FinishRevertMigration(ctx, compute.FinishRevertRequest{Instance: r.g.inst, Migration: r.mig, Host: r.g.host, PowerOn: true})
}

func checkSuspendConfirmed(t *testing.T, s *sweepState) {
	t.Helper()
	checkSuspendFinished(t, s)
	r := s.r
	if vms := r.e.vms(r.g.host); vms[r.g.inst.Name+origSuffix].Ref != "" {
		t.Fatalf("VMs after confirm: %v", names(vms))
	}
	for _, vdi := range r.g.vm.VDIs {
		if _, err := r.e.poolOf[r.g.host].Record(vdi); err == nil {
			t.Fatalf("source disk %s survived the confirm", vdi)
		}
	}
}

// suspendScenarios are the suspended move's methods, for the sweeps.
var suspendScenarios = []scenario{
	{
		name: "Suspended/MigrateDiskAndPowerOff", setup: setupSuspendGuest, run: migrateSuspendedOnce,
		failed: func(t *testing.T, s *sweepState, err error) {
			if errors.As(err, new(*compute.InstanceFaultRollback)) {
				checkSourceIntact(t, s.e(), s.r.g, true)
				return
			}
			checkSourceData(t, s.e(), s.r.g)
		},
		done: checkSuspendMigrated,
	},
	{
		name: "Suspended/FinishMigration", setup: setupSuspendMigrated, run: finishSuspendedOnce,
		failed: func(t *testing.T, s *sweepState, err error) { checkSuspendMigrated(t, s) },
		done:   checkSuspendFinished,
	},
	{
		name: "Suspended/ConfirmMigration", setup: setupSuspendFinished, run: confirmSuspendedOnce,
		failed: func(t *testing.T, s *sweepState, err error) { checkSuspendFinished(t, s) },
		done:   checkSuspendConfirmed,
	},
	{
		name: "Suspended/Destroy+FinishRevertMigration", setup: setupSuspendFinished, run: revertSuspendedOnce,
		failed: func(t *testing.T, s *sweepState, err error) { checkSourceData(t, s.e(), s.r.g) },
		done:   checkSuspendReverted,
	},
}

// TestSuspendedMove moves a running guest suspended, within one pool and
// across two, over both transports, each method called twice: the guest is resumed (not booted)
// on the destination with its data and network, and the confirm removes
// the source.
func TestSuspendedMove(t *testing.T) {
	envs := map[string]func(t *testing.T, l layout) *testEnv{
		TransportXAPI: func(t *testing.T, l layout) *testEnv { return newEnv(t, l, envOptions{}) },
		TransportDom0: func(t *testing.T, l layout) *testEnv { return dom0Env(t, l, false) },
	}
	for _, tr := range []string{TransportXAPI, TransportDom0} {
		for _, l := range layouts {
			t.Run(tr+"/"+string(l), func(t *testing.T) { suspendedMove(t, &sweepState{r: newSuspendRunIn(envs[tr](t, l))}, tr) })
		}
	}
}

// suspendedMove moves, finishes and confirms, each twice.
func suspendedMove(t *testing.T, s *sweepState, transport string) {
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		if err := migrateSuspendedOnce(ctx, s); err != nil {
			t.Fatalf("MigrateDiskAndPowerOff #%d: %v", i+1, err)
		}
	}
	checkSuspendMigrated(t, s)
	if s.r.info.Transport != transport {
		t.Fatalf("moved over %q, want %q", s.r.info.Transport, transport)
	}
	dst := s.e().poolOf[s.r.dest]
	starts := dst.CallCount("VM.start") + dst.CallCount("VM.start_on")
	for i := 0; i < 2; i++ {
		if err := finishSuspendedOnce(ctx, s); err != nil {
			t.Fatalf("FinishMigration #%d: %v", i+1, err)
		}
	}
	checkSuspendFinished(t, s)
	if n := dst.CallCount("VM.start") + dst.CallCount("VM.start_on"); n != starts || dst.CallCount("VM.resume_on") == 0 {
		t.Fatalf("the destination guest was booted (%d starts) or never resumed", n-starts)
	}
	checkSourceData(t, s.e(), s.r.g) // kept until the confirm
	for i := 0; i < 2; i++ {
		if err := confirmSuspendedOnce(ctx, s); err != nil {
			t.Fatalf("ConfirmMigration #%d: %v", i+1, err)
		}
	}
	checkSuspendConfirmed(t, s)
}

// TestSuspendedMoveRevert reverts a finished suspended move, and one not
// yet finished: the source guest resumes where it was.
func TestSuspendedMoveRevert(t *testing.T) {
	for _, l := range layouts {
		for _, finished := range []bool{true, false} {
			name := string(l) + "/finished"
			setup := setupSuspendFinished
			if !finished {
				name, setup = string(l)+"/not-finished", setupSuspendMigrated
			}
			t.Run(name, func(t *testing.T) {
				s := setup(t, l)
				for i := 0; i < 2; i++ {
					if err := revertSuspendedOnce(context.Background(), s); err != nil {
						t.Fatalf("revert #%d: %v", i+1, err)
					}
				}
				checkSuspendReverted(t, s)
			})
		}
	}
}

func TestSuspendedMoveRefusals(t *testing.T) {
	bigger := &compute.Flavor{ID: "big", MemoryMB: 1024, VCPUs: 1}
	tests := []struct {
		name    string
		running bool
		dest    string
		flavor  func(g *guest) *compute.Flavor
	}{
		{"memory changes", true, "compute2", func(*guest) *compute.Flavor { return bigger }},
		{"vCPUs change", true, "compute2", func(g *guest) *compute.Flavor {
			f := *g.inst.Flavor
			f.VCPUs++
			return &f
		}},
		{"halted guest", false, "compute2", func(g *guest) *compute.Flavor { return g.inst.Flavor }},
	}
	for _, tc := range tests {
		for _, l := range layouts {
			t.Run(tc.name+"/"+string(l), func(t *testing.T) {
				e := newEnv(t, l, envOptions{})
				g := e.addGuest("compute1", guestSpec{running: tc.running})
				f := tc.flavor(g)
				mig := newMigration(g, tc.dest, f)
				_, err := e.d.MigrateDiskAndPowerOff(context.Background(), compute.MigrateDiskRequest{Instance: g.inst,
					Migration: mig, Host: g.host, DestHost: tc.dest, NewFlavor: f, Suspend: true})
				var sr *SuspendRefusedError
				if !errors.As(err, &sr) || !errors.As(err, new(*compute.InstanceFaultRollback)) {
					t.Fatalf("got %v", err)
				}
				checkSourceIntact(t, e, g, tc.running)
			})
		}
	}
}

// TestSuspendedMoveRollback: a copy that fails resumes the guest where it
// was and leaves no copy.
func TestSuspendedMoveRollback(t *testing.T) {
	for _, method := range []string{"VDI.create", "VDI.set_other_config", "VM.set_other_config", "VM.set_name_label"} {
		for _, l := range layouts {
			t.Run(method+"/"+string(l), func(t *testing.T) {
				s := setupSuspendGuest(t, l)
				p := s.e().poolOf["compute2"]
				if method == "VM.set_other_config" || method == "VM.set_name_label" {
					p = s.e().poolOf["compute1"] // keeping the -orig, after the copies
				}
				nth := 2
				if method == "VM.set_name_label" {
					nth = 1
				}
				p.FailNth(method, p.CallCount(method)+nth, xenapi.CodeInternalError, "injected")
				err := migrateSuspendedOnce(context.Background(), s)
				if !errors.As(err, new(*compute.InstanceFaultRollback)) {
					t.Fatalf("got %v", err)
				}
				checkSourceIntact(t, s.e(), s.r.g, true)
				checkNoLeftovers(t, s.e(), s.r.g, s.r.mig)
			})
		}
	}
}
