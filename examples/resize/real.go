package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/dom0"
	"github.com/xenflow/xenflow/sqlstore"
	sm "github.com/xenflow/xenflow/statemachine"
	"github.com/xenflow/xenflow/xenapi"
	"github.com/xenflow/xenflow/xenserver"
)

// realPool is one pool given with -xapi: its client and the compute
// hosts it holds.
type realPool struct {
	name string
	url  string
	// single is set when it is the only pool.
	single bool
	client *xenapi.Client
	hosts  map[xenapi.HostRef]xenapi.HostRecord
	// pbds maps each SR to the hosts that see it.
	pbds map[xenapi.SRRef][]xenapi.HostRef
	srs  map[xenapi.SRRef]xenapi.SRRecord
}

// adopted is the VM -vm names, taken as the instance.
type adopted struct {
	pool *realPool
	root rootDisk
	host string
	uuid string
}

// WaitingResizeError is a VM whose resize an earlier run left in
// VERIFY_RESIZE (its source kept as <name>-orig).
type WaitingResizeError struct {
	VM      string
	OrigVM  string
	Pending string
}

// Error implements the error interface.
func (e *WaitingResizeError) Error() string {
	return fmt.Sprintf("VM %s has a resize waiting in VERIFY_RESIZE (source kept as %s): %s", e.VM, e.OrigVM, e.Pending)
}

// runReal is the run against the pools -xapi gives: the VM -vm is adopted
// as the instance and resized (or migrated) among their hosts.
func runReal(ctx context.Context, c *config, stdout, stderr io.Writer) error {
	password, err := readPassword(c.passwordFile)
	if err != nil {
		return err
	}
	pools, err := openPools(ctx, c, password)
	defer func() {
		for _, p := range pools {
			_ = p.client.Close(context.WithoutCancel(ctx))
		}
	}()
	if err != nil {
		return err
	}
	db, err := openStores(ctx, c.db, storeOptions(c)...)
	if err != nil {
		return err
	}
	defer db.close()
	switch {
	case c.resume:
		return resumeReal(ctx, c, pools, password, db, stdout)
	case c.submit || c.worker:
		return runShared(ctx, c, pools, password, db, stdout)
	}
	a, err := findVM(ctx, pools, c)
	if err != nil {
		return err
	}
	drv, hosts, closeDrv, err := realDriver(ctx, c, pools, a, password)
	defer closeDrv()
	if err != nil {
		return err
	}
	inst, err := a.instance(ctx, c, drv, db)
	if err != nil {
		return err
	}
	from, to := inst.Flavor, inst.Flavor
	if inst.VMState != sm.VMResized {
		if from, to, err = realFlavors(c, inst.Flavor); err != nil {
			return err
		}
	}
	if !db.loaded(inst) {
		inst.Flavor, inst.ProjectID, inst.UserID, inst.LaunchedAt = from.Clone(), "adopted", "adopted", time.Now()
	}
	j := &job{cfg: c, stdout: stdout, driver: drv, hosts: hosts, inst: inst, db: db, loaded: db.loaded(inst), owner: c.owner,
		from: from, to: to, verify: func(ctx context.Context) (string, error) { return findRoot(ctx, pools, a.uuid) },
		verified: "SHA-256 of the copy against the source (xenserver.TransferConfig.Verify)",
		layout:   fmt.Sprintf("%d pool(s), %d hosts; VM %s adopted", len(pools), len(hosts), a.root.Record.NameLabel)}
	return j.run(ctx)
}

// instance is the instance the VM is: the durable Store's record when an
// earlier run with the same -db keeps it, else the VM adopted (refused
// when an unconfirmed resize of it is in no Store this run has).
func (a *adopted) instance(ctx context.Context, c *config, drv *xenserver.Driver, db *stores) (*compute.Instance, error) {
	inst, err := adoptOrLoad(ctx, db.store, a.root.Record.OtherConfig[xenserver.KeyNovaUUID])
	if err != nil {
		return nil, err
	}
	if inst != nil && db.durable {
		a.uuid = inst.UUID
		db.kept = inst
		return inst, nil
	}
	if inst, err = drv.Adopt(ctx, xenserver.AdoptRequest{Host: a.host, VM: a.root.Record.UUID}); err != nil {
		return nil, fmt.Errorf("adopting VM %s: %w", c.vm, err)
	}
	a.uuid = inst.UUID
	return inst, a.refuseWaiting(ctx, c)
}

