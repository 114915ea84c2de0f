package statemachine

// sameCellMoveFlow returns the table of a same-cell resize (up), cold
// migration or resize down: the same states and steps, the error outcomes
// of nova/compute/manager.py and nova/conductor/manager.py, and the cleanup of a failed move whose
// instance is deleted. The variants differ in the API event and in what the
// notes say.
func sameCellMoveFlow(name FlowName) Flow {
	f := Flow{Name: name}
	apiEvent := EvAPIResize
	apiNote := "task_state resize_prep saved with expected_task_state [None]; progress 0; instance action resize; quota check of the upsize delta"
	finishNote := "driver.finish_migration(resize_instance=true, power_on=old_vm_state != stopped); flavor fields := new flavor"
	rollbackNote := "the driver raises InstanceFaultRollback (XenAPI wraps every failure it can roll back that way): vm_state restored to old_vm_state (bug 1551703)"
	switch name {
	case FlowResize:
		f.Title = "Resize up (same cell)"
		f.Reference = "nova/compute/api.py resize, conductor MigrationTask, compute manager prep_resize, resize_instance, finish_resize"
	case FlowMigrate:
		f.Title = "Cold migrate (same cell)"
		f.Reference = "nova/compute/api.py resize with flavor_id=None"
		apiEvent = EvAPIMigrate
		apiNote = "task_state resize_prep saved with expected_task_state [None]; instance action migrate; no quota check; new flavor = current flavor"
		finishNote = "driver.finish_migration(resize_instance=false, power_on=old_vm_state != stopped); flavor unchanged"
		f.Notes = append(f.Notes,
			"migration_type is migration; a target host (microversion 2.56+) disables rescheduling",
			"the same host is refused in prep_resize with UnableToMigrateToSelf (an InstanceFaultRollback), as XenAPI does not support migrating to the same host")
	case FlowResizeDown:
		f.Title = "Resize down (same cell)"
		f.Reference = "nova/compute/manager.py prep_resize, resize_instance, finish_resize with a smaller flavor; nova/virt/xenapi/vmops.py _migrate_disk_resizing_down"
		rollbackNote = "XenAPI refuses what it cannot shrink (ResizeError for ephemeral shrink or root_gb to 0, CannotResizeDisk without a single ext3/ext4 partition) as InstanceFaultRollback: vm_state restored to old_vm_state"
		f.Notes = append(f.Notes,
			"the quota check finds no positive delta",
			"XenAPI copies the shrunk root partition into a new VDI while the guest is off (_migrate_disk_resizing_down)")
	}
	f.Notes = append(f.Notes,
		"old_vm_state (active or stopped) is kept in system_metadata by prep_resize; rows are given for both",
		"Nova's state (vm_state, task_state, status) does not change in dest.prep_resize or in a reschedule; the migration's phase does (dest_claimed, rescheduling), so that every step is a change a resumed flow can see",
		"migration finished is saved before the instance becomes resized; auto-confirm skips an instance caught between the two")

	for _, old := range []VMState{VMActive, VMStopped} {
		f.Initial = append(f.Initial, st(old, TaskNone, MigrationNone))
		start := st(old, TaskNone, MigrationNone)
		prep := st(old, TaskResizePrep, MigrationNone)
		pre := st(old, TaskResizePrep, MigrationPreMigrating)
		claimed := phased(pre, PhaseDestClaimed)
		rescheduling := phased(pre, PhaseRescheduling)
		migrating := st(old, TaskResizeMigrating, MigrationMigrating)
		migrated := st(old, TaskResizeMigrated, MigrationPostMigrating)
		finish := st(old, TaskResizeFinish, MigrationPostMigrating)
		finishDone := st(old, TaskResizeFinish, MigrationFinished)
		resized := st(VMResized, TaskNone, MigrationFinished)
		rolledBack := st(old, TaskNone, MigrationError)
		errored := st(VMError, TaskNone, MigrationError)

		f.Transitions = append(f.Transitions,
			FlowTransition{From: start, Event: apiEvent, To: prep, Step: "compute_api.resize", Note: apiNote},
			FlowTransition{From: prep, Event: EvConductorCreateMigration, To: pre, Step: "MigrationTask._execute",
				Note: "migration record created pre-migrating (source compute/node, old/new flavor); source allocations moved to the migration consumer; select_destinations claims the destination and returns alternates"},
			FlowTransition{From: pre, Event: EvConductorNoValidHost, To: rolledBack, Step: "ComputeTaskManager._cold_migrate",
				Notifications: notes(NotifyMigrateServerError),
				Note:          "NoValidHost, MaxRetriesExceeded or UnsupportedPolicy: vm_state unchanged, task None, instance fault; MigrationTask.rollback sets the migration error and moves the allocations back"},
			FlowTransition{From: pre, Event: EvConductorError, To: rolledBack, Step: "ComputeTaskManager._cold_migrate",
				Notifications: notes(NotifyMigrateServerError),
				Note:          "any other conductor exception: vm_state refreshed from the database (unchanged), task None; migration error; allocations reverted"},
			FlowTransition{From: pre, Event: EvDestPrepResize, To: claimed, Step: "prep_resize",
				Notifications: notes(NotifyExists, NotifyResizePrepStart, NotifyResizePrepEnd),
				Note:          "resize claim (MoveClaim) and migration context on the destination; the migration's dest_compute/dest_node filled; new_flavor and old_vm_state saved; migration phase dest_claimed"},
			FlowTransition{From: pre, Event: EvDestPrepResizeReschedule, To: rescheduling, Step: "prep_resize",
				Notifications: notes(NotifyResizeError),
				Note:          "claim failed with retry present (_reschedule_resize_or_reraise): destination allocation reverted; migration phase rescheduling"},
			FlowTransition{From: rescheduling, Event: EvConductorReschedule, To: pre, Step: "MigrationTask._reschedule",
				Note: "the conductor pops the next alternate, claims it in placement and casts prep_resize to it, reusing the pre-migrating migration (phase cleared)"},
			FlowTransition{From: rescheduling, Event: EvConductorNoValidHost, To: rolledBack, Step: "ComputeTaskManager._cold_migrate",
				Notifications: notes(NotifyMigrateServerError),
				Note:          "MaxRetriesExceeded: no alternate left that fits; vm_state unchanged, task None, migration error, allocations reverted"},
			FlowTransition{From: rescheduling, Event: EvConductorError, To: rolledBack, Step: "ComputeTaskManager._cold_migrate",
				Notifications: notes(NotifyMigrateServerError),
				Note:          "any other exception while rescheduling: vm_state unchanged, task None, migration error, allocations reverted"},
			FlowTransition{From: pre, Event: EvDestPrepResizeFaultRollback, To: rolledBack, Step: "prep_resize",
				Notifications: notes(NotifyResizeError),
				Note:          "no retry or alternates exhausted, InstanceFaultRollback or NotImplementedError: vm_state restored, migration error, allocations reverted"},
			FlowTransition{From: pre, Event: EvDestPrepResizeError, To: errored, Step: "prep_resize",
				Notifications: notes(NotifyResizeError),
				Note:          "no retry or alternates exhausted, any other exception: vm_state error, migration error, allocations reverted"},
			FlowTransition{From: claimed, Event: EvSourceResizeInstance, To: migrating, Step: "resize_instance",
				Notifications: notes(NotifyResizeStart),
				Note:          "prep_resize cast resize_instance to the source: migration migrating (phase cleared), then task resize_migrating saved with expected_task_state resize_prep"},
			FlowTransition{From: migrating, Event: EvSourceMigrateDiskAndPowerOff, To: migrated, Step: "resize_instance",
				Notifications: notes(NotifyResizeEnd),
				Note:          "driver.migrate_disk_and_power_off; migration post-migrating; host/node := destination; old_flavor := flavor; task resize_migrated saved with expected_task_state resize_migrating"},
			FlowTransition{From: migrating, Event: EvSourceResizeInstanceFaultRollback, To: rolledBack, Step: "resize_instance",
				Note: rollbackNote + "; migration error; allocations reverted"},
			FlowTransition{From: migrating, Event: EvSourceResizeInstanceError, To: errored, Step: "resize_instance",
				Note: "any other exception: vm_state error, migration error, allocations reverted"},
			FlowTransition{From: migrated, Event: EvDestFinishResize, To: finish, Step: "finish_resize",
				Notifications: notes(NotifyFinishResizeStart),
				Note:          "flavor fields := new flavor; migration context applied; task resize_finish saved with expected_task_state resize_migrated"},
			FlowTransition{From: migrated, Event: EvDestFinishResizeError, To: errored, Step: "finish_resize",
				Note: "vm_state error, task None, flavor reset to old in memory; host/node already point to the destination (recover by hard reboot there); migration error; source allocations deleted, destination kept (bug 1825537)"},
			FlowTransition{From: finish, Event: EvDestMigrationFinished, To: finishDone, Step: "finish_resize",
				Note: finishNote + "; migration finished"},
			FlowTransition{From: finish, Event: EvDestFinishResizeError, To: errored, Step: "finish_resize",
				Note: "driver.finish_migration failed: vm_state error, task None; migration error; source allocations deleted, destination kept (bug 1825537)"},
			FlowTransition{From: finishDone, Event: EvDestInstanceResized, To: resized, Step: "finish_resize",
				Notifications: notes(NotifyFinishResizeEnd),
				Note:          "vm_state resized, task None (expected resize_finish), launched_at now; API status VERIFY_RESIZE"},
			FlowTransition{From: rolledBack, Event: EvAPIDelete, To: st(VMDeleted, TaskNone, MigrationError), Step: "compute_api.delete",
				Note: "the instance is deleted (through task deleting) while its migration is in error"},
		)
		f.Final = append(f.Final, rolledBack)
	}
	errored := st(VMError, TaskNone, MigrationError)
	f.Transitions = append(f.Transitions,
		FlowTransition{From: errored, Event: EvAPIDelete, To: st(VMDeleted, TaskNone, MigrationError), Step: "compute_api.delete",
			Note: "the instance is deleted (through task deleting) while its migration is in error"},
		FlowTransition{From: st(VMDeleted, TaskNone, MigrationError), Event: EvPeriodicCleanupIncompleteMigrations,
			To: st(VMDeleted, TaskNone, MigrationFailed), Step: "_cleanup_incomplete_migrations",
			Note: "leftover instance files removed on the other host; migration failed"})
	f.Final = append(f.Final, st(VMResized, TaskNone, MigrationFinished), errored,
		st(VMDeleted, TaskNone, MigrationFailed))
	return f
}
