package crosscell

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/compute/computetest"
	"github.com/xenflow/xenflow/migrate"
	"github.com/xenflow/xenflow/quota"
	"github.com/xenflow/xenflow/scheduler"
	sm "github.com/xenflow/xenflow/statemachine"
)

const testProject, testUser = "proj", "user"

var testStart = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// points counts the points a run can be stopped or failed at: store
// writes, mapping writes and driver calls. At point at it either cancels
// the run's context (a crash) or fails the call (a fault).
type points struct {
	mu     sync.Mutex
	n      int
	at     int
	fault  bool
	cancel context.CancelFunc
	log    []string
	// crashed is set once a crash cancelled the run: the stopped
	// conductor releases no lease.
	crashed bool
}

// hit is called after a successful write (before for a driver call);
// it returns the fault to report, if any.
func (p *points) hit(what string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n++
	p.log = append(p.log, what)
	if p.at == 0 || p.n != p.at {
		return nil
	}
	if p.fault {
		return fmt.Errorf("injected fault at %s: %w", what, computetest.ErrInjected)
	}
	if p.cancel != nil {
		p.cancel()
		p.crashed = true
	}
	return nil
}

func (p *points) arm(at int, fault bool, cancel context.CancelFunc) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n, p.at, p.fault, p.cancel, p.log, p.crashed = 0, at, fault, cancel, nil, false
}

func (p *points) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
}

// cellStore is what a cell's store in these tests implements.
type cellStore interface {
	compute.Store
	compute.InstanceDestroyer
}

// sweepStore is a cell's store whose writes are points; refuseCopy makes
// it refuse every instance it did not hold (a target cell that refuses
// the copy).
type sweepStore struct {
	cellStore
	name       string
	p          *points
	refuseCopy bool
}

func (s *sweepStore) Transition(ctx context.Context, req compute.TransitionRequest) (*compute.Instance, *compute.Migration, error) {
	if err := s.p.faultBefore(s.name + " Transition"); err != nil {
		return nil, nil, err
	}
	i, m, err := s.cellStore.Transition(ctx, req)
	if err == nil {
		s.p.crashAfter()
	}
	return i, m, err
}

func (s *sweepStore) ReleaseLease(ctx context.Context, l compute.Lease) error {
	s.p.mu.Lock()
	crashed := s.p.crashed
	s.p.mu.Unlock()
	if crashed {
		return nil
	}
	return s.cellStore.ReleaseLease(ctx, l)
}

func (s *sweepStore) CreateInstance(ctx context.Context, inst *compute.Instance) error {
	if s.refuseCopy {
		return &compute.InvalidRecordError{Kind: compute.KindInstance, ID: inst.UUID, Field: "record", Reason: "refused by the cell"}
	}
	if err := s.p.faultBefore(s.name + " CreateInstance"); err != nil {
		return err
	}
	err := s.cellStore.CreateInstance(ctx, inst)
	if err == nil {
		s.p.crashAfter()
	}
	return err
}

func (s *sweepStore) CreateMigration(ctx context.Context, m *compute.Migration) error {
	if err := s.p.faultBefore(s.name + " CreateMigration"); err != nil {
		return err
	}
	err := s.cellStore.CreateMigration(ctx, m)
	if err == nil {
		s.p.crashAfter()
	}
	return err
}

func (s *sweepStore) DestroyInstance(ctx context.Context, uuid string) error {
	if err := s.p.faultBefore(s.name + " DestroyInstance"); err != nil {
		return err
	}
	err := s.cellStore.DestroyInstance(ctx, uuid)
	if err == nil {
		s.p.crashAfter()
	}
	return err
}

// faultBefore counts a point and fails it in fault mode.
func (p *points) faultBefore(what string) error {
	p.mu.Lock()
	fault := p.fault
	p.mu.Unlock()
	if !fault {
		p.mu.Lock()
		p.log = append(p.log, what)
		p.mu.Unlock()
		return nil
	}
	return p.hit(what)
}

// crashAfter counts a point after a write in crash mode.
func (p *points) crashAfter() {
	p.mu.Lock()
	fault := p.fault
	p.mu.Unlock()
	if !fault {
		_ = p.hit("write")
	}
}

// sweepAPI is the API store whose mapping writes are points.
type sweepAPI struct {
	APIStore
	p *points
}

func (a *sweepAPI) SaveMapping(ctx context.Context, m InstanceMapping) error {
	if err := a.p.faultBefore("SaveMapping"); err != nil {
		return err
	}
	err := a.APIStore.SaveMapping(ctx, m)
	if err == nil {
		a.p.crashAfter()
	}
	return err
}

