package rescue

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/statemachine"
)

// rescueMachine is the rescue flow's table (statemachine.FlowRescue).
func rescueMachine() *statemachine.FlowMachine {
	return statemachine.LookupFlow(statemachine.FlowRescue).Machine()
}

// op is one operation on one instance, driven under a lease.
type op struct {
	o         *Orchestrator
	lease     compute.Lease
	inst      *compute.Instance
	requestID string
	event     string // the instance action event, e.g. "compute_rescue_instance"
}

// opRequest is what begin needs.
type opRequest struct {
	InstanceUUID string
	RequestID    string
	// Action, when set, is recorded as a new instance action.
	Action    statemachine.Action
	UserID    string
	ProjectID string
	Event     string
}

// begin takes the instance's lease, reads the instance under it and, for a
// new request, records the instance action.
func (o *Orchestrator) begin(ctx context.Context, req opRequest) (*op, error) {
	lease, err := o.store.AcquireLease(ctx, compute.LeaseRequest{InstanceUUID: req.InstanceUUID, Owner: o.owner, TTL: o.ttl})
	if err != nil {
		return nil, err
	}
	p := &op{o: o, lease: lease, requestID: req.RequestID, event: req.Event}
	if p.inst, err = o.store.GetInstance(ctx, req.InstanceUUID); err != nil {
		p.end()
		return nil, err
	}
	if p.requestID == "" {
		if p.requestID, err = newRequestID(o.rand); err != nil {
			p.end()
			return nil, err
		}
	}
	if req.Action != "" {
		a := &compute.InstanceAction{RequestID: p.requestID, InstanceUUID: req.InstanceUUID, Action: req.Action,
			UserID: req.UserID, ProjectID: req.ProjectID, StartTime: o.now()}
		if err := o.store.CreateAction(ctx, a); err != nil {
			p.end()
			return nil, err
		}
	}
	return p, nil
}

// end gives the lease back. It runs on a context of its own: an operation
// stopped by its caller's context still releases what it holds.
func (p *op) end() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.o.store.ReleaseLease(ctx, p.lease); err != nil {
		p.o.log.Debug("rescue: releasing lease", "instance", p.lease.InstanceUUID, "err", err)
	}
}

// step writes one transition of the rescue table: the instance's current
// state is expected, apply changes it, and the result must be the table's
// target. Nothing is written when the stored state, the lease or the
// table disagree.
func (p *op) step(ctx context.Context, ev statemachine.Event, apply func(*compute.Instance)) error {
	from := p.inst.FlowState(nil)
	to, err := p.o.machine.Next(from, ev, p.inst.Facts())
	if err != nil {
		return err
	}
	inst, _, err := p.o.store.Transition(ctx, compute.TransitionRequest{
		InstanceUUID: p.inst.UUID, Expect: from, Lease: p.lease,
		Apply: func(i *compute.Instance, _ *compute.Migration) error {
			apply(i)
			if got := i.FlowState(nil); got != to {
				return fmt.Errorf("rescue: step %s of instance %s: wrote %s, the table says %s", ev, i.UUID, got, to)
			}
			return nil
		}})
	if err != nil {
		return err
	}
	p.inst = inst
	p.o.log.Debug("rescue: step", "instance", inst.UUID, "event", string(ev), "state", to.String())
	return nil
}

// call runs a driver call while keeping the lease: it is renewed every
// third of its period, and a renewal that fails cancels the call.
func (p *op) call(ctx context.Context, fn func(context.Context) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		p.keep(ctx, done, cancel)
	}()
	err := fn(ctx)
	close(done)
	wg.Wait()
	if cause := context.Cause(ctx); err != nil && cause != nil && !errors.Is(cause, context.Canceled) {
		return fmt.Errorf("%w (%w)", err, cause)
	}
	return err
}

