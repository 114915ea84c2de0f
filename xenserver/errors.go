package xenserver

import (
	"errors"
	"fmt"
	"strings"
)

// ErrUnknownHost matches every *UnknownHostError.
var ErrUnknownHost = errors.New("xenserver: unknown host")

// ConfigError is a Config that New refuses: which field and why.
type ConfigError struct {
	Field  string
	Reason string
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("xenserver: config %s: %s", e.Field, e.Reason)
}

// UnknownHostError is a request naming a compute host the inventory does
// not list.
type UnknownHostError struct {
	Host string
}

func (e *UnknownHostError) Error() string {
	return fmt.Sprintf("xenserver: compute host %q is not in the inventory", e.Host)
}

// Is makes the error match ErrUnknownHost.
func (e *UnknownHostError) Is(target error) bool { return target == ErrUnknownHost }

// NotInPoolError is an inventory entry naming a XenServer host or an SR
// that its pool does not have (or has more than one of, by name).
type NotInPoolError struct {
	// Kind is "host" or "SR".
	Kind string
	// Name is the uuid or name_label the inventory gives.
	Name string
	// ComputeHost and Pool say where the inventory names it.
	ComputeHost string
	Pool        string
	// Matches is how many objects have that name (0: none; >1: ambiguous).
	Matches int
}

func (e *NotInPoolError) Error() string {
	what := "no"
	if e.Matches > 1 {
		what = fmt.Sprintf("%d objects named", e.Matches)
	}
	return fmt.Sprintf("xenserver: compute host %q: pool %q has %s %s %q", e.ComputeHost, e.Pool, what, e.Kind, e.Name)
}

// Is makes the error match ErrUnknownHost.
func (e *NotInPoolError) Is(target error) bool { return target == ErrUnknownHost }

// DuplicateInstanceError is two or more VMs claiming one instance with
// other_config:nova_uuid (or two kept -orig VMs of one migration).
type DuplicateInstanceError struct {
	InstanceUUID string
	Pool         string
	// Key is the other_config key they share.
	Key string
	// VMs are the claiming VMs' uuids.
	VMs []string
}

func (e *DuplicateInstanceError) Error() string {
	return fmt.Sprintf("xenserver: pool %q: %d VMs claim instance %s with other_config:%s: %s",
		e.Pool, len(e.VMs), e.InstanceUUID, e.Key, strings.Join(e.VMs, ", "))
}

// UnknownTransportError is a host whose transport the driver does not
// have.
type UnknownTransportError struct {
	Host      string
	Transport string
}

func (e *UnknownTransportError) Error() string {
	return fmt.Sprintf("xenserver: compute host %q: no %q disk transport", e.Host, e.Transport)
}

// ResizeRefusedError is a flavor change the driver refuses before touching
// anything (Nova's ResizeError): a root or ephemeral disk that would
// shrink, or root_gb going to 0.
type ResizeRefusedError struct {
	InstanceUUID string
	// Field is "root_gb" or "ephemeral_gb".
	Field    string
	Old, New int
}

func (e *ResizeRefusedError) Error() string {
	return fmt.Sprintf("xenserver: instance %s: cannot resize %s from %d to %d: disks only grow",
		e.InstanceUUID, e.Field, e.Old, e.New)
}

// SRFullError is a destination SR without the free space
// (physical_size - physical_utilisation) for a disk's full virtual size,
// found before anything moved.
type SRFullError struct {
	ComputeHost string
	SR          string
	VDI         string
	Need, Free  int64
}

func (e *SRFullError) Error() string {
	return fmt.Sprintf("xenserver: compute host %q: SR %s has %d bytes free, VDI %s needs %d",
		e.ComputeHost, e.SR, e.Free, e.VDI, e.Need)
}

// VDITooLargeError is a disk larger than a VHD export can carry
// (xapi's VDI_TOO_LARGE: 2040 GiB), refused before anything moved.
type VDITooLargeError struct {
	ComputeHost string
	VDI         string
	Size, Max   int64
}

func (e *VDITooLargeError) Error() string {
	return fmt.Sprintf("xenserver: compute host %q: VDI %s has %d bytes, more than the %d a VHD export carries (VDI_TOO_LARGE)",
		e.ComputeHost, e.VDI, e.Size, e.Max)
}

// TransferError is a disk stream that failed: which step ("export",
// "import", "verify"), which VDI on which compute host, and why.
type TransferError struct {
	Step        string
	ComputeHost string
	VDI         string
	Err         error
}

func (e *TransferError) Error() string {
	return fmt.Sprintf("xenserver: %s of VDI %s on %q: %v", e.Step, e.VDI, e.ComputeHost, e.Err)
}

// Unwrap returns the cause.
func (e *TransferError) Unwrap() error { return e.Err }

// ShortBodyError is an export that ended before its Content-Length.
type ShortBodyError struct {
	Want, Got int64
}

func (e *ShortBodyError) Error() string {
	return fmt.Sprintf("xenserver: stream ended after %d of %d bytes", e.Got, e.Want)
}

// DigestMismatchError is a destination disk whose export back does not
// hash to what was sent.
type DigestMismatchError struct {
	VDI       string
	Sent, Got string
}

func (e *DigestMismatchError) Error() string {
	return fmt.Sprintf("xenserver: VDI %s: sent sha256 %s, read back %s", e.VDI, e.Sent, e.Got)
}

// NoDiskError is a FinishMigration whose DiskInfo names no disk, or a
// disk the destination does not have.
type NoDiskError struct {
	ComputeHost string
	VDI         string
	Reason      string
}

func (e *NoDiskError) Error() string {
	return fmt.Sprintf("xenserver: compute host %q: disk %q: %s", e.ComputeHost, e.VDI, e.Reason)
}

// RequestError is a request missing what the method needs.
type RequestError struct {
	Method string
	Field  string
}

func (e *RequestError) Error() string {
	return fmt.Sprintf("xenserver: %s: request has no %s", e.Method, e.Field)
}
