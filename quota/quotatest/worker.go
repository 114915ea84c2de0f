package quotatest

import (
	"errors"
	"math/rand"
	"runtime"
	"testing"
	"time"

	"github.com/xenflow/xenflow/quota"
)

type scopeKey struct{ project, user string }

// held is a reservation a worker holds.
type held struct {
	id     string
	key    scopeKey
	deltas quota.Amounts
}

// worker is one goroutine of the run and what it saw.
type worker struct {
	p         *property
	rng       *rand.Rand
	abandoned string // reserved before the run and never settled
	pending   []held
	net       map[scopeKey]quota.Amounts // committed by this worker, never below 0
	neg       map[scopeKey]quota.Amounts // negative deltas this worker holds pending (≤ 0)
	stats     map[string]int
}

func (w *worker) ids() []string {
	var ids []string
	for _, h := range w.pending {
		ids = append(ids, h.id)
	}
	return ids
}

// step does one random operation: reserve, commit or roll back a held
// reservation, expire, move the clock, or yield.
func (w *worker) step(t *testing.T) {
	switch op := w.rng.Intn(100); {
	case op < 35:
		w.reserve(t)
	case op < 85:
		w.settle(t, op < 65)
	case op < 90:
		w.stats["expire-call"]++
		if _, err := w.p.l.Expire(w.p.ctx); err != nil {
			t.Errorf("expire: %v", err)
		}
	case op < 97:
		w.p.clock.Advance(time.Duration(w.rng.Intn(40)) * time.Millisecond)
	default:
		runtime.Gosched()
	}
}

// reserve reserves random deltas, some giving back what the worker holds.
func (w *worker) reserve(t *testing.T) {
	k := scopeKey{w.p.projects[w.rng.Intn(len(w.p.projects))], w.p.users[w.rng.Intn(len(w.p.users))]}
	var a quota.Amounts
	steps := [quota.NumResources]int64{1, 2, 512, 10}
	for r := range a {
		switch w.rng.Intn(4) {
		case 0:
			a[r] = steps[r] * int64(1+w.rng.Intn(3))
		case 1: // give back some of what this worker holds
			if avail := w.net[k][r] + w.neg[k][r]; avail > 0 {
				a[r] = -(1 + w.rng.Int63n(avail))
			}
		}
	}
	id, err := w.p.l.Reserve(w.p.ctx, k.project, k.user, a.Deltas())
	var oq *quota.OverQuotaError
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
}

// take removes a random held reservation and returns it.
func (w *worker) take() (held, bool) {
	if len(w.pending) == 0 {
		return held{}, false
	}
	i := w.rng.Intn(len(w.pending))
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
	return h, true
}

// settle commits or rolls back a held reservation, and sometimes retries
// the settlement or rolls back after a commit.
func (w *worker) settle(t *testing.T, commit bool) {
	h, ok := w.take()
	if !ok {
		return
	}
	l, ctx := w.p.l, w.p.ctx
	var err error
	if commit {
		err = l.Commit(ctx, h.id)
	} else {
		err = l.Rollback(ctx, h.id)
	}
	switch {
	case errors.Is(err, quota.ErrReservationExpired):
		w.stats["expired"]++
		return
	case err != nil:
		t.Errorf("settle %s: %v", h.id, err)
		return
	case !commit:
		w.stats["rollback"]++
		if w.rng.Intn(4) == 0 {
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
	switch w.rng.Intn(4) {
	case 0:
		w.stats["recommit"]++
		if err := l.Commit(ctx, h.id); err != nil {
			t.Errorf("retried commit: %v", err)
		}
	case 1:
		w.stats["rollback-after-commit"]++
		if err := l.Rollback(ctx, h.id); !errors.Is(err, quota.ErrAlreadyCommitted) {
			t.Errorf("rollback after commit: %v", err)
		}
	}
}
