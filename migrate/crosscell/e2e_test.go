package crosscell_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/migrate"
	"github.com/xenflow/xenflow/migrate/crosscell"
	"github.com/xenflow/xenflow/quota"
	sm "github.com/xenflow/xenflow/statemachine"
	"github.com/xenflow/xenflow/xenapi"
	"github.com/xenflow/xenflow/xenapi/xenapitest"
	"github.com/xenflow/xenflow/xenserver"
)

const (
	xInstance = "5d1e8a3b-7c2f-4e6a-9b8d-1f3a5c7e9b2d"
	xName     = "instance-5d1e8a3b"
	xDisk     = 4 << 20
)

// xworld is two simulated XenServer pools of two hosts each, served on
// 127.0.0.1, as the cells cell1 and cell2 of one controller: the driver
// knows both pools, which never talk to each other.
type xworld struct {
	t       *testing.T
	pools   []*xenapitest.Pool
	clients []*xenapi.Client
	poolOf  map[string]int
	cells   []crosscell.Cell
	api     *crosscell.MemoryAPIStore
	ledger  *quota.Ledger
	data    []byte
}

func newXWorld(t *testing.T) *xworld {
	w := &xworld{t: t, poolOf: map[string]int{}, api: crosscell.NewMemoryAPIStore()}
	inv := xenserver.Inventory{Pools: map[string]xenserver.PoolEndpoint{}, Hosts: map[string]xenserver.HostEntry{}}
	hostsOf := make([][]string, 2)
	for pi := 0; pi < 2; pi++ {
		names := []string{fmt.Sprintf("compute%d", 2*pi+1), fmt.Sprintf("compute%d", 2*pi+2)}
		p, err := xenapitest.NewPool(xenapitest.Options{Dir: t.TempDir(), Hosts: 2, HostNames: names,
			HostMemory: 8 << 30, Rand: rand.NewChaCha8([32]byte{byte(pi + 1)})})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = p.Close() })
		url, err := p.Serve("127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("pool%d", pi+1)
		inv.Pools[name] = xenserver.PoolEndpoint{URL: url, User: p.User(), Password: xenserver.Password(p.Password()),
			ClientOptions: []xenapi.Option{xenapi.WithTaskPollInterval(2 * time.Millisecond)}}
		for _, h := range p.Hosts() {
			inv.Hosts[h.Name()] = xenserver.HostEntry{Pool: name, XenServerHost: h.UUID(), SR: h.SRUUID()}
			w.poolOf[h.Name()] = pi
			hostsOf[pi] = append(hostsOf[pi], h.Name())
		}
		w.pools = append(w.pools, p)
		w.clients = append(w.clients, login(t, url, p))
	}
	d, err := xenserver.New(xenserver.Config{Inventory: inv, Migrate: xenserver.MigrateConfig{ShutdownTimeout: 5 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close(context.Background()) })
	for pi, name := range []string{"cell1", "cell2"} {
		w.cells = append(w.cells, crosscell.Cell{Name: name, Driver: d, Hosts: hostsOf[pi],
			Store: compute.NewMemoryStore()})
	}
	if w.ledger, err = quota.NewLedger(); err != nil {
		t.Fatal(err)
	}
	w.boot()
	return w
}

