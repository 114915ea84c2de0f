package statemachine

// APIStatus is the server status the compute API shows
// (nova/api/openstack/common.py status_from_state).
type APIStatus string

// The API statuses.
const (
	StatusActive           APIStatus = "ACTIVE"
	StatusBuild            APIStatus = "BUILD"
	StatusReboot           APIStatus = "REBOOT"
	StatusHardReboot       APIStatus = "HARD_REBOOT"
	StatusPassword         APIStatus = "PASSWORD"
	StatusRebuild          APIStatus = "REBUILD"
	StatusMigrating        APIStatus = "MIGRATING"
	StatusResize           APIStatus = "RESIZE"
	StatusVerifyResize     APIStatus = "VERIFY_RESIZE"
	StatusRevertResize     APIStatus = "REVERT_RESIZE"
	StatusShutoff          APIStatus = "SHUTOFF"
	StatusPaused           APIStatus = "PAUSED"
	StatusSuspended        APIStatus = "SUSPENDED"
	StatusRescue           APIStatus = "RESCUE"
	StatusError            APIStatus = "ERROR"
	StatusDeleted          APIStatus = "DELETED"
	StatusSoftDeleted      APIStatus = "SOFT_DELETED"
	StatusShelved          APIStatus = "SHELVED"
	StatusShelvedOffloaded APIStatus = "SHELVED_OFFLOADED"
	// StatusUnknown is what Nova shows for a vm_state it does not know.
	StatusUnknown APIStatus = "UNKNOWN"
)

// String returns the status.
func (s APIStatus) String() string { return string(s) }

// statusMap is Nova's _STATE_MAP: for each vm_state, the status by
// task_state, with the default under TaskNone's key "" plus explicit
// entries. It is rebuilt per call; the package keeps no mutable state.
func statusMap(vm VMState) (def APIStatus, byTask map[TaskState]APIStatus, ok bool) {
	resize := map[TaskState]APIStatus{
		TaskResizePrep: StatusResize, TaskResizeMigrating: StatusResize,
		TaskResizeMigrated: StatusResize, TaskResizeFinish: StatusResize,
	}
	rebuild := map[TaskState]APIStatus{
		TaskRebuilding: StatusRebuild, TaskRebuildBlockDeviceMapping: StatusRebuild,
		TaskRebuildSpawning: StatusRebuild,
	}
	merge := func(ms ...map[TaskState]APIStatus) map[TaskState]APIStatus {
		out := map[TaskState]APIStatus{}
		for _, m := range ms {
			for k, v := range m {
				out[k] = v
			}
		}
		return out
	}
	switch vm {
	case VMActive:
		return StatusActive, merge(resize, rebuild, map[TaskState]APIStatus{
			TaskRebooting: StatusReboot, TaskRebootPending: StatusReboot,
			TaskRebootStarted: StatusReboot, TaskRebootingHard: StatusHardReboot,
			TaskRebootPendingHard: StatusHardReboot, TaskRebootStartedHard: StatusHardReboot,
			TaskUpdatingPassword: StatusPassword, TaskMigrating: StatusMigrating,
		}), true
	case VMBuilding:
		return StatusBuild, nil, true
	case VMStopped:
		return StatusShutoff, merge(resize, rebuild), true
	case VMResized:
		return StatusVerifyResize, map[TaskState]APIStatus{
			TaskResizeReverting: StatusRevertResize,
		}, true
	case VMPaused:
		return StatusPaused, map[TaskState]APIStatus{TaskMigrating: StatusMigrating}, true
	case VMSuspended:
		return StatusSuspended, nil, true
	case VMRescued:
		return StatusRescue, nil, true
	case VMError:
		return StatusError, rebuild, true
	case VMDeleted:
		return StatusDeleted, nil, true
	case VMSoftDeleted:
		return StatusSoftDeleted, nil, true
	case VMShelved:
		return StatusShelved, nil, true
	case VMShelvedOffloaded:
		return StatusShelvedOffloaded, nil, true
	}
	return StatusUnknown, nil, false
}

// Status derives the API status from an instance's vm_state and task_state
// the way Nova's status_from_state does: a task_state with its own entry for
// the vm_state wins, otherwise the vm_state's default applies. So active or
// stopped with a resize_* task is RESIZE, resized is VERIFY_RESIZE (and
// REVERT_RESIZE while resize_reverting), rescued is RESCUE, active with the
// live-migration task "migrating" is MIGRATING, and otherwise active is
// ACTIVE and stopped is SHUTOFF.
//
// Where Nova would log and show UNKNOWN, Status returns [StatusUnknown] and
// an *UnknownValueError: for a vm_state Nova does not define, and for a
// task_state Nova does not define (Nova would silently use the default).
func Status(vm VMState, task TaskState) (APIStatus, error) {
	def, byTask, ok := statusMap(vm)
	if !ok {
		return StatusUnknown, &UnknownValueError{Kind: "vm_state", Value: string(vm)}
	}
	if !task.Valid() {
		return StatusUnknown, &UnknownValueError{Kind: "task_state", Value: string(task)}
	}
	if s, ok := byTask[task]; ok {
		return s, nil
	}
	return def, nil
}
