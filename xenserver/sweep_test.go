package xenserver

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/dom0/dom0test"
	"github.com/xenflow/xenflow/statemachine"
	"github.com/xenflow/xenflow/xenapi"
	"github.com/xenflow/xenflow/xenapi/xenapitest"
)

// scenario is one driver method on a prepared state, for the fault and
// cancellation sweeps.
type scenario struct {
	name string
	// setup builds the state before the method (without faults).
	setup func(t *testing.T, l layout) *sweepState
	// run calls the method.
	run func(ctx context.Context, s *sweepState) error
	// failed checks the state after a failed call.
	failed func(t *testing.T, s *sweepState, err error)
	// done checks the state after a successful call.
	done func(t *testing.T, s *sweepState)
}

type sweepState struct {
	r *resizeRun
	// dom0 is each compute host's dom0, in the dom0 sweep.
	dom0 map[string]*dom0test.FaultHost
}

func (s *sweepState) e() *testEnv { return s.r.e }

func setupGuest(t *testing.T, l layout) *sweepState {
	return &sweepState{r: newResize(t, l, "compute2", true)}
}

func setupMigrated(t *testing.T, l layout) *sweepState {
	s := setupGuest(t, l)
	s.r.migrate(t)
	return s
}

func setupFinished(t *testing.T, l layout) *sweepState {
	s := setupMigrated(t, l)
	s.r.finish(t, true)
	return s
}

func migrateOnce(ctx context.Context, s *sweepState) error {
	r := s.r
	info, err := r.e.d.MigrateDiskAndPowerOff(ctx, compute.MigrateDiskRequest{Instance: r.g.inst, Migration: r.mig,
		Host: r.g.host, DestHost: r.dest, NewFlavor: r.mig.NewFlavor, CleanShutdown: true, ShutdownTimeout: 5 * time.Second})
	if err == nil {
		r.info = info
	}
	return err
}

func finishOnce(ctx context.Context, s *sweepState) error {
	r := s.r
	return r.e.d.FinishMigration(ctx, compute.FinishMigrationRequest{Instance: r.g.inst, Migration: r.mig,
		Host: r.dest, DiskInfo: r.info, NewFlavor: r.mig.NewFlavor, ResizeInstance: true, PowerOn: true})
}

// checkMigrated: the source kept as -orig, the destination copies hold the
// guest's data.
func checkMigrated(t *testing.T, s *sweepState) {
	t.Helper()
	r := s.r
	vms := r.e.vms(r.g.host)
	orig, ok := vms[r.g.inst.Name+origSuffix]
	if !ok || orig.Rec.OtherConfig[KeyOrigOf] != r.g.inst.UUID || orig.Rec.PowerState != xenapi.VMPowerStateHalted {
		t.Fatalf("no halted -orig VM after the move: %v", names(vms))
	}
	if len(r.info.Disks) != len(r.g.disks) {
		t.Fatalf("DiskInfo %+v", r.info)
	}
	for i, d := range r.info.Disks {
		r.e.checkDisk(r.dest, d.VDI, r.g.disks[i])
	}
	checkSourceData(t, r.e, r.g)
}

func checkFinished(t *testing.T, s *sweepState) {
	t.Helper()
	r := s.r
	info, err := r.e.d.GetInfo(context.Background(), compute.InstanceRequest{Instance: r.g.inst, Host: r.dest})
	if err != nil || info.PowerState != statemachine.PowerRunning || info.MemoryMB != r.mig.NewFlavor.MemoryMB {
		t.Fatalf("destination after finish: %+v, %v", info, err)
	}
	for i, d := range r.info.Disks {
		r.e.checkDisk(r.dest, d.VDI, r.g.disks[i])
	}
	checkRootSize(t, r.e, r.dest, r.info.Disks[0].VDI, int64(r.mig.NewFlavor.RootGB)<<30)
	r.e.checkVIFs(r.g, r.dest)
}

