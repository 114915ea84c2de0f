package migrate_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/xenapi/xenapitest"
	"github.com/xenflow/xenflow/xenserver"
)

// crashStore counts the successful Transitions and cancels the run's
// context after the n-th (n 0: never): the orchestrator stops right
// after a persisted step.
type crashStore struct {
	compute.Store
	mu     sync.Mutex
	n      int
	seen   int
	cancel context.CancelFunc
}

func (s *crashStore) Transition(ctx context.Context, req compute.TransitionRequest) (*compute.Instance, *compute.Migration, error) {
	inst, mig, err := s.Store.Transition(ctx, req)
	if err == nil {
		s.mu.Lock()
		s.seen++
		if s.seen == s.n && s.cancel != nil {
			s.cancel()
		}
		s.mu.Unlock()
	}
	return inst, mig, err
}

// TestXenServerCrashSweep stops the orchestrator right after every step
// it persists (its context cancelled, its lease never released, as a
// process that dies) and in the middle of every XenAPI call of resize
// up, resize down, cold migrate, confirm and revert (the call held by a
// delay while the context is cancelled), then lets the lease expire and
// resumes with a new orchestrator: the same resting states and
// invariants as the fault sweep, in both modes.
func TestXenServerCrashSweep(t *testing.T) {
	forEachSweep(t, func(t *testing.T, mode eMode, l eLayout, op eOp) {
		calls, steps := recordCalls(t, l, op)
		points := crashPoints(calls)
		t.Logf("%d steps, %d of %d calls", steps, len(points), len(calls))
		for n := 1; n <= steps; n++ {
			t.Run(fmt.Sprintf("after-step-%d", n), func(t *testing.T) {
				t.Parallel() // each point has a world of its own
				w := op.prepareIn(t, l, mode, xenserver.TransportXAPI)
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				_ = op.run(ctx, w.orch(&crashStore{Store: w.store, n: n, cancel: cancel}, "o1"))
				w.afterCrash()
			})
		}
		for _, c := range points {
			t.Run("in-"+c.String(), func(t *testing.T) {
				t.Parallel()
				crashInCall(t, op.prepareIn(t, l, mode, xenserver.TransportXAPI), op, c)
			})
		}
	})
}

// crashInCall stops the orchestrator in the middle of call c (held by a
// delay while the context is cancelled), then resumes and checks.
func crashInCall(t *testing.T, w *eworld, op eOp, c eCall) {
	p := w.pools[c.pool]
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p.InjectFault(xenapitest.Fault{Method: c.Method, N: c.N, Delay: 20 * time.Millisecond})
	go func() {
		for p.CallCount(c.Method) < c.N && ctx.Err() == nil {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	_ = op.run(ctx, w.orch(w.store, "o1"))
	p.ClearFaults()
	w.afterCrash()
}

// crashPoints are the calls the crash sweep stops in: every one, or when
// sampled every fourth of the fault sweep's (the fault sweep breaks each
// method; the crash sweep's stops after every step stay whole).
func crashPoints(calls []eCall) []eCall {
	if !sampled() {
		return calls
	}
	var out []eCall
	for i, c := range sweepPoints(calls) {
		if i%4 == 0 {
			out = append(out, c)
		}
	}
	return out
}

// afterCrash resumes after the lease expired, cleans up and checks.
func (w *eworld) afterCrash() {
	w.t.Helper()
	w.resume()
	w.cleanup()
	w.check()
}
