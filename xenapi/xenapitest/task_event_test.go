package xenapitest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/xenflow/xenflow/xenapi/internal/xmlrpc"
)

func TestAsyncTasks(t *testing.T) {
	p := newTestPool(t, Options{})
	s := login(t, p)
	ctx := context.Background()
	t.Run("success with a ref result", func(t *testing.T) {
		vm := vmIn(t, p, s, "Running")
		task := mustCall(t, p, "Async.VM.snapshot", s, vm.Ref, "snap").(string)
		rec := waitTask(t, p, s, task)
		if rec["status"] != "success" || rec["progress"] != 1.0 || rec["name_label"] != "Async.VM.snapshot" {
			t.Fatalf("task %v", rec)
		}
		// task.result is the XML-RPC value serialised to a string.
		res := mustCall(t, p, "task.get_result", s, task).(string)
		v, err := xmlrpc.DecodeValueString(res)
		if err != nil {
			t.Fatal(err)
		}
		if recField(t, p, v.(string), "snapshot_of") != vm.Ref {
			t.Fatalf("result %q", res)
		}
		if res != "<value>"+v.(string)+"</value>" {
			t.Fatalf("result %q", res)
		}
		mustCall(t, p, "task.destroy", s, task)
		_, err = p.Call(ctx, "task.get_record", s, task)
		wantFailure(t, err, ErrHandleInvalid, "task", task)
	})
	t.Run("void result", func(t *testing.T) {
		vm := vmIn(t, p, s, "Running")
		task := mustCall(t, p, "Async.VM.clean_shutdown", s, vm.Ref).(string)
		rec := waitTask(t, p, s, task)
		if rec["status"] != "success" || rec["result"] != "<value></value>" {
			t.Fatalf("task %v", rec)
		}
		if recField(t, p, vm.Ref, "power_state") != "Halted" {
			t.Fatal("not halted")
		}
	})
	t.Run("failure", func(t *testing.T) {
		vm := vmIn(t, p, s, "Halted")
		task := mustCall(t, p, "Async.VM.clean_shutdown", s, vm.Ref).(string)
		rec := waitTask(t, p, s, task)
		ei := rec["error_info"].([]any)
		if rec["status"] != "failure" || len(ei) != 4 || ei[0] != ErrVMBadPowerState || ei[2] != "running" || ei[3] != "halted" {
			t.Fatalf("task %v", rec)
		}
	})
	t.Run("progress and cancel", func(t *testing.T) {
		vm := vmIn(t, p, s, "Running")
		p.InjectFault(Fault{Method: "Async.VM.hard_shutdown", Delay: 400 * time.Millisecond})
		defer p.ClearFaults()
		task := mustCall(t, p, "Async.VM.hard_shutdown", s, vm.Ref).(string)
		deadline := time.Now().Add(2 * time.Second)
		for mustCall(t, p, "task.get_progress", s, task).(float64) == 0 {
			if time.Now().After(deadline) {
				t.Fatal("no progress")
			}
			time.Sleep(10 * time.Millisecond)
		}
		mustCall(t, p, "task.cancel", s, task)
		rec := waitTask(t, p, s, task)
		ei := rec["error_info"].([]any)
		if rec["status"] != "cancelled" || len(ei) != 2 || ei[0] != ErrTaskCancelled || ei[1] != task {
			t.Fatalf("task %v", rec)
		}
		if recField(t, p, vm.Ref, "power_state") != "Running" {
			t.Fatal("a cancelled shutdown ran")
		}
		_, err := p.Call(ctx, "task.cancel", s, task)
		if err == nil {
			t.Fatal("cancel of a finished task succeeded")
		}
		wantFailure(t, err, ErrOperationNotAllowed, "task "+task+" is not pending and cannot be cancelled")
	})
	t.Run("task.create", func(t *testing.T) {
		task := mustCall(t, p, "task.create", s, "mine", "desc").(string)
		mustCall(t, p, "task.set_progress", s, task, 0.5)
		mustCall(t, p, "task.set_status", s, task, "success")
		rec := mustCall(t, p, "task.get_record", s, task).(map[string]any)
		if rec["status"] != "success" || rec["progress"] != 0.5 || rec["name_label"] != "mine" {
			t.Fatalf("%v", rec)
		}
		if _, err := p.Call(ctx, "Async.task.create", s, "x", "y"); err == nil {
			t.Fatal("task.create has no Async form")
		}
	})
}

