package compute_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/statemachine"
)

// A flow step takes the instance's lease, then changes the instance and its
// migration together from the state it expects. An orchestrator whose lease
// passed to another cannot write.
func ExampleMemoryStore_Transition() {
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	store := compute.NewMemoryStore(compute.WithStoreClock(func() time.Time { return now }))
	_ = store.CreateInstance(ctx, &compute.Instance{UUID: "9f4c", VMState: statemachine.VMActive,
		TaskState: statemachine.TaskResizePrep})

	lease, _ := store.AcquireLease(ctx, compute.LeaseRequest{InstanceUUID: "9f4c", Owner: "orchestrator-1", TTL: time.Minute})
	// MigrationTask._execute: the migration is created pre-migrating in the
	// same write as the instance's change.
	inst, mig, err := store.Transition(ctx, compute.TransitionRequest{
		InstanceUUID: "9f4c",
		NewMigration: &compute.Migration{UUID: "m1", InstanceUUID: "9f4c", Status: statemachine.MigrationPreMigrating,
			Type: statemachine.MigrationTypeResize},
		Expect: statemachine.FlowState{VM: statemachine.VMActive, Task: statemachine.TaskResizePrep},
		Lease:  lease,
		Apply: func(inst *compute.Instance, _ *compute.Migration) error {
			inst.SystemMetadata = map[string]string{compute.SysMetaOldVMState: "active"}
			return nil
		},
	})
	fmt.Println(inst.FlowState(mig), err)

	now = now.Add(2 * time.Minute) // orchestrator-1 stalls; its lease expires
	taken, _ := store.AcquireLease(ctx, compute.LeaseRequest{InstanceUUID: "9f4c", Owner: "orchestrator-2", TTL: time.Minute})
	_, _, err = store.Transition(ctx, compute.TransitionRequest{
		InstanceUUID: "9f4c", MigrationUUID: "m1", Lease: lease,
		Expect: statemachine.FlowState{VM: statemachine.VMActive, Task: statemachine.TaskResizePrep,
			Migration: statemachine.MigrationPreMigrating},
		Apply: func(inst *compute.Instance, mig *compute.Migration) error {
			inst.TaskState, mig.Status = statemachine.TaskResizeMigrating, statemachine.MigrationMigrating
			return nil
		},
	})
	var lost *compute.LeaseLostError
	fmt.Println(errors.As(err, &lost), lost.Fence, taken.Fence)
	// Output:
	// active/resize_prep/pre-migrating <nil>
	// true 1 2
}
