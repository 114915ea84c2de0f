package migrate

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/xenflow/xenflow/compute/computetest"
	sm "github.com/xenflow/xenflow/statemachine"
)

// sweepCase is one operation the sweeps break: setup brings the instance
// to where the operation starts, run is the operation.
type sweepCase struct {
	name  string
	state sm.VMState
	setup func(ctx context.Context, o *Orchestrator) error
	run   func(ctx context.Context, o *Orchestrator) error
	// fault, when set, is injected before run: the crash sweep then
	// crashes the failure path (a case the fault sweep leaves out).
	fault *computetest.Fault
}

// resizeI1 resizes instance i1 to flavor.
func resizeI1(flavor string) func(context.Context, *Orchestrator) error {
	return func(ctx context.Context, o *Orchestrator) error {
		_, err := o.Resize(ctx, ResizeRequest{InstanceUUID: "i1", FlavorID: flavor})
		return err
	}
}

// migrateI1, confirmI1 and revertI1 cold-migrate, confirm and revert
// instance i1.
func migrateI1(ctx context.Context, o *Orchestrator) error {
	_, err := o.Migrate(ctx, MigrateRequest{InstanceUUID: "i1"})
	return err
}

func confirmI1(ctx context.Context, o *Orchestrator) error {
	_, err := o.Confirm(ctx, ActionRequest{InstanceUUID: "i1"})
	return err
}

func revertI1(ctx context.Context, o *Orchestrator) error {
	_, err := o.Revert(ctx, ActionRequest{InstanceUUID: "i1"})
	return err
}

func sweepCases() []sweepCase {
	resize, migrate, confirm, revert := resizeI1, migrateI1, confirmI1, revertI1
	return []sweepCase{
		{name: "resize-up", state: sm.VMActive, run: resize("large")},
		{name: "resize-down", state: sm.VMActive, run: resize("tiny")},
		{name: "resize-up-stopped", state: sm.VMStopped, run: resize("large")},
		{name: "cold-migrate", state: sm.VMActive, run: migrate},
		{name: "confirm", state: sm.VMActive, setup: resize("large"), run: confirm},
		{name: "revert", state: sm.VMActive, setup: resize("large"), run: revert},
		{name: "revert-stopped", state: sm.VMStopped, setup: resize("large"), run: revert},
	}
}

// prepare builds a harness with instance i1 (flavor medium) and runs the
// case's setup.
func (c sweepCase) prepare(t *testing.T, nova bool) *harness {
	t.Helper()
	h := newHarness(t, 3)
	h.opts.NovaCompatibleErrors = nova
	ctx := context.Background()
	if err := h.addInstance(ctx, "i1", "host1", "medium", c.state, false); err != nil {
		t.Fatal(err)
	}
	if c.setup != nil {
		if err := c.setup(ctx, h.orch("a")); err != nil {
			t.Fatal(err)
		}
	}
	if c.fault != nil {
		h.driver.InjectFault(*c.fault)
	}
	return h
}

// failingCases are operations whose driver fails once, so that the crash
// sweep stops their failure paths: the rollback to the source, the
// confirm and revert that keep VERIFY_RESIZE, the retried restore.
func failingCases() []sweepCase {
	var out []sweepCase
	for _, c := range sweepCases() {
		var m computetest.Method
		switch c.name {
		case "resize-up", "cold-migrate":
			m = computetest.MethodFinishMigration
		case "resize-down":
			m = computetest.MethodMigrateDiskAndPowerOff
		case "confirm":
			m = computetest.MethodConfirmMigration
		case "revert":
			m = computetest.MethodFinishRevertMigration
		case "revert-stopped":
			m = computetest.MethodDestroy
		default:
			continue
		}
		c.name += "-" + string(m) + "-fails"
		c.fault = &computetest.Fault{Method: m, Nth: 1}
		if m == computetest.MethodDestroy {
			// The revert's destroy is tried again in both modes: it
			// fails for good to reach the failure path.
			c.fault.Nth = 0
		}
		out = append(out, c)
	}
	return out
}

// faultPoint is one place a driver call can fail: a method's start or one
// of its steps, the nth time it is reached.
type faultPoint struct {
	method computetest.Method
	step   string
	nth    int
}

func (p faultPoint) String() string { return fmt.Sprintf("%s@%s#%d", p.method, p.step, p.nth) }

// faultPoints runs the case once without faults and lists every point
// its operation reaches.
func (c sweepCase) faultPoints(t *testing.T, nova bool) []faultPoint {
	h := c.prepare(t, nova)
	seen := map[[2]string]int{}
	var pts []faultPoint
	h.driver.SetHook(func(call computetest.Call) error {
		k := [2]string{string(call.Method), call.Step}
		seen[k]++
		pts = append(pts, faultPoint{method: call.Method, step: call.Step, nth: seen[k]})
		return nil
	})
	if err := c.run(context.Background(), h.orch("a")); err != nil {
		t.Fatalf("%s without faults: %v", c.name, err)
	}
	return pts
}

