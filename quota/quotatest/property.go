// Package quotatest holds what tests of quota.Store implementations share:
// the ledger's property test ([TestStore]), which any store — in memory,
// SQL, a caller's own — runs to show that the ledger keeps its invariants
// on it under concurrent use.
package quotatest

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xenflow/xenflow/quota"
)

// Config sizes a run of the property test.
type Config struct {
	// Seeds are the runs' seeds, one subtest each (1 to 6 when empty).
	Seeds []int64
	// Workers is how many goroutines share the ledger (8 when 0).
	Workers int
	// Ops is how many operations each worker does (1500 when 0, 300 with
	// -short).
	Ops int
}

func (c Config) withDefaults() Config {
	if len(c.Seeds) == 0 {
		c.Seeds = []int64{1, 2, 3, 4, 5, 6}
	}
	if c.Workers == 0 {
		c.Workers = 8
	}
	if c.Ops == 0 {
		c.Ops = 1500
		if testing.Short() {
			c.Ops = 300
		}
	}
	return c
}

// TestStore runs the ledger's property test on stores newStore makes (a
// fresh, empty one per seed), sized by cfg: random interleavings of
// reserve, commit, rollback, retried settlements, expiry and clock
// movement from many goroutines on a few shared projects, with the
// ledger's invariants checked inside every store transaction (no scope
// over a limit, nothing negative, reserved equal to the pending
// reservations' positive deltas, a project equal to the sum of its users,
// a failed update changing nothing). Afterwards usage must equal the sum
// of the deltas each goroutine saw committed, Reconcile must find no
// drift, and every path must have been taken.
func TestStore(t *testing.T, newStore func(t *testing.T) quota.Store, cfg Config) {
	cfg = cfg.withDefaults()
	for _, seed := range cfg.Seeds {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { Run(t, seed, cfg.Workers, cfg.Ops, newStore(t)) })
	}
}

// Run is one run of the property test on store.
func Run(t *testing.T, seed int64, workers, ops int, store quota.Store) {
	t.Helper()
	p := newProperty(t, seed, store)
	ws := p.runWorkers(t, workers, ops)
	if t.Failed() {
		return
	}
	stats := p.settleAll(t, ws)
	p.checkUsage(t, ws)
	// The run must have exercised every path, or it proves little.
	for _, k := range []string{"commit", "rollback", "over", "expired", "recommit", "rollback-after-commit", "negative", "expire-call"} {
		if stats[k] == 0 {
			t.Errorf("no %q in the run: %v", k, stats)
		}
	}
	t.Logf("seed %d: %v, %d checked transactions", seed, stats, p.cs.checks.Load())
}

// maxAge is the reservations' expiry in the run.
const maxAge = 200 * time.Millisecond

// property is one run: the ledger over the checking store, its clock and
// the projects and users the workers pick from.
type property struct {
	ctx      context.Context
	seed     int64
	l        *quota.Ledger
	cs       *checkingStore
	clock    *clock
	projects []string
	users    []string
}

