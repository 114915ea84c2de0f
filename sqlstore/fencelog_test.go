package sqlstore_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/compute/computetest"
	"github.com/xenflow/xenflow/sqlstore"
	"github.com/xenflow/xenflow/statemachine"
)

// TestFenceLog: o1 takes the lease and writes a step, its lease expires,
// o2 claims the instance and writes a step, o1's late step is refused;
// the log holds the two grants and the two steps in that order, with
// growing fences, and passes CheckFenceLog.
func TestFenceLog(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			clock := computetest.NewClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
			s := openStore(t, b.dsn(t), sqlstore.WithClock(clock.Now), sqlstore.WithFenceLog())
			l1 := resizePrep(t, s)
			step := func(l compute.Lease, from statemachine.FlowState, to func(*compute.Instance, *compute.Migration) error) error {
				_, _, err := s.Transition(ctx, compute.TransitionRequest{InstanceUUID: "i1", MigrationUUID: "m1",
					Expect: from, Lease: l, Apply: to})
				return err
			}
			if err := step(l1, preMigrating, toMigrating); err != nil {
				t.Fatal(err)
			}
			clock.Advance(2 * time.Hour)
			claimed, err := s.ClaimWork(ctx, sqlstore.ClaimRequest{Owner: "o2", TTL: time.Minute})
			if err != nil || len(claimed) != 1 {
				t.Fatalf("claim after expiry: %v, %v", claimed, err)
			}
			toMigrated := func(inst *compute.Instance, mig *compute.Migration) error {
				inst.TaskState, mig.Status = statemachine.TaskResizeMigrated, statemachine.MigrationPostMigrating
				return nil
			}
			var lost *compute.LeaseLostError
			if err := step(l1, migrating, toMigrated); !errors.As(err, &lost) {
				t.Fatalf("o1's step after o2's claim: %v, want the lease lost", err)
			}
			if err := step(claimed[0], migrating, toMigrated); err != nil {
				t.Fatal(err)
			}
			log, err := s.FenceLog(ctx, "")
			if err != nil {
				t.Fatal(err)
			}
			want := []struct {
				kind  sqlstore.FenceEntryKind
				owner string
				fence uint64
			}{{sqlstore.FenceLease, "o1", 1}, {sqlstore.FenceStep, "o1", 1}, {sqlstore.FenceLease, "o2", 2}, {sqlstore.FenceStep, "o2", 2}}
			if len(log) != len(want) {
				t.Fatalf("fence log %+v, want %d entries", log, len(want))
			}
			for i, w := range want {
				if e := log[i]; e.Kind != w.kind || e.Owner != w.owner || e.Fence != w.fence || e.Seq != int64(i+1) || e.InstanceUUID != "i1" {
					t.Errorf("entry %d: %+v, want %s by %s fence %d", i, e, w.kind, w.owner, w.fence)
				}
			}
			if log[3].State != "active/resize_migrated/post-migrating" || !log[3].At.Equal(clock.Now()) {
				t.Errorf("last step %+v", log[3])
			}
			if err := sqlstore.CheckFenceLog(log); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestFenceLogOff: without WithFenceLog nothing is logged.
func TestFenceLogOff(t *testing.T) {
	s := openStore(t, backends[0].dsn(t))
	resizePrep(t, s)
	if log, err := s.FenceLog(context.Background(), "i1"); err != nil || len(log) != 0 {
		t.Fatalf("fence log without the option: %+v, %v", log, err)
	}
}

func TestCheckFenceLog(t *testing.T) {
	lease := func(id, owner string, seq int64, fence uint64) sqlstore.FenceEntry {
		return sqlstore.FenceEntry{InstanceUUID: id, Seq: seq, Kind: sqlstore.FenceLease, Owner: owner, Fence: fence}
	}
	step := func(id, owner string, seq int64, fence uint64) sqlstore.FenceEntry {
		return sqlstore.FenceEntry{InstanceUUID: id, Seq: seq, Kind: sqlstore.FenceStep, Owner: owner, Fence: fence}
	}
	cases := []struct {
		name   string
		log    []sqlstore.FenceEntry
		bad    int64 // Seq of the violating entry; 0: none
		reason string
	}{
		{"empty", nil, 0, ""},
		{"takeover", []sqlstore.FenceEntry{lease("i", "a", 1, 1), step("i", "a", 2, 1), lease("i", "b", 3, 2), step("i", "b", 4, 2)}, 0, ""},
		{"instances restart", []sqlstore.FenceEntry{lease("i", "a", 1, 4), lease("j", "b", 1, 1), step("j", "b", 2, 1)}, 0, ""},
		{"old owner writes after takeover", []sqlstore.FenceEntry{lease("i", "a", 1, 1), lease("i", "b", 2, 2), step("i", "a", 3, 1)}, 3, "other than the latest"},
		{"same owner, old fence", []sqlstore.FenceEntry{lease("i", "a", 1, 1), lease("i", "a", 2, 2), step("i", "a", 3, 1)}, 3, "other than the latest"},
		{"fence reused", []sqlstore.FenceEntry{lease("i", "a", 1, 2), lease("i", "b", 2, 2)}, 2, "did not grow"},
		{"step without lease", []sqlstore.FenceEntry{step("i", "a", 1, 1)}, 1, "without a lease"},
		{"lease of another instance", []sqlstore.FenceEntry{lease("i", "a", 1, 1), step("j", "a", 1, 1)}, 1, "without a lease"},
		{"out of order", []sqlstore.FenceEntry{lease("i", "a", 2, 1), step("i", "a", 2, 1)}, 2, "out of order"},
		{"unknown kind", []sqlstore.FenceEntry{{InstanceUUID: "i", Seq: 1, Kind: "renew", Owner: "a", Fence: 1}}, 1, "unknown kind"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := sqlstore.CheckFenceLog(c.log)
			var v *sqlstore.FenceViolationError
			switch {
			case c.bad == 0 && err != nil:
				t.Fatalf("CheckFenceLog: %v, want nil", err)
			case c.bad == 0:
			case !errors.As(err, &v) || v.Entry.Seq != c.bad || v.Reason == "" || !strings.Contains(v.Error(), c.reason):
				t.Fatalf("CheckFenceLog: %v, want a violation at entry %d (%s)", err, c.bad, c.reason)
			}
		})
	}
}
