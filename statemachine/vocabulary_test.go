package statemachine

import (
	"errors"
	"testing"
)

func TestParseRoundTrip(t *testing.T) {
	for _, v := range VMStates() {
		if got, err := ParseVMState(v.String()); err != nil || got != v {
			t.Errorf("vm_state %q: %v %v", v, got, err)
		}
	}
	for _, v := range TaskStates() {
		if got, err := ParseTaskState(string(v)); err != nil || got != v {
			t.Errorf("task_state %q: %v %v", v, got, err)
		}
	}
	for _, v := range PowerStates() {
		if got, err := ParsePowerState(int(v)); err != nil || got != v {
			t.Errorf("power_state %d: %v %v", v, got, err)
		}
		if got, err := ParsePowerStateName(v.String()); err != nil || got != v {
			t.Errorf("power_state %s: %v %v", v, got, err)
		}
	}
	for _, v := range MigrationStatuses() {
		if got, err := ParseMigrationStatus(v.String()); err != nil || got != v {
			t.Errorf("migration status %q: %v %v", v, got, err)
		}
	}
	for _, v := range MigrationTypes() {
		if got, err := ParseMigrationType(v.String()); err != nil || got != v {
			t.Errorf("migration type %q: %v %v", v, got, err)
		}
	}
	for _, v := range Actions() {
		if got, err := ParseAction(v.String()); err != nil || got != v {
			t.Errorf("action %q: %v %v", v, got, err)
		}
	}
	for _, v := range Notifications() {
		if got, err := ParseNotification(v.String()); err != nil || got != v {
			t.Errorf("notification %q: %v %v", v, got, err)
		}
	}
	if got, err := ParseTaskState("None"); err != nil || got != TaskNone {
		t.Errorf("None: %v %v", got, err)
	}
}

func TestNovaStrings(t *testing.T) {
	// Spot checks of the exact strings Nova writes.
	for got, want := range map[string]string{
		string(VMSoftDeleted):              "soft-delete",
		string(VMShelvedOffloaded):         "shelved_offloaded",
		string(TaskPoweringOff):            "powering-off",
		string(TaskSoftDeleting):           "soft-deleting",
		string(TaskResizeReverting):        "resize_reverting",
		string(MigrationPreMigrating):      "pre-migrating",
		string(MigrationPostMigrating):     "post-migrating",
		string(MigrationTypeLiveMigration): "live-migration",
		string(ActionConfirmResize):        "confirmResize",
		string(NotifyResizePrepStart):      "compute.instance.resize.prep.start",
		string(NotifyFinishResizeEnd):      "compute.instance.finish_resize.end",
		PowerNoState.String():              "pending",
		PowerShutdown.String():             "shutdown",
		TaskNone.String():                  "None",
		MigrationNone.String():             "none",
		PowerState(2).String():             "power_state(2)",
	} {
		if got != want {
			t.Errorf("got %q want %q", got, want)
		}
	}
	if PowerRunning != 1 || PowerPaused != 3 || PowerShutdown != 4 || PowerCrashed != 6 || PowerSuspended != 7 {
		t.Error("power_state integers differ from Nova's")
	}
}

func TestParseUnknown(t *testing.T) {
	cases := []struct {
		kind string
		err  error
	}{
		{"vm_state", func() error { _, err := ParseVMState("ACTIVE"); return err }()},
		{"vm_state", func() error { _, err := ParseVMState(""); return err }()},
		{"task_state", func() error { _, err := ParseTaskState("resize_verify"); return err }()},
		{"power_state", func() error { _, err := ParsePowerState(2); return err }()},
		{"power_state", func() error { _, err := ParsePowerState(5); return err }()},
		{"power_state", func() error { _, err := ParsePowerState(-1); return err }()},
		{"power_state", func() error { _, err := ParsePowerState(8); return err }()},
		{"power_state", func() error { _, err := ParsePowerStateName("off"); return err }()},
		{"migration status", func() error { _, err := ParseMigrationStatus(""); return err }()},
		{"migration status", func() error { _, err := ParseMigrationStatus("verify-migration"); return err }()},
		{"migration_type", func() error { _, err := ParseMigrationType("cold"); return err }()},
		{"instance action", func() error { _, err := ParseAction("confirm_resize"); return err }()},
		{"notification", func() error { _, err := ParseNotification("compute.instance.teleport"); return err }()},
		{"flow", func() error { _, err := ParseFlowName("teleport"); return err }()},
		{"move phase", func() error { _, err := ParseMovePhase("halfway"); return err }()},
		{"operation", func() error { _, err := LookupPrecondition("teleport"); return err }()},
	}
	for _, c := range cases {
		var uv *UnknownValueError
		if !errors.As(c.err, &uv) || uv.Kind != c.kind {
			t.Errorf("want *UnknownValueError of kind %q, got %v", c.kind, c.err)
		}
	}
}

