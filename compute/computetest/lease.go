package computetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/xenflow/xenflow/compute"
)

// leaseStep is one call of a lease scenario.
type leaseStep struct {
	name string
	// do makes the call; leases holds the leases got so far by name.
	do    func(f *fixture, leases map[string]compute.Lease) (compute.Lease, error)
	check func(t *testing.T, f *fixture, leases map[string]compute.Lease, got compute.Lease, err error)
}

func acquireAs(owner string, ttl time.Duration) func(*fixture, map[string]compute.Lease) (compute.Lease, error) {
	return func(f *fixture, _ map[string]compute.Lease) (compute.Lease, error) {
		return f.store.AcquireLease(f.ctx, compute.LeaseRequest{InstanceUUID: "i1", Owner: owner, TTL: ttl})
	}
}

func renew(name string, ttl time.Duration) func(*fixture, map[string]compute.Lease) (compute.Lease, error) {
	return func(f *fixture, ls map[string]compute.Lease) (compute.Lease, error) {
		return f.store.RenewLease(f.ctx, ls[name], ttl)
	}
}

func release(name string) func(*fixture, map[string]compute.Lease) (compute.Lease, error) {
	return func(f *fixture, ls map[string]compute.Lease) (compute.Lease, error) {
		return compute.Lease{}, f.store.ReleaseLease(f.ctx, ls[name])
	}
}

func advance(d time.Duration) func(*fixture, map[string]compute.Lease) (compute.Lease, error) {
	return func(f *fixture, _ map[string]compute.Lease) (compute.Lease, error) {
		f.clock.Advance(d)
		return compute.Lease{}, nil
	}
}

// granted checks a lease for owner with a fence larger than the one named
// after (none: any), or equal to it when same.
func granted(owner, after string, same bool, ttl time.Duration) func(*testing.T, *fixture, map[string]compute.Lease, compute.Lease, error) {
	return func(t *testing.T, f *fixture, ls map[string]compute.Lease, got compute.Lease, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("want a lease for %s, got %v", owner, err)
		}
		if got.Owner != owner || got.InstanceUUID != "i1" || !got.Expires.Equal(f.clock.Now().Add(ttl)) {
			t.Fatalf("lease %+v, want owner %s expiring at %v", got, owner, f.clock.Now().Add(ttl))
		}
		if prev, ok := ls[after]; ok && ((same && got.Fence != prev.Fence) || (!same && got.Fence <= prev.Fence)) {
			t.Fatalf("fence %d after %s's %d: want same=%v", got.Fence, after, prev.Fence, same)
		}
	}
}

func held(holder string) func(*testing.T, *fixture, map[string]compute.Lease, compute.Lease, error) {
	return func(t *testing.T, _ *fixture, _ map[string]compute.Lease, _ compute.Lease, err error) {
		t.Helper()
		e := wantErr[*compute.LeaseHeldError](t, err)
		if e.Holder != holder || !errors.Is(err, compute.ErrLease) {
			t.Fatalf("LeaseHeldError %+v, want holder %s", e, holder)
		}
	}
}

func lost(t *testing.T, _ *fixture, _ map[string]compute.Lease, _ compute.Lease, err error) {
	t.Helper()
	wantErr[*compute.LeaseLostError](t, err)
}

func noError(t *testing.T, _ *fixture, _ map[string]compute.Lease, _ compute.Lease, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func testLeases(t *testing.T, newStore NewStore) {
	const ttl = 30 * time.Second
	scenarios := []struct {
		name  string
		steps []leaseStep
	}{
		{"held until it expires", []leaseStep{
			{"a", acquireAs("o1", ttl), granted("o1", "", false, ttl)},
			{"b", acquireAs("o2", ttl), held("o1")},
			{"", advance(ttl - time.Nanosecond), noError},
			{"b", acquireAs("o2", ttl), held("o1")},
			{"", advance(time.Nanosecond), noError}, // now == Expires: expired
			{"b", acquireAs("o2", ttl), granted("o2", "a", false, ttl)},
			{"a", renew("a", ttl), lost},
		}},
		{"acquire again renews with the same fence", []leaseStep{
			{"a", acquireAs("o1", ttl), granted("o1", "", false, ttl)},
			{"", advance(ttl / 2), noError},
			{"a2", acquireAs("o1", ttl), granted("o1", "a", true, ttl)},
			{"", advance(ttl - time.Second), noError},
			{"b", acquireAs("o2", ttl), held("o1")},
		}},
		{"renew extends", []leaseStep{
			{"a", acquireAs("o1", ttl), granted("o1", "", false, ttl)},
			{"", advance(ttl - time.Second), noError},
			{"a2", renew("a", 2*ttl), granted("o1", "a", true, 2*ttl)},
			{"", advance(ttl), noError},
			{"b", acquireAs("o2", ttl), held("o1")},
			{"", advance(ttl), noError},
			{"a3", renew("a2", ttl), lost},
		}},
		{"release lets another in; every holder a larger fence", []leaseStep{
			{"a", acquireAs("o1", ttl), granted("o1", "", false, ttl)},
			{"", release("a"), noError},
			{"", release("a"), noError},
			{"b", acquireAs("o2", ttl), granted("o2", "a", false, ttl)},
			{"", release("a"), noError}, // a stale release changes nothing
			{"c", acquireAs("o1", ttl), held("o2")},
			{"", release("b"), noError},
			{"c", acquireAs("o1", ttl), granted("o1", "b", false, ttl)},
			{"a2", renew("a", ttl), lost},
		}},
		{"an expired holder gets a new fence", []leaseStep{
			{"a", acquireAs("o1", ttl), granted("o1", "", false, ttl)},
			{"", advance(ttl), noError},
			{"a2", acquireAs("o1", ttl), granted("o1", "a", false, ttl)},
		}},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			f := newFixture(t, newStore)
			f.createInstance(t, Instance("i1"))
			leases := map[string]compute.Lease{}
			for i, st := range sc.steps {
				got, err := st.do(f, leases)
				t.Logf("step %d (%s): %+v %v", i, st.name, got, err)
				st.check(t, f, leases, got, err)
				if err == nil && st.name != "" {
					leases[st.name] = got
				}
			}
		})
	}
}

