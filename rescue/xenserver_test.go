package rescue_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/compute/computetest"
	"github.com/xenflow/xenflow/rescue"
	sm "github.com/xenflow/xenflow/statemachine"
	"github.com/xenflow/xenflow/xenapi"
	"github.com/xenflow/xenflow/xenapi/xenapitest"
	"github.com/xenflow/xenflow/xenserver"
)

const (
	xInstance = "5d1c7a2e-8f3b-4a6d-9e0c-2b4f6a8c0e1d"
	xName     = "instance-5d1c7a2e"
	xImage    = "rescue-image"
	xData     = "the instance's own data"
)

// xworld is an instance on a simulated XenServer pool served over
// HTTP on 127.0.0.1, driven by the real driver.
type xworld struct {
	t      *testing.T
	pool   *xenapitest.Pool
	client *xenapi.Client
	store  *compute.MemoryStore
	clock  *computetest.Clock
	driver *xenserver.Driver
	inst   *compute.Instance
}

func newXWorld(t *testing.T) *xworld {
	t.Helper()
	pool, err := xenapitest.NewPool(xenapitest.Options{Hosts: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Close() })
	url, err := pool.Serve("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	w := &xworld{t: t, pool: pool, clock: computetest.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))}
	if w.client, err = xenapi.NewClient(url); err != nil {
		t.Fatal(err)
	}
	if err := w.client.Login(ctx, pool.User(), pool.Password(), "test"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.client.Close(context.Background()) })
	host := pool.Master()
	vm, err := pool.AddVM(xenapitest.VMSpec{Name: xName, Disks: []int64{4 << 20}, Running: true,
		OtherConfig: map[string]string{xenserver.KeyNovaUUID: xInstance}})
	if err != nil {
		t.Fatal(err)
	}
	if err := pool.WriteGuestDisk(vm.Ref, "0", 0, []byte(xData)); err != nil {
		t.Fatal(err)
	}
	if _, err := w.client.VDI.Create(ctx, xenapi.VDIRecord{NameLabel: "rescue image", SR: xenapi.SRRef(host.SR()),
		VirtualSize: 1 << 20, Type: "user", OtherConfig: map[string]string{xenserver.KeyImageID: xImage}}); err != nil {
		t.Fatal(err)
	}
	inv := xenserver.Inventory{
		Pools: map[string]xenserver.PoolEndpoint{"p": {URL: url, User: pool.User(), Password: xenserver.Password(pool.Password())}},
		Hosts: map[string]xenserver.HostEntry{host.Name(): {Pool: "p", XenServerHost: host.UUID(), SR: host.SRUUID()}},
	}
	if w.driver, err = xenserver.New(xenserver.Config{Inventory: inv}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.driver.Close(context.Background()) })
	w.store = compute.NewMemoryStore(compute.WithStoreClock(w.clock.Now))
	w.inst = &compute.Instance{UUID: xInstance, Name: xName, Hostname: "guest", Host: host.Name(), Node: host.Name(),
		VMState: sm.VMActive, PowerState: sm.PowerRunning, ImageRef: xImage, LaunchedAt: w.clock.Now(),
		Flavor: &compute.Flavor{ID: "f", MemoryMB: 1024, VCPUs: 1, RootGB: 1}}
	if err := w.store.CreateInstance(ctx, w.inst); err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *xworld) orchestrator(store compute.Store, owner string) *rescue.Orchestrator {
	w.t.Helper()
	o, err := rescue.New(rescue.Config{Store: store, Driver: w.driver, Images: w.driver, Now: w.clock.Now, Owner: owner,
		LeaseTTL: time.Minute, RetryDelay: -1})
	if err != nil {
		w.t.Fatal(err)
	}
	return o
}

