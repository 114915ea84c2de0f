package xenserver

import (
	"fmt"
	"strings"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/xenapi"
)

// suspendedMetadata turns the exported metadata of a suspended move's
// -orig VM into the destination VM's and returns the VDI map of the
// import (exported VDI uuid → copy uuid):
//
//   - the VM claims the instance for the migration (nova_uuid and
//     xenflow_migration, not xenflow_orig_of), under its name without
//     -orig, pinned nowhere (FinishSuspended pins it after the import);
//   - its network interfaces are left out: FinishSuspended recreates them
//     with their MACs on the destination's networks (an import that does
//     not restore uuids gives new MACs, import.ml VIF.precheck);
//   - each disk's VBD is mapped onto the copy at its userdevice and the
//     suspend image onto its copy; a CD is emptied, as xapi ejects a CD
//     whose image the destination lacks (import.ml VBD.handle).
//
// A disk without a copy is an error: the import would otherwise attach the
// source's own VDI when source and destination are one pool.
func suspendedMetadata(md *xenapi.Metadata, req compute.FinishMigrationRequest, disks []destDisk) (map[string]string, error) {
	vm, err := exportedVM(md)
	if err != nil {
		return nil, err
	}
	retagVM(vm, req)
	var drop []string
	for _, o := range md.Objects {
		if o.Class == "VIF" || o.Class == "network" {
			drop = append(drop, o.ID)
		}
	}
	md.Remove(drop...)
	vdiMap := map[string]string{}
	keep := map[string]bool{}
	for _, vbd := range md.Class("VBD") {
		if vbd.Str("VM") != vm.ID {
			continue
		}
		id, err := mapVBD(md, vbd, disks, vdiMap)
		if err != nil {
			return nil, err
		}
		keep[id] = true
	}
	img := md.Object(vm.Str("suspend_VDI"))
	if img == nil || img.Class != "VDI" {
		return nil, &xenapi.MetadataError{Field: "VM.suspend_VDI", Reason: "the exported VM has no suspend image"}
	}
	vdiMap[img.Str("uuid")] = req.DiskInfo.SuspendVDI
	keep[img.ID] = true
	drop = drop[:0]
	for _, o := range md.Class("VDI") {
		if !keep[o.ID] {
			drop = append(drop, o.ID)
		}
	}
	md.Remove(drop...)
	return vdiMap, nil
}

// exportedVM returns the export's one VM that is not a snapshot.
func exportedVM(md *xenapi.Metadata) (*xenapi.MetadataObject, error) {
	var vms []*xenapi.MetadataObject
	for _, o := range md.Class("VM") {
		if snap, _ := o.Snapshot["is_a_snapshot"].(bool); !snap {
			vms = append(vms, o)
		}
	}
	if len(vms) != 1 {
		return nil, &xenapi.MetadataError{Field: "objects", Reason: fmt.Sprintf("%d VMs, not one", len(vms))}
	}
	return vms[0], nil
}

// retagVM makes the exported -orig VM the migration's destination VM.
func retagVM(vm *xenapi.MetadataObject, req compute.FinishMigrationRequest) {
	oc := map[string]any{}
	if old, ok := vm.Snapshot["other_config"].(map[string]any); ok {
		for k, v := range old {
			oc[k] = v
		}
	}
	delete(oc, KeyOrigOf)
	delete(oc, KeyDiskInfo)
	oc[KeyNovaUUID] = req.Instance.UUID
	oc[KeyMigration] = req.Migration.UUID
	vm.Snapshot["other_config"] = oc
	vm.Snapshot["name_label"] = strings.TrimSuffix(vm.Str("name_label"), origSuffix)
	vm.Snapshot["affinity"] = string(xenapi.NullRef)
	vm.Snapshot["resident_on"] = string(xenapi.NullRef)
	vm.Snapshot["VIFs"] = []any{}
}

// mapVBD maps a disk's VDI onto the copy at its userdevice, or empties a
// CD; it returns the id of the VDI kept in the export ("" for none).
func mapVBD(md *xenapi.Metadata, vbd *xenapi.MetadataObject, disks []destDisk, vdiMap map[string]string) (string, error) {
	vdi := md.Object(vbd.Str("VDI"))
	if empty, _ := vbd.Snapshot["empty"].(bool); empty || vdi == nil {
		return "", nil
	}
	dev := vbd.Str("userdevice")
	if !strings.EqualFold(vbd.Str("type"), string(xenapi.VBDTypeDisk)) {
		vbd.Snapshot["VDI"] = string(xenapi.NullRef)
		vbd.Snapshot["empty"] = true
		return "", nil
	}
	for _, d := range disks {
		if d.Userdevice == dev {
			vdiMap[vdi.Str("uuid")] = d.VDI
			return vdi.ID, nil
		}
	}
	return "", &xenapi.MetadataError{Field: "VBD " + dev,
		Reason: fmt.Sprintf("the disk at userdevice %s (VDI %s) has no copy among the migration's disks", dev, vdi.Str("uuid"))}
}
