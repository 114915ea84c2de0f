package compute

import (
	"context"
	"time"

	"github.com/xenflow/xenflow/scheduler"
	"github.com/xenflow/xenflow/statemachine"
)

// Driver is the hypervisor side of the flows, modelled on Nova's virt
// driver (nova/virt/driver.py, ComputeDriver) as its XenAPI driver
// implemented it (nova/virt/xenapi/driver.py, vmops.py). Package xenserver
// implements it for XenServer / XCP-ng pools.
//
// Every method takes the context first and one request struct that names
// the compute host it acts on. Every method must be idempotent: called
// again after a crash or a cancellation part-way, it finishes the job or
// finds it done, and never does it twice (a second copy of a disk, a second
// VM, a second destroy of something a later step needs). The flows rely on
// this to repeat the step they were in when they resume.
//
// An operation the driver does not support returns an error matching
// ErrNotImplemented. A failure after which the driver put the guest back
// as it was is returned as *InstanceFaultRollback, so the flow restores the
// instance's previous vm_state instead of setting error. No method deletes
// the only copy of a disk.
type Driver interface {
	// Capabilities reports what the driver supports. It does no I/O.
	Capabilities() DriverCapabilities

	// GetInfo returns the guest's state on req.Host, a *NotFoundError
	// when the host has no guest for the instance.
	GetInfo(ctx context.Context, req InstanceRequest) (InstanceInfo, error)

	// GetAvailableResource returns what req.Host offers the scheduler
	// (Nova's get_available_resource, as the resource tracker reports it).
	GetAvailableResource(ctx context.Context, req HostRequest) (scheduler.HostState, error)

	// MigrateDiskAndPowerOff runs on the source host (req.Host) of a
	// resize or cold migration: it sends the guest's disks to req.DestHost
	// and powers the guest off, keeping the source guest and disks for a
	// revert (XenServer: the VM renamed <name>-orig). Resizing up it
	// snapshots the running guest and sends what is immutable before the
	// power-off, so the guest is down only while the last delta moves. A
	// disk shrink is refused before anything is touched, as an
	// *InstanceFaultRollback. On any failure the source guest is restored
	// as it was (running if it ran) and the error is an
	// *InstanceFaultRollback.
	MigrateDiskAndPowerOff(ctx context.Context, req MigrateDiskRequest) (DiskInfo, error)

	// FinishMigration runs on the destination host (req.Host): it brings
	// in the disks the source sent, creates the guest with req.NewFlavor,
	// grows its disks when req.ResizeInstance and powers it on when
	// req.PowerOn.
	FinishMigration(ctx context.Context, req FinishMigrationRequest) error

	// ConfirmMigration runs on the source host (req.Host) when a move is
	// confirmed: it destroys what was kept for a revert (the <name>-orig VM
	// and its disks) and nothing else.
	ConfirmMigration(ctx context.Context, req ConfirmMigrationRequest) error

	// FinishRevertMigration runs on the source host (req.Host) when a move
	// is reverted (and when a resume finds a move that must go back): it
	// restores the original guest (<name>-orig renamed back) and starts it
	// when req.PowerOn. The destination guest is removed first with
	// Destroy on the destination host.
	FinishRevertMigration(ctx context.Context, req FinishRevertRequest) error

	// Destroy removes the instance's guest from req.Host, and its disks
	// when req.DestroyDisks. With req.Migration set it removes only what
	// that migration created on the host (a revert destroys the
	// destination guest this way) and never the source's kept guest.
	Destroy(ctx context.Context, req DestroyRequest) error

	// PowerOff stops the guest: cleanly first when req.Clean, then hard
	// after req.Timeout.
	PowerOff(ctx context.Context, req PowerOffRequest) error

	// PowerOn starts the guest.
	PowerOn(ctx context.Context, req InstanceRequest) error

	// Rescue boots a rescue guest from req.ImageRef with the instance's
	// root disk attached as a second disk. XenServer hard-shuts the VM
	// down, bootlocks it (blocked_operations start) and boots
	// <name>-rescue. A failure leaves the original guest startable, never
	// bootlocked without a rescue guest.
	Rescue(ctx context.Context, req RescueRequest) error

	// Unrescue destroys the rescue guest (never the original's disks),
	// releases the bootlock and starts the original guest.
	Unrescue(ctx context.Context, req InstanceRequest) error

	// Snapshot stores an image of the guest's root disk in the image
	// store as req.ImageID (a cross-cell resize snapshots the source).
	Snapshot(ctx context.Context, req SnapshotRequest) error

	// Spawn creates the guest on req.Host from req.ImageRef with
	// req.Flavor and starts it when req.PowerOn (a cross-cell resize
	// spawns the destination from the snapshot).
	Spawn(ctx context.Context, req SpawnRequest) error

	// CleanupMigration removes what a move that stopped part-way left on
	// req.Host (Nova's _cleanup_incomplete_migrations): kept guests,
	// half-imported disks, staging directories and temporary files that
	// belong to req.Migration, and only those that no instance needs.
	CleanupMigration(ctx context.Context, req CleanupMigrationRequest) error
}