// vmNamed returns the VMs named name with their records.
func (w *xworld) vmNamed(name string) map[xenapi.VMRef]xenapi.VMRecord {
	w.t.Helper()
	ctx := context.Background()
	refs, err := w.client.VM.GetByNameLabel(ctx, name)
	if err != nil {
		w.t.Fatal(err)
	}
	out := map[xenapi.VMRef]xenapi.VMRecord{}
	for _, ref := range refs {
		rec, err := w.client.VM.GetRecord(ctx, ref)
		if err != nil {
			w.t.Fatal(err)
		}
		out[ref] = rec
	}
	return out
}

// disk returns the VDI at a VM's userdevice.
func (w *xworld) disk(vm xenapi.VMRef, userdevice string) xenapi.VDIRef {
	w.t.Helper()
	ctx := context.Background()
	vbds, err := w.client.VM.GetVBDs(ctx, vm)
	if err != nil {
		w.t.Fatal(err)
	}
	for _, vbd := range vbds {
		rec, err := w.client.VBD.GetRecord(ctx, vbd)
		if err != nil {
			w.t.Fatal(err)
		}
		if rec.Userdevice == userdevice {
			return rec.VDI
		}
	}
	w.t.Fatalf("VM %s has no disk at userdevice %s", vm, userdevice)
	return ""
}

// check asserts the invariants of every end: a working rescue while the
// instance is rescued (one running rescue VM with the original root at
// userdevice 1, the original halted and bootlocked), otherwise no rescue VM
// and no bootlock with the original running; the original's data intact;
// no disk beyond the root, the image and a rescue VM's own root.
func (w *xworld) check() sm.VMState {
	w.t.Helper()
	ctx := context.Background()
	inst, err := w.store.GetInstance(ctx, xInstance)
	if err != nil {
		w.t.Fatal(err)
	}
	if inst.TaskState != sm.TaskNone {
		w.t.Fatalf("task_state %s left", inst.TaskState)
	}
	origs := w.vmNamed(xName)
	if len(origs) != 1 {
		w.t.Fatalf("%d VMs named %s", len(origs), xName)
	}
	var ref xenapi.VMRef
	var orig xenapi.VMRecord
	for ref, orig = range origs {
	}
	root := w.disk(ref, "0")
	got := make([]byte, len(xData))
	if err := w.pool.ReadVDIAt(string(root), got, 0); err != nil || string(got) != xData {
		w.t.Fatalf("the original root disk lost its data: %q, %v", got, err)
	}
	_, locked := orig.BlockedOperations["start"]
	rescues := w.vmNamed(xName + "-rescue")
	wantDisks := 2
	switch inst.VMState {
	case sm.VMRescued:
		if len(rescues) != 1 || !locked {
			w.t.Fatalf("rescued with %d rescue VMs, bootlocked=%v", len(rescues), locked)
		}
		for rref, r := range rescues {
			if !r.PowerState.Is(xenapi.VMPowerStateRunning) || w.disk(rref, "1") != root {
				w.t.Fatalf("rescue VM %s: %s, userdevice 1 is not the original root", r.UUID, r.PowerState)
			}
		}
		wantDisks = 3
	case sm.VMActive:
		if len(rescues) != 0 || locked || !orig.PowerState.Is(xenapi.VMPowerStateRunning) {
			w.t.Fatalf("active with %d rescue VMs, bootlocked=%v, original %s", len(rescues), locked, orig.PowerState)
		}
	default:
		w.t.Fatalf("vm_state %s", inst.VMState)
	}
	vdis, err := w.client.VDI.GetAllRecords(ctx)
	if err != nil {
		w.t.Fatal(err)
	}
	n := 0
	for _, v := range vdis {
		if v.Managed && !v.IsASnapshot {
			n++
		}
	}
	if n != wantDisks {
		w.t.Fatalf("%d disks in the pool, want %d (an orphan, or a disk lost)", n, wantDisks)
	}
	return inst.VMState
}

