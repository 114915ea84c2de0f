package quota

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// The property test itself is quota/quotatest's TestStore (run on the
// memory store by that package's tests, and by sqlstore on SQLite and
// PostgreSQL); runPropertyOn is its in-package form for the tests here
// that run it on unexported stores (store_test.go's jsonStore), which
// cannot import quotatest without an import cycle.

// checkingStore wraps a Store and checks the ledger's invariants inside each
// Update's critical section: after a successful change, no scope is over a
// limit, nothing is negative, reserved equals the pending reservations'
// positive deltas and the project equals the sum of its users; after a
// failed one, nothing changed.
type checkingStore struct {
	Store
	t      testing.TB
	mu     sync.Mutex
	checks int
}

type recordCopy struct {
	Total   Counters
	Users   map[string]Counters
	Pending int
	Settled int
}

func copyRecord(pq *ProjectQuota) recordCopy {
	c := recordCopy{Total: pq.Total, Users: map[string]Counters{}, Pending: len(pq.Pending), Settled: len(pq.Settled)}
	for u, uc := range pq.Users {
		c.Users[u] = *uc
	}
	return c
}

func (s *checkingStore) Update(ctx context.Context, project string, fn func(*ProjectQuota) error) error {
	return s.Store.Update(ctx, project, func(pq *ProjectQuota) error {
		before := copyRecord(pq)
		err := fn(pq)
		if err != nil {
			if after := copyRecord(pq); !cmp.Equal(before, after) {
				s.t.Errorf("failed update (%v) changed project %s:\n%s", err, project, cmp.Diff(before, after))
			}
			return err
		}
		if msg := invariantViolation(pq); msg != "" {
			s.t.Errorf("project %s: %s", project, msg)
		}
		s.mu.Lock()
		s.checks++
		s.mu.Unlock()
		return nil
	})
}

func invariantViolation(pq *ProjectQuota) string {
	var reserved Amounts
	userReserved := map[string]Amounts{}
	for _, r := range pq.Pending {
		ur := userReserved[r.User]
		for i, d := range r.Deltas {
			if d > 0 {
				reserved[i] += d
				ur[i] += d
			}
		}
		userReserved[r.User] = ur
	}
	if pq.Total.Reserved != reserved {
		return fmt.Sprintf("reserved %v, pending reservations hold %v", pq.Total.Reserved, reserved)
	}
	var sum Amounts
	scopes := map[string]*Counters{"": &pq.Total}
	for u, c := range pq.Users {
		scopes[u] = c
		for i := range sum {
			sum[i] += c.InUse[i]
		}
		if c.Reserved != userReserved[u] {
			return fmt.Sprintf("user %s reserved %v, pending reservations hold %v", u, c.Reserved, userReserved[u])
		}
	}
	if sum != pq.Total.InUse {
		return fmt.Sprintf("project in_use %v, users sum to %v", pq.Total.InUse, sum)
	}
	for name, c := range scopes {
		for i := range c.InUse {
			if c.InUse[i] < 0 || c.Reserved[i] < 0 || c.Unders[i] != 0 {
				return fmt.Sprintf("scope %q %s: in_use %d reserved %d unders %d", name, Resource(i), c.InUse[i], c.Reserved[i], c.Unders[i])
			}
			if c.Limit[i] >= 0 && c.InUse[i]+c.Reserved[i] > c.Limit[i] {
				return fmt.Sprintf("scope %q over its %s limit: in_use %d + reserved %d > %d", name, Resource(i), c.InUse[i], c.Reserved[i], c.Limit[i])
			}
		}
	}
	return ""
}

type scopeKey struct{ project, user string }

type held struct {
	id     string
	key    scopeKey
	deltas Amounts
}

type worker struct {
	rng       *rand.Rand
	abandoned string // reserved before the run and never settled
	pending   []held
	net       map[scopeKey]Amounts // committed by this worker, never below 0
	neg       map[scopeKey]Amounts // negative deltas this worker holds pending (≤ 0)
	stats     map[string]int
}

