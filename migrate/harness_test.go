package migrate

import (
	"context"
	"fmt"
	"math/rand/v2"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/compute/computetest"
	"github.com/xenflow/xenflow/quota"
	"github.com/xenflow/xenflow/scheduler"
	sm "github.com/xenflow/xenflow/statemachine"
)

const testProject, testUser = "proj", "user"

var testStart = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// harness is one simulated deployment: a memory Store, a FakeDriver, a
// quota ledger and orchestrators by owner, all on one hand-moved clock,
// with a trace of the steps, driver calls and notifications.
type harness struct {
	t       testing.TB
	clock   *computetest.Clock
	mem     *compute.MemoryStore
	store   *traceStore
	driver  *computetest.FakeDriver
	ledger  *quota.Ledger
	flavors Flavors
	hosts   []string
	opts    Options
	seed    uint64
	orchs   map[string]*Orchestrator
	trace   *tracer
}

// tracer collects the trace lines of one command.
type tracer struct {
	mu    sync.Mutex
	lines []string
	on    bool
}

func (tr *tracer) add(format string, args ...any) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.on {
		tr.lines = append(tr.lines, fmt.Sprintf(format, args...))
	}
}

func (tr *tracer) take() []string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	l := tr.lines
	tr.lines = nil
	return l
}

// traceStore is the Store with every step traced and counted; after
// crashAfter steps it cancels the running command's context, as a
// process that stops right after a write.
type traceStore struct {
	compute.Store
	tr         *tracer
	mu         sync.Mutex
	steps      int
	crashAfter int
	cancel     context.CancelFunc
	// dropRelease makes ReleaseLease do nothing, as a process that
	// stopped never releases its leases.
	dropRelease bool
	// writes are the owners and fences of every step, per instance, in
	// the order the store applied them.
	writes map[string][]compute.Lease
	// renewErr, when set, is what RenewLease returns: a Store that cannot
	// be reached.
	renewErr error
}

func (s *traceStore) RenewLease(ctx context.Context, l compute.Lease, ttl time.Duration) (compute.Lease, error) {
	s.mu.Lock()
	err := s.renewErr
	s.mu.Unlock()
	if err != nil {
		return compute.Lease{}, err
	}
	return s.Store.RenewLease(ctx, l, ttl)
}

func (s *traceStore) setRenewErr(err error) {
	s.mu.Lock()
	s.renewErr = err
	s.mu.Unlock()
}

// writeCount is how many steps were written for instance id.
func (s *traceStore) writeCount(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.writes[id])
}

func (s *traceStore) ReleaseLease(ctx context.Context, l compute.Lease) error {
	s.mu.Lock()
	drop := s.dropRelease
	s.mu.Unlock()
	if drop {
		return nil
	}
	return s.Store.ReleaseLease(ctx, l)
}

// fenceViolations checks the writes of every instance: each fence written
// by one owner only, and never a write with an older fence after a newer
// one (an owner that lost its lease writing on).
func (s *traceStore) fenceViolations() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for id, ws := range s.writes {
		owner := map[uint64]string{}
		var last uint64
		for _, w := range ws {
			if o, ok := owner[w.Fence]; ok && o != w.Owner {
				out = append(out, fmt.Sprintf("%s: fence %d written by %s and %s", id, w.Fence, o, w.Owner))
			}
			owner[w.Fence] = w.Owner
			if w.Fence < last {
				out = append(out, fmt.Sprintf("%s: fence %d written after fence %d", id, w.Fence, last))
			}
			last = max(last, w.Fence)
		}
	}
	return out
}

