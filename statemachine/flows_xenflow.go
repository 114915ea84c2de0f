package statemachine

// The events of the rows xenflow adds to Nova's move, confirm and revert
// tables. Nova has no such rows: where these fire, Nova leaves the
// instance in error (nova/compute/manager.py, _finish_resize's and
// _confirm_resize's and revert_resize's exception handlers).
const (
	// EvRollbackToSource starts the rollback of a move whose finish on
	// the destination failed (or whose destination was lost) after the
	// source guest was powered off: the source guest is intact, so it is
	// restored instead of leaving the instance in error.
	EvRollbackToSource Event = "xenflow.rollback_to_source"
	// EvRolledBack ends that rollback: the instance is back on the source
	// in its previous vm_state, the migration in error, a fault recorded.
	EvRolledBack Event = "xenflow.rolled_back"
	// EvRollbackError is a rollback that could not restore the source.
	EvRollbackError Event = "xenflow.rollback.error"
	// EvConfirmFailedIntact is a confirm whose source cleanup failed: the
	// instance stays in VERIFY_RESIZE on the intact destination.
	EvConfirmFailedIntact Event = "xenflow.confirm.failed_intact"
	// EvRevertFailedIntact is a revert that could not destroy the
	// destination guest: the instance stays in VERIFY_RESIZE there.
	EvRevertFailedIntact Event = "xenflow.revert.failed_intact"
)

// xenflowRows are the rows xenflow adds to a flow's table (Nova's move,
// confirm and revert tables): the rollback to an intact source, and the
// confirm and revert failures that keep the instance in VERIFY_RESIZE.
// Their events are named "xenflow.*" so that they never pass for Nova's.
func xenflowRows(flow FlowName) []FlowTransition {
	resized := st(VMResized, TaskNone, MigrationFinished)
	switch flow {
	case FlowConfirm, FlowAutoConfirm:
		return []FlowTransition{{From: st(VMResized, TaskNone, MigrationConfirming),
			Event: EvConfirmFailedIntact, To: resized, Step: "confirm_resize",
			Note: "xenflow: driver.confirm_migration failed: the destination guest is intact; migration finished again, downsize reservation rolled back, fault recorded"}}
	case FlowRevert:
		return []FlowTransition{{From: st(VMResized, TaskResizeReverting, MigrationReverting),
			Event: EvRevertFailedIntact, To: resized, Step: "revert_resize",
			Note: "xenflow: driver.destroy of the destination failed: the source stays off, the instance stays on the destination; reverse reservation rolled back, fault recorded"}}
	case FlowResize, FlowMigrate, FlowResizeDown:
		return rollbackRows()
	}
	return nil
}

// rollbackRows are a move's rollback to its intact source, from either
// old vm_state.
func rollbackRows() []FlowTransition {
	var rows []FlowTransition
	for _, old := range []VMState{VMActive, VMStopped} {
		rolling := st(old, TaskResizeReverting, MigrationReverting)
		for _, from := range []FlowState{st(old, TaskResizeMigrated, MigrationPostMigrating),
			st(old, TaskResizeFinish, MigrationPostMigrating)} {
			rows = append(rows, FlowTransition{From: from, Event: EvRollbackToSource, To: rolling,
				Step: "finish_resize", Notifications: notes(NotifyResizeError),
				Note: "xenflow: the finish failed after the power-off but the source guest is intact: fault recorded, roll back to the source"})
		}
		rows = append(rows,
			FlowTransition{From: rolling, Event: EvRolledBack, To: st(old, TaskNone, MigrationError),
				Step: "finish_revert_migration", Notifications: notes(NotifyResizeRevertStart, NotifyResizeRevertEnd),
				Note: "xenflow: destination guest destroyed, source guest restored (started unless old_vm_state is stopped); host/node and flavor := source's; upsize reservation rolled back"},
			FlowTransition{From: rolling, Event: EvRollbackError, To: st(VMError, TaskNone, MigrationError),
				Step: "finish_revert_migration", Note: "xenflow: the source could not be restored: vm_state error"})
	}
	return rows
}
