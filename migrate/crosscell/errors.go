package crosscell

import (
	"errors"
	"fmt"

	"github.com/xenflow/xenflow/compute"
)

// ErrBadRequest is matched (with errors.Is) by the errors that refuse a
// request before anything changed.
var ErrBadRequest = errors.New("crosscell: bad request")

// UnknownCellError says a cell name is not one of the conductor's cells.
type UnknownCellError struct {
	InstanceUUID string
	Cell         string
}

// Error implements the error interface.
func (e *UnknownCellError) Error() string {
	return fmt.Sprintf("crosscell: instance %s: unknown cell %q", e.InstanceUUID, e.Cell)
}

// Is makes the error match ErrBadRequest.
func (e *UnknownCellError) Is(target error) bool { return target == ErrBadRequest }

// NoCopyError says the instance mapping points at a cell whose database
// holds no copy of the instance.
type NoCopyError struct {
	InstanceUUID string
	Cell         string
	Err          error
}

// Error implements the error interface.
func (e *NoCopyError) Error() string {
	return fmt.Sprintf("crosscell: instance %s is mapped to cell %s, which holds no copy: %v", e.InstanceUUID, e.Cell, e.Err)
}

// Is makes the error match ErrBadRequest and compute.ErrNotFound.
func (e *NoCopyError) Is(target error) bool {
	return target == ErrBadRequest || target == compute.ErrNotFound
}

// Unwrap returns the store's error.
func (e *NoCopyError) Unwrap() error { return e.Err }

// TaskError says which task of a cross-cell move failed; the move was
// rolled back (every earlier task's rollback run in reverse) and the
// instance left with its one visible copy in the source cell.
type TaskError struct {
	InstanceUUID  string
	MigrationUUID string
	// Task is the task's name in nova/conductor/tasks/cross_cell_migrate.py,
	// e.g. "TargetDBSetupTask".
	Task string
	// Cell is the cell the task acted on.
	Cell string
	Err  error
}

// Error implements the error interface.
func (e *TaskError) Error() string {
	return fmt.Sprintf("crosscell: instance %s migration %s: %s in cell %s: %v", e.InstanceUUID, e.MigrationUUID,
		e.Task, e.Cell, e.Err)
}

// Unwrap returns the task's error.
func (e *TaskError) Unwrap() error { return e.Err }

// NoHardDeleteError says a cell's Store cannot hard-delete instances (it
// does not implement compute.InstanceDestroyer), so a cross-cell move
// could not remove the copy it leaves in that cell.
type NoHardDeleteError struct {
	Cell string
	// Store is the store's Go type.
	Store string
}

// Error implements the error interface.
func (e *NoHardDeleteError) Error() string {
	return fmt.Sprintf("crosscell: cell %s: store %s does not implement compute.InstanceDestroyer (hard delete)", e.Cell, e.Store)
}

// ConfigError says which field of a Config is unusable.
type ConfigError struct {
	Field  string
	Reason string
}

// Error implements the error interface.
func (e *ConfigError) Error() string {
	return fmt.Sprintf("crosscell: config %s: %s", e.Field, e.Reason)
}

func isNotFound(err error) bool { return errors.Is(err, compute.ErrNotFound) }
