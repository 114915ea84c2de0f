package xenserver

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/dom0"
	"github.com/xenflow/xenflow/dom0/dom0test"
	"github.com/xenflow/xenflow/xenapi"
)

// dom0Scenario is a driver method swept over the dom0 operations it makes
// with the dom0 transport.
type dom0Scenario struct {
	scenario
	rounds bool // pre-copy rounds: every write asks for another one
	// stage is how far setup takes the resize: 0 the guest only, 1
	// migrated, 2 finished.
	stage int
	// leftovers plants the staging directories a crashed move leaves.
	leftovers bool
}

// dom0Scenarios are the steps of a resize up with the dom0 transport, and
// the cleanup of a crashed one.
func dom0Scenarios() []dom0Scenario {
	byName := map[string]scenario{}
	for _, sc := range scenarios {
		byName[sc.name] = sc
	}
	migrate := byName["MigrateDiskAndPowerOff"]
	migrate.run = migrateWriting
	rounds := migrate
	rounds.name += "/pre-copy-rounds"
	return []dom0Scenario{
		{scenario: migrate},
		{scenario: rounds, rounds: true},
		{scenario: byName["FinishMigration"], stage: 1},
		{scenario: byName["ConfirmMigration"], stage: 2},
		{scenario: byName["Destroy+FinishRevertMigration"], stage: 2},
		{scenario: scenario{name: "CleanupMigration", run: cleanupBoth,
			failed: func(t *testing.T, s *sweepState, err error) { checkMigrated(t, s) },
			done: func(t *testing.T, s *sweepState) {
				checkMigrated(t, s)
				checkNoStaging(t, s)
			}}, stage: 1, leftovers: true},
	}
}

// setupDom0 builds a dom0-transport world whose compute hosts' dom0 are
// FaultHosts, with a running guest on compute1 taken to sc.stage.
func (sc dom0Scenario) setupDom0(t *testing.T, l layout) *sweepState {
	t.Helper()
	fh := map[string]*dom0test.FaultHost{}
	e := dom0EnvWith(t, l, sc.rounds, func(host string, h *dom0.LocalHost) dom0.Host {
		fh[host] = dom0test.NewFaultHost(h)
		return fh[host]
	})
	g := e.addGuest("compute1", guestSpec{running: true, flavor: small, disks: []int64{8 << 20, 4 << 20}})
	s := &sweepState{r: &resizeRun{e: e, g: g, dest: "compute2", mig: newMigration(g, "compute2", large)}, dom0: fh}
	if sc.stage >= 1 {
		s.r.migrate(t)
	}
	if sc.stage >= 2 {
		s.r.finish(t, true)
	}
	if sc.leftovers {
		plantStaging(t, s)
	}
	return s
}

// migrateWriting is migrateOnce with the guest writing after the snapshot
// and after the base was sent, as resizeRun.migrate does, so pre-copy
// rounds have deltas to send.
func migrateWriting(ctx context.Context, s *sweepState) error {
	r := s.r
	var last compute.Progress
	info, err := r.e.d.MigrateDiskAndPowerOff(ctx, compute.MigrateDiskRequest{Instance: r.g.inst, Migration: r.mig,
		Host: r.g.host, DestHost: r.dest, NewFlavor: r.mig.NewFlavor, CleanShutdown: true,
		Progress: func(p compute.Progress) {
			last = p
			if !last.PoweredOff && (p.Step == "snapshot" || p.Step == "send-base") {
				r.e.write(r.g, 0, 1<<20, pattern("written during "+p.Step, 3<<20), false)
			}
		}})
	if err == nil {
		r.info = info
	}
	return err
}

// cleanupBoth runs CleanupMigration on the migration's two hosts.
func cleanupBoth(ctx context.Context, s *sweepState) error {
	r := s.r
	for _, host := range []string{r.mig.SourceCompute, r.mig.DestCompute} {
		if err := r.e.d.CleanupMigration(ctx, compute.CleanupMigrationRequest{Migration: r.mig, Instance: r.g.inst,
			Host: host}); err != nil {
			return err
		}
	}
	return nil
}

// plantStaging leaves what a move that crashed in its transfer leaves:
// the instance's staging directories with partial files, on both hosts.
func plantStaging(t *testing.T, s *sweepState) {
	t.Helper()
	for host, dir := range map[string]string{"compute1": "xenflow-send-instance", "compute2": "xenflow-receive-instance"} {
		h := s.r.e.hostOf[host]
		d := filepath.Join(h.Root(), "var", "run", "sr-mount", h.SRUUID(), dir+s.r.g.inst.UUID)
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, ".0.vhd.part"), []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// checkNoStaging: no chain staging directory and no partial file on any
// compute host's dom0.
func checkNoStaging(t *testing.T, s *sweepState) {
	t.Helper()
	for host, h := range s.r.e.hostOf {
		err := filepath.WalkDir(h.Root(), func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if strings.HasPrefix(d.Name(), "xenflow-") || strings.HasSuffix(d.Name(), ".part") {
				return fmt.Errorf("%s is left", strings.TrimPrefix(p, h.Root()))
			}
			return nil
		})
		if err != nil {
			t.Fatalf("dom0 of %s: %v", host, err)
		}
	}
}