func login(t *testing.T, url string, p *xenapitest.Pool) *xenapi.Client {
	c, err := xenapi.NewClient(url)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login(context.Background(), p.User(), p.Password(), "test"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

// boot creates the instance's VM on compute1 (cell1) and writes its data
// through the guest at the start, middle and end of the root disk.
func (w *xworld) boot() {
	ctx := context.Background()
	p := w.pools[0]
	vm, err := p.AddVM(xenapitest.VMSpec{Name: xName, Host: "compute1", Memory: 512 << 20, VCPUs: 2,
		Disks: []int64{xDisk}, Running: true, Networks: []string{p.Network()},
		OtherConfig: map[string]string{xenserver.KeyNovaUUID: xInstance}})
	if err != nil {
		w.t.Fatal(err)
	}
	w.data = make([]byte, xDisk)
	for i, off := range []int64{0, xDisk/2 + 512, xDisk - 8192} {
		seed := []byte(fmt.Sprintf("block %d at %d|", i, off))
		b := bytes.Repeat(seed, 8192/len(seed)+1)[:8192]
		if err := p.WriteGuestDisk(vm.Ref, "0", off, b); err != nil {
			w.t.Fatal(err)
		}
		copy(w.data[off:], b)
	}
	inst := &compute.Instance{UUID: xInstance, Name: xName, Host: "compute1", Node: "compute1", Cell: "cell1",
		ProjectID: "p", UserID: "u", VMState: sm.VMActive, PowerState: sm.PowerRunning,
		Flavor: xFlavors()["medium"].Clone(), LaunchedAt: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	if err := w.cells[0].Store.CreateInstance(ctx, inst); err != nil {
		w.t.Fatal(err)
	}
	if err := w.api.SaveMapping(ctx, crosscell.InstanceMapping{InstanceUUID: xInstance, Cell: "cell1", ProjectID: "p"}); err != nil {
		w.t.Fatal(err)
	}
	charges, err := crosscell.QuotaCharges(ctx, w.cells, "p")
	if err == nil {
		_, err = w.ledger.Reconcile(ctx, "p", charges)
	}
	if err != nil {
		w.t.Fatal(err)
	}
}

func xFlavors() migrate.Flavors {
	return migrate.Flavors{"medium": {ID: "medium", Name: "m1.medium", VCPUs: 2, MemoryMB: 512, RootGB: 1}}
}

func (w *xworld) conductor() *crosscell.Conductor {
	c, err := crosscell.New(crosscell.Config{Cells: w.cells, API: w.api, Quota: w.ledger, Flavors: xFlavors(),
		Owner: "conductor", Rand: rand.NewChaCha8([32]byte{7}), Policy: crosscell.Policy{AllowCrossCellResize: true}})
	if err != nil {
		w.t.Fatal(err)
	}
	return c
}

// visible returns the instance's one visible copy and checks it is in
// the mapped cell.
func (w *xworld) visible() *compute.Instance {
	ctx := context.Background()
	m, err := w.api.GetMapping(ctx, xInstance)
	if err != nil {
		w.t.Fatal(err)
	}
	var found []*compute.Instance
	for _, c := range w.cells {
		l, err := crosscell.VisibleInstances(ctx, c.Store, compute.InstanceFilter{})
		if err != nil {
			w.t.Fatal(err)
		}
		found = append(found, l...)
	}
	if len(found) != 1 || found[0].Cell != m.Cell {
		w.t.Fatalf("%d visible copies, mapping names %s", len(found), m.Cell)
	}
	return found[0]
}

// vms returns the power states of the instance's VMs in each pool.
func (w *xworld) vms() [2][]string {
	var out [2][]string
	for pi, c := range w.clients {
		recs, err := c.VM.GetAllRecords(context.Background())
		if err != nil {
			w.t.Fatal(err)
		}
		for ref, r := range recs {
			if r.OtherConfig[xenserver.KeyNovaUUID] == xInstance && !r.IsATemplate && !r.IsASnapshot {
				out[pi] = append(out[pi], string(r.PowerState))
				if r.PowerState == "Running" {
					w.checkData(pi, ref)
				}
			}
		}
	}
	return out
}

// images returns the VDIs of either pool tagged as an image by the
// driver (pool/name), managed or kept by the SR as a base copy.
func (w *xworld) images() []string {
	var out []string
	for pi, c := range w.clients {
		recs, err := c.VDI.GetAllRecords(context.Background())
		if err != nil {
			w.t.Fatal(err)
		}
		for _, r := range recs {
			if r.OtherConfig[xenserver.KeyImageID] != "" {
				out = append(out, fmt.Sprintf("pool%d/%s", pi+1, r.NameLabel))
			}
		}
	}
	return out
}

// checkData compares the root disk of a VM with what the guest wrote.
func (w *xworld) checkData(pi int, vm xenapi.VMRef) {
	ctx := context.Background()
	c := w.clients[pi]
	vbds, err := c.VM.GetVBDs(ctx, vm)
	if err != nil {
		w.t.Fatal(err)
	}
	for _, vbd := range vbds {
		rec, err := c.VBD.GetRecord(ctx, vbd)
		if err != nil {
			w.t.Fatal(err)
		}
		if rec.Userdevice != "0" {
			continue
		}
		got := make([]byte, len(w.data))
		if err := w.pools[pi].ReadVDIAt(string(rec.VDI), got, 0); err != nil {
			w.t.Fatal(err)
		}
		if !bytes.Equal(got, w.data) {
			w.t.Fatalf("root disk in pool %d differs from the guest's data", pi+1)
		}
		return
	}
	w.t.Fatalf("VM %s has no root disk", vm)
}

// TestXenServerCrossCell moves the instance between two pools as two
// cells with the XenServer driver: a cold migration to the other cell
// reverted (the guest runs again in pool1 with its data, cell2 holds
// nothing), then again and confirmed (the guest runs in pool2 with its
// data, pool1 and cell1 hold nothing).
func TestXenServerCrossCell(t *testing.T) {
	ctx := context.Background()
	w := newXWorld(t)
	c := w.conductor()
	steps := []struct {
		name     string
		run      func() (*crosscell.Result, error)
		cell     string
		host     string
		vms      [2]int // the instance's VMs in pool1, pool2
		hiddenIn string
	}{
		{"migrate to cell2", func() (*crosscell.Result, error) {
			return c.Migrate(ctx, migrate.MigrateRequest{InstanceUUID: xInstance, TargetHost: "compute3", Admin: true})
		}, "cell2", "compute3", [2]int{1, 1}, "cell1"},
		{"revert", func() (*crosscell.Result, error) {
			return c.Revert(ctx, migrate.ActionRequest{InstanceUUID: xInstance})
		}, "cell1", "compute1", [2]int{1, 0}, ""},
		{"migrate to cell2 again", func() (*crosscell.Result, error) {
			return c.Migrate(ctx, migrate.MigrateRequest{InstanceUUID: xInstance, TargetHost: "compute4", Admin: true})
		}, "cell2", "compute4", [2]int{1, 1}, "cell1"},
		{"confirm", func() (*crosscell.Result, error) {
			return c.Confirm(ctx, migrate.ActionRequest{InstanceUUID: xInstance})
		}, "cell2", "compute4", [2]int{0, 1}, ""},
	}
	for _, s := range steps {
		res, err := s.run()
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		inst := w.visible()
		if res.DestCell != s.cell || inst.Cell != s.cell || inst.Host != s.host {
			t.Fatalf("%s: in %s on %s, want %s on %s", s.name, inst.Cell, inst.Host, s.cell, s.host)
		}
		vms := w.vms()
		if len(vms[0]) != s.vms[0] || len(vms[1]) != s.vms[1] {
			t.Fatalf("%s: VMs in the pools %v, want %v", s.name, vms, s.vms)
		}
		// the snapshot is kept while the move waits in VERIFY_RESIZE,
		// deleted from both pools by the confirm or revert
		if imgs := w.images(); (len(imgs) > 0) != (s.hiddenIn != "") {
			t.Fatalf("%s: snapshot image VDIs %v", s.name, imgs)
		}
		for pi, cell := range []string{"cell1", "cell2"} {
			l, err := w.cells[pi].Store.ListInstances(ctx, compute.InstanceFilter{})
			if err != nil {
				t.Fatal(err)
			}
			hidden := len(l) == 1 && l[0].Hidden
			if hidden != (s.hiddenIn == cell) || len(l) > 1 {
				t.Fatalf("%s: %s holds %d copies (hidden %v)", s.name, cell, len(l), hidden)
			}
		}
		t.Logf("%s: %s on %s, VMs %v", s.name, inst.Cell, inst.Host, vms)
	}
}

// xOp is an operation of the XenAPI fault sweep, after its setup.
type xOp struct {
	name  string
	setup []func(*crosscell.Conductor) error
	run   func(*crosscell.Conductor) error
}

func xMigrate(c *crosscell.Conductor) error {
	_, err := c.Migrate(context.Background(), migrate.MigrateRequest{InstanceUUID: xInstance, TargetHost: "compute3", Admin: true})
	return err
}

func xConfirm(c *crosscell.Conductor) error {
	_, err := c.Confirm(context.Background(), migrate.ActionRequest{InstanceUUID: xInstance})
	return err
}

func xRevert(c *crosscell.Conductor) error {
	_, err := c.Revert(context.Background(), migrate.ActionRequest{InstanceUUID: xInstance})
	return err
}

var xOps = []xOp{
	{"migrate", nil, xMigrate},
	{"confirm", []func(*crosscell.Conductor) error{xMigrate}, xConfirm},
	{"revert", []func(*crosscell.Conductor) error{xMigrate}, xRevert},
}

// prepare builds a world with the operation's setup done.
func (op xOp) prepare(t *testing.T) *xworld {
	w := newXWorld(t)
	for _, s := range op.setup {
		if err := s(w.conductor()); err != nil {
			t.Fatalf("setup: %v", err)
		}
	}
	for _, p := range w.pools {
		p.ResetCalls()
	}
	return w
}

// atRest checks the instance once nothing runs: one visible copy, in the
// mapped cell, with no task; a hidden copy only while it waits in
// VERIFY_RESIZE; one running VM of it, in the pool of the host the copy
// names, with the guest's data; a halted one in the source pool only
// while it waits; no VDI of a snapshot image in either pool unless it
// waits; quota equal to a recount with nothing pending.
func (w *xworld) atRest() {
	w.t.Helper()
	ctx := context.Background()
	inst := w.visible()
	if inst.TaskState != sm.TaskNone {
		w.t.Fatalf("instance in %s/%s", inst.VMState, inst.TaskState)
	}
	waiting := inst.VMState == sm.VMResized
	hidden := 0
	for _, c := range w.cells {
		l, err := c.Store.ListInstances(ctx, compute.InstanceFilter{})
		if err != nil {
			w.t.Fatal(err)
		}
		for _, i := range l {
			if i.Hidden {
				hidden++
			}
		}
	}
	vms := w.vms()
	running, halted := 0, 0
	for pi, states := range vms {
		for _, s := range states {
			if s == "Running" {
				running++
				if pi != w.poolOf[inst.Host] {
					w.t.Fatalf("the running VM is in pool %d, the instance on %s", pi+1, inst.Host)
				}
			} else {
				halted++
			}
		}
	}
	want := map[bool]int{true: 1, false: 0}[waiting]
	if hidden != want || halted != want || running != 1 {
		w.t.Fatalf("vm_state %s: %d hidden copies, VMs %v", inst.VMState, hidden, vms)
	}
	if imgs := w.images(); !waiting && len(imgs) > 0 {
		w.t.Fatalf("vm_state %s: snapshot images left: %v", inst.VMState, imgs)
	}
	charges, err := crosscell.QuotaCharges(ctx, w.cells, "p")
	if err != nil {
		w.t.Fatal(err)
	}
	drift, err := w.ledger.Reconcile(ctx, "p", charges)
	u, uerr := w.ledger.Usage(ctx, "p")
	if err != nil || uerr != nil || len(drift) > 0 || u.Pending != 0 {
		w.t.Fatalf("quota: drift %v, %d pending (%v, %v)", drift, u.Pending, err, uerr)
	}
}

// xCall is one XenAPI call of a clean run: the pool it went to and the
// call as the pool counts it.
type xCall struct {
	pool int
	xenapitest.CallRecord
}

func (c xCall) String() string { return fmt.Sprintf("pool%d/%s#%d", c.pool+1, c.Method, c.N) }

// recordCalls runs op cleanly in a fresh world and returns every XenAPI
// call it made, in both pools.
func (op xOp) recordCalls(t *testing.T) []xCall {
	w := op.prepare(t)
	if err := op.run(w.conductor()); err != nil {
		t.Fatal(err)
	}
	w.atRest()
	var out []xCall
	for pi, p := range w.pools {
		for _, c := range p.Calls() {
			out = append(out, xCall{pi, c})
		}
	}
	return out
}

// sampled is true under -race (five to ten times slower) and -short,
// where the XenAPI sweep fails the first call of each method in each
// pool instead of every call.
func sampled() bool { return raceDetector || testing.Short() }

// sweepPoints are the calls the sweep fails: every one, or when sampled
// the first of each method in each pool.
func sweepPoints(calls []xCall) []xCall {
	if !sampled() {
		return calls
	}
	seen := map[string]bool{}
	var out []xCall
	for _, c := range calls {
		if k := fmt.Sprint(c.pool, c.Method); !seen[k] {
			seen[k] = true
			out = append(out, c)
		}
	}
	return out
}

// TestXenServerFaultSweep fails every XenAPI call of the cross-cell
// migration, confirm and revert on two simulated pools once, in a fresh
// world each time (sampled under -race and -short: see sampled): once the
// conductor returns and a second one resumed, the instance is at rest
// with its data in the pool that runs it and no image of the move left.
func TestXenServerFaultSweep(t *testing.T) {
	for _, op := range xOps {
		t.Run(op.name, func(t *testing.T) {
			calls := op.recordCalls(t)
			points := sweepPoints(calls)
			var hit atomic.Int64
			t.Cleanup(func() {
				t.Logf("%s: %d of %d XenAPI calls failed, %d of them answering the fault (Async calls fail in their task)",
					op.name, len(points), len(calls), hit.Load())
				if int(hit.Load()) < len(points)/2 {
					t.Errorf("only %d of %d faults reached their call", hit.Load(), len(points))
				}
			})
			for _, pt := range points {
				t.Run(pt.String(), func(t *testing.T) {
					t.Parallel() // each point has a world of its own
					w := op.prepare(t)
					p := w.pools[pt.pool]
					p.FailNth(pt.Method, pt.N, "INTERNAL_ERROR", "injected")
					_ = op.run(w.conductor()) // a typed failure, or a retry that finished
					p.ClearFaults()
					for _, c := range p.Calls() {
						if c.Method == pt.Method && c.N == pt.N && c.Error != "" {
							hit.Add(1)
						}
					}
					if _, err := w.conductor().Resume(context.Background()); err != nil {
						t.Fatalf("resume: %v", err)
					}
					w.atRest()
				})
			}
		})
	}
}
