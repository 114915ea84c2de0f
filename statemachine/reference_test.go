package statemachine

import "testing"

// TestReferenceOutcomes pins, independently of the flow tables, the outcome
// the reference (nova-flows.md §1.5–§1.10) gives for every error row of
// §1.9, every branch of auto-confirm (§1.7), both branches of revert
// (power_on true and false, §1.6), the rescue and unrescue errors (§1.8)
// and the cross-cell failures (§1.10). The path walk in flow_test.go only
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
				// §1.9 scheduler NoValidHost / MaxRetriesExceeded / UnsupportedPolicy.
				row{"1.9 no valid host", fl, pre, EvConductorNoValidHost, Facts{}, st(old, TaskNone, MigrationError)},
				// §1.9 other conductor exception.
				row{"1.9 other conductor exception", fl, pre, EvConductorError, Facts{}, st(old, TaskNone, MigrationError)},
				// §1.9 dest prep_resize with retry: task stays resize_prep, migration stays pre-migrating.
				row{"1.9 prep_resize with retry", fl, pre, EvDestPrepResizeReschedule, Facts{}, pre},
				// §1.9 dest prep_resize without retry.
				row{"1.9 prep_resize fault rollback", fl, pre, EvDestPrepResizeFaultRollback, Facts{}, st(old, TaskNone, MigrationError)},
				row{"1.9 prep_resize other", fl, pre, EvDestPrepResizeError, Facts{}, st(VMError, TaskNone, MigrationError)},
				// §1.9 source resize_instance.
				row{"1.9 resize_instance fault rollback", fl, st(old, TaskResizeMigrating, MigrationMigrating), EvSourceResizeInstanceFaultRollback, Facts{}, st(old, TaskNone, MigrationError)},
				row{"1.9 resize_instance other", fl, st(old, TaskResizeMigrating, MigrationMigrating), EvSourceResizeInstanceError, Facts{}, st(VMError, TaskNone, MigrationError)},
				// §1.9 dest finish_resize.
				row{"1.9 finish_resize", fl, st(old, TaskResizeMigrated, MigrationPostMigrating), EvDestFinishResizeError, Facts{}, st(VMError, TaskNone, MigrationError)},
				row{"1.9 finish_resize (driver)", fl, st(old, TaskResizeFinish, MigrationPostMigrating), EvDestFinishResizeError, Facts{}, st(VMError, TaskNone, MigrationError)},
				// §1.2 steps 4-7.
				row{"1.2 step 4", fl, pre, EvSourceResizeInstance, Facts{}, st(old, TaskResizeMigrating, MigrationMigrating)},
				row{"1.2 step 5", fl, st(old, TaskResizeMigrating, MigrationMigrating), EvSourceMigrateDiskAndPowerOff, Facts{}, st(old, TaskResizeMigrated, MigrationPostMigrating)},
				row{"1.2 step 6", fl, st(old, TaskResizeMigrated, MigrationPostMigrating), EvDestFinishResize, Facts{}, st(old, TaskResizeFinish, MigrationPostMigrating)},
				row{"1.2 step 7", fl, st(old, TaskResizeFinish, MigrationFinished), EvDestInstanceResized, Facts{}, st(VMResized, TaskNone, MigrationFinished)},
			)
		}
		// §1.9 instance deleted while its migration is in error.
		rows = append(rows, row{"1.9 cleanup incomplete", fl, st(VMDeleted, TaskNone, MigrationError), EvPeriodicCleanupIncompleteMigrations, Facts{}, st(VMDeleted, TaskNone, MigrationFailed)})
	}
	verifying := st(VMResized, TaskNone, MigrationFinished)
	confirming := st(VMResized, TaskNone, MigrationConfirming)
	for _, fl := range []FlowName{FlowConfirm, FlowAutoConfirm} {
		rows = append(rows,
			// §1.5 step 3: vm_state from power_state.
			row{"1.5 confirm, shut down", fl, confirming, EvSourceConfirmResize, Facts{PowerState: PowerShutdown}, st(VMStopped, TaskNone, MigrationConfirmed)},
			row{"1.5 confirm, running", fl, confirming, EvSourceConfirmResize, Facts{PowerState: PowerRunning}, st(VMActive, TaskNone, MigrationConfirmed)},
			row{"1.5 confirm, crashed", fl, confirming, EvSourceConfirmResize, Facts{PowerState: PowerCrashed}, st(VMActive, TaskNone, MigrationConfirmed)},
			// §1.9 source confirm.
			row{"1.9 source confirm", fl, confirming, EvSourceConfirmResizeError, Facts{}, st(VMError, TaskNone, MigrationError)},
		)
	}
	rows = append(rows,
		row{"1.5 API confirm", FlowConfirm, verifying, EvAPIConfirmResize, Facts{}, confirming},
		// §1.7 every branch of _poll_unconfirmed_resizes.
		row{"1.7 confirm", FlowAutoConfirm, verifying, EvPeriodicPollUnconfirmedResizes, Facts{}, confirming},
		row{"1.7 instance not found", FlowAutoConfirm, st(VMDeleted, TaskNone, MigrationFinished), EvPeriodicPollUnconfirmedResizes, Facts{}, st(VMDeleted, TaskNone, MigrationError)},
		row{"1.7 vm_state error", FlowAutoConfirm, st(VMError, TaskNone, MigrationFinished), EvPeriodicPollUnconfirmedResizes, Facts{}, st(VMError, TaskNone, MigrationError)},
		row{"1.7 deleting skipped", FlowAutoConfirm, st(VMResized, TaskDeleting, MigrationFinished), EvPeriodicPollUnconfirmedResizes, Facts{}, st(VMResized, TaskDeleting, MigrationFinished)},
		row{"1.7 soft-deleting skipped", FlowAutoConfirm, st(VMResized, TaskSoftDeleting, MigrationFinished), EvPeriodicPollUnconfirmedResizes, Facts{}, st(VMResized, TaskSoftDeleting, MigrationFinished)},
		row{"1.7 resize_finish skipped", FlowAutoConfirm, st(VMActive, TaskResizeFinish, MigrationFinished), EvPeriodicPollUnconfirmedResizes, Facts{}, st(VMActive, TaskResizeFinish, MigrationFinished)},
		row{"1.7 resize_finish skipped (stopped)", FlowAutoConfirm, st(VMStopped, TaskResizeFinish, MigrationFinished), EvPeriodicPollUnconfirmedResizes, Facts{}, st(VMStopped, TaskResizeFinish, MigrationFinished)},
		row{"1.7 not resized", FlowAutoConfirm, st(VMActive, TaskNone, MigrationFinished), EvPeriodicPollUnconfirmedResizes, Facts{}, st(VMActive, TaskNone, MigrationError)},
		row{"1.7 not resized (stopped)", FlowAutoConfirm, st(VMStopped, TaskNone, MigrationFinished), EvPeriodicPollUnconfirmedResizes, Facts{}, st(VMStopped, TaskNone, MigrationError)},
		row{"1.7 task not None", FlowAutoConfirm, st(VMResized, TaskResizeReverting, MigrationFinished), EvPeriodicPollUnconfirmedResizes, Facts{}, st(VMResized, TaskResizeReverting, MigrationError)},
		// §1.6 revert.
		row{"1.6 API revert", FlowRevert, verifying, EvAPIRevertResize, Facts{}, st(VMResized, TaskResizeReverting, MigrationReverting)},
		row{"1.6 dest revert_resize", FlowRevert, st(VMResized, TaskResizeReverting, MigrationReverting), EvDestRevertResize, Facts{}, st(VMResized, TaskResizeReverting, MigrationReverted)},
		row{"1.6 finish_revert power_on", FlowRevert, st(VMResized, TaskResizeReverting, MigrationReverted), EvSourceFinishRevertResize, Facts{OldVMState: VMActive}, st(VMActive, TaskNone, MigrationReverted)},
		row{"1.6 finish_revert power_on=false", FlowRevert, st(VMResized, TaskResizeReverting, MigrationReverted), EvSourceFinishRevertResize, Facts{OldVMState: VMStopped}, st(VMResized, TaskPoweringOff, MigrationReverted)},
		row{"1.6 stop_instance", FlowRevert, st(VMResized, TaskPoweringOff, MigrationReverted), EvSourceStopInstance, Facts{}, st(VMStopped, TaskNone, MigrationReverted)},
		// §1.9 dest revert_resize and source finish_revert_resize.
		row{"1.9 dest revert_resize", FlowRevert, st(VMResized, TaskResizeReverting, MigrationReverting), EvDestRevertResizeError, Facts{}, st(VMError, TaskNone, MigrationError)},
		row{"1.9 finish_revert AllocationMoveFailed", FlowRevert, st(VMResized, TaskResizeReverting, MigrationReverted), EvSourceFinishRevertResizeError, Facts{}, st(VMError, TaskNone, MigrationError)},
		// §1.8 unrescue and its errors, and the rescue timeout.
		row{"1.8 unrescue", FlowRescue, st(VMRescued, TaskUnrescuing, MigrationNone), EvComputeUnrescue, Facts{}, st(VMActive, TaskNone, MigrationNone)},
		row{"1.8 unrescue NotImplementedError", FlowRescue, st(VMRescued, TaskUnrescuing, MigrationNone), EvComputeUnrescueNotImplemented, Facts{}, st(VMActive, TaskNone, MigrationNone)},
		row{"1.8 unrescue other", FlowRescue, st(VMRescued, TaskUnrescuing, MigrationNone), EvComputeUnrescueError, Facts{}, st(VMError, TaskNone, MigrationNone)},
		row{"1.8 API unrescue", FlowRescue, st(VMRescued, TaskNone, MigrationNone), EvAPIUnrescue, Facts{}, st(VMRescued, TaskUnrescuing, MigrationNone)},
		row{"1.8 rescue_timeout", FlowRescue, st(VMRescued, TaskNone, MigrationNone), EvPeriodicPollRescuedInstances, Facts{}, st(VMRescued, TaskUnrescuing, MigrationNone)},
		// §1.8 compute restart.
		row{"1.8 restart resize_prep", FlowComputeRestart, st(VMActive, TaskResizePrep, MigrationPreMigrating), EvStartupInitInstance, Facts{}, st(VMActive, TaskNone, MigrationPreMigrating)},
		row{"1.8 restart resize_migrating in error", FlowComputeRestart, st(VMError, TaskResizeMigrating, MigrationMigrating), EvStartupInitInstance, Facts{}, st(VMError, TaskNone, MigrationMigrating)},
		row{"1.8 restart resize_migrated stuck", FlowComputeRestart, st(VMStopped, TaskResizeMigrated, MigrationPostMigrating), EvStartupInitInstance, Facts{}, st(VMStopped, TaskResizeMigrated, MigrationPostMigrating)},
		row{"1.8 restart resize_reverting stuck", FlowComputeRestart, st(VMResized, TaskResizeReverting, MigrationReverting), EvStartupInitInstance, Facts{}, st(VMResized, TaskResizeReverting, MigrationReverting)},
		row{"1.8 restart unrescuing stuck", FlowComputeRestart, st(VMRescued, TaskUnrescuing, MigrationNone), EvStartupInitInstance, Facts{}, st(VMRescued, TaskUnrescuing, MigrationNone)},
	)
	for _, v := range []VMState{VMActive, VMStopped, VMError} {
		rows = append(rows,
			row{"1.8 API rescue from " + string(v), FlowRescue, st(v, TaskNone, MigrationNone), EvAPIRescue, Facts{}, st(v, TaskRescuing, MigrationNone)},
			row{"1.8 rescue", FlowRescue, st(v, TaskRescuing, MigrationNone), EvComputeRescue, Facts{}, st(VMRescued, TaskNone, MigrationNone)},
			row{"1.8 rescue driver error", FlowRescue, st(v, TaskRescuing, MigrationNone), EvComputeRescueError, Facts{}, st(VMError, TaskNone, MigrationNone)},
		)
	}
	// §1.10 cross-cell: failures go to error/error; confirm and revert.
	for _, old := range []VMState{VMActive, VMStopped} {
		rows = append(rows,
			row{"1.10 prep at source fails", FlowCrossCellResize, st(old, TaskResizeMigrating, MigrationPreMigrating), EvCrossCellPrepAtSourceError, Facts{}, st(VMError, TaskNone, MigrationError)},
			row{"1.10 prep at source fails (migrating)", FlowCrossCellResize, st(old, TaskResizeMigrating, MigrationMigrating), EvCrossCellPrepAtSourceError, Facts{}, st(VMError, TaskNone, MigrationError)},
			row{"1.10 step 3", FlowCrossCellResize, st(old, TaskResizeMigrating, MigrationMigrating), EvCrossCellSourcePoweredOff, Facts{}, st(old, TaskResizeMigrated, MigrationPostMigrating)},
			row{"1.10 finish at dest fails", FlowCrossCellResize, st(old, TaskResizeMigrated, MigrationPostMigrating), EvCrossCellFinishAtDestError, Facts{}, st(VMError, TaskNone, MigrationError)},
			row{"1.10 step 4", FlowCrossCellResize, st(old, TaskResizeMigrated, MigrationPostMigrating), EvCrossCellFinishAtDest, Facts{}, st(old, TaskResizeFinish, MigrationPostMigrating)},
			row{"1.10 no valid host", FlowCrossCellResize, st(old, TaskResizePrep, MigrationPreMigrating), EvConductorNoValidHost, Facts{}, st(old, TaskNone, MigrationError)},
		)
	}
	rows = append(rows,
		row{"1.10 step 4 end", FlowCrossCellResize, st(VMActive, TaskResizeFinish, MigrationFinished), EvDestInstanceResized, Facts{}, verifying},
		row{"1.10 confirm fails", FlowCrossCellResize, confirming, EvCrossCellConfirmError, Facts{}, st(VMError, TaskNone, MigrationError)},
		row{"1.10 revert fails", FlowCrossCellResize, st(VMResized, TaskResizeReverting, MigrationReverting), EvCrossCellRevertError, Facts{}, st(VMError, TaskNone, MigrationError)},
		row{"1.10 confirm, shut down", FlowCrossCellResize, confirming, EvCrossCellConfirm, Facts{PowerState: PowerShutdown}, st(VMStopped, TaskNone, MigrationConfirmed)},
		row{"1.10 confirm, running", FlowCrossCellResize, confirming, EvCrossCellConfirm, Facts{PowerState: PowerRunning}, st(VMActive, TaskNone, MigrationConfirmed)},
		row{"1.10 revert, was active", FlowCrossCellResize, st(VMResized, TaskResizeReverting, MigrationReverting), EvCrossCellRevert, Facts{OldVMState: VMActive}, st(VMActive, TaskNone, MigrationReverted)},
		row{"1.10 revert, was stopped", FlowCrossCellResize, st(VMResized, TaskResizeReverting, MigrationReverting), EvCrossCellRevert, Facts{OldVMState: VMStopped}, st(VMStopped, TaskNone, MigrationReverted)},
	)
	for _, r := range rows {
		f, err := LookupFlow(r.flow)
		if err != nil {
			t.Fatalf("%s: %v", r.ref, err)
		}
		m, err := f.Machine()
		if err != nil {
			t.Fatalf("%s: %v", r.ref, err)
		}
		got, err := m.Next(r.from, r.ev, r.facts)
		if err != nil || got != r.want {
			t.Errorf("§%s (%s): %v --%s %+v--> %v (%v), reference says %v", r.ref, r.flow, r.from, r.ev, r.facts, got, err, r.want)
		}
	}
	if len(rows) < 100 {
		t.Fatalf("only %d reference rows", len(rows))
	}
}

// TestReferenceAPIStatus pins the API statuses of the reference's §0
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
// the reference's §0, written out here, not read from the package.
func TestReferenceVocabulary(t *testing.T) {
	vm := []string{"active", "building", "paused", "suspended", "stopped", "rescued", "resized",
		"soft-delete", "deleted", "error", "shelved", "shelved_offloaded"}
	var gotVM []string
	for _, v := range VMStates() {
		gotVM = append(gotVM, string(v))
	}
	if !sameSet(gotVM, vm) {
		t.Errorf("vm_states %v, reference %v", gotVM, vm)
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
		t.Errorf("migration statuses %v, reference %v", gotMS, ms)
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
		t.Errorf("migration types %v, reference %v", gotMT, mt)
	}
	power := map[int]string{0: "pending", 1: "running", 3: "paused", 4: "shutdown", 6: "crashed", 7: "suspended"}
	if len(PowerStates()) != len(power) {
		t.Errorf("power states %v, reference %v", PowerStates(), power)
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
