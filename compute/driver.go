package compute

import (
	"context"

	"github.com/xenflow/xenflow/statemachine"
)

// Driver is the hypervisor side of the flows, modelled on Nova's virt
// driver as its XenAPI driver implements it; package xenapi is where the
// XenServer / XCP-ng implementation belongs. Every method takes the context first; an
// operation the driver does not support returns an error matching
// ErrNotImplemented. A failure after which the driver put the guest back as
// it was is returned as *InstanceFaultRollback, so the flow restores the
// instance's previous vm_state instead of setting error.
type Driver interface {
	// Capabilities reports what the driver supports. It does no I/O.
	Capabilities() DriverCapabilities

	// GetInfo returns the guest's state on the hypervisor, a
	// *NotFoundError when there is no guest for the instance.
	GetInfo(ctx context.Context, inst *Instance) (InstanceInfo, error)

	// MigrateDiskAndPowerOff runs on the source host of a resize or cold
	// migration: it powers the guest off and sends its disks to the
	// destination. XenAPI renames the VM <name>-orig; resizing up it
	// snapshots the running VM, sends the immutable ancestors, then powers
	// off and sends only the leaf; resizing down (req.ResizeDown) it powers
	// off first and copies the shrunk root partition into a new VDI.
	// Progress is reported through req.Progress. On failure the source VM is
	// restored and the error is an *InstanceFaultRollback.
	MigrateDiskAndPowerOff(ctx context.Context, req MigrateDiskRequest) (DiskInfo, error)

	// FinishMigration runs on the destination host: it imports the disks
	// the source sent, creates the guest, grows its disks when
	// req.ResizeInstance and powers it on when req.PowerOn.
	FinishMigration(ctx context.Context, req FinishMigrationRequest) error

	// ConfirmMigration runs on the source host when a move is confirmed:
	// it destroys what was kept for a revert (XenAPI: the <name>-orig VM and
	// its VDIs).
	ConfirmMigration(ctx context.Context, inst *Instance, mig *Migration) error

	// FinishRevertMigration runs on the source host when a move is
	// reverted (and when a compute restarts during resize_migrating): it
	// destroys any new guest of the same name, restores the original
	// (XenAPI renames <name>-orig back) and starts it when powerOn.
	FinishRevertMigration(ctx context.Context, inst *Instance, mig *Migration, powerOn bool) error

	// Destroy removes the guest from this host, and its disks when
	// destroyDisks (a revert destroys the destination guest this way). A
	// leftover rescue guest goes too.
	Destroy(ctx context.Context, inst *Instance, destroyDisks bool) error

	// PowerOff stops the guest: cleanly first when clean, then hard.
	PowerOff(ctx context.Context, inst *Instance, clean bool) error

	// PowerOn starts the guest.
	PowerOn(ctx context.Context, inst *Instance) error

	// Rescue boots a rescue guest from req.ImageRef with the instance's
	// root disk attached as a second disk. XenAPI hard-shuts the VM down,
	// bootlocks it (blocked_operations start) and boots <name>-rescue.
	Rescue(ctx context.Context, inst *Instance, req RescueRequest) error

	// Unrescue destroys the rescue guest (never the original's disks),
	// releases the bootlock and starts the original guest.
	Unrescue(ctx context.Context, inst *Instance) error

	// Snapshot uploads an image of the guest's root disk as imageID (a
	// cross-cell resize snapshots the source this way).
	Snapshot(ctx context.Context, inst *Instance, imageID string) error

	// Spawn creates the guest from req.ImageRef and starts it when
	// req.PowerOn (a cross-cell resize spawns the destination from the
	// snapshot, and a cross-cell revert spawns the source again).
	Spawn(ctx context.Context, inst *Instance, req SpawnRequest) error
}

// DriverCapabilities are what a driver supports.
type DriverCapabilities struct {
	// SupportsMigrateToSameHost lets a move stay on its host (false for
	// XenAPI: prep_resize refuses with UnableToMigrateToSelf).
	SupportsMigrateToSameHost bool
}

// InstanceInfo is the hypervisor's view of a guest.
type InstanceInfo struct {
	PowerState statemachine.PowerState
}

// ProgressFunc receives the progress of a long operation, 0..100.
type ProgressFunc func(percent int)

// MigrateDiskRequest is what MigrateDiskAndPowerOff needs.
type MigrateDiskRequest struct {
	Instance  *Instance
	Migration *Migration
	// DestHost is the address of the destination host.
	DestHost string
	// NewFlavor is the flavor the instance moves to.
	NewFlavor *Flavor
	// ResizeDown is true when the root disk shrinks (old root_gb > new
	// root_gb): XenAPI then takes the offline copy path.
	ResizeDown bool
	// CleanShutdown asks for a clean shutdown before a hard one.
	CleanShutdown bool
	// Progress, when not nil, receives progress (XenAPI: 20, 40, 60, 80).
	Progress ProgressFunc
}

// DiskInfo describes the disks a source sent; XenAPI returns none and the
// destination finds them in its staging area by label.
type DiskInfo struct {
	// Labels are the chain labels sent, e.g. "<uuid>" and "<uuid>_ephemeral_1".
	Labels []string
}

// FinishMigrationRequest is what FinishMigration needs.
type FinishMigrationRequest struct {
	Instance  *Instance
	Migration *Migration
	DiskInfo  DiskInfo
	// ResizeInstance is true when a disk size changes (root, swap or
	// ephemeral); false for a cold migration.
	ResizeInstance bool
	// PowerOn is true unless the instance was stopped before the move.
	PowerOn bool
	// Progress, when not nil, receives progress (100 when done).
	Progress ProgressFunc
}

// RescueRequest is what Rescue needs.
type RescueRequest struct {
	// ImageRef is the rescue image: the request's, else
	// image_base_image_ref, else the instance's image_ref.
	ImageRef      string
	AdminPassword string
}

// SpawnRequest is what Spawn needs.
type SpawnRequest struct {
	ImageRef string
	PowerOn  bool
}