func runPropertyOn(t *testing.T, seed int64, workers, ops int, store Store) {
	ctx := context.Background()
	clock := newFakeClock()
	const maxAge = 200 * time.Millisecond
	cs := &checkingStore{Store: store, t: t}
	l := newTestLedger(t, clock, WithStore(cs), WithIDs(RandomIDs(rand.New(rand.NewSource(seed)))),
		WithMaxAge(maxAge), WithRetention(time.Hour*24*365))

	master := rand.New(rand.NewSource(seed))
	projects := []string{"p0", "p1", "p2"}
	users := []string{"u0", "u1"}
	for _, p := range projects {
		lim := Limits{Instances: int64(2 + master.Intn(6)), Cores: int64(4 + master.Intn(16)), RAM: int64(2048 + 512*master.Intn(16)), DiskGB: Unlimited}
		if err := l.SetLimits(ctx, p, lim); err != nil {
			t.Fatal(err)
		}
		for _, u := range users {
			if master.Intn(2) == 0 {
				if err := l.SetUserLimits(ctx, p, u, Limits{Cores: int64(2 + master.Intn(10))}); err != nil {
					t.Fatal(err)
				}
			}
		}
	}

	ws := make([]*worker, workers)
	var wg sync.WaitGroup
	start := make(chan struct{}) // released together, so that the workers overlap
	for i := range ws {
		w := &worker{rng: rand.New(rand.NewSource(seed*1000 + int64(i))), net: map[scopeKey]Amounts{}, neg: map[scopeKey]Amounts{}, stats: map[string]int{}}
		ws[i] = w
		// A flow that dies after reserving: nobody settles this one, so
		// only expiry can release it.
		id, err := l.Reserve(ctx, projects[i%len(projects)], users[i%len(users)], Deltas{DiskGB: 1})
		if err != nil {
			t.Fatal(err)
		}
		w.abandoned = id
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for n := 0; n < ops; n++ {
				w.step(t, ctx, l, clock, projects, users)
			}
		}()
	}
	close(start)
	wg.Wait()
	if t.Failed() {
		return
	}

	// Settle everything left: let it all expire.
	clock.Advance(2 * maxAge)
	if _, err := l.Expire(ctx); err != nil {
		t.Fatal(err)
	}
	stats := map[string]int{}
	for _, w := range ws {
		for _, id := range append([]string{w.abandoned}, w.ids()...) {
			if err := l.Commit(ctx, id); !errors.Is(err, ErrReservationExpired) {
				t.Errorf("commit after final expiry: %v, want ErrReservationExpired", err)
			}
			w.stats["expired"]++
		}
		for k, v := range w.stats {
			stats[k] += v
		}
	}

	// Usage equals the sum of committed deltas, per project and user.
	want := map[scopeKey]Amounts{}
	for _, w := range ws {
		for k, a := range w.net {
			s := want[k]
			for i := range s {
				s[i] += a[i]
			}
			want[k] = s
		}
	}
	for _, p := range projects {
		u := mustUsage(t, l, p)
		var total Amounts
		var charges []Charge
		for _, user := range users {
			k := scopeKey{p, user}
			if got := u.Users[user].InUse; got != want[k] {
				t.Errorf("%s/%s in_use %v, committed deltas sum to %v", p, user, got, want[k])
			}
			if u.Users[user].Reserved != (Amounts{}) {
				t.Errorf("%s/%s reserved %v after every reservation settled", p, user, u.Users[user].Reserved)
			}
			for i := range total {
				total[i] += want[k][i]
			}
			charges = append(charges, Charge{User: user, Amount: want[k]})
		}
		if u.Total.InUse != total || u.Total.Reserved != (Amounts{}) || u.Pending != 0 {
			t.Errorf("%s in_use %v reserved %v pending %d; want %v, 0, 0", p, u.Total.InUse, u.Total.Reserved, u.Pending, total)
		}
		drift, err := l.Reconcile(ctx, p, charges)
		if err != nil {
			t.Fatal(err)
		}
		if len(drift) != 0 {
			t.Errorf("%s: reconcile found drift %v", p, drift)
		}
	}
	// The run must have exercised every path, or it proves little.
	for _, k := range []string{"commit", "rollback", "over", "expired", "recommit", "rollback-after-commit", "negative", "expire-call"} {
		if stats[k] == 0 {
			t.Errorf("no %q in the run: %v", k, stats)
		}
	}
	t.Logf("seed %d: %v, %d checked transactions", seed, stats, cs.checks)
}