func (s *traceStore) Transition(ctx context.Context, req compute.TransitionRequest) (*compute.Instance, *compute.Migration, error) {
	apply := req.Apply
	req.Apply = func(i *compute.Instance, m *compute.Migration) error {
		// Apply runs inside the store's write, so the order recorded here
		// is the order of the writes.
		s.mu.Lock()
		if s.writes == nil {
			s.writes = map[string][]compute.Lease{}
		}
		s.writes[req.InstanceUUID] = append(s.writes[req.InstanceUUID], req.Lease)
		s.mu.Unlock()
		return apply(i, m)
	}
	inst, mig, err := s.Store.Transition(ctx, req)
	if err != nil {
		return inst, mig, err
	}
	to := inst.FlowState(mig)
	if to != req.Expect {
		s.tr.add("step %s -> %s", req.Expect, to)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.steps++
	if s.crashAfter > 0 && s.steps == s.crashAfter && s.cancel != nil {
		s.cancel()
	}
	return inst, mig, nil
}

// armCrash makes the store cancel cancel after n more steps (0: never).
func (s *traceStore) armCrash(n int, cancel context.CancelFunc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.crashAfter, s.cancel = 0, cancel
	if n > 0 {
		s.crashAfter = s.steps + n
	}
}

type traceNotifier struct{ tr *tracer }

func (n traceNotifier) Notify(_ context.Context, no compute.Notification) error {
	suffix := ""
	if no.Priority == compute.PriorityError {
		suffix = " ERROR"
	}
	n.tr.add("notify %s%s", no.EventType, suffix)
	return nil
}

func newHarness(t testing.TB, hosts int) *harness {
	clock := computetest.NewClock(testStart)
	mem := compute.NewMemoryStore(compute.WithStoreClock(clock.Now))
	tr := &tracer{}
	ledger, err := quota.NewLedger(quota.WithClock(clock.Now), quota.WithIDs(quota.SequentialIDs("r")))
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, clock: clock, mem: mem, store: &traceStore{Store: mem, tr: tr},
		driver: computetest.NewFakeDriver(), ledger: ledger, orchs: map[string]*Orchestrator{}, trace: tr,
		flavors: Flavors{
			"small":  {ID: "small", Name: "m1.small", VCPUs: 1, MemoryMB: 2048, RootGB: 20},
			"medium": {ID: "medium", Name: "m1.medium", VCPUs: 2, MemoryMB: 4096, RootGB: 40},
			"large":  {ID: "large", Name: "m1.large", VCPUs: 4, MemoryMB: 8192, RootGB: 80},
			"tiny":   {ID: "tiny", Name: "m1.tiny", VCPUs: 1, MemoryMB: 512, RootGB: 1},
			"xl":     {ID: "xl", Name: "m1.xl", VCPUs: 8, MemoryMB: 120000, RootGB: 100},
		}}
	for i := 1; i <= hosts; i++ {
		h.addHost(computetest.HostConfig{Host: fmt.Sprintf("host%d", i), TotalUsableRAMMB: 65536, VCPUsTotal: 32,
			TotalUsableDiskGB: 2000})
	}
	h.driver.SetHook(h.traceHook)
	return h
}

// traceHook traces the driver's calls (not the host state reads).
func (h *harness) traceHook(c computetest.Call) error {
	if c.Step == "" && c.Method != computetest.MethodGetAvailableResource {
		h.trace.add("driver %s %s", c.Method, c.Host)
	}
	return nil
}

func (h *harness) addHost(c computetest.HostConfig) {
	c.RAMAllocationRatio, c.CPUAllocationRatio, c.DiskAllocationRatio = 1, 16, 1
	if err := h.driver.AddHost(c); err != nil {
		h.t.Fatal(err)
	}
	h.hosts = append(h.hosts, c.Host)
}

// orch returns the orchestrator of owner, built on first use with the
// harness's current options.
func (h *harness) orch(owner string) *Orchestrator {
	if o := h.orchs[owner]; o != nil {
		return o
	}
	// Resource filters off: the destination's claim is what refuses a
	// host that has no room (Nova's MoveClaim after a stale choice).
	sc := scheduler.DefaultConfig()
	sc.EnabledFilters = []string{scheduler.ComputeFilterName, scheduler.ImagePropertiesFilterName}
	h.seed++
	o, err := New(Config{Store: h.store, Driver: h.driver, Quota: h.ledger, Flavors: h.flavors, Hosts: h.hosts,
		Scheduler: &sc, Notifier: traceNotifier{h.trace}, Now: h.clock.Now,
		Rand: rand.NewChaCha8([32]byte{byte(h.seed)}), Owner: owner, Options: h.opts})
	if err != nil {
		h.t.Fatal(err)
	}
	h.orchs[owner] = o
	return o
}

