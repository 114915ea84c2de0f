package migrate

import (
	sm "github.com/xenflow/xenflow/statemachine"
)

// The events of the rows xenflow adds to Nova's tables.
const (
	// EvRollbackToSource starts the rollback of a move whose finish on the
	// destination failed (or whose destination was lost) after the source
	// guest was powered off: the source guest is intact, so it is
	// restored instead of leaving the instance in error.
	EvRollbackToSource sm.Event = "xenflow.rollback_to_source"
	// EvRolledBack ends that rollback: the instance is back on the source
	// in its previous vm_state, the migration in error, a fault recorded.
	EvRolledBack sm.Event = "xenflow.rolled_back"
	// EvRollbackError is a rollback that could not restore the source.
	EvRollbackError sm.Event = "xenflow.rollback.error"
	// EvConfirmFailedIntact is a confirm whose source cleanup failed: the
	// instance stays in VERIFY_RESIZE on the intact destination.
	EvConfirmFailedIntact sm.Event = "xenflow.confirm.failed_intact"
	// EvRevertFailedIntact is a revert that could not destroy the
	// destination guest: the instance stays in VERIFY_RESIZE there.
	EvRevertFailedIntact sm.Event = "xenflow.revert.failed_intact"
)

// ExtraTransitions returns the rows xenflow adds to Nova's move tables
// (resize, cold migrate, resize down), confirm and revert tables: the
// rollback to an intact source, and the confirm and revert failures that
// keep the instance in VERIFY_RESIZE. Built afresh on each call.
func ExtraTransitions(flow sm.FlowName) []sm.FlowTransition {
	resized := sm.FlowState{VM: sm.VMResized, Task: sm.TaskNone, Migration: sm.MigrationFinished}
	switch flow {
	case sm.FlowConfirm, sm.FlowAutoConfirm:
		return []sm.FlowTransition{{From: sm.FlowState{VM: sm.VMResized, Migration: sm.MigrationConfirming},
			Event: EvConfirmFailedIntact, To: resized, Step: "confirm_resize",
			Note: "driver.confirm_migration failed: the destination guest is intact; migration finished again, downsize reservation rolled back, fault recorded"}}
	case sm.FlowRevert:
		return []sm.FlowTransition{{From: sm.FlowState{VM: sm.VMResized, Task: sm.TaskResizeReverting, Migration: sm.MigrationReverting},
			Event: EvRevertFailedIntact, To: resized, Step: "revert_resize",
			Note: "driver.destroy of the destination failed: the source stays off, the instance stays on the destination; reverse reservation rolled back, fault recorded"}}
	case sm.FlowResize, sm.FlowMigrate, sm.FlowResizeDown:
	default:
		return nil
	}
	var rows []sm.FlowTransition
	for _, old := range []sm.VMState{sm.VMActive, sm.VMStopped} {
		rolling := sm.FlowState{VM: old, Task: sm.TaskResizeReverting, Migration: sm.MigrationReverting}
		for _, from := range []sm.FlowState{
			{VM: old, Task: sm.TaskResizeMigrated, Migration: sm.MigrationPostMigrating},
			{VM: old, Task: sm.TaskResizeFinish, Migration: sm.MigrationPostMigrating},
		} {
			rows = append(rows, sm.FlowTransition{From: from, Event: EvRollbackToSource, To: rolling,
				Step: "finish_resize", Notifications: []sm.Notification{sm.NotifyResizeError},
				Note: "the finish failed after the power-off but the source guest is intact: fault recorded, roll back to the source"})
		}
		rows = append(rows,
			sm.FlowTransition{From: rolling, Event: EvRolledBack, To: sm.FlowState{VM: old, Migration: sm.MigrationError},
				Step: "finish_revert_migration", Notifications: []sm.Notification{sm.NotifyResizeRevertStart, sm.NotifyResizeRevertEnd},
				Note: "destination guest destroyed, source guest restored (started unless old_vm_state is stopped); host/node and flavor := source's; upsize reservation rolled back"},
			sm.FlowTransition{From: rolling, Event: EvRollbackError, To: sm.FlowState{VM: sm.VMError, Migration: sm.MigrationError},
				Step: "finish_revert_migration", Note: "the source could not be restored: vm_state error"})
	}
	return rows
}

// machines are the flow machines the orchestrator checks its steps
// against: Nova's tables plus ExtraTransitions.
type machines map[sm.FlowName]*sm.FlowMachine

func buildMachines() (machines, error) {
	ms := machines{}
	for _, name := range []sm.FlowName{sm.FlowResize, sm.FlowMigrate, sm.FlowResizeDown,
		sm.FlowConfirm, sm.FlowRevert, sm.FlowAutoConfirm} {
		f := sm.LookupFlow(name)
		rows := append(f.Transitions, ExtraTransitions(name)...)
		m, err := sm.NewMachine(string(name), rows)
		if err != nil {
			return nil, err
		}
		ms[name] = m
	}
	return ms, nil
}