func TestMigrationInProgress(t *testing.T) {
	for _, s := range MigrationStatuses() {
		want := true
		switch s {
		case MigrationConfirmed, MigrationReverted, MigrationError, MigrationFailed,
			MigrationCompleted, MigrationCancelled, MigrationDone:
			want = false
		}
		if s.InProgress() != want {
			t.Errorf("%s: InProgress %v, want %v", s, s.InProgress(), want)
		}
	}
	if MigrationNone.InProgress() || MigrationStatus("bogus").InProgress() {
		t.Error("none or unknown status counted in progress")
	}
	if !TaskResizeFinish.IsResizing() || TaskResizeReverting.IsResizing() {
		t.Error("resizing_states wrong")
	}
}

func TestStatus(t *testing.T) {
	cases := []struct {
		vm   VMState
		task TaskState
		want APIStatus
	}{
		{VMActive, TaskNone, StatusActive},
		{VMStopped, TaskNone, StatusShutoff},
		{VMActive, TaskResizePrep, StatusResize},
		{VMActive, TaskResizeMigrating, StatusResize},
		{VMActive, TaskResizeMigrated, StatusResize},
		{VMActive, TaskResizeFinish, StatusResize},
		{VMStopped, TaskResizePrep, StatusResize},
		{VMStopped, TaskResizeFinish, StatusResize},
		{VMResized, TaskNone, StatusVerifyResize},
		{VMResized, TaskResizeReverting, StatusRevertResize},
		{VMResized, TaskResizeConfirming, StatusVerifyResize},
		{VMResized, TaskPoweringOff, StatusVerifyResize},
		{VMRescued, TaskNone, StatusRescue},
		{VMRescued, TaskUnrescuing, StatusRescue},
		{VMActive, TaskRescuing, StatusActive},
		{VMError, TaskNone, StatusError},
		{VMError, TaskResizeMigrating, StatusError},
		{VMError, TaskRebuilding, StatusRebuild},
		{VMActive, TaskMigrating, StatusMigrating},
		{VMPaused, TaskMigrating, StatusMigrating},
		{VMStopped, TaskMigrating, StatusShutoff},
		{VMActive, TaskRebootingHard, StatusHardReboot},
		{VMActive, TaskUpdatingPassword, StatusPassword},
		{VMBuilding, TaskSpawning, StatusBuild},
		{VMSoftDeleted, TaskNone, StatusSoftDeleted},
		{VMDeleted, TaskNone, StatusDeleted},
		{VMShelvedOffloaded, TaskNone, StatusShelvedOffloaded},
		{VMSuspended, TaskNone, StatusSuspended},
	}
	for _, c := range cases {
		got, err := Status(c.vm, c.task)
		if err != nil || got != c.want {
			t.Errorf("Status(%s, %s) = %s, %v; want %s", c.vm, c.task, got, err, c.want)
		}
	}
	for _, vm := range VMStates() {
		if _, err := Status(vm, TaskNone); err != nil {
			t.Errorf("Status(%s, None): %v", vm, err)
		}
	}
	if got, err := Status("flying", TaskNone); got != StatusUnknown || err == nil {
		t.Errorf("unknown vm_state: %s %v", got, err)
	}
	if got, err := Status("", TaskNone); got != StatusUnknown || err == nil {
		t.Errorf("empty vm_state: %s %v", got, err)
	}
	if got, err := Status(VMActive, "bogus"); got != StatusUnknown || err == nil {
		t.Errorf("unknown task_state: %s %v", got, err)
	}
}

func TestMovePhases(t *testing.T) {
	for _, p := range append([]MovePhase{PhaseNone}, MovePhases()...) {
		got, err := ParseMovePhase(string(p))
		if err != nil || got != p {
			t.Errorf("ParseMovePhase(%q) = %q, %v", p, got, err)
		}
	}
	s := FlowState{VM: VMActive, Task: TaskResizePrep, Migration: MigrationPreMigrating, Phase: PhaseDestClaimed}
	if got, want := s.String(), "active/resize_prep/pre-migrating+dest_claimed"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got := PhaseNone.String(); got != "none" {
		t.Errorf("PhaseNone.String() = %q", got)
	}
}
