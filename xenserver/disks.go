package xenserver

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/xenflow/xenflow/xenapi"
)

// vdiEntry is a VDI found in a pool.
type vdiEntry struct {
	Ref xenapi.VDIRef
	Rec xenapi.VDIRecord
}

// taggedVDIs returns the VDIs of an SR (every SR when sr is null) that a
// migration made with the given role (other_config xenflow_migration and
// xenflow_role), in a stable order.
func taggedVDIs(ctx context.Context, c *xenapi.Client, sr xenapi.SRRef, migrationUUID, role string) ([]vdiEntry, error) {
	if migrationUUID == "" {
		return nil, nil
	}
	var recs map[xenapi.VDIRef]xenapi.VDIRecord
	var err error
	if sr.IsNull() {
		recs, err = c.VDI.GetAllRecords(ctx)
	} else {
		recs, err = c.VDI.GetAllRecordsWhere(ctx, fmt.Sprintf(`field "SR"="%s"`, sr))
	}
	if err != nil {
		return nil, fmt.Errorf("xenserver: list VDIs: %w", err)
	}
	var out []vdiEntry
	for ref, rec := range recs {
		if rec.OtherConfig[KeyMigration] == migrationUUID && rec.OtherConfig[KeyRole] == role {
			out = append(out, vdiEntry{Ref: ref, Rec: rec})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Rec.UUID < out[j].Rec.UUID })
	return out, nil
}

// destroyVDI destroys a VDI; one already gone is not an error.
func destroyVDI(ctx context.Context, c *xenapi.Client, vdi xenapi.VDIRef) error {
	err := c.VDI.Destroy(ctx, vdi)
	if err == nil || xenapi.IsCode(err, xenapi.CodeHandleInvalid) {
		return nil
	}
	return fmt.Errorf("xenserver: destroy VDI %s: %w", vdi, err)
}

// usedByOthers reports whether a VDI has a VBD of a VM other than vm.
func usedByOthers(ctx context.Context, c *xenapi.Client, vdi xenapi.VDIRef, vm xenapi.VMRef) (bool, error) {
	vbds, err := c.VDI.GetVBDs(ctx, vdi)
	if xenapi.IsCode(err, xenapi.CodeHandleInvalid) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("xenserver: VBDs of VDI %s: %w", vdi, err)
	}
	for _, vbd := range vbds {
		owner, err := c.VBD.GetVM(ctx, vbd)
		if xenapi.IsCode(err, xenapi.CodeHandleInvalid) {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("xenserver: VM of VBD %s: %w", vbd, err)
		}
		if owner != vm {
			return true, nil
		}
	}
	return false, nil
}

// checkFree refuses a disk of size bytes when the SR's free space
// (physical_size - physical_utilisation) is smaller.
func checkFree(ctx context.Context, dest Endpoint, vdi string, size int64) error {
	sr, err := dest.Client.SR.GetRecord(ctx, dest.SR)
	if err != nil {
		return fmt.Errorf("xenserver: SR of %q: %w", dest.ComputeHost, err)
	}
	if free := sr.PhysicalSize - sr.PhysicalUtilisation; size > free {
		return &SRFullError{ComputeHost: dest.ComputeHost, SR: sr.UUID, VDI: vdi, Need: size, Free: free}
	}
	return nil
}

// discardCopies destroys the VDIs of the endpoint's SR that the migration
// made (xenflow_role "copy"): the incomplete ones, or all when all.
func discardCopies(ctx context.Context, dest Endpoint, migrationUUID string, all bool) error {
	vdis, err := taggedVDIs(ctx, dest.Client, dest.SR, migrationUUID, RoleCopy)
	if err != nil {
		return err
	}
	var errs []error
	for _, v := range vdis {
		// A copy a VM uses is not a leftover.
		if len(v.Rec.VBDs) > 0 || !all && v.Rec.OtherConfig[KeyComplete] == "true" {
			continue
		}
		errs = append(errs, destroyVDI(ctx, dest.Client, v.Ref))
	}
	return errors.Join(errs...)
}
