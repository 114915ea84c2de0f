package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/migrate"
	"github.com/xenflow/xenflow/quota"
	"github.com/xenflow/xenflow/sqlstore"
	"github.com/xenflow/xenflow/sqlstore/sqlstoretest"
	sm "github.com/xenflow/xenflow/statemachine"
	"github.com/xenflow/xenflow/xenapi"
	"github.com/xenflow/xenflow/xenapi/xenapitest"
	"github.com/xenflow/xenflow/xenserver"
)

// The many-orchestrators test's sizes.
const (
	sharedResizes  = 200
	sharedPools    = 4 // the driver lists a pool's VMs per lookup: smaller pools are cheaper
	sharedWorkers  = 3
	sharedLeaseTTL = 2 * time.Second
	// sharedKillAt is how many resizes are confirmed when the first
	// worker is killed.
	sharedKillAt = sharedResizes / 4
)

// TestManyOrchestrators: three worker processes of examples/resize on one
// real PostgreSQL share 200 resizes on four pools of two hosts that
// examples/fakepool serves as a process of its own; the first worker is killed with SIGKILL while it
// drives an operation, and the other two take its operations over once
// its leases expire. Every instance ends ACTIVE with its requested flavor
// (or rolled back with a fault), its VM running on the host the Store
// names with its disk's content unchanged; no migration is in progress,
// the quota is exact, the pool has as many VMs and VDIs as before, and the
// fence log shows that no step was written by an owner whose lease had
// passed on. The takeover time (the kill to the first step another owner
// writes on one of the killed worker's operations) is bounded by the
// lease period and the poll interval.
func TestManyOrchestrators(t *testing.T) {
	if testing.Short() {
		t.Skip("runs 200 resizes in three processes")
	}
	pg := sqlstoretest.Start()
	t.Cleanup(pg.Stop)
	dsn := pg.DSN(t)
	// A bound on liveness, not a speed target: alone the 200 resizes take
	// about 30 s, but the other packages' tests may share the machine.
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	dir := t.TempDir()
	resizeBin := buildCommand(t, dir, ".", "resize")
	poolBin := buildCommand(t, dir, "../fakepool", "fakepool")
	pw := filepath.Join(dir, "password")
	if err := os.WriteFile(pw, []byte(xenapitest.DefaultPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	urls := servePools(t, poolBin, sharedPools, "-hosts", "2", "-vms", fmt.Sprint(sharedResizes/sharedPools), "-disk-mib", "1")
	before := readGuests(ctx, t, urls)
	base := []string{"-password-file", pw, "-db", dsn}
	for _, u := range urls {
		base = append(base, "-xapi", u)
	}
	if out, err := exec.Command(resizeBin, append(base, "-submit", "-memory-mib", "256")...).CombinedOutput(); err != nil ||
		!strings.Contains(string(out), fmt.Sprintf("submitted %d resize(s)", sharedResizes)) {
		t.Fatalf("-submit: %v\n%s", err, out)
	}
	st, err := sqlstore.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	start := time.Now()
	workers := startWorkers(t, resizeBin, base)
	kill := killMidway(ctx, t, st, workers[0])
	for _, w := range workers[1:] {
		if err := w.wait(ctx); err != nil {
			t.Fatalf("worker %s: %v\n%s\n%s", w.owner, err, unfinished(st), w.dump())
		}
	}
	t.Logf("%d resizes by %d workers in %v", sharedResizes, sharedWorkers, time.Since(start).Round(time.Millisecond))
	checkShared(ctx, t, st, before, readGuests(ctx, t, urls))
	checkFencing(ctx, t, st, kill)
}

// sharedWorker is one worker process.
type sharedWorker struct {
	owner string
	cmd   *exec.Cmd
	out   *lockedBuffer
	done  chan error
}

func startWorkers(t *testing.T, bin string, base []string) []*sharedWorker {
	var ws []*sharedWorker
	for i := 1; i <= sharedWorkers; i++ {
		w := &sharedWorker{owner: fmt.Sprintf("o%d", i), out: &lockedBuffer{}, done: make(chan error, 1)}
		w.cmd = exec.Command(bin, append(base, "-worker", "-owner", w.owner, "-lease-ttl", sharedLeaseTTL.String(), "-parallel", "2")...)
		w.cmd.Stdout, w.cmd.Stderr = w.out, w.out
		if err := w.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { w.done <- w.cmd.Wait() }()
		t.Cleanup(func() {
			_ = w.cmd.Process.Kill() // by its pid; an exited worker ignores it
			<-w.done
		})
		ws = append(ws, w)
	}
	return ws
}

// dump asks a worker that did not end for its goroutines (SIGQUIT makes
// a Go program print them and exit) and returns its output.
func (w *sharedWorker) dump() string {
	_ = w.cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case err := <-w.done:
		w.done <- err
	case <-time.After(10 * time.Second):
	}
	return w.out.String()
}

// unfinished lists the instances with an operation in progress, for the
// report of a worker that did not end.
func unfinished(st *sqlstore.Store) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	insts, err := st.ListInstances(ctx, compute.InstanceFilter{})
	if err != nil {
		return "the Store: " + err.Error()
	}
	var b strings.Builder
	for _, inst := range insts {
		if inst.TaskState != sm.TaskNone {
			fmt.Fprintf(&b, "unfinished: %s on %s %s/%s\n", inst.UUID, inst.Host, inst.VMState, inst.TaskState)
		}
	}
	return b.String()
}

