package compute

import (
	"context"
	"time"

	"github.com/xenflow/xenflow/statemachine"
)

// InstanceStore keeps instances. Records go in and come out as copies:
// changing a record after a call never changes what is stored.
type InstanceStore interface {
	// GetInstance returns the instance, or a *NotFoundError.
	GetInstance(ctx context.Context, uuid string) (*Instance, error)
	// ListInstances returns the instances that match f, ordered by UUID.
	ListInstances(ctx context.Context, f InstanceFilter) ([]*Instance, error)
	// CreateInstance stores a new instance, or fails with an
	// *AlreadyExistsError or *InvalidRecordError.
	CreateInstance(ctx context.Context, inst *Instance) error
	// SaveInstance replaces the stored instance with inst. With
	// expectedTaskStates it is a compare-and-set on the stored task_state
	// (Nova's instance.save(expected_task_state=...)): when the stored
	// task_state is not one of them the save fails with an
	// *UnexpectedTaskStateError and nothing is written. Without them the
	// save is unconditional. On success inst.UpdatedAt is set.
	SaveInstance(ctx context.Context, inst *Instance, expectedTaskStates ...statemachine.TaskState) error
}

// InstanceFilter selects instances; zero fields match everything.
type InstanceFilter struct {
	Host       string
	VMStates   []statemachine.VMState
	TaskStates []statemachine.TaskState
	// WithTask keeps only instances whose task_state is not None (the
	// operations in progress a new orchestrator resumes).
	WithTask bool
}

// MigrationStore keeps migrations.
type MigrationStore interface {
	// GetMigration returns the migration, or a *NotFoundError.
	GetMigration(ctx context.Context, uuid string) (*Migration, error)
	// ListMigrations returns the migrations that match f, ordered by
	// CreatedAt then UUID.
	ListMigrations(ctx context.Context, f MigrationFilter) ([]*Migration, error)
	// CreateMigration stores a new migration and sets its CreatedAt and
	// UpdatedAt.
	CreateMigration(ctx context.Context, m *Migration) error
	// SaveMigration replaces the stored migration. With expectedStatuses
	// it is a compare-and-set on the stored status: otherwise it fails with
	// an *UnexpectedMigrationStatusError and nothing is written. On success
	// m.UpdatedAt is set.
	SaveMigration(ctx context.Context, m *Migration, expectedStatuses ...statemachine.MigrationStatus) error
}

// MigrationFilter selects migrations; zero fields match everything.
//
// Auto-confirm's query, "finished migrations to this host not updated since
// now - window", is
//
//	MigrationFilter{Statuses: []statemachine.MigrationStatus{statemachine.MigrationFinished},
//		DestCompute: host, UpdatedAtOrBefore: now.Add(-window)}
type MigrationFilter struct {
	InstanceUUID  string
	Statuses      []statemachine.MigrationStatus
	SourceCompute string
	DestCompute   string
	// UpdatedAtOrBefore keeps migrations with UpdatedAt <= it.
	UpdatedAtOrBefore time.Time
	// InProgress keeps migrations whose status still holds resources
	// (statemachine.MigrationStatus.InProgress).
	InProgress bool
}

// ActionStore keeps instance actions and their events.
type ActionStore interface {
	// CreateAction stores a new action keyed by instance UUID and request ID.
	CreateAction(ctx context.Context, a *InstanceAction) error
	// GetAction returns an action, or a *NotFoundError.
	GetAction(ctx context.Context, instanceUUID, requestID string) (*InstanceAction, error)
	// ListActions returns an instance's actions, oldest first.
	ListActions(ctx context.Context, instanceUUID string) ([]*InstanceAction, error)
	// SaveActionEvent adds ev to the action, or replaces the unfinished
	// event of the same name (its start and finish). An event whose
	// Result is EventResultError marks the action's Message "Error".
	SaveActionEvent(ctx context.Context, instanceUUID, requestID string, ev InstanceActionEvent) error
	// FinishAction sets the action's FinishTime.
	FinishAction(ctx context.Context, instanceUUID, requestID string, at time.Time) error
}

// FaultStore keeps instance faults.
type FaultStore interface {
	// AddFault records a fault and sets its CreatedAt.
	AddFault(ctx context.Context, f *Fault) error
	// ListFaults returns an instance's faults, newest first.
	ListFaults(ctx context.Context, instanceUUID string) ([]*Fault, error)
}

// Store is everything the flows keep: instances, migrations, actions and
// faults, the atomic step writes that change an instance and its migration
// together, and the leases that give an operation to one orchestrator at a
// time. The embedded default is [NewMemoryStore]; package
// compute/computetest holds the conformance tests every Store passes.
//
// An orchestrator finds the operations to resume with
// ListInstances(InstanceFilter{WithTask: true}) (every step but a confirm
// runs with a task_state) and ListMigrations(MigrationFilter{InProgress:
// true}) (a confirm runs with task_state None and the migration
// confirming; a finished one waits for the user), reads each instance's
// migrations with MigrationFilter{InstanceUUID: uuid}, and drives one only
// after taking the instance's lease with AcquireLease (a *LeaseHeldError
// says another orchestrator drives it).
type Store interface {
	InstanceStore
	MigrationStore
	ActionStore
	FaultStore
	TransitionStore
	LeaseStore
}

