package statemachine

func rescueFlow() Flow {
	none := MigrationNone
	rescued := st(VMRescued, TaskNone, none)
	unrescuing := st(VMRescued, TaskUnrescuing, none)
	active := st(VMActive, TaskNone, none)
	errored := st(VMError, TaskNone, none)
	f := Flow{
		Name:      FlowRescue,
		Title:     "Rescue, unrescue and the rescue timeout",
		Reference: "nova/compute/api.py rescue/unrescue, compute manager rescue_instance/unrescue_instance/_poll_rescued_instances",
		Notes: []string{
			"XenAPI: rescue hard-shuts the VM down, bootlocks it (blocked_operations start) and boots <name>-rescue with the original root disk as a second disk; unrescue destroys the rescue VM (not the original's VDIs), releases the bootlock and starts the original",
			"unrescue makes the instance active even if it was stopped before the rescue",
			"rescue_timeout is 0 (off) by default; when set, rescued instances whose launched_at is older are unrescued through the compute API",
		},
		Initial: []FlowState{active, st(VMStopped, TaskNone, none), errored},
		Final:   []FlowState{rescued, active, st(VMStopped, TaskNone, none), errored},
	}
	for _, v := range []VMState{VMActive, VMStopped, VMError} {
		from := st(v, TaskNone, none)
		rescuing := st(v, TaskRescuing, none)
		f.Transitions = append(f.Transitions,
			FlowTransition{From: from, Event: EvAPIRescue, To: rescuing, Step: "compute_api.rescue",
				Note: "task rescuing (expected [None]); instance action rescue"},
			FlowTransition{From: rescuing, Event: EvComputeRescue, To: rescued, Step: "rescue_instance",
				Notifications: notes(NotifyRescueStart, NotifyExists, NotifyRescueEnd),
				Note:          "rescue image: the request's, else image_base_image_ref, else image_ref; power off; driver.rescue; vm_state rescued, task None (expected rescuing), power_state from the driver, launched_at now"},
			FlowTransition{From: rescuing, Event: EvComputeRescueError, To: errored, Step: "rescue_instance",
				Note: "driver.rescue failed: vm_state error, InstanceNotRescuable; reverts_task_state clears the task"},
			FlowTransition{From: rescuing, Event: EvComputeRescueRollback, To: from, Step: "rescue_instance",
				Note: "beyond Nova: driver.rescue failed but the original guest was put back (InstanceFaultRollback, or the driver's unrescue undid the part done): vm_state restored, task None, fault recorded, InstanceNotRescuable returned"},
		)
	}
	f.Transitions = append(f.Transitions,
		FlowTransition{From: rescued, Event: EvAPIUnrescue, To: unrescuing, Step: "compute_api.unrescue",
			Note: "task unrescuing (expected [None]); instance action unrescue"},
		FlowTransition{From: rescued, Event: EvPeriodicPollRescuedInstances, To: unrescuing, Step: "_poll_rescued_instances",
			Note: "launched_at older than rescue_timeout: compute_api.unrescue"},
		FlowTransition{From: unrescuing, Event: EvComputeUnrescue, To: active, Step: "unrescue_instance",
			Notifications: notes(NotifyUnrescueStart, NotifyUnrescueEnd),
			Note:          "driver.unrescue; vm_state active, task None (expected unrescuing), power_state refreshed"},
		FlowTransition{From: unrescuing, Event: EvComputeUnrescueNotImplemented, To: active, Step: "unrescue_instance",
			Note: "NotImplementedError: vm_state active, task None"},
		FlowTransition{From: unrescuing, Event: EvComputeUnrescueError, To: errored, Step: "unrescue_instance",
			Note: "any other exception: vm_state error, task cleared"},
		FlowTransition{From: unrescuing, Event: EvComputeUnrescueRollback, To: rescued, Step: "unrescue_instance",
			Note: "beyond Nova: driver.unrescue failed but left the rescue as it was (InstanceFaultRollback): still rescued, task None, fault recorded"},
	)
	return f
}

