package xenserver

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/statemachine"
	"github.com/xenflow/xenflow/xenapi"
	"github.com/xenflow/xenflow/xenapi/xenapitest"
)

// layout says how the test's compute hosts sit in pools.
type layout string

const (
	// standalone: compute1 and compute2, each its own one-host pool.
	standalone layout = "standalone"
	// onePool: compute1..compute3, the hosts of one pool.
	onePool layout = "one-pool"
)

var layouts = []layout{standalone, onePool}

// testEnv is simulated pools served over HTTP on 127.0.0.1 and a driver
// whose inventory names them.
type testEnv struct {
	t      testing.TB
	pools  map[string]*xenapitest.Pool // by inventory pool name
	poolOf map[string]*xenapitest.Pool // by compute host
	hostOf map[string]*xenapitest.Host // by compute host
	cfg    Config
	d      *Driver
}

type envOptions struct {
	hostMemory int64
	srSize     int64
	srSizes    map[string]int64 // by pool name, over srSize
	sharedSR   bool             // instance disks on the pool's shared SR
	config     func(*Config)
}

func newEnv(t testing.TB, l layout, o envOptions) *testEnv {
	t.Helper()
	e := &testEnv{t: t, pools: map[string]*xenapitest.Pool{}, poolOf: map[string]*xenapitest.Pool{},
		hostOf: map[string]*xenapitest.Host{}}
	e.cfg = Config{
		Inventory: Inventory{Pools: map[string]PoolEndpoint{}, Hosts: map[string]HostEntry{}},
		Migrate:   MigrateConfig{ShutdownTimeout: 5 * time.Second},
	}
	switch l {
	case standalone:
		for i := 1; i <= 2; i++ {
			p := e.addPool(fmt.Sprintf("pool%d", i), 1, o)
			e.addHost(fmt.Sprintf("compute%d", i), fmt.Sprintf("pool%d", i), p, p.Hosts()[0], i%2 == 0)
		}
	case onePool:
		p := e.addPool("pool", 3, o)
		for i, h := range p.Hosts() {
			e.addHost(fmt.Sprintf("compute%d", i+1), "pool", p, h, i%2 == 1)
		}
	default:
		t.Fatalf("unknown layout %q", l)
	}
	if o.config != nil {
		o.config(&e.cfg)
	}
	e.newDriver(t)
	return e
}

