package rescue

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/statemachine"
)

// RescueRequest asks for a rescue (nova/compute/api.py, API.rescue).
type RescueRequest struct {
	InstanceUUID string
	// ImageRef is the rescue image; empty falls back to the instance's
	// image_base_image_ref, then its image_ref.
	ImageRef string
	// AdminPassword is the rescue guest's password; empty draws one of
	// Config.PasswordLength symbols.
	AdminPassword string
	// RequestID keys the instance action; empty draws one.
	RequestID string
	UserID    string
	ProjectID string
	// Admin says the request has an admin context (a locked instance is
	// refused either way, as Nova's check_instance_lock does for owners).
	Admin bool
}

// RescueResult is a finished rescue.
type RescueResult struct {
	// AdminPassword is the rescue guest's password. It is returned here
	// once and kept nowhere else.
	AdminPassword string
	// Instance is the instance as stored after the rescue.
	Instance *compute.Instance
}

// Rescue puts the instance into rescue: the API's checks, task rescuing,
// then the driver's rescue and vm_state rescued with launched_at now. A
// driver failure restores the original guest and the instance's vm_state
// and returns a *NotRescuableError; a cancelled ctx stops between steps and
// leaves the rest to Resume.
func (o *Orchestrator) Rescue(ctx context.Context, req RescueRequest) (RescueResult, error) {
	inst, err := o.store.GetInstance(ctx, req.InstanceUUID)
	if err != nil {
		return RescueResult{}, err
	}
	if err := statemachine.Check(statemachine.OpRescue, inst.Subject(req.Admin)); err != nil {
		return RescueResult{}, err
	}
	image, err := o.rescueImage(ctx, inst, req.ImageRef)
	if err != nil {
		return RescueResult{}, err
	}
	password := req.AdminPassword
	if password == "" {
		if password, err = generatePassword(o.rand, o.pwLen); err != nil {
			return RescueResult{}, err
		}
	}
	p, err := o.begin(ctx, opRequest{InstanceUUID: inst.UUID, RequestID: req.RequestID, Action: statemachine.ActionRescue,
		UserID: req.UserID, ProjectID: req.ProjectID, Event: "compute_rescue_instance"})
	if err != nil {
		return RescueResult{}, err
	}
	defer p.end()
	if p.inst.FlowState(nil) != inst.FlowState(nil) {
		return RescueResult{}, &compute.UnexpectedStateError{InstanceUUID: inst.UUID,
			Expected: inst.FlowState(nil), Actual: p.inst.FlowState(nil)}
	}
	pre := p.inst.VMState
	err = p.step(ctx, statemachine.EvAPIRescue, func(i *compute.Instance) {
		i.TaskState = statemachine.TaskRescuing
		setSysMeta(i, SysMetaRescueImageRef, image)
		setSysMeta(i, SysMetaPreRescueVMState, string(pre))
	})
	if err != nil {
		return RescueResult{}, err
	}
	if err := p.rescue(ctx, image, password); err != nil {
		return RescueResult{}, err
	}
	return RescueResult{AdminPassword: password, Instance: p.inst.Clone()}, nil
}

// rescueImage returns the rescue image: ref, else image_base_image_ref,
// else image_ref (nova/compute/manager.py, _get_rescue_image), checked
// with the ImageChecker.
func (o *Orchestrator) rescueImage(ctx context.Context, inst *compute.Instance, ref string) (string, error) {
	if ref == "" {
		ref = inst.SystemMetadata[compute.SysMetaImageBaseImageRef]
	}
	if ref == "" {
		ref = inst.ImageRef
	}
	if ref == "" {
		return "", &ImageNotFoundError{InstanceUUID: inst.UUID}
	}
	if o.images != nil {
		ok, err := o.images.ImageExists(ctx, inst.Host, ref)
		if err != nil {
			return "", fmt.Errorf("rescue: instance %s: checking image %q: %w", inst.UUID, ref, err)
		}
		if !ok {
			return "", &ImageNotFoundError{InstanceUUID: inst.UUID, ImageRef: ref}
		}
	}
	return ref, nil
}

// rescue is the compute side (nova/compute/manager.py, rescue_instance):
// the driver's rescue, then vm_state rescued.
func (p *op) rescue(ctx context.Context, image, password string) error {
	start := p.o.now()
	p.notify(ctx, statemachine.NotifyRescueStart)
	err := p.try(ctx, func(ctx context.Context) error {
		return p.o.driver.Rescue(ctx, compute.RescueRequest{Instance: p.inst, Host: p.inst.Host,
			ImageRef: image, AdminPassword: password})
	})
	if err != nil {
		if ctx.Err() != nil {
			return err // stopped: Resume finishes the job
		}
		return p.rollbackRescue(ctx, start, err)
	}
	power := p.powerState(ctx, statemachine.PowerRunning)
	err = p.step(ctx, statemachine.EvComputeRescue, func(i *compute.Instance) {
		i.VMState, i.TaskState, i.PowerState = statemachine.VMRescued, statemachine.TaskNone, power
		i.LaunchedAt = p.o.now()
		delete(i.SystemMetadata, SysMetaRescueImageRef)
	})
	if err != nil {
		return err
	}
	p.notify(ctx, statemachine.NotifyExists)
	p.notify(ctx, statemachine.NotifyRescueEnd)
	p.eventResult(ctx, start, nil)
	return nil
}

// rollbackRescue puts the original guest back after a failed or
// interrupted rescue: the driver's unrescue (which destroys any rescue
// guest but never the original's disks, and releases the bootlock), a
// power-off when the instance was stopped, and the vm_state it had. When
// that fails too, the instance goes to error as in Nova.
func (p *op) rollbackRescue(ctx context.Context, start time.Time, cause error) error {
	p.fault(ctx, cause)
	err := p.restoreOriginal(ctx)
	if err != nil && ctx.Err() != nil {
		return errors.Join(cause, err)
	}
	if err == nil {
		err = p.step(ctx, statemachine.EvComputeRescueRollback, func(i *compute.Instance) {
			i.TaskState = statemachine.TaskNone
			i.PowerState = p.powerState(ctx, i.PowerState)
			delete(i.SystemMetadata, SysMetaRescueImageRef)
		})
		if err != nil {
			return errors.Join(cause, err)
		}
		p.eventResult(ctx, start, cause)
		return &NotRescuableError{InstanceUUID: p.inst.UUID, RolledBack: true, Err: cause}
	}
	cause = errors.Join(cause, err)
	p.fault(ctx, err)
	if serr := p.step(ctx, statemachine.EvComputeRescueError, func(i *compute.Instance) {
		i.VMState, i.TaskState = statemachine.VMError, statemachine.TaskNone
	}); serr != nil {
		return errors.Join(cause, serr)
	}
	p.eventResult(ctx, start, cause)
	return &NotRescuableError{InstanceUUID: p.inst.UUID, Err: cause}
}

// restoreOriginal undoes whatever part of a rescue the driver did.
func (p *op) restoreOriginal(ctx context.Context) error {
	req := compute.InstanceRequest{Instance: p.inst, Host: p.inst.Host}
	if err := p.try(ctx, func(ctx context.Context) error { return p.o.driver.Unrescue(ctx, req) }); err != nil {
		return err
	}
	if statemachine.VMState(p.inst.SystemMetadata[SysMetaPreRescueVMState]) != statemachine.VMStopped {
		return nil
	}
	return p.try(ctx, func(ctx context.Context) error {
		return p.o.driver.PowerOff(ctx, compute.PowerOffRequest{Instance: p.inst, Host: p.inst.Host, Clean: p.o.clean})
	})
}
