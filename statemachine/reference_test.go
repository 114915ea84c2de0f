package statemachine

import "testing"

// TestReferenceOutcomes pins, independently of the flow tables, the outcome
// Nova's code gives (nova/compute/manager.py, nova/conductor/manager.py,
// nova/conductor/tasks/cross_cell_migrate.py) for every error outcome of a
// move, every branch of auto-confirm (_poll_unconfirmed_resizes), both
// branches of revert (power_on true and false), the rescue and unrescue
// errors and the cross-cell failures. The path walk in flow_test.go only
// checks the machine against its own table; this test checks the table
// against Nova. The expectations are written out here, not derived from
// the rows.
func TestReferenceOutcomes(t *testing.T) {
	type row struct {
		ref   string
		flow  FlowName
		from  FlowState
		ev    Event
		facts Facts
		want  FlowState
	}
	var rows []row
	moves := []FlowName{FlowResize, FlowMigrate, FlowResizeDown}
	for _, fl := range moves {
		for _, old := range []VMState{VMActive, VMStopped} {
			pre := st(old, TaskResizePrep, MigrationPreMigrating)
			rows = append(rows,
				// scheduler NoValidHost / MaxRetriesExceeded / UnsupportedPolicy.
				row{"no valid host", fl, pre, EvConductorNoValidHost, Facts{}, st(old, TaskNone, MigrationError)},
				// other conductor exception.
				row{"other conductor exception", fl, pre, EvConductorError, Facts{}, st(old, TaskNone, MigrationError)},
				// dest prep_resize with retry: task stays resize_prep, migration stays pre-migrating
				// (its phase says a reschedule is due).
				row{"prep_resize with retry", fl, pre, EvDestPrepResizeReschedule, Facts{}, phased(pre, PhaseRescheduling)},
				row{"reschedule to an alternate", fl, phased(pre, PhaseRescheduling), EvConductorReschedule, Facts{}, pre},
				row{"MaxRetriesExceeded", fl, phased(pre, PhaseRescheduling), EvConductorNoValidHost, Facts{}, st(old, TaskNone, MigrationError)},
				// dest prep_resize without retry.
				row{"prep_resize fault rollback", fl, pre, EvDestPrepResizeFaultRollback, Facts{}, st(old, TaskNone, MigrationError)},
				row{"prep_resize other", fl, pre, EvDestPrepResizeError, Facts{}, st(VMError, TaskNone, MigrationError)},
				// source resize_instance.
				row{"resize_instance fault rollback", fl, st(old, TaskResizeMigrating, MigrationMigrating), EvSourceResizeInstanceFaultRollback, Facts{}, st(old, TaskNone, MigrationError)},
				row{"resize_instance other", fl, st(old, TaskResizeMigrating, MigrationMigrating), EvSourceResizeInstanceError, Facts{}, st(VMError, TaskNone, MigrationError)},
				// dest finish_resize.
				row{"finish_resize", fl, st(old, TaskResizeMigrated, MigrationPostMigrating), EvDestFinishResizeError, Facts{}, st(VMError, TaskNone, MigrationError)},
				row{"finish_resize (driver)", fl, st(old, TaskResizeFinish, MigrationPostMigrating), EvDestFinishResizeError, Facts{}, st(VMError, TaskNone, MigrationError)},
				// steps 4-7.
				row{"step 3", fl, pre, EvDestPrepResize, Facts{}, phased(pre, PhaseDestClaimed)},
				row{"step 4", fl, phased(pre, PhaseDestClaimed), EvSourceResizeInstance, Facts{}, st(old, TaskResizeMigrating, MigrationMigrating)},
				row{"step 5", fl, st(old, TaskResizeMigrating, MigrationMigrating), EvSourceMigrateDiskAndPowerOff, Facts{}, st(old, TaskResizeMigrated, MigrationPostMigrating)},
				row{"step 6", fl, st(old, TaskResizeMigrated, MigrationPostMigrating), EvDestFinishResize, Facts{}, st(old, TaskResizeFinish, MigrationPostMigrating)},
				row{"step 7", fl, st(old, TaskResizeFinish, MigrationFinished), EvDestInstanceResized, Facts{}, st(VMResized, TaskNone, MigrationFinished)},
			)
		}
		// instance deleted while its migration is in error.
		rows = append(rows, row{"cleanup incomplete", fl, st(VMDeleted, TaskNone, MigrationError), EvPeriodicCleanupIncompleteMigrations, Facts{}, st(VMDeleted, TaskNone, MigrationFailed)})
	}
	verifying := st(VMResized, TaskNone, MigrationFinished)
	confirming := st(VMResized, TaskNone, MigrationConfirming)
	for _, fl := range []FlowName{FlowConfirm, FlowAutoConfirm} {
		rows = append(rows,
			// step 3: vm_state from power_state.
			row{"confirm, shut down", fl, confirming, EvSourceConfirmResize, Facts{PowerState: PowerShutdown}, st(VMStopped, TaskNone, MigrationConfirmed)},
			row{"confirm, running", fl, confirming, EvSourceConfirmResize, Facts{PowerState: PowerRunning}, st(VMActive, TaskNone, MigrationConfirmed)},
			row{"confirm, crashed", fl, confirming, EvSourceConfirmResize, Facts{PowerState: PowerCrashed}, st(VMActive, TaskNone, MigrationConfirmed)},
			// source confirm.
			row{"source confirm", fl, confirming, EvSourceConfirmResizeError, Facts{}, st(VMError, TaskNone, MigrationError)},
		)
	}
	rows = append(rows,
		row{"API confirm", FlowConfirm, verifying, EvAPIConfirmResize, Facts{}, confirming},
		// every branch of _poll_unconfirmed_resizes.
		row{"confirm", FlowAutoConfirm, verifying, EvPeriodicPollUnconfirmedResizes, Facts{}, confirming},
		row{"instance not found", FlowAutoConfirm, st(VMDeleted, TaskNone, MigrationFinished), EvPeriodicPollUnconfirmedResizes, Facts{}, st(VMDeleted, TaskNone, MigrationError)},
		row{"vm_state error", FlowAutoConfirm, st(VMError, TaskNone, MigrationFinished), EvPeriodicPollUnconfirmedResizes, Facts{}, st(VMError, TaskNone, MigrationError)},
		row{"deleting skipped", FlowAutoConfirm, st(VMResized, TaskDeleting, MigrationFinished), EvPeriodicPollUnconfirmedResizes, Facts{}, st(VMResized, TaskDeleting, MigrationFinished)},
		row{"soft-deleting skipped", FlowAutoConfirm, st(VMResized, TaskSoftDeleting, MigrationFinished), EvPeriodicPollUnconfirmedResizes, Facts{}, st(VMResized, TaskSoftDeleting, MigrationFinished)},
		row{"resize_finish skipped", FlowAutoConfirm, st(VMActive, TaskResizeFinish, MigrationFinished), EvPeriodicPollUnconfirmedResizes, Facts{}, st(VMActive, TaskResizeFinish, MigrationFinished)},
		row{"resize_finish skipped (stopped)", FlowAutoConfirm, st(VMStopped, TaskResizeFinish, MigrationFinished), EvPeriodicPollUnconfirmedResizes, Facts{}, st(VMStopped, TaskResizeFinish, MigrationFinished)},
		row{"not resized", FlowAutoConfirm, st(VMActive, TaskNone, MigrationFinished), EvPeriodicPollUnconfirmedResizes, Facts{}, st(VMActive, TaskNone, MigrationError)},
		row{"not resized (stopped)", FlowAutoConfirm, st(VMStopped, TaskNone, MigrationFinished), EvPeriodicPollUnconfirmedResizes, Facts{}, st(VMStopped, TaskNone, MigrationError)},
		row{"task not None", FlowAutoConfirm, st(VMResized, TaskResizeReverting, MigrationFinished), EvPeriodicPollUnconfirmedResizes, Facts{}, st(VMResized, TaskResizeReverting, MigrationError)},
		// revert.
		row{"API revert", FlowRevert, verifying, EvAPIRevertResize, Facts{}, st(VMResized, TaskResizeReverting, MigrationReverting)},
		row{"dest revert_resize", FlowRevert, st(VMResized, TaskResizeReverting, MigrationReverting), EvDestRevertResize, Facts{}, st(VMResized, TaskResizeReverting, MigrationReverted)},
		row{"finish_revert power_on", FlowRevert, st(VMResized, TaskResizeReverting, MigrationReverted), EvSourceFinishRevertResize, Facts{OldVMState: VMActive}, st(VMActive, TaskNone, MigrationReverted)},
		row{"finish_revert power_on=false", FlowRevert, st(VMResized, TaskResizeReverting, MigrationReverted), EvSourceFinishRevertResize, Facts{OldVMState: VMStopped}, st(VMResized, TaskPoweringOff, MigrationReverted)},
		row{"stop_instance", FlowRevert, st(VMResized, TaskPoweringOff, MigrationReverted), EvSourceStopInstance, Facts{}, st(VMStopped, TaskNone, MigrationReverted)},
		// dest revert_resize and source finish_revert_resize.
		row{"dest revert_resize", FlowRevert, st(VMResized, TaskResizeReverting, MigrationReverting), EvDestRevertResizeError, Facts{}, st(VMError, TaskNone, MigrationError)},
		row{"finish_revert AllocationMoveFailed", FlowRevert, st(VMResized, TaskResizeReverting, MigrationReverted), EvSourceFinishRevertResizeError, Facts{}, st(VMError, TaskNone, MigrationError)},
		// unrescue and its errors, and the rescue timeout.
		row{"unrescue", FlowRescue, st(VMRescued, TaskUnrescuing, MigrationNone), EvComputeUnrescue, Facts{}, st(VMActive, TaskNone, MigrationNone)},
		row{"unrescue NotImplementedError", FlowRescue, st(VMRescued, TaskUnrescuing, MigrationNone), EvComputeUnrescueNotImplemented, Facts{}, st(VMActive, TaskNone, MigrationNone)},
		row{"unrescue other", FlowRescue, st(VMRescued, TaskUnrescuing, MigrationNone), EvComputeUnrescueError, Facts{}, st(VMError, TaskNone, MigrationNone)},
		row{"API unrescue", FlowRescue, st(VMRescued, TaskNone, MigrationNone), EvAPIUnrescue, Facts{}, st(VMRescued, TaskUnrescuing, MigrationNone)},
		row{"rescue_timeout", FlowRescue, st(VMRescued, TaskNone, MigrationNone), EvPeriodicPollRescuedInstances, Facts{}, st(VMRescued, TaskUnrescuing, MigrationNone)},
		// compute restart.
		row{"restart resize_prep", FlowComputeRestart, st(VMActive, TaskResizePrep, MigrationPreMigrating), EvStartupInitInstance, Facts{}, st(VMActive, TaskNone, MigrationPreMigrating)},
		row{"restart resize_migrating in error", FlowComputeRestart, st(VMError, TaskResizeMigrating, MigrationMigrating), EvStartupInitInstance, Facts{}, st(VMError, TaskNone, MigrationMigrating)},
		row{"restart resize_migrated stuck", FlowComputeRestart, st(VMStopped, TaskResizeMigrated, MigrationPostMigrating), EvStartupInitInstance, Facts{}, st(VMStopped, TaskResizeMigrated, MigrationPostMigrating)},
		row{"restart resize_reverting stuck", FlowComputeRestart, st(VMResized, TaskResizeReverting, MigrationReverting), EvStartupInitInstance, Facts{}, st(VMResized, TaskResizeReverting, MigrationReverting)},
		row{"restart unrescuing stuck", FlowComputeRestart, st(VMRescued, TaskUnrescuing, MigrationNone), EvStartupInitInstance, Facts{}, st(VMRescued, TaskUnrescuing, MigrationNone)},
	)
	for _, v := range []VMState{VMActive, VMStopped, VMError} {
		rows = append(rows,
			row{"API rescue from " + string(v), FlowRescue, st(v, TaskNone, MigrationNone), EvAPIRescue, Facts{}, st(v, TaskRescuing, MigrationNone)},
			row{"rescue", FlowRescue, st(v, TaskRescuing, MigrationNone), EvComputeRescue, Facts{}, st(VMRescued, TaskNone, MigrationNone)},
			row{"rescue driver error", FlowRescue, st(v, TaskRescuing, MigrationNone), EvComputeRescueError, Facts{}, st(VMError, TaskNone, MigrationNone)},
		)
	}
	// cross-cell: failures go to error/error; confirm and revert.
	for _, old := range []VMState{VMActive, VMStopped} {
		rows = append(rows,
			row{"prep at source fails", FlowCrossCellResize, st(old, TaskResizeMigrating, MigrationPreMigrating), EvCrossCellPrepAtSourceError, Facts{}, st(VMError, TaskNone, MigrationError)},
			row{"prep at source fails (migrating)", FlowCrossCellResize, st(old, TaskResizeMigrating, MigrationMigrating), EvCrossCellPrepAtSourceError, Facts{}, st(VMError, TaskNone, MigrationError)},
			row{"step 3", FlowCrossCellResize, st(old, TaskResizeMigrating, MigrationMigrating), EvCrossCellSourcePoweredOff, Facts{}, st(old, TaskResizeMigrated, MigrationPostMigrating)},
			row{"finish at dest fails", FlowCrossCellResize, st(old, TaskResizeMigrated, MigrationPostMigrating), EvCrossCellFinishAtDestError, Facts{}, st(VMError, TaskNone, MigrationError)},
			row{"step 4", FlowCrossCellResize, st(old, TaskResizeMigrated, MigrationPostMigrating), EvCrossCellFinishAtDest, Facts{}, st(old, TaskResizeFinish, MigrationPostMigrating)},
			row{"no valid host", FlowCrossCellResize, st(old, TaskResizePrep, MigrationPreMigrating), EvConductorNoValidHost, Facts{}, st(old, TaskNone, MigrationError)},
		)
	}
	rows = append(rows,
		row{"step 4 end", FlowCrossCellResize, st(VMActive, TaskResizeFinish, MigrationFinished), EvDestInstanceResized, Facts{}, verifying},
		row{"confirm fails", FlowCrossCellResize, confirming, EvCrossCellConfirmError, Facts{}, st(VMError, TaskNone, MigrationError)},
		row{"revert fails", FlowCrossCellResize, st(VMResized, TaskResizeReverting, MigrationReverting), EvCrossCellRevertError, Facts{}, st(VMError, TaskNone, MigrationError)},
		row{"confirm, shut down", FlowCrossCellResize, confirming, EvCrossCellConfirm, Facts{PowerState: PowerShutdown}, st(VMStopped, TaskNone, MigrationConfirmed)},
		row{"confirm, running", FlowCrossCellResize, confirming, EvCrossCellConfirm, Facts{PowerState: PowerRunning}, st(VMActive, TaskNone, MigrationConfirmed)},
		row{"revert, was active", FlowCrossCellResize, st(VMResized, TaskResizeReverting, MigrationReverting), EvCrossCellRevert, Facts{OldVMState: VMActive}, st(VMActive, TaskNone, MigrationReverted)},
		row{"revert, was stopped", FlowCrossCellResize, st(VMResized, TaskResizeReverting, MigrationReverting), EvCrossCellRevert, Facts{OldVMState: VMStopped}, st(VMStopped, TaskNone, MigrationReverted)},
	)
	for _, r := range rows {
		f := LookupFlow(r.flow)
		m := f.Machine()
		if r.want == r.from {
			// Nova leaves the state as it is: a no-op, not a row.
			if _, ok := f.NoOp(r.from, r.ev); !ok || m.Can(r.from, r.ev, r.facts) {
				t.Errorf("%s (%s): %v --%s--> should be a no-op of the flow and no row", r.ref, r.flow, r.from, r.ev)
			}
			continue
		}
		got, err := m.Next(r.from, r.ev, r.facts)
		if err != nil || got != r.want {
			t.Errorf("%s (%s): %v --%s %+v--> %v (%v), Nova says %v", r.ref, r.flow, r.from, r.ev, r.facts, got, err, r.want)
		}
	}
	if len(rows) < 100 {
		t.Fatalf("only %d rows pinned", len(rows))
	}
}

