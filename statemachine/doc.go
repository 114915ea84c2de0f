// Package statemachine holds Nova's vocabulary for moving and rescuing
// instances and the legal transitions of every flow, as data.
//
// It owns:
//
//   - the exact strings of vm_state ([VMState]), task_state ([TaskState]),
//     migration status ([MigrationStatus]) and migration_type
//     ([MigrationType]), the power_state integers ([PowerState]), the
//     instance action names ([Action]) and the legacy notification event
//     names ([Notification]), each with a parse function that rejects unknown
//     values with an [*UnknownValueError];
//   - the API status derivation of nova/api/openstack/common.py ([Status]);
//   - the API preconditions of each operation ([Preconditions], [Check]),
//     which fail with [*InvalidStateError] (Nova's InstanceInvalidState) or
//     [*LockedError] (InstanceIsLocked);
//   - a small generic table-driven machine ([Machine]) that answers "may this
//     happen" and "what comes next", failing with [*TransitionError],
//     [*UnknownStateError] or [*UnknownEventError];
//   - the transition tables of every flow ([Flows]): resize, cold migrate,
//     resize down, confirm, revert, auto-confirm, rescue/unrescue, compute
//     restart recovery and cross-cell resize, each including its error
//     outcomes. A flow's state is the tuple (vm_state, task_state, migration
//     status) with the migration's [MovePhase] where Nova runs several steps
//     in one status ([FlowState]); each row names the Nova step that makes
//     the change and the notifications Nova sends there, and no row leads
//     from a state back to itself: what leaves a state as it is (a skip, a
//     repeated confirm, a state left stuck) is a [NoOp] of the flow;
//   - Mermaid stateDiagram-v2 renderings of those tables ([Flow.Mermaid],
//     [Flow.Markdown]).
//
// The package is pure: no I/O, no clock, no package-level mutable state.
// The flow tables and their machines are built once when the package is
// initialised and never change; [LookupFlow] and [Flows] hand out copies
// of the tables (callers may modify them) that share the immutable
// machines.
package statemachine