// lockedBuffer is a worker's output, written by the process's copying
// goroutine and read by the test when it gives up waiting.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// wait waits for the worker to exit; its exit status is its result.
func (w *sharedWorker) wait(ctx context.Context) error {
	select {
	case err := <-w.done:
		w.done <- err
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// killed is the kill of the first worker: when, and the instances whose
// operations it held.
type killed struct {
	owner string
	at    time.Time
	held  []string
}

// killMidway kills w with SIGKILL once sharedKillAt resizes are confirmed
// and w holds an operation in progress.
func killMidway(ctx context.Context, t *testing.T, st *sqlstore.Store, w *sharedWorker) killed {
	t.Helper()
	for ctx.Err() == nil {
		var confirmed int
		if err := st.DB().QueryRowContext(ctx, `SELECT COUNT(*) FROM migrations WHERE status = 'confirmed'`).Scan(&confirmed); err != nil {
			t.Fatal(err)
		}
		held := heldBy(ctx, t, st, w.owner)
		if confirmed >= sharedKillAt && len(held) > 0 {
			if err := w.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			k := killed{owner: w.owner, at: time.Now(), held: held}
			t.Logf("killed %s after %d confirmed resizes, holding %v", w.owner, confirmed, held)
			return k
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("worker %s was not seen holding an operation:\n%s", w.owner, w.out.String())
	return killed{}
}

// heldBy lists the instances with an operation in progress whose lease
// owner holds.
func heldBy(ctx context.Context, t *testing.T, st *sqlstore.Store, owner string) []string {
	rows, err := st.DB().QueryContext(ctx, `SELECT uuid FROM instances WHERE lease_owner = $1 AND task_state <> ''`, owner)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		out = append(out, id)
	}
	return out
}

// guest is what a XenAPI client sees of an instance's VM.
type guest struct {
	host, hash string
}

// guestView is the pool: the running VM claiming each instance, and how
// many guest VMs and managed VDIs there are.
type guestView struct {
	byInstance map[string]guest
	vms, vdis  int
	// unattached describes the managed VDIs no VBD uses, for the report
	// of a leftover.
	unattached []string
}

// readGuests hashes the root disk of every guest VM claiming an instance
// (nova_uuid) in the pools and names its host as the command does
// (pool<i>.<name_label>); an instance claimed by two running VMs fails the
// test.
func readGuests(ctx context.Context, t *testing.T, urls []string) guestView {
	t.Helper()
	v := guestView{byInstance: map[string]guest{}}
	for i, url := range urls {
		readPoolGuests(ctx, t, url, fmt.Sprintf("pool%d.", i+1), &v)
	}
	return v
}

// readPoolGuests adds one pool's guests to v, its hosts' names prefixed.
func readPoolGuests(ctx context.Context, t *testing.T, url, prefix string, v *guestView) {
	t.Helper()
	c := poolClient(ctx, t, url)
	defer c.Close(ctx)
	vms, err := guestVMs(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	hosts, err := c.Host.GetAllRecords(ctx)
	if err != nil {
		t.Fatal(err)
	}
	v.vms += len(vms)
	v.vdis += managedVDIs(ctx, t, c, prefix, &v.unattached)
	for ref, r := range vms {
		id := r.OtherConfig[xenserver.KeyNovaUUID]
		if id == "" || r.PowerState != xenapi.VMPowerStateRunning {
			continue
		}
		if _, dup := v.byInstance[id]; dup {
			t.Fatalf("two running VMs claim instance %s", id)
		}
		root, err := rootOf(ctx, c, ref, r)
		if err != nil {
			t.Fatal(err)
		}
		v.byInstance[id] = guest{host: prefix + hosts[r.ResidentOn].NameLabel, hash: hashVDI(ctx, t, c, root.VDI, root.Size)}
	}
}

// managedVDIs counts the pool's managed VDIs (an unmanaged one is a
// chain's base copy xapi keeps under a snapshot) and describes those no
// VBD uses.
func managedVDIs(ctx context.Context, t *testing.T, c *xenapi.Client, prefix string, unattached *[]string) int {
	vdis, err := c.VDI.GetAllRecords(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, d := range vdis {
		if !d.Managed {
			continue
		}
		n++
		if len(d.VBDs) == 0 {
			*unattached = append(*unattached, fmt.Sprintf("%s%s %q (%s) snapshot=%v other_config=%v", prefix, d.UUID, d.NameLabel, d.Type, d.IsASnapshot, d.OtherConfig))
		}
	}
	return n
}

// checkShared checks the end state: every instance terminal, its VM on
// the Store's host with its disk unchanged, no migration in progress, the
// quota exact, no VM or VDI left over.
func checkShared(ctx context.Context, t *testing.T, st *sqlstore.Store, before, after guestView) {
	t.Helper()
	insts, err := st.ListInstances(ctx, compute.InstanceFilter{})
	if err != nil || len(insts) != sharedResizes {
		t.Fatalf("%d instances in the Store (%v), want %d", len(insts), err, sharedResizes)
	}
	var charges []quota.Charge
	resized, rolledBack := 0, 0
	for _, inst := range insts {
		charges = append(charges, migrate.Charge(inst))
		switch {
		case inst.VMState != sm.VMActive || inst.TaskState != sm.TaskNone:
			t.Errorf("instance %s ended %s/%s", inst.UUID, inst.VMState, inst.TaskState)
		case inst.Flavor.ID == inst.SystemMetadata[metaRequestedFlavor]:
			resized++
		case hasFault(ctx, t, st, inst.UUID):
			rolledBack++
		default:
			t.Errorf("instance %s kept flavor %s without a fault", inst.UUID, inst.Flavor.ID)
		}
		g, b := after.byInstance[inst.UUID], before.byInstance[inst.UUID]
		if g.host != inst.Host || g.hash != b.hash || b.hash == "" {
			t.Errorf("instance %s: the Store says host %s, its VM runs on %q with disk %s (was %s)", inst.UUID, inst.Host, g.host, g.hash, b.hash)
		}
	}
	t.Logf("%d resized and confirmed, %d rolled back", resized, rolledBack)
	if migs, err := st.ListMigrations(ctx, compute.MigrationFilter{InProgress: true}); err != nil || len(migs) != 0 {
		t.Errorf("%d migrations still in progress (%v)", len(migs), err)
	}
	ledger, err := quota.NewLedger(quota.WithStore(st.Quota()))
	if err != nil {
		t.Fatal(err)
	}
	if u, err := ledger.Usage(ctx, adoptedProject); err != nil || u.Pending != 0 {
		t.Errorf("quota: %d reservations pending (%v)", u.Pending, err)
	}
	if drift, err := ledger.Reconcile(ctx, adoptedProject, charges); err != nil || len(drift) != 0 {
		t.Errorf("quota drifted: %+v (%v)", drift, err)
	}
	if after.vms != before.vms || after.vdis != before.vdis {
		t.Errorf("pool after: %d VMs, %d VDIs; before: %d, %d; unattached after: %q", after.vms, after.vdis, before.vms, before.vdis, after.unattached)
	}
}

func hasFault(ctx context.Context, t *testing.T, st *sqlstore.Store, uuid string) bool {
	faults, err := st.ListFaults(ctx, uuid)
	if err != nil {
		t.Fatal(err)
	}
	return len(faults) > 0
}

// checkFencing checks the fence log and measures the takeover: from the
// kill to the first step another owner wrote on an operation the killed
// worker held, which must come within the lease period, the poll interval
// and some slack.
func checkFencing(ctx context.Context, t *testing.T, st *sqlstore.Store, k killed) {
	t.Helper()
	log, err := st.FenceLog(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := sqlstore.CheckFenceLog(log); err != nil {
		t.Fatal(err)
	}
	grants, steps, owners := 0, 0, map[string]map[string]bool{}
	held := map[string]time.Time{} // the first step another owner wrote after the kill
	for _, id := range k.held {
		held[id] = time.Time{}
	}
	for _, e := range log {
		if e.Kind == sqlstore.FenceLease {
			grants++
			continue
		}
		steps++
		if owners[e.InstanceUUID] == nil {
			owners[e.InstanceUUID] = map[string]bool{}
		}
		owners[e.InstanceUUID][e.Owner] = true
		if first, ok := held[e.InstanceUUID]; ok && e.Owner != k.owner && e.At.After(k.at) && first.IsZero() {
			held[e.InstanceUUID] = e.At
		}
	}
	shared := 0
	for _, o := range owners {
		if len(o) > 1 {
			shared++
		}
	}
	var first, last time.Time
	for id, at := range held {
		if at.IsZero() {
			t.Fatalf("no other owner wrote a step on %s, which %s held when killed", id, k.owner)
		}
		if first.IsZero() || at.Before(first) {
			first = at
		}
		if at.After(last) {
			last = at
		}
	}
	takeover := first.Sub(k.at)
	bound := sharedLeaseTTL + time.Second + 3*time.Second // the lease, the poll, slack for a loaded machine
	t.Logf("fence log: %d grants, %d steps; %d instances' steps by two owners in turn; takeover %v, of all %d held operations %v (lease %v, poll 1s)",
		grants, steps, shared, takeover.Round(time.Millisecond), len(held), last.Sub(k.at).Round(time.Millisecond), sharedLeaseTTL)
	if takeover > bound {
		t.Errorf("takeover took %v, more than %v", takeover, bound)
	}
}

func TestFlavorsByID(t *testing.T) {
	for _, tc := range []struct {
		id   string
		want *compute.Flavor // nil: not found
	}{
		{"2c-1024m-1g", &compute.Flavor{ID: "2c-1024m-1g", Name: "2c-1024m-1g", VCPUs: 2, MemoryMB: 1024, RootGB: 1}},
		{"1c-256m-1g-2e", &compute.Flavor{ID: "1c-256m-1g-2e", Name: "1c-256m-1g-2e", VCPUs: 1, MemoryMB: 256, RootGB: 1, EphemeralGB: 2}},
		{"01c-256m-1g", nil}, // not the id newFlavor gives those sizes
		{"1c-256m-1g-0e", nil},
		{"m1.small", nil},
		{"1c-99999999999999999999m-1g", nil},
	} {
		got, err := flavorsByID{}.Flavor(context.Background(), tc.id)
		switch {
		case tc.want == nil && !errors.Is(err, compute.ErrNotFound):
			t.Errorf("%s: %+v, %v; want not found", tc.id, got, err)
		case tc.want != nil && (err != nil || !reflect.DeepEqual(got, tc.want)):
			t.Errorf("%s: %+v, %v; want %+v", tc.id, got, err, tc.want)
		}
	}
}