// newDriver makes the environment's driver from its configuration (again,
// after a test changed it), closed when the test ends.
func (e *testEnv) newDriver(t testing.TB) {
	t.Helper()
	d, err := New(e.cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	e.d = d
	t.Cleanup(func() { _ = d.Close(context.Background()) })
}

func (e *testEnv) addPool(name string, hosts int, o envOptions) *xenapitest.Pool {
	e.t.Helper()
	size := o.srSize
	if s, ok := o.srSizes[name]; ok {
		size = s
	}
	p, err := xenapitest.NewPool(xenapitest.Options{Dir: e.t.TempDir(), Hosts: hosts, HostMemory: o.hostMemory, SRSize: size,
		SharedSR: o.sharedSR})
	if err != nil {
		e.t.Fatalf("NewPool: %v", err)
	}
	e.t.Cleanup(func() { _ = p.Close() })
	url, err := p.Serve("127.0.0.1:0")
	if err != nil {
		e.t.Fatalf("Serve: %v", err)
	}
	e.pools[name] = p
	e.cfg.Inventory.Pools[name] = PoolEndpoint{URL: url, User: p.User(), Password: Password(p.Password()),
		ClientOptions: []xenapi.Option{xenapi.WithTaskPollInterval(2 * time.Millisecond)}}
	return p
}

// addHost names the XenServer host by uuid or by name_label (byName).
func (e *testEnv) addHost(compute, pool string, p *xenapitest.Pool, h *xenapitest.Host, byName bool) {
	host := h.UUID()
	if byName {
		host = h.Name()
	}
	sr := h.SRUUID()
	if ref := p.SharedSR(); ref != "" {
		rec, err := p.Record(ref)
		if err != nil {
			e.t.Fatal(err)
		}
		sr = rec["uuid"].(string)
	}
	e.cfg.Inventory.Hosts[compute] = HostEntry{Pool: pool, XenServerHost: host, SR: sr}
	e.poolOf[compute], e.hostOf[compute] = p, h
}

// guest is an instance with a VM on a compute host, and the content its
// disks should hold.
type guest struct {
	inst  *compute.Instance
	host  string
	vm    xenapitest.VMInfo
	disks [][]byte       // expected content of each disk
	vif   map[string]any // the VM's VIF as created
}

type guestSpec struct {
	uuid    string
	disks   []int64 // sizes; default one 16 MiB disk
	running bool
	flavor  *compute.Flavor
}

func (e *testEnv) addGuest(host string, s guestSpec) *guest {
	e.t.Helper()
	if s.uuid == "" {
		s.uuid = "0e6f4a1c-52b7-4b1e-9c55-0b1a2c3d4e5f"
	}
	if len(s.disks) == 0 {
		s.disks = []int64{16 << 20}
	}
	if s.flavor == nil {
		s.flavor = &compute.Flavor{ID: "small", MemoryMB: 256, VCPUs: 1, RootGB: 0}
	}
	p := e.poolOf[host]
	vm, err := p.AddVM(xenapitest.VMSpec{Name: "instance-" + s.uuid[:8], Host: e.hostOf[host].Name(),
		Memory: int64(s.flavor.MemoryMB) << 20, VCPUs: s.flavor.VCPUs, Disks: s.disks, Running: s.running, SR: p.SharedSR(),
		Networks:    []string{p.Network()},
		OtherConfig: map[string]string{KeyNovaUUID: s.uuid}})
	if err != nil {
		e.t.Fatalf("AddVM: %v", err)
	}
	vif, err := p.Record(vm.VIFs[0])
	if err != nil {
		e.t.Fatal(err)
	}
	g := &guest{host: host, vm: vm, vif: vif, inst: &compute.Instance{UUID: s.uuid, Name: "instance-" + s.uuid[:8],
		Host: host, VMState: statemachine.VMActive, Flavor: s.flavor}}
	for i, size := range s.disks {
		g.disks = append(g.disks, make([]byte, size))
		// Data at the start, in the middle and in the last block.
		for _, off := range []int64{0, size/2 + 4096, size - 8192} {
			e.write(g, i, off, pattern(fmt.Sprintf("disk %d at %d", i, off), 8192), true)
		}
	}
	return g
}

// write writes as the guest (or into the VDI when the VM is halted) and
// records the content.
func (e *testEnv) write(g *guest, disk int, off int64, data []byte, vdi bool) {
	e.t.Helper()
	p := e.poolOf[g.host]
	var err error
	if vdi {
		err = p.WriteVDI(g.vm.VDIs[disk], off, data)
	} else {
		err = p.WriteGuestDisk(g.vm.Ref, fmt.Sprint(disk), off, data)
	}
	if err != nil {
		e.t.Fatalf("write disk %d at %d: %v", disk, off, err)
	}
	copy(g.disks[disk][off:], data)
}

func pattern(seed string, n int) []byte {
	b := bytes.Repeat([]byte(seed+"|"), n/(len(seed)+1)+1)
	return b[:n]
}

// checkDisk reads the VDI with uuid on a compute host's pool and compares
// it with want, byte for byte.
func (e *testEnv) checkDisk(host, uuid string, want []byte) {
	e.t.Helper()
	p := e.poolOf[host]
	ref, err := p.Call(context.Background(), "VDI.get_by_uuid", e.session(host), uuid)
	if err != nil {
		e.t.Fatalf("VDI %s on %s: %v", uuid, host, err)
	}
	got := make([]byte, len(want))
	if err := p.ReadVDIAt(ref.(string), got, 0); err != nil {
		e.t.Fatalf("read VDI %s: %v", uuid, err)
	}
	if !bytes.Equal(got, want) {
		i := 0
		for i < len(got) && got[i] == want[i] {
			i++
		}
		e.t.Fatalf("VDI %s on %s differs from the guest's data at byte %d", uuid, host, i)
	}
}

func (e *testEnv) session(host string) string {
	e.t.Helper()
	p := e.poolOf[host]
	s, err := p.Call(context.Background(), "session.login_with_password", p.User(), p.Password())
	if err != nil {
		e.t.Fatalf("login: %v", err)
	}
	return s.(string)
}

// vms returns the guest VMs of a compute host's pool: name_label → other_config.
func (e *testEnv) vms(host string) map[string]vmEntry {
	e.t.Helper()
	t, err := e.d.pool(context.Background(), host)
	if err != nil {
		e.t.Fatal(err)
	}
	recs, err := guestVMs(context.Background(), t.Client)
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string]vmEntry{}
	for ref, rec := range recs {
		out[rec.NameLabel] = vmEntry{Ref: ref, Rec: rec}
	}
	return out
}

func newMigration(g *guest, dest string, newFlavor *compute.Flavor) *compute.Migration {
	return &compute.Migration{UUID: "7a1d3c9e-0f2b-4c6d-8e9f-a0b1c2d3e4f5", InstanceUUID: g.inst.UUID,
		SourceCompute: g.host, DestCompute: dest, OldFlavor: g.inst.Flavor, NewFlavor: newFlavor,
		Status: statemachine.MigrationMigrating, Type: statemachine.MigrationTypeResize}
}

// checkVIFs checks that the instance's VM on host has the source VM's
// interfaces: same device and MAC, on the host pool's network.
func (e *testEnv) checkVIFs(g *guest, host string) {
	e.t.Helper()
	src := g.vif
	var vm vmEntry
	for _, v := range e.vms(host) {
		if v.Rec.OtherConfig[KeyNovaUUID] == g.inst.UUID {
			vm = v
		}
	}
	if len(vm.Rec.VIFs) != 1 {
		e.t.Fatalf("the VM on %s has %d VIFs, want 1", host, len(vm.Rec.VIFs))
	}
	p := e.poolOf[host]
	got, err := p.Record(string(vm.Rec.VIFs[0]))
	if err != nil {
		e.t.Fatal(err)
	}
	if got["MAC"] != src["MAC"] || got["device"] != src["device"] || got["network"] != p.Network() {
		e.t.Fatalf("VIF on %s: %v, source had %v", host, got, src)
	}
}
