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
// Ephemeral disks do not cross cells. Nova's cross-cell resize snapshots
// the root disk only (nova/compute/manager.py,
// _prep_snapshot_based_resize_at_source and _snapshot_for_resize) and
// spawns the destination from that image with the instance's block
// devices (finish_snapshot_based_resize_at_dest,
// _finish_snapshot_based_resize_at_dest_spawn), so the driver creates the
// ephemeral disks of the new flavor blank and the source's ephemeral data
// is lost when the source is destroyed at confirm. xenflow does not lose
// it silently: an instance whose flavor has ephemeral_gb moves within its
// cell, where the same-cell move carries its ephemeral disks with the
// root (as Nova's XenAPI driver does), unless [Policy].AllowEphemeralLoss
// accepts Nova's behaviour. Until the confirm the source guest keeps its
// ephemeral disks, so a revert gets the data back.
//
// The snapshot image is deleted once nothing needs it: at confirm (after
// the destination's guest is found), at revert and at the end of a
// rollback, through the drivers that implement compute.ImageDeleter.
// PrepResizeAtDestTask's claim on the destination host holds the new
// flavor's resources from the check until the confirm, revert or
// rollback, so two moves cannot both take a host's last room.
//
// A [Conductor] runs a move in its cell (the migrate package's same-cell
// orchestrator) unless the cross-cell policy allows another cell and the
// scheduler picks a host there. Every step is written to a cell's Store,
// under that Store's lease, before its effect, so [Conductor.Resume] picks
// up a move stopped at any task boundary, and [Conductor.PollAutoConfirm]
// confirms the moves left waiting longer than resize_confirm_window.
// Every cell's Store must implement compute.InstanceDestroyer: the copy a
// move leaves behind is hard-deleted, durably, so that a later move may
// come back.
package crosscell
