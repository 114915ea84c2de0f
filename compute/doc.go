// Package compute holds the shared model of the flows and the ports they
// run through, with embedded defaults.
//
// The model: [Instance], [Flavor], [Migration], [InstanceAction] with its
// [InstanceActionEvent]s, and [Fault], in Nova's words and with Nova's state
// strings (package statemachine). Every record with maps, slices or
// pointers has a deep-copying Clone. An instance with its migration is in a
// statemachine.FlowState ([Instance.FlowState]); [Instance.SetFlowState]
// puts the records in one.
//
// The ports, small interfaces the orchestrators depend on:
//
//   - [Store]: everything the flows keep, and the only channel between the
//     roles of a flow (API, conductor, source, destination): an
//     orchestrator writes each step there and the next step, in the same
//     or another process, reads it back. It is made of
//   - [TransitionStore]: one flow step is one atomic write. Transition
//     compares the whole (vm_state, task_state, migration status and
//     phase) with the state the step expects and changes the instance and
//     its migration together, or fails with an [*UnexpectedStateError],
//     a [*LeaseLostError] or the step's own error and writes nothing, so a
//     crash between two steps never leaves a state no flow table knows;
//   - [LeaseStore]: an operation on an instance belongs to one owner at a
//     time, until its lease expires; every new holder gets a larger
//     fencing number, and Transition refuses the writes of an owner whose
//     fence is not current;
//   - InstanceStore, MigrationStore, ActionStore, FaultStore: the records
//     themselves, for creating them, reading them (Resume lists the
//     instances with a task in progress, InstanceFilter.WithTask, and their
//     migrations) and for the writes outside a flow step; SaveInstance is
//     a compare-and-set on the expected task_state (Nova's
//     instance.save(expected_task_state=...)), SaveMigration on the
//     status;
//   - [Notifier]: Nova's legacy notifications (event types are the
//     statemachine.Notify* constants);
//   - [Driver]: the hypervisor operations the flows need, called directly
//     by the orchestrator on the host each names; package xenserver
//     implements it on XenServer / XCP-ng.
//
// Nova passes the work between its services over RPC casts and calls;
// here the Store carries it, so there is no message bus.
//
// The embedded defaults: [NewMemoryStore], an in-memory Store safe for
// concurrent use that never hands out aliases of its records and takes its
// clock from [WithStoreClock]. [NopNotifier] and [RecordingNotifier] serve
// as notifiers. Package compute/computetest holds the conformance suite
// every Store passes and an in-memory Driver for tests. The package does no
// network or disk I/O.
package compute
