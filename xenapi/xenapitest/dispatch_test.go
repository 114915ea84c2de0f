package xenapitest

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestDispatcherErrors(t *testing.T) {
	p := newTestPool(t, Options{Hosts: 2})
	s := login(t, p)
	vm, err := p.AddVM(VMSpec{Name: "a"})
	if err != nil {
		t.Fatal(err)
	}
	bad := "OpaqueRef:00000000-0000-0000-0000-000000000000"
	tests := []struct {
		name   string
		method string
		params []any
		code   string
		want   []string
	}{
		{"unknown method", "VM.frobnicate", []any{s}, ErrMessageMethodUnknown, []string{"VM.frobnicate"}},
		{"unknown async method", "Async.VM.frobnicate", []any{s}, ErrMessageMethodUnknown, []string{"VM.frobnicate"}},
		{"too few", "VM.get_record", []any{s}, ErrMessageParameterCountMismatch, []string{"VM.get_record", "1", "0"}},
		{"too many", "VM.get_record", []any{s, vm.Ref, "x"}, ErrMessageParameterCountMismatch, []string{"VM.get_record", "1", "2"}},
		{"no session at all", "VM.get_all", nil, ErrMessageParameterCountMismatch, []string{"VM.get_all", "0", "-1"}},
		{"defaulted param counts", "VM.snapshot", []any{s, vm.Ref}, ErrMessageParameterCountMismatch, []string{"VM.snapshot", "2", "1"}},
		{"login too few", "session.login_with_password", []any{"root"}, ErrMessageParameterCountMismatch, []string{"session.login_with_password", "2", "1"}},
		{"start needs all three", "VM.start", []any{s, vm.Ref, false}, ErrMessageParameterCountMismatch, []string{"VM.start", "3", "2"}},
		{"bad session", "VM.get_all", []any{"OpaqueRef:nope"}, ErrSessionInvalid, []string{"OpaqueRef:nope"}},
		{"count before session", "VM.get_record", []any{"OpaqueRef:nope"}, ErrMessageParameterCountMismatch, []string{"VM.get_record", "1", "0"}},
		{"bad ref", "VM.get_record", []any{s, bad}, ErrHandleInvalid, []string{"VM", bad}},
		{"ref of another class", "VDI.get_record", []any{s, vm.Ref}, ErrHandleInvalid, []string{"VDI", vm.Ref}},
		{"bad uuid", "VM.get_by_uuid", []any{s, "nope"}, ErrUUIDInvalid, []string{"VM", "nope"}},
		{"bad password", "session.login_with_password", []any{"root", "wrong"}, ErrSessionAuthenticationFailed, nil},
		{"wrong type", "VM.get_record", []any{s, int64(3)}, ErrFieldTypeError, []string{"self"}},
		{"removed", "VDI.resize_online", []any{s, bad, "1"}, ErrMessageRemoved, nil},
		{"set RO field", "VM.set_power_state", []any{s, vm.Ref, "Running"}, ErrMessageMethodUnknown, []string{"VM.set_power_state"}},
		{"bad enum", "VM.set_actions_after_crash", []any{s, vm.Ref, "explode"}, ErrFieldTypeError, []string{"value"}},
	}
	for tname, call := range transports(t, p) {
		for _, tt := range tests {
			t.Run(tname+"/"+tt.name, func(t *testing.T) {
				_, err := call(context.Background(), tt.method, tt.params...)
				wantFailure(t, err, tt.code, tt.want...)
			})
		}
	}
	t.Run("alternative wire name", func(t *testing.T) {
		rec := mustCall(t, p, "VM_get_record", s, vm.Ref).(map[string]any)
		if rec["name_label"] != "a" {
			t.Fatalf("%v", rec["name_label"])
		}
		_, err := p.Call(context.Background(), "Async.VM_clean_shutdown", s, vm.Ref)
		wantFailure(t, err, ErrMessageMethodUnknown, "VM_clean_shutdown")
		_, err = p.Call(context.Background(), "VM_get_record", s)
		wantFailure(t, err, ErrMessageParameterCountMismatch, "VM_get_record", "1", "0")
	})
	t.Run("Async of a call without an Async form is a fault", func(t *testing.T) {
		_, err := p.Call(context.Background(), "Async.VM.set_VCPUs_max", s, vm.Ref, "2")
		var f *RPCFault
		if !errors.As(err, &f) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("extra defaulted params are ignored", func(t *testing.T) {
		mustCall(t, p, "VM.snapshot", s, vm.Ref, "s", []any{}, "extra")
	})
	t.Run("logout invalidates", func(t *testing.T) {
		s2 := login(t, p)
		mustCall(t, p, "session.logout", s2)
		_, err := p.Call(context.Background(), "VM.get_all", s2)
		wantFailure(t, err, ErrSessionInvalid, s2)
		_, err = p.Call(context.Background(), "session.logout", s2)
		wantFailure(t, err, ErrSessionInvalid, s2)
	})
	t.Run("session record", func(t *testing.T) {
		rec := mustCall(t, p, "session.get_record", s, s).(map[string]any)
		if rec["originator"] != "xenapitest" || rec["this_host"] != p.Master().Ref() {
			t.Fatalf("%v", rec)
		}
	})
	t.Run("HOST_IS_SLAVE", func(t *testing.T) {
		p.Master().SetAddress("10.1.2.3")
		slave := p.Hosts()[1]
		_, err := slave.Call(context.Background(), "session.login_with_password", p.User(), p.Password())
		wantFailure(t, err, ErrHostIsSlave, "10.1.2.3")
		_, err = slave.Call(context.Background(), "VM.get_all", s)
		wantFailure(t, err, ErrHostIsSlave, "10.1.2.3")
		if got := mustCall(t, p, "host.get_address", s, p.Master().Ref()); got != "10.1.2.3" {
			t.Fatalf("host.address %v", got)
		}
	})
	t.Run("pool and API version", func(t *testing.T) {
		pools := mustCall(t, p, "pool.get_all", s).([]any)
		if len(pools) != 1 {
			t.Fatalf("%v", pools)
		}
		master := mustCall(t, p, "pool.get_master", s, pools[0])
		if master != p.Master().Ref() {
			t.Fatalf("master %v", master)
		}
		if v := mustCall(t, p, "host.get_API_version_major", s, master); v != "2" {
			t.Fatalf("major %v", v)
		}
		sv := mustCall(t, p, "host.get_software_version", s, master).(map[string]any)
		if sv["product_version"] != ProductVersion {
			t.Fatalf("%v", sv)
		}
		if got := mustCall(t, p, "pool.get_default_SR", s, pools[0]); got != p.Master().SR() {
			t.Fatalf("default_SR %v", got)
		}
	})
}

func TestFaultInjection(t *testing.T) {
	p := newTestPool(t, Options{})
	s := login(t, p)
	vm, err := p.AddVM(VMSpec{Name: "f", Disks: []int64{2 << 20}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	p.FailNth("VM.get_power_state", 2, "SR_BACKEND_FAILURE_40", "", "scan failed", "")
	for i := 1; i <= 3; i++ {
		_, err := p.Call(ctx, "VM.get_power_state", s, vm.Ref)
		if i == 2 {
			wantFailure(t, err, "SR_BACKEND_FAILURE_40", "", "scan failed", "")
		} else if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	p.InjectFault(Fault{Method: "VM.get_name_label", Code: ErrInternalError, Params: []string{"always"}})
	for i := 0; i < 2; i++ {
		_, err := p.Call(ctx, "VM.get_name_label", s, vm.Ref)
		wantFailure(t, err, ErrInternalError, "always")
	}
	p.ClearFaults()
	mustCall(t, p, "VM.get_name_label", s, vm.Ref)

	// A fault on an Async call fails its task, not the call.
	p.FailNth("Async.VM.start", 1, ErrOperationBlocked, vm.Ref, "test")
	task := mustCall(t, p, "Async.VM.start", s, vm.Ref, false, false).(string)
	rec := waitTask(t, p, s, task)
	if rec["status"] != "failure" || len(rec["error_info"].([]any)) != 3 || rec["error_info"].([]any)[0] != ErrOperationBlocked {
		t.Fatalf("task %v", rec)
	}
	if recField(t, p, vm.Ref, "power_state") != "Halted" {
		t.Fatal("a failed task changed the VM")
	}

	// Delay: the call is held, other calls go on meanwhile.
	p.InjectFault(Fault{Method: "VM.get_uuid", N: 0, Delay: 500 * time.Millisecond})
	start := time.Now()
	done := make(chan error, 1)
	go func() {
		_, err := p.Call(ctx, "VM.get_uuid", s, vm.Ref)
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	mustCall(t, p, "VM.get_name_label", s, vm.Ref)
	select {
	case <-done:
		t.Fatal("a delayed call held up another call")
	default:
	}
	if err := <-done; err != nil || time.Since(start) < 500*time.Millisecond {
		t.Fatalf("delayed call: %v after %v", err, time.Since(start))
	}
	// A delayed call honours its context.
	cctx, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	if _, err := p.Call(cctx, "VM.get_uuid", s, vm.Ref); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}

	// The log: every call with its use number and answer.
	var found bool
	for _, c := range p.Calls() {
		if c.Method == "VM.get_power_state" && c.N == 2 {
			found = c.Error == "SR_BACKEND_FAILURE_40" && c.Args == `"`+vm.Ref+`"`
		}
		if c.Method == "session.login_with_password" && c.Args != `"root", ***` {
			t.Fatalf("login args logged as %s", c.Args)
		}
	}
	if !found {
		t.Fatalf("log:\n%s", p.CallsSummary())
	}
	if p.CallCount("VM.get_power_state") != 3 {
		t.Fatalf("count %d", p.CallCount("VM.get_power_state"))
	}
}

// TestFaultSweep shows the sweep a flow test makes: run once to record
// the calls, then once per call with that call failing, and check that
// each failure surfaces.
func TestFaultSweep(t *testing.T) {
	flow := func(p *Pool, vm VMInfo) error {
		ctx := context.Background()
		sv, err := p.Call(ctx, "session.login_with_password", p.User(), p.Password())
		if err != nil {
			return err
		}
		s := sv.(string)
		defer p.Call(ctx, "session.logout", s)
		if _, err := p.Call(ctx, "VM.hard_shutdown", s, vm.Ref); err != nil {
			return err
		}
		if _, err := p.Call(ctx, "VM.add_to_blocked_operations", s, vm.Ref, "start", ""); err != nil {
			return err
		}
		_, err = p.Call(ctx, "VDI.snapshot", s, vm.VDIs[0])
		return err
	}
	setup := func(t *testing.T) (*Pool, VMInfo) {
		p := newTestPool(t, Options{})
		vm, err := p.AddVM(VMSpec{Name: "sweep", Disks: []int64{2 << 20}, Running: true})
		if err != nil {
			t.Fatal(err)
		}
		return p, vm
	}
	p, vm := setup(t)
	if err := flow(p, vm); err != nil {
		t.Fatal(err)
	}
	calls := p.Calls()
	if len(calls) != 5 {
		t.Fatalf("calls:\n%s", p.CallsSummary())
	}
	for _, c := range calls[:4] { // logout's failure is ignored by the flow
		t.Run(c.Method, func(t *testing.T) {
			p, vm := setup(t)
			p.FailNth(c.Method, c.N, ErrInternalError, "injected")
			err := flow(p, vm)
			wantFailure(t, err, ErrInternalError, "injected")
		})
	}
}

// waitTask polls a task until it leaves pending and returns its record.
func waitTask(t *testing.T, p *Pool, s, task string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		rec := mustCall(t, p, "task.get_record", s, task).(map[string]any)
		if rec["status"] != "pending" && rec["status"] != "cancelling" {
			return rec
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatalf("task %s still pending", task)
	return nil
}
