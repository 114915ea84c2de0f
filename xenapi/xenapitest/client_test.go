package xenapitest_test

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/xenflow/xenflow/xenapi"
	"github.com/xenflow/xenflow/xenapi/xenapitest"
)

// servedPool starts a pool of n hosts over HTTP and a xenapi client logged
// in through a member host (so the client follows HOST_IS_SLAVE).
func servedPool(t *testing.T, n int) (*xenapitest.Pool, *xenapi.Client) {
	t.Helper()
	p, err := xenapitest.NewPool(xenapitest.Options{Dir: t.TempDir(), Hosts: n})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	if _, err := p.Serve(""); err != nil {
		t.Fatal(err)
	}
	entry := p.Hosts()[n-1]
	c, err := xenapi.NewClient("http://" + entry.Address() + "/")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := c.Login(ctx, p.User(), p.Password(), "xenapitest"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return p, c
}

func TestClientAgainstPool(t *testing.T) {
	p, c := servedPool(t, 2)
	ctx := context.Background()
	if c.URL() != "http://"+p.Master().Address()+"/" {
		t.Fatalf("client did not follow HOST_IS_SLAVE: %s", c.URL())
	}
	vm, err := p.AddVM(xenapitest.VMSpec{Name: "web", Disks: []int64{8 << 20}, Running: true})
	if err != nil {
		t.Fatal(err)
	}

	recs, err := c.VM.GetAllRecords(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r, ok := recs[xenapi.VMRef(vm.Ref)]
	if !ok || r.NameLabel != "web" || r.PowerState != xenapi.VMPowerStateRunning || r.MemoryStaticMax != 1<<30 {
		t.Fatalf("record %+v", r)
	}

	// Snapshot the running VM's disk, keep writing, check both chains.
	before := bytes.Repeat([]byte{0xAB}, 4096)
	if err := p.WriteGuestDisk(vm.Ref, "0", 0, before); err != nil {
		t.Fatal(err)
	}
	snap, err := c.VDI.Snapshot(ctx, xenapi.VDIRef(vm.VDIs[0]), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.WriteGuestDisk(vm.Ref, "0", 0, bytes.Repeat([]byte{0xCD}, 4096)); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 4096)
	if err := p.ReadVDIAt(string(snap), got, 0); err != nil || !bytes.Equal(got, before) {
		t.Fatalf("snapshot content: %v", err)
	}

	// Async shutdown followed to success, with progress.
	p.InjectFault(xenapitest.Fault{Method: "Async.VM.clean_shutdown", Delay: 200 * time.Millisecond})
	task, err := c.Async.VM.CleanShutdown(ctx, xenapi.VMRef(vm.Ref))
	if err != nil {
		t.Fatal(err)
	}
	var progress []float64
	if _, err := c.WaitTask(ctx, task, func(f float64) { progress = append(progress, f) }); err != nil {
		t.Fatal(err)
	}
	if ps, _ := c.VM.GetPowerState(ctx, xenapi.VMRef(vm.Ref)); ps != xenapi.VMPowerStateHalted {
		t.Fatalf("power state %s", ps)
	}
	if len(progress) == 0 {
		t.Fatal("no progress reported")
	}

	// Typed failures with xapi's parameters.
	err = c.VM.CleanShutdown(ctx, xenapi.VMRef(vm.Ref))
	f, ok := xenapi.AsFailure(err)
	if !ok {
		t.Fatalf("got %v", err)
	}
	if v, exp, act, ok := f.VMBadPowerState(); !ok || string(v) != vm.Ref || exp != "running" || act != "halted" {
		t.Fatalf("VM_BAD_POWER_STATE %v", f.Params)
	}
	_, err = c.VM.GetRecord(ctx, "OpaqueRef:missing")
	if !errors.Is(err, xenapi.ErrHandleInvalid) {
		t.Fatalf("got %v", err)
	}
	if err := c.VM.SetBlockedOperations(ctx, xenapi.VMRef(vm.Ref), map[xenapi.VMOperation]string{"start": "rescue"}); err != nil {
		t.Fatal(err)
	}
	err = c.VM.Start(ctx, xenapi.VMRef(vm.Ref), false, false)
	if f, ok := xenapi.AsFailure(err); !ok || f.Code != xenapi.CodeOperationBlocked {
		t.Fatalf("got %v", err)
	} else if ref, code, ok := f.OperationBlocked(); !ok || string(ref) != vm.Ref || code != "rescue" {
		t.Fatalf("OPERATION_BLOCKED %v", f.Params)
	}

	// An older server's parameter count, seen by the client.
	_, err = c.Call(ctx, "VM.snapshot", vm.Ref)
	if f, ok := xenapi.AsFailure(err); !ok || f.Code != xenapi.CodeMessageParameterCountMismatch {
		t.Fatalf("got %v", err)
	}

	// The session dies on the server: the client logs in again.
	logins := p.CallCount("session.login_with_password")
	if _, err := p.Call(ctx, "session.logout", string(c.Session())); err != nil {
		t.Fatal(err)
	}
	if _, err := c.VM.GetAll(ctx); err != nil {
		t.Fatalf("no re-login: %v", err)
	}
	if p.CallCount("session.login_with_password") != logins+1 {
		t.Fatalf("logins %d -> %d", logins, p.CallCount("session.login_with_password"))
	}
}

func TestClientEventFromDoesNotBlock(t *testing.T) {
	p, c := servedPool(t, 1)
	ctx := context.Background()
	vm, err := p.AddVM(xenapitest.VMSpec{Name: "ev"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Event.From(ctx, []string{"vm"}, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var batch xenapi.EventBatch
	var ferr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		batch, ferr = c.Event.From(ctx, []string{"vm"}, b.Token, 30)
	}()
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	for i := 0; i < 20; i++ {
		if _, err := c.VM.GetRecord(ctx, xenapi.VMRef(vm.Ref)); err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("calls took %v while event.from waited", d)
	}
	if err := c.VM.SetNameLabel(ctx, xenapi.VMRef(vm.Ref), "ev-orig"); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if ferr != nil || len(batch.Events) != 1 || string(batch.Events[0].Ref) != vm.Ref {
		t.Fatalf("batch %+v, %v", batch, ferr)
	}
}

// TestClientConcurrentDelays: 8 calls that each take 200 ms run at the
// same time, not one after another (which would take 1.6 s).
func TestClientConcurrentDelays(t *testing.T) {
	p, c := servedPool(t, 1)
	ctx := context.Background()
	vm, err := p.AddVM(xenapitest.VMSpec{Name: "slow"})
	if err != nil {
		t.Fatal(err)
	}
	p.InjectFault(xenapitest.Fault{Method: "VM.get_record", Delay: 200 * time.Millisecond})
	start := time.Now()
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.VM.GetRecord(ctx, xenapi.VMRef(vm.Ref)); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if d := time.Since(start); d > 1200*time.Millisecond {
		t.Fatalf("8 delayed calls took %v", d)
	}
}