func (w *worker) ids() []string {
	var ids []string
	for _, h := range w.pending {
		ids = append(ids, h.id)
	}
	return ids
}

func (w *worker) step(t *testing.T, ctx context.Context, l *Ledger, clock *fakeClock, projects, users []string) {
	rng := w.rng
	switch op := rng.Intn(100); {
	case op < 35: // reserve
		k := scopeKey{projects[rng.Intn(len(projects))], users[rng.Intn(len(users))]}
		var a Amounts
		steps := [NumResources]int64{1, 2, 512, 10}
		for r := range a {
			switch rng.Intn(4) {
			case 0:
				a[r] = steps[r] * int64(1+rng.Intn(3))
			case 1: // give back some of what this worker holds
				avail := w.net[k][r] + w.neg[k][r]
				if avail > 0 {
					a[r] = -(1 + rng.Int63n(avail))
				}
			}
		}
		id, err := l.Reserve(ctx, k.project, k.user, a.Deltas())
		var oq *OverQuotaError
		switch {
		case err == nil:
			w.pending = append(w.pending, held{id, k, a})
			n := w.neg[k]
			for r, d := range a {
				if d < 0 {
					n[r] += d
					w.stats["negative"]++
				}
			}
			w.neg[k] = n
		case errors.As(err, &oq):
			w.stats["over"]++
			for _, o := range oq.Overs {
				if o.Requested != a[o.Resource] || o.Headroom >= o.Requested || o.Limit < 0 {
					t.Errorf("bad over %+v for deltas %v", o, a)
				}
			}
		default:
			t.Errorf("reserve: %v", err)
		}
	case op < 85: // commit (op < 65) or roll back a held reservation
		if len(w.pending) == 0 {
			return
		}
		i := rng.Intn(len(w.pending))
		h := w.pending[i]
		w.pending[i] = w.pending[len(w.pending)-1]
		w.pending = w.pending[:len(w.pending)-1]
		n := w.neg[h.key]
		for r, d := range h.deltas {
			if d < 0 {
				n[r] -= d
			}
		}
		w.neg[h.key] = n
		commit := op < 65
		var err error
		if commit {
			err = l.Commit(ctx, h.id)
		} else {
			err = l.Rollback(ctx, h.id)
		}
		switch {
		case errors.Is(err, ErrReservationExpired):
			w.stats["expired"]++
			return
		case err != nil:
			t.Errorf("settle %s: %v", h.id, err)
			return
		}
		if !commit {
			w.stats["rollback"]++
			if rng.Intn(4) == 0 {
				if err := l.Rollback(ctx, h.id); err != nil {
					t.Errorf("retried rollback: %v", err)
				}
			}
			return
		}
		w.stats["commit"]++
		s := w.net[h.key]
		for r, d := range h.deltas {
			s[r] += d
		}
		w.net[h.key] = s
		switch rng.Intn(4) {
		case 0:
			w.stats["recommit"]++
			if err := l.Commit(ctx, h.id); err != nil {
				t.Errorf("retried commit: %v", err)
			}
		case 1:
			w.stats["rollback-after-commit"]++
			if err := l.Rollback(ctx, h.id); !errors.Is(err, ErrAlreadyCommitted) {
				t.Errorf("rollback after commit: %v", err)
			}
		}
	case op < 90:
		w.stats["expire-call"]++
		if _, err := l.Expire(ctx); err != nil {
			t.Errorf("expire: %v", err)
		}
	case op < 97:
		clock.Advance(time.Duration(rng.Intn(40)) * time.Millisecond)
	default:
		runtime.Gosched()
	}
}
