package sqlstore_test

import (
	"context"
	"errors"
	"math/rand"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xenflow/xenflow/quota"
	"github.com/xenflow/xenflow/sqlstore"
)

// limitedStore checks, inside every Update's transaction, that no scope is
// over its limit after the ledger's change.
type limitedStore struct {
	quota.Store
	t *testing.T
}

func (s limitedStore) Update(ctx context.Context, project string, fn func(*quota.ProjectQuota) error) error {
	return s.Store.Update(ctx, project, func(pq *quota.ProjectQuota) error {
		if err := fn(pq); err != nil {
			return err
		}
		for r := range pq.Total.Limit {
			if l := pq.Total.Limit[r]; l >= 0 && pq.Total.InUse[r]+pq.Total.Reserved[r] > l {
				s.t.Errorf("project %s: %v in use + %v reserved over the limit %v", project, pq.Total.InUse, pq.Total.Reserved, pq.Total.Limit)
			}
		}
		return nil
	})
}

// TestQuotaProperty runs concurrent reserve, commit and rollback through
// quota.Ledger on each backend's quota.Store: every project ends with its
// usage equal to what was committed, its reservations equal to what is
// still pending, and never above its limit.
func TestQuotaProperty(t *testing.T) {
	stores := []struct {
		name  string
		store func(t *testing.T) quota.Store
	}{
		{"memory", func(*testing.T) quota.Store { return quota.NewMemStore() }},
		{"sqlite", func(t *testing.T) quota.Store { return openStore(t, backends[0].dsn(t)).Quota() }},
		{"postgres", func(t *testing.T) quota.Store { return openStore(t, backends[1].dsn(t)).Quota() }},
	}
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			for _, seed := range []int64{1, 2} {
				runQuotaProperty(t, seed, st.store(t))
			}
		})
	}
}

// quotaTally is what the workers did to one project's cores.
type quotaTally struct{ committed, pending atomic.Int64 }

func runQuotaProperty(t *testing.T, seed int64, store quota.Store) {
	const workers, ops, limit = 6, 25, 30
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	l, err := quota.NewLedger(quota.WithStore(limitedStore{store, t}), quota.WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	projects := []string{"p1", "p2"}
	tallies := map[string]*quotaTally{}
	for _, p := range projects {
		tallies[p] = &quotaTally{}
		if err := l.SetLimits(ctx, p, quota.Limits{quota.Cores: limit}); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(rng *rand.Rand) {
			defer wg.Done()
			for i := 0; i < ops; i++ {
				p := projects[rng.Intn(len(projects))]
				quotaOp(t, ctx, l, p, int64(1+rng.Intn(4)), rng.Intn(3), tallies[p])
			}
		}(rand.New(rand.NewSource(seed*100 + int64(w))))
	}
	wg.Wait()
	for _, p := range projects {
		u, err := l.Usage(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		tl := tallies[p]
		if u.Total.InUse[quota.Cores] != tl.committed.Load() || u.Total.Reserved[quota.Cores] != tl.pending.Load() {
			t.Errorf("seed %d project %s: in use %d reserved %d, want committed %d pending %d", seed, p,
				u.Total.InUse[quota.Cores], u.Total.Reserved[quota.Cores], tl.committed.Load(), tl.pending.Load())
		}
	}
}

// quotaOp reserves n cores and then commits (0), rolls back (1) or leaves
// the reservation pending (2).
func quotaOp(t *testing.T, ctx context.Context, l *quota.Ledger, project string, n int64, settle int, tl *quotaTally) {
	id, err := l.Reserve(ctx, project, "u", quota.Deltas{quota.Cores: n})
	if errors.Is(err, quota.ErrOverQuota) {
		return
	}
	if err != nil {
		t.Errorf("reserve: %v", err)
		return
	}
	switch settle {
	case 0:
		err = l.Commit(ctx, id)
		tl.committed.Add(n)
	case 1:
		err = l.Rollback(ctx, id)
	default:
		tl.pending.Add(n)
	}
	if err != nil {
		t.Errorf("settle %s: %v", id, err)
	}
}

var _ quota.Store = sqlstore.QuotaStore{}
