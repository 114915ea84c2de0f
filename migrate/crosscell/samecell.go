package crosscell

import (
	"context"

	"github.com/xenflow/xenflow/compute"
)

// sameCellStore is the view of a cell's Store a same-cell orchestrator
// gets: the copies and migrations of cross-cell moves are left out of its
// lists, so its Resume and PollAutoConfirm never drive a cross-cell move
// with the same-cell flows.
type sameCellStore struct {
	compute.Store
}

func (s sameCellStore) ListInstances(ctx context.Context, f compute.InstanceFilter) ([]*compute.Instance, error) {
	all, err := s.Store.ListInstances(ctx, f)
	return keep(all, func(i *compute.Instance) bool { return i.SystemMetadata[SysMetaSourceCell] == "" }), err
}

func (s sameCellStore) ListMigrations(ctx context.Context, f compute.MigrationFilter) ([]*compute.Migration, error) {
	all, err := s.Store.ListMigrations(ctx, f)
	return keep(all, func(m *compute.Migration) bool { return !m.CrossCellMove }), err
}
