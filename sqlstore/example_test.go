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

// Keep a fence log, let one orchestrator's lease pass to another, and
// check that no step was written under a lease that had passed on.
func ExampleCheckFenceLog() {
	dir, err := os.MkdirTemp("", "sqlstore-example-")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	s, err := sqlstore.Open(ctx, filepath.Join(dir, "state.db"), sqlstore.WithFenceLog())
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
	for _, owner := range []string{"orchestrator-1", "orchestrator-2"} {
		lease, err := s.AcquireLease(ctx, compute.LeaseRequest{InstanceUUID: "i1", Owner: owner, TTL: time.Minute})
		if err != nil {
			fmt.Println(err)
			return
		}
		if err := s.ReleaseLease(ctx, lease); err != nil {
			fmt.Println(err)
			return
		}
	}
	log, err := s.FenceLog(ctx, "i1")
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, e := range log {
		fmt.Println(e.Seq, e.Kind, e.Owner, "fence", e.Fence)
	}
	fmt.Println("check:", sqlstore.CheckFenceLog(log))
	// Output:
	// 1 lease orchestrator-1 fence 1
	// 2 lease orchestrator-2 fence 2
	// check: <nil>
}
