package migrate

import (
	"errors"
	"fmt"

	"github.com/xenflow/xenflow/statemachine"
)

// ErrBadRequest matches (with errors.Is) the errors of a request refused
// before anything changed: *CannotResizeToSameFlavorError,
// *FlavorNotFoundError, *NoMigrationError and *UnsupportedError.
var ErrBadRequest = errors.New("migrate: bad request")

// CannotResizeToSameFlavorError is Nova's CannotResizeToSameFlavor: a
// resize must change the flavor (nova/compute/api.py, API.resize).
type CannotResizeToSameFlavorError struct {
	InstanceUUID string
	FlavorID     string
}

// Error implements the error interface.
func (e *CannotResizeToSameFlavorError) Error() string {
	return fmt.Sprintf("migrate: instance %s: cannot resize to the same flavor %s", e.InstanceUUID, e.FlavorID)
}

// Is reports whether target is ErrBadRequest.
func (e *CannotResizeToSameFlavorError) Is(target error) bool { return target == ErrBadRequest }

// FlavorNotFoundError is Nova's FlavorNotFound, which API.resize also
// raises for a disabled flavor.
type FlavorNotFoundError struct {
	FlavorID string
	Disabled bool
	Err      error
}

// Error implements the error interface.
func (e *FlavorNotFoundError) Error() string {
	if e.Disabled {
		return fmt.Sprintf("migrate: flavor %s is disabled", e.FlavorID)
	}
	return fmt.Sprintf("migrate: flavor %s not found", e.FlavorID)
}

// Is reports whether target is ErrBadRequest.
func (e *FlavorNotFoundError) Is(target error) bool { return target == ErrBadRequest }

// Unwrap returns the flavor source's error.
func (e *FlavorNotFoundError) Unwrap() error { return e.Err }

// NoMigrationError is Nova's MigrationNotFoundByStatus: a confirm or
// revert found no migration of the instance in Status.
type NoMigrationError struct {
	InstanceUUID string
	Status       statemachine.MigrationStatus
}

// Error implements the error interface.
func (e *NoMigrationError) Error() string {
	return fmt.Sprintf("migrate: instance %s has no migration in status %s", e.InstanceUUID, e.Status)
}

// Is reports whether target is ErrBadRequest.
func (e *NoMigrationError) Is(target error) bool { return target == ErrBadRequest }

// UnsupportedError is a request the driver or the options do not allow,
// e.g. a suspended cold migration on a driver that cannot, or a target
// host that is the instance's own (Nova's UnableToMigrateToSelf).
type UnsupportedError struct {
	InstanceUUID string
	What         string
}

// Error implements the error interface.
func (e *UnsupportedError) Error() string {
	return fmt.Sprintf("migrate: instance %s: %s", e.InstanceUUID, e.What)
}

// Is reports whether target is ErrBadRequest.
func (e *UnsupportedError) Is(target error) bool { return target == ErrBadRequest }

// OperationError is an operation that started and ended in one of its
// failure outcomes: State is where the instance and migration ended (e.g.
// active/None/error after a rollback, error/None/error in Nova's mode),
// Err the cause (errors.As finds a *scheduler.NoValidHostError, a
// *compute.InstanceFaultRollback, a driver's error).
type OperationError struct {
	Op            statemachine.Operation
	InstanceUUID  string
	MigrationUUID string
	State         statemachine.FlowState
	Err           error
}

// Error implements the error interface.
func (e *OperationError) Error() string {
	return fmt.Sprintf("migrate: %s of instance %s (migration %s) ended in %s: %v", e.Op, e.InstanceUUID,
		e.MigrationUUID, e.State, e.Err)
}

// Unwrap returns the cause.
func (e *OperationError) Unwrap() error { return e.Err }

// InterruptedError is an operation stopped part-way by its context or a
// lost lease: its last step is persisted and Resume continues it.
type InterruptedError struct {
	InstanceUUID string
	State        statemachine.FlowState
	Err          error
}

// Error implements the error interface.
func (e *InterruptedError) Error() string {
	return fmt.Sprintf("migrate: instance %s interrupted in %s: %v", e.InstanceUUID, e.State, e.Err)
}

// Unwrap returns the cause.
func (e *InterruptedError) Unwrap() error { return e.Err }