// recordCalls returns the XenAPI calls op makes on a clean world.
func recordCalls(t *testing.T, prepare, op func(*xworld) error) []xenapitest.CallRecord {
	t.Helper()
	w := newXWorld(t)
	if err := prepare(w); err != nil {
		t.Fatal(err)
	}
	w.pool.ResetCalls()
	if err := op(w); err != nil {
		t.Fatal(err)
	}
	return w.pool.Calls()
}

func rescueOp(w *xworld) error {
	_, err := w.orchestrator(w.store, "o1").Rescue(context.Background(), rescue.RescueRequest{InstanceUUID: xInstance})
	return err
}

func unrescueOp(w *xworld) error {
	_, err := w.orchestrator(w.store, "o1").Unrescue(context.Background(), rescue.UnrescueRequest{InstanceUUID: xInstance})
	return err
}

func nothing(*xworld) error { return nil }

// TestXenServerFaultSweep fails every XenAPI call of a rescue and of an
// unrescue once, on the real driver: the operation ends done (a retry
// finished it) or rolled back, the invariants hold, and the instance can
// then be rescued and unrescued cleanly.
func TestXenServerFaultSweep(t *testing.T) {
	for _, tc := range []struct {
		name    string
		prepare func(*xworld) error
		op      func(*xworld) error
	}{{"rescue", nothing, rescueOp}, {"unrescue", rescueOp, unrescueOp}} {
		calls := recordCalls(t, tc.prepare, tc.op)
		if len(calls) < 5 {
			t.Fatalf("%s made %d XenAPI calls", tc.name, len(calls))
		}
		for _, c := range calls {
			t.Run(fmt.Sprintf("%s/%s#%d", tc.name, c.Method, c.N), func(t *testing.T) {
				w := newXWorld(t)
				if err := tc.prepare(w); err != nil {
					t.Fatal(err)
				}
				w.pool.FailNth(c.Method, c.N, "INTERNAL_ERROR", "injected")
				_ = tc.op(w) // a typed failure or a retried success; check says which end is right
				end := w.check()
				w.pool.ClearFaults()
				// Whatever end the fault left, the instance rescues and
				// unrescues cleanly afterwards.
				ops := []func(*xworld) error{rescueOp, unrescueOp}
				if end == sm.VMRescued {
					ops = []func(*xworld) error{unrescueOp, rescueOp, unrescueOp}
				}
				for _, op := range ops {
					if err := op(w); err != nil {
						t.Fatalf("after the fault: %v", err)
					}
					w.check()
				}
			})
		}
	}
}

// TestXenServerCrashSweep stops the orchestrator after every step it
// persists and at every XenAPI call, then resumes with a new one.
func TestXenServerCrashSweep(t *testing.T) {
	for _, tc := range []struct {
		name    string
		prepare func(*xworld) error
		req     func(*rescue.Orchestrator, context.Context) error
	}{
		{"rescue", nothing, func(o *rescue.Orchestrator, ctx context.Context) error {
			_, err := o.Rescue(ctx, rescue.RescueRequest{InstanceUUID: xInstance})
			return err
		}},
		{"unrescue", rescueOp, func(o *rescue.Orchestrator, ctx context.Context) error {
			_, err := o.Unrescue(ctx, rescue.UnrescueRequest{InstanceUUID: xInstance})
			return err
		}},
	} {
		calls := recordCalls(t, tc.prepare, func(w *xworld) error { return tc.req(w.orchestrator(w.store, "o1"), context.Background()) })
		points := []string{"step-1", "step-2"}
		for _, c := range calls {
			points = append(points, fmt.Sprintf("%s#%d", c.Method, c.N))
		}
		for i, point := range points {
			t.Run(tc.name+"/"+point, func(t *testing.T) {
				w := newXWorld(t)
				if err := tc.prepare(w); err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				store := compute.Store(w.store)
				if i < 2 {
					store = &cancelAfter{Store: w.store, n: i + 1, cancel: cancel}
				} else {
					c := calls[i-2]
					w.pool.InjectFault(xenapitest.Fault{Method: c.Method, N: c.N, Delay: 20 * time.Millisecond})
					go func() {
						for w.pool.CallCount(c.Method) < c.N && ctx.Err() == nil {
							time.Sleep(time.Millisecond)
						}
						cancel()
					}()
				}
				_ = tc.req(w.orchestrator(store, "o1"), ctx)
				w.pool.ClearFaults()
				w.clock.Advance(2 * time.Minute)
				if err := w.orchestrator(w.store, "o2").Resume(context.Background()); err != nil {
					t.Fatalf("Resume: %v", err)
				}
				w.check()
			})
		}
	}
}