func computeRestartFlow() Flow {
	ev := EvStartupInitInstance
	step := "_init_instance"
	f := Flow{
		Name:      FlowComputeRestart,
		Title:     "Recovery of interrupted moves and rescues when a compute service starts",
		Reference: "nova/compute/manager.py _init_instance",
		Notes: []string{
			"resize_migrated, resize_finish, resize_reverting, rescuing and unrescuing are not handled: the instance stays as it is until an admin runs reset-state",
			"an instance in vm_state error is skipped unless its task is resize_migrating (or deleting)",
			"the migration status is not changed by _init_instance",
		},
	}
	add := func(from, to FlowState, note string) {
		f.Transitions = append(f.Transitions, FlowTransition{From: from, Event: ev, To: to, Step: step, Note: note})
		if !contains(f.Initial, from) {
			f.Initial = append(f.Initial, from)
		}
		if !contains(f.Final, to) {
			f.Final = append(f.Final, to)
		}
	}
	for _, v := range []VMState{VMActive, VMStopped} {
		add(st(v, TaskResizePrep, MigrationNone), st(v, TaskNone, MigrationNone), "resize_prep: task cleared")
		for _, p := range []MovePhase{PhaseNone, PhaseDestClaimed, PhaseRescheduling} {
			s := phased(st(v, TaskResizePrep, MigrationPreMigrating), p)
			add(s, phased(st(v, TaskNone, MigrationPreMigrating), p), "resize_prep: task cleared; the migration is left as it is")
		}
	}
	for _, v := range []VMState{VMActive, VMStopped, VMError} {
		add(st(v, TaskResizeMigrating, MigrationMigrating), st(v, TaskNone, MigrationMigrating),
			"resize_migrating: driver.finish_revert_migration(power_on = old_vm_state != stopped), then task cleared, even in vm_state error")
	}
	add(st(VMResized, TaskPoweringOff, MigrationReverted), st(VMStopped, TaskNone, MigrationReverted),
		"powering-off (a revert of a stopped instance): stop_instance is retried")
	stuck := func(s FlowState) {
		f.NoOps = append(f.NoOps, NoOp{State: s, Event: ev, Step: step, Note: "not handled: stays stuck until reset-state"})
	}
	for _, v := range []VMState{VMActive, VMStopped} {
		stuck(st(v, TaskResizeMigrated, MigrationPostMigrating))
		stuck(st(v, TaskResizeFinish, MigrationPostMigrating))
	}
	stuck(st(VMResized, TaskResizeReverting, MigrationReverting))
	stuck(st(VMResized, TaskResizeReverting, MigrationReverted))
	for _, v := range []VMState{VMActive, VMStopped} {
		stuck(st(v, TaskRescuing, MigrationNone))
	}
	stuck(st(VMRescued, TaskUnrescuing, MigrationNone))
	return f
}

