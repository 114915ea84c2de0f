package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	neturl "net/url"
	"time"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/migrate"
	"github.com/xenflow/xenflow/migrate/crosscell"
	"github.com/xenflow/xenflow/quota"
	"github.com/xenflow/xenflow/scheduler"
	"github.com/xenflow/xenflow/xenapi"
	"github.com/xenflow/xenflow/xenapi/xenapitest"
	"github.com/xenflow/xenflow/xenserver"
)

// cellWorld is -cross-cell's two cells: the simulated pool with the
// instance (cell1) and a second pool of two hosts (cell2), which never
// talk to each other; one driver knows both.
type cellWorld struct {
	sim     *simulation
	other   *xenapitest.Pool
	clients []*xenapi.Client
	driver  *xenserver.Driver
	cells   []crosscell.Cell
	// size is the root disk's size before the move.
	size int64
}

// newCellWorld builds and serves the two pools and the driver over both.
func newCellWorld(ctx context.Context, c *config, from *compute.Flavor) (*cellWorld, error) {
	sim, err := newSimulation(ctx, 2, "", c.diskMiB<<20, from)
	if err != nil {
		return nil, err
	}
	w := &cellWorld{sim: sim, clients: []*xenapi.Client{sim.client}, size: c.diskMiB << 20}
	if w.other, err = xenapitest.NewPool(xenapitest.Options{Hosts: 2, HostNames: []string{"host3", "host4"}}); err != nil {
		return w, err
	}
	url, err := w.other.Serve("127.0.0.1:0")
	if err != nil {
		return w, err
	}
	cl, err := xenapi.NewClient(url)
	if err != nil {
		return w, err
	}
	w.clients = append(w.clients, cl)
	if err := cl.Login(ctx, w.other.User(), w.other.Password(), "xenflow-examples-resize"); err != nil {
		return w, err
	}
	inv := sim.inventory("xapi")
	inv.Pools["sim2"] = xenserver.PoolEndpoint{URL: url, User: w.other.User(), Password: xenserver.Password(w.other.Password()),
		ClientOptions: []xenapi.Option{xenapi.WithTaskPollInterval(simTaskPoll)}}
	var hosts2 []string
	for _, h := range w.other.Hosts() {
		inv.Hosts[h.Name()] = xenserver.HostEntry{Pool: "sim2", XenServerHost: h.UUID(), SR: h.SRUUID(), Transport: "xapi"}
		hosts2 = append(hosts2, h.Name())
	}
	if w.driver, err = xenserver.New(xenserver.Config{Inventory: inv, Originator: "xenflow-examples-resize"}); err != nil {
		return w, err
	}
	w.cells = []crosscell.Cell{
		{Name: "cell1", Driver: w.driver, Hosts: sim.hostNames(), Store: compute.NewMemoryStore()},
		{Name: "cell2", Driver: w.driver, Hosts: hosts2, Store: compute.NewMemoryStore()},
	}
	return w, nil
}

// close stops what newCellWorld started.
func (w *cellWorld) close(ctx context.Context) {
	if w.driver != nil {
		_ = w.driver.Close(ctx)
	}
	for _, cl := range w.clients[1:] {
		_ = cl.Close(ctx)
	}
	if w.other != nil {
		_ = w.other.Close()
	}
	w.sim.close(ctx)
}

// rootHash finds the running VM that claims the instance in either pool
// and returns the SHA-256 of its root disk's content and its host.
func (w *cellWorld) rootHash(ctx context.Context) (sum, host string, err error) {
	for _, cl := range w.clients {
		vms, err := guestVMs(ctx, cl)
		if err != nil {
			return "", "", err
		}
		for ref, r := range vms {
			if r.OtherConfig[xenserver.KeyNovaUUID] != simInstanceUUID || r.PowerState != xenapi.VMPowerStateRunning {
				continue
			}
			root, err := rootOf(ctx, cl, ref, r)
			if err != nil {
				return "", "", err
			}
			h, err := cl.Host.GetRecord(ctx, r.ResidentOn)
			if err != nil {
				return "", "", err
			}
			sum, err := vdiSHA256(ctx, cl, root.VDI, w.size)
			return sum, h.NameLabel, err
		}
	}
	return "", "", &NoVMError{Name: "nova_uuid=" + simInstanceUUID}
}

