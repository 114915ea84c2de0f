package rescue

import (
	"context"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/statemachine"
)

// PollResult says what a Poll did.
type PollResult struct {
	// Unrescued lists the instances taken out of rescue.
	Unrescued []string
	// Failed maps instance UUIDs to why their unrescue failed (a lease
	// held by another orchestrator among them).
	Failed map[string]error
}

// Poll unrescues every instance rescued for longer than rescue_timeout
// (nova/compute/manager.py, _poll_rescued_instances: launched_at older
// than the timeout). With RescueTimeout zero it does nothing, as in Nova.
// The host program calls it periodically.
func (o *Orchestrator) Poll(ctx context.Context) (PollResult, error) {
	var res PollResult
	if o.timeout == 0 {
		return res, nil
	}
	insts, err := o.store.ListInstances(ctx, compute.InstanceFilter{
		VMStates: []statemachine.VMState{statemachine.VMRescued}, TaskStates: []statemachine.TaskState{statemachine.TaskNone}})
	if err != nil {
		return res, err
	}
	cutoff := o.now().Add(-o.timeout)
	for _, inst := range insts {
		if inst.LaunchedAt.After(cutoff) {
			continue
		}
		_, err := o.unrescue(ctx, UnrescueRequest{InstanceUUID: inst.UUID, Admin: true}, statemachine.EvPeriodicPollRescuedInstances)
		if err != nil {
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
			if res.Failed == nil {
				res.Failed = map[string]error{}
			}
			res.Failed[inst.UUID] = err
			continue
		}
		res.Unrescued = append(res.Unrescued, inst.UUID)
	}
	return res, nil
}
