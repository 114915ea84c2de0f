package xenserver

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/dom0"
	"github.com/xenflow/xenflow/vhd"
)

// Staging directory prefixes of the dom0 chain move
// (dom0.StagingDirs: <sr>/xenflow-send-<label>, <sr>/xenflow-receive-<label>).
var stagingPrefixes = []string{"xenflow-send-", "xenflow-receive-"}

// CleanupMigration removes what a move that stopped part-way left on
// req.Host's pool (nova/compute/manager.py,
// _cleanup_incomplete_migrations), found by the migration's uuid:
//
//   - the source's snapshots tagged with the migration (never the only
//     copy of anything) and the destination copies it left incomplete and
//     unattached;
//   - the <name>-orig VM the migration kept, with its disks no other VM
//     uses, and its complete but unattached copies, only when no instance
//     needs them: the instance is gone (req.Instance nil) or another VM
//     claims it with other_config:nova_uuid;
//   - with the host's dom0, the chain staging directories of the
//     migration's instance in the host's SR (dom0.StagingDirs), when no
//     other move of the instance is marked on its VM.
//
// It is idempotent; every failure is reported.
func (d *Driver) CleanupMigration(ctx context.Context, req compute.CleanupMigrationRequest) error {
	if req.Migration == nil || req.Migration.UUID == "" {
		return &RequestError{Method: "CleanupMigration", Field: "Migration"}
	}
	t, err := d.pool(ctx, req.Host)
	if err != nil {
		return err
	}
	claim, err := d.claimingVM(ctx, req)
	if err != nil {
		return err
	}
	mig := req.Migration.UUID
	unneeded := req.Instance == nil || claim != nil
	var errs []error
	errs = append(errs, withHostIf(t, discardSnapshots(ctx, t.Client, mig, migrationSnapshot(mig))))
	errs = append(errs, destroyTagged(ctx, t, mig, RoleCopy, func(v vdiEntry) bool {
		return len(v.Rec.VBDs) == 0 && (unneeded || v.Rec.OtherConfig[KeyComplete] != "true")
	}))
	if unneeded {
		errs = append(errs, destroyOrigVMs(ctx, t, mig))
	}
	if claim == nil || claim.Rec.OtherConfig[KeyMigration] == "" || claim.Rec.OtherConfig[KeyMigration] == mig {
		errs = append(errs, removeStaging(ctx, t, instanceUUID(req)))
	}
	return errors.Join(errs...)
}

func instanceUUID(req compute.CleanupMigrationRequest) string {
	if req.Instance != nil {
		return req.Instance.UUID
	}
	return req.Migration.InstanceUUID
}

// claimingVM returns the VM that claims the instance with nova_uuid in
// the pools of req.Host, the instance's host and the migration's two
// hosts; nil when none does (or the instance is gone).
func (d *Driver) claimingVM(ctx context.Context, req compute.CleanupMigrationRequest) (*vmEntry, error) {
	if req.Instance == nil {
		return nil, nil
	}
	seen := map[string]bool{}
	for _, host := range []string{req.Host, req.Instance.Host, req.Migration.SourceCompute, req.Migration.DestCompute} {
		entry, ok := d.cfg.Inventory.Hosts[host]
		if !ok || seen[entry.Pool] {
			continue
		}
		seen[entry.Pool] = true
		t, err := d.pool(ctx, host)
		if err != nil {
			return nil, err
		}
		vm, err := findVM(ctx, t.Client, req.Instance.UUID)
		if errors.Is(err, compute.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, withHost(t, err)
		}
		return &vm, nil
	}
	return nil, nil
}

// destroyTagged destroys the pool's VDIs the migration made with a role,
// those pick selects.
func destroyTagged(ctx context.Context, t *target, migration, role string, pick func(vdiEntry) bool) error {
	vdis, err := taggedVDIs(ctx, t.Client, "", migration, role)
	if err != nil {
		return withHost(t, err)
	}
	var errs []error
	for _, v := range vdis {
		if pick(v) {
			errs = append(errs, destroyVDI(ctx, t.Client, v.Ref))
		}
	}
	return withHostIf(t, errors.Join(errs...))
}

// destroyOrigVMs destroys the VMs the migration kept as <name>-orig on the
// host, with their disks no other VM uses.
func destroyOrigVMs(ctx context.Context, t *target, migration string) error {
	vms, err := findVMsBy(ctx, t.Client, func(oc map[string]string) bool {
		return oc[KeyOrigOf] != "" && oc[KeyMigration] == migration
	})
	if err != nil {
		return withHost(t, err)
	}
	var errs []error
	for _, vm := range vms {
		if onHost(vm.Rec, t) {
			errs = append(errs, destroyGuest(ctx, t, vm, func(vmDisk) bool { return true }))
		}
	}
	return errors.Join(errs...)
}

// removeStaging removes the instance's chain staging directories from the
// host's SR through its dom0; a host without dom0 access has none the
// driver made.
func removeStaging(ctx context.Context, t *target, instance string) error {
	h := t.Entry.Dom0
	if h == nil || instance == "" {
		return nil
	}
	srUUID, err := t.Client.SR.GetUUID(ctx, t.SR)
	if err != nil {
		return withHost(t, fmt.Errorf("uuid of SR %s: %w", t.SR, err))
	}
	sr, err := vhd.ParseUUID(srUUID)
	if err != nil {
		return withHost(t, fmt.Errorf("SR uuid %q: %w", srUUID, err))
	}
	dir, err := dom0.SRPath(sr)
	if err != nil {
		return withHost(t, err)
	}
	entries, err := h.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return withHost(t, fmt.Errorf("list %s on %s: %w", dir, h, err))
	}
	var errs []error
	for _, e := range entries {
		if e.IsDir() && isStagingOf(e.Name(), instance) {
			if err := h.RemoveAll(dir + "/" + e.Name()); err != nil {
				errs = append(errs, fmt.Errorf("xenserver: remove %s/%s on %s: %w", dir, e.Name(), h, err))
			}
		}
	}
	return errors.Join(errs...)
}

// isStagingOf reports whether a directory name is a staging directory of
// the instance's chains: <prefix>instance<uuid> or
// <prefix>instance<uuid>_ephemeral_<n>.
func isStagingOf(name, instance string) bool {
	for _, p := range stagingPrefixes {
		rest, ok := strings.CutPrefix(name, p+"instance"+instance)
		if ok && (rest == "" || strings.HasPrefix(rest, "_ephemeral_")) {
			return true
		}
	}
	return false
}
