package xenserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/scheduler"
	"github.com/xenflow/xenflow/xenapi"
)

// watchedClasses are the classes a host state is computed from.
var watchedClasses = []string{"host", "host_metrics", "VM", "SR"}

// WatcherConfig tunes a Watcher.
type WatcherConfig struct {
	// PollTimeout is how long one event.from call waits for events; 0
	// means 30 s.
	PollTimeout time.Duration
	// RetryDelay is the wait after a failed event.from before the pool's
	// records are read again from the start; 0 means 1 s.
	RetryDelay time.Duration
}

// Watcher keeps the host states of the driver's pools current through
// event.from (classes host, host_metrics, VM and SR), so a scheduling
// decision reads memory instead of every host's records (Nova's scheduler
// spent most of its time reloading host state: the "cache refresh" of
// nova/scheduler/host_manager.py). Each pool is followed by one goroutine
// with a session of its own, from Start until Stop; after any failure
// (a lost session, a pool that went away) it logs in again and reads the
// pool's records from the start.
//
// Free memory comes from host_metrics.memory_free, which xapi refreshes as
// its monitoring runs; GetAvailableResource asks host.compute_free_memory
// instead.
type Watcher struct {
	d   *Driver
	cfg WatcherConfig

	mu     sync.Mutex
	pools  map[string]*poolWatch
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewWatcher returns a watcher over the driver's pools; it does nothing
// until Start.
func (d *Driver) NewWatcher(cfg WatcherConfig) *Watcher {
	if cfg.PollTimeout <= 0 {
		cfg.PollTimeout = 30 * time.Second
	}
	if cfg.RetryDelay <= 0 {
		cfg.RetryDelay = time.Second
	}
	return &Watcher{d: d, cfg: cfg}
}

// Start begins following every pool of the inventory. It returns at once;
// HostStates waits for a pool's first read. The watch ends when ctx ends
// or Stop is called. Starting a started watcher is an error.
func (w *Watcher) Start(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.cancel != nil {
		return errors.New("xenserver: watcher already started")
	}
	ctx, cancel := context.WithCancel(ctx)
	w.cancel = cancel
	w.pools = map[string]*poolWatch{}
	for _, name := range sortedKeys(w.d.pools) {
		pw := &poolWatch{conn: w.d.pools[name], ready: make(chan struct{}), cfg: w.cfg, log: w.d.log}
		w.pools[name] = pw
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			pw.run(ctx)
		}()
	}
	return nil
}

// Stop ends the watch, waits for its goroutines and logs their sessions
// out. Stopping a watcher that is not started does nothing.
func (w *Watcher) Stop() {
	w.mu.Lock()
	cancel := w.cancel
	w.cancel = nil
	w.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	w.wg.Wait()
}

// HostStates returns the current state of each named compute host, in the
// order given, from the watched records (compute.HostStateWatcher). It
// waits for a pool's first read; a compute host the inventory does not
// list is an *UnknownHostError, one whose host or SR the pool lacks a
// *NotInPoolError.
func (w *Watcher) HostStates(ctx context.Context, hosts []string) ([]scheduler.HostState, error) {
	w.mu.Lock()
	pools := w.pools
	started := w.cancel != nil
	w.mu.Unlock()
	if !started {
		return nil, errors.New("xenserver: watcher not started")
	}
	out := make([]scheduler.HostState, 0, len(hosts))
	for _, host := range hosts {
		entry, ok := w.d.cfg.Inventory.Hosts[host]
		if !ok {
			return nil, &UnknownHostError{Host: host}
		}
		pw := pools[entry.Pool]
		if err := pw.wait(ctx); err != nil {
			return nil, err
		}
		hs, err := pw.state(host, entry)
		if err != nil {
			return nil, err
		}
		out = append(out, hs)
	}
	return out, nil
}

