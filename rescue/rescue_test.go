package rescue

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/compute/computetest"
	"github.com/xenflow/xenflow/statemachine"
)

const (
	testHost  = "compute1"
	testUUID  = "9f4c2d1e-0000-4000-8000-000000000001"
	testImage = "rescue-image"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// world is one instance on one fake host, a memory Store and an
// orchestrator.
type world struct {
	t        *testing.T
	clock    *computetest.Clock
	store    *compute.MemoryStore
	driver   *computetest.FakeDriver
	notifier *compute.RecordingNotifier
	o        *Orchestrator
	images   fakeImages
}

type fakeImages map[string]bool

func (f fakeImages) ImageExists(_ context.Context, _, ref string) (bool, error) { return f[ref], nil }

// newWorld builds the world with the instance in vm_state vm.
func newWorld(t *testing.T, vm statemachine.VMState) *world {
	t.Helper()
	w := &world{t: t, clock: computetest.NewClock(t0), driver: computetest.NewFakeDriver(),
		notifier: &compute.RecordingNotifier{}, images: fakeImages{testImage: true, "base-image": true}}
	w.store = compute.NewMemoryStore(compute.WithStoreClock(w.clock.Now))
	if err := w.driver.AddHost(computetest.HostConfig{Host: testHost, TotalUsableRAMMB: 8192, TotalUsableDiskGB: 100, VCPUsTotal: 8}); err != nil {
		t.Fatal(err)
	}
	power := statemachine.PowerRunning
	if vm == statemachine.VMStopped {
		power = statemachine.PowerShutdown
	}
	inst := &compute.Instance{UUID: testUUID, Name: "web1", Hostname: "web1", Host: testHost, Node: testHost,
		VMState: vm, PowerState: power, ImageRef: testImage, LaunchedAt: t0.Add(-time.Hour),
		Flavor: &compute.Flavor{ID: "m1.small", Name: "m1.small", MemoryMB: 2048, VCPUs: 1, RootGB: 20}}
	if err := w.store.CreateInstance(context.Background(), inst); err != nil {
		t.Fatal(err)
	}
	if err := w.driver.AddGuest(testHost, inst, power); err != nil {
		t.Fatal(err)
	}
	w.o = w.newOrchestrator("o1")
	return w
}

func (w *world) newOrchestrator(owner string) *Orchestrator {
	w.t.Helper()
	o, err := New(Config{Store: w.store, Driver: w.driver, Notifier: w.notifier, Images: w.images,
		Now: w.clock.Now, Rand: bytes.NewReader(bytes.Repeat([]byte{7, 200, 13, 99, 42}, 4096)),
		Owner: owner, LeaseTTL: time.Minute, RescueTimeout: time.Hour, Attempts: 1})
	if err != nil {
		w.t.Fatal(err)
	}
	return o
}

func (w *world) instance() *compute.Instance {
	w.t.Helper()
	inst, err := w.store.GetInstance(context.Background(), testUUID)
	if err != nil {
		w.t.Fatal(err)
	}
	return inst
}

// guests returns the host's guests by name.
func (w *world) guests() map[string]computetest.Guest {
	out := map[string]computetest.Guest{}
	for _, g := range w.driver.Guests(testHost) {
		out[g.Name] = g
	}
	return out
}

// rootDigest is the content digest of the original root disk as created.
func (w *world) rootVDI() computetest.VDI {
	w.t.Helper()
	g := w.guests()["web1"]
	for _, v := range w.driver.VDIs(testHost) {
		if v.UUID == g.VDIs[0] {
			return v
		}
	}
	w.t.Fatal("original root disk gone")
	return computetest.VDI{}
}

// checkInvariants asserts what every rescue or unrescue must leave,
// whatever failed: either a working rescue (vm_state rescued, a running
// rescue guest with the original root as its second disk, the original
// bootlocked) or the original guest startable and not bootlocked, with no
// rescue guest; the original root disk never lost; no orphan disk; no
// task left.
func (w *world) checkInvariants(root computetest.VDI, pre statemachine.VMState) {
	w.t.Helper()
	inst := w.instance()
	if inst.TaskState != statemachine.TaskNone {
		w.t.Fatalf("task_state %s left", inst.TaskState)
	}
	gs := w.guests()
	orig, ok := gs["web1"]
	if !ok {
		w.t.Fatal("original guest gone")
	}
	if got := w.rootVDI(); got.SHA256 != root.SHA256 {
		w.t.Fatalf("original root disk changed: %s != %s", got.SHA256, root.SHA256)
	}
	rescue, rescued := gs["web1"+computetest.RescueSuffix]
	switch inst.VMState {
	case statemachine.VMRescued:
		if !rescued || rescue.Power != statemachine.PowerRunning || len(rescue.VDIs) < 2 || rescue.VDIs[1] != orig.VDIs[0] {
			w.t.Fatalf("rescued without a running rescue guest holding the original root: %+v", rescue)
		}
		if !orig.Bootlocked {
			w.t.Fatal("rescued but the original is not bootlocked")
		}
	case statemachine.VMError:
		if orig.Bootlocked && !rescued {
			w.t.Fatal("error with a bootlocked original and no rescue guest")
		}
	default:
		if rescued {
			w.t.Fatalf("vm_state %s with a rescue guest left", inst.VMState)
		}
		if orig.Bootlocked {
			w.t.Fatalf("vm_state %s with the original bootlocked", inst.VMState)
		}
		if inst.VMState != pre && inst.VMState != statemachine.VMActive {
			w.t.Fatalf("vm_state %s, want %s or active", inst.VMState, pre)
		}
		wantPower := statemachine.PowerRunning
		if inst.VMState == statemachine.VMStopped {
			wantPower = statemachine.PowerShutdown
		}
		if orig.Power != wantPower {
			w.t.Fatalf("vm_state %s with the original %s", inst.VMState, orig.Power)
		}
	}
	if o := w.driver.Orphans(testHost); len(o) != 0 {
		w.t.Fatalf("orphan disks: %+v", o)
	}
}

func TestRescueUnrescue(t *testing.T) {
	for _, vm := range []statemachine.VMState{statemachine.VMActive, statemachine.VMStopped, statemachine.VMError} {
		t.Run(string(vm), func(t *testing.T) {
			w := newWorld(t, vm)
			root := w.rootVDI()
			ctx := context.Background()
			w.clock.Advance(time.Minute)
			res, err := w.o.Rescue(ctx, RescueRequest{InstanceUUID: testUUID, RequestID: "req-1"})
			if err != nil {
				t.Fatal(err)
			}
			checkPassword(t, res.AdminPassword, DefaultPasswordLength)
			inst := w.instance()
			if inst.VMState != statemachine.VMRescued || !inst.LaunchedAt.Equal(w.clock.Now()) {
				t.Fatalf("after rescue: %s launched_at %v", inst.FlowState(nil), inst.LaunchedAt)
			}
			if _, ok := inst.SystemMetadata[SysMetaRescueImageRef]; ok {
				t.Fatal("rescue image ref left in system metadata")
			}
			for k, v := range inst.SystemMetadata {
				if strings.Contains(v, res.AdminPassword) {
					t.Fatalf("password stored in system_metadata[%s]", k)
				}
			}
			w.checkInvariants(root, vm)

			inst, err = w.o.Unrescue(ctx, UnrescueRequest{InstanceUUID: testUUID, RequestID: "req-2"})
			if err != nil {
				t.Fatal(err)
			}
			if inst.VMState != statemachine.VMActive || inst.PowerState != statemachine.PowerRunning {
				t.Fatalf("after unrescue: %s %s", inst.FlowState(nil), inst.PowerState)
			}
			w.checkInvariants(root, vm)
			wantNotes := []statemachine.Notification{statemachine.NotifyRescueStart, statemachine.NotifyExists,
				statemachine.NotifyRescueEnd, statemachine.NotifyUnrescueStart, statemachine.NotifyUnrescueEnd}
			if got := w.notifier.EventTypes(); fmt.Sprint(got) != fmt.Sprint(wantNotes) {
				t.Fatalf("notifications %v, want %v", got, wantNotes)
			}
			actions, err := w.store.ListActions(ctx, testUUID)
			if err != nil {
				t.Fatal(err)
			}
			if len(actions) != 2 || actions[0].Action != statemachine.ActionRescue || actions[1].Action != statemachine.ActionUnrescue ||
				actions[0].FinishTime.IsZero() || actions[1].FinishTime.IsZero() || len(actions[0].Events) != 1 ||
				actions[0].Events[0].Result != compute.EventResultSuccess {
				t.Fatalf("actions: %+v", actions)
			}
		})
	}
}

func checkPassword(t *testing.T, pw string, n int) {
	t.Helper()
	if len(pw) != n {
		t.Fatalf("password %d symbols, want %d", len(pw), n)
	}
	for _, g := range symbolGroups {
		if !strings.ContainsAny(pw, g) {
			t.Fatalf("password lacks a symbol of %q", g)
		}
	}
	all := symbolGroups[0] + symbolGroups[1] + symbolGroups[2]
	for _, r := range pw {
		if !strings.ContainsRune(all, r) {
			t.Fatalf("password symbol %q outside Nova's symbols", r)
		}
	}
}

func TestRescueImage(t *testing.T) {
	tests := []struct {
		name      string
		request   string
		base      string
		imageRef  string
		want      string
		wantError bool
	}{
		{name: "request first", request: testImage, base: "base-image", imageRef: "other", want: testImage},
		{name: "then image_base_image_ref", base: "base-image", imageRef: testImage, want: "base-image"},
		{name: "then image_ref", imageRef: testImage, want: testImage},
		{name: "none", wantError: true},
		{name: "missing image", request: "nope", wantError: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, statemachine.VMActive)
			inst := w.instance()
			inst.ImageRef = tt.imageRef
			if tt.base != "" {
				inst.SystemMetadata = map[string]string{compute.SysMetaImageBaseImageRef: tt.base}
			}
			got, err := w.o.rescueImage(context.Background(), inst, tt.request)
			var nf *ImageNotFoundError
			if tt.wantError != errors.As(err, &nf) || got != tt.want {
				t.Fatalf("rescueImage = %q, %v; want %q (error %v)", got, err, tt.want, tt.wantError)
			}
		})
	}
}