// TestFaultSweep fails every driver call and every step of a call, once,
// in each operation, in both modes; after each the instance must rest in
// a state the invariants allow, with quota settled and no orphan disk,
// and Resume must find nothing to do.
func TestFaultSweep(t *testing.T) {
	for _, nova := range []bool{false, true} {
		for _, c := range sweepCases() {
			c, nova := c, nova
			t.Run(fmt.Sprintf("%s/nova=%v", c.name, nova), func(t *testing.T) {
				pts := c.faultPoints(t, nova)
				if len(pts) == 0 {
					t.Fatal("the operation made no driver call")
				}
				t.Logf("%d fault points", len(pts))
				for _, p := range pts {
					h := c.prepare(t, nova)
					h.driver.InjectFault(computetest.Fault{Method: p.method, Step: p.step, Nth: p.nth})
					ctx := context.Background()
					err := c.run(ctx, h.orch("a"))
					benign := p.method == computetest.MethodGetInfo || p.method == computetest.MethodPowerOff ||
						strings.HasPrefix(c.name, "revert") && p.method == computetest.MethodDestroy || // tried again
						!nova && (p.method == computetest.MethodFinishRevertMigration ||
							c.name == "confirm" && p.method == computetest.MethodConfirmMigration)
					if err == nil && !benign {
						t.Errorf("%s: fault at %s: no error", c.name, p)
					}
					if ierr := h.invariants(ctx, "i1"); ierr != nil {
						t.Errorf("%s: fault at %s (%v): %v", c.name, p, err, ierr)
						continue
					}
					h.driver.ClearFaults()
					if ocs, err := h.orch("b").Resume(ctx); err != nil || len(ocs) != 0 {
						t.Errorf("%s: fault at %s: Resume after it: %v %v", c.name, p, ocs, err)
					}
				}
			})
		}
	}
}

// TestCrashSweep stops the orchestrator right after each step it
// persists (its context cancelled, its leases never released, as a
// process that dies), then resumes with a new orchestrator once the lease
// has expired: every case must end in a resting state with the
// invariants held. Before the expiry, the new orchestrator must skip the
// operation with a *compute.LeaseHeldError.
func TestCrashSweep(t *testing.T) {
	for _, nova := range []bool{false, true} {
		for _, c := range append(sweepCases(), failingCases()...) {
			c, nova := c, nova
			t.Run(fmt.Sprintf("%s/nova=%v", c.name, nova), func(t *testing.T) {
				h := c.prepare(t, nova)
				before := h.store.steps
				if err := c.run(context.Background(), h.orch("a")); err != nil && c.fault == nil {
					t.Fatal(err)
				}
				n := h.store.steps - before
				if n < 2 {
					t.Fatalf("only %d steps persisted", n)
				}
				t.Logf("%d crash points", n)
				for k := 1; k <= n; k++ {
					crashAt(t, c, nova, k)
				}
			})
		}
	}
}

func crashAt(t *testing.T, c sweepCase, nova bool, k int) {
	h := c.prepare(t, nova)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h.store.dropRelease = true
	h.store.armCrash(k, cancel)
	err := c.run(ctx, h.orch("a"))
	h.store.armCrash(0, nil)
	h.store.dropRelease = false
	bg := context.Background()
	if err == nil {
		// The last step was the crash point: nothing left to resume.
		if ierr := h.invariants(bg, "i1"); ierr != nil {
			t.Errorf("%s: crash after step %d, finished: %v", c.name, k, ierr)
		}
		return
	}
	var ie *InterruptedError
	if !errors.As(err, &ie) {
		if c.fault == nil {
			t.Errorf("%s: crash after step %d: %v", c.name, k, err)
		}
		if ierr := h.invariants(bg, "i1"); ierr != nil {
			t.Errorf("%s: crash after step %d, ended with %v: %v", c.name, k, err, ierr)
		}
		return
	}
	ocs, rerr := h.orch("b").Resume(bg)
	if rerr == nil && len(ocs) > 0 {
		t.Errorf("%s: crash after step %d: Resume did not skip the held lease: %+v", c.name, k, ocs)
	}
	h.clock.Advance(31 * time.Second)
	ocs, rerr = h.orch("b").Resume(bg)
	if rerr != nil {
		t.Errorf("%s: crash after step %d: Resume: %v", c.name, k, rerr)
	}
	if ierr := h.invariants(bg, "i1"); ierr != nil {
		t.Errorf("%s: crash after step %d, resumed %+v: %v", c.name, k, ocs, ierr)
	}
}