// fixture is two cells of two hosts each on one FakeDriver, an API store,
// a quota ledger and a clock.
type fixture struct {
	t       *testing.T
	clock   *computetest.Clock
	driver  *computetest.FakeDriver
	ledger  *quota.Ledger
	api     *sweepAPI
	cells   []Cell
	stores  map[string]*sweepStore
	flavors migrate.Flavors
	notes   *compute.RecordingNotifier
	p       *points
	policy  Policy
	// opts are the conductors' options.
	opts migrate.Options
	seed byte
}

// newFixture builds the cells c1 (hosts c1-h1, c1-h2) and c2 (c2-h1,
// c2-h2); c1-h2 has room for small but not medium, so a resize of an
// instance on c1-h1 to medium leaves the cell when the policy allows it.
func newFixture(t *testing.T) *fixture {
	return newFixtureOn(t, func(_ string, now func() time.Time) cellStore {
		return compute.NewMemoryStore(compute.WithStoreClock(now))
	})
}

// newFixtureOn is newFixture with the cells' stores from open.
func newFixtureOn(t *testing.T, open func(cell string, now func() time.Time) cellStore) *fixture {
	clock := computetest.NewClock(testStart)
	ledger, err := quota.NewLedger(quota.WithClock(clock.Now), quota.WithIDs(quota.SequentialIDs("r")))
	if err != nil {
		t.Fatal(err)
	}
	p := &points{}
	f := &fixture{t: t, clock: clock, driver: computetest.NewFakeDriver(), ledger: ledger,
		api: &sweepAPI{APIStore: NewMemoryAPIStore(), p: p}, stores: map[string]*sweepStore{}, p: p,
		notes: &compute.RecordingNotifier{}, policy: Policy{AllowCrossCellResize: true},
		flavors: migrate.Flavors{
			"tiny":   {ID: "tiny", Name: "m1.tiny", VCPUs: 1, MemoryMB: 512, RootGB: 1},
			"small":  {ID: "small", Name: "m1.small", VCPUs: 1, MemoryMB: 2048, RootGB: 20},
			"medium": {ID: "medium", Name: "m1.medium", VCPUs: 2, MemoryMB: 4096, RootGB: 40},
		}}
	for _, cell := range []string{"c1", "c2"} {
		st := &sweepStore{cellStore: open(cell, clock.Now), name: cell, p: p}
		f.stores[cell] = st
		c := Cell{Name: cell, Store: st, Driver: f.driver}
		for i := 1; i <= 2; i++ {
			h := computetest.HostConfig{Host: fmt.Sprintf("%s-h%d", cell, i), TotalUsableRAMMB: 65536, VCPUsTotal: 32,
				TotalUsableDiskGB: 2000, RAMAllocationRatio: 1, CPUAllocationRatio: 16, DiskAllocationRatio: 1}
			if h.Host == "c1-h2" {
				h.TotalUsableRAMMB, h.TotalUsableDiskGB = 3000, 30
			}
			if err := f.driver.AddHost(h); err != nil {
				t.Fatal(err)
			}
			c.Hosts = append(c.Hosts, h.Host)
		}
		f.cells = append(f.cells, c)
	}
	f.driver.SetHook(func(c computetest.Call) error {
		if c.Step != "" || c.Method == computetest.MethodGetAvailableResource || c.Method == computetest.MethodGetInfo {
			return nil
		}
		if p.fault {
			return p.hit(string(c.Method) + " " + c.Host)
		}
		return p.hit(string(c.Method) + " " + c.Host)
	})
	return f
}