// resumeReal drives to its end every operation left unfinished in the
// durable Store, over the pools -xapi gives.
func resumeReal(ctx context.Context, c *config, pools []*realPool, password string, db *stores, stdout io.Writer) error {
	drv, hosts, closeDrv, err := realDriver(ctx, c, pools, nil, password)
	defer closeDrv()
	if err != nil {
		return err
	}
	j := &job{cfg: c, stdout: stdout, driver: drv, hosts: hosts, db: db, owner: c.owner}
	return j.run(ctx)
}

// runShared is -submit or -worker: the driver over every pool, with no VM
// adopted beforehand.
func runShared(ctx context.Context, c *config, pools []*realPool, password string, db *stores, stdout io.Writer) error {
	drv, hosts, closeDrv, err := realDriver(ctx, c, pools, nil, password)
	defer closeDrv()
	if err != nil {
		return err
	}
	if c.submit {
		return runSubmit(ctx, c, pools, drv, db, stdout)
	}
	return runWorker(ctx, c, drv, hosts, db, stdout)
}

// storeOptions are the sqlstore options of a -db: the fence log, and for
// a worker a poll no longer than half the lease period, so an expired
// lease is seen soon.
func storeOptions(c *config) []sqlstore.Option {
	opts := []sqlstore.Option{sqlstore.WithFenceLog()}
	if c.worker && c.leaseTTL > 0 && c.leaseTTL < 2*time.Second {
		opts = append(opts, sqlstore.WithPollInterval(c.leaseTTL/2))
	}
	return opts
}

// computeHost names a host of the pool as a compute host: its name_label,
// prefixed with the pool's name when several pools are given (their hosts'
// names often repeat: xe host-list shows "host1" in every lab pool).
func (p *realPool) computeHost(h xenapi.HostRecord) string {
	if p.single {
		return h.NameLabel
	}
	return p.name + "." + h.NameLabel
}

// realDriver builds the XenServer driver over the pools (with the hosts'
// control domains for the dom0 transport) and returns it with the compute
// hosts and a function that closes what it opened.
func realDriver(ctx context.Context, c *config, pools []*realPool, a *adopted, password string) (*xenserver.Driver, []string, func(), error) {
	nothing := func() {}
	inv, hosts, err := realInventory(pools, a, c, password)
	if err != nil {
		return nil, nil, nothing, err
	}
	dom0s, err := withDom0(inv, c, func(name string) (dom0.Host, error) {
		return sshDom0(ctx, c, hostAddress(pools, inv.Hosts[name]))
	})
	if err != nil {
		return nil, nil, func() { _ = dom0s.close() }, err
	}
	drv, err := xenserver.New(xenserver.Config{Inventory: inv, Originator: "xenflow-examples-resize",
		Transfer: xenserver.TransferConfig{Verify: true}, Transports: transports(c)})
	if err != nil {
		return nil, nil, func() { _ = dom0s.close() }, err
	}
	return drv, hosts, func() {
		_ = drv.Close(context.WithoutCancel(ctx))
		_ = dom0s.close()
	}, nil
}

// realFlavors returns the adopted VM's flavor, named by its sizes, and
// the one the flags ask for (its own for -migrate); the ephemeral disks
// keep their size.
func realFlavors(c *config, own *compute.Flavor) (from, to *compute.Flavor, err error) {
	from = withEphemeral(newFlavor(own.VCPUs, own.MemoryMB, own.RootGB), own.EphemeralGB)
	if c.migrate {
		return from, from, nil
	}
	to = withEphemeral(newFlavor(pick(c.vcpus, own.VCPUs), pick(c.memoryMiB, own.MemoryMB), pick(c.rootGi, own.RootGB)), own.EphemeralGB)
	if to.ID == from.ID {
		return nil, nil, &UsageError{Flag: "-memory-mib/-vcpus/-root-gib",
			Reason: fmt.Sprintf("the new flavor %s is the VM's own; change one, or -migrate", to.ID)}
	}
	return from, to, nil
}

