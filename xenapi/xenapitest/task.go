package xenapitest

import (
	"context"
	"errors"
	"time"

	"github.com/xenflow/xenflow/xenapi/internal/xmlrpc"
)

// taskState is what the pool keeps beside a task's record while it runs.
type taskState struct {
	ref    string
	cancel chan struct{} // closed by task.cancel
}

// startTask creates the task of an Async call and runs the call in the
// background: after the injected delay (progress moves in quarters while
// it lasts), failing with ferr if a fault was injected.
func (p *Pool) startTask(c *call, m *method, a *args, wire string, delay time.Duration, ferr error) (any, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, fail(ErrInternalError, "the pool is shutting down")
	}
	t := p.newObject(classTask, map[string]any{
		"name_label":         wire,
		"created":            p.now(),
		"status":             "pending",
		"resident_on":        p.hosts[0].ref,
		"allowed_operations": []string{"cancel"},
		"type":               "<none/>",
		"backtrace":          "()",
		"error_info":         []string{},
	})
	if s, ok := p.objs[c.session]; ok {
		s.addToSet("tasks", t.ref)
	}
	ts := &taskState{ref: t.ref, cancel: make(chan struct{})}
	p.tasks[t.ref] = ts
	p.taskWait.Add(1)
	p.mu.Unlock()

	ctx, stop := context.WithCancel(context.Background())
	bg := &call{p: p, ctx: ctx, host: c.host, session: c.session, task: ts}
	go func() {
		defer p.taskWait.Done()
		defer stop()
		go func() {
			select {
			case <-p.done:
				stop()
			case <-ctx.Done():
			}
		}()
		if delay > 0 && !p.taskDelay(ts, delay) {
			p.finishTask(ts, nil, fail(ErrTaskCancelled, ts.ref), "cancelled")
			return
		}
		select {
		case <-ts.cancel:
			p.finishTask(ts, nil, fail(ErrTaskCancelled, ts.ref), "cancelled")
			return
		default:
		}
		if ferr != nil {
			p.finishTask(ts, nil, ferr, "failure")
			return
		}
		res, err := p.run(bg, m, a)
		if err != nil {
			p.finishTask(ts, nil, err, "failure")
			return
		}
		p.finishTask(ts, res, nil, "success")
	}()
	return t.ref, nil
}

// taskDelay waits d, moving the task's progress, and reports false if the
// task was cancelled or the pool closed meanwhile.
func (p *Pool) taskDelay(ts *taskState, d time.Duration) bool {
	step := d / 4
	for i := 1; i <= 4; i++ {
		t := time.NewTimer(step)
		select {
		case <-t.C:
		case <-ts.cancel:
			t.Stop()
			return false
		case <-p.done:
			t.Stop()
			return false
		}
		if i < 4 {
			p.mu.Lock()
			if o, ok := p.objs[ts.ref]; ok {
				o.f["progress"] = float64(i) / 4
				p.touch(o)
			}
			p.mu.Unlock()
		}
	}
	return true
}

func (p *Pool) finishTask(ts *taskState, res any, err error, status string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.tasks, ts.ref)
	o, ok := p.objs[ts.ref]
	if !ok {
		return // destroyed while running
	}
	o.f["status"] = status
	o.f["progress"] = 1.0
	o.f["finished"] = p.now()
	o.f["allowed_operations"] = []string{}
	if err != nil {
		var f *Failure
		var fault *xmlrpc.Fault
		switch {
		case errors.As(err, &f):
			o.f["error_info"] = f.Description()
		case errors.As(err, &fault):
			o.f["error_info"] = []string{ErrInternalError, fault.String}
		default:
			o.f["error_info"] = []string{ErrInternalError, err.Error()}
		}
	} else {
		s, encErr := xmlrpc.EncodeValueString(res)
		if encErr != nil {
			o.f["status"] = "failure"
			o.f["error_info"] = []string{ErrInternalError, encErr.Error()}
		} else {
			o.f["result"] = s
		}
	}
	p.touch(o)
}

func (t methodTable) addTask() {
	t.sessionCall("task.cancel", true, func(c *call, a *args) (any, error) {
		task, err := c.p.get(classTask, a.str(0))
		if err != nil {
			return nil, err
		}
		ts := c.p.tasks[task.ref]
		if task.str("status") != "pending" {
			return nil, fail(ErrOperationNotAllowed, "task "+task.ref+" is not pending and cannot be cancelled")
		}
		task.f["status"] = "cancelling"
		c.p.touch(task)
		if ts != nil {
			close(ts.cancel)
		}
		// A task made by task.create and not yet used by a transfer stays
		// cancelling: the transfer that names it stops at once.
		return nil, nil
	}, "task")
	t.sessionCall("task.destroy", false, func(c *call, a *args) (any, error) {
		task, err := c.p.get(classTask, a.str(0))
		if err != nil {
			return nil, err
		}
		for _, s := range c.p.all(classSession) {
			s.removeFromSet("tasks", task.ref)
		}
		c.p.deleteObject(task)
		return nil, nil
	}, "self")
	t.sessionCall("task.create", false, func(c *call, a *args) (any, error) {
		task := c.p.newObject(classTask, map[string]any{
			"name_label":       a.str(0),
			"name_description": a.str(1),
			"created":          c.p.now(),
			"status":           "pending",
			"resident_on":      c.p.hosts[0].ref,
			"type":             "<none/>",
			"backtrace":        "()",
		})
		return task.ref, nil
	}, "label", "description")
	t.sessionCall("task.set_status", false, func(c *call, a *args) (any, error) {
		task, err := c.p.get(classTask, a.str(0))
		if err != nil {
			return nil, err
		}
		v, ok := convertField(classTask.index["status"], a.v[1])
		if !ok {
			return nil, fail(ErrFieldTypeError, "value")
		}
		task.f["status"] = v
		c.p.touch(task)
		return nil, nil
	}, "self", "value")
	t.sessionCall("task.set_progress", false, func(c *call, a *args) (any, error) {
		task, err := c.p.get(classTask, a.str(0))
		if err != nil {
			return nil, err
		}
		task.f["progress"] = a.float(1)
		c.p.touch(task)
		return nil, nil
	}, "self", "value")
}