// conductor builds a conductor named owner over the fixture.
func (f *fixture) conductor(owner string) *Conductor {
	f.seed++
	c, err := New(Config{Cells: f.cells, API: f.api, Quota: f.ledger, Flavors: f.flavors, Notifier: f.notes,
		Now: f.clock.Now, Rand: rand.NewChaCha8([32]byte{f.seed}), Owner: owner, Policy: f.policy, Options: f.opts})
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

// boot creates an instance in cell on host, with its guest, mapping and
// quota.
func (f *fixture) boot(ctx context.Context, id, cell, host, flavor string, vm sm.VMState) {
	power := sm.PowerRunning
	if vm == sm.VMStopped {
		power = sm.PowerShutdown
	}
	inst := &compute.Instance{UUID: id, Name: "vm-" + id, Host: host, Node: host, Cell: cell, ProjectID: testProject,
		UserID: testUser, VMState: vm, PowerState: power, Flavor: f.flavors[flavor].Clone(), LaunchedAt: testStart}
	if err := f.stores[cell].CreateInstance(ctx, inst); err != nil {
		f.t.Fatal(err)
	}
	if err := f.driver.AddGuest(host, inst, power); err != nil {
		f.t.Fatal(err)
	}
	if err := f.api.SaveMapping(ctx, InstanceMapping{InstanceUUID: id, Cell: cell, ProjectID: testProject}); err != nil {
		f.t.Fatal(err)
	}
	charges, err := QuotaCharges(ctx, f.cells, testProject)
	if err != nil {
		f.t.Fatal(err)
	}
	if _, err := f.ledger.Reconcile(ctx, testProject, charges); err != nil {
		f.t.Fatal(err)
	}
}

// visible returns the instance's visible copies, by cell.
func (f *fixture) copies(ctx context.Context, id string) (visible, hidden map[string]*compute.Instance) {
	visible, hidden = map[string]*compute.Instance{}, map[string]*compute.Instance{}
	for _, c := range f.cells {
		inst, err := c.Store.GetInstance(ctx, id)
		if isNotFound(err) {
			continue
		}
		if err != nil {
			f.t.Fatal(err)
		}
		if inst.Hidden {
			hidden[c.Name] = inst
		} else {
			visible[c.Name] = inst
		}
	}
	return visible, hidden
}

// check verifies the invariants of an instance at rest: one visible copy,
// in the mapped cell; a hidden copy only while it waits in VERIFY_RESIZE;
// quota equal to a recount with nothing pending; no snapshot image left
// unless it waits; the root disk intact on
// the host the visible copy names; no other guest of it but the source's
// kept one while it waits.
func (f *fixture) check(ctx context.Context, id string) error {
	visible, hidden := f.copies(ctx, id)
	if len(visible) != 1 {
		return fmt.Errorf("%d visible copies (%v), want 1", len(visible), keys(visible))
	}
	m, err := f.api.GetMapping(ctx, id)
	if err != nil {
		return err
	}
	inst := visible[m.Cell]
	if inst == nil {
		return fmt.Errorf("mapping names %s, visible copy in %v", m.Cell, keys(visible))
	}
	if inst.TaskState != sm.TaskNone {
		return fmt.Errorf("instance not at rest: %s", inst.FlowState(nil))
	}
	waiting := inst.VMState == sm.VMResized
	if wantHidden := map[bool]int{true: 1, false: 0}[waiting && crossCellCopy(inst)]; len(hidden) != wantHidden {
		return fmt.Errorf("%d hidden copies (%v) with vm_state %s", len(hidden), keys(hidden), inst.VMState)
	}
	if err := f.quotaSettled(ctx); err != nil {
		return err
	}
	for _, img := range f.driver.Images() {
		if !waiting && img.InstanceUUID == id {
			return fmt.Errorf("image %s of the instance left in the image store", img.ID)
		}
	}
	return f.disksIntact(inst, waiting)
}

func (f *fixture) quotaSettled(ctx context.Context) error {
	u, err := f.ledger.Usage(ctx, testProject)
	if err != nil {
		return err
	}
	if u.Pending != 0 {
		return fmt.Errorf("quota: %d reservations pending", u.Pending)
	}
	charges, err := QuotaCharges(ctx, f.cells, testProject)
	if err != nil {
		return err
	}
	drift, err := f.ledger.Reconcile(ctx, testProject, charges)
	if err != nil {
		return err
	}
	if len(drift) > 0 {
		return fmt.Errorf("quota drift: %v", drift)
	}
	return nil
}

// disksIntact checks the guest on the visible copy's host and its root
// disk's digest, and that the instance has no other guest (but the kept
// source guest while it waits in VERIFY_RESIZE).
func (f *fixture) disksIntact(inst *compute.Instance, waiting bool) error {
	sum := sha256.Sum256([]byte(inst.UUID))
	want := hex.EncodeToString(sum[:])
	var guests []computetest.Guest
	for _, c := range f.cells {
		for _, h := range c.Hosts {
			for _, g := range f.driver.Guests(h) {
				if g.InstanceUUID == inst.UUID {
					guests = append(guests, g)
				}
			}
		}
	}
	if n := map[bool]int{true: 2, false: 1}[waiting]; len(guests) != n {
		return fmt.Errorf("%d guests of the instance, want %d: %v", len(guests), n, guests)
	}
	for _, g := range guests {
		if g.Host != inst.Host {
			continue
		}
		for _, v := range f.driver.VDIs(g.Host) {
			if v.UUID == g.VDIs[0] {
				if v.SHA256 != want {
					return fmt.Errorf("root disk on %s changed", g.Host)
				}
				return nil
			}
		}
		return fmt.Errorf("root disk of %s missing on %s", g.Name, g.Host)
	}
	return fmt.Errorf("no guest on %s, the host the instance names", inst.Host)
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// mustCell returns the cell of the instance's visible copy.
func (f *fixture) mappedCell(ctx context.Context, id string) string {
	m, err := f.api.GetMapping(ctx, id)
	if err != nil {
		f.t.Fatal(err)
	}
	return m.Cell
}

var _ = errors.Is
var _ = scheduler.ErrNoValidHost
