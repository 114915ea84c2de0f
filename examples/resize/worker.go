package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/migrate"
	"github.com/xenflow/xenflow/quota"
	sm "github.com/xenflow/xenflow/statemachine"
	"github.com/xenflow/xenflow/xenapi"
	"github.com/xenflow/xenflow/xenserver"
)

// metaRequestedFlavor is the system metadata key under which -submit
// records the flavor an instance is to be resized to.
const metaRequestedFlavor = "xenflow_requested_flavor"

// adoptedProject is the project and user adopted VMs are charged to.
const adoptedProject = "adopted"

// runSubmit adopts every guest VM of the pools the Store does not hold yet
// as an instance whose system metadata requests a resize to the flavor the
// flags give (relative to the VM's own sizes), and charges the instances'
// flavors to the quota; workers (-worker) then do the resizes.
func runSubmit(ctx context.Context, c *config, pools []*realPool, drv *xenserver.Driver, db *stores, stdout io.Writer) error {
	n := 0
	for _, p := range pools {
		vms, err := guestVMs(ctx, p.client)
		if err != nil {
			return err
		}
		for _, ref := range sortedVMs(vms) {
			added, err := submitVM(ctx, c, drv, db.store, &adopted{pool: p, root: rootDisk{VM: ref, Record: vms[ref]}})
			if err != nil {
				return fmt.Errorf("submitting VM %s: %w", vms[ref].NameLabel, err)
			}
			if added {
				n++
			}
		}
	}
	insts, err := db.store.ListInstances(ctx, compute.InstanceFilter{})
	if err != nil {
		return err
	}
	var charges []quota.Charge
	for _, inst := range insts {
		if inst.ProjectID == adoptedProject {
			charges = append(charges, migrate.Charge(inst))
		}
	}
	if _, err := db.ledger.Reconcile(ctx, adoptedProject, charges); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "submitted %d resize(s); %d instance(s) in the Store\n", n, len(insts))
	return nil
}

// sortedVMs returns the VMs' refs ordered by name_label.
func sortedVMs(vms map[xenapi.VMRef]xenapi.VMRecord) []xenapi.VMRef {
	refs := make([]xenapi.VMRef, 0, len(vms))
	for ref := range vms {
		refs = append(refs, ref)
	}
	sort.Slice(refs, func(i, j int) bool { return vms[refs[i]].NameLabel < vms[refs[j]].NameLabel })
	return refs
}

// submitVM adopts one VM as an instance that requests a resize, unless
// the Store already holds it; it reports whether it added one.
func submitVM(ctx context.Context, c *config, drv *xenserver.Driver, st compute.Store, a *adopted) (bool, error) {
	kept, err := adoptOrLoad(ctx, st, a.root.Record.OtherConfig[xenserver.KeyNovaUUID])
	if err != nil || kept != nil {
		return false, err
	}
	if err := a.place(); err != nil {
		return false, err
	}
	inst, err := drv.Adopt(ctx, xenserver.AdoptRequest{Host: a.host, VM: a.root.Record.UUID})
	if err != nil {
		return false, err
	}
	from, to, err := realFlavors(c, inst.Flavor)
	if err != nil {
		return false, err
	}
	inst.Flavor, inst.ProjectID, inst.UserID, inst.LaunchedAt = from, adoptedProject, adoptedProject, time.Now()
	if inst.SystemMetadata == nil {
		inst.SystemMetadata = map[string]string{}
	}
	inst.SystemMetadata[metaRequestedFlavor] = to.ID
	return true, st.CreateInstance(ctx, inst)
}

// flavorID matches the ids newFlavor and withEphemeral give.
var flavorID = regexp.MustCompile(`^(\d+)c-(\d+)m-(\d+)g(?:-(\d+)e)?$`)

// flavorsByID is the FlavorSource of the workers: a flavor id names its
// sizes (<vCPUs>c-<MiB>m-<GiB>g[-<GiB>e]), so any process can rebuild the
// flavor -submit requested.
type flavorsByID struct{}

