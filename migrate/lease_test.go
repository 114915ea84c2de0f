package migrate

import (
	"context"
	"errors"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/compute/computetest"
	sm "github.com/xenflow/xenflow/statemachine"
)

// timerClock is a hand-moved clock with timers: AfterFunc schedules a
// function on it, and Advance moves the clock from one timer to the next,
// running each function whose time came, in order, on the caller's
// goroutine, before it moves on. Nothing depends on real time.
type timerClock struct {
	*computetest.Clock
	mu     sync.Mutex
	timers []*clockTimer
}

type clockTimer struct {
	at      time.Time
	f       func()
	stopped bool
}

// AfterFunc is Config.AfterFunc on the clock.
func (c *timerClock) AfterFunc(d time.Duration, f func()) func() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &clockTimer{at: c.Now().Add(d), f: f}
	c.timers = append(c.timers, t)
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		was := !t.stopped
		t.stopped = true
		return was
	}
}

// Advance moves the clock by d, firing the timers due on the way.
func (c *timerClock) Advance(d time.Duration) {
	end := c.Now().Add(d)
	for {
		t := c.next(end)
		if t == nil {
			c.Clock.Advance(end.Sub(c.Now()))
			return
		}
		c.Clock.Advance(t.at.Sub(c.Now()))
		t.f()
	}
}

// next takes the earliest live timer due by end off the list.
func (c *timerClock) next(end time.Time) *clockTimer {
	c.mu.Lock()
	defer c.mu.Unlock()
	sort.SliceStable(c.timers, func(i, j int) bool { return c.timers[i].at.Before(c.timers[j].at) })
	for i, t := range c.timers {
		if t.stopped {
			continue
		}
		if t.at.After(end) {
			return nil
		}
		c.timers = append(c.timers[:i:i], c.timers[i+1:]...)
		t.stopped = true
		return t
	}
	return nil
}

// live counts the timers not yet fired or stopped.
func (c *timerClock) live() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, t := range c.timers {
		if !t.stopped {
			n++
		}
	}
	return n
}

const leaseTestTTL = 30 * time.Second

// leaseHarness is a harness with instance i1 and orchestrator a, whose
// lease of leaseTestTTL is kept alive on a timerClock over the harness's
// clock.
func leaseHarness(t *testing.T) (*harness, *timerClock, *Orchestrator) {
	t.Helper()
	h := newHarness(t, 3)
	if err := h.addInstance(context.Background(), "i1", "host1", "small", sm.VMActive, false); err != nil {
		t.Fatal(err)
	}
	tc := &timerClock{Clock: h.clock}
	o, err := New(Config{Store: h.store, Driver: h.driver, Quota: h.ledger, Flavors: h.flavors, Hosts: h.hosts,
		Now: h.clock.Now, AfterFunc: tc.AfterFunc, Owner: "a", LeaseTTL: leaseTestTTL})
	if err != nil {
		t.Fatal(err)
	}
	return h, tc, o
}

// leaseCase is an operation whose driver call method stalls (the clock
// moves on while it runs).
type leaseCase struct {
	name   string
	setup  string // "resize": the instance is resized to medium first
	method computetest.Method
	run    func(ctx context.Context, o *Orchestrator) error
	want   sm.VMState
}

func leaseCases() []leaseCase {
	resize, confirm, revert := resizeI1("medium"), confirmI1, revertI1
	return []leaseCase{
		{name: "resize/disk-move", method: computetest.MethodMigrateDiskAndPowerOff, run: resize, want: sm.VMResized},
		{name: "resize/finish", method: computetest.MethodFinishMigration, run: resize, want: sm.VMResized},
		{name: "confirm", setup: "resize", method: computetest.MethodConfirmMigration, run: confirm, want: sm.VMActive},
		{name: "confirm/power-state", setup: "resize", method: computetest.MethodGetInfo, run: confirm, want: sm.VMActive},
		{name: "revert/destroy", setup: "resize", method: computetest.MethodDestroy, run: revert, want: sm.VMActive},
		{name: "revert/restore", setup: "resize", method: computetest.MethodFinishRevertMigration, run: revert,
			want: sm.VMActive},
	}
}

// prepare builds the harness and takes the instance to where the case's
// operation starts.
func (c leaseCase) prepare(t *testing.T) (*harness, *timerClock, *Orchestrator) {
	t.Helper()
	h, tc, o := leaseHarness(t)
	if c.setup == "resize" {
		if err := resizeI1("medium")(context.Background(), o); err != nil {
			t.Fatal(err)
		}
	}
	return h, tc, o
}

// stallOnce runs stall at the first start of method once the run has
// written its first step.
func stallOnce(h *harness, method computetest.Method, stall func()) {
	var once sync.Once
	h.driver.SetHook(func(c computetest.Call) error {
		if c.Method == method && c.Step == "" && h.store.writeCount("i1") > 0 {
			once.Do(stall)
		}
		return nil
	})
}

