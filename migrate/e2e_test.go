package migrate_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/compute/computetest"
	"github.com/xenflow/xenflow/dom0"
	"github.com/xenflow/xenflow/dom0/dom0test"
	"github.com/xenflow/xenflow/migrate"
	"github.com/xenflow/xenflow/quota"
	sm "github.com/xenflow/xenflow/statemachine"
	"github.com/xenflow/xenflow/xenapi"
	"github.com/xenflow/xenflow/xenapi/xenapitest"
	"github.com/xenflow/xenflow/xenserver"
)

const (
	eInstance = "3c0f7b2a-6d4e-4f1a-8b9c-0d2e4f6a8b0c"
	eName     = "instance-3c0f7b2a"
	eProject  = "project"
	eUser     = "user"
	eDisk     = 4 << 20 // the root disk's virtual size in the pool
	eLeaseTTL = time.Minute
)

var eStart = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// eLayout is how the compute hosts sit in pools: one pool per entry,
// with that many hosts.
type eLayout struct {
	name  string
	pools []int
}

var eLayouts = []eLayout{{"standalone", []int{1, 1}}, {"pool-of-3", []int{3}}}

// eFlavors: medium is the instance's; large grows every size (the root
// disk too), small shrinks memory and vCPUs (a root disk never shrinks).
func eFlavors() migrate.Flavors {
	return migrate.Flavors{
		"small":  {ID: "small", Name: "m1.small", VCPUs: 1, MemoryMB: 256, RootGB: 1},
		"medium": {ID: "medium", Name: "m1.medium", VCPUs: 2, MemoryMB: 512, RootGB: 1},
		"large":  {ID: "large", Name: "m1.large", VCPUs: 4, MemoryMB: 1024, RootGB: 2},
	}
}

// eworld is an instance on simulated XenServer pools served over HTTP on
// 127.0.0.1, the real driver, a memory Store and a quota ledger on one
// hand-moved clock.
type eworld struct {
	t       testing.TB
	layout  eLayout
	pools   []*xenapitest.Pool
	clients []*xenapi.Client
	poolOf  map[string]int // compute host → index in pools
	hosts   []string
	clock   *computetest.Clock
	store   *compute.MemoryStore
	ledger  *quota.Ledger
	driver  *xenserver.Driver
	flavors migrate.Flavors
	opts    migrate.Options
	data    []byte // what the guest's root disk holds
	seed    byte
	// dom0 are the hosts' control domains, with the dom0 transport.
	dom0 map[string]*dom0test.FaultHost
}

func newEWorld(t *testing.T, l eLayout, transport string) *eworld {
	t.Helper()
	w := newEPoolsWith(t, l, 8<<30, transport)
	w.addInstance()
	return w
}

// newEPools builds the layout's pools, each host with hostMemory bytes of
// RAM, the driver, the Store and the ledger; no instance yet.
func newEPools(t testing.TB, l eLayout, hostMemory int64) *eworld {
	return newEPoolsWith(t, l, hostMemory, xenserver.TransportXAPI)
}

// newEPoolsWith is newEPools with the disks moved by transport; with
// xenserver.TransportDom0 each host's dom0 is a dom0test.FaultHost over
// the simulated host's root, kept in w.dom0.
func newEPoolsWith(t testing.TB, l eLayout, hostMemory int64, transport string) *eworld {
	t.Helper()
	w := &eworld{t: t, layout: l, poolOf: map[string]int{}, clock: computetest.NewClock(eStart), flavors: eFlavors(),
		dom0: map[string]*dom0test.FaultHost{}}
	inv := xenserver.Inventory{Pools: map[string]xenserver.PoolEndpoint{}, Hosts: map[string]xenserver.HostEntry{}}
	for pi, n := range l.pools {
		var names []string
		for i := 0; i < n; i++ {
			names = append(names, fmt.Sprintf("compute%d", len(w.hosts)+i+1))
		}
		p, err := xenapitest.NewPool(xenapitest.Options{Dir: t.TempDir(), Hosts: n, HostNames: names,
			HostMemory: hostMemory, SRSize: 1 << 40, Rand: rand.NewChaCha8([32]byte{byte(pi + 1), byte(pi >> 8)})})
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
			inv.Hosts[h.Name()] = w.hostEntry(name, h, transport)
			w.poolOf[h.Name()] = pi
			w.hosts = append(w.hosts, h.Name())
		}
		w.pools = append(w.pools, p)
		w.clients = append(w.clients, w.login(url, p))
	}
	d, err := xenserver.New(xenserver.Config{Inventory: inv, Migrate: xenserver.MigrateConfig{ShutdownTimeout: 5 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close(context.Background()) })
	w.driver = d
	w.store = compute.NewMemoryStore(compute.WithStoreClock(w.clock.Now))
	if w.ledger, err = quota.NewLedger(quota.WithClock(w.clock.Now), quota.WithIDs(quota.SequentialIDs("r"))); err != nil {
		t.Fatal(err)
	}
	return w
}

