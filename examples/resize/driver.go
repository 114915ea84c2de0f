package main

import (
	"context"
	"fmt"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/scheduler"
)

// coreDriver is the part of compute.Driver a resize, a cold migration,
// a confirm and a revert call.
type coreDriver interface {
	Capabilities() compute.DriverCapabilities
	GetInfo(ctx context.Context, req compute.InstanceRequest) (compute.InstanceInfo, error)
	GetAvailableResource(ctx context.Context, req compute.HostRequest) (scheduler.HostState, error)
	MigrateDiskAndPowerOff(ctx context.Context, req compute.MigrateDiskRequest) (compute.DiskInfo, error)
	FinishMigration(ctx context.Context, req compute.FinishMigrationRequest) error
	ConfirmMigration(ctx context.Context, req compute.ConfirmMigrationRequest) error
	FinishRevertMigration(ctx context.Context, req compute.FinishRevertRequest) error
	Destroy(ctx context.Context, req compute.DestroyRequest) error
	PowerOff(ctx context.Context, req compute.PowerOffRequest) error
	PowerOn(ctx context.Context, req compute.InstanceRequest) error
	Rescue(ctx context.Context, req compute.RescueRequest) error
	Unrescue(ctx context.Context, req compute.InstanceRequest) error
}

// fullDriver makes a compute.Driver of a driver that may lack the
// methods these flows do not need (Snapshot, Spawn, CleanupMigration):
// each is passed on when the driver has it, and is ErrNotImplemented
// otherwise.
type fullDriver struct{ coreDriver }

// Snapshot implements compute.Driver.
func (d fullDriver) Snapshot(ctx context.Context, req compute.SnapshotRequest) error {
	if s, ok := d.coreDriver.(interface {
		Snapshot(context.Context, compute.SnapshotRequest) error
	}); ok {
		return s.Snapshot(ctx, req)
	}
	return fmt.Errorf("Snapshot: %w", compute.ErrNotImplemented)
}

// Spawn implements compute.Driver.
func (d fullDriver) Spawn(ctx context.Context, req compute.SpawnRequest) error {
	if s, ok := d.coreDriver.(interface {
		Spawn(context.Context, compute.SpawnRequest) error
	}); ok {
		return s.Spawn(ctx, req)
	}
	return fmt.Errorf("Spawn: %w", compute.ErrNotImplemented)
}

// CleanupMigration implements compute.Driver.
func (d fullDriver) CleanupMigration(ctx context.Context, req compute.CleanupMigrationRequest) error {
	if s, ok := d.coreDriver.(interface {
		CleanupMigration(context.Context, compute.CleanupMigrationRequest) error
	}); ok {
		return s.CleanupMigration(ctx, req)
	}
	return fmt.Errorf("CleanupMigration: %w", compute.ErrNotImplemented)
}
