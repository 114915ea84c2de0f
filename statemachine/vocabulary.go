package statemachine

import (
	"fmt"
	"strconv"
)

// VMState is an instance's vm_state (nova/objects/fields.py InstanceState).
type VMState string

// The vm_state values, with Nova's strings.
const (
	VMActive           VMState = "active"
	VMBuilding         VMState = "building"
	VMPaused           VMState = "paused"
	VMSuspended        VMState = "suspended"
	VMStopped          VMState = "stopped"
	VMRescued          VMState = "rescued"
	VMResized          VMState = "resized"
	VMSoftDeleted      VMState = "soft-delete"
	VMDeleted          VMState = "deleted"
	VMError            VMState = "error"
	VMShelved          VMState = "shelved"
	VMShelvedOffloaded VMState = "shelved_offloaded"
)

// VMStates returns every vm_state Nova defines, in Nova's order.
func VMStates() []VMState {
	return []VMState{VMActive, VMBuilding, VMPaused, VMSuspended, VMStopped,
		VMRescued, VMResized, VMSoftDeleted, VMDeleted, VMError, VMShelved,
		VMShelvedOffloaded}
}

// String returns Nova's string for the vm_state.
func (s VMState) String() string { return string(s) }

// Valid reports whether s is one of Nova's vm_state values.
func (s VMState) Valid() bool {
	for _, v := range VMStates() {
		if v == s {
			return true
		}
	}
	return false
}

// ParseVMState returns the vm_state named by s, or an *UnknownValueError.
func ParseVMState(s string) (VMState, error) {
	if v := VMState(s); v.Valid() {
		return v, nil
	}
	return "", &UnknownValueError{Kind: "vm_state", Value: s}
}

// TaskState is an instance's task_state (nova/compute/task_states.py). Nova
// stores None when no task runs; here that is [TaskNone], the empty string.
type TaskState string

// The task_state values, with Nova's strings. The resize, rescue and
// powering-off states are the ones the flows of this module use; the others
// are listed so that any value Nova writes parses and derives a status.
const (
	// TaskNone is Nova's None: no task is running.
	TaskNone TaskState = ""

	TaskScheduling                 TaskState = "scheduling"
	TaskBlockDeviceMapping         TaskState = "block_device_mapping"
	TaskNetworking                 TaskState = "networking"
	TaskSpawning                   TaskState = "spawning"
	TaskImageSnapshot              TaskState = "image_snapshot"
	TaskImageSnapshotPending       TaskState = "image_snapshot_pending"
	TaskImagePendingUpload         TaskState = "image_pending_upload"
	TaskImageUploading             TaskState = "image_uploading"
	TaskImageBackup                TaskState = "image_backup"
	TaskUpdatingPassword           TaskState = "updating_password"
	TaskResizePrep                 TaskState = "resize_prep"
	TaskResizeMigrating            TaskState = "resize_migrating"
	TaskResizeMigrated             TaskState = "resize_migrated"
	TaskResizeFinish               TaskState = "resize_finish"
	TaskResizeReverting            TaskState = "resize_reverting"
	TaskResizeConfirming           TaskState = "resize_confirming" // defined by Nova, set by nothing
	TaskRebooting                  TaskState = "rebooting"
	TaskRebootPending              TaskState = "reboot_pending"
	TaskRebootStarted              TaskState = "reboot_started"
	TaskRebootingHard              TaskState = "rebooting_hard"
	TaskRebootPendingHard          TaskState = "reboot_pending_hard"
	TaskRebootStartedHard          TaskState = "reboot_started_hard"
	TaskPausing                    TaskState = "pausing"
	TaskUnpausing                  TaskState = "unpausing"
	TaskSuspending                 TaskState = "suspending"
	TaskResuming                   TaskState = "resuming"
	TaskPoweringOff                TaskState = "powering-off"
	TaskPoweringOn                 TaskState = "powering-on"
	TaskRescuing                   TaskState = "rescuing"
	TaskUnrescuing                 TaskState = "unrescuing"
	TaskRebuilding                 TaskState = "rebuilding"
	TaskRebuildBlockDeviceMapping  TaskState = "rebuild_block_device_mapping"
	TaskRebuildSpawning            TaskState = "rebuild_spawning"
	TaskMigrating                  TaskState = "migrating" // live migration
	TaskDeleting                   TaskState = "deleting"
	TaskSoftDeleting               TaskState = "soft-deleting"
	TaskRestoring                  TaskState = "restoring"
	TaskShelving                   TaskState = "shelving"
	TaskShelvingImagePendingUpload TaskState = "shelving_image_pending_upload"
	TaskShelvingImageUploading     TaskState = "shelving_image_uploading"
	TaskShelvingOffloading         TaskState = "shelving_offloading"
	TaskUnshelving                 TaskState = "unshelving"
)