// Driver returns the driver with HostStates served by this watcher, for a
// flow that looks for compute.HostStateWatcher on its Driver.
func (w *Watcher) Driver() compute.Driver { return watchedDriver{Driver: w.d, w: w} }

// watchedDriver is a Driver whose HostStates reads the watcher.
type watchedDriver struct {
	*Driver
	w *Watcher
}

// HostStates reads the watcher.
func (wd watchedDriver) HostStates(ctx context.Context, hosts []string) ([]scheduler.HostState, error) {
	return wd.w.HostStates(ctx, hosts)
}

// HostStates returns the state of each named compute host by reading its
// records (GetAvailableResource per host). Watcher.HostStates answers the
// same from memory.
func (d *Driver) HostStates(ctx context.Context, hosts []string) ([]scheduler.HostState, error) {
	out := make([]scheduler.HostState, 0, len(hosts))
	for _, host := range hosts {
		hs, err := d.GetAvailableResource(ctx, compute.HostRequest{Host: host})
		if err != nil {
			return nil, err
		}
		out = append(out, hs)
	}
	return out, nil
}

// poolWatch is one pool's watched records.
type poolWatch struct {
	conn  *poolConn
	cfg   WatcherConfig
	log   *slog.Logger
	ready chan struct{} // closed after the first full read

	mu      sync.RWMutex
	client  *xenapi.Client // the watch's own session
	hosts   map[xenapi.HostRef]xenapi.HostRecord
	metrics map[string]hostMetrics
	srs     map[xenapi.SRRef]xenapi.SRRecord
	vms     map[xenapi.VMRef]xenapi.VMRecord
	// Syncs counts full reads (the first and one after each failure).
	syncs int
}

// run follows the pool until ctx ends.
func (pw *poolWatch) run(ctx context.Context) {
	defer pw.logout()
	token := ""
	for ctx.Err() == nil {
		next, err := pw.poll(ctx, token)
		if err == nil {
			token = next
			continue
		}
		if ctx.Err() != nil {
			return
		}
		pw.log.Debug("xenserver: watching a pool failed; reading it again", "pool", pw.conn.name, "err", err)
		token = ""
		select {
		case <-ctx.Done():
			return
		case <-time.After(pw.cfg.RetryDelay):
		}
	}
}

// poll makes one event.from call and applies its events; the empty token
// reads every record and replaces what the watch held.
func (pw *poolWatch) poll(ctx context.Context, token string) (string, error) {
	c, err := pw.session(ctx)
	if err != nil {
		return "", err
	}
	batch, err := c.Event.From(ctx, watchedClasses, token, pw.cfg.PollTimeout.Seconds())
	if err != nil {
		return "", fmt.Errorf("xenserver: pool %q: event.from: %w", pw.conn.name, err)
	}
	if err := pw.apply(batch.Events, token == ""); err != nil {
		return "", err
	}
	return batch.Token, nil
}

// session returns the watch's client, logging in when it has none.
func (pw *poolWatch) session(ctx context.Context) (*xenapi.Client, error) {
	pw.mu.RLock()
	c := pw.client
	pw.mu.RUnlock()
	if c != nil {
		return c, nil
	}
	p := pw.conn
	c, err := xenapi.NewClient(p.ep.URL, p.options()...)
	if err != nil {
		return nil, fmt.Errorf("xenserver: pool %q: %w", p.name, err)
	}
	if err := c.Login(ctx, p.ep.User, string(p.ep.Password), p.originator); err != nil {
		return nil, fmt.Errorf("xenserver: pool %q: login as %q: %w", p.name, p.ep.User, err)
	}
	pw.mu.Lock()
	pw.client = c
	pw.mu.Unlock()
	return c, nil
}

// logout ends the watch's session.
func (pw *poolWatch) logout() {
	pw.mu.Lock()
	c := pw.client
	pw.client = nil
	pw.mu.Unlock()
	if c == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = c.Close(ctx)
}