// InstanceDestroyer is an optional capability of a Store: the hard delete
// of an instance (Nova's instance.destroy(hard_delete=True), which the
// cross-cell tasks use so that a later move may come back to the cell
// without archiving). A caller that needs it asserts it on its Store.
type InstanceDestroyer interface {
	// DestroyInstance deletes the instance and every record that belongs
	// to it, in one step: its migrations, its instance actions with their
	// events, its faults and its lease (a lease on it is lost; the
	// instance may then be created again, with no records but its own).
	// It must be idempotent: an instance that does not exist (never
	// created, or destroyed before) is no error and changes nothing.
	DestroyInstance(ctx context.Context, uuid string) error
}

// TransitionStore writes one flow step atomically: the instance and its
// migration are compared whole and changed together, or nothing is written.
// It is the port the flows write every step through (Nova's
// instance.save(expected_task_state=...) and migration.save(), made one).
type TransitionStore interface {
	// Transition reads the instance (and the migration, when
	// req.MigrationUUID is set), checks that their (vm_state, task_state,
	// migration status) equals req.Expect and that req.Lease is the
	// instance's current, unexpired lease, then calls req.Apply with fresh
	// copies and stores both records in one step, stamping UpdatedAt on
	// both. It returns the stored copies. The lease is checked first: a
	// lease that is not current (another fence, or expired) gives a
	// *LeaseLostError; then a state that differs gives an
	// *UnexpectedStateError; Apply's error is returned as it is; records
	// Apply leaves invalid, or whose UUIDs it changed, give an
	// *InvalidRecordError; a missing record a *NotFoundError. In each
	// case nothing is written. With req.NewMigration the step creates
	// the migration (Expect.Migration must be MigrationNone, and an
	// existing one gives an *AlreadyExistsError). A store may call Apply
	// more than once (to retry a transaction); only the last call's
	// records are kept. Apply must not call the store.
	Transition(ctx context.Context, req TransitionRequest) (*Instance, *Migration, error)
}

// TransitionRequest is one flow step.
type TransitionRequest struct {
	InstanceUUID string
	// MigrationUUID names the migration the step changes with the
	// instance; empty for a step without one (rescue, unrescue) or one
	// that creates it (NewMigration).
	MigrationUUID string
	// NewMigration, when set, is a migration the step creates with the
	// instance change (conductor's MigrationTask._execute creating the
	// pre-migrating record): Apply gets a copy of it as mig, and it is
	// stored with CreatedAt and UpdatedAt set. MigrationUUID must then be
	// empty or equal to NewMigration.UUID.
	NewMigration *Migration
	// Expect is the state the step starts from.
	Expect statemachine.FlowState
	// Lease is the caller's lease on the instance; its Fence must be the
	// current one.
	Lease Lease
	// Apply changes the records; mig is nil for a step without a
	// migration. It is required.
	Apply func(inst *Instance, mig *Migration) error
}

// LeaseStore hands out leases: an operation on an instance belongs to one
// owner at a time, and a fencing number that grows with every new lease
// lets the Store refuse the writes of an owner that lost it.
type LeaseStore interface {
	// AcquireLease gives req.Owner the lease on req.InstanceUUID for
	// req.TTL, when no other owner holds an unexpired one; otherwise it
	// fails with a *LeaseHeldError. Acquiring again while holding it
	// renews it with the same fence; every new holder (including an
	// owner whose lease expired or was released) gets a larger fence
	// than any the instance had. An unknown instance gives a
	// *NotFoundError; an empty owner or a TTL that is not positive an
	// *InvalidRecordError.
	AcquireLease(ctx context.Context, req LeaseRequest) (Lease, error)
	// RenewLease sets the expiry of a lease the caller still holds (same
	// owner and fence, unexpired) to now + ttl and returns it, or fails
	// with a *LeaseLostError.
	RenewLease(ctx context.Context, l Lease, ttl time.Duration) (Lease, error)
	// ReleaseLease gives the lease up, so that another owner may acquire
	// it at once; releasing a lease that is no longer held (expired, or
	// passed to another fence) is not an error and changes nothing.
	ReleaseLease(ctx context.Context, l Lease) error
}

// LeaseRequest asks for a lease.
type LeaseRequest struct {
	InstanceUUID string
	Owner        string
	TTL          time.Duration
}

// Lease is the right to drive an instance's operation until Expires (the
// lease is lost at Expires: a clock reading equal to it is too late).
type Lease struct {
	InstanceUUID string
	Owner        string
	// Fence grows with every new holder; step writes carry it.
	Fence   uint64
	Expires time.Time
}
