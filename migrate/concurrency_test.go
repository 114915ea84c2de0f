package migrate

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"
	"testing"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/compute/computetest"
	"github.com/xenflow/xenflow/quota"
	sm "github.com/xenflow/xenflow/statemachine"
)

// TestConcurrentResizes runs 1,000 resizes (each then confirmed or
// reverted) at once over 100 hosts, on two orchestrators sharing the
// Store and the driver, with about 2% of the driver's calls and steps
// failing, while the second orchestrator also keeps resuming. Afterwards
// every instance rests in a state the invariants allow, quota equals a
// recount, and the store's writes show no fence written by two owners and
// no write with a fence older than one before it.
func TestConcurrentResizes(t *testing.T) {
	const hosts, instances = 100, 1000
	if testing.Short() {
		t.Skip("1,000 concurrent resizes")
	}
	h := newHarness(t, hosts)
	ctx := context.Background()
	h.bootMany(ctx, instances)
	h.driver.SetHook(randomFaults(50))
	orchs := []*Orchestrator{h.orch("a"), h.orch("b")}

	stop := make(chan struct{})
	resumed := make(chan struct{})
	go func() { // b resumes whatever it finds while the others run
		defer close(resumed)
		for {
			select {
			case <-stop:
				return
			default:
				_, _ = orchs[1].Resume(ctx)
			}
		}
	}()
	w := runWorkload(ctx, orchs, instances)
	close(stop)
	<-resumed
	h.driver.ClearFaults()
	if _, err := orchs[0].Resume(ctx); err != nil && !errors.Is(err, compute.ErrLease) {
		t.Fatalf("final resume: %v", err)
	}
	for i := 0; i < instances; i++ {
		id := fmt.Sprintf("i%04d", i)
		if err := h.invariants(ctx, id); err != nil {
			t.Errorf("%v; history %s", err, h.history(ctx, id))
		}
	}
	for _, v := range h.store.fenceViolations() {
		t.Error(v)
	}
	t.Logf("%d resizes confirmed or reverted, %d failed (by type: %v)", w.moved, w.failed, w.kinds)
	if w.moved < instances/2 || w.failed == 0 {
		t.Errorf("%d moved, %d failed: the faults did not mix with successes", w.moved, w.failed)
	}
}

// bootMany creates n small instances spread over the hosts, with no quota
// limit.
func (h *harness) bootMany(ctx context.Context, n int) {
	unlimited := quota.Limits{quota.Cores: -1, quota.RAM: -1, quota.Instances: -1}
	if err := h.ledger.SetLimits(ctx, testProject, unlimited); err != nil {
		h.t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		host := h.hosts[i%len(h.hosts)]
		inst := &compute.Instance{UUID: fmt.Sprintf("i%04d", i), Name: fmt.Sprintf("vm-%04d", i), Host: host,
			Node: host, ProjectID: testProject, UserID: testUser, VMState: sm.VMActive, PowerState: sm.PowerRunning,
			Flavor: h.flavors["small"].Clone(), LaunchedAt: testStart}
		if err := h.mem.CreateInstance(ctx, inst); err != nil {
			h.t.Fatal(err)
		}
		if err := h.driver.AddGuest(host, inst, inst.PowerState); err != nil {
			h.t.Fatal(err)
		}
	}
	if _, err := h.ledger.Reconcile(ctx, testProject, h.charges(ctx)); err != nil {
		h.t.Fatal(err)
	}
}

// workload counts what the concurrent resizes did.
type workload struct {
	mu            sync.Mutex
	moved, failed int
	kinds         map[string]int
}

// runWorkload resizes every instance at once, each on one of orchs, then
// reverts one in four and confirms the others.
func runWorkload(ctx context.Context, orchs []*Orchestrator, n int) *workload {
	w := &workload{kinds: map[string]int{}}
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			o, id := orchs[i%len(orchs)], fmt.Sprintf("i%04d", i)
			flavor := []string{"medium", "large", "tiny"}[i%3]
			_, err := o.Resize(ctx, ResizeRequest{InstanceUUID: id, FlavorID: flavor})
			if err == nil && i%4 == 0 {
				_, err = o.Revert(ctx, ActionRequest{InstanceUUID: id})
			} else if err == nil {
				_, err = o.Confirm(ctx, ActionRequest{InstanceUUID: id})
			}
			w.mu.Lock()
			defer w.mu.Unlock()
			if err != nil {
				w.failed++
				w.kinds[typeName(err)]++
				return
			}
			w.moved++
		}(i)
	}
	wg.Wait()
	return w
}

// randomFaults fails about one call or step in every n, chosen by a hash
// of the call so the choice needs no shared random source.
func randomFaults(n uint32) func(computetest.Call) error {
	var mu sync.Mutex
	count := 0
	return func(c computetest.Call) error {
		mu.Lock()
		count++
		k := count
		mu.Unlock()
		f := fnv.New32a()
		fmt.Fprintf(f, "%d/%s/%s/%d", c.Seq, c.Method, c.Step, k)
		if f.Sum32()%n == 0 {
			return computetest.ErrInjected
		}
		return nil
	}
}

// history describes an instance's migrations and faults for a failure
// message.
func (h *harness) history(ctx context.Context, id string) string {
	var b []string
	migs, _ := h.mem.ListMigrations(ctx, compute.MigrationFilter{InstanceUUID: id})
	for _, m := range migs {
		b = append(b, fmt.Sprintf("migration %s->%s %s", m.SourceCompute, m.DestCompute, m.Status))
	}
	faults, _ := h.mem.ListFaults(ctx, id)
	for _, f := range faults {
		b = append(b, "fault "+f.Message)
	}
	return fmt.Sprint(b)
}
