package xenapi

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/xenflow/xenflow/xenapi/internal/xmlrpc"
)

// TaskResult is the decoded result of a successful task.
type TaskResult struct {
	// Value is the result: a string for refs, enums, ints and void (""),
	// map[string]any or []any for records and sets.
	Value any
}

// String returns the result when it is a string (a ref, a number, or ""
// for calls that return nothing).
func (r TaskResult) String() string {
	s, _ := r.Value.(string)
	return s
}

// ResultRef returns a task's result as a typed reference, e.g.
// ResultRef[VMRef](res) after Async.VM.Snapshot.
func ResultRef[R ~string](r TaskResult) R { return R(r.String()) }

// DecodeTaskResult decodes task.result as xapi stores it: an XML-RPC value
// serialised into a string ("<value>OpaqueRef:…</value>"). A string that is
// not XML (as some simulators store) is returned unchanged, and "" stays "".
func DecodeTaskResult(s string) (any, error) {
	t := strings.TrimSpace(s)
	if !strings.HasPrefix(t, "<") {
		return s, nil
	}
	return (&xmlrpc.Decoder{}).DecodeValueString(t)
}

// firstTaskPoll is how long WaitTask waits before its second look at a
// task; the wait doubles up to the client's poll interval, so a task that
// ends just after the first look (an HTTP handler's, completed after its
// last byte) is seen within milliseconds, and a long one costs a few more
// reads.
const firstTaskPoll = 10 * time.Millisecond

// cleanupTimeout bounds the task.cancel / task.destroy calls made after the
// caller's context is done.
const cleanupTimeout = 10 * time.Second

// WaitTask waits for task to finish by polling task.get_record (the
// second look after 10 ms, then at doubling intervals up to the client's
// poll interval) or, with WithTaskEvents, by following it with
// event.from, calling progress (if not nil) whenever the progress
// changes. On success it returns the decoded result; on failure the task's error as a *Failure (TASK_CANCELLED when it
// was cancelled without other detail). Either way it destroys the task.
// When ctx is done first it calls task.cancel, waits briefly for the task
// to stop, destroys it and returns ctx's error. When reading the task fails
// for another reason (the connection is lost, the task is gone) it returns
// that error and leaves the task alone: it may still be running, and the
// caller can wait for it again with the same TaskRef.
func (c *Client) WaitTask(ctx context.Context, task TaskRef, progress func(float64)) (TaskResult, error) {
	w := &taskWatch{c: c, task: task, progress: progress, last: -1}
	if c.taskEvents {
		return w.followEvents(ctx)
	}
	wait := min(c.pollInterval, firstTaskPoll)
	for {
		if done, res, err := w.poll(ctx); done {
			return res, err
		}
		t := time.NewTimer(wait)
		wait = min(2*wait, c.pollInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return TaskResult{}, c.abandonTask(ctx, task)
		case <-t.C:
		}
	}
}

// taskWatch is one WaitTask in progress: the task, the caller's progress
// callback and the last progress reported to it.
type taskWatch struct {
	c        *Client
	task     TaskRef
	progress func(float64)
	last     float64
}

// observe reports rec's progress when it changed and, when the task is
// over, destroys it and returns its outcome with done set.
func (w *taskWatch) observe(ctx context.Context, rec TaskRecord) (done bool, res TaskResult, err error) {
	if w.progress != nil && rec.Progress != w.last {
		w.last = rec.Progress
		w.progress(rec.Progress)
	}
	if done, res, err = w.c.finished(w.task, rec); done {
		w.c.destroyTask(ctx, w.task)
	}
	return done, res, err
}

// poll reads the task once with task.get_record and observes it. A failed
// read ends the wait (done set): after the context ended, by cancelling the
// task; otherwise with the read's error, leaving the task alone.
func (w *taskWatch) poll(ctx context.Context) (done bool, res TaskResult, err error) {
	rec, err := w.c.Task.GetRecord(ctx, w.task)
	if err != nil {
		return true, TaskResult{}, w.readFailed(ctx, err)
	}
	return w.observe(ctx, rec)
}

// readFailed is the error WaitTask returns when reading the task failed.
func (w *taskWatch) readFailed(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return w.c.abandonTask(ctx, w.task)
	}
	return err
}