// apply folds events into the records; full replaces them all.
func (pw *poolWatch) apply(events []xenapi.Event, full bool) error {
	pw.mu.Lock()
	defer pw.mu.Unlock()
	if full || pw.hosts == nil {
		pw.hosts = map[xenapi.HostRef]xenapi.HostRecord{}
		pw.metrics = map[string]hostMetrics{}
		pw.srs = map[xenapi.SRRef]xenapi.SRRecord{}
		pw.vms = map[xenapi.VMRef]xenapi.VMRecord{}
	}
	for _, ev := range events {
		if err := pw.applyOne(ev); err != nil {
			return fmt.Errorf("xenserver: pool %q: %w", pw.conn.name, err)
		}
	}
	if full {
		pw.syncs++
		select {
		case <-pw.ready:
		default:
			close(pw.ready)
		}
	}
	return nil
}

func (pw *poolWatch) applyOne(ev xenapi.Event) error {
	del := ev.Operation == "del"
	switch strings.ToLower(ev.Class) {
	case "host":
		return applyEvent(pw.hosts, xenapi.HostRef(ev.Ref), ev, del)
	case "host_metrics":
		return applyEvent(pw.metrics, ev.Ref, ev, del)
	case "sr":
		return applyEvent(pw.srs, xenapi.SRRef(ev.Ref), ev, del)
	case "vm":
		return applyEvent(pw.vms, xenapi.VMRef(ev.Ref), ev, del)
	}
	return nil
}

// applyEvent puts an event's snapshot in m, or removes the object.
func applyEvent[K comparable, R any](m map[K]R, key K, ev xenapi.Event, del bool) error {
	if del {
		delete(m, key)
		return nil
	}
	var rec R
	if err := ev.DecodeSnapshot(&rec); err != nil {
		return err
	}
	m[key] = rec
	return nil
}

// wait blocks until the pool's first read, or ctx ends.
func (pw *poolWatch) wait(ctx context.Context) error {
	select {
	case <-pw.ready:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("xenserver: pool %q not read yet: %w", pw.conn.name, ctx.Err())
	}
}

// state computes a compute host's state from the watched records.
func (pw *poolWatch) state(name string, entry HostEntry) (scheduler.HostState, error) {
	pw.mu.RLock()
	defer pw.mu.RUnlock()
	notIn := func(kind, what string, n int) error {
		return &NotInPoolError{Kind: kind, Name: what, ComputeHost: name, Pool: entry.Pool, Matches: n}
	}
	hostRef, n := findByKey(pw.hosts, entry.XenServerHost, func(r xenapi.HostRecord) (string, string) { return r.UUID, r.NameLabel })
	if n != 1 {
		return scheduler.HostState{}, notIn("host", entry.XenServerHost, n)
	}
	srRef, n := findByKey(pw.srs, entry.SR, func(r xenapi.SRRecord) (string, string) { return r.UUID, r.NameLabel })
	if n != 1 {
		return scheduler.HostState{}, notIn("SR", entry.SR, n)
	}
	host := pw.hosts[hostRef]
	m := pw.metrics[host.Metrics]
	s := hostSnapshot{Host: host, Metrics: m, FreeMemory: m.MemoryFree, SR: pw.srs[srRef]}
	for _, ref := range host.ResidentVMs {
		if vm, ok := pw.vms[ref]; ok && vm.ResidentOn == hostRef {
			s.VMs = append(s.VMs, vm)
		}
	}
	return s.state(name), nil
}

// findByKey finds the one record whose uuid (when key looks like one) or
// name_label is key, and says how many matched.
func findByKey[K comparable, R any](m map[K]R, key string, names func(R) (uuid, label string)) (K, int) {
	var found K
	n := 0
	byUUID := looksLikeUUID(key)
	for ref, rec := range m {
		uuid, label := names(rec)
		if byUUID && uuid == key || !byUUID && label == key {
			found = ref
			n++
		}
	}
	return found, n
}