// TaskStates returns every task_state, [TaskNone] first.
func TaskStates() []TaskState {
	return []TaskState{TaskNone, TaskScheduling, TaskBlockDeviceMapping,
		TaskNetworking, TaskSpawning, TaskImageSnapshot, TaskImageSnapshotPending,
		TaskImagePendingUpload, TaskImageUploading, TaskImageBackup,
		TaskUpdatingPassword, TaskResizePrep, TaskResizeMigrating,
		TaskResizeMigrated, TaskResizeFinish, TaskResizeReverting,
		TaskResizeConfirming, TaskRebooting, TaskRebootPending, TaskRebootStarted,
		TaskRebootingHard, TaskRebootPendingHard, TaskRebootStartedHard,
		TaskPausing, TaskUnpausing, TaskSuspending, TaskResuming,
		TaskPoweringOff, TaskPoweringOn, TaskRescuing, TaskUnrescuing,
		TaskRebuilding, TaskRebuildBlockDeviceMapping, TaskRebuildSpawning,
		TaskMigrating, TaskDeleting, TaskSoftDeleting, TaskRestoring,
		TaskShelving, TaskShelvingImagePendingUpload, TaskShelvingImageUploading,
		TaskShelvingOffloading, TaskUnshelving}
}

// ResizingTaskStates returns Nova's task_states.resizing_states: the task
// states of a resize or cold migration in progress.
func ResizingTaskStates() []TaskState {
	return []TaskState{TaskResizePrep, TaskResizeMigrating, TaskResizeMigrated,
		TaskResizeFinish}
}

// String returns Nova's string for the task_state, and "None" for [TaskNone].
func (t TaskState) String() string {
	if t == TaskNone {
		return "None"
	}
	return string(t)
}

// Valid reports whether t is [TaskNone] or one of Nova's task_state values.
func (t TaskState) Valid() bool {
	for _, v := range TaskStates() {
		if v == t {
			return true
		}
	}
	return false
}

// IsResizing reports whether t is one of [ResizingTaskStates].
func (t TaskState) IsResizing() bool {
	for _, v := range ResizingTaskStates() {
		if v == t {
			return true
		}
	}
	return false
}

// ParseTaskState returns the task_state named by s. Both "" and "None" give
// [TaskNone]; an unknown name gives an *UnknownValueError.
func ParseTaskState(s string) (TaskState, error) {
	if s == "None" {
		return TaskNone, nil
	}
	if v := TaskState(s); v.Valid() {
		return v, nil
	}
	return "", &UnknownValueError{Kind: "task_state", Value: s}
}

// PowerState is the hypervisor's view of a guest (nova/compute/power_state.py).
// Indexes 2 and 5 are unused.
type PowerState int

// The power_state values.
const (
	PowerNoState   PowerState = 0
	PowerRunning   PowerState = 1
	PowerPaused    PowerState = 3
	PowerShutdown  PowerState = 4
	PowerCrashed   PowerState = 6
	PowerSuspended PowerState = 7
)