// HostStateWatcher is optional: a Driver that keeps host states current
// without I/O per scheduling decision (XenServer: event.from) implements
// it, and the conductor asks it instead of calling GetAvailableResource
// for every host.
type HostStateWatcher interface {
	// HostStates returns the current state of each named host, in the
	// order given; a host the driver does not know is an error.
	HostStates(ctx context.Context, hosts []string) ([]scheduler.HostState, error)
}

// ImageDeleter is optional: a Driver whose image store can delete an
// image implements it, and a cross-cell move deletes its snapshot once the
// instance no longer needs it (nova/compute/manager.py,
// _finish_snapshot_based_resize_at_dest calls compute_utils.delete_image
// after the spawn).
type ImageDeleter interface {
	// DeleteImage removes image req.ImageID from the image store and
	// every copy the driver cached of it (XenServer: the image's VDIs in
	// every pool of the inventory). Disks cloned from the image keep
	// their data. It must be idempotent: an image that does not exist
	// (never stored, or deleted before) is no error and changes nothing.
	DeleteImage(ctx context.Context, req DeleteImageRequest) error
}

// DeleteImageRequest is what DeleteImage needs.
type DeleteImageRequest struct {
	// Host is the compute host the call is made for (the image store it
	// reaches).
	Host    string
	ImageID string
}

// DriverCapabilities are what a driver supports.
type DriverCapabilities struct {
	// SupportsMigrateToSameHost lets a move stay on its host (false for
	// XenServer: prep_resize refuses with UnableToMigrateToSelf).
	SupportsMigrateToSameHost bool
	// SupportsSuspendMigrate is true when a cold migration can suspend
	// the guest and resume it on the destination (MigrateDiskRequest.Suspend).
	SupportsSuspendMigrate bool
	// SupportsCrossCell is true when Snapshot and Spawn work.
	SupportsCrossCell bool
}

// HostRequest names a compute host.
type HostRequest struct {
	Host string
}

// InstanceRequest names an instance on a compute host.
type InstanceRequest struct {
	Instance *Instance
	// Host is the compute host the call acts on.
	Host string
}

// InstanceInfo is the hypervisor's view of a guest.
type InstanceInfo struct {
	PowerState statemachine.PowerState
	// MemoryMB and VCPUs are what the guest is configured with.
	MemoryMB int
	VCPUs    int
}

// Progress is the state of a long operation.
type Progress struct {
	// Percent is 0..100, in Nova's steps for the operation.
	Percent int
	// Step names what is happening, e.g. "snapshot", "send-base",
	// "power-off", "send-delta", "finish".
	Step string
	// BytesSent counts the disk bytes sent so far; BytesSentRunning is
	// the part sent while the guest was still running.
	BytesSent        int64
	BytesSentRunning int64
	// PoweredOff is set once the guest has been powered off.
	PoweredOff bool
}

// ProgressFunc receives the progress of a long operation. It is called
// from the goroutine running the operation and must not block for long.
type ProgressFunc func(Progress)