// try runs a driver call through call up to the configured number of
// times: the driver's calls are idempotent, so a retry finishes the job a
// transient failure interrupted. Errors that a retry cannot change (not
// implemented, not found, an invalid record) and a stopped ctx end it at
// once.
func (p *op) try(ctx context.Context, fn func(context.Context) error) error {
	var err error
	for i := 0; i < p.o.attempts; i++ {
		if i > 0 && p.o.delay > 0 {
			t := time.NewTimer(p.o.delay)
			select {
			case <-ctx.Done():
				t.Stop()
				return errors.Join(err, ctx.Err())
			case <-t.C:
			}
		}
		if err = p.call(ctx, fn); err == nil || ctx.Err() != nil || final(err) {
			return err
		}
		p.o.log.Debug("rescue: driver call failed; trying again", "instance", p.inst.UUID, "try", i+1, "err", err)
	}
	return err
}

// final reports whether err is one a retry cannot change.
func final(err error) bool {
	return errors.Is(err, compute.ErrNotImplemented) || errors.Is(err, compute.ErrNotFound) ||
		errors.Is(err, compute.ErrInvalidRecord)
}

// keep renews the lease until done closes.
func (p *op) keep(ctx context.Context, done <-chan struct{}, cancel context.CancelCauseFunc) {
	t := time.NewTicker(p.o.ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-ctx.Done():
			return
		case <-t.C:
			l, err := p.o.store.RenewLease(ctx, p.lease, p.o.ttl)
			if err != nil {
				cancel(err)
				return
			}
			p.lease = l
		}
	}
}

// notify sends one of Nova's notifications about the instance; a failure to
// send is logged, never returned (nova/compute/utils.py
// notify_about_instance_usage does not fail the operation either).
func (p *op) notify(ctx context.Context, ev statemachine.Notification) {
	n := compute.Notification{EventType: ev, Priority: compute.PriorityInfo,
		PublisherID: "compute." + p.inst.Host, Timestamp: p.o.now(), Payload: compute.NewPayload(p.inst)}
	if err := p.o.notifier.Notify(ctx, n); err != nil {
		p.o.log.Debug("rescue: notification not sent", "event", string(ev), "err", err)
	}
}

// fault records why the operation failed (Nova's instance_faults).
func (p *op) fault(ctx context.Context, err error) {
	f := &compute.Fault{InstanceUUID: p.inst.UUID, Code: 500, Message: err.Error(), Host: p.inst.Host}
	if aerr := p.o.store.AddFault(ctx, f); aerr != nil {
		p.o.log.Debug("rescue: fault not recorded", "instance", p.inst.UUID, "err", aerr)
	}
}

// eventResult records the instance action event of the operation and,
// for a success or a final failure, finishes the action.
func (p *op) eventResult(ctx context.Context, start time.Time, err error) {
	ev := compute.InstanceActionEvent{Event: p.event, Host: p.inst.Host, StartTime: start,
		FinishTime: p.o.now(), Result: compute.EventResultSuccess}
	if err != nil {
		ev.Result, ev.Traceback = compute.EventResultError, err.Error()
	}
	if serr := p.o.store.SaveActionEvent(ctx, p.inst.UUID, p.requestID, ev); serr != nil {
		p.o.log.Debug("rescue: action event not recorded", "instance", p.inst.UUID, "err", serr)
		return
	}
	if ferr := p.o.store.FinishAction(ctx, p.inst.UUID, p.requestID, p.o.now()); ferr != nil {
		p.o.log.Debug("rescue: action not finished", "instance", p.inst.UUID, "err", ferr)
	}
}

// powerState asks the driver for the guest's power state; when it cannot
// say, fallback is kept.
func (p *op) powerState(ctx context.Context, fallback statemachine.PowerState) statemachine.PowerState {
	info, err := p.o.driver.GetInfo(ctx, compute.InstanceRequest{Instance: p.inst, Host: p.inst.Host})
	if err != nil {
		return fallback
	}
	return info.PowerState
}

func setSysMeta(i *compute.Instance, k, v string) {
	if i.SystemMetadata == nil {
		i.SystemMetadata = map[string]string{}
	}
	i.SystemMetadata[k] = v
}
