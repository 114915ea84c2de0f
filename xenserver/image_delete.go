package xenserver

import (
	"context"
	"errors"
	"fmt"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/xenapi"
)

var _ compute.ImageDeleter = (*Driver)(nil)

// DeleteImage implements compute.ImageDeleter for the images Snapshot and
// Spawn keep in the pools (PoolImages): in every pool of the inventory,
// the VDIs the driver made of image req.ImageID (other_config image-id,
// role image or image-snapshot) are destroyed. A root disk Spawn cloned
// from one keeps its data: the SR keeps a parent a clone needs as a
// hidden base copy, and its tags are removed so that no later lookup takes
// it for the image. VDIs tagged with the image id by anything but this
// driver are left alone; an image in a DirImageStore is the caller's to
// remove. An image found nowhere is no error.
func (d *Driver) DeleteImage(ctx context.Context, req compute.DeleteImageRequest) error {
	if err := checkImageID(req.ImageID); err != nil {
		return err
	}
	if _, err := d.pool(ctx, req.Host); err != nil {
		return err
	}
	seen := map[string]bool{}
	var errs []error
	for _, host := range sortedKeys(d.cfg.Inventory.Hosts) {
		pool := d.cfg.Inventory.Hosts[host].Pool
		if seen[pool] {
			continue
		}
		seen[pool] = true
		t, err := d.pool(ctx, host)
		if err == nil {
			err = deleteImageVDIs(ctx, t, req.ImageID)
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// deleteImageVDIs destroys the image's VDIs in the target's pool, then
// untags those the SR keeps as base copies.
func deleteImageVDIs(ctx context.Context, t *target, id string) error {
	c := t.Client
	recs, err := c.VDI.GetAllRecords(ctx)
	if err != nil {
		return withHost(t, fmt.Errorf("list VDIs: %w", err))
	}
	var errs []error
	for ref, rec := range recs {
		if !madeOfImage(rec, id) {
			continue
		}
		if err := destroyVDI(ctx, c, ref); err != nil {
			errs = append(errs, err)
			continue
		}
		errs = append(errs, untagImage(ctx, c, ref))
	}
	return withHostIf(t, errors.Join(errs...))
}

// madeOfImage reports whether the driver made VDI rec of image id: an
// imported image or the snapshot Snapshot exports.
func madeOfImage(rec xenapi.VDIRecord, id string) bool {
	role := rec.OtherConfig[KeyRole]
	return rec.OtherConfig[KeyImageID] == id && (role == RoleImage || role == RoleImageSnapshot)
}

// untagImage removes the image tags from a destroyed VDI the SR kept as a
// base copy; one that is gone is no error.
func untagImage(ctx context.Context, c *xenapi.Client, ref xenapi.VDIRef) error {
	err := updateVDIOtherConfig(ctx, c, ref, func(oc map[string]string) {
		for _, k := range []string{KeyImageID, KeyRole, KeyComplete} {
			delete(oc, k)
		}
	})
	if err == nil || xenapi.IsCode(err, xenapi.CodeHandleInvalid) {
		return nil
	}
	return err
}