// TestReferenceAPIStatus pins the API statuses of nova/api/openstack/common.py's
// derivation for the states the flows pass through.
func TestReferenceAPIStatus(t *testing.T) {
	cases := []struct {
		s    FlowState
		want APIStatus
	}{
		{st(VMActive, TaskResizePrep, MigrationNone), StatusResize},
		{st(VMStopped, TaskResizeMigrated, MigrationPostMigrating), StatusResize},
		{st(VMStopped, TaskResizeFinish, MigrationFinished), StatusResize},
		{st(VMResized, TaskNone, MigrationFinished), StatusVerifyResize},
		{st(VMResized, TaskNone, MigrationConfirming), StatusVerifyResize},
		{st(VMResized, TaskResizeReverting, MigrationReverting), StatusRevertResize},
		{st(VMRescued, TaskNone, MigrationNone), StatusRescue},
		{st(VMActive, TaskNone, MigrationConfirmed), StatusActive},
		{st(VMStopped, TaskNone, MigrationReverted), StatusShutoff},
		{st(VMError, TaskNone, MigrationError), StatusError},
	}
	for _, c := range cases {
		if got, err := c.s.Status(); err != nil || got != c.want {
			t.Errorf("%v: %s (%v), want %s", c.s, got, err, c.want)
		}
	}
}

