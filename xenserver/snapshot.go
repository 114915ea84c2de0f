package xenserver

import (
	"context"
	"errors"
	"fmt"

	"github.com/xenflow/xenflow/xenapi"
)

// KeySnapshotFor marks a disk while the driver snapshots it, with the
// snapshot's owner (a migration's uuid, or "image:<id>"). VDI.snapshot
// copies the disk's other_config to the snapshot (xapi_vdi.ml,
// snapshot_and_clone), so a snapshot whose tagging a crash interrupted
// still names its owner, and is found and destroyed on the next call
// instead of staying in the SR for good.
const KeySnapshotFor = "xenflow_snapshot_for"

// snapshotTagged snapshots vdi with the snapshot naming owner from its
// birth: vdi is marked (KeySnapshotFor) before VDI.snapshot; then tag
// edits the snapshot's other_config (the mark removed) and the mark is
// removed from vdi. A failure between the calls leaves a snapshot, or a
// marked disk, that discardSnapshots finds.
func snapshotTagged(ctx context.Context, c *xenapi.Client, vdi xenapi.VDIRef, owner string, tag func(oc map[string]string)) (xenapi.VDIRef, error) {
	if err := updateVDIOtherConfig(ctx, c, vdi, func(oc map[string]string) { oc[KeySnapshotFor] = owner }); err != nil {
		return "", fmt.Errorf("xenserver: mark VDI %s for its snapshot: %w", vdi, err)
	}
	snap, err := c.VDI.Snapshot(ctx, vdi, map[string]string{})
	if err != nil {
		return "", fmt.Errorf("xenserver: snapshot VDI %s: %w", vdi, err)
	}
	err = updateVDIOtherConfig(ctx, c, snap, func(oc map[string]string) {
		delete(oc, KeySnapshotFor)
		tag(oc)
	})
	if err != nil {
		return "", fmt.Errorf("xenserver: tag snapshot %s: %w", snap, err)
	}
	if err := updateVDIOtherConfig(ctx, c, vdi, func(oc map[string]string) { delete(oc, KeySnapshotFor) }); err != nil {
		return "", fmt.Errorf("xenserver: unmark VDI %s: %w", vdi, err)
	}
	return snap, nil
}

// discardSnapshots destroys the pool's snapshots of owner: those tagged
// (tagged reports it from other_config) and those still marked with
// KeySnapshotFor; it removes the mark from the disks that carry it. None
// of them is the only copy of anything.
func discardSnapshots(ctx context.Context, c *xenapi.Client, owner string, tagged func(oc map[string]string) bool) error {
	recs, err := c.VDI.GetAllRecords(ctx)
	if err != nil {
		return fmt.Errorf("xenserver: list VDIs: %w", err)
	}
	var errs []error
	for ref, rec := range recs {
		marked := rec.OtherConfig[KeySnapshotFor] == owner
		switch {
		case tagged(rec.OtherConfig) || marked && rec.IsASnapshot:
			errs = append(errs, destroyVDI(ctx, c, ref))
		case marked:
			err := updateVDIOtherConfig(ctx, c, ref, func(oc map[string]string) { delete(oc, KeySnapshotFor) })
			if err != nil {
				errs = append(errs, fmt.Errorf("xenserver: unmark VDI %s: %w", rec.UUID, err))
			}
		}
	}
	return errors.Join(errs...)
}

// migrationSnapshot reports whether other_config tags a snapshot the
// migration made.
func migrationSnapshot(migration string) func(oc map[string]string) bool {
	return func(oc map[string]string) bool { return oc[KeyMigration] == migration && oc[KeyRole] == RoleSnapshot }
}
