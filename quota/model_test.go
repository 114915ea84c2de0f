package quota

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"testing"
	"time"
)

// model is a plain, separate implementation of Nova's reservation-era rules
// (nova/quota.py DbQuotaDriver.reserve/commit/rollback and
// nova/db/sqlalchemy/api.py quota_reserve, Ocata), used as an oracle for the ledger:
// every operation is applied to both and their answers and figures compared.
type model struct {
	now       time.Time
	maxAge    time.Duration
	limit     map[string]*Amounts            // project limits
	userLimit map[string]map[string]*Amounts // project → user → limits
	inUse     map[string]map[string]*Amounts // project → user → in_use
	res       map[string]*modelRes
}

type modelRes struct {
	project, user string
	d             Amounts
	created       time.Time
	state         State
}

func newModel(now time.Time, maxAge time.Duration) *model {
	return &model{now: now, maxAge: maxAge, limit: map[string]*Amounts{}, userLimit: map[string]map[string]*Amounts{},
		inUse: map[string]map[string]*Amounts{}, res: map[string]*modelRes{}}
}

func (m *model) projectLimit(p string) *Amounts {
	if m.limit[p] == nil {
		a := Amounts{Instances: 10, Cores: 20, RAM: 51200, DiskGB: Unlimited}
		m.limit[p] = &a
	}
	return m.limit[p]
}

func (m *model) user(p, u string) (*Amounts, *Amounts) {
	if m.userLimit[p] == nil {
		m.userLimit[p], m.inUse[p] = map[string]*Amounts{}, map[string]*Amounts{}
	}
	if m.userLimit[p][u] == nil {
		m.userLimit[p][u] = &Amounts{Unlimited, Unlimited, Unlimited, Unlimited}
		m.inUse[p][u] = &Amounts{}
	}
	return m.userLimit[p][u], m.inUse[p][u]
}

// figures returns the project's and each user's in_use and reserved.
func (m *model) figures(p string) (in, rs Amounts, users map[string][2]Amounts) {
	users = map[string][2]Amounts{}
	for u, a := range m.inUse[p] {
		users[u] = [2]Amounts{*a}
		for r := range in {
			in[r] += a[r]
		}
	}
	for _, x := range m.res {
		if x.project != p || x.state != Pending {
			continue
		}
		f := users[x.user]
		for r, d := range x.d {
			if d > 0 {
				rs[r] += d
				f[1][r] += d
			}
		}
		users[x.user] = f
	}
	return in, rs, users
}

func (m *model) reserve(id, p, u string, d Amounts) []Over {
	ulim := &Amounts{Unlimited, Unlimited, Unlimited, Unlimited}
	if l := m.userLimit[p][u]; l != nil {
		ulim = l
	}
	in, rs, users := m.figures(p)
	lim := m.projectLimit(p)
	var overs []Over
	for r := range d {
		if d[r] <= 0 {
			continue
		}
		if lim[r] >= 0 && in[r]+rs[r]+d[r] > lim[r] {
			overs = append(overs, Over{Resource: Resource(r), Scope: ScopeProject, Requested: d[r], Limit: lim[r], InUse: in[r], Reserved: rs[r], Headroom: max(0, lim[r]-in[r]-rs[r])})
		}
		uf := users[u]
		if ulim[r] >= 0 && uf[0][r]+uf[1][r]+d[r] > ulim[r] {
			overs = append(overs, Over{Resource: Resource(r), Scope: ScopeUser, Requested: d[r], Limit: ulim[r], InUse: uf[0][r], Reserved: uf[1][r], Headroom: max(0, ulim[r]-uf[0][r]-uf[1][r])})
		}
	}
	if overs == nil {
		m.user(p, u)
		m.res[id] = &modelRes{project: p, user: u, d: d, created: m.now}
	}
	return overs
}

// settle returns the sentinel error the ledger must return.
func (m *model) settle(id string, commit bool) error {
	x := m.res[id]
	if x == nil {
		return ErrUnknownReservation
	}
	switch x.state {
	case Committed:
		if commit {
			return nil // a retried commit succeeds and changes nothing
		}
		return ErrAlreadyCommitted
	case RolledBack:
		if !commit {
			return nil // a retried rollback succeeds and changes nothing
		}
		return ErrAlreadyRolledBack
	case Expired:
		return ErrReservationExpired
	}
	if !m.now.Before(x.created.Add(m.maxAge)) {
		x.state = Expired
		return ErrReservationExpired
	}
	if !commit {
		x.state = RolledBack
		return nil
	}
	x.state = Committed
	_, in := m.user(x.project, x.user)
	for r, d := range x.d {
		in[r] = max(0, in[r]+d)
	}
	return nil
}