// Flavor implements migrate.FlavorSource.
func (flavorsByID) Flavor(_ context.Context, id string) (*compute.Flavor, error) {
	m := flavorID.FindStringSubmatch(id)
	if m == nil {
		return nil, &compute.NotFoundError{Kind: "flavor", ID: id}
	}
	n := make([]int, 4)
	for i, s := range m[1:] {
		if s != "" {
			v, err := strconv.Atoi(s)
			if err != nil {
				return nil, &compute.NotFoundError{Kind: "flavor", ID: id}
			}
			n[i] = v
		}
	}
	f := withEphemeral(newFlavor(n[0], n[1], n[2]), n[3])
	if f.ID != id {
		return nil, &compute.NotFoundError{Kind: "flavor", ID: id}
	}
	return f, nil
}

// worker is one orchestrator process of -worker: it takes over the
// operations whose leases expired, and resizes and confirms the instances
// -submit marked, until none is left.
type worker struct {
	orch     *migrate.Orchestrator
	store    compute.Store
	wait     func(context.Context) error
	owner    string
	parallel int
	mu       sync.Mutex
	out      io.Writer
	counts   workerCounts
}

// workerCounts is what a worker did.
type workerCounts struct {
	resized, confirmed, rolledBack, resumed int
}

// workerHostRefresh is how long a worker's scheduler reuses the hosts'
// states between reads (a destination's claim reads its host afresh).
const workerHostRefresh = time.Second

// runWorker runs the worker loop over the pools' driver.
func runWorker(ctx context.Context, c *config, drv *xenserver.Driver, hosts []string, db *stores, stdout io.Writer) error {
	orch, err := migrate.New(migrate.Config{Store: db.store, Driver: drv, Quota: db.ledger, Flavors: flavorsByID{},
		Hosts: hosts, Owner: c.owner, LeaseTTL: c.leaseTTL,
		Options: migrate.Options{CleanShutdown: true, HostRefresh: workerHostRefresh}})
	if err != nil {
		return err
	}
	w := &worker{orch: orch, store: db.store, wait: db.wait, owner: c.owner, parallel: c.parallel, out: stdout}
	return w.loop(ctx)
}

// loop runs passes over the marked instances until none is left, and
// beside them a resumer that takes over operations whose leases expired;
// when a pass finds only work others hold, it waits for a notification
// or the poll interval.
func (w *worker) loop(ctx context.Context) error {
	rctx, stop := context.WithCancel(ctx)
	resumed := make(chan error, 1)
	go func() { resumed <- w.resumeLoop(rctx) }()
	err := w.passes(ctx)
	stop()
	if rerr := <-resumed; err == nil && rerr != nil && !errors.Is(rerr, context.Canceled) {
		err = rerr
	}
	if err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	fmt.Fprintf(w.out, "worker %s done: %d resized, %d confirmed, %d rolled back, %d taken over\n",
		w.owner, w.counts.resized, w.counts.confirmed, w.counts.rolledBack, w.counts.resumed)
	return nil
}

// passes runs passes until every marked instance is done.
func (w *worker) passes(ctx context.Context) error {
	for {
		left, acted, err := w.pass(ctx)
		switch {
		case err != nil:
			return err
		case left == 0:
			return nil
		case !acted:
			if err := w.wait(ctx); err != nil {
				return err
			}
		}
	}
}

// resumeLoop resumes, waits for work or the poll interval, and again,
// until ctx ends.
func (w *worker) resumeLoop(ctx context.Context) error {
	for {
		if err := w.resume(ctx); err != nil {
			return err
		}
		if err := w.wait(ctx); err != nil {
			return err
		}
	}
}

// resume takes over the operations left unfinished whose leases expired;
// those another owner holds are skipped.
func (w *worker) resume(ctx context.Context) error {
	outs, err := w.orch.Resume(ctx)
	if outs == nil && err != nil {
		return err // the Store could not list the operations
	}
	// err joins the leases others hold and the operations that stopped;
	// the next round looks at them again.
	for _, o := range outs {
		var held *compute.LeaseHeldError
		if errors.As(o.Err, &held) {
			continue
		}
		w.printf(func(c *workerCounts) { c.resumed++ }, "resumed   %s: %s -> %s%s", o.InstanceUUID, o.From, o.To, errSuffix(o.Err))
	}
	return ctx.Err()
}