// TestLeaseKeptAliveWholeRun: whichever driver call of an operation
// stalls for many lease periods (the long disk move and finish, or the
// short calls of confirm and revert), the run's keep-alive renews the lease on the
// orchestrator's clock, so the operation ends as it would have, under
// one fence, and leaves no renewal scheduled.
func TestLeaseKeptAliveWholeRun(t *testing.T) {
	for _, c := range leaseCases() {
		t.Run(c.name, func(t *testing.T) {
			h, tc, o := c.prepare(t)
			stallOnce(h, c.method, func() { tc.Advance(5 * leaseTestTTL) })
			if err := c.run(context.Background(), o); err != nil {
				t.Fatalf("%s stalled for five lease periods: %v", c.name, err)
			}
			inst, err := h.mem.GetInstance(context.Background(), "i1")
			if err != nil || inst.VMState != c.want {
				t.Fatalf("instance %+v, %v; want %s", inst, err, c.want)
			}
			if v := h.store.fenceViolations(); len(v) > 0 {
				t.Fatal(v)
			}
			if n := tc.live(); n != 0 {
				t.Fatalf("%d renewals still scheduled after the run", n)
			}
			if err := h.invariants(context.Background(), "i1"); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestLeaseLostCancelsRun: the Store cannot be reached while a step
// stalls, the lease expires and another owner takes it; the next renewal
// finds it lost and cancels the run: the operation stops with the
// *compute.LeaseLostError, makes no further driver call that changes a
// guest (the run's context, cancelled, reaches every call; the
// FakeDriver's reads ignore it) and writes no further step, and the new
// owner resumes it to a resting state.
func TestLeaseLostCancelsRun(t *testing.T) {
	for _, c := range leaseCases() {
		t.Run(c.name, func(t *testing.T) {
			h, tc, o := c.prepare(t)
			ctx := context.Background()
			var calls, writes int
			stallOnce(h, c.method, func() {
				h.store.setRenewErr(errors.New("store unreachable"))
				tc.Advance(leaseTestTTL + time.Second) // renewals fail, the lease expires
				l, err := h.store.AcquireLease(ctx, compute.LeaseRequest{InstanceUUID: "i1", Owner: "b", TTL: time.Minute})
				if err != nil {
					t.Error(err)
				}
				if err := h.store.ReleaseLease(ctx, l); err != nil {
					t.Error(err)
				}
				h.store.setRenewErr(nil)
				tc.Advance(leaseTestTTL / 3) // the next renewal finds the lease lost
				calls, writes = changes(h.driver), h.store.writeCount("i1")
			})
			err := c.run(ctx, o)
			var lost *compute.LeaseLostError
			if !errors.As(err, &lost) {
				t.Fatalf("%s: %v, want a *compute.LeaseLostError", c.name, err)
			}
			if n := changes(h.driver); n != calls {
				t.Errorf("%d driver calls after the lease was lost", n-calls)
			}
			if n := h.store.writeCount("i1"); n != writes {
				t.Errorf("%d steps written after the lease was lost", n-writes)
			}
			h.driver.SetHook(nil)
			if _, err := h.orch("b").Resume(ctx); err != nil {
				t.Fatalf("Resume by the new owner: %v", err)
			}
			if err := h.invariants(ctx, "i1"); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// changes counts the driver's calls that change a guest (all but GetInfo).
func changes(d *computetest.FakeDriver) int {
	n := 0
	for _, c := range d.Calls() {
		if c.Method != computetest.MethodGetInfo {
			n++
		}
	}
	return n
}

// stuckRelease is a Store whose ReleaseLease does not answer until its
// context ends, as when a row lock a dead client's session holds blocks
// the UPDATE.
type stuckRelease struct {
	compute.Store
	gaveUp chan error
}

func (s stuckRelease) ReleaseLease(ctx context.Context, l compute.Lease) error {
	<-ctx.Done()
	s.gaveUp <- ctx.Err()
	return ctx.Err()
}

// TestReleaseBounded: a lease release the Store never answers is given
// up after the lease's lifetime; the operation itself has ended.
func TestReleaseBounded(t *testing.T) {
	h := newHarness(t, 3)
	if err := h.addInstance(context.Background(), "i1", "host1", "small", sm.VMActive, false); err != nil {
		t.Fatal(err)
	}
	st := stuckRelease{Store: h.store, gaveUp: make(chan error, 1)}
	o, err := New(Config{Store: st, Driver: h.driver, Quota: h.ledger, Flavors: h.flavors, Hosts: h.hosts,
		Now: h.clock.Now, Owner: "a", LeaseTTL: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- resizeI1("medium")(context.Background(), o) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the resize waited for a release the Store never answers")
	}
	if err := <-st.gaveUp; !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("the release ended with %v", err)
	}
}
