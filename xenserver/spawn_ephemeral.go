package xenserver

import (
	"context"
	"fmt"
	"strconv"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/xenapi"
)

// deviceEphemeral is the userdevice of the first ephemeral disk
// (nova/virt/xenapi/vm_utils.py, DEVICE_EPHEMERAL); the next ones follow.
const deviceEphemeral = 4

// attachSpawnEphemeral gives a spawned VM the flavor's ephemeral disks,
// blank, at userdevice 4, 5, … with ephemeral_gb split as
// get_ephemeral_disk_sizes splits it (nova/virt/xenapi/vmops.py,
// _attach_disks; vm_utils.py, generate_ephemeral). Nova formats them; a
// blank disk is left for the guest to format. Each disk is created tagged
// with the instance and its userdevice, attached, then untagged, so a
// repeated call attaches (or untags) a tagged one it finds instead of
// making another, and skips the untagged attached ones.
func attachSpawnEphemeral(ctx context.Context, t *target, req compute.SpawnRequest, vm vmEntry) error {
	sizes := ephemeralSizes(req.Flavor.EphemeralGB)
	if len(sizes) == 0 {
		return nil
	}
	attached, err := attachedDevices(ctx, t, vm)
	if err != nil {
		return err
	}
	made, err := spawnEphemeralOf(ctx, t, req.Instance.UUID)
	if err != nil {
		return err
	}
	for i, gb := range sizes {
		dev := strconv.Itoa(deviceEphemeral + i)
		vdi, found := made[dev]
		if !found {
			if attached[dev] {
				continue
			}
			if vdi, err = createEphemeral(ctx, t, req.Instance, dev, int64(gb)<<30); err != nil {
				return err
			}
		}
		if err := attachEphemeral(ctx, t, vm, vdi, dev, attached[dev]); err != nil {
			return err
		}
	}
	return nil
}

// attachedDevices is the set of userdevices of the VM's VBDs.
func attachedDevices(ctx context.Context, t *target, vm vmEntry) (map[string]bool, error) {
	vbds, err := t.Client.VM.GetVBDs(ctx, vm.Ref)
	if err != nil {
		return nil, withHost(t, fmt.Errorf("VBDs of VM %s: %w", vm.Ref, err))
	}
	out := map[string]bool{}
	for _, vbd := range vbds {
		dev, err := t.Client.VBD.GetUserdevice(ctx, vbd)
		if err != nil {
			return nil, withHost(t, fmt.Errorf("userdevice of VBD %s: %w", vbd, err))
		}
		out[dev] = true
	}
	return out, nil
}

// createEphemeral creates a blank ephemeral disk of size bytes for
// userdevice dev, tagged as Spawn's until it is attached.
func createEphemeral(ctx context.Context, t *target, inst *compute.Instance, dev string, size int64) (xenapi.VDIRef, error) {
	name := inst.Name
	if name == "" {
		name = "instance-" + inst.UUID
	}
	vdi, err := t.Client.VDI.Create(ctx, xenapi.VDIRecord{
		NameLabel: fmt.Sprintf("%s ephemeral (%d)", name, deviceNumber(dev)-deviceEphemeral+1),
		SR:        t.SR, VirtualSize: size, Type: xenapi.VDITypeUser,
		OtherConfig: map[string]string{KeyRole: RoleSpawnEphemeral, KeySpawnOf: inst.UUID, KeyUserdevice: dev}})
	if err != nil {
		return "", withHost(t, fmt.Errorf("create ephemeral disk %s of instance %s: %w", dev, inst.UUID, err))
	}
	return vdi, nil
}

// attachEphemeral attaches the ephemeral disk at userdevice dev unless
// the VM has a disk there already, then drops Spawn's tags.
func attachEphemeral(ctx context.Context, t *target, vm vmEntry, vdi xenapi.VDIRef, dev string, attached bool) error {
	if !attached {
		if _, err := t.Client.VBD.Create(ctx, xenapi.VBDRecord{VM: vm.Ref, VDI: vdi, Userdevice: dev, Mode: xenapi.VBDModeRW,
			Type: xenapi.VBDTypeDisk, Unpluggable: true}); err != nil {
			return withHost(t, fmt.Errorf("attach ephemeral disk %s to VM %s: %w", dev, vm.Ref, err))
		}
	}
	return withHostIf(t, updateVDIOtherConfig(ctx, t.Client, vdi, func(oc map[string]string) {
		delete(oc, KeyRole)
		delete(oc, KeySpawnOf)
		delete(oc, KeyUserdevice)
	}))
}

// spawnEphemeralOf finds the ephemeral disks Spawn made for the instance
// and has not untagged yet, by userdevice, in one listing of the SR.
func spawnEphemeralOf(ctx context.Context, t *target, instance string) (map[string]xenapi.VDIRef, error) {
	recs, err := t.Client.VDI.GetAllRecordsWhere(ctx, fmt.Sprintf(`field "SR"="%s"`, t.SR))
	if err != nil {
		return nil, withHost(t, fmt.Errorf("list VDIs: %w", err))
	}
	out := map[string]xenapi.VDIRef{}
	for ref, rec := range recs {
		oc := rec.OtherConfig
		if oc[KeyRole] == RoleSpawnEphemeral && oc[KeySpawnOf] == instance {
			out[oc[KeyUserdevice]] = ref
		}
	}
	return out, nil
}