func (m *model) expire() []string {
	var ids []string
	for id, x := range m.res {
		if x.state == Pending && !m.now.Before(x.created.Add(m.maxAge)) {
			x.state = Expired
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

// runModel decodes ops from data and applies each to the ledger and the
// model, failing at the first difference.
func runModel(t *testing.T, data []byte) {
	ctx := context.Background()
	clock := newFakeClock()
	const maxAge = time.Hour
	l := newTestLedger(t, clock, WithMaxAge(maxAge), WithRetention(1<<62))
	m := newModel(clock.Now(), maxAge)
	projects, users := []string{"p", "q"}, []string{"a", "b"}
	var ids []string
	next := func() int {
		if len(data) == 0 {
			return 0
		}
		b := data[0]
		data = data[1:]
		return int(b)
	}
	for step := 0; len(data) > 0 && step < 500; step++ {
		op := next() % 8
		switch op {
		case 0, 1: // reserve
			p, u := projects[next()%2], users[next()%2]
			var d Amounts
			for r := range d {
				d[r] = int64(int8(next())) % 9
			}
			id, err := l.Reserve(ctx, p, u, d.Deltas())
			overs := m.reserve(id, p, u, d)
			var oq *OverQuotaError
			switch {
			case overs == nil && err == nil:
				ids = append(ids, id)
			case overs != nil && errors.As(err, &oq):
				if fmt.Sprint(overs) != fmt.Sprint(oq.Overs) {
					t.Fatalf("step %d reserve %s/%s %v: overs %v, model %v", step, p, u, d, oq.Overs, overs)
				}
			default:
				t.Fatalf("step %d reserve %s/%s %v: error %v, model overs %v", step, p, u, d, err, overs)
			}
		case 2, 3: // commit or rollback, sometimes of an unknown id
			id := "r-0/p"
			if len(ids) > 0 {
				if i := next(); i%8 != 0 {
					id = ids[i%len(ids)]
				}
			}
			commit := op == 2
			var err error
			if commit {
				err = l.Commit(ctx, id)
			} else {
				err = l.Rollback(ctx, id)
			}
			want := m.settle(id, commit)
			if (want == nil) != (err == nil) || (want != nil && !errors.Is(err, want)) {
				t.Fatalf("step %d settle(%s, commit=%v) = %v, model %v", step, id, commit, err, want)
			}
		case 4: // move the clock
			d := time.Duration(next()) * time.Minute
			clock.Advance(d)
			m.now = m.now.Add(d)
		case 5:
			got, err := l.Expire(ctx)
			if err != nil {
				t.Fatal(err)
			}
			sort.Strings(got)
			if want := m.expire(); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("step %d expire = %v, model %v", step, got, want)
			}
		case 6: // project limit
			p, r, v := projects[next()%2], Resource(next()%NumResources), int64(next()%24)-1
			if err := l.SetLimits(ctx, p, Limits{r: v}); err != nil {
				t.Fatal(err)
			}
			m.projectLimit(p)[r] = v
		case 7: // user limit
			p, u, r, v := projects[next()%2], users[next()%2], Resource(next()%NumResources), int64(next()%16)-1
			if err := l.SetUserLimits(ctx, p, u, Limits{r: v}); err != nil {
				t.Fatal(err)
			}
			ulim, _ := m.user(p, u)
			ulim[r] = v
		}
		for _, p := range projects {
			got := mustUsage(t, l, p)
			in, rs, uf := m.figures(p)
			if got.Total.InUse != in || got.Total.Reserved != rs || got.Total.Limit != *m.projectLimit(p) {
				t.Fatalf("step %d %s: ledger in_use %v reserved %v limit %v; model %v %v %v", step, p, got.Total.InUse, got.Total.Reserved, got.Total.Limit, in, rs, *m.projectLimit(p))
			}
			for u, f := range uf {
				c := got.Users[u]
				if c.InUse != f[0] || c.Reserved != f[1] || c.Limit != *m.userLimit[p][u] {
					t.Fatalf("step %d %s/%s: ledger %+v; model in_use %v reserved %v limit %v", step, p, u, c, f[0], f[1], *m.userLimit[p][u])
				}
			}
		}
	}
}

// FuzzLedgerModel compares the ledger with the model on operation sequences
// decoded from the input.
func FuzzLedgerModel(f *testing.F) {
	f.Add([]byte{0, 0, 0, 2, 1, 4, 0, 2, 1, 3, 5, 0, 4, 90, 5})
	f.Add([]byte{6, 0, 1, 3, 0, 0, 0, 1, 4, 0, 0, 2, 1, 2, 3, 1, 0, 1, 9, 9, 9, 9, 7, 1, 1, 1, 2})
	f.Add([]byte{0, 1, 1, 250, 251, 3, 0, 2, 1, 0, 0, 0, 5, 5, 5, 5, 2, 2, 4, 61, 3, 3, 5})
	f.Fuzz(func(t *testing.T, data []byte) { runModel(t, data) })
}

// TestLedgerMatchesModel runs long random operation sequences through the
// model comparison.
func TestLedgerMatchesModel(t *testing.T) {
	for seed := int64(1); seed <= 20; seed++ {
		data := make([]byte, 2000)
		x := uint64(seed) * 0x9E3779B97F4A7C15
		for i := range data {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			data[i] = byte(x)
		}
		t.Run(fmt.Sprint(seed), func(t *testing.T) { runModel(t, data) })
	}
}