// TestRescueBadInput: each refusal is typed and changes nothing: no
// store write, no driver call.
func TestRescueBadInput(t *testing.T) {
	tests := []struct {
		name   string
		change func(*compute.Instance)
		req    RescueRequest
		is     error
		as     func(error) bool
	}{
		{name: "unknown instance", req: RescueRequest{InstanceUUID: "nope"}, is: compute.ErrNotFound},
		{name: "locked", change: func(i *compute.Instance) { i.Locked = true }, is: statemachine.ErrInvalidState},
		{name: "rescued", change: func(i *compute.Instance) { i.VMState = statemachine.VMRescued }, is: statemachine.ErrInvalidState},
		{name: "mid-operation", change: func(i *compute.Instance) { i.TaskState = statemachine.TaskResizePrep }, is: statemachine.ErrInvalidState},
		{name: "never launched", change: func(i *compute.Instance) { i.LaunchedAt = time.Time{} }, is: statemachine.ErrInvalidState},
		{name: "no image", change: func(i *compute.Instance) { i.ImageRef = "" },
			as: func(err error) bool { var e *ImageNotFoundError; return errors.As(err, &e) }},
		{name: "missing image", req: RescueRequest{ImageRef: "gone"},
			as: func(err error) bool { var e *ImageNotFoundError; return errors.As(err, &e) && e.ImageRef == "gone" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, statemachine.VMActive)
			ctx := context.Background()
			if tt.change != nil {
				inst := w.instance()
				tt.change(inst)
				if err := w.store.SaveInstance(ctx, inst); err != nil {
					t.Fatal(err)
				}
			}
			before := w.instance()
			if tt.req.InstanceUUID == "" {
				tt.req.InstanceUUID = testUUID
			}
			_, err := w.o.Rescue(ctx, tt.req)
			if err == nil || (tt.is != nil && !errors.Is(err, tt.is)) || (tt.as != nil && !tt.as(err)) {
				t.Fatalf("Rescue = %v", err)
			}
			if after := w.instance(); !after.UpdatedAt.Equal(before.UpdatedAt) || after.FlowState(nil) != before.FlowState(nil) {
				t.Fatalf("instance changed: %s -> %s", before.FlowState(nil), after.FlowState(nil))
			}
			if n := len(w.driver.Calls()); n != 0 {
				t.Fatalf("%d driver calls", n)
			}
			if a, _ := w.store.ListActions(ctx, testUUID); len(a) != 0 {
				t.Fatalf("action recorded: %+v", a)
			}
		})
	}
}

