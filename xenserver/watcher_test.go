package xenserver

import (
	"context"
	"fmt"
	"log"
	"reflect"
	"runtime"
	"testing"
	"time"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/scheduler"
	"github.com/xenflow/xenflow/xenapi/xenapitest"
)

var fastWatch = WatcherConfig{PollTimeout: 200 * time.Millisecond, RetryDelay: 10 * time.Millisecond}

// eventually polls check until it returns "" or the deadline passes.
func eventually(t testing.TB, what string, check func() string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		msg := check()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s", what, msg)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// watcherMatches reports how the watcher's states differ from records
// read now, "" when they agree.
func watcherMatches(ctx context.Context, e *testEnv, w *Watcher) string {
	hosts := sortedKeys(e.cfg.Inventory.Hosts)
	got, err := w.HostStates(ctx, hosts)
	if err != nil {
		return err.Error()
	}
	want, err := e.d.HostStates(ctx, hosts)
	if err != nil {
		return err.Error()
	}
	if !reflect.DeepEqual(got, want) {
		return fmt.Sprintf("watcher %+v\nrecords %+v", got, want)
	}
	return ""
}

func TestWatcherFollowsChanges(t *testing.T) {
	for _, l := range layouts {
		t.Run(string(l), func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, l, envOptions{hostMemory: 16 << 30, srSize: 100 << 30})
			placeGuests(t, e, 1)
			w := e.d.NewWatcher(fastWatch)
			if err := w.Start(ctx); err != nil {
				t.Fatal(err)
			}
			defer w.Stop()
			eventually(t, "first read", func() string { return watcherMatches(ctx, e, w) })

			g := e.addGuest("compute2", guestSpec{uuid: "aaaaaaaa-0000-4000-8000-000000000001", running: true,
				flavor: &compute.Flavor{ID: "big", MemoryMB: 4096, VCPUs: 4}})
			eventually(t, "a started guest", func() string {
				st, err := w.HostStates(ctx, []string{"compute2"})
				if err != nil {
					return err.Error()
				}
				for _, id := range st[0].Instances {
					if id == g.inst.UUID {
						return watcherMatches(ctx, e, w)
					}
				}
				return fmt.Sprintf("instance missing from %v", st[0].Instances)
			})
			if err := e.d.PowerOff(ctx, compute.PowerOffRequest{Instance: g.inst, Host: "compute2"}); err != nil {
				t.Fatal(err)
			}
			eventually(t, "a halted guest", func() string { return watcherMatches(ctx, e, w) })
		})
	}
}

func TestWatcherErrors(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, standalone, envOptions{})
	w := e.d.NewWatcher(fastWatch)
	if _, err := w.HostStates(ctx, []string{"compute1"}); err == nil {
		t.Fatal("HostStates before Start succeeded")
	}
	if err := w.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if err := w.Start(ctx); err == nil {
		t.Fatal("a second Start succeeded")
	}
	if _, err := w.HostStates(ctx, []string{"compute1", "nowhere"}); err == nil {
		t.Fatal("an unknown host gave no error")
	}
}

// TestWatcherReconnects: the watch's session is logged out behind its
// back and event.from fails; the watcher reads the pool again and keeps
// following it.
func TestWatcherReconnects(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, standalone, envOptions{})
	w := e.d.NewWatcher(fastWatch)
	if err := w.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	eventually(t, "first read", func() string { return watcherMatches(ctx, e, w) })
	pw := w.pools["pool1"]
	pw.mu.RLock()
	sess := pw.client.Session()
	syncs := pw.syncs
	pw.mu.RUnlock()
	p := e.pools["pool1"]
	if _, err := p.Call(ctx, "session.logout", string(sess)); err != nil {
		t.Fatal(err)
	}
	p.InjectFault(xenapitest.Fault{Method: "event.from", N: p.CallCount("event.from") + 2, Code: xenapitest.ErrInternalError})
	g := e.addGuest("compute1", guestSpec{uuid: "bbbbbbbb-0000-4000-8000-000000000002", running: true})
	eventually(t, "after a lost session and a failed event.from", func() string {
		pw.mu.RLock()
		again := pw.syncs > syncs
		pw.mu.RUnlock()
		if !again {
			return "the pool was not read again"
		}
		st, err := w.HostStates(ctx, []string{"compute1"})
		if err != nil {
			return err.Error()
		}
		if !reflect.DeepEqual(st[0].Instances, []string{g.inst.UUID}) {
			return fmt.Sprintf("instances %v", st[0].Instances)
		}
		return watcherMatches(ctx, e, w)
	})
	pw.mu.RLock()
	defer pw.mu.RUnlock()
	if pw.client.Session() == sess {
		t.Fatal("the watcher kept the logged-out session")
	}
}

