package compute

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Message is what travels on a Bus: a method to run on a topic's server
// (Nova's RPC: topic "compute.<host>", method "prep_resize") with a JSON
// payload, so that an adapter for a real broker can carry it unchanged.
type Message struct {
	Topic   string
	Method  string
	Payload json.RawMessage
}

// NewMessage encodes v as the payload of a message.
func NewMessage(topic, method string, v any) (Message, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return Message{}, fmt.Errorf("compute: encode %s.%s payload: %w", topic, method, err)
	}
	return Message{Topic: topic, Method: method, Payload: b}, nil
}

// Decode decodes the payload into v.
func (m Message) Decode(v any) error {
	if len(m.Payload) == 0 {
		return fmt.Errorf("compute: decode %s.%s payload: %w", m.Topic, m.Method, errEmptyPayload)
	}
	if err := json.Unmarshal(m.Payload, v); err != nil {
		return fmt.Errorf("compute: decode %s.%s payload: %w", m.Topic, m.Method, err)
	}
	return nil
}

func (m Message) clone() Message {
	m.Payload = append(json.RawMessage(nil), m.Payload...)
	return m
}

// Handler serves the messages of a topic. For a call its reply payload goes
// back to the caller; for a cast the reply is dropped and an error is logged.
// The context ends when a call's deadline passes or the bus closes.
type Handler func(ctx context.Context, msg Message) (reply json.RawMessage, err error)

// Bus carries messages between the api, conductor and compute roles.
type Bus interface {
	// Cast delivers msg to one server of its topic and returns at once
	// (fire and forget). It fails only when nobody serves the topic, the
	// queue stays full until ctx ends, or the bus is closed.
	Cast(ctx context.Context, msg Message) error
	// Call delivers msg to one server of its topic and waits for the
	// reply until ctx's deadline (or the bus's default timeout when ctx
	// has none): a *TimeoutError then. A handler's error comes back as a
	// *RemoteError.
	Call(ctx context.Context, msg Message) (json.RawMessage, error)
	// Subscribe serves topic with h until the returned cancel func is
	// called. Several subscribers of a topic share its messages in turn.
	Subscribe(topic string, h Handler) (cancel func(), err error)
}

// Bus errors.
var (
	// ErrBusClosed is returned by every Bus method after Close.
	ErrBusClosed = errors.New("compute: bus closed")
	// ErrBusNotStarted is returned by the methods of a nil or zero
	// LocalBus: only NewLocalBus makes a usable one.
	ErrBusNotStarted = errors.New("compute: bus not made by NewLocalBus")
	// ErrNoServer matches every *NoServerError.
	ErrNoServer = errors.New("compute: no server for topic")
	// ErrInvalidMessage is wrapped by the errors for a subscription with an
	// empty topic or a nil handler and for decoding an empty payload.
	ErrInvalidMessage = errors.New("invalid bus message or subscription")
)

// NoServerError says that nobody subscribes to Topic.
type NoServerError struct {
	Topic  string
	Method string
}

// Error implements the error interface.
func (e *NoServerError) Error() string {
	return fmt.Sprintf("compute: bus: no server for topic %q (method %s)", e.Topic, e.Method)
}

// Is reports whether target is ErrNoServer.
func (e *NoServerError) Is(target error) bool { return target == ErrNoServer }

// TimeoutError is Nova's MessagingTimeout: no reply to a call within
// Timeout. It unwraps to context.DeadlineExceeded (or the context's error).
type TimeoutError struct {
	Topic   string
	Method  string
	Timeout time.Duration
	Err     error
}

// Error implements the error interface.
func (e *TimeoutError) Error() string {
	return fmt.Sprintf("compute: bus: no reply to %s.%s within %v: %v", e.Topic, e.Method, e.Timeout, e.Err)
}

// Unwrap returns the context's error.
func (e *TimeoutError) Unwrap() error { return e.Err }

// RemoteError carries the error a handler returned (or the panic it raised)
// back to the caller.
type RemoteError struct {
	Topic  string
	Method string
	Err    error
}