func crossCellResizeFlow() Flow {
	resized := st(VMResized, TaskNone, MigrationFinished)
	errored := st(VMError, TaskNone, MigrationError)
	f := Flow{
		Name:      FlowCrossCellResize,
		Title:     "Cross-cell resize or cold migration, with its confirm and revert",
		Reference: "nova/conductor/tasks/cross_cell_migrate.py and the compute *_snapshot_based_resize_* methods",
		Notes: []string{
			"the conductor drives every step with synchronous calls; computes of different cells never talk to each other",
			"TargetDBSetupTask copies the instance into the target cell with hidden=true; after FinishResizeAtDestTask the hidden flags and the instance mapping are swapped, and confirm or revert swap them back as needed",
			"the source guest is snapshotted (image-backed), powered off and destroyed with its disks kept; the destination spawns from the snapshot",
			"the instance action and notifications match a same-cell resize; revert sets the migration reverted only at the end, on the source",
		},
		Final: []FlowState{
			st(VMActive, TaskNone, MigrationConfirmed), st(VMStopped, TaskNone, MigrationConfirmed),
			st(VMActive, TaskNone, MigrationReverted), st(VMStopped, TaskNone, MigrationReverted),
			errored,
		},
	}
	for _, old := range []VMState{VMActive, VMStopped} {
		start := st(old, TaskNone, MigrationNone)
		prep := st(old, TaskResizePrep, MigrationNone)
		pre := st(old, TaskResizePrep, MigrationPreMigrating)
		cellReady := phased(pre, PhaseTargetCellReady)
		claimed := phased(pre, PhaseDestClaimed)
		srcPrep := st(old, TaskResizeMigrating, MigrationPreMigrating)
		srcMigrating := st(old, TaskResizeMigrating, MigrationMigrating)
		migrated := st(old, TaskResizeMigrated, MigrationPostMigrating)
		finish := st(old, TaskResizeFinish, MigrationPostMigrating)
		finishDone := st(old, TaskResizeFinish, MigrationFinished)
		rolledBack := st(old, TaskNone, MigrationError)
		f.Initial = append(f.Initial, start)
		f.Final = append(f.Final, rolledBack)
		f.Transitions = append(f.Transitions,
			FlowTransition{From: start, Event: EvAPIResize, To: prep, Step: "compute_api.resize",
				Note: "the cross_cell policy allows it; RequestSpec marked cross-cell OK; cast to the conductor; task resize_prep (expected [None])"},
			FlowTransition{From: prep, Event: EvConductorCreateMigration, To: pre, Step: "MigrationTask._execute",
				Note: "migration pre-migrating; select_destinations picked a host in another cell (CrossCellWeigher prefers the source cell)"},
			FlowTransition{From: pre, Event: EvConductorNoValidHost, To: rolledBack, Step: "ComputeTaskManager._cold_migrate",
				Notifications: notes(NotifyMigrateServerError),
				Note:          "no host: vm_state unchanged, task None, migration error"},
			FlowTransition{From: pre, Event: EvCrossCellTargetDBSetup, To: cellReady, Step: "TargetDBSetupTask",
				Note: "instance (hidden=true) and migration copied into the target cell database; migration phase target_cell_ready"},
			FlowTransition{From: cellReady, Event: EvCrossCellPrepAtDest, To: claimed, Step: "PrepResizeAtDestTask",
				Note: "inactive port bindings and empty volume attachments for the destination; prep_snapshot_based_resize_at_dest claims resources and makes the migration context; migration phase dest_claimed"},
			FlowTransition{From: cellReady, Event: EvCrossCellPrepAtDestError, To: rolledBack, Step: "PrepResizeAtDestTask",
				Notifications: notes(NotifyMigrateServerError),
				Note:          "the tasks roll back (target cell records hard-deleted, bindings and attachments removed); vm_state unchanged, task None, migration error"},
			FlowTransition{From: claimed, Event: EvCrossCellPrepAtSource, To: srcPrep, Step: "PrepResizeAtSourceTask",
				Note: "old_vm_state stashed in system_metadata; task resize_migrating (expected resize_prep); phase cleared"},
			FlowTransition{From: srcPrep, Event: EvCrossCellSourceMigrating, To: srcMigrating, Step: "prep_snapshot_based_resize_at_source",
				Note: "migration migrating"},
			FlowTransition{From: srcPrep, Event: EvCrossCellPrepAtSourceError, To: errored, Step: "prep_snapshot_based_resize_at_source",
				Notifications: notes(NotifyMigrateServerError),
				Note:          "vm_state error, task None, migration error"},
			FlowTransition{From: srcMigrating, Event: EvCrossCellSourcePoweredOff, To: migrated, Step: "prep_snapshot_based_resize_at_source",
				Note: "snapshot of an image-backed root disk; guest powered off (power_state written) and destroyed with its disks kept; volumes and ports disconnected; destination port bindings activated; migration post-migrating; task resize_migrated (expected resize_migrating)"},
			FlowTransition{From: srcMigrating, Event: EvCrossCellPrepAtSourceError, To: errored, Step: "prep_snapshot_based_resize_at_source",
				Notifications: notes(NotifyMigrateServerError),
				Note:          "vm_state error, task None, migration error"},
			FlowTransition{From: migrated, Event: EvCrossCellFinishAtDest, To: finish, Step: "finish_snapshot_based_resize_at_dest",
				Notifications: notes(NotifyFinishResizeStart),
				Note:          "FinishResizeAtDestTask: target cell copy set to resize_migrated; task resize_finish (expected resize_migrated); networks, volumes; spawn from the snapshot"},
			FlowTransition{From: migrated, Event: EvCrossCellFinishAtDestError, To: errored, Step: "finish_snapshot_based_resize_at_dest",
				Notifications: notes(NotifyMigrateServerError),
				Note:          "vm_state error, task None in both cells, fault copied to the source cell; migration error"},
			FlowTransition{From: finish, Event: EvDestMigrationFinished, To: finishDone, Step: "finish_snapshot_based_resize_at_dest",
				Note: "migration finished"},
			FlowTransition{From: finish, Event: EvCrossCellFinishAtDestError, To: errored, Step: "finish_snapshot_based_resize_at_dest",
				Notifications: notes(NotifyMigrateServerError),
				Note:          "spawn failed: vm_state error, task None in both cells; migration error"},
			FlowTransition{From: finishDone, Event: EvDestInstanceResized, To: resized, Step: "finish_snapshot_based_resize_at_dest",
				Notifications: notes(NotifyFinishResizeEnd),
				Note:          "vm_state resized, task None (expected resize_finish)"},
		)
	}
	confirming := st(VMResized, TaskNone, MigrationConfirming)
	reverting := st(VMResized, TaskResizeReverting, MigrationReverting)
	swapped := phased(resized, PhaseMappingSwapped)
	f.Transitions = append(f.Transitions,
		FlowTransition{From: resized, Event: EvCrossCellSwapHidden, To: swapped, Step: "FinishResizeAtDestTask",
			Note: "target cell instance hidden=false, source cell instance hidden=true; instance mapping points at the target cell; migration phase mapping_swapped"},
		FlowTransition{From: swapped, Event: EvAPIConfirmResize, To: confirming, Step: "compute_api.confirm_resize",
			Note: "migration confirming; instance action confirmResize; cast to the conductor's ConfirmResizeTask"},
		FlowTransition{From: confirming, Event: EvCrossCellConfirm, To: st(VMStopped, TaskNone, MigrationConfirmed), Guard: GuardPowerShutdown(),
			Step: "ConfirmResizeTask", Notifications: notes(NotifyResizeConfirmStart, NotifyResizeConfirmEnd),
			Note: "confirm_snapshot_based_resize_at_source cleans the source guest and drops its claim; source cell records hard-deleted; migration confirmed; vm_state from the power_state"},
		FlowTransition{From: confirming, Event: EvCrossCellConfirm, To: st(VMActive, TaskNone, MigrationConfirmed), Guard: GuardPowerNotShutdown(),
			Step: "ConfirmResizeTask", Notifications: notes(NotifyResizeConfirmStart, NotifyResizeConfirmEnd),
			Note: "as above; vm_state active"},
		FlowTransition{From: confirming, Event: EvCrossCellConfirmError, To: errored, Step: "ConfirmResizeTask",
			Notifications: notes(NotifyMigrateServerError),
			Note:          "vm_state error, task None, migration error"},
		FlowTransition{From: swapped, Event: EvAPIRevertResize, To: reverting, Step: "compute_api.revert_resize",
			Note: "task resize_reverting, migration reverting; instance action revertResize; cast to the conductor's RevertResizeTask"},
		FlowTransition{From: reverting, Event: EvCrossCellRevert, To: st(VMActive, TaskNone, MigrationReverted), Guard: GuardOldVMStateNotStopped(),
			Step: "RevertResizeTask", Notifications: notes(NotifyResizeRevertStart, NotifyResizeRevertEnd),
			Note: "revert_snapshot_based_resize_at_dest cleans the destination; finish_revert_snapshot_based_resize_at_source spawns the guest again and powers it on; hidden flags and mapping swapped back; target cell records hard-deleted; migration reverted at the end"},
		FlowTransition{From: reverting, Event: EvCrossCellRevert, To: st(VMStopped, TaskNone, MigrationReverted), Guard: GuardOldVMStateStopped(),
			Step: "RevertResizeTask", Notifications: notes(NotifyResizeRevertStart, NotifyResizeRevertEnd),
			Note: "as above without powering on: vm_state stopped directly (power_on = old_vm_state == active)"},
		FlowTransition{From: reverting, Event: EvCrossCellRevertError, To: errored, Step: "RevertResizeTask",
			Notifications: notes(NotifyMigrateServerError),
			Note:          "vm_state error, task None, migration error"},
	)
	return f
}
