package compute_test

import (
	"context"
	"errors"
	"testing"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/statemachine"
)

// TestMemoryStoreDestroyZeroAndNil checks the hard delete of the stores
// the conformance suite does not build: a nil *MemoryStore refuses it, a
// zero MemoryStore finds nothing to delete and then works as a store.
func TestMemoryStoreDestroyZeroAndNil(t *testing.T) {
	ctx := context.Background()
	var none *compute.MemoryStore
	if err := none.DestroyInstance(ctx, "i1"); !errors.Is(err, compute.ErrNilStore) {
		t.Fatalf("nil store: %v, want ErrNilStore", err)
	}
	var zero compute.MemoryStore
	steps := []struct {
		name string
		do   func() error
	}{
		{"destroy on an empty store", func() error { return zero.DestroyInstance(ctx, "i1") }},
		{"create", func() error {
			return zero.CreateInstance(ctx, &compute.Instance{UUID: "i1", VMState: statemachine.VMActive})
		}},
		{"destroy", func() error { return zero.DestroyInstance(ctx, "i1") }},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
	}
	if _, err := zero.GetInstance(ctx, "i1"); !errors.Is(err, compute.ErrNotFound) {
		t.Fatalf("after the destroy: %v, want not found", err)
	}
}
