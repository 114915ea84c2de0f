package compute

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/xenflow/xenflow/statemachine"
)

// Record kinds named in errors.
const (
	KindInstance  = "instance"
	KindMigration = "migration"
	KindAction    = "instance action"
	KindFault     = "instance fault"
	KindLease     = "lease"
)

// Sentinels to test errors with errors.Is.
var (
	// ErrNotFound matches every *NotFoundError.
	ErrNotFound = errors.New("compute: not found")
	// ErrAlreadyExists matches every *AlreadyExistsError.
	ErrAlreadyExists = errors.New("compute: already exists")
	// ErrConflict matches *UnexpectedTaskStateError,
	// *UnexpectedMigrationStatusError and *UnexpectedStateError: another
	// writer got there first.
	ErrConflict = errors.New("compute: update conflict")
	// ErrInvalidRecord matches every *InvalidRecordError.
	ErrInvalidRecord = errors.New("compute: invalid record")
	// ErrNotImplemented is what a Driver returns for an operation it does
	// not support (Nova's NotImplementedError).
	ErrNotImplemented = errors.New("compute: not implemented by the driver")
	// ErrNilStore is returned by every method of a nil *MemoryStore.
	ErrNilStore = errors.New("compute: nil store")
)

// NotFoundError says that no record of Kind has ID (Nova's InstanceNotFound,
// MigrationNotFound, InstanceActionNotFound).
type NotFoundError struct {
	Kind string
	ID   string
}

// Error implements the error interface.
func (e *NotFoundError) Error() string {
	return fmt.Sprintf("compute: %s %s not found", e.Kind, e.ID)
}

// Is reports whether target is ErrNotFound.
func (e *NotFoundError) Is(target error) bool { return target == ErrNotFound }

// AlreadyExistsError says that a record of Kind with ID exists already.
type AlreadyExistsError struct {
	Kind string
	ID   string
}

// Error implements the error interface.
func (e *AlreadyExistsError) Error() string {
	return fmt.Sprintf("compute: %s %s already exists", e.Kind, e.ID)
}

// Is reports whether target is ErrAlreadyExists.
func (e *AlreadyExistsError) Is(target error) bool { return target == ErrAlreadyExists }

// UnexpectedTaskStateError is Nova's UnexpectedTaskStateError: a save
// expected the stored task_state to be one of Expected and found Actual, so
// another writer changed the instance first and nothing was written.
type UnexpectedTaskStateError struct {
	InstanceUUID string
	Expected     []statemachine.TaskState
	Actual       statemachine.TaskState
}

// Error implements the error interface.
func (e *UnexpectedTaskStateError) Error() string {
	exp := make([]string, len(e.Expected))
	for i, t := range e.Expected {
		exp[i] = t.String()
	}
	return fmt.Sprintf("compute: instance %s: unexpected task_state: expecting [%s] but the task_state is %s",
		e.InstanceUUID, strings.Join(exp, ", "), e.Actual)
}

// Is reports whether target is ErrConflict.
func (e *UnexpectedTaskStateError) Is(target error) bool { return target == ErrConflict }

// UnexpectedMigrationStatusError says that a migration save expected the
// stored status to be one of Expected and found Actual; nothing was written.
type UnexpectedMigrationStatusError struct {
	MigrationUUID string
	Expected      []statemachine.MigrationStatus
	Actual        statemachine.MigrationStatus
}

// Error implements the error interface.
func (e *UnexpectedMigrationStatusError) Error() string {
	exp := make([]string, len(e.Expected))
	for i, s := range e.Expected {
		exp[i] = s.String()
	}
	return fmt.Sprintf("compute: migration %s: unexpected status: expecting [%s] but the status is %s",
		e.MigrationUUID, strings.Join(exp, ", "), e.Actual)
}

// Is reports whether target is ErrConflict.
func (e *UnexpectedMigrationStatusError) Is(target error) bool { return target == ErrConflict }

// InvalidRecordError says that a record cannot be stored: which kind, which
// record (ID, when it has one), which field and why.
type InvalidRecordError struct {
	Kind   string
	ID     string
	Field  string
	Reason string
}

// Error implements the error interface.
func (e *InvalidRecordError) Error() string {
	id := ""
	if e.ID != "" {
		id = " " + e.ID
	}
	return fmt.Sprintf("compute: invalid %s%s: %s: %s", e.Kind, id, e.Field, e.Reason)
}

// Is reports whether target is ErrInvalidRecord.
func (e *InvalidRecordError) Is(target error) bool { return target == ErrInvalidRecord }

// InstanceFaultRollback is Nova's InstanceFaultRollback: a driver failed but
// rolled the guest back to how it was, so the flow restores the instance's
// previous vm_state instead of setting error. Err is the cause.
type InstanceFaultRollback struct {
	Err error
}

// Error implements the error interface.
func (e *InstanceFaultRollback) Error() string {
	if e.Err == nil {
		return "compute: instance fault rolled back"
	}
	return "compute: instance fault rolled back: " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *InstanceFaultRollback) Unwrap() error { return e.Err }

func quote(s string) string { return strconv.Quote(s) }

// ErrLease matches every lease error: *LeaseHeldError and *LeaseLostError.
var ErrLease = errors.New("compute: lease")

// UnexpectedStateError is a Transition whose stored state was not the
// expected one; nothing was written.
type UnexpectedStateError struct {
	InstanceUUID string
	Expected     statemachine.FlowState
	Actual       statemachine.FlowState
}

// Error implements the error interface.
func (e *UnexpectedStateError) Error() string {
	return fmt.Sprintf("compute: instance %s: expected state %s, found %s", e.InstanceUUID, e.Expected, e.Actual)
}

// Is makes the error match ErrConflict.
func (e *UnexpectedStateError) Is(target error) bool { return target == ErrConflict }

// LeaseHeldError is an AcquireLease while another owner holds the lease.
type LeaseHeldError struct {
	InstanceUUID string
	Holder       string
	Expires      time.Time
}

// Error implements the error interface.
func (e *LeaseHeldError) Error() string {
	return fmt.Sprintf("compute: instance %s: lease held by %s until %s", e.InstanceUUID, e.Holder,
		e.Expires.UTC().Format(time.RFC3339Nano))
}

// Is makes the error match ErrLease.
func (e *LeaseHeldError) Is(target error) bool { return target == ErrLease }

// LeaseLostError is a write or renewal by an owner whose lease expired or
// passed to another owner (its fence is not the current one).
type LeaseLostError struct {
	InstanceUUID string
	Owner        string
	Fence        uint64
	// CurrentFence is the fence of the lease in force (0 when none).
	CurrentFence uint64
}

// Error implements the error interface.
func (e *LeaseLostError) Error() string {
	return fmt.Sprintf("compute: instance %s: lease of %s (fence %d) lost; current fence %d", e.InstanceUUID,
		e.Owner, e.Fence, e.CurrentFence)
}

// Is makes the error match ErrLease.
func (e *LeaseLostError) Is(target error) bool { return target == ErrLease }
