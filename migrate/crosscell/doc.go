// Package crosscell moves instances between cells: a resize or cold
// migration whose destination host is in another cell, with its confirm
// and revert, orchestrated by the conductor with synchronous calls as
// nova/conductor/tasks/cross_cell_migrate.py does (CrossCellMigrationTask
// and its sub-tasks TargetDBSetupTask, PrepResizeAtDestTask,
// PrepResizeAtSourceTask and FinishResizeAtDestTask; ConfirmResizeTask and
// RevertResizeTask).
//
// Each [Cell] has its own compute.Store and its own pools; the computes of
// two cells never talk to each other. The root disk travels through the
// image store: the source snapshots it (compute.Driver.Snapshot) and the
// destination spawns from the snapshot (compute.Driver.Spawn). The
// [APIStore] holds the instance mappings (instance → cell) and request
// specs. While a move is in progress the instance exists in both cells;
// the copy the API does not show is marked Hidden, and [VisibleInstances]
// and [QuotaCharges] skip it.
//
// A [Conductor] runs a move in its cell (the migrate package's same-cell
// orchestrator) unless the cross-cell policy allows another cell and the
// scheduler picks a host there. Every step is written to a cell's Store,
// under that Store's lease, before its effect, so [Conductor.Resume] picks
// up a move stopped at any task boundary.
package crosscell
