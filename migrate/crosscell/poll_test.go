package crosscell

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/migrate"
	sm "github.com/xenflow/xenflow/statemachine"
)

const vm2 = "22222222-2222-4222-8222-222222222222"

// TestPollAutoConfirm leaves a cross-cell resize (vm1, c1 to c2) and a
// same-cell one (vm2, in c1) in VERIFY_RESIZE and polls at several times
// after them: with a window, both are confirmed once it has passed and not
// before; without one, nothing is.
func TestPollAutoConfirm(t *testing.T) {
	cases := []struct {
		name   string
		window time.Duration
		after  time.Duration
		// confirmed is whether the poll confirms the moves.
		confirmed bool
	}{
		{"inside the window", time.Hour, 59 * time.Minute, false},
		{"at the window", time.Hour, time.Hour, true},
		{"past the window", time.Hour, 3 * time.Hour, true},
		{"no window", 0, 48 * time.Hour, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			f := newFixture(t)
			f.opts.ResizeConfirmWindow = tc.window
			f.boot(ctx, vm1, "c1", "c1-h1", "small", sm.VMActive)
			f.boot(ctx, vm2, "c1", "c1-h1", "tiny", sm.VMActive)
			c := f.conductor("conductor")
			if _, err := c.Resize(ctx, migrate.ResizeRequest{InstanceUUID: vm1, FlavorID: "medium"}); err != nil {
				t.Fatal(err)
			}
			if r, err := c.Resize(ctx, migrate.ResizeRequest{InstanceUUID: vm2, FlavorID: "small"}); err != nil || r.CrossCell {
				t.Fatalf("same-cell resize of vm2: %+v, %v", r, err)
			}
			f.clock.Advance(tc.after)
			res, err := f.conductor("poller").PollAutoConfirm(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if got := len(res) == 1 && res[0].InstanceUUID == vm1 && res[0].DestCell == "c2"; got != tc.confirmed {
				t.Fatalf("cross-cell moves confirmed: %+v, want vm1: %v", res, tc.confirmed)
			}
			want := sm.VMResized
			if tc.confirmed {
				want = sm.VMActive
			}
			for _, id := range []string{vm1, vm2} {
				visible, _ := f.copies(ctx, id)
				inst := visible[f.mappedCell(ctx, id)]
				if inst == nil || inst.VMState != want {
					t.Fatalf("%s after the poll: %+v, want vm_state %s", id, inst, want)
				}
				if err := f.check(ctx, id); err != nil {
					t.Fatalf("%s: %v", id, err)
				}
			}
			if n := f.recordsOf(ctx, "c1", vm1); tc.confirmed && n != [4]int{} {
				t.Fatalf("c1 still holds %v of vm1 after the auto-confirm", n)
			}
		})
	}
}

// TestPollAutoConfirmLeavesHeldMoves: a cross-cell move whose lease
// another conductor holds is left by the poll without error and
// confirmed by a later poll once the lease expired.
func TestPollAutoConfirmLeavesHeldMoves(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.opts.ResizeConfirmWindow = time.Minute
	f.boot(ctx, vm1, "c1", "c1-h1", "small", sm.VMActive)
	if _, err := f.conductor("first").Resize(ctx, migrate.ResizeRequest{InstanceUUID: vm1, FlavorID: "medium"}); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(2 * time.Minute)
	if _, err := f.stores["c2"].AcquireLease(ctx, compute.LeaseRequest{InstanceUUID: vm1, Owner: "other", TTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
	poller := f.conductor("poller")
	res, err := poller.PollAutoConfirm(ctx)
	if err != nil || len(res) != 0 {
		t.Fatalf("poll under another's lease: %+v, %v", res, err)
	}
	f.clock.Advance(2 * time.Minute)
	res, err = poller.PollAutoConfirm(ctx)
	if err != nil || len(res) != 1 || res[0].State.VM != sm.VMActive {
		t.Fatalf("poll after the lease expired: %+v, %v", res, err)
	}
	if err := f.check(ctx, vm1); err != nil {
		t.Fatal(err)
	}
	if _, err := poller.Confirm(ctx, migrate.ActionRequest{InstanceUUID: vm1}); err == nil || errors.Is(err, compute.ErrLease) {
		t.Fatalf("confirm of a confirmed move: %v", err)
	}
}
