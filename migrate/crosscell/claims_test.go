package crosscell

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/compute/computetest"
	"github.com/xenflow/xenflow/migrate"
	"github.com/xenflow/xenflow/scheduler"
	sm "github.com/xenflow/xenflow/statemachine"
)

// lastRoom fills c2 so that only c2-h1 has room, for one medium flavor:
// vm1 and vm2 (small, on c1-h1) cannot both move there.
func lastRoom(t *testing.T, f *fixture) {
	ctx := context.Background()
	lastRoomIn(t, f)
	f.boot(ctx, vm1, "c1", "c1-h1", "small", sm.VMActive)
	f.boot(ctx, vm2, "c1", "c1-h1", "small", sm.VMActive)
}

// lastRoomIn fills c2-h2 and leaves room for one medium flavor on c2-h1.
func lastRoomIn(t *testing.T, f *fixture) {
	for host, mb := range map[string]int{"c2-h1": 65536 - 4096 - 100, "c2-h2": 65536} {
		filler := &compute.Instance{UUID: "filler-" + host, Flavor: &compute.Flavor{ID: "filler", MemoryMB: mb, VCPUs: 1, RootGB: 1}}
		if err := f.driver.AddGuest(host, filler, sm.PowerRunning); err != nil {
			t.Fatal(err)
		}
	}
}

func resizeTo(ctx context.Context, c *Conductor, id, flavor string) (*Result, error) {
	return c.Resize(ctx, migrate.ResizeRequest{InstanceUUID: id, FlavorID: flavor})
}

// TestClaimHeldForTheMove: while vm1's move to c2-h1 runs (between
// PrepResizeAtDestTask and the spawn), vm2's move finds no room there, as
// the claim holds the host's last room; the claim lasts until vm1 is
// confirmed.
func TestClaimHeldForTheMove(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	lastRoom(t, f)
	c := f.conductor("conductor")
	var once sync.Once
	var second error
	f.driver.SetHook(func(call computetest.Call) error {
		if call.Method == computetest.MethodSnapshot && call.InstanceUUID == vm1 && call.Step == "" {
			once.Do(func() { _, second = resizeTo(ctx, c, vm2, "medium") })
		}
		return nil
	})
	res, err := resizeTo(ctx, c, vm1, "medium")
	if err != nil || res.DestHost != "c2-h1" {
		t.Fatalf("vm1: %+v, %v; want VERIFY_RESIZE on c2-h1", res, err)
	}
	if !errors.Is(second, scheduler.ErrNoValidHost) {
		t.Fatalf("vm2 during vm1's move: %v, want NoValidHost", second)
	}
	if !c.claims.held(res.MigrationUUID) {
		t.Fatal("the claim was released while vm1 waits in VERIFY_RESIZE")
	}
	if _, err := c.Confirm(ctx, migrate.ActionRequest{InstanceUUID: vm1}); err != nil {
		t.Fatal(err)
	}
	if c.claims.held(res.MigrationUUID) {
		t.Fatal("the claim outlived the confirm")
	}
	for _, id := range []string{vm1, vm2} {
		if err := f.check(ctx, id); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
	}
}

// TestClaimReleased: the claim of a move that is rolled back (its spawn
// fails) or reverted is released, and the next move gets the room.
func TestClaimReleased(t *testing.T) {
	cases := []struct {
		name string
		// end ends vm1's move to c2-h1.
		end func(ctx context.Context, t *testing.T, f *fixture, c *Conductor) string
	}{
		{"rolled back", func(ctx context.Context, t *testing.T, f *fixture, c *Conductor) string {
			f.driver.InjectFault(computetest.Fault{Method: computetest.MethodSpawn, Nth: 1})
			res, err := resizeTo(ctx, c, vm1, "medium")
			var te *TaskError
			if !errors.As(err, &te) || te.Task != "FinishResizeAtDestTask" {
				t.Fatalf("vm1 with a failing spawn: %v", err)
			}
			f.driver.ClearFaults()
			return res.MigrationUUID
		}},
		{"reverted", func(ctx context.Context, t *testing.T, f *fixture, c *Conductor) string {
			res, err := resizeTo(ctx, c, vm1, "medium")
			if err == nil {
				_, err = c.Revert(ctx, migrate.ActionRequest{InstanceUUID: vm1})
			}
			if err != nil {
				t.Fatal(err)
			}
			return res.MigrationUUID
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			f := newFixture(t)
			lastRoom(t, f)
			c := f.conductor("conductor")
			mig := tc.end(ctx, t, f, c)
			if mig == "" || c.claims.held(mig) {
				t.Fatalf("vm1's claim (migration %q) is still held", mig)
			}
			if res, err := resizeTo(ctx, c, vm2, "medium"); err != nil || res.DestHost != "c2-h1" {
				t.Fatalf("vm2 after vm1's move ended: %+v, %v; want c2-h1", res, err)
			}
			for _, id := range []string{vm1, vm2} {
				if err := f.check(ctx, id); err != nil {
					t.Fatalf("%s: %v", id, err)
				}
			}
		})
	}
}

// TestClaimSeenInTheCell: while vm1's cross-cell move to c2-h1 holds its
// claim, a move within c2 (vm2, on c2-h2, by c2's same-cell orchestrator)
// finds no room on c2-h1 either.
func TestClaimSeenInTheCell(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	lastRoomIn(t, f)
	f.boot(ctx, vm1, "c1", "c1-h1", "small", sm.VMActive)
	f.boot(ctx, vm2, "c2", "c2-h2", "small", sm.VMActive)
	c := f.conductor("conductor")
	same, ok := c.SameCell("c2")
	if !ok {
		t.Fatal("no orchestrator for c2")
	}
	var once sync.Once
	var second error
	f.driver.SetHook(func(call computetest.Call) error {
		if call.Method == computetest.MethodSnapshot && call.InstanceUUID == vm1 && call.Step == "" {
			once.Do(func() { _, second = same.Resize(ctx, migrate.ResizeRequest{InstanceUUID: vm2, FlavorID: "medium"}) })
		}
		return nil
	})
	if res, err := resizeTo(ctx, c, vm1, "medium"); err != nil || res.DestHost != "c2-h1" {
		t.Fatalf("vm1: %+v, %v; want VERIFY_RESIZE on c2-h1", res, err)
	}
	if !errors.Is(second, scheduler.ErrNoValidHost) {
		t.Fatalf("vm2's move within c2 during vm1's: %v, want NoValidHost", second)
	}
	for _, id := range []string{vm1, vm2} {
		if err := f.check(ctx, id); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
	}
}

// TestClaimResumed: a conductor that resumes after another stopped holds
// the claims of the cross-cell moves waiting in VERIFY_RESIZE again, until
// it confirms them.
func TestClaimResumed(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	lastRoom(t, f)
	res, err := resizeTo(ctx, f.conductor("first"), vm1, "medium")
	if err != nil {
		t.Fatal(err)
	}
	second := f.conductor("second")
	if second.claims.held(res.MigrationUUID) {
		t.Fatal("a new conductor holds a claim before it resumed")
	}
	if _, err := second.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	if !second.claims.held(res.MigrationUUID) {
		t.Fatal("the resumed move waiting in VERIFY_RESIZE holds no claim")
	}
	if _, err := second.Confirm(ctx, migrate.ActionRequest{InstanceUUID: vm1}); err != nil {
		t.Fatal(err)
	}
	if second.claims.held(res.MigrationUUID) {
		t.Fatal("the claim outlived the confirm")
	}
}