// MigrateDiskRequest is what MigrateDiskAndPowerOff needs.
type MigrateDiskRequest struct {
	Instance  *Instance
	Migration *Migration
	// Host is the source compute host.
	Host string
	// DestHost is the destination compute host.
	DestHost string
	// NewFlavor is the flavor the instance moves to.
	NewFlavor *Flavor
	// CleanShutdown asks for a clean shutdown, hard after ShutdownTimeout.
	CleanShutdown   bool
	ShutdownTimeout time.Duration
	// Suspend moves a cold migration with the guest suspended instead of
	// shut down, so it keeps its running state; refused when the flavor
	// changes.
	Suspend bool
	// Progress, when not nil, receives progress.
	Progress ProgressFunc
}

// DiskInfo describes what the source sent. It is plain data, so a flow can
// keep it with the migration and hand it to FinishMigration after a
// restart.
type DiskInfo struct {
	// Transport names how the disks moved ("xapi", "dom0", "shared").
	Transport string
	Disks     []Disk
	// SuspendVDI is the destination copy of the suspend image, when the
	// guest moved suspended.
	SuspendVDI string
	// BytesSent and BytesSentRunning count the disk bytes moved, all and
	// while the guest ran; Downtime is from power-off to the last byte.
	BytesSent        int64
	BytesSentRunning int64
	Downtime         time.Duration
}

// Disk is one disk a move sent.
type Disk struct {
	// Label is the disk's chain label, e.g. "<uuid>" or "<uuid>_ephemeral_1".
	Label string
	// Userdevice is the disk's position on the guest ("0" for root).
	Userdevice string
	// VDI is the destination VDI's UUID, when the transport made one.
	VDI string
	// VirtualSize is the disk's size in bytes.
	VirtualSize int64
	// SHA256 is the hex digest of the bytes sent, when the transport
	// computed one.
	SHA256 string
}

// FinishMigrationRequest is what FinishMigration needs.
type FinishMigrationRequest struct {
	Instance  *Instance
	Migration *Migration
	// Host is the destination compute host.
	Host     string
	DiskInfo DiskInfo
	// NewFlavor is the flavor the guest is created with.
	NewFlavor *Flavor
	// ResizeInstance is true when a disk size changes; false for a cold
	// migration.
	ResizeInstance bool
	// PowerOn is true unless the instance was stopped before the move.
	PowerOn bool
	// Progress, when not nil, receives progress.
	Progress ProgressFunc
}

// ConfirmMigrationRequest is what ConfirmMigration needs.
type ConfirmMigrationRequest struct {
	Instance  *Instance
	Migration *Migration
	// Host is the source compute host.
	Host string
}

// FinishRevertRequest is what FinishRevertMigration needs.
type FinishRevertRequest struct {
	Instance  *Instance
	Migration *Migration
	// Host is the source compute host.
	Host string
	// PowerOn is true unless the instance was stopped before the move.
	PowerOn bool
}

// DestroyRequest is what Destroy needs.
type DestroyRequest struct {
	Instance *Instance
	// Host is the compute host the guest is removed from.
	Host string
	// DestroyDisks removes the guest's disks too.
	DestroyDisks bool
	// Migration, when set, limits the destroy to what that migration
	// created on Host.
	Migration *Migration
}

// PowerOffRequest is what PowerOff needs.
type PowerOffRequest struct {
	Instance *Instance
	Host     string
	// Clean asks for a clean shutdown first, hard after Timeout.
	Clean   bool
	Timeout time.Duration
}

// RescueRequest is what Rescue needs.
type RescueRequest struct {
	Instance *Instance
	Host     string
	// ImageRef is the rescue image: the request's, else
	// image_base_image_ref, else the instance's image_ref.
	ImageRef string
	// AdminPassword is the rescue guest's password. Drivers must not log
	// it.
	AdminPassword string
}

// SnapshotRequest is what Snapshot needs.
type SnapshotRequest struct {
	Instance *Instance
	Host     string
	// ImageID names the image the snapshot is stored as.
	ImageID string
}

// SpawnRequest is what Spawn needs.
type SpawnRequest struct {
	Instance *Instance
	Host     string
	ImageRef string
	Flavor   *Flavor
	PowerOn  bool
}

// CleanupMigrationRequest is what CleanupMigration needs.
type CleanupMigrationRequest struct {
	Migration *Migration
	// Instance is the migration's instance, nil when it no longer exists.
	Instance *Instance
	Host     string
}