// TestWatcherNoLeak: Stop (or the start context ending) ends every
// goroutine the watcher started.
func TestWatcherNoLeak(t *testing.T) {
	for _, stop := range []string{"Stop", "cancel"} {
		t.Run(stop, func(t *testing.T) {
			e := newEnv(t, onePool, envOptions{})
			if _, err := e.d.HostStates(context.Background(), []string{"compute1"}); err != nil {
				t.Fatal(err)
			}
			before := runtime.NumGoroutine()
			ctx, cancel := context.WithCancel(context.Background())
			w := e.d.NewWatcher(fastWatch)
			if err := w.Start(ctx); err != nil {
				t.Fatal(err)
			}
			eventually(t, "first read", func() string { return watcherMatches(context.Background(), e, w) })
			if runtime.NumGoroutine() <= before {
				t.Fatal("the watcher started no goroutine")
			}
			if stop == "Stop" {
				w.Stop()
			} else {
				cancel()
				w.wg.Wait()
			}
			cancel()
			eventually(t, "goroutines after the watch ended", func() string {
				if n := runtime.NumGoroutine(); n > before {
					return fmt.Sprintf("%d goroutines, %d before", n, before)
				}
				return ""
			})
			w.Stop()
		})
	}
}

// benchHosts is a scheduling-sized set of hosts: two pools of 50, two
// guests running on each host.
func benchHosts(b *testing.B) (*testEnv, []string) {
	b.Helper()
	e := &testEnv{t: b, pools: map[string]*xenapitest.Pool{}, poolOf: map[string]*xenapitest.Pool{},
		hostOf: map[string]*xenapitest.Host{}}
	e.cfg = Config{Inventory: Inventory{Pools: map[string]PoolEndpoint{}, Hosts: map[string]HostEntry{}}}
	var hosts []string
	for k := 0; k < 2; k++ { // a pool has at most 64 hosts
		pool := fmt.Sprintf("pool%d", k+1)
		p := e.addPool(pool, 50, envOptions{})
		for i, h := range p.Hosts() {
			name := fmt.Sprintf("compute%03d", 50*k+i+1)
			e.addHost(name, pool, p, h, false)
			hosts = append(hosts, name)
			for j := 0; j < 2; j++ {
				if _, err := p.AddVM(xenapitest.VMSpec{Name: fmt.Sprintf("vm-%d-%d", i, j), Host: h.Name(),
					Disks: []int64{1 << 20}, Running: true,
					OtherConfig: map[string]string{KeyNovaUUID: fmt.Sprintf("%08d-0000-4000-8000-%012d", 50*k+i, j)}}); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	e.newDriver(b)
	return e, hosts
}

// BenchmarkHostStates reads 100 hosts' states per operation, by reading
// their records each time (reread) and from a Watcher; the ratio
// sub-benchmark times both in turn and reports reread/watcher.
func BenchmarkHostStates(b *testing.B) {
	e, hosts := benchHosts(b)
	ctx := context.Background()
	w := e.d.NewWatcher(WatcherConfig{})
	if err := w.Start(ctx); err != nil {
		b.Fatal(err)
	}
	defer w.Stop()
	if _, err := w.HostStates(ctx, hosts); err != nil {
		b.Fatal(err)
	}
	read := map[string]func() ([]scheduler.HostState, error){
		"reread":  func() ([]scheduler.HostState, error) { return e.d.HostStates(ctx, hosts) },
		"watcher": func() ([]scheduler.HostState, error) { return w.HostStates(ctx, hosts) },
	}
	for _, name := range []string{"reread", "watcher"} {
		b.Run(name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if st, err := read[name](); err != nil || len(st) != len(hosts) {
					b.Fatal(len(st), err)
				}
			}
		})
	}
	b.Run("ratio", func(b *testing.B) {
		var spent [2]time.Duration
		for i := 0; i < b.N; i++ {
			for k, name := range []string{"reread", "watcher"} {
				start := time.Now()
				if _, err := read[name](); err != nil {
					b.Fatal(err)
				}
				spent[k] += time.Since(start)
			}
		}
		b.ReportMetric(float64(spent[0])/float64(spent[1]), "reread/watcher")
	})
}

// A Watcher answers HostStates from memory, kept current by event.from;
// Watcher.Driver hands it to a flow that looks for
// compute.HostStateWatcher on its driver.
func ExampleWatcher() {
	d, p, stop := exampleDriver()
	defer stop()
	ctx := context.Background()
	w := d.NewWatcher(WatcherConfig{PollTimeout: time.Second})
	if err := w.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer w.Stop()
	if _, err := p.AddVM(xenapitest.VMSpec{Name: "web", Disks: []int64{1 << 20}, Running: true,
		OtherConfig: map[string]string{KeyNovaUUID: "0a0a0a0a-0000-4000-8000-000000000002"}}); err != nil {
		log.Fatal(err)
	}
	for {
		st, err := w.HostStates(ctx, []string{"compute1"})
		if err != nil {
			log.Fatal(err)
		}
		if st[0].NumInstances == 1 {
			fmt.Println(st[0].Host, st[0].Instances)
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	_, ok := w.Driver().(compute.HostStateWatcher)
	fmt.Println(ok)
	// Output:
	// compute1 [0a0a0a0a-0000-4000-8000-000000000002]
	// true
}
