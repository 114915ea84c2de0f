package rescue

import (
	"fmt"
	"time"
)

// ConfigError is a Config that New refuses.
type ConfigError struct {
	Field  string
	Reason string
}

func (e *ConfigError) Error() string { return fmt.Sprintf("rescue: config %s: %s", e.Field, e.Reason) }

// Is makes the error match ErrRescue.
func (e *ConfigError) Is(target error) bool { return target == ErrRescue }

// ImageNotFoundError is a rescue whose image is not given anywhere (the
// request, image_base_image_ref, image_ref) or does not exist. Nothing was
// changed.
type ImageNotFoundError struct {
	InstanceUUID string
	// ImageRef is the image looked for; empty when none was given.
	ImageRef string
}

func (e *ImageNotFoundError) Error() string {
	if e.ImageRef == "" {
		return fmt.Sprintf("rescue: instance %s: no rescue image: the request, image_base_image_ref and image_ref are all empty", e.InstanceUUID)
	}
	return fmt.Sprintf("rescue: instance %s: rescue image %q not found", e.InstanceUUID, e.ImageRef)
}

// Is makes the error match ErrRescue.
func (e *ImageNotFoundError) Is(target error) bool { return target == ErrRescue }

// NotRescuableError is Nova's InstanceNotRescuable: the driver could not
// rescue the instance. RolledBack says whether the original guest was put
// back and the instance returned to its vm_state; otherwise it is in error.
type NotRescuableError struct {
	InstanceUUID string
	RolledBack   bool
	Err          error
}

func (e *NotRescuableError) Error() string {
	end := "instance set to error"
	if e.RolledBack {
		end = "original guest restored"
	}
	return fmt.Sprintf("rescue: instance %s cannot be rescued (%s): %v", e.InstanceUUID, end, e.Err)
}

// Unwrap returns the driver's error.
func (e *NotRescuableError) Unwrap() error { return e.Err }

// Is makes the error match ErrRescue.
func (e *NotRescuableError) Is(target error) bool { return target == ErrRescue }

// UnrescueError is a failed unrescue. StillRescued says the driver kept the
// rescue working and the instance is rescued again; otherwise it is in
// error.
type UnrescueError struct {
	InstanceUUID string
	StillRescued bool
	Err          error
}

func (e *UnrescueError) Error() string {
	end := "instance set to error"
	if e.StillRescued {
		end = "still rescued"
	}
	return fmt.Sprintf("rescue: instance %s: unrescue failed (%s): %v", e.InstanceUUID, end, e.Err)
}

// Unwrap returns the driver's error.
func (e *UnrescueError) Unwrap() error { return e.Err }

// Is makes the error match ErrRescue.
func (e *UnrescueError) Is(target error) bool { return target == ErrRescue }

// HeldBy names the orchestrator holding an instance's lease.
type HeldBy struct {
	Owner string
	Until time.Time
}

// ResumeError lists what Resume could not drive to an end: instances whose
// lease another orchestrator holds, and failures.
type ResumeError struct {
	// Held maps instance UUIDs to the lease holding them.
	Held map[string]HeldBy
	// Failed maps instance UUIDs to their error.
	Failed map[string]error
}

func (e *ResumeError) Error() string {
	return fmt.Sprintf("rescue: resume left %d instances held by other orchestrators and %d failed",
		len(e.Held), len(e.Failed))
}

// Is makes the error match ErrRescue.
func (e *ResumeError) Is(target error) bool { return target == ErrRescue }
