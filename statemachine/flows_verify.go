package statemachine

// confirmRows are the rows of a manual confirm from VERIFY_RESIZE, shared by
// the confirm and auto-confirm flows.
func confirmRows() []FlowTransition {
	resized := st(VMResized, TaskNone, MigrationFinished)
	confirming := st(VMResized, TaskNone, MigrationConfirming)
	active := st(VMActive, TaskNone, MigrationConfirmed)
	stopped := st(VMStopped, TaskNone, MigrationConfirmed)
	return []FlowTransition{
		{From: resized, Event: EvAPIConfirmResize, To: confirming, Step: "compute_api.confirm_resize",
			Note: "needs a migration in finished and the source compute service up; migration confirming; instance action confirmResize; cast to the source"},
		{From: confirming, Event: EvSourceConfirmResize, To: stopped, Guard: GuardPowerShutdown(), Step: "confirm_resize",
			Notifications: notes(NotifyResizeConfirmStart, NotifyResizeConfirmEnd),
			Note:          "driver.confirm_migration (XenAPI destroys <name>-orig and its VDIs); migration confirmed by drop_move_claim_at_source; finally: migration allocations deleted, old_flavor/new_flavor/old_vm_state cleared"},
		{From: confirming, Event: EvSourceConfirmResize, To: active, Guard: GuardPowerNotShutdown(), Step: "confirm_resize",
			Notifications: notes(NotifyResizeConfirmStart, NotifyResizeConfirmEnd),
			Note:          "as above; vm_state active because the guest is not shut down"},
		{From: confirming, Event: EvSourceConfirmResizeError, To: st(VMError, TaskNone, MigrationError), Step: "confirm_resize",
			Note: "vm_state error, migration error (bug 1821594); the migration allocations are still deleted (finally)"},
	}
}

// confirmNoOps are the confirms that find the migration confirmed already:
// the source returns without doing anything.
func confirmNoOps() []NoOp {
	var out []NoOp
	for _, v := range []VMState{VMActive, VMStopped} {
		out = append(out, NoOp{State: st(v, TaskNone, MigrationConfirmed), Event: EvSourceConfirmResize,
			Step: "confirm_resize", Note: "the migration is already confirmed: the source returns without doing anything"})
	}
	return out
}

func confirmFlow() Flow {
	return Flow{
		Name:      FlowConfirm,
		Title:     "Confirm a resize or cold migration (VERIFY_RESIZE → ACTIVE or SHUTOFF)",
		Reference: "nova/compute/api.py confirm_resize, compute manager confirm_resize/_confirm_resize",
		Notes: []string{
			"resize_confirming is defined by Nova but nothing sets it: a confirm shows only in the migration status",
			"the resulting vm_state follows the power_state, not old_vm_state",
		},
		Initial: []FlowState{st(VMResized, TaskNone, MigrationFinished)},
		Final: []FlowState{st(VMActive, TaskNone, MigrationConfirmed), st(VMStopped, TaskNone, MigrationConfirmed),
			st(VMError, TaskNone, MigrationError)},
		Transitions: confirmRows(),
		NoOps:       confirmNoOps(),
	}
}

func revertFlow() Flow {
	resized := st(VMResized, TaskNone, MigrationFinished)
	reverting := st(VMResized, TaskResizeReverting, MigrationReverting)
	destDone := st(VMResized, TaskResizeReverting, MigrationReverted)
	poweringOff := st(VMResized, TaskPoweringOff, MigrationReverted)
	errored := st(VMError, TaskNone, MigrationError)
	return Flow{
		Name:      FlowRevert,
		Title:     "Revert a resize or cold migration (VERIFY_RESIZE → REVERT_RESIZE → ACTIVE or SHUTOFF)",
		Reference: "nova/compute/api.py revert_resize, compute manager revert_resize (dest) and finish_revert_resize (source)",
		Notes: []string{
			"the destination sets the migration reverted before the source has done anything",
			"an instance stopped before the move is powered on by nothing: task powering-off, then stop_instance makes it stopped",
		},
		Initial: []FlowState{resized},
		Final: []FlowState{st(VMActive, TaskNone, MigrationReverted), st(VMStopped, TaskNone, MigrationReverted),
			errored},
		Transitions: []FlowTransition{
			{From: resized, Event: EvAPIRevertResize, To: reverting, Step: "compute_api.revert_resize",
				Note: "needs a migration in finished; quota check for the old flavor; availability_zone := source AZ; RequestSpec flavor reset; task resize_reverting (expected [None]); migration reverting; instance action revertResize; cast to the destination"},
			{From: reverting, Event: EvDestRevertResize, To: destDone, Step: "revert_resize",
				Notifications: notes(NotifyExists),
				Note:          "networks torn down; driver.destroy (disks too unless shared storage); volume connections terminated; migration reverted by drop_move_claim_at_dest; cast finish_revert_resize to the source"},
			{From: reverting, Event: EvDestRevertResizeError, To: errored, Step: "revert_resize",
				Note: "vm_state error, task None, migration error"},
			{From: destDone, Event: EvSourceFinishRevertResize, To: st(VMActive, TaskNone, MigrationReverted), Guard: GuardOldVMStateNotStopped(),
				Step:          "finish_revert_resize",
				Notifications: notes(NotifyResizeRevertStart, NotifyResizeRevertEnd),
				Note:          "flavor := old_flavor, host/node := source (expected resize_reverting); allocations moved back from the migration to the instance; driver.finish_revert_migration(power_on=true) (XenAPI renames <name>-orig back and starts it); launched_at now"},
			{From: destDone, Event: EvSourceFinishRevertResize, To: poweringOff, Guard: GuardOldVMStateStopped(),
				Step:          "finish_revert_resize",
				Notifications: notes(NotifyResizeRevertStart),
				Note:          "as above with power_on=false; task powering-off, then stop_instance"},
			{From: destDone, Event: EvSourceFinishRevertResizeError, To: errored, Step: "finish_revert_resize",
				Note: "e.g. AllocationMoveFailed: vm_state error, migration error; the migration allocation leaks (heal_allocations)"},
			{From: poweringOff, Event: EvSourceStopInstance, To: st(VMStopped, TaskNone, MigrationReverted), Step: "stop_instance",
				Notifications: notes(NotifyPowerOffStart, NotifyPowerOffEnd, NotifyResizeRevertEnd),
				Note:          "vm_state stopped, task None (expected powering-off); finally old_flavor/new_flavor/old_vm_state cleared"},
		},
	}
}

