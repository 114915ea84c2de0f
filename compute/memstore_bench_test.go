package compute

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/xenflow/xenflow/statemachine"
)

// BenchmarkMemoryStoreTransition measures one flow step (a Transition of
// an instance and its migration under a lease) against a plain
// SaveInstance, the baseline, on a store of 1,000 instances.
func BenchmarkMemoryStoreTransition(b *testing.B) {
	ctx := context.Background()
	const n = 1000
	s := NewMemoryStore()
	leases := make([]Lease, n)
	for i := range leases {
		id := fmt.Sprint("u", i)
		inst := testInstance(id)
		inst.TaskState = statemachine.TaskResizePrep
		if err := s.CreateInstance(ctx, inst); err != nil {
			b.Fatal(err)
		}
		if err := s.CreateMigration(ctx, &Migration{UUID: "m" + id, InstanceUUID: id,
			Status: statemachine.MigrationPreMigrating, Type: statemachine.MigrationTypeResize}); err != nil {
			b.Fatal(err)
		}
		var err error
		if leases[i], err = s.AcquireLease(ctx, LeaseRequest{InstanceUUID: id, Owner: "o", TTL: time.Hour}); err != nil {
			b.Fatal(err)
		}
	}
	a := statemachine.FlowState{VM: statemachine.VMActive, Task: statemachine.TaskResizePrep, Migration: statemachine.MigrationPreMigrating}
	c := a
	c.Phase = statemachine.PhaseDestClaimed
	claimed := make([]bool, n) // which of a and c each instance is in
	b.Run("Transition", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			k := i % n
			from, to := a, c
			if claimed[k] {
				from, to = c, a
			}
			claimed[k] = !claimed[k]
			_, _, err := s.Transition(ctx, TransitionRequest{InstanceUUID: leases[k].InstanceUUID,
				MigrationUUID: "m" + leases[k].InstanceUUID, Expect: from, Lease: leases[k],
				Apply: func(inst *Instance, m *Migration) error { inst.SetFlowState(m, to); return nil }})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("SaveInstance", func(b *testing.B) {
		b.ReportAllocs()
		inst, _ := s.GetInstance(ctx, "u0")
		for i := 0; i < b.N; i++ {
			if err := s.SaveInstance(ctx, inst, inst.TaskState); err != nil {
				b.Fatal(err)
			}
		}
	})
}