// Error implements the error interface.
func (e *RemoteError) Error() string {
	return fmt.Sprintf("compute: bus: %s.%s failed: %v", e.Topic, e.Method, e.Err)
}

// Unwrap returns the handler's error.
func (e *RemoteError) Unwrap() error { return e.Err }

// LocalBus is the embedded in-process [Bus]. Each subscription has a queue
// and one goroutine that runs its casts in order; calls run on their own
// goroutine so that the caller can give up at the deadline. Close stops
// every subscription and waits for every goroutine the bus started.
type LocalBus struct {
	log        *slog.Logger
	timeout    time.Duration
	queueSize  int
	life       context.Context
	stop       context.CancelFunc
	wg         sync.WaitGroup
	mu         sync.Mutex
	closed     bool
	subs       map[string][]*subscription
	next       map[string]int
	subCounter uint64
}

type subscription struct {
	id    uint64
	topic string
	h     Handler
	queue chan Message
	done  chan struct{}
	once  sync.Once
}

// BusOption configures a LocalBus.
type BusOption func(*LocalBus)

// WithBusLogger sets the logger for cast failures (nil discards, the default).
func WithBusLogger(l *slog.Logger) BusOption {
	return func(b *LocalBus) {
		if l != nil {
			b.log = l
		}
	}
}

// WithDefaultTimeout sets the call timeout used when the context has no
// deadline (60 s by default, Nova's rpc_response_timeout).
func WithDefaultTimeout(d time.Duration) BusOption {
	return func(b *LocalBus) {
		if d > 0 {
			b.timeout = d
		}
	}
}

// WithQueueSize sets how many casts a subscription queues (64 by default).
func WithQueueSize(n int) BusOption {
	return func(b *LocalBus) {
		if n > 0 {
			b.queueSize = n
		}
	}
}

// NewLocalBus returns an in-process bus.
func NewLocalBus(opts ...BusOption) *LocalBus {
	life, stop := context.WithCancel(context.Background())
	b := &LocalBus{
		log:       slog.New(discardHandler{}),
		timeout:   60 * time.Second,
		queueSize: 64,
		life:      life,
		stop:      stop,
		subs:      map[string][]*subscription{},
		next:      map[string]int{},
	}
	for _, o := range opts {
		if o != nil {
			o(b)
		}
	}
	return b
}

var _ Bus = (*LocalBus)(nil)

// Subscribe implements [Bus].
func (b *LocalBus) Subscribe(topic string, h Handler) (func(), error) {
	if !b.started() {
		return nil, ErrBusNotStarted
	}
	if h == nil {
		return nil, fmt.Errorf("compute: bus: subscribe %q: %w: nil handler", topic, ErrInvalidMessage)
	}
	if topic == "" {
		return nil, fmt.Errorf("compute: bus: subscribe: %w: empty topic", ErrInvalidMessage)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, ErrBusClosed
	}
	b.subCounter++
	s := &subscription{id: b.subCounter, topic: topic, h: h,
		queue: make(chan Message, b.queueSize), done: make(chan struct{})}
	b.subs[topic] = append(b.subs[topic], s)
	b.wg.Add(1)
	go b.serve(s)
	return func() { b.unsubscribe(s) }, nil
}

func (b *LocalBus) unsubscribe(s *subscription) {
	b.mu.Lock()
	list := b.subs[s.topic]
	for i, x := range list {
		if x == s {
			b.subs[s.topic] = append(list[:i:i], list[i+1:]...)
			break
		}
	}
	if len(b.subs[s.topic]) == 0 {
		delete(b.subs, s.topic)
		delete(b.next, s.topic)
	}
	b.mu.Unlock()
	s.once.Do(func() { close(s.done) })
}

