package xenapi

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// scriptedTask serves task.get_record from a list of states, one per poll
// (the last one repeats), and records cancel and destroy.
type scriptedTask struct {
	mu        sync.Mutex
	states    []map[string]any
	polls     int
	cancelled bool
	destroyed bool
	// onCancel, when set, replaces the states after task.cancel.
	onCancel []map[string]any
}

func taskState(status string, progress float64, result string, errorInfo ...any) map[string]any {
	if errorInfo == nil {
		errorInfo = []any{}
	}
	return map[string]any{"uuid": "t", "status": status, "progress": progress, "result": result, "error_info": errorInfo,
		"created": mustParseTime("20250319T04:16:24Z"), "finished": mustParseTime("19700101T00:00:00Z"), "type": "<none/>"}
}

func (s *scriptedTask) install(f *fakeXapi) {
	f.handle("Async.VM.snapshot", func(p []any) (any, []string) { return "OpaqueRef:task-1", nil })
	f.handle("task.get_record", func(p []any) (any, []string) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.destroyed {
			return nil, []string{CodeHandleInvalid, "task", p[0].(string)}
		}
		i := s.polls
		if i >= len(s.states) {
			i = len(s.states) - 1
		}
		s.polls++
		return s.states[i], nil
	})
	f.handle("task.get_status", func(p []any) (any, []string) {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.states[len(s.states)-1]["status"], nil
	})
	f.handle("task.cancel", func(p []any) (any, []string) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.cancelled = true
		if s.onCancel != nil {
			s.states = s.onCancel
		}
		return "", nil
	})
	f.handle("task.destroy", func(p []any) (any, []string) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.destroyed = true
		return "", nil
	})
}

func TestWaitTaskSuccess(t *testing.T) {
	f := newFakeXapi(t)
	st := &scriptedTask{states: []map[string]any{
		taskState("pending", 0, ""),
		taskState("pending", 0.5, ""),
		taskState("pending", 0.5, ""),
		taskState("success", 1, "<value>OpaqueRef:snap</value>"),
	}}
	st.install(f)
	c := f.login(t, WithTaskPollInterval(time.Millisecond))
	defer c.Close(bg())
	task, err := c.Async.VM.Snapshot(bg(), "OpaqueRef:vm", "snap")
	if err != nil || task != "OpaqueRef:task-1" {
		t.Fatal(task, err)
	}
	var progress []float64
	res, err := c.WaitTask(bg(), task, func(p float64) { progress = append(progress, p) })
	if err != nil {
		t.Fatal(err)
	}
	if ResultRef[VMRef](res) != "OpaqueRef:snap" {
		t.Fatalf("result %#v", res)
	}
	if !cmp.Equal(progress, []float64{0, 0.5, 1}) {
		t.Fatalf("progress %v", progress)
	}
	if !st.destroyed {
		t.Fatal("task not destroyed")
	}
}

