package quota

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

func errorsIs(err, target error) bool { return errors.Is(err, target) }

// fakeClock is a clock tests move by hand; safe for concurrent use.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

func newTestLedger(t testing.TB, clock *fakeClock, opts ...Option) *Ledger {
	t.Helper()
	all := append([]Option{WithClock(clock.Now), WithIDs(SequentialIDs("r"))}, opts...)
	l, err := NewLedger(all...)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func mustUsage(t testing.TB, l *Ledger, project string) Usage {
	t.Helper()
	u, err := l.Usage(context.Background(), project)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
