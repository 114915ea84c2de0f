package rescue

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/compute/computetest"
	"github.com/xenflow/xenflow/statemachine"
)

// crashingStore cancels the orchestrator's context right after its n-th
// persisted step: the orchestrator dies with that step written.
type crashingStore struct {
	compute.Store
	n      int32
	seen   atomic.Int32
	cancel context.CancelFunc
}

func (s *crashingStore) Transition(ctx context.Context, req compute.TransitionRequest) (*compute.Instance, *compute.Migration, error) {
	inst, mig, err := s.Store.Transition(ctx, req)
	if err == nil && s.seen.Add(1) == s.n {
		s.cancel()
	}
	return inst, mig, err
}

// crash is a point the first orchestrator dies at: after a persisted step,
// or in the middle of a driver call.
type crash struct {
	afterStep int32  // 1-based; 0 means at a driver point
	call      int    // the driver point's number, 1-based
	desc      string // for the test name
}

// TestCrashSweep stops the orchestrator after every persisted step and at
// every driver point of rescue and of unrescue, lets its lease expire and
// resumes with a new orchestrator: the invariants hold, no task is left,
// and a resumed rescue ends with the original restored.
func TestCrashSweep(t *testing.T) {
	rescue := func(w *world, o *Orchestrator, ctx context.Context) error {
		_, err := o.Rescue(ctx, RescueRequest{InstanceUUID: testUUID})
		return err
	}
	unrescue := func(w *world, o *Orchestrator, ctx context.Context) error {
		_, err := o.Unrescue(ctx, UnrescueRequest{InstanceUUID: testUUID})
		return err
	}
	for _, vm := range []statemachine.VMState{statemachine.VMActive, statemachine.VMStopped} {
		for _, tc := range []struct {
			name    string
			prepare bool // rescue first, then crash the unrescue
			op      func(*world, *Orchestrator, context.Context) error
		}{{"rescue", false, rescue}, {"unrescue", true, unrescue}} {
			prepared := func(w *world, o *Orchestrator, ctx context.Context) error {
				if tc.prepare {
					if err := rescue(w, o, ctx); err != nil {
						return err
					}
					w.driver.SetHook(nil)
				}
				return nil
			}
			w := newWorld(t, vm)
			if err := prepared(w, w.o, context.Background()); err != nil {
				t.Fatal(err)
			}
			points := crashPointsFrom(t, w, tc.op)
			for _, c := range points {
				t.Run(fmt.Sprintf("%s/%s/%s", vm, tc.name, c.desc), func(t *testing.T) {
					w := newWorld(t, vm)
					root := w.rootVDI()
					if err := prepared(w, w.o, context.Background()); err != nil {
						t.Fatal(err)
					}
					runCrashed(t, w, c, tc.op)
					w.clock.Advance(2 * time.Minute) // the dead orchestrator's lease expires
					if err := w.newOrchestrator("o2").Resume(context.Background()); err != nil {
						t.Fatalf("Resume: %v", err)
					}
					w.checkInvariants(root, vm)
					got := w.instance().VMState
					if tc.name == "unrescue" && got != statemachine.VMActive {
						t.Fatalf("a resumed unrescue ended %s", got)
					}
					if tc.name == "rescue" && got != statemachine.VMRescued && got != vm {
						t.Fatalf("a resumed rescue ended %s", got)
					}
				})
			}
		}
	}
}

// crashPointsFrom counts op's persisted steps and driver points in w as it
// stands (the world is used up).
func crashPointsFrom(t *testing.T, w *world, op func(*world, *Orchestrator, context.Context) error) []crash {
	t.Helper()
	counter := &crashingStore{Store: w.store, n: -1, cancel: func() {}}
	points := 0
	w.driver.SetHook(func(computetest.Call) error { points++; return nil })
	o, err := New(Config{Store: counter, Driver: w.driver, Now: w.clock.Now, Owner: "count", LeaseTTL: time.Minute, Attempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := op(w, o, context.Background()); err != nil {
		t.Fatal(err)
	}
	w.driver.SetHook(nil)
	var out []crash
	for i := int32(1); i <= counter.seen.Load(); i++ {
		out = append(out, crash{afterStep: i, desc: fmt.Sprintf("after-step-%d", i)})
	}
	for i := 1; i <= points; i++ {
		out = append(out, crash{call: i, desc: fmt.Sprintf("driver-point-%d", i)})
	}
	return out
}

// runCrashed runs op with an orchestrator that dies at c.
func runCrashed(t *testing.T, w *world, c crash, op func(*world, *Orchestrator, context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	store := &crashingStore{Store: w.store, n: c.afterStep, cancel: cancel}
	if c.call > 0 {
		store.n = -1
		n := 0
		w.driver.SetHook(func(computetest.Call) error {
			if n++; n == c.call {
				cancel()
			}
			return nil
		})
		defer w.driver.SetHook(nil)
	}
	o, err := New(Config{Store: store, Driver: w.driver, Now: w.clock.Now, Owner: "o1", LeaseTTL: time.Minute, Attempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := op(w, o, ctx); err == nil && ctx.Err() == nil {
		t.Fatal("the crash point was never reached")
	}
}

// TestResumeLeaveHeld: Resume leaves an operation whose lease another
// orchestrator holds, and says so; nothing changes.
func TestResumeLeaveHeld(t *testing.T) {
	w := newWorld(t, statemachine.VMActive)
	c := crash{afterStep: 1}
	runCrashed(t, w, c, func(w *world, o *Orchestrator, ctx context.Context) error {
		_, err := o.Rescue(ctx, RescueRequest{InstanceUUID: testUUID})
		return err
	})
	// o1 is alive and holds the lease again (a crashed one released it).
	if _, err := w.store.AcquireLease(context.Background(), compute.LeaseRequest{InstanceUUID: testUUID, Owner: "o1", TTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
	before := w.instance()
	err := w.newOrchestrator("o2").Resume(context.Background())
	var re *ResumeError
	if !errors.As(err, &re) || re.Held[testUUID].Owner != "o1" {
		t.Fatalf("Resume over a held lease = %v", err)
	}
	if after := w.instance(); after.FlowState(nil) != before.FlowState(nil) {
		t.Fatalf("instance changed: %s -> %s", before.FlowState(nil), after.FlowState(nil))
	}
}

// TestConcurrentRescue: two orchestrators rescue the same instance at once:
// exactly one wins, the other gets a typed error, one rescue guest.
func TestConcurrentRescue(t *testing.T) {
	w := newWorld(t, statemachine.VMActive)
	root := w.rootVDI()
	o2 := w.newOrchestrator("o2")
	errs := make(chan error, 2)
	for _, o := range []*Orchestrator{w.o, o2} {
		go func() {
			_, err := o.Rescue(context.Background(), RescueRequest{InstanceUUID: testUUID})
			errs <- err
		}()
	}
	var wins int
	for range 2 {
		err := <-errs
		switch {
		case err == nil:
			wins++
		case errors.Is(err, compute.ErrLease), errors.Is(err, compute.ErrConflict), errors.Is(err, statemachine.ErrInvalidState):
		default:
			t.Fatalf("loser's error is not typed: %v", err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d rescues won", wins)
	}
	w.checkInvariants(root, statemachine.VMActive)
}