// withEphemeral gives f ephemeral disks of gb GiB, named in its id.
func withEphemeral(f *compute.Flavor, gb int) *compute.Flavor {
	if gb > 0 {
		f.EphemeralGB = gb
		f.ID = fmt.Sprintf("%s-%de", f.ID, gb)
		f.Name = f.ID
	}
	return f
}

// hostAddress is the address of the XenServer host an inventory entry names.
func hostAddress(pools []*realPool, e xenserver.HostEntry) string {
	for _, p := range pools {
		for _, h := range p.hosts {
			if p.name == e.Pool && h.UUID == e.XenServerHost {
				return h.Address
			}
		}
	}
	return ""
}

// pick returns v, or def when v is 0.
func pick(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// readPassword reads the first line of -password-file.
func readPassword(path string) (string, error) {
	if path == "" {
		return "", &UsageError{Flag: "-password-file", Reason: "required with -xapi"}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("-password-file: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return strings.TrimRight(line, "\r"), nil
}

// openPools logs in to every pool and reads its hosts, SRs and PBDs.
func openPools(ctx context.Context, c *config, password string) ([]*realPool, error) {
	var pools []*realPool
	for i, u := range c.xapi {
		cl, err := xenapi.NewClient(u)
		if err != nil {
			return pools, fmt.Errorf("-xapi %s: %w", u, err)
		}
		p := &realPool{name: fmt.Sprintf("pool%d", i+1), url: u, client: cl, single: len(c.xapi) == 1}
		pools = append(pools, p)
		if err := cl.Login(ctx, c.user, password, "xenflow-examples-resize"); err != nil {
			return pools, fmt.Errorf("-xapi %s: %w", u, err)
		}
		if err := p.read(ctx); err != nil {
			return pools, fmt.Errorf("-xapi %s: %w", u, err)
		}
	}
	return pools, nil
}

// read loads the pool's hosts, SRs and which hosts see each SR.
func (p *realPool) read(ctx context.Context) error {
	var err error
	if p.hosts, err = p.client.Host.GetAllRecords(ctx); err != nil {
		return err
	}
	if p.srs, err = p.client.SR.GetAllRecords(ctx); err != nil {
		return err
	}
	raw, err := p.client.Call(ctx, "PBD.get_all_records")
	if err != nil {
		return err
	}
	recs, _ := raw.(map[string]any)
	p.pbds = map[xenapi.SRRef][]xenapi.HostRef{}
	for _, r := range recs {
		m, _ := r.(map[string]any)
		sr, _ := m["SR"].(string)
		host, _ := m["host"].(string)
		p.pbds[xenapi.SRRef(sr)] = append(p.pbds[xenapi.SRRef(sr)], xenapi.HostRef(host))
	}
	return nil
}

// findVM finds the VM -vm names (uuid or name_label) in the pools, its
// root disk and its compute host; the driver's Adopt then takes it as the
// instance.
func findVM(ctx context.Context, pools []*realPool, c *config) (*adopted, error) {
	var found []*adopted
	for _, p := range pools {
		vms, err := guestVMs(ctx, p.client)
		if err != nil {
			return nil, err
		}
		for ref, r := range vms {
			if r.UUID == c.vm || r.NameLabel == c.vm {
				found = append(found, &adopted{pool: p, root: rootDisk{VM: ref, Record: r}})
			}
		}
	}
	if len(found) != 1 {
		return nil, &NoVMError{Name: c.vm, Matches: len(found)}
	}
	a := found[0]
	root, err := rootOf(ctx, a.pool.client, a.root.VM, a.root.Record)
	if err != nil {
		return nil, err
	}
	a.root = root
	return a, a.place()
}

// place finds the compute host the VM is on (resident, else its
// affinity).
func (a *adopted) place() error {
	r := a.root.Record
	h := r.ResidentOn
	if xenapi.IsNull(h) {
		h = r.Affinity
	}
	host, ok := a.pool.hosts[h]
	if !ok {
		return fmt.Errorf("VM %s is neither resident on a host nor has an affinity: start it, or set its affinity", r.NameLabel)
	}
	a.host = a.pool.computeHost(host)
	return nil
}

// refuseWaiting refuses a VM whose source was kept by an unconfirmed
// resize: only the Store of the run that made it can confirm or revert it.
func (a *adopted) refuseWaiting(ctx context.Context, c *config) error {
	vms, err := guestVMs(ctx, a.pool.client)
	if err != nil {
		return err
	}
	for _, r := range vms {
		if r.OtherConfig[xenserver.KeyOrigOf] != a.uuid {
			continue
		}
		if c.revert {
			return &UnavailableError{Flag: "-revert", Reason: errNoDurableStore}
		}
		return &WaitingResizeError{VM: a.root.Record.NameLabel, OrigVM: r.NameLabel, Pending: errNoDurableStore}
	}
	return nil
}

// errNoDurableStore says why a resize left in VERIFY_RESIZE cannot be
// finished by this run.
const errNoDurableStore = "the resize an earlier run left in VERIFY_RESIZE is in that run's Store, " +
	"and this run has not got it: give the same -db the earlier run had"

// realInventory places every host of every pool: the SR that holds
// instance disks is the adopted VM's root SR where the host sees it, else
// the host's own (unshared) disk SR, else the pool's shared one.
func realInventory(pools []*realPool, a *adopted, c *config, password string) (xenserver.Inventory, []string, error) {
	inv := xenserver.Inventory{Pools: map[string]xenserver.PoolEndpoint{}, Hosts: map[string]xenserver.HostEntry{}}
	var names []string
	for _, p := range pools {
		inv.Pools[p.name] = xenserver.PoolEndpoint{URL: p.url, User: c.user, Password: xenserver.Password(password)}
		for ref, h := range p.hosts {
			name := p.computeHost(h)
			if _, dup := inv.Hosts[name]; dup {
				return inv, nil, fmt.Errorf("two hosts of %s are named %q", p.name, h.NameLabel)
			}
			sr, ok := p.diskSR(ref, a)
			if !ok {
				continue
			}
			inv.Hosts[name] = xenserver.HostEntry{Pool: p.name, XenServerHost: h.UUID, SR: sr, Transport: c.transport}
			names = append(names, name)
		}
	}
	sort.Strings(names)
	if len(names) < 2 {
		return inv, nil, errors.New("the pools have fewer than 2 hosts with an SR for instance disks")
	}
	return inv, names, nil
}

// diskSR picks the SR that holds instance disks on host h.
func (p *realPool) diskSR(h xenapi.HostRef, a *adopted) (string, bool) {
	var own, shared string
	for ref, hosts := range p.pbds {
		sr, ok := p.srs[ref]
		if !ok || !seenBy(hosts, h) || sr.ContentType == "iso" || sr.Type == "iso" || sr.Type == "udev" {
			continue
		}
		if a != nil && a.pool == p && ref == a.root.SR {
			return sr.UUID, true
		}
		if sr.Shared {
			shared = sr.UUID
		} else {
			own = sr.UUID
		}
	}
	if own != "" {
		return own, true
	}
	return shared, shared != ""
}

// seenBy reports whether h is among hosts.
func seenBy(hosts []xenapi.HostRef, h xenapi.HostRef) bool {
	for _, x := range hosts {
		if x == h {
			return true
		}
	}
	return false
}

// findRoot finds the instance's root disk in whichever pool holds it.
func findRoot(ctx context.Context, pools []*realPool, uuid string) (string, error) {
	for _, p := range pools {
		root, err := instanceRoot(ctx, p.client, uuid)
		var nv *NoVMError
		if errors.As(err, &nv) {
			continue
		}
		if err != nil {
			return "", err
		}
		return root.VDIUUID, nil
	}
	return "", &NoVMError{Name: "nova_uuid=" + uuid}
}
