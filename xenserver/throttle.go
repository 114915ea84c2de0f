package xenserver

import (
	"context"
	"io"
	"sort"
	"sync"
	"time"
)

// hostSlots caps the disk transfers running at once per compute host;
// callers beyond the cap wait in turn (a queue, not a failure).
type hostSlots struct {
	max int
	mu  sync.Mutex
	ch  map[string]chan struct{}
}

func newHostSlots(max int) *hostSlots {
	return &hostSlots{max: max, ch: map[string]chan struct{}{}}
}

func (s *hostSlots) slot(host string) chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.ch[host]
	if !ok {
		c = make(chan struct{}, s.max)
		s.ch[host] = c
	}
	return c
}

// acquire takes one slot of each host (in name order, so two transfers
// between the same hosts cannot deadlock) and returns the release
// function, or ctx's error while waiting.
func (s *hostSlots) acquire(ctx context.Context, hosts ...string) (func(), error) {
	hosts = append([]string(nil), hosts...)
	sort.Strings(hosts)
	var held []chan struct{}
	release := func() {
		for _, c := range held {
			<-c
		}
	}
	for i, h := range hosts {
		if i > 0 && hosts[i-1] == h {
			continue
		}
		c := s.slot(h)
		select {
		case c <- struct{}{}:
			held = append(held, c)
		case <-ctx.Done():
			release()
			return nil, ctx.Err()
		}
	}
	return release, nil
}

// RateLimiter is a token bucket: it lets Rate bytes per second through,
// in bursts of at most Burst bytes. Waiting honours the context. It is
// safe for concurrent use.
type RateLimiter struct {
	rate  float64
	burst float64
	now   func() time.Time

	mu     sync.Mutex
	tokens float64
	last   time.Time
}

// NewRateLimiter returns a limiter of rate bytes per second with a burst
// of one second's worth (at least 64 KiB); now gives the time (nil means
// time.Now).
func NewRateLimiter(rate int64, now func() time.Time) *RateLimiter {
	if now == nil {
		now = time.Now
	}
	burst := float64(rate)
	if burst < 64<<10 {
		burst = 64 << 10
	}
	return &RateLimiter{rate: float64(rate), burst: burst, now: now, tokens: burst, last: now()}
}

// reserve takes n tokens and returns how long to wait before using them.
func (l *RateLimiter) reserve(n int) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	t := l.now()
	l.tokens += t.Sub(l.last).Seconds() * l.rate
	l.last = t
	if l.tokens > l.burst {
		l.tokens = l.burst
	}
	l.tokens -= float64(n)
	if l.tokens >= 0 {
		return 0
	}
	return time.Duration(-l.tokens / l.rate * float64(time.Second))
}

// WaitN blocks until n bytes may pass, or ctx ends.
func (l *RateLimiter) WaitN(ctx context.Context, n int) error {
	d := l.reserve(n)
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Reader returns r limited by l: each Read asks for at most a burst.
func (l *RateLimiter) Reader(ctx context.Context, r io.Reader) io.Reader {
	return &limitedReader{ctx: ctx, r: r, l: l}
}

type limitedReader struct {
	ctx context.Context
	r   io.Reader
	l   *RateLimiter
}

func (lr *limitedReader) Read(p []byte) (int, error) {
	if max := int(lr.l.burst); len(p) > max {
		p = p[:max]
	}
	n, err := lr.r.Read(p)
	if n > 0 {
		if werr := lr.l.WaitN(lr.ctx, n); werr != nil {
			return n, werr
		}
	}
	return n, err
}