// TestReferenceVocabulary compares the whole vocabulary with the strings of
// Nova's code, written out here, not read from the package.
func TestReferenceVocabulary(t *testing.T) {
	vm := []string{"active", "building", "paused", "suspended", "stopped", "rescued", "resized",
		"soft-delete", "deleted", "error", "shelved", "shelved_offloaded"}
	var gotVM []string
	for _, v := range VMStates() {
		gotVM = append(gotVM, string(v))
	}
	if !sameSet(gotVM, vm) {
		t.Errorf("vm_states %v, Nova %v", gotVM, vm)
	}
	for _, s := range []string{"resize_prep", "resize_migrating", "resize_migrated", "resize_finish",
		"resize_reverting", "rescuing", "unrescuing", "powering-off", "resize_confirming", "deleting", "soft-deleting"} {
		if _, err := ParseTaskState(s); err != nil {
			t.Errorf("task_state %q: %v", s, err)
		}
	}
	for _, s := range []string{"resize_prep", "resize_migrating", "resize_migrated", "resize_finish"} {
		if !TaskState(s).IsResizing() {
			t.Errorf("%s is in resizing_states", s)
		}
	}
	if TaskResizeReverting.IsResizing() {
		t.Error("resize_reverting is not in resizing_states")
	}
	ms := []string{"pre-migrating", "migrating", "post-migrating", "finished", "confirming", "confirmed",
		"reverting", "reverted", "error", "failed", "accepted", "queued", "preparing", "running",
		"completed", "cancelled", "done"}
	var gotMS []string
	for _, m := range MigrationStatuses() {
		gotMS = append(gotMS, string(m))
	}
	if !sameSet(gotMS, ms) {
		t.Errorf("migration statuses %v, Nova %v", gotMS, ms)
	}
	// The in-progress query excludes exactly these; finished counts.
	done := map[string]bool{"confirmed": true, "reverted": true, "error": true, "failed": true,
		"completed": true, "cancelled": true, "done": true}
	for _, m := range ms {
		if MigrationStatus(m).InProgress() == done[m] {
			t.Errorf("%s in progress = %v", m, MigrationStatus(m).InProgress())
		}
	}
	mt := []string{"migration", "resize", "live-migration", "evacuation"}
	var gotMT []string
	for _, m := range MigrationTypes() {
		gotMT = append(gotMT, string(m))
	}
	if !sameSet(gotMT, mt) {
		t.Errorf("migration types %v, Nova %v", gotMT, mt)
	}
	power := map[int]string{0: "pending", 1: "running", 3: "paused", 4: "shutdown", 6: "crashed", 7: "suspended"}
	if len(PowerStates()) != len(power) {
		t.Errorf("power states %v, Nova %v", PowerStates(), power)
	}
	for n, name := range power {
		p, err := ParsePowerState(n)
		if err != nil || p.String() != name {
			t.Errorf("power_state %d: %v %v, want %s", n, p, err, name)
		}
	}
	for _, n := range []int{2, 5, -1, 8} {
		if _, err := ParsePowerState(n); err == nil {
			t.Errorf("power_state %d accepted", n)
		}
	}
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]bool{}
	for _, s := range a {
		m[s] = true
	}
	for _, s := range b {
		if !m[s] {
			return false
		}
	}
	return true
}