// newProperty builds the ledger and sets random limits from the seed.
func newProperty(t *testing.T, seed int64, store quota.Store) *property {
	t.Helper()
	p := &property{ctx: context.Background(), seed: seed, cs: &checkingStore{Store: store, t: t}, clock: newClock(),
		projects: []string{"p0", "p1", "p2"}, users: []string{"u0", "u1"}}
	l, err := quota.NewLedger(quota.WithStore(p.cs), quota.WithClock(p.clock.Now),
		quota.WithIDs(quota.RandomIDs(rand.New(rand.NewSource(seed)))),
		quota.WithMaxAge(maxAge), quota.WithRetention(time.Hour*24*365))
	if err != nil {
		t.Fatal(err)
	}
	p.l = l
	master := rand.New(rand.NewSource(seed))
	for _, pr := range p.projects {
		lim := quota.Limits{quota.Instances: int64(2 + master.Intn(6)), quota.Cores: int64(4 + master.Intn(16)),
			quota.RAM: int64(2048 + 512*master.Intn(16)), quota.DiskGB: quota.Unlimited}
		if err := l.SetLimits(p.ctx, pr, lim); err != nil {
			t.Fatal(err)
		}
		for _, u := range p.users {
			if master.Intn(2) == 0 {
				if err := l.SetUserLimits(p.ctx, pr, u, quota.Limits{quota.Cores: int64(2 + master.Intn(10))}); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	return p
}

// runWorkers starts the workers together, so that they overlap, and
// waits for them.
func (p *property) runWorkers(t *testing.T, workers, ops int) []*worker {
	ws := make([]*worker, workers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range ws {
		w := &worker{p: p, rng: rand.New(rand.NewSource(p.seed*1000 + int64(i))), net: map[scopeKey]quota.Amounts{},
			neg: map[scopeKey]quota.Amounts{}, stats: map[string]int{}}
		ws[i] = w
		// A flow that dies after reserving: nobody settles this one, so
		// only expiry can release it.
		id, err := p.l.Reserve(p.ctx, p.projects[i%len(p.projects)], p.users[i%len(p.users)], quota.Deltas{quota.DiskGB: 1})
		if err != nil {
			t.Fatal(err)
		}
		w.abandoned = id
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for n := 0; n < ops; n++ {
				w.step(t)
			}
		}()
	}
	close(start)
	wg.Wait()
	return ws
}

// settleAll lets every reservation left expire and checks that a commit
// of each is refused; it returns the workers' counts summed.
func (p *property) settleAll(t *testing.T, ws []*worker) map[string]int {
	p.clock.Advance(2 * maxAge)
	if _, err := p.l.Expire(p.ctx); err != nil {
		t.Fatal(err)
	}
	stats := map[string]int{}
	for _, w := range ws {
		for _, id := range append([]string{w.abandoned}, w.ids()...) {
			if err := p.l.Commit(p.ctx, id); !errors.Is(err, quota.ErrReservationExpired) {
				t.Errorf("commit after final expiry: %v, want ErrReservationExpired", err)
			}
			w.stats["expired"]++
		}
		for k, v := range w.stats {
			stats[k] += v
		}
	}
	return stats
}

// checkUsage checks that usage equals the sum of committed deltas, per
// project and user, with nothing reserved, and that Reconcile agrees.
func (p *property) checkUsage(t *testing.T, ws []*worker) {
	want := map[scopeKey]quota.Amounts{}
	for _, w := range ws {
		for k, a := range w.net {
			s := want[k]
			for i := range s {
				s[i] += a[i]
			}
			want[k] = s
		}
	}
	for _, pr := range p.projects {
		u, err := p.l.Usage(p.ctx, pr)
		if err != nil {
			t.Fatal(err)
		}
		var total quota.Amounts
		var charges []quota.Charge
		for _, user := range p.users {
			k := scopeKey{pr, user}
			if got := u.Users[user].InUse; got != want[k] {
				t.Errorf("%s/%s in_use %v, committed deltas sum to %v", pr, user, got, want[k])
			}
			if u.Users[user].Reserved != (quota.Amounts{}) {
				t.Errorf("%s/%s reserved %v after every reservation settled", pr, user, u.Users[user].Reserved)
			}
			for i := range total {
				total[i] += want[k][i]
			}
			charges = append(charges, quota.Charge{User: user, Amount: want[k]})
		}
		if u.Total.InUse != total || u.Total.Reserved != (quota.Amounts{}) || u.Pending != 0 {
			t.Errorf("%s in_use %v reserved %v pending %d; want %v, 0, 0", pr, u.Total.InUse, u.Total.Reserved, u.Pending, total)
		}
		if drift, err := p.l.Reconcile(p.ctx, pr, charges); err != nil || len(drift) != 0 {
			t.Errorf("%s: reconcile found drift %v (%v)", pr, drift, err)
		}
	}
}

// clock is a clock the run moves by hand; safe for concurrent use.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// checkingStore wraps a Store and checks the ledger's invariants inside
// each Update's critical section: after a successful change, no scope is
// over a limit, nothing is negative, reserved equals the pending
// reservations' positive deltas and the project equals the sum of its
// users; after a failed one, nothing changed.
type checkingStore struct {
	quota.Store
	t      testing.TB
	checks atomic.Int64
}

type recordCopy struct {
	Total   quota.Counters
	Users   map[string]quota.Counters
	Pending int
	Settled int
}

func copyRecord(pq *quota.ProjectQuota) recordCopy {
	c := recordCopy{Total: pq.Total, Users: map[string]quota.Counters{}, Pending: len(pq.Pending), Settled: len(pq.Settled)}
	for u, uc := range pq.Users {
		c.Users[u] = *uc
	}
	return c
}

// Update implements quota.Store, checking the record fn leaves.
func (s *checkingStore) Update(ctx context.Context, project string, fn func(*quota.ProjectQuota) error) error {
	return s.Store.Update(ctx, project, func(pq *quota.ProjectQuota) error {
		before := copyRecord(pq)
		err := fn(pq)
		if err != nil {
			if after := copyRecord(pq); !reflect.DeepEqual(before, after) {
				s.t.Errorf("failed update (%v) changed project %s:\nbefore %+v\nafter  %+v", err, project, before, after)
			}
			return err
		}
		if msg := invariantViolation(pq); msg != "" {
			s.t.Errorf("project %s: %s", project, msg)
		}
		s.checks.Add(1)
		return nil
	})
}

// invariantViolation says which of the ledger's invariants pq breaks, or
// "".
func invariantViolation(pq *quota.ProjectQuota) string {
	if msg := reservedViolation(pq); msg != "" {
		return msg
	}
	var sum quota.Amounts
	scopes := map[string]*quota.Counters{"": &pq.Total}
	for u, c := range pq.Users {
		scopes[u] = c
		for i := range sum {
			sum[i] += c.InUse[i]
		}
	}
	if sum != pq.Total.InUse {
		return fmt.Sprintf("project in_use %v, users sum to %v", pq.Total.InUse, sum)
	}
	for name, c := range scopes {
		for i := range c.InUse {
			if c.InUse[i] < 0 || c.Reserved[i] < 0 || c.Unders[i] != 0 {
				return fmt.Sprintf("scope %q %s: in_use %d reserved %d unders %d", name, quota.Resource(i), c.InUse[i], c.Reserved[i], c.Unders[i])
			}
			if c.Limit[i] >= 0 && c.InUse[i]+c.Reserved[i] > c.Limit[i] {
				return fmt.Sprintf("scope %q over its %s limit: in_use %d + reserved %d > %d", name, quota.Resource(i), c.InUse[i], c.Reserved[i], c.Limit[i])
			}
		}
	}
	return ""
}

// reservedViolation checks that each scope's reserved counter is the sum
// of its pending reservations' positive deltas.
func reservedViolation(pq *quota.ProjectQuota) string {
	var reserved quota.Amounts
	userReserved := map[string]quota.Amounts{}
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
	for u, c := range pq.Users {
		if c.Reserved != userReserved[u] {
			return fmt.Sprintf("user %s reserved %v, pending reservations hold %v", u, c.Reserved, userReserved[u])
		}
	}
	return ""
}
