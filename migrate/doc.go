// Package migrate resizes and cold-migrates instances the way OpenStack
// Nova does, and confirms, reverts and auto-confirms what it moved: the
// compute API checks (nova/compute/api.py, API.resize), the conductor's
// scheduling with alternates and rescheduling (nova/conductor/tasks/migrate.py,
// MigrationTask._execute and _reschedule), prep on the destination, the
// disk move on the source and the finish on the destination
// (nova/compute/manager.py, ComputeManager._prep_resize, _resize_instance,
// _finish_resize), confirm (ComputeManager._confirm_resize), revert
// (ComputeManager.revert_resize and finish_revert_resize) and auto-confirm
// (ComputeManager._poll_unconfirmed_resizes).
//
// An [Orchestrator] is built with [New] from a [Config]: the Store, the
// Driver, the quota Ledger, the scheduler configuration, the Notifier, a
// clock and a randomness source. It holds no package-level state; any
// number of orchestrators may share one Store.
//
// # Steps
//
// Every step is looked up in the statemachine flow tables before it runs
// (the target state, the notifications) and written through
// compute.TransitionStore.Transition under the orchestrator's lease on
// the instance before its effect: persist, then act. The lease's fence is
// checked by the Store on every write, so an orchestrator that lost its
// lease cannot write, and one operation is never driven by two
// orchestrators; within one orchestrator an instance is driven by one
// goroutine at a time. The lease is kept alive for the whole operation,
// from its acquisition to its release: renewed every third of its TTL on
// the orchestrator's clock (Config.AfterFunc), whatever step runs; a
// renewal that finds it taken cancels the operation's context, so the
// driver call in progress stops and no further step is written. The
// driver's methods are idempotent, so a resumed step repeats its call
// safely.
//
// Where Nova saves twice with nothing acting in between, the two rows are
// one write: API.resize's resize_prep with the conductor's pre-migrating
// record; prep_resize's claim with the source's resize start; the end of
// the disk move with the start of the finish; the migration "finished"
// with the instance "resized" (so auto-confirm never meets the instance
// caught between them).
//
// The scheduler reads the hosts' states from the driver
// (compute.HostStateWatcher when it has one, else GetAvailableResource
// per host), or reuses them for Options.HostRefresh while consuming each
// choice, as Nova's host manager does; the chosen host's resources are
// held for the move from the choice on (placement's claim in
// select_destinations), and the destination's claim reads its host afresh.
//
// # Beyond Nova
//
// Where Nova ends in vm_state error although the source guest is intact,
// the orchestrator rolls back to the source and ends active (or stopped)
// with an instance fault, unless Options.NovaCompatibleErrors asks for
// Nova's outcome:
//
//   - the finish on the destination fails (ComputeManager._finish_resize's
//     error path) or the destination is lost after the power-off: the
//     destination guest is destroyed, the source guest restored and
//     started unless it was stopped;
//   - the disk move fails without the driver saying it rolled back: the
//     source is restored with FinishRevertMigration;
//   - a prep failure on the last alternate touches no host: the instance
//     keeps its vm_state;
//   - confirm fails on the source (bug 1821594) or a revert cannot destroy
//     the destination guest: the instance stays in VERIFY_RESIZE on the
//     destination, which is intact, and the user may try again.
//
// These rows are not in Nova's code; statemachine's move, confirm and
// revert tables carry them with events named "xenflow.*" (such as
// statemachine.EvRollbackToSource), so every step is still checked
// against a table.
//
// # Resume
//
// [Orchestrator.Resume] drives every operation left in progress to a
// terminal state: forward where the data is safe (every state up to the
// finish, because the source guest is kept until a confirm), back where
// the step in progress was a rollback. It covers the states Nova's
// ComputeManager._init_instance leaves stuck: resize_migrated,
// resize_finish, resize_reverting and a migration confirming.
//
// # Quota
//
// Quota follows Nova's reservation era (nova/compute/api.py,
// _reserve_quota_delta with nova/compute/utils.py upsize_quota_delta,
// downsize_quota_delta and reverse_upsize_quota_delta): the upsize is
// reserved by the API and committed when the destination finishes; a
// confirm reserves the downsize and commits it when the source is clean;
// a revert reserves the reverse upsize and commits it when the source is
// restored. Every failure rolls back what is pending, so usage always
// equals a recount of the instances with [Charge].
package migrate