func TestEventFrom(t *testing.T) {
	p := newTestPool(t, Options{})
	s := login(t, p)
	ctx := context.Background()
	vm, err := p.AddVM(VMSpec{Name: "ev", Disks: []int64{2 << 20}})
	if err != nil {
		t.Fatal(err)
	}
	from := func(classes []any, token string, timeout float64) map[string]any {
		t.Helper()
		return mustCall(t, p, "event.from", s, classes, token, timeout).(map[string]any)
	}
	// From the beginning: every VM as an "add".
	b := from([]any{"vm"}, "", 0)
	evs := b["events"].([]any)
	if len(evs) != 2 { // dom0 and ev
		t.Fatalf("%d events", len(evs))
	}
	for _, e := range evs {
		e := e.(map[string]any)
		if e["class"] != "vm" || e["operation"] != "add" || e["snapshot"].(map[string]any)["uuid"] == nil {
			t.Fatalf("event %v", e)
		}
	}
	token := b["token"].(string)

	// Nothing new: the call waits for its timeout.
	start := time.Now()
	b = from([]any{"VM"}, token, 0.1)
	if len(b["events"].([]any)) != 0 || time.Since(start) < 100*time.Millisecond {
		t.Fatalf("empty batch %v after %v", b, time.Since(start))
	}

	// A blocked event.from is woken by a change, and does not hold up
	// other calls meanwhile.
	var wg sync.WaitGroup
	var got map[string]any
	wg.Add(1)
	go func() {
		defer wg.Done()
		got = from([]any{"vm/" + vm.Ref}, token, 30)
	}()
	time.Sleep(50 * time.Millisecond)
	start = time.Now()
	mustCall(t, p, "VM.get_record", s, vm.Ref)
	mustCall(t, p, "VDI.set_name_label", s, vm.VDIs[0], "other class") // not subscribed
	if time.Since(start) > 2*time.Second {
		t.Fatal("event.from held up other calls")
	}
	mustCall(t, p, "VM.set_name_label", s, vm.Ref, "renamed")
	wg.Wait()
	evs = got["events"].([]any)
	if len(evs) != 1 {
		t.Fatalf("events %v", evs)
	}
	e := evs[0].(map[string]any)
	if e["operation"] != "mod" || e["ref"] != vm.Ref || e["snapshot"].(map[string]any)["name_label"] != "renamed" {
		t.Fatalf("event %v", e)
	}
	token = got["token"].(string)

	// del events.
	mustCall(t, p, "VM.destroy", s, vm.Ref)
	evs = from([]any{"vm", "vbd"}, token, 1)["events"].([]any)
	ops := map[string]int{}
	for _, e := range evs {
		e := e.(map[string]any)
		ops[e["class"].(string)+"/"+e["operation"].(string)]++
	}
	if ops["vm/del"] != 1 || ops["vbd/del"] != 1 {
		t.Fatalf("ops %v", ops)
	}

	// Tasks are objects with events too: wait for one to finish by events.
	tb := from([]any{"task"}, "", 0)
	vm2, err := p.AddVM(VMSpec{Name: "ev2"})
	if err != nil {
		t.Fatal(err)
	}
	task := mustCall(t, p, "Async.VM.start", s, vm2.Ref, false, false).(string)
	tok, status := tb["token"].(string), ""
	for status != "success" {
		b := from([]any{"task/" + task}, tok, 5)
		tok = b["token"].(string)
		for _, e := range b["events"].([]any) {
			status = e.(map[string]any)["snapshot"].(map[string]any)["status"].(string)
		}
		if len(b["events"].([]any)) == 0 {
			t.Fatal("no task event within 5 s")
		}
	}
	// Errors.
	_, err = p.Call(ctx, "event.from", s, []any{"vm"}, "junk", 1.0)
	wantFailure(t, err, ErrEventFromTokenParseFailure, "junk")
	_, err = p.Call(ctx, "event.from", s, []any{"nosuchclass"}, "", 1.0)
	wantFailure(t, err, ErrEventSubscriptionParseFailure, "nosuchclass")
	// A cancelled context ends the wait.
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := p.Call(cctx, "event.from", s, []any{"vm"}, formatToken(1<<40), 30.0); err == nil {
		t.Fatal("event.from ignored its context")
	}
	// event.inject
	tok = mustCall(t, p, "event.inject", s, "pool", p.Ref()).(string)
	if _, err := parseToken(tok); err != nil {
		t.Fatal(err)
	}
}

func TestEventFromUnblocksOnClose(t *testing.T) {
	p, err := NewPool(Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	s := login(t, p)
	b := mustCall(t, p, "event.from", s, []any{"*"}, "", 0.0).(map[string]any)
	done := make(chan error, 1)
	go func() {
		_, err := p.Call(context.Background(), "event.from", s, []any{"*"}, b["token"], 60.0)
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("event.from still blocked after Close")
	}
}

func TestConcurrentCalls(t *testing.T) {
	p := newTestPool(t, Options{})
	s := login(t, p)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			vm, err := p.AddVM(VMSpec{Name: "c", Disks: []int64{2 << 20}})
			if err != nil {
				errs <- err
				return
			}
			for i := 0; i < 5; i++ {
				for _, call := range [][]any{
					{"VM.start", s, vm.Ref, false, false},
					{"VDI.snapshot", s, vm.VDIs[0]},
					{"VM.get_all_records", s},
					{"VM.hard_shutdown", s, vm.Ref},
				} {
					if _, err := p.Call(context.Background(), call[0].(string), call[1:]...); err != nil {
						errs <- err
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
