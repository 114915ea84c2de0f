package statemachine

// The events of the flow tables. Each names where it happens and what
// happens; failures end in ".error", ".fault_rollback" or another outcome.
const (
	// Compute API.
	EvAPIResize        Event = "api.resize"
	EvAPIMigrate       Event = "api.migrate"
	EvAPIConfirmResize Event = "api.confirm_resize"
	EvAPIRevertResize  Event = "api.revert_resize"
	EvAPIRescue        Event = "api.rescue"
	EvAPIUnrescue      Event = "api.unrescue"
	EvAPIDelete        Event = "api.delete"

	// Conductor, same cell (MigrationTask).
	EvConductorCreateMigration Event = "conductor.create_migration"
	EvConductorNoValidHost     Event = "conductor.no_valid_host"
	EvConductorError           Event = "conductor.error"
	// EvConductorReschedule is MigrationTask._reschedule casting prep to
	// the next alternate after a destination's claim failed.
	EvConductorReschedule Event = "conductor.reschedule"

	// Destination compute, same cell.
	EvDestPrepResize              Event = "dest.prep_resize"
	EvDestPrepResizeReschedule    Event = "dest.prep_resize.reschedule"
	EvDestPrepResizeFaultRollback Event = "dest.prep_resize.fault_rollback"
	EvDestPrepResizeError         Event = "dest.prep_resize.error"
	EvDestFinishResize            Event = "dest.finish_resize"
	EvDestMigrationFinished       Event = "dest.migration_finished"
	EvDestInstanceResized         Event = "dest.instance_resized"
	EvDestFinishResizeError       Event = "dest.finish_resize.error"
	EvDestRevertResize            Event = "dest.revert_resize"
	EvDestRevertResizeError       Event = "dest.revert_resize.error"

	// Source compute, same cell.
	EvSourceResizeInstance              Event = "source.resize_instance"
	EvSourceMigrateDiskAndPowerOff      Event = "source.migrate_disk_and_power_off"
	EvSourceResizeInstanceFaultRollback Event = "source.resize_instance.fault_rollback"
	EvSourceResizeInstanceError         Event = "source.resize_instance.error"
	EvSourceConfirmResize               Event = "source.confirm_resize"
	EvSourceConfirmResizeError          Event = "source.confirm_resize.error"
	EvSourceFinishRevertResize          Event = "source.finish_revert_resize"
	EvSourceFinishRevertResizeError     Event = "source.finish_revert_resize.error"
	EvSourceStopInstance                Event = "source.stop_instance"

	// Periodic tasks.
	EvPeriodicPollUnconfirmedResizes      Event = "periodic.poll_unconfirmed_resizes"
	EvPeriodicCleanupIncompleteMigrations Event = "periodic.cleanup_incomplete_migrations"
	EvPeriodicPollRescuedInstances        Event = "periodic.poll_rescued_instances"

	// Rescue on the instance's compute host.
	EvComputeRescue      Event = "compute.rescue_instance"
	EvComputeRescueError Event = "compute.rescue_instance.error"
	// EvComputeRescueRollback is a failed rescue whose driver put the
	// original guest back (InstanceFaultRollback): xenflow restores the
	// vm_state where Nova sets error.
	EvComputeRescueRollback         Event = "compute.rescue_instance.rollback"
	EvComputeUnrescue               Event = "compute.unrescue_instance"
	EvComputeUnrescueNotImplemented Event = "compute.unrescue_instance.not_implemented"
	EvComputeUnrescueError          Event = "compute.unrescue_instance.error"
	// EvComputeUnrescueRollback is a failed unrescue whose driver left the
	// rescue guest as it was (InstanceFaultRollback): the instance stays
	// rescued where Nova sets error.
	EvComputeUnrescueRollback Event = "compute.unrescue_instance.rollback"

	// Compute service start (_init_instance).
	EvStartupInitInstance Event = "startup.init_instance"

	// Cross-cell resize (conductor CrossCellMigrationTask and its sub-tasks,
	// and the compute methods they call).
	EvCrossCellTargetDBSetup     Event = "conductor.target_db_setup"
	EvCrossCellPrepAtDest        Event = "conductor.prep_resize_at_dest"
	EvCrossCellPrepAtDestError   Event = "conductor.prep_resize_at_dest.error"
	EvCrossCellPrepAtSource      Event = "conductor.prep_resize_at_source"
	EvCrossCellSourceMigrating   Event = "source.prep_snapshot_based_resize_at_source"
	EvCrossCellSourcePoweredOff  Event = "source.snapshot_and_power_off"
	EvCrossCellPrepAtSourceError Event = "source.prep_snapshot_based_resize_at_source.error"
	EvCrossCellFinishAtDest      Event = "dest.finish_snapshot_based_resize_at_dest"
	EvCrossCellFinishAtDestError Event = "dest.finish_snapshot_based_resize_at_dest.error"
	EvCrossCellSwapHidden        Event = "conductor.swap_hidden_and_mapping"
	EvCrossCellConfirm           Event = "conductor.confirm_resize"
	EvCrossCellConfirmError      Event = "conductor.confirm_resize.error"
	EvCrossCellRevert            Event = "conductor.revert_resize"
	EvCrossCellRevertError       Event = "conductor.revert_resize.error"
)
