package crosscell

import (
	"context"
	"testing"
	"time"

	sm "github.com/xenflow/xenflow/statemachine"
)

// scenario is an operation swept at every point, after its setup.
type scenario struct {
	name  string
	vm    sm.VMState
	setup []op
	op    op
}

func scenarios() []scenario {
	active, stopped := sm.VMActive, sm.VMStopped
	return []scenario{
		{"resize", active, nil, resize("medium")},
		{"stopped resize", stopped, nil, resize("medium")},
		{"cold migrate", active, nil, coldMigrate("c2-h1")},
		{"confirm", active, []op{resize("medium")}, confirm(active)},
		{"revert", active, []op{resize("medium")}, revert(active)},
		{"stopped revert", stopped, []op{resize("medium")}, revert(stopped)},
	}
}

// prepare builds a fixture with the scenario's setup done.
func (sc scenario) prepare(t *testing.T) (*fixture, *Conductor) {
	return sc.prepareOn(t, newFixture(t))
}

// prepareOn is prepare on the fixture f.
func (sc scenario) prepareOn(t *testing.T, f *fixture) (*fixture, *Conductor) {
	ctx := context.Background()
	f.boot(ctx, vm1, "c1", "c1-h1", "small", sc.vm)
	c := f.conductor("first")
	for _, o := range sc.setup {
		if _, err := o.run(ctx, c); err != nil {
			t.Fatalf("setup %s: %v", o.name, err)
		}
	}
	return f, c
}

// points counts the scenario's points in one mode.
func (sc scenario) points(t *testing.T, fault bool) int {
	f, c := sc.prepare(t)
	f.p.arm(0, fault, nil)
	if _, err := sc.op.run(context.Background(), c); err != nil {
		t.Fatalf("%s: %v", sc.op.name, err)
	}
	return f.p.count()
}

// recover advances the clock past the leases and resumes with a new
// conductor, then checks the invariants.
// It returns the cell the instance ended in.
func (f *fixture) recover(t *testing.T, what string) string {
	ctx := context.Background()
	f.p.arm(0, false, nil)
	f.clock.Advance(time.Minute)
	if _, err := f.conductor("second").Resume(ctx); err != nil {
		t.Errorf("%s: resume: %v", what, err)
	}
	if err := f.check(ctx, vm1); err != nil {
		t.Errorf("%s: %v", what, err)
	}
	return f.mappedCell(ctx, vm1)
}

// TestFaultSweep fails every store write, mapping write and driver call
// of each scenario once: a forward move is rolled back to the source
// cell, a confirm or revert retries its driver calls, and after a resume
// the invariants hold.
func TestFaultSweep(t *testing.T) {
	for _, sc := range scenarios() {
		t.Run(sc.name, func(t *testing.T) {
			n := sc.points(t, true)
			if n < 3 {
				t.Fatalf("only %d points", n)
			}
			ended := map[string]int{}
			for k := 1; k <= n; k++ {
				f, c := sc.prepare(t)
				f.p.arm(k, true, nil)
				_, err := sc.op.run(context.Background(), c)
				what := sc.name + " fault at point " + itoa(k)
				if len(f.p.log) >= k {
					what += " (" + f.p.log[k-1] + ")"
				}
				t.Logf("%s: %v", what, err)
				ended[f.recover(t, what)]++
			}
			t.Logf("%s: %d fault points, ended in %v", sc.name, n, ended)
			if sc.setup == nil && ended["c1"] != n {
				t.Errorf("every fault of a forward move rolls it back to c1: %v", ended)
			}
		})
	}
}

// TestCrashSweep stops each scenario after every write and before every
// driver call; a second conductor resumes it and the invariants hold.
func TestCrashSweep(t *testing.T) {
	for _, sc := range scenarios() {
		t.Run(sc.name, func(t *testing.T) {
			n := sc.points(t, false)
			for k := 1; k <= n; k++ {
				f, c := sc.prepare(t)
				ctx, cancel := context.WithCancel(context.Background())
				f.p.arm(k, false, cancel)
				_, _ = sc.op.run(ctx, c)
				cancel()
				f.recover(t, sc.name+" crash at point "+itoa(k))
			}
			t.Logf("%s: %d crash points", sc.name, n)
		})
	}
}

func itoa(n int) string {
	const digits = "0123456789"
	if n < 10 {
		return digits[n : n+1]
	}
	return itoa(n/10) + digits[n%10:n%10+1]
}

// TestResumeWaitsForTheLease stops a resize in the middle of its tasks
// without releasing its leases: a second conductor leaves it while they
// last and finishes it once they expired.
func TestResumeWaitsForTheLease(t *testing.T) {
	sc := scenarios()[0]
	for _, k := range []int{3, 8, 12} {
		f, c := sc.prepare(t)
		ctx, cancel := context.WithCancel(context.Background())
		f.p.arm(k, false, cancel)
		_, _ = sc.op.run(ctx, c)
		cancel()
		f.p.arm(0, false, nil)
		before, _ := f.copies(context.Background(), vm1)
		second := f.conductor("second")
		if _, err := second.Resume(context.Background()); err != nil {
			t.Fatalf("point %d: resume under a held lease: %v", k, err)
		}
		after, _ := f.copies(context.Background(), vm1)
		if len(before) != len(after) || f.check(context.Background(), vm1) == nil {
			t.Fatalf("point %d: the move went on under another owner's lease", k)
		}
		f.clock.Advance(time.Minute)
		if _, err := second.Resume(context.Background()); err != nil {
			t.Fatalf("point %d: %v", k, err)
		}
		if err := f.check(context.Background(), vm1); err != nil {
			t.Fatalf("point %d: %v", k, err)
		}
	}
}