func TestUnrescueBadInput(t *testing.T) {
	w := newWorld(t, statemachine.VMActive)
	_, err := w.o.Unrescue(context.Background(), UnrescueRequest{InstanceUUID: testUUID})
	if !errors.Is(err, statemachine.ErrInvalidState) {
		t.Fatalf("unrescue of an active instance: %v", err)
	}
	if n := len(w.driver.Calls()); n != 0 {
		t.Fatalf("%d driver calls", n)
	}
}

// rescueSteps are the points a fault can hit in the fake driver's Rescue
// ("" is the call's start) and Unrescue.
var (
	rescueSteps   = []string{"", "bootlock", "create-rescue", "start-rescue"}
	unrescueSteps = []string{""}
)

// TestRescueFaultSweep fails every step of the driver's rescue once, then
// also the restoring unrescue: the invariants hold after each, the error
// is typed, and a fault is recorded.
func TestRescueFaultSweep(t *testing.T) {
	for _, vm := range []statemachine.VMState{statemachine.VMActive, statemachine.VMStopped} {
		for _, step := range rescueSteps {
			for _, restoreFails := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/%q/restore-fails=%v", vm, step, restoreFails), func(t *testing.T) {
					w := newWorld(t, vm)
					root := w.rootVDI()
					ctx := context.Background()
					w.driver.InjectFault(computetest.Fault{Method: computetest.MethodRescue, Step: step, Nth: 1})
					if restoreFails {
						w.driver.InjectFault(computetest.Fault{Method: computetest.MethodUnrescue, Nth: 1})
					}
					_, err := w.o.Rescue(ctx, RescueRequest{InstanceUUID: testUUID})
					var nr *NotRescuableError
					if !errors.As(err, &nr) || nr.RolledBack == restoreFails || !errors.Is(err, computetest.ErrInjected) {
						t.Fatalf("Rescue = %v", err)
					}
					want := vm
					if restoreFails {
						want = statemachine.VMError
					}
					if got := w.instance().VMState; got != want {
						t.Fatalf("vm_state %s, want %s", got, want)
					}
					w.checkInvariants(root, vm)
					if f, _ := w.store.ListFaults(ctx, testUUID); len(f) == 0 {
						t.Fatal("no fault recorded")
					}
					if restoreFails {
						return
					}
					// The instance can be rescued again once the fault is gone.
					w.driver.ClearFaults()
					if _, err := w.o.Rescue(ctx, RescueRequest{InstanceUUID: testUUID}); err != nil {
						t.Fatal(err)
					}
					w.checkInvariants(root, vm)
				})
			}
		}
	}
}

