package compute_test

import (
	"context"
	"encoding/json"
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

// A call waits for the reply until the context's deadline.
func ExampleLocalBus_Call() {
	bus := compute.NewLocalBus()
	defer bus.Close()
	cancel, _ := bus.Subscribe("compute.host2", func(ctx context.Context, m compute.Message) (json.RawMessage, error) {
		var req struct{ InstanceUUID string }
		if err := m.Decode(&req); err != nil {
			return nil, err
		}
		return json.Marshal("claimed for " + req.InstanceUUID)
	})
	defer cancel()

	ctx, done := context.WithTimeout(context.Background(), 5*time.Second)
	defer done()
	msg, _ := compute.NewMessage("compute.host2", "prep_resize", struct{ InstanceUUID string }{"9f4c"})
	reply, err := bus.Call(ctx, msg)
	fmt.Println(string(reply), err)
	// Output: "claimed for 9f4c" <nil>
}

// The statemachine tables and the Store together: check the API
// precondition, ask the resize table what comes next, and save it with a
// compare-and-set on the task_state.
func Example_resizeStep() {
	ctx := context.Background()
	store := compute.NewMemoryStore()
	_ = store.CreateInstance(ctx, &compute.Instance{UUID: "9f4c", VMState: statemachine.VMActive, LaunchedAt: time.Now()})
	inst, _ := store.GetInstance(ctx, "9f4c")
	if err := statemachine.Check(statemachine.OpResize, inst.Subject(false)); err != nil {
		fmt.Println(err)
		return
	}
	flow, _ := statemachine.LookupFlow(statemachine.FlowResize)
	m, _ := flow.Machine()
	next, _ := m.Next(inst.FlowState(nil), statemachine.EvAPIResize, inst.Facts())
	inst.TaskState = next.Task
	fmt.Println(next, store.SaveInstance(ctx, inst, statemachine.TaskNone))
	// Output: active/resize_prep/none <nil>
}