// taskEventTimeout is how long one event.from call of followEvents may
// block on the server.
const taskEventTimeout = 30.0

// followEvents is WaitTask on event.from: it subscribes to the one task,
// first with token "" and no wait (the task's current state), then
// blocking until the next change.
func (w *taskWatch) followEvents(ctx context.Context) (TaskResult, error) {
	c, task := w.c, w.task
	sub := []string{"task/" + string(task)}
	token := ""
	for first := true; ; first = false {
		wait := taskEventTimeout
		if first {
			wait = 0 // the current state, at once
		}
		batch, err := c.Event.From(ctx, sub, token, wait)
		if err != nil {
			return TaskResult{}, w.readFailed(ctx, err)
		}
		token = batch.Token
		seen := false
		for _, ev := range batch.Events {
			if ev.Ref != string(task) {
				continue
			}
			seen = true
			if ev.Operation.Is(EventOperationDel) {
				return TaskResult{}, &CallError{Method: "event.from", URL: c.URL(), Err: &Failure{Code: CodeHandleInvalid, Params: []string{"task", string(task)}}}
			}
			var rec TaskRecord
			if err := ev.DecodeSnapshot(&rec); err != nil {
				return TaskResult{}, err
			}
			if done, res, err := w.observe(ctx, rec); done {
				return res, err
			}
		}
		if first && !seen {
			// No event for the task from the beginning: read it directly
			// (HANDLE_INVALID when it does not exist).
			if done, res, err := w.poll(ctx); done {
				return res, err
			}
		}
	}
}

// finished reports whether the task is over and, if so, its outcome.
// Unknown statuses count as still running.
func (c *Client) finished(task TaskRef, rec TaskRecord) (bool, TaskResult, error) {
	switch {
	case rec.Status.Is(TaskStatusSuccess):
		v, err := DecodeTaskResult(rec.Result)
		if err != nil {
			return true, TaskResult{}, &CallError{Method: "task.get_record", URL: c.URL(), Err: fmt.Errorf("task %s result: %w", task, err)}
		}
		return true, TaskResult{Value: v}, nil
	case rec.Status.Is(TaskStatusFailure):
		return true, TaskResult{}, taskFailure(task, rec.ErrorInfo, CodeInternalError, "task failed without error_info")
	case rec.Status.Is(TaskStatusCancelled):
		return true, TaskResult{}, taskFailure(task, rec.ErrorInfo, CodeTaskCancelled, string(task))
	}
	return false, TaskResult{}, nil
}

func taskFailure(task TaskRef, info []string, code, param string) error {
	f := &Failure{Code: code, Params: []string{param}}
	if len(info) > 0 {
		f = &Failure{Code: info[0], Params: append([]string(nil), info[1:]...)}
	}
	return fmt.Errorf("xenapi: task %s: %w", task, f)
}

// abandonTask cancels a task whose waiter gave up, waits up to
// cleanupTimeout for it to stop and destroys it.
func (c *Client) abandonTask(ctx context.Context, task TaskRef) error {
	cause := ctx.Err()
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	if err := c.Task.Cancel(cctx, task); err != nil && !IsCode(err, CodeOperationNotAllowed) {
		c.log.Warn("xenapi: cancelling task failed", "task", task, "err", err)
	}
	for cctx.Err() == nil {
		st, err := c.Task.GetStatus(cctx, task)
		if err != nil || !(st.Is(TaskStatusPending) || st.Is(TaskStatusCancelling)) {
			break
		}
		t := time.NewTimer(c.pollInterval)
		select {
		case <-cctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
	if err := c.Task.Destroy(cctx, task); err != nil && !IsCode(err, CodeHandleInvalid) {
		c.log.Warn("xenapi: destroying task failed", "task", task, "err", err)
	}
	return fmt.Errorf("xenapi: waiting for task %s: %w", task, cause)
}

func (c *Client) destroyTask(ctx context.Context, task TaskRef) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	if err := c.Task.Destroy(cctx, task); err != nil && !errors.Is(err, ErrHandleInvalid) {
		c.log.Warn("xenapi: destroying task failed", "task", task, "err", err)
	}
}