// checkNoOrphanVDI scans every pool's SRs and fails on a managed VDI that
// no VM uses and no migration claims: a disk a failed import left in an
// SR.
func checkNoOrphanVDI(t *testing.T, s *sweepState) {
	t.Helper()
	ctx := context.Background()
	for name, p := range s.r.e.pools {
		var host string
		for h, hp := range s.r.e.poolOf {
			if hp == p {
				host = h
			}
		}
		sess := s.r.e.session(host)
		for _, h := range p.Hosts() {
			if _, err := p.Call(ctx, "SR.scan", sess, h.SR()); err != nil {
				t.Fatalf("scan the SR of %s: %v", h.Name(), err)
			}
		}
		tg, err := s.r.e.d.pool(ctx, host)
		if err != nil {
			t.Fatal(err)
		}
		recs, err := tg.Client.VDI.GetAllRecords(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, rec := range recs {
			if rec.Managed && !rec.IsASnapshot && len(rec.VBDs) == 0 && rec.OtherConfig[KeyMigration] == "" &&
				rec.Type != xenapi.VDITypeSuspend {
				t.Fatalf("pool %s: VDI %s (%s) is used by no VM and claimed by no migration", name, rec.UUID, rec.NameLabel)
			}
		}
	}
}

// dom0Point is one dom0 operation of a clean run: the compute host whose
// dom0 performed it, the operation and its use number.
type dom0Point struct {
	host string
	op   string
	n    int
}

// dom0CleanRun runs the scenario once without faults and returns the dom0
// operations the method performed (sampled under the race detector).
func dom0CleanRun(t *testing.T, sc dom0Scenario, l layout) []dom0Point {
	t.Helper()
	s := sc.setupDom0(t, l)
	seen := map[string]int{}
	for host, h := range s.dom0 {
		seen[host] = len(h.Calls())
	}
	if err := sc.run(context.Background(), s); err != nil {
		t.Fatalf("clean run: %v", err)
	}
	var out []dom0Point
	for _, host := range sortedKeys(s.dom0) {
		for _, c := range s.dom0[host].Calls()[seen[host]:] {
			out = append(out, dom0Point{host: host, op: c.Op, n: c.N})
		}
	}
	sc.done(t, s)
	all := len(out)
	out = sampleDom0Points(out, raceDetector)
	t.Logf("%d dom0 operations, %d swept", all, len(out))
	return out
}

// sampleDom0Points thins the points out. File reads are most of a move's
// operations (the VHD headers, BATs and blocks of every check, hash and
// copy), and each fails the same way, its error passed up: every fourth
// read of each host is swept, every other operation is. Under the race
// detector every point is ten times slower: every sixteenth of those is
// visited (the full sweep runs without -race).
func sampleDom0Points(points []dom0Point, race bool) []dom0Point {
	var out []dom0Point
	for _, p := range points {
		if p.op != dom0test.OpFileReadAt || p.n%4 == 1 {
			out = append(out, p)
		}
	}
	if !race {
		return out
	}
	var sample []dom0Point
	for i := 0; i < len(out); i += 16 {
		sample = append(sample, out[i])
	}
	return sample
}

// TestDom0FaultSweep fails every dom0 operation each step of a resize up
// with the dom0 transport makes, once each. After each failure the driver
// has finished, or rolled back with the source as it was, or kept every
// disk that holds the only copy of its data; called again it finishes;
// CleanupMigration on both hosts afterwards leaves no staging directory,
// no partial file and no orphaned VDI.
func TestDom0FaultSweep(t *testing.T) {
	if testing.Short() {
		t.Skip("the sweep runs every scenario once per dom0 operation")
	}
	for _, sc := range dom0Scenarios() {
		// The dom0 operations do not depend on how the hosts sit in
		// pools: standalone pools only (TestFaultSweep sweeps the
		// XenAPI calls on both layouts).
		l := standalone
		t.Run(string(l)+"/"+sc.name, func(t *testing.T) {
			for _, fp := range dom0CleanRun(t, sc, l) {
				t.Run(fmt.Sprintf("%s/%s#%d", fp.host, fp.op, fp.n), func(t *testing.T) {
					t.Parallel()
					dom0SweepPoint(t, sc, l, fp)
				})
			}
		})
	}
}

// dom0SweepPoint runs one point of the sweep.
func dom0SweepPoint(t *testing.T, sc dom0Scenario, l layout, fp dom0Point) {
	ctx := context.Background()
	s := sc.setupDom0(t, l)
	h := s.dom0[fp.host]
	h.FailNth(fp.op, fp.n)
	err := sc.run(ctx, s)
	h.ClearFaults()
	if err != nil {
		sc.failed(t, s, err)
	} else {
		sc.done(t, s)
	}
	if err := sc.run(ctx, s); err != nil {
		t.Fatalf("called again: %v", err)
	}
	sc.done(t, s)
	if err := cleanupBoth(ctx, s); err != nil {
		t.Fatalf("CleanupMigration: %v", err)
	}
	checkNoStaging(t, s)
	checkNoOrphanVDI(t, s)
}