func TestUnrescueFaultSweep(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want statemachine.VMState
	}{
		{name: "rolled back", err: &compute.InstanceFaultRollback{Err: computetest.ErrInjected}, want: statemachine.VMRescued},
		{name: "not implemented", err: fmt.Errorf("unrescue: %w", compute.ErrNotImplemented), want: statemachine.VMActive},
		{name: "other", err: computetest.ErrInjected, want: statemachine.VMError},
	}
	for _, tt := range tests {
		for _, step := range unrescueSteps {
			t.Run(tt.name+"/"+step, func(t *testing.T) {
				w := newWorld(t, statemachine.VMActive)
				ctx := context.Background()
				if _, err := w.o.Rescue(ctx, RescueRequest{InstanceUUID: testUUID}); err != nil {
					t.Fatal(err)
				}
				w.driver.InjectFault(computetest.Fault{Method: computetest.MethodUnrescue, Step: step, Nth: 1, Err: tt.err})
				_, err := w.o.Unrescue(ctx, UnrescueRequest{InstanceUUID: testUUID})
				var ue *UnrescueError
				if tt.want == statemachine.VMActive {
					if !errors.As(err, &ue) && err != nil {
						t.Fatalf("Unrescue = %v", err)
					}
				} else if !errors.As(err, &ue) || ue.StillRescued != (tt.want == statemachine.VMRescued) {
					t.Fatalf("Unrescue = %v", err)
				}
				if got := w.instance(); got.VMState != tt.want || got.TaskState != statemachine.TaskNone {
					t.Fatalf("after a failed unrescue: %s, want vm_state %s", got.FlowState(nil), tt.want)
				}
				if f, _ := w.store.ListFaults(ctx, testUUID); len(f) == 0 {
					t.Fatal("no fault recorded")
				}
			})
		}
	}
}

