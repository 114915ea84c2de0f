package crosscell

import (
	"context"
	"log/slog"

	"github.com/xenflow/xenflow/compute"
)

// snapshotID is the move's snapshot image, as either copy records it.
func (m *move) snapshotID() string {
	for _, k := range []*copyOf{m.src, m.dst} {
		if k.exists() && k.inst.SystemMetadata[SysMetaSnapshot] != "" {
			return k.inst.SystemMetadata[SysMetaSnapshot]
		}
	}
	return ""
}

// hostIn returns the move's compute host in k's cell: the migration's
// source in the source cell, its destination in the target cell.
func (m *move) hostIn(k *copyOf) string {
	for _, c := range []*copyOf{m.src, m.dst} {
		if c.mig == nil {
			continue
		}
		if k == m.src {
			return c.mig.SourceCompute
		}
		return c.mig.DestCompute
	}
	if k.exists() {
		return k.inst.Host
	}
	return ""
}

// deleteSnapshot deletes the move's snapshot image through the driver of
// each cell that can (compute.ImageDeleter): the source cell's stored it,
// the target cell's cached it to spawn. It runs once the instance no
// longer needs the image: at confirm (after the destination's guest is
// found), at revert and at the end of a rollback. A failure is only
// logged, as Nova's compute_utils.delete_image logs it; the image is then
// left to the operator.
func (m *move) deleteSnapshot(ctx context.Context) {
	id := m.snapshotID()
	if id == "" {
		return
	}
	for _, k := range []*copyOf{m.src, m.dst} {
		d, ok := k.cell.Driver.(compute.ImageDeleter)
		if !ok {
			continue
		}
		req := compute.DeleteImageRequest{Host: m.hostIn(k), ImageID: id}
		if err := retry(ctx, func() error { return d.DeleteImage(ctx, req) }); err != nil {
			m.c.log.Warn("crosscell: snapshot image not deleted", slog.String("image", id),
				slog.String("cell", k.cell.Name), slog.Any("err", err))
		}
	}
}

// spawnedGuestFound reports whether the destination's guest exists, which
// a confirm checks before it deletes the image the guest was spawned from.
func (m *move) spawnedGuestFound(ctx context.Context) bool {
	if !m.dst.exists() || m.dst.mig == nil {
		return false
	}
	err := retry(ctx, func() error {
		_, err := m.dst.cell.Driver.GetInfo(ctx, compute.InstanceRequest{Instance: m.dst.inst, Host: m.dst.mig.DestCompute})
		return err
	})
	if err != nil {
		m.c.log.Warn("crosscell: destination guest not found, snapshot image kept", slog.Any("err", err))
	}
	return err == nil
}