func TestWaitTaskFailures(t *testing.T) {
	tests := []struct {
		name  string
		state map[string]any
		want  *Failure
	}{
		{"failure", taskState("failure", 1, "", CodeVMBadPowerState, "OpaqueRef:vm", "halted", "running"),
			&Failure{CodeVMBadPowerState, []string{"OpaqueRef:vm", "halted", "running"}}},
		{"cancelled", taskState("cancelled", 1, ""), &Failure{CodeTaskCancelled, []string{"OpaqueRef:task-1"}}},
		{"failure without detail", taskState("failure", 1, ""), &Failure{CodeInternalError, []string{"task failed without error_info"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeXapi(t)
			st := &scriptedTask{states: []map[string]any{tt.state}}
			st.install(f)
			c := f.login(t, WithTaskPollInterval(time.Millisecond))
			defer c.Close(bg())
			_, err := c.WaitTask(bg(), "OpaqueRef:task-1", nil)
			var fl *Failure
			if !errors.As(err, &fl) || !cmp.Equal(fl, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if !st.destroyed {
				t.Fatal("task not destroyed")
			}
		})
	}
}

func TestWaitTaskCancelOnContextEnd(t *testing.T) {
	f := newFakeXapi(t)
	st := &scriptedTask{
		states:   []map[string]any{taskState("pending", 0.1, "")},
		onCancel: []map[string]any{taskState("cancelled", 0.1, "")},
	}
	st.install(f)
	c := f.login(t, WithTaskPollInterval(5*time.Millisecond))
	defer c.Close(bg())
	ctx, cancel := context.WithCancel(bg())
	go func() {
		for {
			st.mu.Lock()
			n := st.polls
			st.mu.Unlock()
			if n >= 2 {
				cancel()
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	_, err := c.WaitTask(ctx, "OpaqueRef:task-1", nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
	if !st.cancelled || !st.destroyed {
		t.Fatalf("cancelled %v destroyed %v", st.cancelled, st.destroyed)
	}
}

func TestWaitTaskUnknownStatusKeepsWaiting(t *testing.T) {
	f := newFakeXapi(t)
	st := &scriptedTask{states: []map[string]any{
		taskState("queued_in_a_future_release", 0, ""),
		taskState("success", 1, "<value></value>"),
	}}
	st.install(f)
	c := f.login(t, WithTaskPollInterval(time.Millisecond))
	defer c.Close(bg())
	res, err := c.WaitTask(bg(), "OpaqueRef:task-1", nil)
	if err != nil || res.String() != "" {
		t.Fatalf("%#v %v", res, err)
	}
}

func TestDecodeTaskResult(t *testing.T) {
	tests := []struct {
		in   string
		want any
	}{
		{"<value>OpaqueRef:x</value>", "OpaqueRef:x"},
		{"  <value>OpaqueRef:x</value>\n", "OpaqueRef:x"},
		{"", ""},
		{"<value/>", ""},
		{"OpaqueRef:plain", "OpaqueRef:plain"},
		{"<value><array><data><value>a</value><value></value></data></array></value>", []any{"a", ""}},
	}
	for _, tt := range tests {
		got, err := DecodeTaskResult(tt.in)
		if err != nil || !cmp.Equal(got, tt.want) {
			t.Errorf("DecodeTaskResult(%q) = %#v, %v; want %#v", tt.in, got, err, tt.want)
		}
	}
	if _, err := DecodeTaskResult("<value>unterminated"); err == nil {
		t.Error("bad task result accepted")
	}
}

func TestWaitTaskEventsCancelOnContextEnd(t *testing.T) {
	f := newFakeXapi(t)
	st := &scriptedTask{
		states:   []map[string]any{taskState("pending", 0.25, "")},
		onCancel: []map[string]any{taskState("cancelled", 0.25, "")},
	}
	st.install(f)
	release := make(chan struct{})
	defer close(release)
	blocked := make(chan struct{}, 1)
	f.handle("event.from", func(p []any) (any, []string) {
		if p[2] == 0.0 {
			ev := map[string]any{"id": "1", "class": "task", "operation": "mod", "ref": "OpaqueRef:task-1", "snapshot": st.states[0]}
			return map[string]any{"events": []any{ev}, "valid_ref_counts": map[string]any{}, "token": "1,0"}, nil
		}
		blocked <- struct{}{}
		<-release
		return map[string]any{"events": []any{}, "valid_ref_counts": map[string]any{}, "token": "1,0"}, nil
	})
	c := f.login(t, WithTaskEvents(), WithTaskPollInterval(time.Millisecond))
	defer c.Close(bg())
	ctx, cancel := context.WithCancel(bg())
	go func() {
		<-blocked
		cancel()
	}()
	var progress []float64
	_, err := c.WaitTask(ctx, "OpaqueRef:task-1", func(p float64) { progress = append(progress, p) })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
	if !st.cancelled || !st.destroyed || !cmp.Equal(progress, []float64{0.25}) {
		t.Fatalf("cancelled %v destroyed %v progress %v", st.cancelled, st.destroyed, progress)
	}
	if n := f.methods(); n[len(n)-1] != "task.destroy" {
		t.Fatalf("calls %v", n)
	}
}

// TestWaitTaskBackoff: a task that ends just after the first look is seen
// within milliseconds, not a poll interval later; the looks then space
// out towards the poll interval.
func TestWaitTaskBackoff(t *testing.T) {
	f := newFakeXapi(t)
	st := &scriptedTask{states: []map[string]any{
		taskState("pending", 0, ""),
		taskState("pending", 0, ""),
		taskState("pending", 0, ""),
		taskState("success", 1, ""),
	}}
	st.install(f)
	c := f.login(t, WithTaskPollInterval(time.Hour))
	defer c.Close(bg())
	ctx, cancel := context.WithTimeout(bg(), time.Minute)
	defer cancel()
	if _, err := c.WaitTask(ctx, "OpaqueRef:task-1", nil); err != nil {
		t.Fatalf("a task done at the fourth look, with a poll interval of an hour: %v", err)
	}
	if st.polls != 4 {
		t.Fatalf("%d looks, want 4", st.polls)
	}
}
