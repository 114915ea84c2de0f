package migrate_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/xenapi/xenapitest"
	"github.com/xenflow/xenflow/xenserver"
)

// eCall is one XenAPI call of a clean run: the pool it went to and the
// call as the pool counts it.
type eCall struct {
	pool int
	xenapitest.CallRecord
}

func (c eCall) String() string { return fmt.Sprintf("pool%d/%s#%d", c.pool+1, c.Method, c.N) }

// recordCalls runs op cleanly in a fresh world and returns the XenAPI
// calls it made, in every pool, and the number of steps it persisted.
func recordCalls(t *testing.T, l eLayout, op eOp) ([]eCall, int) {
	t.Helper()
	w := op.prepare(t, l)
	store := &crashStore{Store: w.store}
	calls := cleanCallsOn(t, w, op, store)
	return calls, store.seen
}

// cleanCalls runs op cleanly in w and returns the XenAPI calls it made.
func cleanCalls(t *testing.T, w *eworld, op eOp) []eCall {
	t.Helper()
	return cleanCallsOn(t, w, op, w.store)
}

func cleanCallsOn(t *testing.T, w *eworld, op eOp, store compute.Store) []eCall {
	t.Helper()
	for _, p := range w.pools {
		p.ResetCalls()
	}
	if err := op.run(context.Background(), w.orch(store, "o1")); err != nil {
		t.Fatal(err)
	}
	w.check()
	var out []eCall
	for i, p := range w.pools {
		for _, c := range p.Calls() {
			out = append(out, eCall{pool: i, CallRecord: c})
		}
	}
	return out
}

// sampled is true under -race (five to ten times slower) and -short,
// where the sweeps on the XenServer driver break each method once, on the
// standalone pools, instead of every call on every layout.
func sampled() bool { return raceDetector || testing.Short() }

// sweepPoints are the calls a sweep breaks: every one, or when sampled
// the first call of each method.
func sweepPoints(calls []eCall) []eCall {
	if !sampled() {
		return calls
	}
	return firstOfEachMethod(calls)
}

// firstOfEachMethod is the first call of each method.
func firstOfEachMethod(calls []eCall) []eCall {
	seen := map[string]bool{}
	var out []eCall
	for _, c := range calls {
		if k := c.Method; !seen[k] {
			seen[k] = true
			out = append(out, c)
		}
	}
	return out
}

// sweepLayouts are the layouts the sweeps run on: both, or when sampled
// the standalone pools only (TestEndToEnd runs the pool of three).
func sweepLayouts() []eLayout {
	if sampled() {
		return eLayouts[:1]
	}
	return eLayouts
}

// TestXenServerFaultSweep fails every XenAPI call of resize up, resize
// down, cold migrate, confirm and revert once, in a fresh world each
// time, on the real driver, in xenflow's mode and in Nova's. Whatever
// the fault, once the orchestrator returns, a new one resumes and the
// driver cleans the move up, the instance rests on the source or on the
// destination (or, in Nova's mode, in error with a fault) with its data
// intact on the host the Store names, its migration settled, quota
// equal to a recount and no orphan VM or VDI in any pool.
func TestXenServerFaultSweep(t *testing.T) {
	forEachSweep(t, func(t *testing.T, mode eMode, l eLayout, op eOp) {
		calls, _ := recordCalls(t, l, op)
		points := sweepPoints(calls)
		t.Logf("%d of %d calls failed", len(points), len(calls))
		for _, c := range points {
			t.Run(c.String(), func(t *testing.T) {
				t.Parallel() // each point has a world of its own
				w := op.prepareIn(t, l, mode, xenserver.TransportXAPI)
				w.pools[c.pool].FailNth(c.Method, c.N, "INTERNAL_ERROR", "injected")
				_ = op.run(context.Background(), w.orch(w.store, "o1")) // a typed failure, or a retry that finished
				w.pools[c.pool].ClearFaults()
				w.resume()
				w.cleanup()
				w.check()
			})
		}
	})
}

// forEachSweep runs sweep as a subtest for every mode, sweep layout and
// operation.
func forEachSweep(t *testing.T, sweep func(t *testing.T, mode eMode, l eLayout, op eOp)) {
	for _, mode := range eModes {
		for _, l := range sweepLayouts() {
			for _, op := range append(append([]eOp(nil), eOps...), eSuspendOps...) {
				t.Run(mode.name+"/"+l.name+"/"+op.name, func(t *testing.T) { sweep(t, mode, l, op) })
			}
		}
	}
}

// eMode is a way the orchestrator ends a failure: xenflow's rollback to
// the intact source, or Nova's vm_state error.
type eMode struct {
	name string
	nova bool
}

var eModes = []eMode{{"xenflow", false}, {"nova", true}}

// prepareIn is prepareWith with the operation run in mode (the setup
// always runs in xenflow's).
func (op eOp) prepareIn(t *testing.T, l eLayout, mode eMode, transport string) *eworld {
	t.Helper()
	w := op.prepareWith(t, l, transport)
	w.opts.NovaCompatibleErrors = mode.nova
	return w
}
