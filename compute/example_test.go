package compute_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/statemachine"
)

// A save with an expected task_state is a compare-and-set: the writer that
// comes second gets an UnexpectedTaskStateError and changes nothing.
func ExampleMemoryStore_SaveInstance() {
	ctx := context.Background()
	store := compute.NewMemoryStore()
	_ = store.CreateInstance(ctx, &compute.Instance{UUID: "9f4c", VMState: statemachine.VMActive})

	a, _ := store.GetInstance(ctx, "9f4c")
	b, _ := store.GetInstance(ctx, "9f4c")

	a.TaskState = statemachine.TaskResizePrep
	fmt.Println("resize:", store.SaveInstance(ctx, a, statemachine.TaskNone))

	b.TaskState = statemachine.TaskRescuing
	err := store.SaveInstance(ctx, b, statemachine.TaskNone)
	var conflict *compute.UnexpectedTaskStateError
	fmt.Println("rescue lost:", errors.As(err, &conflict), conflict.Actual)

	got, _ := store.GetInstance(ctx, "9f4c")
	fmt.Println("stored task_state:", got.TaskState)
	// Output:
	// resize: <nil>
	// rescue lost: true resize_prep
	// stored task_state: resize_prep
}

// The statemachine tables and the Store together: check the API
// precondition, ask the resize table what comes next, and write it as one
// step under the instance's lease.
func Example_resizeStep() {
	ctx := context.Background()
	store := compute.NewMemoryStore()
	_ = store.CreateInstance(ctx, &compute.Instance{UUID: "9f4c", VMState: statemachine.VMActive, LaunchedAt: time.Now()})
	inst, _ := store.GetInstance(ctx, "9f4c")
	if err := statemachine.Check(statemachine.OpResize, inst.Subject(false)); err != nil {
		fmt.Println(err)
		return
	}
	lease, _ := store.AcquireLease(ctx, compute.LeaseRequest{InstanceUUID: "9f4c", Owner: "api", TTL: time.Minute})
	from := inst.FlowState(nil)
	row, _ := statemachine.LookupFlow(statemachine.FlowResize).Machine().Fire(from, statemachine.EvAPIResize, inst.Facts())
	inst, _, err := store.Transition(ctx, compute.TransitionRequest{InstanceUUID: "9f4c", Expect: from, Lease: lease,
		Apply: func(i *compute.Instance, m *compute.Migration) error {
			i.SetFlowState(m, row.To)
			i.Progress = 0
			return nil
		}})
	fmt.Println(row.Step, inst.FlowState(nil), err)
	// Output: compute_api.resize active/resize_prep/none <nil>
}
