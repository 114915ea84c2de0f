package rescue

import (
	"context"
	"errors"
	"time"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/statemachine"
)

// UnrescueRequest asks for an unrescue (nova/compute/api.py, API.unrescue).
type UnrescueRequest struct {
	InstanceUUID string
	// RequestID keys the instance action; empty draws one.
	RequestID string
	UserID    string
	ProjectID string
	Admin     bool
}

// Unrescue takes the instance out of rescue: the API's checks, task
// unrescuing, then the driver's unrescue and vm_state active. It returns
// the instance as stored. A driver failure that kept the rescue working
// leaves the instance rescued; any other sets it to error (as Nova's
// _error_out_instance_on_exception does); both are an *UnrescueError.
func (o *Orchestrator) Unrescue(ctx context.Context, req UnrescueRequest) (*compute.Instance, error) {
	return o.unrescue(ctx, req, statemachine.EvAPIUnrescue)
}

func (o *Orchestrator) unrescue(ctx context.Context, req UnrescueRequest, ev statemachine.Event) (*compute.Instance, error) {
	inst, err := o.store.GetInstance(ctx, req.InstanceUUID)
	if err != nil {
		return nil, err
	}
	if err := statemachine.Check(statemachine.OpUnrescue, inst.Subject(req.Admin)); err != nil {
		return nil, err
	}
	p, err := o.begin(ctx, opRequest{InstanceUUID: inst.UUID, RequestID: req.RequestID, Action: statemachine.ActionUnrescue,
		UserID: req.UserID, ProjectID: req.ProjectID, Event: "compute_unrescue_instance"})
	if err != nil {
		return nil, err
	}
	defer p.end()
	if err := p.step(ctx, ev, func(i *compute.Instance) { i.TaskState = statemachine.TaskUnrescuing }); err != nil {
		return nil, err
	}
	if err := p.unrescue(ctx, o.now()); err != nil {
		return nil, err
	}
	return p.inst.Clone(), nil
}

// unrescue is the compute side (nova/compute/manager.py,
// unrescue_instance): the driver's unrescue, then vm_state active.
func (p *op) unrescue(ctx context.Context, start time.Time) error {
	p.notify(ctx, statemachine.NotifyUnrescueStart)
	req := compute.InstanceRequest{Instance: p.inst, Host: p.inst.Host}
	err := p.try(ctx, func(ctx context.Context) error { return p.o.driver.Unrescue(ctx, req) })
	if err != nil && ctx.Err() != nil {
		return err // stopped: Resume finishes the job
	}
	ev := statemachine.EvComputeUnrescue
	var rb *compute.InstanceFaultRollback
	switch {
	case err == nil:
	case errors.Is(err, compute.ErrNotImplemented):
		ev = statemachine.EvComputeUnrescueNotImplemented
	case errors.As(err, &rb):
		ev = statemachine.EvComputeUnrescueRollback
	default:
		ev = statemachine.EvComputeUnrescueError
	}
	if err != nil {
		p.fault(ctx, err)
	}
	serr := p.step(ctx, ev, func(i *compute.Instance) {
		i.TaskState = statemachine.TaskNone
		switch ev {
		case statemachine.EvComputeUnrescueRollback:
			i.VMState = statemachine.VMRescued
		case statemachine.EvComputeUnrescueError:
			i.VMState = statemachine.VMError
		default:
			i.VMState = statemachine.VMActive
			i.PowerState = p.powerState(ctx, statemachine.PowerRunning)
			delete(i.SystemMetadata, SysMetaPreRescueVMState)
		}
	})
	if serr != nil {
		return errors.Join(err, serr)
	}
	p.eventResult(ctx, start, err)
	if err != nil {
		return &UnrescueError{InstanceUUID: p.inst.UUID, StillRescued: ev == statemachine.EvComputeUnrescueRollback, Err: err}
	}
	p.notify(ctx, statemachine.NotifyUnrescueEnd)
	return nil
}
