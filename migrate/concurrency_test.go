package migrate

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/compute/computetest"
	"github.com/xenflow/xenflow/quota"
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
	if err := h.ledger.SetLimits(ctx, testProject, quota.Limits{quota.Cores: -1, quota.RAM: -1, quota.Instances: -1}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < instances; i++ {
		inst := &compute.Instance{UUID: fmt.Sprintf("i%04d", i), Name: fmt.Sprintf("vm-%04d", i),
			Host: h.hosts[i%hosts], Node: h.hosts[i%hosts], ProjectID: testProject, UserID: testUser,
			VMState: "active", PowerState: 1, Flavor: h.flavors["small"].Clone(), LaunchedAt: testStart}
		if err := h.mem.CreateInstance(ctx, inst); err != nil {
			t.Fatal(err)
		}
		if err := h.driver.AddGuest(inst.Host, inst, inst.PowerState); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := h.ledger.Reconcile(ctx, testProject, h.charges(ctx)); err != nil {
		t.Fatal(err)
	}
	h.driver.SetHook(randomFaults(50))
	orchs := []*Orchestrator{h.orch("a"), h.orch("b")}

	var wg sync.WaitGroup
	var moved, failed atomic.Int64
	var errMu sync.Mutex
	errKinds := map[string]int{}
	stop := make(chan struct{})
	go func() { // b resumes whatever it finds while the others run
		for {
			select {
			case <-stop:
				return
			default:
				_, _ = orchs[1].Resume(ctx)
			}
		}
	}()
	for i := 0; i < instances; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			o := orchs[i%2]
			id := fmt.Sprintf("i%04d", i)
			flavor := []string{"medium", "large", "tiny"}[i%3]
			if _, err := o.Resize(ctx, ResizeRequest{InstanceUUID: id, FlavorID: flavor}); err != nil {
				failed.Add(1)
				errMu.Lock()
				errKinds[typeName(err)]++
				errMu.Unlock()
				return
			}
			var err error
			if i%4 == 0 {
				_, err = o.Revert(ctx, ActionRequest{InstanceUUID: id})
			} else {
				_, err = o.Confirm(ctx, ActionRequest{InstanceUUID: id})
			}
			if err == nil {
				moved.Add(1)
			}
		}(i)
	}
	wg.Wait()
	close(stop)
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
	t.Logf("resize errors by type: %v", errKinds)
	t.Logf("%d resizes confirmed or reverted, %d failed and rolled back", moved.Load(), failed.Load())
	if moved.Load() < instances/2 || failed.Load() == 0 {
		t.Errorf("%d moved, %d failed: the faults did not mix with successes", moved.Load(), failed.Load())
	}
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

func (h *harness) history(ctx context.Context, id string) string {
	var b []string
	migs, _ := h.mem.ListMigrations(ctx, compute.MigrationFilter{InstanceUUID: id})
	for _, m := range migs {
		b = append(b, fmt.Sprintf("mig %s %s->%s %s", m.UUID[:8], m.SourceCompute, m.DestCompute, m.Status))
	}
	faults, _ := h.mem.ListFaults(ctx, id)
	for _, f := range faults {
		b = append(b, "fault "+f.Message)
	}
	return fmt.Sprint(b)
}
