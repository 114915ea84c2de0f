package xenapi_test

// End-to-end tests of the client against the simulated pool
// (xenapitest) over HTTP on loopback.

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xenflow/xenflow/xenapi"
	"github.com/xenflow/xenflow/xenapi/xenapitest"
)

type testPool struct {
	*xenapitest.Pool
	url string
	vms []xenapitest.VMInfo
}

// newTestPool serves a pool of hosts with one running and one halted VM.
func newTestPool(t testing.TB, hosts int) *testPool {
	t.Helper()
	p, err := xenapitest.NewPool(xenapitest.Options{Dir: t.TempDir(), Hosts: hosts})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	url, err := p.Serve("")
	if err != nil {
		t.Fatal(err)
	}
	tp := &testPool{Pool: p, url: url}
	for _, spec := range []xenapitest.VMSpec{
		{Name: "web", Running: true, Disks: []int64{8 << 20}, Memory: 512 << 20, VCPUs: 2},
		{Name: "db", Disks: []int64{8 << 20, 4 << 20}},
	} {
		vm, err := p.AddVM(spec)
		if err != nil {
			t.Fatal(err)
		}
		tp.vms = append(tp.vms, vm)
	}
	return tp
}

func (tp *testPool) client(t testing.TB, opts ...xenapi.Option) *xenapi.Client {
	t.Helper()
	c, err := xenapi.NewClient(tp.url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login(context.Background(), tp.User(), tp.Password(), "xenflow-test"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

func TestPoolRecordsDecode(t *testing.T) {
	ctx := context.Background()
	tp := newTestPool(t, 2)
	c := tp.client(t)
	vms, err := c.VM.GetAllRecords(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var web *xenapi.VMRecord
	for ref, r := range vms {
		if r.NameLabel == "web" {
			r := r
			web = &r
			if string(ref) != tp.vms[0].Ref {
				t.Fatalf("web is %s, want %s", ref, tp.vms[0].Ref)
			}
		}
	}
	if web == nil || !web.PowerState.Is(xenapi.VMPowerStateRunning) || web.MemoryStaticMax != 512<<20 || web.VCPUsMax != 2 || len(web.VBDs) != 1 {
		t.Fatalf("web record %+v", web)
	}
	// Every class's records decode into the typed records.
	if _, err := c.VDI.GetAllRecords(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.VBD.GetAllRecords(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SR.GetAllRecords(ctx); err != nil {
		t.Fatal(err)
	}
	hosts, err := c.Host.GetAllRecords(ctx)
	if err != nil || len(hosts) != 2 {
		t.Fatal(hosts, err)
	}
	pools, err := c.Pool.GetAll(ctx)
	if err != nil || len(pools) != 1 {
		t.Fatal(pools, err)
	}
	prec, err := c.Pool.GetRecord(ctx, pools[0])
	if err != nil || prec.Master.IsNull() {
		t.Fatal(prec, err)
	}
	where, err := c.VM.GetAllRecordsWhere(ctx, `field "name__label"="db"`)
	if err != nil || len(where) != 1 {
		t.Fatalf("where: %v %v", where, err)
	}
}

func TestPoolLoginToMemberFollowsMaster(t *testing.T) {
	tp := newTestPool(t, 3)
	member := tp.Hosts()[2]
	c, err := xenapi.NewClient("http://" + member.Address() + "/")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login(context.Background(), tp.User(), tp.Password(), "x"); err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	if c.URL() != tp.url {
		t.Fatalf("URL %s, want master %s", c.URL(), tp.url)
	}
	if _, err := c.VM.GetAll(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestPoolAsyncCleanShutdownAndWaitTask(t *testing.T) {
	ctx := context.Background()
	tp := newTestPool(t, 1)
	c := tp.client(t, xenapi.WithTaskPollInterval(5*time.Millisecond))
	web := xenapi.VMRef(tp.vms[0].Ref)
	task, err := c.Async.VM.CleanShutdown(ctx, web)
	if err != nil {
		t.Fatal(err)
	}
	var last float64
	if _, err := c.WaitTask(ctx, task, func(p float64) { last = p }); err != nil {
		t.Fatal(err)
	}
	if last != 1 {
		t.Fatalf("last progress %v", last)
	}
	st, err := c.VM.GetPowerState(ctx, web)
	if err != nil || !st.Is(xenapi.VMPowerStateHalted) {
		t.Fatal(st, err)
	}
	if _, err := c.Task.GetRecord(ctx, task); !errors.Is(err, xenapi.ErrHandleInvalid) {
		t.Fatalf("task not destroyed: %v", err)
	}

	// A snapshot through Async returns the new VM's ref in task.result.
	task, err = c.Async.VM.Snapshot(ctx, web, "web-snap")
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.WaitTask(ctx, task, nil)
	if err != nil {
		t.Fatal(err)
	}
	snap := xenapi.ResultRef[xenapi.VMRef](res)
	rec, err := c.VM.GetRecord(ctx, snap)
	if err != nil || !rec.IsASnapshot || rec.SnapshotOf != web {
		t.Fatalf("snapshot %s: %+v %v", snap, rec, err)
	}

	// A failing task comes back as the Failure.
	task, err = c.Async.VM.CleanShutdown(ctx, web)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.WaitTask(ctx, task, nil)
	f, ok := xenapi.AsFailure(err)
	if !ok {
		t.Fatalf("got %v", err)
	}
	if vm, _, actual, ok := f.VMBadPowerState(); !ok || vm != web || !actual.Is(xenapi.VMPowerStateHalted) {
		t.Fatalf("got %v", err)
	}
}

func TestPoolFailuresCarryXapiParameters(t *testing.T) {
	ctx := context.Background()
	tp := newTestPool(t, 1)
	c := tp.client(t)
	_, err := c.VM.GetRecord(ctx, "OpaqueRef:00000000-0000-0000-0000-000000000000")
	f, ok := xenapi.AsFailure(err)
	if class, h, ok2 := f.HandleInvalid(); !ok || !ok2 || class != "VM" || h != "OpaqueRef:00000000-0000-0000-0000-000000000000" {
		t.Fatalf("got %v", err)
	}
	db := xenapi.VMRef(tp.vms[1].Ref)
	if err := c.VM.AddToBlockedOperations(ctx, db, xenapi.VMOperationStart, "bootlock"); err != nil {
		t.Fatal(err)
	}
	err = c.VM.Start(ctx, db, false, false)
	f, _ = xenapi.AsFailure(err)
	if ref, code, ok := f.OperationBlocked(); !ok || ref != string(db) || code != "bootlock" {
		t.Fatalf("got %v", err)
	}
	if err := c.VM.RemoveFromBlockedOperations(ctx, db, xenapi.VMOperationStart); err != nil {
		t.Fatal(err)
	}
	vdis, _ := c.VM.GetVBDs(ctx, db)
	vdi, err := c.VBD.GetVDI(ctx, vdis[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := c.VDI.ResizeOnline(ctx, vdi, 16<<20); !errors.Is(err, xenapi.ErrMessageRemoved) {
		t.Fatalf("resize_online: %v", err)
	}
	if err := c.VDI.Resize(ctx, vdi, 16<<20); err != nil {
		t.Fatal(err)
	}
	if size, err := c.VDI.GetVirtualSize(ctx, vdi); err != nil || size != 16<<20 {
		t.Fatal(size, err)
	}
	if _, err := c.Call(ctx, "VM.no_such_call", db); !errors.Is(err, xenapi.ErrMessageMethodUnknown) {
		t.Fatalf("got %v", err)
	}
	if _, err := c.Call(ctx, "VM.get_record"); !errors.Is(err, xenapi.ErrMessageParameterCountMismatch) {
		t.Fatalf("got %v", err)
	}
}

func TestPoolVDISnapshotAndScan(t *testing.T) {
	ctx := context.Background()
	tp := newTestPool(t, 1)
	c := tp.client(t)
	vbds, err := c.VM.GetVBDs(ctx, xenapi.VMRef(tp.vms[0].Ref))
	if err != nil {
		t.Fatal(err)
	}
	vdi, _ := c.VBD.GetVDI(ctx, vbds[0])
	snap, err := c.VDI.Snapshot(ctx, vdi, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := c.VDI.GetRecord(ctx, snap)
	if err != nil || !rec.IsASnapshot || rec.SnapshotOf != vdi {
		t.Fatalf("%+v %v", rec, err)
	}
	if rec.SMConfig["vhd-parent"] == "" {
		t.Fatalf("snapshot has no vhd-parent: %v", rec.SMConfig)
	}
	sr, err := c.VDI.GetSR(ctx, vdi)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SR.Scan(ctx, sr); err != nil {
		t.Fatal(err)
	}
}

func TestPoolReloginAfterInjectedSessionInvalid(t *testing.T) {
	ctx := context.Background()
	tp := newTestPool(t, 1)
	c := tp.client(t)
	n := tp.CallCount("VM.get_all")
	tp.FailNth("VM.get_all", n+1, xenapi.CodeSessionInvalid, string(c.Session()))
	if _, err := c.VM.GetAll(ctx); err != nil {
		t.Fatal(err)
	}
	if got := tp.CallCount("session.login_with_password"); got != 2 {
		t.Fatalf("%d logins, want 2", got)
	}
}

func TestPoolEventFrom(t *testing.T) {
	ctx := context.Background()
	tp := newTestPool(t, 1)
	c := tp.client(t)
	b, err := c.Event.From(ctx, []string{"vm"}, "", 1)
	if err != nil {
		t.Fatal(err)
	}
	db := xenapi.VMRef(tp.vms[1].Ref)
	got := make(chan xenapi.EventBatch, 1)
	go func() {
		next, err := c.Event.From(ctx, []string{"vm/" + string(db)}, b.Token, 10)
		if err != nil {
			t.Error(err)
		}
		got <- next
	}()
	time.Sleep(50 * time.Millisecond)
	// Other calls go on while event.from waits.
	if err := c.VM.SetNameLabel(ctx, db, "db-renamed"); err != nil {
		t.Fatal(err)
	}
	next := <-got
	if len(next.Events) == 0 {
		t.Fatal("no event")
	}
	var rec xenapi.VMRecord
	ev := next.Events[len(next.Events)-1]
	if err := ev.DecodeSnapshot(&rec); err != nil || rec.NameLabel != "db-renamed" || ev.Ref != string(db) {
		t.Fatalf("event %+v: %v", ev, err)
	}
}

func TestPoolConcurrentCalls(t *testing.T) {
	ctx := context.Background()
	tp := newTestPool(t, 1)
	c := tp.client(t)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 8; j++ {
				if _, err := c.VM.GetRecord(ctx, xenapi.VMRef(tp.vms[j%2].Ref)); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if !strings.HasPrefix(string(c.Session()), "OpaqueRef:") {
		t.Fatal(c.Session())
	}
}

func TestPoolWaitTaskWithEvents(t *testing.T) {
	ctx := context.Background()
	tp := newTestPool(t, 1)
	c := tp.client(t, xenapi.WithTaskEvents())
	web := xenapi.VMRef(tp.vms[0].Ref)
	// Slow the shutdown down so that the wait sees the task pending first.
	tp.InjectFault(xenapitest.Fault{Method: "Async.VM.clean_shutdown", Delay: 100 * time.Millisecond})
	task, err := c.Async.VM.CleanShutdown(ctx, web)
	if err != nil {
		t.Fatal(err)
	}
	var progress []float64
	if _, err := c.WaitTask(ctx, task, func(p float64) { progress = append(progress, p) }); err != nil {
		t.Fatal(err)
	}
	if len(progress) == 0 || progress[len(progress)-1] != 1 {
		t.Fatalf("progress %v", progress)
	}
	if st, _ := c.VM.GetPowerState(ctx, web); !st.Is(xenapi.VMPowerStateHalted) {
		t.Fatal(st)
	}
	if tp.CallCount("task.get_record") != 0 || tp.CallCount("event.from") == 0 {
		t.Fatalf("task.get_record %d, event.from %d", tp.CallCount("task.get_record"), tp.CallCount("event.from"))
	}
	if _, err := c.Task.GetRecord(ctx, task); !errors.Is(err, xenapi.ErrHandleInvalid) {
		t.Fatalf("task not destroyed: %v", err)
	}
	// A failing task comes back as the Failure.
	task, err = c.Async.VM.CleanShutdown(ctx, web)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitTask(ctx, task, nil); !errors.Is(err, xenapi.ErrVMBadPowerState) {
		t.Fatalf("got %v", err)
	}
	// A task that does not exist.
	if _, err := c.WaitTask(ctx, "OpaqueRef:00000000-0000-0000-0000-000000000000", nil); !errors.Is(err, xenapi.ErrHandleInvalid) {
		t.Fatalf("got %v", err)
	}
}
