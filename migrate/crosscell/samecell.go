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
	CellStore
}

func (s sameCellStore) ListInstances(ctx context.Context, f compute.InstanceFilter) ([]*compute.Instance, error) {
	all, err := s.CellStore.ListInstances(ctx, f)
	if err != nil {
		return nil, err
	}
	out := all[:0]
	for _, i := range all {
		if i.SystemMetadata[SysMetaSourceCell] == "" {
			out = append(out, i)
		}
	}
	return out, nil
}

func (s sameCellStore) ListMigrations(ctx context.Context, f compute.MigrationFilter) ([]*compute.Migration, error) {
	all, err := s.CellStore.ListMigrations(ctx, f)
	if err != nil {
		return nil, err
	}
	out := all[:0]
	for _, m := range all {
		if !m.CrossCellMove {
			out = append(out, m)
		}
	}
	return out, nil
}