// serve runs a subscription's casts in order until it is cancelled or the
// bus closes; casts still queued then are dropped.
func (b *LocalBus) serve(s *subscription) {
	defer b.wg.Done()
	for {
		select {
		case <-s.done:
			return
		case <-b.life.Done():
			return
		case msg := <-s.queue:
			if _, err := invoke(b.life, s.h, msg); err != nil {
				b.log.Warn("cast failed", "topic", msg.Topic, "method", msg.Method, "error", err)
			}
		}
	}
}

// pick returns the next subscription of topic in turn, or nil.
func (b *LocalBus) pick(topic string) (*subscription, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, ErrBusClosed
	}
	list := b.subs[topic]
	if len(list) == 0 {
		return nil, nil
	}
	i := b.next[topic] % len(list)
	b.next[topic] = i + 1
	return list[i], nil
}

// Cast implements [Bus].
func (b *LocalBus) Cast(ctx context.Context, msg Message) error {
	if !b.started() {
		return ErrBusNotStarted
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s, err := b.pick(msg.Topic)
	if err != nil {
		return err
	}
	if s == nil {
		return &NoServerError{Topic: msg.Topic, Method: msg.Method}
	}
	select {
	case s.queue <- msg.clone():
		return nil
	case <-s.done:
		return &NoServerError{Topic: msg.Topic, Method: msg.Method}
	case <-b.life.Done():
		return ErrBusClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Call implements [Bus].
func (b *LocalBus) Call(ctx context.Context, msg Message) (json.RawMessage, error) {
	if !b.started() {
		return nil, ErrBusNotStarted
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	timeout := b.timeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	} else {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	s, err := b.pick(msg.Topic)
	if err != nil {
		return nil, err
	}
	if s == nil {
		return nil, &NoServerError{Topic: msg.Topic, Method: msg.Method}
	}
	// The handler's context ends at the caller's deadline or when the bus
	// closes, whichever comes first.
	hctx, hcancel := context.WithCancel(ctx)
	stopOnClose := context.AfterFunc(b.life, hcancel)
	type result struct {
		reply json.RawMessage
		err   error
	}
	done := make(chan result, 1) // buffered: the handler goroutine never blocks
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		stopOnClose()
		hcancel()
		return nil, ErrBusClosed
	}
	b.wg.Add(1)
	b.mu.Unlock()
	go func() {
		defer b.wg.Done()
		defer hcancel()
		defer stopOnClose()
		r, err := invoke(hctx, s.h, msg.clone())
		done <- result{append(json.RawMessage(nil), r...), err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return nil, &RemoteError{Topic: msg.Topic, Method: msg.Method, Err: r.err}
		}
		return r.reply, nil
	case <-ctx.Done():
		return nil, &TimeoutError{Topic: msg.Topic, Method: msg.Method, Timeout: timeout, Err: ctx.Err()}
	case <-b.life.Done():
		return nil, ErrBusClosed
	}
}

// Close stops every subscription, drops queued casts and waits for every
// handler the bus started to return. Handlers see their context end.
// Closing a nil or zero LocalBus does nothing.
func (b *LocalBus) Close() error {
	if !b.started() {
		return nil
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	b.subs = map[string][]*subscription{}
	b.mu.Unlock()
	b.stop()
	b.wg.Wait()
	return nil
}

// started reports whether b was made by NewLocalBus (life and stop are set
// there and never change).
func (b *LocalBus) started() bool { return b != nil && b.life != nil && b.stop != nil }

// errEmptyPayload says a message has no payload to decode.
var errEmptyPayload = fmt.Errorf("%w: empty payload", ErrInvalidMessage)

// invoke runs h and turns a panic into an error.
func invoke(ctx context.Context, h Handler, msg Message) (reply json.RawMessage, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("handler panicked: %v", p)
		}
	}()
	return h(ctx, msg)
}

// discardHandler is a slog.Handler that drops everything.
type discardHandler struct{}

func (discardHandler) Enabled(context.Context, slog.Level) bool  { return false }
func (discardHandler) Handle(context.Context, slog.Record) error { return nil }
func (d discardHandler) WithAttrs([]slog.Attr) slog.Handler      { return d }
func (d discardHandler) WithGroup(string) slog.Handler           { return d }