// hostEntry is the inventory entry of a simulated host of pool, with
// its dom0 when the transport needs one.
func (w *eworld) hostEntry(pool string, h *xenapitest.Host, transport string) xenserver.HostEntry {
	e := xenserver.HostEntry{Pool: pool, XenServerHost: h.UUID(), SR: h.SRUUID(), Transport: transport}
	if transport != xenserver.TransportDom0 {
		return e
	}
	local, err := dom0.Local(h.Root())
	if err != nil {
		w.t.Fatal(err)
	}
	w.dom0[h.Name()] = dom0test.NewFaultHost(local)
	e.Dom0 = w.dom0[h.Name()]
	return e
}

func (w *eworld) login(url string, p *xenapitest.Pool) *xenapi.Client {
	w.t.Helper()
	c, err := xenapi.NewClient(url)
	if err != nil {
		w.t.Fatal(err)
	}
	if err := c.Login(context.Background(), p.User(), p.Password(), "test"); err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

// addInstance boots the instance (flavor medium) on compute1 and writes
// its data through the guest: at the start, in the middle and at the end
// of the root disk.
func (w *eworld) addInstance() {
	w.t.Helper()
	ctx := context.Background()
	f := w.flavors["medium"]
	host := w.hosts[0]
	p := w.pools[w.poolOf[host]]
	vm, err := p.AddVM(xenapitest.VMSpec{Name: eName, Host: host, Memory: int64(f.MemoryMB) << 20, VCPUs: f.VCPUs,
		Disks: []int64{eDisk}, Running: true, Networks: []string{p.Network()},
		OtherConfig: map[string]string{xenserver.KeyNovaUUID: eInstance}})
	if err != nil {
		w.t.Fatal(err)
	}
	w.data = make([]byte, eDisk)
	for i, off := range []int64{0, eDisk/2 + 512, eDisk - 8192} {
		seed := []byte(fmt.Sprintf("block %d at %d|", i, off))
		b := bytes.Repeat(seed, 8192/len(seed)+1)[:8192]
		if err := p.WriteGuestDisk(vm.Ref, "0", off, b); err != nil {
			w.t.Fatal(err)
		}
		copy(w.data[off:], b)
	}
	inst := &compute.Instance{UUID: eInstance, Name: eName, Host: host, Node: host, ProjectID: eProject, UserID: eUser,
		VMState: sm.VMActive, PowerState: sm.PowerRunning, Flavor: f.Clone(), LaunchedAt: eStart}
	if err := w.store.CreateInstance(ctx, inst); err != nil {
		w.t.Fatal(err)
	}
	if _, err := w.ledger.Reconcile(ctx, eProject, w.charges()); err != nil {
		w.t.Fatal(err)
	}
}

func (w *eworld) charges() []quota.Charge {
	w.t.Helper()
	insts, err := w.store.ListInstances(context.Background(), compute.InstanceFilter{})
	if err != nil {
		w.t.Fatal(err)
	}
	var out []quota.Charge
	for _, i := range insts {
		out = append(out, migrate.Charge(i))
	}
	return out
}

// orch builds an orchestrator on store (the world's Store, or a wrapper
// of it) with a scheduler seed of its own.
func (w *eworld) orch(store compute.Store, owner string) *migrate.Orchestrator {
	w.t.Helper()
	w.seed++
	o, err := migrate.New(migrate.Config{Store: store, Driver: w.driver, Quota: w.ledger, Flavors: w.flavors,
		Hosts: w.hosts, Now: w.clock.Now, Rand: rand.NewChaCha8([32]byte{w.seed}), Owner: owner,
		LeaseTTL: eLeaseTTL, Options: w.opts})
	if err != nil {
		w.t.Fatal(err)
	}
	return o
}

func (w *eworld) instance() *compute.Instance {
	w.t.Helper()
	inst, err := w.store.GetInstance(context.Background(), eInstance)
	if err != nil {
		w.t.Fatal(err)
	}
	return inst
}

// eOp is one operation of the orchestrator on the world's instance.
type eOp struct {
	name string
	// setup brings the instance to where the operation starts.
	setup func(ctx context.Context, o *migrate.Orchestrator) error
	run   func(ctx context.Context, o *migrate.Orchestrator) error
	// want is where a clean run ends, and whether on the source host.
	want     sm.VMState
	onSource bool
}

func resizeTo(flavor string) func(context.Context, *migrate.Orchestrator) error {
	return func(ctx context.Context, o *migrate.Orchestrator) error {
		_, err := o.Resize(ctx, migrate.ResizeRequest{InstanceUUID: eInstance, FlavorID: flavor})
		return err
	}
}

func coldMigrate(ctx context.Context, o *migrate.Orchestrator) error {
	_, err := o.Migrate(ctx, migrate.MigrateRequest{InstanceUUID: eInstance})
	return err
}

func confirm(ctx context.Context, o *migrate.Orchestrator) error {
	_, err := o.Confirm(ctx, migrate.ActionRequest{InstanceUUID: eInstance})
	return err
}

func revert(ctx context.Context, o *migrate.Orchestrator) error {
	_, err := o.Revert(ctx, migrate.ActionRequest{InstanceUUID: eInstance})
	return err
}

func suspendedMigrate(ctx context.Context, o *migrate.Orchestrator) error {
	_, err := o.Migrate(ctx, migrate.MigrateRequest{InstanceUUID: eInstance, Suspend: true})
	return err
}

// eSuspendOps are the cold migration with the guest suspended, its
// confirm and its revert.
var eSuspendOps = []eOp{
	{name: "suspended-migrate", run: suspendedMigrate, want: sm.VMResized},
	{name: "suspended-confirm", setup: suspendedMigrate, run: confirm, want: sm.VMActive},
	{name: "suspended-revert", setup: suspendedMigrate, run: revert, want: sm.VMActive, onSource: true},
}

var eOps = []eOp{
	{name: "resize-up", run: resizeTo("large"), want: sm.VMResized},
	{name: "resize-down", run: resizeTo("small"), want: sm.VMResized},
	{name: "cold-migrate", run: coldMigrate, want: sm.VMResized},
	{name: "confirm", setup: resizeTo("large"), run: confirm, want: sm.VMActive},
	{name: "revert", setup: resizeTo("large"), run: revert, want: sm.VMActive, onSource: true},
}

// prepare builds a world for op and runs its setup.
func (op eOp) prepare(t *testing.T, l eLayout) *eworld {
	t.Helper()
	return op.prepareWith(t, l, xenserver.TransportXAPI)
}

// prepareWith is prepare with the disks moved by transport.
func (op eOp) prepareWith(t *testing.T, l eLayout, transport string) *eworld {
	t.Helper()
	w := newEWorld(t, l, transport)
	if op.setup != nil {
		if err := op.setup(context.Background(), w.orch(w.store, "setup")); err != nil {
			t.Fatalf("setup: %v", err)
		}
	}
	return w
}

// TestEndToEnd runs each operation on the real XenServer driver, on
// standalone pools and on one pool of three hosts, and checks where the
// instance ends, its data byte for byte on the host the Store names, the
// quota, and every VM and VDI in the pools.
func TestEndToEnd(t *testing.T) {
	for _, l := range eLayouts {
		for _, op := range append(append([]eOp(nil), eOps...), eSuspendOps...) {
			t.Run(l.name+"/"+op.name, func(t *testing.T) {
				w := op.prepare(t, l)
				if err := op.run(context.Background(), w.orch(w.store, "o1")); err != nil {
					t.Fatal(err)
				}
				inst := w.instance()
				if inst.VMState != op.want || (inst.Host == w.hosts[0]) != op.onSource {
					t.Fatalf("instance %s on %s, want %s (on the source: %v)", inst.VMState, inst.Host, op.want, op.onSource)
				}
				wantFlavor := map[string]string{"resize-up": "large", "resize-down": "small", "cold-migrate": "medium",
					"confirm": "large", "revert": "medium", "suspended-migrate": "medium", "suspended-confirm": "medium",
					"suspended-revert": "medium"}[op.name]
				if inst.Flavor.ID != wantFlavor {
					t.Fatalf("flavor %s, want %s", inst.Flavor.ID, wantFlavor)
				}
				w.check()
				w.checkVM(inst)
			})
		}
	}
}

// checkVM checks the instance's VM against its flavor: memory, vCPUs and
// the root disk's virtual size.
func (w *eworld) checkVM(inst *compute.Instance) {
	w.t.Helper()
	ctx := context.Background()
	c := w.clients[w.poolOf[inst.Host]]
	ref, rec := w.instanceVM(inst)
	if rec.MemoryStaticMax != int64(inst.Flavor.MemoryMB)<<20 || rec.VCPUsMax != int64(inst.Flavor.VCPUs) {
		w.t.Fatalf("VM %s: memory %d, %d vCPUs; flavor %s", rec.NameLabel, rec.MemoryStaticMax, rec.VCPUsMax, inst.Flavor.ID)
	}
	vdi, err := c.VDI.GetRecord(ctx, w.root(c, ref))
	if err != nil {
		w.t.Fatal(err)
	}
	// The root grows to the flavor's root_gb when that grew; it never
	// shrinks, and a move with root_gb unchanged keeps its size.
	want := int64(eDisk)
	if inst.Flavor.RootGB > w.flavors["medium"].RootGB {
		want = int64(inst.Flavor.RootGB) << 30
	}
	if vdi.VirtualSize != want {
		w.t.Fatalf("root disk of %d bytes, want %d", vdi.VirtualSize, want)
	}
}

// instanceVM returns the instance's own VM (not its -orig) on the host
// the Store names.
func (w *eworld) instanceVM(inst *compute.Instance) (xenapi.VMRef, xenapi.VMRecord) {
	w.t.Helper()
	c := w.clients[w.poolOf[inst.Host]]
	refs, err := c.VM.GetByNameLabel(context.Background(), inst.Name)
	if err != nil {
		w.t.Fatal(err)
	}
	for _, ref := range refs {
		rec, err := c.VM.GetRecord(context.Background(), ref)
		if err != nil {
			w.t.Fatal(err)
		}
		if rec.OtherConfig[xenserver.KeyNovaUUID] == inst.UUID {
			return ref, rec
		}
	}
	w.t.Fatalf("no VM %s of instance %s in the pool of %s", inst.Name, inst.UUID, inst.Host)
	return "", xenapi.VMRecord{}
}

// root returns the VDI at a VM's userdevice 0.
func (w *eworld) root(c *xenapi.Client, vm xenapi.VMRef) xenapi.VDIRef {
	w.t.Helper()
	ctx := context.Background()
	vbds, err := c.VM.GetVBDs(ctx, vm)
	if err != nil {
		w.t.Fatal(err)
	}
	for _, vbd := range vbds {
		rec, err := c.VBD.GetRecord(ctx, vbd)
		if err != nil {
			w.t.Fatal(err)
		}
		if rec.Userdevice == "0" {
			return rec.VDI
		}
	}
	w.t.Fatalf("VM %s has no root disk", vm)
	return ""
}

// check asserts what must hold whenever no operation runs: the instance
// ACTIVE (its guest running) on the source or RESIZED on the
// destination (or, in Nova's mode only, ERROR with a fault), never in
// between; its data intact, byte for byte, on the host the Store names;
// its migrations terminal or finished; quota usage equal to a recount;
// and no VM or VDI in any pool but the instance's and, while RESIZED,
// the source's kept copy.
func (w *eworld) check() {
	w.t.Helper()
	if err := w.invariants(); err != nil {
		inst := w.instance()
		w.t.Fatalf("instance %s on %s: %v", inst.VMState, inst.Host, err)
	}
}

func (w *eworld) invariants() error {
	inst := w.instance()
	if inst.TaskState != sm.TaskNone {
		return fmt.Errorf("instance left with task_state %s", inst.TaskState)
	}
	data, orphans := w.dataIntact, func() error { return w.noOrphans(1) }
	switch inst.VMState {
	case sm.VMActive:
		_, rec := w.instanceVM(inst)
		if !rec.PowerState.Is(xenapi.VMPowerStateRunning) {
			return fmt.Errorf("instance active but its VM is %s", rec.PowerState)
		}
	case sm.VMResized:
		if inst.Host == w.hosts[0] {
			return fmt.Errorf("instance resized on its source %s", inst.Host)
		}
		orphans = func() error { return w.noOrphans(2) }
	case sm.VMError:
		if err := w.faultRecorded(); err != nil {
			return err
		}
		data, orphans = w.dataOnHost, w.onlyInstanceVMs
	default:
		return fmt.Errorf("instance in vm_state %s", inst.VMState)
	}
	if err := data(inst); err != nil {
		return err
	}
	if err := w.migrationsSettled(inst); err != nil {
		return err
	}
	if err := w.quotaSettled(); err != nil {
		return err
	}
	return orphans()
}

// faultRecorded is what Nova's mode allows of an instance in error,
// besides the other invariants: a fault recorded. There its data must be
// intact, byte for byte, in a VM of the instance (its own or the kept
// <name>-orig) whose root disk is on the SR of the host the Store names
// (dataOnHost), and the pools must hold nothing but the instance's VMs
// (one of each kind at most) with their attached disks
// (onlyInstanceVMs).
func (w *eworld) faultRecorded() error {
	faults, err := w.store.ListFaults(context.Background(), eInstance)
	if !w.opts.NovaCompatibleErrors || err != nil || len(faults) == 0 {
		return fmt.Errorf("instance in error (Nova's mode %v, %d faults, %v)", w.opts.NovaCompatibleErrors, len(faults), err)
	}
	return nil
}

// dataOnHost finds the guest's data in a VM of the instance whose root
// disk is on the SR of inst.Host.
func (w *eworld) dataOnHost(inst *compute.Instance) error {
	ctx := context.Background()
	pi := w.poolOf[inst.Host]
	c := w.clients[pi]
	var sr string
	for _, h := range w.pools[pi].Hosts() {
		if h.Name() == inst.Host {
			sr = h.SRUUID()
		}
	}
	recs, err := c.VM.GetAllRecords(ctx)
	if err != nil {
		return err
	}
	var seen []string
	for ref, rec := range recs {
		if rec.OtherConfig[xenserver.KeyNovaUUID] != inst.UUID && rec.OtherConfig[xenserver.KeyOrigOf] != inst.UUID {
			continue
		}
		vdi, err := c.VDI.GetRecord(ctx, w.root(c, ref))
		if err != nil {
			return err
		}
		srUUID, err := c.SR.GetUUID(ctx, vdi.SR)
		if err != nil {
			return err
		}
		seen = append(seen, fmt.Sprintf("%s on SR %s", rec.NameLabel, srUUID))
		if srUUID != sr {
			continue
		}
		got := make([]byte, len(w.data))
		if err := w.pools[pi].ReadVDIAt(string(w.root(c, ref)), got, 0); err != nil {
			return err
		}
		if bytes.Equal(got, w.data) {
			return nil
		}
	}
	return fmt.Errorf("instance in error on %s (SR %s): no VM of it there holds its data (VMs: %v)", inst.Host, sr, seen)
}

// onlyInstanceVMs checks every pool holds nothing but the instance's VM
// and its kept copy (one of each at most) and the disks they use.
func (w *eworld) onlyInstanceVMs() error {
	ctx := context.Background()
	own, kept := 0, 0
	for _, c := range w.clients {
		recs, err := c.VM.GetAllRecords(ctx)
		if err != nil {
			return err
		}
		images := map[xenapi.VDIRef]bool{} // a suspended VM's, used by it
		for _, r := range recs {
			images[r.SuspendVDI] = true
			switch {
			case r.IsATemplate || r.IsControlDomain || r.IsASnapshot:
			case r.OtherConfig[xenserver.KeyNovaUUID] == eInstance:
				own++
			case r.OtherConfig[xenserver.KeyOrigOf] == eInstance:
				kept++
			default:
				return fmt.Errorf("VM %s is not the instance's", r.NameLabel)
			}
		}
		disks, err := c.VDI.GetAllRecords(ctx)
		if err != nil {
			return err
		}
		for ref, v := range disks {
			if v.Managed && v.IsASnapshot || v.OtherConfig[xenserver.KeySnapshotFor] != "" {
				return fmt.Errorf("snapshot %s (%s) left, or a disk marked for one", v.UUID, v.NameLabel)
			}
			if v.Managed && !v.IsASnapshot && len(v.VBDs) == 0 && !images[ref] {
				return fmt.Errorf("disk %s (%s) is used by no VM", v.UUID, v.NameLabel)
			}
		}
	}
	if own > 1 || kept > 1 {
		return fmt.Errorf("%d VMs and %d kept copies of the instance", own, kept)
	}
	return nil
}

// dataIntact compares the root disk of the instance's VM on the host the
// Store names with what the guest wrote.
func (w *eworld) dataIntact(inst *compute.Instance) error {
	pi := w.poolOf[inst.Host]
	ref, _ := w.instanceVM(inst)
	got := make([]byte, len(w.data))
	if err := w.pools[pi].ReadVDIAt(string(w.root(w.clients[pi], ref)), got, 0); err != nil {
		return err
	}
	if !bytes.Equal(got, w.data) {
		i := 0
		for got[i] == w.data[i] {
			i++
		}
		return fmt.Errorf("root disk on %s differs from the guest's data at byte %d", inst.Host, i)
	}
	return nil
}

func (w *eworld) migrationsSettled(inst *compute.Instance) error {
	migs, err := w.store.ListMigrations(context.Background(), compute.MigrationFilter{InstanceUUID: eInstance})
	if err != nil {
		return err
	}
	for _, m := range migs {
		switch m.Status {
		case sm.MigrationError, sm.MigrationConfirmed, sm.MigrationReverted, sm.MigrationFinished:
		default:
			return fmt.Errorf("migration left in %s", m.Status)
		}
		if m.Status == sm.MigrationFinished && inst.VMState != sm.VMResized {
			return fmt.Errorf("migration finished but the instance is %s", inst.VMState)
		}
	}
	return nil
}

func (w *eworld) quotaSettled() error {
	ctx := context.Background()
	u, err := w.ledger.Usage(ctx, eProject)
	if err != nil {
		return err
	}
	if u.Pending != 0 {
		return fmt.Errorf("quota: %d reservations pending", u.Pending)
	}
	drift, err := w.ledger.Reconcile(ctx, eProject, w.charges())
	if err != nil {
		return err
	}
	if len(drift) > 0 {
		return fmt.Errorf("quota drift: %v", drift)
	}
	return nil
}

// noOrphans counts the guest VMs and the managed disks that are not
// snapshots in every pool: one of each per VM the instance needs, and one
// suspend image per suspended VM.
func (w *eworld) noOrphans(wantVMs int) error {
	ctx := context.Background()
	vms, vdis, suspended, images := 0, 0, 0, 0
	var names []string
	for _, c := range w.clients {
		recs, err := c.VM.GetAllRecords(ctx)
		if err != nil {
			return err
		}
		for _, r := range recs {
			if !r.IsATemplate && !r.IsControlDomain && !r.IsASnapshot {
				vms++
				names = append(names, r.NameLabel+"("+string(r.PowerState)+")")
				if r.PowerState.Is(xenapi.VMPowerStateSuspended) {
					suspended++
				}
			}
		}
		disks, err := c.VDI.GetAllRecords(ctx)
		if err != nil {
			return err
		}
		for _, v := range disks {
			switch {
			case !v.Managed || v.IsASnapshot:
				continue
			case v.Type.Is(xenapi.VDITypeSuspend):
				images++
			default:
				vdis++
			}
			names = append(names, "vdi:"+v.NameLabel)
		}
	}
	if vms != wantVMs || vdis != wantVMs || images != suspended {
		return fmt.Errorf("%d VMs, %d disks and %d suspend images (%d VMs suspended) in the pools, want %d VMs and disks (an orphan, or a loss): %v",
			vms, vdis, images, suspended, wantVMs, names)
	}
	return nil
}

// cleanup runs the driver's CleanupMigration for every migration of the
// instance that ended (error, confirmed or reverted) on its source and
// destination, as a host program does after a failed or interrupted
// move; a finished one waits for its confirm or revert, which needs what
// it kept.
func (w *eworld) cleanup() {
	w.t.Helper()
	ctx := context.Background()
	migs, err := w.store.ListMigrations(ctx, compute.MigrationFilter{InstanceUUID: eInstance})
	if err != nil {
		w.t.Fatal(err)
	}
	inst := w.instance()
	for _, m := range migs {
		if m.Status == sm.MigrationFinished || m.Status.InProgress() {
			continue
		}
		for _, host := range []string{m.SourceCompute, m.DestCompute} {
			if host == "" {
				continue
			}
			if err := w.driver.CleanupMigration(ctx, compute.CleanupMigrationRequest{Migration: m, Instance: inst,
				Host: host}); err != nil {
				w.t.Fatalf("CleanupMigration of %s on %s: %v", m.UUID, host, err)
			}
		}
	}
}

// resume lets the leases expire and resumes with a new orchestrator.
func (w *eworld) resume() {
	w.t.Helper()
	w.clock.Advance(2 * eLeaseTTL)
	if _, err := w.orch(w.store, "resumer").Resume(context.Background()); err != nil {
		var opErr *migrate.OperationError
		if !errors.As(err, &opErr) {
			w.t.Fatalf("Resume: %v", err)
		}
	}
}
