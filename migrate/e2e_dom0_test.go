package migrate_test

import (
	"context"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/xenflow/xenflow/xenserver"
)

// dom0Call is one dom0 operation of a clean run: the compute host whose
// dom0 performed it, the operation and its use number over the host's
// life (as dom0test.FaultHost counts it).
type dom0Call struct {
	host string
	op   string
	n    int
}

func (c dom0Call) String() string { return fmt.Sprintf("%s/%s#%d", c.host, c.op, c.n) }

// recordDom0Calls runs op cleanly in a fresh world with the dom0
// transport and returns the dom0 operations it made, host by host.
func recordDom0Calls(t *testing.T, l eLayout, op eOp) []dom0Call {
	t.Helper()
	w := op.prepareWith(t, l, xenserver.TransportDom0)
	for _, h := range w.dom0 {
		h.ResetCalls()
	}
	if err := op.run(context.Background(), w.orch(w.store, "o1")); err != nil {
		t.Fatal(err)
	}
	w.check()
	w.checkNoStaging()
	var out []dom0Call
	for _, host := range w.hosts {
		for _, c := range w.dom0[host].Calls() {
			out = append(out, dom0Call{host: host, op: c.Op, n: c.N})
		}
	}
	return out
}

// dom0SweepPoints are the operations a dom0 sweep fails: in xenflow's
// mode every one, in Nova's mode (whose failure paths the XenAPI sweeps
// cover call by call) and when sampled every dom0SampleStep-th.
func dom0SweepPoints(calls []dom0Call, mode eMode) []dom0Call {
	if !sampled() && !mode.nova {
		return calls
	}
	var out []dom0Call
	for i := 0; i < len(calls); i += dom0SampleStep {
		out = append(out, calls[i])
	}
	return out
}

// dom0SampleStep is the sampled dom0 sweep's stride.
const dom0SampleStep = 8

// TestXenServerDom0FaultSweep fails every dom0 operation of resize up,
// resize down and cold migrate with the dom0 transport once, in a fresh
// world each time, on the real driver, in both modes (confirm and revert
// make none: the kept guest and the destination's are destroyed through
// XenAPI). The invariants are the XenAPI fault sweep's, and after the
// cleanup no staging directory or partial file is left on any host's
// dom0.
func TestXenServerDom0FaultSweep(t *testing.T) {
	forEachSweep(t, func(t *testing.T, mode eMode, l eLayout, op eOp) {
		calls := recordDom0Calls(t, l, op)
		if len(calls) == 0 && op.setup == nil {
			t.Fatal("the move made no dom0 operation")
		}
		points := dom0SweepPoints(calls, mode)
		t.Logf("%d of %d dom0 operations failed", len(points), len(calls))
		var failed atomic.Int64
		t.Cleanup(func() { // after the parallel points
			if len(points) == 0 {
				return
			}
			t.Logf("%d points failed the operation, the others were retried", failed.Load())
			if failed.Load() == 0 {
				t.Error("no dom0 fault failed the move")
			}
		})
		for _, c := range points {
			t.Run(c.String(), func(t *testing.T) {
				t.Parallel() // each point has a world of its own
				if dom0FaultPoint(t, op.prepareIn(t, l, mode, xenserver.TransportDom0), op, c) != nil {
					failed.Add(1)
				}
			})
		}
	})
}

// TestXenServerDom0CrashSweep stops the orchestrator right after every
// step it persists, with the dom0 transport, in both modes, then resumes
// with a new one once the lease expired: the crash sweep's invariants,
// and no staging directory or partial file left after the cleanup.
func TestXenServerDom0CrashSweep(t *testing.T) {
	forEachSweep(t, func(t *testing.T, mode eMode, l eLayout, op eOp) {
		w := op.prepareWith(t, l, xenserver.TransportDom0)
		store := &crashStore{Store: w.store}
		cleanCallsOn(t, w, op, store)
		t.Logf("%d steps", store.seen)
		for n := 1; n <= store.seen; n++ {
			t.Run(fmt.Sprintf("after-step-%d", n), func(t *testing.T) {
				t.Parallel()
				w := op.prepareIn(t, l, mode, xenserver.TransportDom0)
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				_ = op.run(ctx, w.orch(&crashStore{Store: w.store, n: n, cancel: cancel}, "o1"))
				w.afterCrash()
				w.checkNoStaging()
			})
		}
	})
}

// dom0FaultPoint fails dom0 operation c once during op in w, then
// resumes, cleans up and checks; it returns what the operation returned.
func dom0FaultPoint(t *testing.T, w *eworld, op eOp, c dom0Call) error {
	w.dom0[c.host].FailNth(c.op, c.n)
	err := op.run(context.Background(), w.orch(w.store, "o1"))
	w.dom0[c.host].ClearFaults()
	w.resume()
	w.cleanup()
	w.check()
	w.checkNoStaging()
	return err
}

// TestXenServerFaultSweepDom0Transport is the XenAPI fault sweep with the
// dom0 transport, in xenflow's mode on the standalone pools, breaking the
// first call of each method (the full sweeps run with the xapi
// transport): the calls around a chain move over dom0 fail as the xapi
// transport's do, and leave no staging directory either.
func TestXenServerFaultSweepDom0Transport(t *testing.T) {
	l := eLayouts[0]
	for _, op := range eOps {
		t.Run(op.name, func(t *testing.T) {
			w := op.prepareWith(t, l, xenserver.TransportDom0)
			calls := cleanCalls(t, w, op)
			points := firstOfEachMethod(calls)
			t.Logf("%d of %d calls failed", len(points), len(calls))
			for _, c := range points {
				t.Run(c.String(), func(t *testing.T) {
					t.Parallel()
					w := op.prepareWith(t, l, xenserver.TransportDom0)
					w.pools[c.pool].FailNth(c.Method, c.N, "INTERNAL_ERROR", "injected")
					_ = op.run(context.Background(), w.orch(w.store, "o1"))
					w.pools[c.pool].ClearFaults()
					w.resume()
					w.cleanup()
					w.check()
					w.checkNoStaging()
				})
			}
		})
	}
}

// checkNoStaging fails when a chain staging directory (xenflow-send-*,
// xenflow-receive-*) or a partial file (.*.part) is left on any host's
// dom0.
func (w *eworld) checkNoStaging() {
	w.t.Helper()
	var left []string
	for _, p := range w.pools {
		for _, h := range p.Hosts() {
			root := h.Root()
			err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				if strings.HasPrefix(d.Name(), "xenflow-") || strings.HasSuffix(d.Name(), ".part") {
					left = append(left, h.Name()+":"+strings.TrimPrefix(path, root))
				}
				return nil
			})
			if err != nil {
				w.t.Fatalf("dom0 of %s: %v", h.Name(), err)
			}
		}
	}
	if len(left) > 0 {
		sort.Strings(left)
		w.t.Fatalf("left on dom0 after cleanup: %v", left)
	}
}