func testLeaseBadInput(t *testing.T, newStore NewStore) {
	cases := []struct {
		name  string
		call  func(ctx context.Context, s compute.Store) error
		check func(t *testing.T, err error)
	}{
		{"unknown instance", func(ctx context.Context, s compute.Store) error {
			_, err := s.AcquireLease(ctx, compute.LeaseRequest{InstanceUUID: "i9", Owner: "o1", TTL: time.Second})
			return err
		}, wantNotFound},
		{"no owner", func(ctx context.Context, s compute.Store) error {
			_, err := s.AcquireLease(ctx, compute.LeaseRequest{InstanceUUID: "i1", TTL: time.Second})
			return err
		}, wantInvalid},
		{"zero ttl", func(ctx context.Context, s compute.Store) error {
			_, err := s.AcquireLease(ctx, compute.LeaseRequest{InstanceUUID: "i1", Owner: "o1"})
			return err
		}, wantInvalid},
		{"renew with a negative ttl", func(ctx context.Context, s compute.Store) error {
			l, err := s.AcquireLease(ctx, compute.LeaseRequest{InstanceUUID: "i1", Owner: "o1", TTL: time.Second})
			if err != nil {
				return err
			}
			_, err = s.RenewLease(ctx, l, -time.Second)
			return err
		}, wantInvalid},
		{"renew a lease never held", func(ctx context.Context, s compute.Store) error {
			_, err := s.RenewLease(ctx, compute.Lease{InstanceUUID: "i1", Owner: "o1", Fence: 7}, time.Second)
			return err
		}, func(t *testing.T, err error) { wantErr[*compute.LeaseLostError](t, err) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, newStore)
			f.createInstance(t, Instance("i1"))
			c.check(t, c.call(f.ctx, f.store))
		})
	}
}

func testLeaseRace(t *testing.T, newStore NewStore) {
	const racers = 32
	f := newFixture(t, newStore)
	f.createInstance(t, Instance("i1"))
	var wg sync.WaitGroup
	leases := make([]compute.Lease, racers)
	errs := make([]error, racers)
	for g := 0; g < racers; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			leases[g], errs[g] = f.store.AcquireLease(f.ctx, compute.LeaseRequest{InstanceUUID: "i1",
				Owner: string(rune('A' + g)), TTL: time.Minute})
		}()
	}
	wg.Wait()
	winners := 0
	for g, err := range errs {
		switch {
		case err == nil:
			winners++
		case !errors.Is(err, compute.ErrLease):
			t.Fatalf("owner %d: %v, want a *LeaseHeldError", g, err)
		}
	}
	if winners != 1 {
		t.Fatalf("%d owners got the lease, want exactly 1", winners)
	}
}

// testFencing: an owner whose lease expired and passed to another cannot
// write, even though its step would otherwise be valid; the new holder can.
func testFencing(t *testing.T, newStore NewStore) {
	f := newFixture(t, newStore)
	old := f.resizePrep(t)
	f.clock.Advance(2 * time.Minute)
	taker := f.acquire(t, "i1", "o2", time.Minute)
	if taker.Fence <= old.Fence {
		t.Fatalf("takeover fence %d, want more than %d", taker.Fence, old.Fence)
	}
	inst, mig := f.snapshot(t, "i1", "m1")
	req := compute.TransitionRequest{InstanceUUID: "i1", MigrationUUID: "m1", Expect: preMigrating,
		Lease: old, Apply: toMigrating}
	_, _, err := f.store.Transition(f.ctx, req)
	if e := wantErr[*compute.LeaseLostError](t, err); e.CurrentFence != taker.Fence {
		t.Fatalf("LeaseLostError.CurrentFence = %d, want the taker's %d", e.CurrentFence, taker.Fence)
	}
	f.unchanged(t, inst, mig)
	if _, err := f.store.RenewLease(f.ctx, old, time.Minute); !errors.Is(err, compute.ErrLease) {
		t.Fatalf("old holder renewed after takeover: %v", err)
	}
	req.Lease = taker
	if _, _, err := f.store.Transition(f.ctx, req); err != nil {
		t.Fatalf("the new holder's step: %v", err)
	}
}

func testCancelledContext(t *testing.T, newStore NewStore) {
	f := newFixture(t, newStore)
	lease := f.resizePrep(t)
	inst, mig := f.snapshot(t, "i1", "m1")
	ctx, cancel := context.WithCancel(f.ctx)
	cancel()
	_, _, err := f.store.Transition(ctx, compute.TransitionRequest{InstanceUUID: "i1", MigrationUUID: "m1",
		Expect: preMigrating, Lease: lease, Apply: toMigrating})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Transition with a cancelled context: %v", err)
	}
	if _, err := f.store.AcquireLease(ctx, compute.LeaseRequest{InstanceUUID: "i1", Owner: "o2", TTL: time.Minute}); !errors.Is(err, context.Canceled) {
		t.Fatalf("AcquireLease with a cancelled context: %v", err)
	}
	f.unchanged(t, inst, mig)
}