// PowerStates returns every power_state value, in numeric order.
func PowerStates() []PowerState {
	return []PowerState{PowerNoState, PowerRunning, PowerPaused, PowerShutdown,
		PowerCrashed, PowerSuspended}
}

// String returns Nova's name for the power state (power_state.STATE_MAP):
// "pending", "running", "paused", "shutdown", "crashed", "suspended". An
// unused value prints as "power_state(N)".
func (p PowerState) String() string {
	switch p {
	case PowerNoState:
		return "pending"
	case PowerRunning:
		return "running"
	case PowerPaused:
		return "paused"
	case PowerShutdown:
		return "shutdown"
	case PowerCrashed:
		return "crashed"
	case PowerSuspended:
		return "suspended"
	}
	return "power_state(" + strconv.Itoa(int(p)) + ")"
}

// Valid reports whether p is one of Nova's power_state values.
func (p PowerState) Valid() bool {
	for _, v := range PowerStates() {
		if v == p {
			return true
		}
	}
	return false
}

// ParsePowerState returns the power state with integer value n, or an
// *UnknownValueError for 2, 5 and anything outside 0..7.
func ParsePowerState(n int) (PowerState, error) {
	if p := PowerState(n); p.Valid() {
		return p, nil
	}
	return 0, &UnknownValueError{Kind: "power_state", Value: strconv.Itoa(n)}
}

// ParsePowerStateName returns the power state Nova names s ("running",
// "shutdown", ...), or an *UnknownValueError.
func ParsePowerStateName(s string) (PowerState, error) {
	for _, p := range PowerStates() {
		if p.String() == s {
			return p, nil
		}
	}
	return 0, &UnknownValueError{Kind: "power_state", Value: s}
}

// MigrationStatus is a Migration record's status. Nova keeps it as a
// free-form string; these are the values its code writes. [MigrationNone]
// stands for "no migration record yet" in the flow tables.
type MigrationStatus string

// The migration statuses, with Nova's strings.
const (
	// MigrationNone means no migration record exists (yet).
	MigrationNone MigrationStatus = ""

	// Cold move (resize, cold migrate, cross-cell resize).
	MigrationPreMigrating  MigrationStatus = "pre-migrating"
	MigrationMigrating     MigrationStatus = "migrating"
	MigrationPostMigrating MigrationStatus = "post-migrating"
	MigrationFinished      MigrationStatus = "finished"
	MigrationConfirming    MigrationStatus = "confirming"
	MigrationConfirmed     MigrationStatus = "confirmed"
	MigrationReverting     MigrationStatus = "reverting"
	MigrationReverted      MigrationStatus = "reverted"
	MigrationError         MigrationStatus = "error"
	MigrationFailed        MigrationStatus = "failed"

	// Live migration and evacuation, listed for completeness.
	MigrationAccepted  MigrationStatus = "accepted"
	MigrationQueued    MigrationStatus = "queued"
	MigrationPreparing MigrationStatus = "preparing"
	MigrationRunning   MigrationStatus = "running"
	MigrationCompleted MigrationStatus = "completed"
	MigrationCancelled MigrationStatus = "cancelled"
	MigrationDone      MigrationStatus = "done"
)

// MigrationStatuses returns every migration status Nova writes (not
// [MigrationNone]).
func MigrationStatuses() []MigrationStatus {
	return []MigrationStatus{MigrationPreMigrating, MigrationMigrating,
		MigrationPostMigrating, MigrationFinished, MigrationConfirming,
		MigrationConfirmed, MigrationReverting, MigrationReverted,
		MigrationError, MigrationFailed, MigrationAccepted, MigrationQueued,
		MigrationPreparing, MigrationRunning, MigrationCompleted,
		MigrationCancelled, MigrationDone}
}

