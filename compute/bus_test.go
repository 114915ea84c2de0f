package compute

import (
	"context"
	"encoding/json"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// waitGoroutines waits until the goroutine count drops to at most n.
func waitGoroutines(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("goroutines leaked: %d > %d\n%s", runtime.NumGoroutine(), n, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestBusCallReply(t *testing.T) {
	before := runtime.NumGoroutine()
	b := NewLocalBus()
	cancel, err := b.Subscribe("compute.host1", func(ctx context.Context, m Message) (json.RawMessage, error) {
		var in struct{ N int }
		if err := m.Decode(&in); err != nil {
			return nil, err
		}
		return json.Marshal(struct{ N int }{in.N * 2})
	})
	if err != nil {
		t.Fatal(err)
	}
	msg, err := NewMessage("compute.host1", "double", struct{ N int }{21})
	if err != nil {
		t.Fatal(err)
	}
	ctx, done := context.WithTimeout(context.Background(), time.Second)
	defer done()
	reply, err := b.Call(ctx, msg)
	if err != nil {
		t.Fatal(err)
	}
	var out struct{ N int }
	if err := json.Unmarshal(reply, &out); err != nil || out.N != 42 {
		t.Fatalf("reply %s %v", reply, err)
	}
	// A handler's error comes back as a *RemoteError wrapping it.
	if _, err := b.Call(ctx, Message{Topic: "compute.host1", Method: "bad", Payload: json.RawMessage(`"x"`)}); err == nil {
		t.Fatal("decode error not returned")
	} else {
		var re *RemoteError
		if !errors.As(err, &re) || re.Method != "bad" {
			t.Fatalf("got %v", err)
		}
	}
	cancel()
	if _, err := b.Call(ctx, msg); !errors.Is(err, ErrNoServer) {
		t.Fatalf("after unsubscribe: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Call(ctx, msg); !errors.Is(err, ErrBusClosed) {
		t.Fatalf("after close: %v", err)
	}
	waitGoroutines(t, before)
}

func TestBusCallTimeout(t *testing.T) {
	before := runtime.NumGoroutine()
	b := NewLocalBus(WithDefaultTimeout(50 * time.Millisecond))
	release := make(chan struct{})
	var sawCancel atomic.Bool
	if _, err := b.Subscribe("slow", func(ctx context.Context, m Message) (json.RawMessage, error) {
		select {
		case <-ctx.Done():
			sawCancel.Store(true)
			return nil, ctx.Err()
		case <-release:
			return nil, nil
		}
	}); err != nil {
		t.Fatal(err)
	}
	// With a deadline on the context.
	ctx, done := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer done()
	_, err := b.Call(ctx, Message{Topic: "slow", Method: "wait"})
	var te *TimeoutError
	if !errors.As(err, &te) || !errors.Is(err, context.DeadlineExceeded) || te.Method != "wait" {
		t.Fatalf("got %v, want *TimeoutError", err)
	}
	// Without one: the bus's default timeout applies.
	start := time.Now()
	_, err = b.Call(context.Background(), Message{Topic: "slow", Method: "wait"})
	if !errors.As(err, &te) || time.Since(start) > 5*time.Second {
		t.Fatalf("default timeout: %v after %v", err, time.Since(start))
	}
	close(release)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if !sawCancel.Load() {
		t.Fatal("handler's context did not end at the deadline")
	}
	waitGoroutines(t, before)
}

func TestBusCastInOrderAndRoundRobin(t *testing.T) {
	before := runtime.NumGoroutine()
	b := NewLocalBus(WithQueueSize(4))
	var mu sync.Mutex
	var got [2][]int
	var wg sync.WaitGroup
	for s := 0; s < 2; s++ {
		s := s
		if _, err := b.Subscribe("conductor", func(ctx context.Context, m Message) (json.RawMessage, error) {
			defer wg.Done()
			var n int
			if err := m.Decode(&n); err != nil {
				return nil, err
			}
			mu.Lock()
			got[s] = append(got[s], n)
			mu.Unlock()
			return nil, nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	const n = 40
	wg.Add(n)
	for i := 0; i < n; i++ {
		msg, _ := NewMessage("conductor", "count", i)
		if err := b.Cast(context.Background(), msg); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	mu.Lock()
	for s := 0; s < 2; s++ {
		if len(got[s]) != n/2 {
			t.Fatalf("subscriber %d got %d casts, want %d", s, len(got[s]), n/2)
		}
		for i := 1; i < len(got[s]); i++ {
			if got[s][i] <= got[s][i-1] {
				t.Fatalf("subscriber %d out of order: %v", s, got[s])
			}
		}
	}
	mu.Unlock()
	if err := b.Cast(context.Background(), Message{Topic: "nobody"}); !errors.Is(err, ErrNoServer) {
		t.Fatalf("cast to nobody: %v", err)
	}
	b.Close()
	waitGoroutines(t, before)
}

func TestBusHandlerPanicAndBadInput(t *testing.T) {
	before := runtime.NumGoroutine()
	b := NewLocalBus()
	if _, err := b.Subscribe("", func(context.Context, Message) (json.RawMessage, error) { return nil, nil }); !errors.Is(err, ErrInvalidMessage) {
		t.Fatalf("empty topic: %v", err)
	}
	if _, err := b.Subscribe("t", nil); !errors.Is(err, ErrInvalidMessage) {
		t.Fatalf("nil handler: %v", err)
	}
	if _, err := b.Subscribe("t", func(context.Context, Message) (json.RawMessage, error) { panic("boom") }); err != nil {
		t.Fatal(err)
	}
	_, err := b.Call(context.Background(), Message{Topic: "t", Method: "m"})
	var re *RemoteError
	if !errors.As(err, &re) {
		t.Fatalf("panic not turned into an error: %v", err)
	}
	if err := b.Cast(context.Background(), Message{Topic: "t", Method: "m"}); err != nil {
		t.Fatal(err)
	}
	var m Message
	if err := m.Decode(new(int)); !errors.Is(err, ErrInvalidMessage) {
		t.Fatalf("empty payload: %v", err)
	}
	if _, err := NewMessage("t", "m", func() {}); err == nil {
		t.Fatal("unencodable payload accepted")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := b.Cast(ctx, Message{Topic: "t"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled cast: %v", err)
	}
	b.Close()
	b.Close() // twice is fine
	if _, err := b.Subscribe("t", func(context.Context, Message) (json.RawMessage, error) { return nil, nil }); !errors.Is(err, ErrBusClosed) {
		t.Fatalf("subscribe after close: %v", err)
	}
	waitGoroutines(t, before)
}

func TestBusUnsubscribeTwiceAndCloseDropsQueue(t *testing.T) {
	before := runtime.NumGoroutine()
	b := NewLocalBus(WithQueueSize(8))
	block := make(chan struct{})
	cancel, err := b.Subscribe("t", func(ctx context.Context, m Message) (json.RawMessage, error) {
		select {
		case <-block:
		case <-ctx.Done():
		}
		return nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if err := b.Cast(context.Background(), Message{Topic: "t"}); err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	cancel()
	b.Close() // the handler's context ends; queued casts are dropped
	close(block)
	waitGoroutines(t, before)
}

// TestBusNilAndZero: a nil or zero LocalBus refuses every call with
// ErrBusNotStarted instead of panicking, and closing it does nothing.
func TestBusNilAndZero(t *testing.T) {
	ctx := context.Background()
	h := func(context.Context, Message) (json.RawMessage, error) { return nil, nil }
	for name, b := range map[string]*LocalBus{"nil": nil, "zero": {}} {
		if _, err := b.Subscribe("t", h); !errors.Is(err, ErrBusNotStarted) {
			t.Errorf("%s bus Subscribe: %v", name, err)
		}
		if err := b.Cast(ctx, Message{Topic: "t", Method: "m"}); !errors.Is(err, ErrBusNotStarted) {
			t.Errorf("%s bus Cast: %v", name, err)
		}
		if _, err := b.Call(ctx, Message{Topic: "t", Method: "m"}); !errors.Is(err, ErrBusNotStarted) {
			t.Errorf("%s bus Call: %v", name, err)
		}
		if err := b.Close(); err != nil {
			t.Errorf("%s bus Close: %v", name, err)
		}
	}
}