// errSuffix is " (err)", or "" for nil.
func errSuffix(err error) string {
	if err == nil {
		return ""
	}
	return " (" + err.Error() + ")"
}

// printf prints a line and counts it.
func (w *worker) printf(count func(*workerCounts), format string, args ...any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	count(&w.counts)
	fmt.Fprintf(w.out, format+"\n", args...)
}

// task is what a pass does with a marked instance.
type task int

const (
	taskDone    task = iota // resized and confirmed, or rolled back
	taskBusy                // an operation in progress, or held by another owner
	taskResize              // not resized yet
	taskConfirm             // waiting in VERIFY_RESIZE
)

// pass looks at every marked instance and resizes or confirms those that
// need it, w.parallel at a time; it returns how many are not done and
// whether it acted on any.
func (w *worker) pass(ctx context.Context) (left int, acted bool, err error) {
	insts, err := w.store.ListInstances(ctx, compute.InstanceFilter{})
	if err != nil {
		return 0, false, err
	}
	todo := make(chan *compute.Instance)
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i := 0; i < w.parallel; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for inst := range todo {
				done := w.drive(ctx, inst)
				mu.Lock()
				if !done {
					left++
				}
				mu.Unlock()
			}
		}()
	}
	for _, inst := range insts {
		if inst.SystemMetadata[metaRequestedFlavor] == "" {
			continue
		}
		t, err := w.classify(ctx, inst)
		if err != nil {
			close(todo)
			wg.Wait()
			return 0, false, err
		}
		switch t {
		case taskBusy:
			left++
		case taskResize, taskConfirm:
			acted = true
			todo <- inst
		}
	}
	close(todo)
	wg.Wait()
	return left, acted, ctx.Err()
}

// classify says what a marked instance needs: an instance with a task or
// another owner's lease is busy, one in VERIFY_RESIZE needs its confirm,
// one never moved (no migration) its resize; the rest are done.
func (w *worker) classify(ctx context.Context, inst *compute.Instance) (task, error) {
	if inst.TaskState != sm.TaskNone {
		return taskBusy, nil
	}
	if inst.VMState == sm.VMResized {
		return taskConfirm, nil
	}
	migs, err := w.store.ListMigrations(ctx, compute.MigrationFilter{InstanceUUID: inst.UUID})
	if err != nil {
		return taskBusy, err
	}
	for _, m := range migs {
		if m.Status == sm.MigrationConfirming {
			return taskBusy, nil
		}
	}
	if len(migs) == 0 {
		return taskResize, nil
	}
	return taskDone, nil
}

// drive resizes (unless it waits in VERIFY_RESIZE already) and confirms
// one instance; it reports whether the instance is done.
func (w *worker) drive(ctx context.Context, inst *compute.Instance) bool {
	if inst.VMState != sm.VMResized {
		res, err := w.orch.Resize(ctx, migrate.ResizeRequest{InstanceUUID: inst.UUID, FlavorID: inst.SystemMetadata[metaRequestedFlavor]})
		var opErr *migrate.OperationError
		var same *migrate.CannotResizeToSameFlavorError
		switch {
		case errors.As(err, &opErr):
			w.printf(func(c *workerCounts) { c.rolledBack++ }, "rolled back %s: %v", inst.UUID, err)
			return true
		case errors.As(err, &same):
			return true
		case err != nil:
			return false // held by another owner, or stopped: the next pass looks again
		}
		w.printf(func(c *workerCounts) { c.resized++ }, "resized   %s %s -> %s", inst.UUID, res.SourceHost, res.DestHost)
	}
	res, err := w.orch.Confirm(ctx, migrate.ActionRequest{InstanceUUID: inst.UUID})
	if err != nil {
		return false
	}
	w.printf(func(c *workerCounts) { c.confirmed++ }, "confirmed %s on %s", inst.UUID, res.DestHost)
	return true
}
