package sqlstore_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/sqlstore"
	"github.com/xenflow/xenflow/statemachine"
)

// Open a SQLite file, store an instance, take its lease and write one
// flow step.
func ExampleOpen() {
	dir, err := os.MkdirTemp("", "sqlstore-example-")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	s, err := sqlstore.Open(ctx, filepath.Join(dir, "state.db")) // or "postgres://…"
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()
	inst := &compute.Instance{UUID: "i1", Host: "host-a", ProjectID: "p1", VMState: statemachine.VMActive,
		Flavor: &compute.Flavor{ID: "1", MemoryMB: 2048, VCPUs: 1, RootGB: 20}}
	if err := s.CreateInstance(ctx, inst); err != nil {
		fmt.Println(err)
		return
	}
	lease, err := s.AcquireLease(ctx, compute.LeaseRequest{InstanceUUID: "i1", Owner: "orchestrator-1", TTL: time.Minute})
	if err != nil {
		fmt.Println(err)
		return
	}
	got, _, err := s.Transition(ctx, compute.TransitionRequest{InstanceUUID: "i1", Lease: lease,
		Expect: statemachine.FlowState{VM: statemachine.VMActive},
		Apply: func(inst *compute.Instance, _ *compute.Migration) error {
			inst.TaskState = statemachine.TaskRescuing
			return nil
		}})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(s.Backend(), got.FlowState(nil), "fence", lease.Fence)
	// Output: sqlite active/rescuing/none fence 1
}