// String returns Nova's string for the status, and "none" for [MigrationNone].
func (m MigrationStatus) String() string {
	if m == MigrationNone {
		return "none"
	}
	return string(m)
}

// Valid reports whether m is one of [MigrationStatuses].
func (m MigrationStatus) Valid() bool {
	for _, v := range MigrationStatuses() {
		if v == m {
			return true
		}
	}
	return false
}

// InProgress reports whether a migration in status m still holds resources:
// Nova's "in progress for host/node" query excludes confirmed, reverted,
// error, failed, completed, cancelled and done. finished counts as in
// progress, because the resize waits in VERIFY_RESIZE.
func (m MigrationStatus) InProgress() bool {
	switch m {
	case MigrationNone, MigrationConfirmed, MigrationReverted, MigrationError,
		MigrationFailed, MigrationCompleted, MigrationCancelled, MigrationDone:
		return false
	}
	return m.Valid()
}

// ParseMigrationStatus returns the status named by s, or an
// *UnknownValueError (also for "", which no record holds).
func ParseMigrationStatus(s string) (MigrationStatus, error) {
	if v := MigrationStatus(s); v.Valid() {
		return v, nil
	}
	return "", &UnknownValueError{Kind: "migration status", Value: s}
}

// MigrationType is a Migration record's migration_type.
type MigrationType string

// The migration types, with Nova's strings. A cold move is a resize exactly
// when the old and new flavors differ.
const (
	MigrationTypeMigration     MigrationType = "migration"
	MigrationTypeResize        MigrationType = "resize"
	MigrationTypeLiveMigration MigrationType = "live-migration"
	MigrationTypeEvacuation    MigrationType = "evacuation"
)

// MigrationTypes returns every migration type.
func MigrationTypes() []MigrationType {
	return []MigrationType{MigrationTypeMigration, MigrationTypeResize,
		MigrationTypeLiveMigration, MigrationTypeEvacuation}
}

// String returns Nova's string for the type.
func (t MigrationType) String() string { return string(t) }

// Valid reports whether t is one of [MigrationTypes].
func (t MigrationType) Valid() bool {
	for _, v := range MigrationTypes() {
		if v == t {
			return true
		}
	}
	return false
}

// ParseMigrationType returns the type named by s, or an *UnknownValueError.
func ParseMigrationType(s string) (MigrationType, error) {
	if v := MigrationType(s); v.Valid() {
		return v, nil
	}
	return "", &UnknownValueError{Kind: "migration_type", Value: s}
}

// Action is the name of an instance action record (nova/compute/instance_actions.py).
type Action string

// The instance action names of the flows in this module.
const (
	ActionResize        Action = "resize"
	ActionMigrate       Action = "migrate"
	ActionConfirmResize Action = "confirmResize"
	ActionRevertResize  Action = "revertResize"
	ActionRescue        Action = "rescue"
	ActionUnrescue      Action = "unrescue"
	ActionStop          Action = "stop"
)

// Actions returns every instance action name of this package.
func Actions() []Action {
	return []Action{ActionResize, ActionMigrate, ActionConfirmResize,
		ActionRevertResize, ActionRescue, ActionUnrescue, ActionStop}
}

// String returns Nova's action name.
func (a Action) String() string { return string(a) }

// ParseAction returns the action named by s, or an *UnknownValueError.
func ParseAction(s string) (Action, error) {
	for _, a := range Actions() {
		if string(a) == s {
			return a, nil
		}
	}
	return "", &UnknownValueError{Kind: "instance action", Value: s}
}

// UnknownValueError reports a string or number that is not one of Nova's
// values of a kind ("vm_state", "task_state", "power_state", "migration
// status", "migration_type", "instance action", "notification", "api status",
// "flow").
type UnknownValueError struct {
	Kind  string
	Value string
}

// Error implements the error interface.
func (e *UnknownValueError) Error() string {
	return fmt.Sprintf("statemachine: unknown %s %q", e.Kind, e.Value)
}