// addInstance boots an instance on host and charges its quota.
func (h *harness) addInstance(ctx context.Context, id, host, flavor string, vm sm.VMState, locked bool) error {
	f := h.flavors[flavor]
	if f == nil {
		return fmt.Errorf("unknown flavor %q", flavor)
	}
	power := sm.PowerRunning
	if vm == sm.VMStopped {
		power = sm.PowerShutdown
	}
	inst := &compute.Instance{UUID: id, Name: "vm-" + id, Host: host, Node: host, ProjectID: testProject,
		UserID: testUser, VMState: vm, PowerState: power, Flavor: f.Clone(), Locked: locked, LaunchedAt: testStart}
	if err := h.mem.CreateInstance(ctx, inst); err != nil {
		return err
	}
	if err := h.driver.AddGuest(host, inst, power); err != nil {
		return err
	}
	_, err := h.ledger.Reconcile(ctx, testProject, h.charges(ctx))
	return err
}

func (h *harness) charges(ctx context.Context) []quota.Charge {
	insts, err := h.mem.ListInstances(ctx, compute.InstanceFilter{})
	if err != nil {
		h.t.Fatal(err)
	}
	var out []quota.Charge
	for _, i := range insts {
		out = append(out, Charge(i))
	}
	return out
}

// show describes an instance: state, host, flavor, power, migration,
// guests, faults and the project's quota.
func (h *harness) show(ctx context.Context, id string) []string {
	inst, err := h.mem.GetInstance(ctx, id)
	if err != nil {
		return []string{"instance " + id + ": " + err.Error()}
	}
	status, _ := inst.Status()
	flavor := "-"
	if inst.Flavor != nil {
		flavor = inst.Flavor.ID
	}
	out := []string{fmt.Sprintf("instance %s: %s vm_state=%s task_state=%s host=%s flavor=%s power=%s progress=%d",
		id, status, inst.VMState, inst.TaskState, inst.Host, flavor, inst.PowerState, inst.Progress)}
	migs, _ := h.mem.ListMigrations(ctx, compute.MigrationFilter{InstanceUUID: id})
	for _, m := range migs {
		out = append(out, fmt.Sprintf("  migration %s %s -> %s: %s", m.Type, m.SourceCompute, m.DestCompute, m.Status))
	}
	var guests []string
	for _, host := range h.hosts {
		for _, g := range h.driver.Guests(host) {
			if g.InstanceUUID == id {
				guests = append(guests, fmt.Sprintf("%s:%s(%s,%s)", host, g.Name, g.Flavor.ID, g.Power))
			}
		}
	}
	sort.Strings(guests)
	out = append(out, "  guests "+strings.Join(guests, " "))
	faults, _ := h.mem.ListFaults(ctx, id)
	if len(faults) > 0 {
		out = append(out, fmt.Sprintf("  faults %d, newest: %s", len(faults), faults[0].Message))
	}
	out = append(out, "  "+h.quotaLine(ctx))
	return out
}

func (h *harness) quotaLine(ctx context.Context) string {
	u, err := h.ledger.Usage(ctx, testProject)
	if err != nil {
		return "quota: " + err.Error()
	}
	return fmt.Sprintf("quota cores=%d ram=%d reserved cores=%d ram=%d pending=%d", u.Total.InUse[quota.Cores],
		u.Total.InUse[quota.RAM], u.Total.Reserved[quota.Cores], u.Total.Reserved[quota.RAM], u.Pending)
}

var uuidRE = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)

// stable replaces UUIDs with <uuid-N> in order of appearance.
func stable(lines []string) []string {
	seen := map[string]string{}
	for i, l := range lines {
		lines[i] = uuidRE.ReplaceAllStringFunc(l, func(u string) string {
			if a, ok := seen[u]; ok {
				return a
			}
			a := fmt.Sprintf("<uuid-%d>", len(seen)+1)
			seen[u] = a
			return a
		})
	}
	return lines
}
