package sqlstore_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/compute/computetest"
	"github.com/xenflow/xenflow/sqlstore"
	"github.com/xenflow/xenflow/statemachine"
)

// TestClaimWork: two owners claiming at once share the instances with an
// operation in progress, each taken once; none is claimed while leased;
// once the leases expire they are claimed again with larger fences.
func TestClaimWork(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			clock := computetest.NewClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
			s := openStore(t, b.dsn(t), sqlstore.WithClock(clock.Now))
			want := createWork(t, s)
			claimed := claimAll(t, s, []string{"o1", "o2"})
			if len(claimed) != len(want) {
				t.Fatalf("claimed %v, want each of %v once", claimed, want)
			}
			for _, id := range want {
				if _, ok := claimed[id]; !ok {
					t.Fatalf("instance %s with work not claimed (got %v)", id, claimed)
				}
			}
			if more, err := s.ClaimWork(ctx, sqlstore.ClaimRequest{Owner: "o3", TTL: time.Minute, Limit: 10}); err != nil || len(more) != 0 {
				t.Fatalf("claim while all are leased: %v, %v", more, err)
			}
			clock.Advance(time.Minute)
			again, err := s.ClaimWork(ctx, sqlstore.ClaimRequest{Owner: "o3", TTL: time.Minute, Limit: 10})
			if err != nil || len(again) != len(want) {
				t.Fatalf("claim after expiry: %v, %v", again, err)
			}
			for _, l := range again {
				if l.Fence <= claimed[l.InstanceUUID].Fence || l.Owner != "o3" {
					t.Fatalf("reclaimed %+v after %+v: want o3 with a larger fence", l, claimed[l.InstanceUUID])
				}
			}
		})
	}
}

// createWork stores instances with and without operations in progress and
// returns those with: a task_state, or a confirming migration.
func createWork(t *testing.T, s compute.Store) []string {
	ctx := context.Background()
	var work []string
	for i := 0; i < 8; i++ {
		inst := computetest.Instance(fmt.Sprintf("i%d", i))
		switch i % 4 {
		case 0, 1:
			inst.TaskState = statemachine.TaskResizePrep
			work = append(work, inst.UUID)
		case 2:
			work = append(work, inst.UUID)
		}
		if err := s.CreateInstance(ctx, inst); err != nil {
			t.Fatal(err)
		}
		if i%4 == 2 {
			m := computetest.Migration("m"+inst.UUID, inst.UUID)
			m.Status = statemachine.MigrationConfirming
			if err := s.CreateMigration(ctx, m); err != nil {
				t.Fatal(err)
			}
		}
	}
	return work
}

// claimAll has the owners claim two at a time, concurrently, until none is
// left, and returns the leases by instance; a second claim of one instance
// fails t.
func claimAll(t *testing.T, s *sqlstore.Store, owners []string) map[string]compute.Lease {
	var mu sync.Mutex
	got := map[string]compute.Lease{}
	var wg sync.WaitGroup
	for _, o := range owners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				ls, err := s.ClaimWork(context.Background(), sqlstore.ClaimRequest{Owner: o, TTL: time.Minute, Limit: 2})
				if err != nil {
					t.Errorf("%s: %v", o, err)
					return
				}
				if len(ls) == 0 {
					return
				}
				mu.Lock()
				for _, l := range ls {
					if prev, ok := got[l.InstanceUUID]; ok {
						t.Errorf("%s claimed by %s and %s", l.InstanceUUID, prev.Owner, l.Owner)
					}
					got[l.InstanceUUID] = l
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return got
}

// TestWaitWakes: an orchestrator waiting for work wakes when another
// releases a lease — through LISTEN/NOTIFY on PostgreSQL, from another
// connection pool; within the process on SQLite — long before the poll.
func TestWaitWakes(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			dsn := b.dsn(t)
			waiter := openStore(t, dsn, sqlstore.WithPollInterval(time.Minute))
			writer := waiter
			if b.name == "postgres" {
				writer = openStore(t, dsn)
			}
			if err := writer.CreateInstance(ctx, computetest.Instance("i1")); err != nil {
				t.Fatal(err)
			}
			l, err := writer.AcquireLease(ctx, compute.LeaseRequest{InstanceUUID: "i1", Owner: "o1", TTL: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			start := time.Now()
			go func() { done <- waiter.Wait(ctx) }()
			time.Sleep(300 * time.Millisecond) // let Wait listen first
			if err := writer.ReleaseLease(ctx, l); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("Wait: %v", err)
				}
				t.Logf("woke after %v", time.Since(start))
			case <-time.After(30 * time.Second):
				t.Fatal("Wait did not wake on a released lease")
			}
			cctx, cancel := context.WithCancel(ctx)
			cancel()
			if err := waiter.Wait(cctx); err != context.Canceled {
				t.Fatalf("Wait on a cancelled context: %v", err)
			}
		})
	}
}