// cancelAfter cancels after its n-th successful Transition.
type cancelAfter struct {
	compute.Store
	n, seen int
	cancel  context.CancelFunc
}

func (s *cancelAfter) Transition(ctx context.Context, req compute.TransitionRequest) (*compute.Instance, *compute.Migration, error) {
	inst, mig, err := s.Store.Transition(ctx, req)
	if err == nil {
		if s.seen++; s.seen == s.n {
			s.cancel()
		}
	}
	return inst, mig, err
}

// TestXenServerRescueNameTaken: a VM that is not the instance's holds the
// name <name>-rescue: the rescue is refused with the driver's typed error,
// the instance is as it was and the other VM is untouched.
func TestXenServerRescueNameTaken(t *testing.T) {
	w := newXWorld(t)
	other, err := w.pool.AddVM(xenapitest.VMSpec{Name: xName + "-rescue", Disks: []int64{1 << 20}, Running: true})
	if err != nil {
		t.Fatal(err)
	}
	err = rescueOp(w)
	var taken *xenserver.RescueExistsError
	if !errors.As(err, &taken) || taken.VM != other.UUID {
		t.Fatalf("Rescue = %v", err)
	}
	inst, err := w.store.GetInstance(context.Background(), xInstance)
	if err != nil || inst.FlowState(nil) != (sm.FlowState{VM: sm.VMActive, Task: sm.TaskNone}) {
		t.Fatalf("instance %s, %v", inst.FlowState(nil), err)
	}
	rec, err := w.client.VM.GetRecord(context.Background(), xenapi.VMRef(other.Ref))
	if err != nil || !rec.PowerState.Is(xenapi.VMPowerStateRunning) {
		t.Fatalf("the other VM: %s, %v", rec.PowerState, err)
	}
	for _, orig := range w.vmNamed(xName) {
		if _, locked := orig.BlockedOperations["start"]; locked || !orig.PowerState.Is(xenapi.VMPowerStateRunning) {
			t.Fatalf("the original: %s, bootlocked=%v", orig.PowerState, locked)
		}
	}
}

// TestXenServerMissingImage: a rescue image no pool holds is refused
// before anything changes: no step written, no VM touched.
func TestXenServerMissingImage(t *testing.T) {
	w := newXWorld(t)
	ctx := context.Background()
	w.pool.ResetCalls()
	_, err := w.orchestrator(w.store, "o1").Rescue(ctx, rescue.RescueRequest{InstanceUUID: xInstance, ImageRef: "no-such-image"})
	var nf *rescue.ImageNotFoundError
	if !errors.As(err, &nf) || nf.ImageRef != "no-such-image" {
		t.Fatalf("Rescue = %v", err)
	}
	inst, err := w.store.GetInstance(ctx, xInstance)
	if err != nil || !inst.UpdatedAt.Equal(w.inst.UpdatedAt) || inst.FlowState(nil) != w.inst.FlowState(nil) {
		t.Fatalf("instance changed: %s, %v", inst.FlowState(nil), err)
	}
	for _, c := range w.pool.Calls() {
		if !strings.Contains(c.Method, "get_") && c.Method != "session.login_with_password" {
			t.Fatalf("a missing image made the call %s", c)
		}
	}
}
