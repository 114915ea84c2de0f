package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/dom0"
	sm "github.com/xenflow/xenflow/statemachine"
	"github.com/xenflow/xenflow/xenapi"
	"github.com/xenflow/xenflow/xenapi/xenapitest"
	"github.com/xenflow/xenflow/xenserver"
)

// The simulated instance.
const (
	simInstanceUUID = "6c1f5e0a-3b2d-4e8f-9a7b-1c2d3e4f5a6b"
	simInstanceName = "instance-6c1f5e0a"
	simLayers       = 3  // layers of data under the leaf
	simPerLayer     = 32 // blocks written per layer
	guestInterval   = 2 * time.Millisecond
	simTaskPoll     = 5 * time.Millisecond
)

// simulation is a simulated pool served on 127.0.0.1 with one instance.
type simulation struct {
	pool  *xenapitest.Pool
	url   string
	guest *guestDisk
	// client reads the pool as any XenAPI client does.
	client *xenapi.Client
}

// newSimulation builds the pool (hosts local SRs, one pool), serves it at
// addr and creates the instance's VM on the first host with a layered
// root disk of diskBytes, running with flavor f.
func newSimulation(ctx context.Context, hosts int, addr string, diskBytes int64, f *compute.Flavor) (*simulation, error) {
	pool, err := xenapitest.NewPool(xenapitest.Options{Hosts: hosts})
	if err != nil {
		return nil, err
	}
	s := &simulation{pool: pool}
	if err := s.start(ctx, addr, diskBytes, f); err != nil {
		s.close(ctx)
		return nil, err
	}
	return s, nil
}

// start serves the pool and makes the instance.
func (s *simulation) start(ctx context.Context, addr string, diskBytes int64, f *compute.Flavor) error {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	url, err := s.pool.Serve(addr)
	if err != nil {
		return fmt.Errorf("serving the simulated pool on %s: %w", addr, err)
	}
	s.url = url
	if s.client, err = xenapi.NewClient(url); err != nil {
		return err
	}
	if err := s.client.Login(ctx, s.pool.User(), s.pool.Password(), "xenflow-examples-resize"); err != nil {
		return err
	}
	vm, err := s.pool.AddVM(xenapitest.VMSpec{Name: simInstanceName, Host: s.pool.Master().Name(),
		Memory: int64(f.MemoryMB) << 20, VCPUs: f.VCPUs, Disks: []int64{diskBytes}, Running: true,
		Networks:    []string{s.pool.Network()},
		OtherConfig: map[string]string{xenserver.KeyNovaUUID: simInstanceUUID}})
	if err != nil {
		return err
	}
	s.guest = newGuestDisk(s.pool, vm.Ref, diskBytes)
	return s.guest.buildChain(ctx, s.client, xenapi.VDIRef(vm.VDIs[0]), simLayers, simPerLayer)
}

// close logs out and stops the pool (removing its directory).
func (s *simulation) close(ctx context.Context) {
	if s.client != nil {
		_ = s.client.Close(ctx)
	}
	_ = s.pool.Close()
}

// inventory places every host of the pool, with its local SR.
func (s *simulation) inventory(transport string) xenserver.Inventory {
	inv := xenserver.Inventory{
		Pools: map[string]xenserver.PoolEndpoint{"sim": {URL: s.url, User: s.pool.User(),
			Password: xenserver.Password(s.pool.Password()),
			// The simulated pool answers at once: poll its tasks often, so
			// the downtime measured is the move's and not the polling's.
			ClientOptions: []xenapi.Option{xenapi.WithTaskPollInterval(simTaskPoll)}}},
		Hosts: map[string]xenserver.HostEntry{},
	}
	for _, h := range s.pool.Hosts() {
		inv.Hosts[h.Name()] = xenserver.HostEntry{Pool: "sim", XenServerHost: h.UUID(), SR: h.SRUUID(), Transport: transport}
	}
	return inv
}