// TestRetry: with the default attempts, a transient driver failure is
// retried and the operation finishes.
func TestRetry(t *testing.T) {
	w := newWorld(t, statemachine.VMActive)
	root := w.rootVDI()
	o, err := New(Config{Store: w.store, Driver: w.driver, Now: w.clock.Now, RetryDelay: -1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	w.driver.InjectFault(computetest.Fault{Method: computetest.MethodRescue, Step: "create-rescue", Nth: 1})
	w.driver.InjectFault(computetest.Fault{Method: computetest.MethodUnrescue, Nth: 1})
	if _, err := o.Rescue(ctx, RescueRequest{InstanceUUID: testUUID}); err != nil {
		t.Fatalf("Rescue with one transient failure: %v", err)
	}
	w.checkInvariants(root, statemachine.VMActive)
	if _, err := o.Unrescue(ctx, UnrescueRequest{InstanceUUID: testUUID}); err != nil {
		t.Fatalf("Unrescue with one transient failure: %v", err)
	}
	w.checkInvariants(root, statemachine.VMActive)
	if n := w.driver.CallCount(computetest.MethodRescue); n != 2 {
		t.Fatalf("%d Rescue calls, want 2", n)
	}
}

func TestPoll(t *testing.T) {
	w := newWorld(t, statemachine.VMActive)
	ctx := context.Background()
	if _, err := w.o.Rescue(ctx, RescueRequest{InstanceUUID: testUUID}); err != nil {
		t.Fatal(err)
	}
	w.clock.Advance(59 * time.Minute)
	res, err := w.o.Poll(ctx)
	if err != nil || len(res.Unrescued) != 0 {
		t.Fatalf("Poll before the timeout = %+v, %v", res, err)
	}
	w.clock.Advance(time.Minute)
	res, err = w.o.Poll(ctx)
	if err != nil || len(res.Unrescued) != 1 || res.Unrescued[0] != testUUID {
		t.Fatalf("Poll at the timeout = %+v, %v", res, err)
	}
	if got := w.instance().VMState; got != statemachine.VMActive {
		t.Fatalf("vm_state %s after the rescue timeout", got)
	}
}

func TestPollOff(t *testing.T) {
	w := newWorld(t, statemachine.VMActive)
	o, err := New(Config{Store: w.store, Driver: w.driver, Now: w.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := o.Rescue(ctx, RescueRequest{InstanceUUID: testUUID}); err != nil {
		t.Fatal(err)
	}
	w.clock.Advance(1000 * time.Hour)
	if res, err := o.Poll(ctx); err != nil || len(res.Unrescued) != 0 {
		t.Fatalf("Poll with rescue_timeout 0 = %+v, %v", res, err)
	}
}

func TestNewRefuses(t *testing.T) {
	store, driver := compute.NewMemoryStore(), computetest.NewFakeDriver()
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no store", Config{Driver: driver}},
		{"no driver", Config{Store: store}},
		{"negative ttl", Config{Store: store, Driver: driver, LeaseTTL: -1}},
		{"short password", Config{Store: store, Driver: driver, PasswordLength: 2}},
		{"negative timeout", Config{Store: store, Driver: driver, RescueTimeout: -1}},
		{"negative attempts", Config{Store: store, Driver: driver, Attempts: -1}},
	}
	for _, tt := range tests {
		if _, err := New(tt.cfg); !errors.Is(err, ErrRescue) {
			t.Errorf("%s: New = %v", tt.name, err)
		}
	}
}