// vdiSHA256 is the SHA-256 of the first n bytes of a VDI's raw content
// (the size it had before a resize grew it), read through xapi's
// /export_raw_vdi.
func vdiSHA256(ctx context.Context, cl *xenapi.Client, vdi xenapi.VDIRef, n int64) (string, error) {
	resp, err := cl.DoHTTP(ctx, xenapi.HTTPRequest{Method: "GET", Path: xenapitest.ExportRawVDIPath,
		Query: neturl.Values{"vdi": {string(vdi)}, "format": {"raw"}}})
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	h := sha256.New()
	if _, err := io.CopyN(h, resp.Body, n); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// conductor creates the instance in cell1 with its mapping and quota and
// returns a Conductor that allows cross-cell moves and prefers the other
// cell (a negative cross_cell_move_weight_multiplier).
func (w *cellWorld) conductor(ctx context.Context, from, to *compute.Flavor, api crosscell.APIStore) (*crosscell.Conductor, error) {
	inst := w.sim.instance(from, time.Now())
	inst.Cell = "cell1"
	if err := w.cells[0].Store.CreateInstance(ctx, inst); err != nil {
		return nil, err
	}
	if err := api.SaveMapping(ctx, crosscell.InstanceMapping{InstanceUUID: inst.UUID, Cell: "cell1", ProjectID: inst.ProjectID}); err != nil {
		return nil, err
	}
	ledger, err := quota.NewLedger()
	if err != nil {
		return nil, err
	}
	charges, err := crosscell.QuotaCharges(ctx, w.cells, inst.ProjectID)
	if err != nil {
		return nil, err
	}
	if _, err := ledger.Reconcile(ctx, inst.ProjectID, charges); err != nil {
		return nil, err
	}
	sched := scheduler.DefaultConfig()
	sched.CrossCellMoveWeightMultiplier = -1e6
	return crosscell.New(crosscell.Config{Cells: w.cells, API: api, Quota: ledger, Scheduler: &sched,
		Flavors: migrate.Flavors{from.ID: from, to.ID: to}, Owner: "examples-resize", Policy: crosscell.Policy{AllowCrossCellResize: true},
		Options: migrate.Options{CleanShutdown: true}})
}

// runCrossCell is -cross-cell: the instance moves from cell1 to cell2
// with migrate/crosscell's Conductor and the XenServer driver, its disk
// checked in the pool that runs it, then confirmed or reverted.
func runCrossCell(ctx context.Context, c *config, stdout io.Writer) error {
	from, to := flavorsFor(c)
	w, err := newCellWorld(ctx, c, from)
	if w != nil {
		defer w.close(context.WithoutCancel(ctx))
	}
	if err != nil {
		return err
	}
	api := crosscell.NewMemoryAPIStore()
	cond, err := w.conductor(ctx, from, to, api)
	if err != nil {
		return err
	}
	before, beforeHost, err := w.rootHash(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "xenflow resize -cross-cell: cell1 (host1, host2) and cell2 (host3, host4), two pools\n")
	fmt.Fprintf(stdout, "instance  %s in cell1 on %s, flavor %s -> %s\n", simInstanceUUID, beforeHost, from.ID, to.ID)
	var res *crosscell.Result
	if c.migrate {
		res, err = cond.Migrate(ctx, migrate.MigrateRequest{InstanceUUID: simInstanceUUID})
	} else {
		res, err = cond.Resize(ctx, migrate.ResizeRequest{InstanceUUID: simInstanceUUID, FlavorID: to.ID})
	}
	if err != nil {
		return err
	}
	if err := w.check(ctx, stdout, before, res.DestHost); err != nil {
		return err
	}
	name, back := "confirmed", res.DestHost
	req := migrate.ActionRequest{InstanceUUID: simInstanceUUID}
	switch {
	case c.noConfirm:
		name = "verify_resize"
	case c.revert:
		name, back = "reverted", res.SourceHost
		_, err = cond.Revert(ctx, req)
	default:
		_, err = cond.Confirm(ctx, req)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if err := w.check(ctx, stdout, before, back); err != nil {
		return err
	}
	m, err := api.GetMapping(ctx, simInstanceUUID)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "cross-cell %s: cell %s -> %s (%s -> %s); %s, instance now in %s on %s; disk SHA-256 unchanged\n",
		verb(c), res.SourceCell, res.DestCell, res.SourceHost, res.DestHost, name, m.Cell, back)
	return nil
}

// verb names the move.
func verb(c *config) string {
	if c.migrate {
		return "migrate"
	}
	return "resize"
}

// check verifies that the VM claiming the instance runs on host with the
// root disk's content it had before the move.
func (w *cellWorld) check(ctx context.Context, stdout io.Writer, want, host string) error {
	sum, on, err := w.rootHash(ctx)
	if err != nil {
		return err
	}
	if on != host || sum != want {
		return &CrossCellCheckError{Host: host, On: on, Want: want, Got: sum}
	}
	fmt.Fprintf(stdout, "verified  root disk on %s: SHA-256 %s, as before the move\n", on, sum[:16])
	return nil
}

// CrossCellCheckError is an instance whose VM is not on the host the
// Conductor names, or whose root disk's content changed.
type CrossCellCheckError struct {
	Host, On  string
	Want, Got string
}

// Error implements the error interface.
func (e *CrossCellCheckError) Error() string {
	return fmt.Sprintf("cross-cell check: want the VM on %s with disk SHA-256 %s, found it on %s with %s", e.Host, e.Want, e.On, e.Got)
}
