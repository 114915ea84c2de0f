package rescue

import (
	"context"
	"errors"
	"fmt"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/statemachine"
)

// Resume drives every rescue and unrescue that an orchestrator left in
// progress (task_state rescuing or unrescuing) to an end; Nova's compute
// restart leaves them stuck (nova/compute/manager.py, _init_instance). An
// interrupted rescue is rolled back to the original guest, since its
// password went to a caller that never got the answer: the driver's
// rescue is first called again, so that what its interrupted call left
// half-made is finished and then removed by the unrescue. An interrupted
// unrescue is finished. Instances whose lease another orchestrator holds
// are left to it and reported in a *ResumeError, with any failure.
func (o *Orchestrator) Resume(ctx context.Context) error {
	insts, err := o.store.ListInstances(ctx, compute.InstanceFilter{
		TaskStates: []statemachine.TaskState{statemachine.TaskRescuing, statemachine.TaskUnrescuing}})
	if err != nil {
		return err
	}
	rerr := &ResumeError{}
	for _, inst := range insts {
		err := o.resumeOne(ctx, inst.UUID)
		var held *compute.LeaseHeldError
		switch {
		case err == nil:
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.As(err, &held):
			if rerr.Held == nil {
				rerr.Held = map[string]HeldBy{}
			}
			rerr.Held[inst.UUID] = HeldBy{Owner: held.Holder, Until: held.Expires}
		default:
			if rerr.Failed == nil {
				rerr.Failed = map[string]error{}
			}
			rerr.Failed[inst.UUID] = err
		}
	}
	if rerr.Held == nil && rerr.Failed == nil {
		return nil
	}
	return rerr
}

// errInterrupted is the fault a resumed rescue records.
var errInterrupted = errors.New("rescue: interrupted before it finished; the original guest was restored")

// resumeOne finishes one instance's operation under its lease.
func (o *Orchestrator) resumeOne(ctx context.Context, uuid string) error {
	p, err := o.begin(ctx, opRequest{InstanceUUID: uuid, Event: ""})
	if err != nil {
		return err
	}
	defer p.end()
	if err := p.adoptAction(ctx); err != nil {
		return err
	}
	start := o.now()
	switch p.inst.TaskState {
	case statemachine.TaskRescuing:
		p.finishDriverRescue(ctx)
		err := p.rollbackRescue(ctx, start, errInterrupted)
		var nr *NotRescuableError
		if errors.As(err, &nr) && nr.RolledBack {
			return nil
		}
		return err
	case statemachine.TaskUnrescuing:
		return p.unrescue(ctx, start)
	default:
		return nil // finished by someone else since the listing
	}
}

// finishDriverRescue lets the driver finish the rescue it was doing
// before the rollback undoes it: a driver call stopped part-way may have
// left pieces (a clone of the image not yet tagged as the rescue's) that
// only its own repeated call recognises, while an unrescue removes what a
// finished rescue made. The guest's password is thrown away; a failure
// here only means there is less to undo.
func (p *op) finishDriverRescue(ctx context.Context) {
	image := p.inst.SystemMetadata[SysMetaRescueImageRef]
	if image == "" {
		return
	}
	password, err := generatePassword(p.o.rand, p.o.pwLen)
	if err != nil {
		return
	}
	err = p.call(ctx, func(ctx context.Context) error {
		return p.o.driver.Rescue(ctx, compute.RescueRequest{Instance: p.inst, Host: p.inst.Host, ImageRef: image, AdminPassword: password})
	})
	if err != nil {
		p.o.log.Debug("rescue: finishing an interrupted rescue before its rollback", "instance", p.inst.UUID, "err", err)
	}
}

// adoptAction continues the instance's newest unfinished rescue or
// unrescue action, so its events land where the first orchestrator began.
func (p *op) adoptAction(ctx context.Context) error {
	actions, err := p.o.store.ListActions(ctx, p.inst.UUID)
	if err != nil {
		return err
	}
	want := statemachine.ActionRescue
	p.event = "compute_rescue_instance"
	if p.inst.TaskState == statemachine.TaskUnrescuing {
		want, p.event = statemachine.ActionUnrescue, "compute_unrescue_instance"
	}
	for i := len(actions) - 1; i >= 0; i-- {
		if a := actions[i]; a.Action == want && a.FinishTime.IsZero() {
			p.requestID = a.RequestID
			return nil
		}
	}
	a := &compute.InstanceAction{RequestID: p.requestID, InstanceUUID: p.inst.UUID, Action: want, StartTime: p.o.now()}
	if err := p.o.store.CreateAction(ctx, a); err != nil {
		return fmt.Errorf("rescue: resuming instance %s: %w", p.inst.UUID, err)
	}
	return nil
}