func autoConfirmFlow() Flow {
	resized := st(VMResized, TaskNone, MigrationFinished)
	poll := EvPeriodicPollUnconfirmedResizes
	step := "_poll_unconfirmed_resizes"
	f := Flow{
		Name:      FlowAutoConfirm,
		Title:     "Auto-confirm of resizes left in VERIFY_RESIZE (resize_confirm_window)",
		Reference: "nova/compute/manager.py _poll_unconfirmed_resizes, a periodic task on the destination compute",
		Notes: []string{
			"off when resize_confirm_window is 0, the default",
			"selects migrations in finished whose dest_compute is this host and whose updated_at <= now - window",
			"an exception from confirm_resize is only logged; the next run tries again (e.g. ServiceUnavailable while the source is down)",
			"a migration set to error here can no longer be confirmed",
		},
		Initial: []FlowState{resized,
			st(VMDeleted, TaskNone, MigrationFinished),
			st(VMError, TaskNone, MigrationFinished),
			st(VMActive, TaskNone, MigrationFinished),
			st(VMStopped, TaskNone, MigrationFinished),
			st(VMResized, TaskResizeReverting, MigrationFinished),
		},
		Transitions: []FlowTransition{
			{From: resized, Event: poll, To: st(VMResized, TaskNone, MigrationConfirming), Step: step,
				Note: "the window has passed: compute_api.confirm_resize with the migration"},
			{From: st(VMDeleted, TaskNone, MigrationFinished), Event: poll, To: st(VMDeleted, TaskNone, MigrationError), Step: step,
				Note: "instance not found: migration error"},
			{From: st(VMDeleted, TaskNone, MigrationError), Event: EvPeriodicCleanupIncompleteMigrations,
				To: st(VMDeleted, TaskNone, MigrationFailed), Step: "_cleanup_incomplete_migrations",
				Note: "leftover instance files removed on the other host; migration failed"},
			{From: st(VMError, TaskNone, MigrationFinished), Event: poll, To: st(VMError, TaskNone, MigrationError), Step: step,
				Note: "instance in vm_state error: migration error"},
			{From: st(VMActive, TaskNone, MigrationFinished), Event: poll, To: st(VMActive, TaskNone, MigrationError), Step: step,
				Note: "vm_state is not resized (e.g. after reset-state): migration error"},
			{From: st(VMStopped, TaskNone, MigrationFinished), Event: poll, To: st(VMStopped, TaskNone, MigrationError), Step: step,
				Note: "vm_state is not resized (e.g. after reset-state): migration error"},
			{From: st(VMResized, TaskResizeReverting, MigrationFinished), Event: poll, To: st(VMResized, TaskResizeReverting, MigrationError), Step: step,
				Note: "task is not None (a revert saved its task_state but not yet the migration): migration error"},
		},
	}
	for _, r := range confirmRows() {
		if r.Event != EvAPIConfirmResize {
			f.Transitions = append(f.Transitions, r)
		}
	}
	skipped := func(s FlowState, note string) NoOp { return NoOp{State: s, Event: poll, Step: step, Note: note} }
	f.NoOps = append([]NoOp{
		skipped(st(VMResized, TaskDeleting, MigrationFinished), "task deleting: skipped"),
		skipped(st(VMResized, TaskSoftDeleting, MigrationFinished), "task soft-deleting: skipped"),
		skipped(st(VMActive, TaskResizeFinish, MigrationFinished), "task resize_finish: finish_resize saved the migration but not yet the instance; skipped"),
		skipped(st(VMStopped, TaskResizeFinish, MigrationFinished), "task resize_finish: finish_resize saved the migration but not yet the instance; skipped"),
	}, confirmNoOps()...)
	f.Final = []FlowState{
		st(VMActive, TaskNone, MigrationConfirmed), st(VMStopped, TaskNone, MigrationConfirmed),
		st(VMError, TaskNone, MigrationError), st(VMDeleted, TaskNone, MigrationFailed),
		st(VMActive, TaskNone, MigrationError), st(VMStopped, TaskNone, MigrationError),
		st(VMResized, TaskResizeReverting, MigrationError),
	}
	return f
}