func names(vms map[string]vmEntry) []string {
	var out []string
	for n := range vms {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

var scenarios = []scenario{
	{
		name: "MigrateDiskAndPowerOff", setup: setupGuest, run: migrateOnce,
		failed: func(t *testing.T, s *sweepState, err error) {
			var rb *compute.InstanceFaultRollback
			if errors.As(err, &rb) {
				checkSourceIntact(t, s.e(), s.r.g, true)
				return
			}
			checkSourceData(t, s.e(), s.r.g) // nothing that holds the only copy was destroyed
		},
		done: checkMigrated,
	},
	{
		name: "FinishMigration", setup: setupMigrated, run: finishOnce,
		failed: func(t *testing.T, s *sweepState, err error) { checkMigrated(t, s) },
		done:   checkFinished,
	},
	{
		name: "ConfirmMigration", setup: setupFinished,
		run: func(ctx context.Context, s *sweepState) error {
			r := s.r
			return r.e.d.ConfirmMigration(ctx, compute.ConfirmMigrationRequest{Instance: r.g.inst, Migration: r.mig, Host: r.g.host})
		},
		failed: func(t *testing.T, s *sweepState, err error) { checkFinished(t, s) },
		done: func(t *testing.T, s *sweepState) {
			checkFinished(t, s)
			if vms := s.e().vms(s.r.g.host); len(vms) != 1 && s.r.e.poolOf[s.r.g.host] == s.r.e.poolOf[s.r.dest] ||
				vms[s.r.g.inst.Name+origSuffix].Ref != "" {
				t.Fatalf("VMs after confirm: %v", names(vms))
			}
		},
	},
	{
		name: "Destroy+FinishRevertMigration", setup: setupFinished,
		run: func(ctx context.Context, s *sweepState) error {
			r := s.r
			err := r.e.d.Destroy(ctx, compute.DestroyRequest{Instance: r.g.inst, Host: r.dest, DestroyDisks: true, Migration: r.mig})
			if err != nil {
				return err
			}
			return r.e.d.FinishRevertMigration(ctx, compute.FinishRevertRequest{Instance: r.g.inst, Migration: r.mig, Host: r.g.host, PowerOn: true})
		},
		failed: func(t *testing.T, s *sweepState, err error) { checkSourceData(t, s.e(), s.r.g) },
		done: func(t *testing.T, s *sweepState) {
			checkSourceIntact(t, s.e(), s.r.g, true)
			checkNoLeftovers(t, s.e(), s.r.g, s.r.mig)
		},
	},
	{
		name: "Destroy", setup: setupGuest,
		run: func(ctx context.Context, s *sweepState) error {
			r := s.r
			return r.e.d.Destroy(ctx, compute.DestroyRequest{Instance: r.g.inst, Host: r.g.host, DestroyDisks: true})
		},
		failed: func(t *testing.T, s *sweepState, err error) {},
		done: func(t *testing.T, s *sweepState) {
			if vms := s.e().vms(s.r.g.host); vms[s.r.g.inst.Name].Ref != "" {
				t.Fatalf("VMs after destroy: %v", names(vms))
			}
			for _, vdi := range s.r.g.vm.VDIs {
				if _, err := s.e().poolOf[s.r.g.host].Record(vdi); err == nil {
					t.Fatalf("VDI %s survived the destroy", vdi)
				}
			}
		},
	},
	{
		name: "PowerOff+PowerOn", setup: setupGuest,
		run: func(ctx context.Context, s *sweepState) error {
			r := s.r
			if err := r.e.d.PowerOff(ctx, compute.PowerOffRequest{Instance: r.g.inst, Host: r.g.host, Clean: true, Timeout: time.Second}); err != nil {
				return err
			}
			return r.e.d.PowerOn(ctx, compute.InstanceRequest{Instance: r.g.inst, Host: r.g.host})
		},
		failed: func(t *testing.T, s *sweepState, err error) { checkSourceData(t, s.e(), s.r.g) },
		done:   func(t *testing.T, s *sweepState) { checkSourceIntact(t, s.e(), s.r.g, true) },
	},
}

// faultPoint is one call of the clean run: the pool it went to, the
// method and its use number.
type faultPoint struct {
	pool   string
	method string
	n      int
}

// sweepLayouts are the layouts a scenario is swept on: every scenario on
// standalone pools, the move and the suspended move's methods also inside
// one pool.
func sweepLayouts(sc scenario) []layout {
	if sc.name == "MigrateDiskAndPowerOff" || strings.HasPrefix(sc.name, "Suspended/") {
		return layouts
	}
	return []layout{standalone}
}

// sweepable leaves out calls whose number depends on timing.
func sweepable(method string) bool {
	return !strings.HasPrefix(method, "task.") && !strings.HasPrefix(method, "event.")
}

// cleanRun runs the scenario once without faults and returns the calls the
// method made.
func cleanRun(t *testing.T, sc scenario, l layout) []faultPoint {
	t.Helper()
	s := sc.setup(t, l)
	seen := map[string]int{}
	for name, p := range s.e().pools {
		seen[name] = len(p.Calls())
	}
	if err := sc.run(context.Background(), s); err != nil {
		t.Fatalf("clean run: %v", err)
	}
	var out []faultPoint
	for _, name := range sortedKeys(s.e().pools) {
		for _, c := range s.e().pools[name].Calls()[seen[name]:] {
			if sweepable(c.Method) {
				out = append(out, faultPoint{pool: name, method: c.Method, n: c.N})
			}
		}
	}
	sc.done(t, s)
	if raceDetector {
		// Under the race detector every call is ten times slower: visit
		// every sixteenth point (the full sweep runs without -race).
		var sample []faultPoint
		for i := 0; i < len(out); i += 16 {
			sample = append(sample, out[i])
		}
		out = sample
	}
	return out
}

// sweep runs, for every scenario and every call its clean run makes, a
// fresh state through first (which makes the call misbehave and calls
// the method), checks the state (failed or done), then calls the method
// again without faults and checks that it finished.
func sweep(t *testing.T, first func(s *sweepState, p *xenapitest.Pool, fp faultPoint, sc scenario) error) {
	if testing.Short() {
		t.Skip("the sweep runs every scenario once per call")
	}
	for _, sc := range append(append([]scenario(nil), scenarios...), suspendScenarios...) {
		for _, l := range sweepLayouts(sc) {
			t.Run(string(l)+"/"+sc.name, func(t *testing.T) {
				for _, fp := range cleanRun(t, sc, l) {
					t.Run(fmt.Sprintf("%s#%d", fp.method, fp.n), func(t *testing.T) {
						t.Parallel()
						s := sc.setup(t, l)
						p := s.e().pools[fp.pool]
						err := first(s, p, fp, sc)
						p.ClearFaults()
						if err != nil {
							sc.failed(t, s, err)
						} else {
							sc.done(t, s)
						}
						if err := sc.run(context.Background(), s); err != nil {
							t.Fatalf("called again: %v", err)
						}
						sc.done(t, s)
						checkNoSnapshots(t, s.e())
					})
				}
			})
		}
	}
}

// TestFaultSweep fails every call each method makes, once each. After each
// failure the driver has finished, or rolled back with the source as it
// was, or kept every disk that holds the only copy of its data; called
// again, it finishes the job.
func TestFaultSweep(t *testing.T) {
	sweep(t, func(s *sweepState, p *xenapitest.Pool, fp faultPoint, sc scenario) error {
		p.FailNth(fp.method, fp.n, xenapi.CodeInternalError, "injected")
		return sc.run(context.Background(), s)
	})
}

// TestCancelSweep cancels every method at each call it makes, then calls
// it again: the end state is that of one clean call.
func TestCancelSweep(t *testing.T) {
	sweep(t, func(s *sweepState, p *xenapitest.Pool, fp faultPoint, sc scenario) error {
		p.InjectFault(xenapitest.Fault{Method: fp.method, N: fp.n, Delay: time.Hour})
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() { errc <- sc.run(ctx, s) }()
		waitForCall(p, fp, errc, cancel)
		return <-errc
	})
}

// checkNoSnapshots checks no pool keeps a snapshot, or a disk marked
// for one: every snapshot a move makes is its own, destroyed when the
// move ends or found and destroyed by the next call.
func checkNoSnapshots(t *testing.T, e *testEnv) {
	t.Helper()
	for host, entry := range e.cfg.Inventory.Hosts {
		if e.hostOf[host] != e.poolOf[host].Master() {
			continue // one host per pool
		}
		name := entry.Pool
		c, err := e.d.pool(context.Background(), host)
		if err != nil {
			t.Fatal(err)
		}
		recs, err := c.Client.VDI.GetAllRecords(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, rec := range recs {
			if rec.Managed && rec.IsASnapshot || rec.OtherConfig[KeySnapshotFor] != "" {
				t.Errorf("pool %s keeps VDI %s %q (snapshot %v, other_config %v)", name, rec.UUID, rec.NameLabel, rec.IsASnapshot, rec.OtherConfig)
			}
		}
	}
}

// waitForCall cancels once the pool received the call (or the run ended).
func waitForCall(p *xenapitest.Pool, fp faultPoint, errc chan error, cancel func()) {
	defer cancel()
	for i := 0; i < 5000 && p.CallCount(fp.method) < fp.n; i++ {
		select {
		case err := <-errc:
			errc <- err
			return
		case <-time.After(time.Millisecond):
		}
	}
	time.Sleep(2 * time.Millisecond)
}
