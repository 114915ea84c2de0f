// Package compute holds the shared model of the flows and the ports they
// run through, with embedded defaults.
//
// The model: [Instance], [Flavor], [Migration], [InstanceAction] with its
// [InstanceActionEvent]s, and [Fault], in Nova's words and with Nova's state
// strings (package statemachine). Every record with maps, slices or
// pointers has a deep-copying Clone.
//
// The ports, small interfaces the orchestrators depend on:
//
//   - [Store] (InstanceStore, MigrationStore, ActionStore, FaultStore):
//     saving an instance is a compare-and-set on its expected task_state
//     (Nova's instance.save(expected_task_state=...)) that fails with an
//     [*UnexpectedTaskStateError] when another writer got there first;
//     migrations likewise on their status;
//   - [Bus]: cast, call with a deadline, subscribe;
//   - [Notifier]: Nova's legacy notifications (event types are the
//     statemachine.Notify* constants);
//   - [Driver]: the hypervisor operations the flows need, for package
//     xenapi to implement on XenServer / XCP-ng.
//
// The embedded defaults: [NewMemoryStore], an in-memory Store safe for
// concurrent use that never hands out aliases of its records, and
// [NewLocalBus], an in-process Bus. [NopNotifier] and [RecordingNotifier]
// serve as notifiers. The package does no network or disk I/O.
package compute