// host returns the simulated host of a compute host's name.
func (s *simulation) host(name string) *xenapitest.Host {
	for _, h := range s.pool.Hosts() {
		if h.Name() == name {
			return h
		}
	}
	return nil
}

// hostNames returns the compute hosts, master first.
func (s *simulation) hostNames() []string {
	var names []string
	for _, h := range s.pool.Hosts() {
		names = append(names, h.Name())
	}
	return names
}

// instance is the instance record of the simulated VM.
func (s *simulation) instance(f *compute.Flavor, now time.Time) *compute.Instance {
	host := s.pool.Master().Name()
	return &compute.Instance{UUID: simInstanceUUID, Name: simInstanceName, Hostname: "guest", Host: host, Node: host,
		ProjectID: "demo", UserID: "demo", VMState: sm.VMActive, PowerState: sm.PowerRunning,
		Flavor: f.Clone(), LaunchedAt: now}
}

// verify checks the instance's root disk, on whichever host its VM is,
// against what the guest wrote.
func (s *simulation) verify(ctx context.Context) (string, error) {
	root, err := instanceRoot(ctx, s.client, simInstanceUUID)
	if err != nil {
		return "", err
	}
	if err := s.guest.verify(string(root.VDI), root.VDIUUID); err != nil {
		return "", err
	}
	return root.VDIUUID, nil
}

// runSimulated is the run without -xapi.
func runSimulated(ctx context.Context, c *config, stdout, stderr io.Writer) error {
	from, to := flavorsFor(c)
	sim, err := newSimulation(ctx, c.hosts, c.serve, c.diskMiB<<20, from)
	if err != nil {
		return err
	}
	defer sim.close(context.WithoutCancel(ctx))
	inv := sim.inventory(c.transport)
	hosts, err := withDom0(inv, c, func(name string) (dom0.Host, error) { return dom0.Local(sim.host(name).Root()) })
	defer hosts.close()
	if err != nil {
		return err
	}
	drv, err := xenserver.New(xenserver.Config{Inventory: inv, Originator: "xenflow-examples-resize",
		Transports: transports(c)})
	if err != nil {
		return err
	}
	defer drv.Close(context.WithoutCancel(ctx))
	db, err := openStores(ctx, c.db)
	if err != nil {
		return err
	}
	defer db.close()
	j := &job{cfg: c, stdout: stdout, driver: drv, hosts: sim.hostNames(), db: db, owner: c.owner,
		inst: sim.instance(from, time.Now()), from: from, to: to,
		callLog: sim.pool.Calls, guest: sim.guest, verify: sim.verify,
		layout: fmt.Sprintf("one pool of %d hosts with local SRs, served at %s", c.hosts, sim.url)}
	if err := j.run(ctx); err != nil {
		return err
	}
	if c.serve == "" {
		return nil
	}
	fmt.Fprintf(stderr, "serving url=%s user=%s password=%s until interrupted\n", sim.url, sim.pool.User(), sim.pool.Password())
	<-ctx.Done()
	return nil
}

// flavorsFor returns the flavor the simulated instance starts with and
// the one it moves to (the same for -migrate). Flavor ids say their
// sizes: <vCPUs>c-<MiB>m-<GiB>g.
func flavorsFor(c *config) (from, to *compute.Flavor) {
	root := int((c.diskMiB + 1023) / 1024)
	small := newFlavor(1, 512, root)
	large := newFlavor(2, 1024, root+1)
	switch {
	case c.migrate:
		return small, small
	case c.down:
		return large, newFlavor(1, 512, root+1)
	default:
		return small, large
	}
}

// newFlavor names a flavor by its sizes.
func newFlavor(vcpus, memoryMiB, rootGiB int) *compute.Flavor {
	id := fmt.Sprintf("%dc-%dm-%dg", vcpus, memoryMiB, rootGiB)
	return &compute.Flavor{ID: id, Name: id, VCPUs: vcpus, MemoryMB: memoryMiB, RootGB: rootGiB}
}
