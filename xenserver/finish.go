package xenserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/xenapi"
)

// FinishMigration creates the instance's VM on the destination host
// (req.Host) from the disks the source sent (nova/virt/xenapi/vmops.py,
// finish_migration): it checks each disk (present, made by this
// migration, complete), grows the root disk to root_gb and the ephemeral
// disks to ephemeral_gb with VDI.resize when req.ResizeInstance, creates the VM with req.NewFlavor tagged
// nova_uuid and xenflow_migration, attaches the disks and starts the VM
// when req.PowerOn. A repeated call finds the VM it made and finishes what
// is missing. A DiskInfo with a SuspendVDI finishes a suspended move
// (FinishSuspended).
func (d *Driver) FinishMigration(ctx context.Context, req compute.FinishMigrationRequest) error {
	if err := checkFinishRequest(req); err != nil {
		return err
	}
	if req.DiskInfo.SuspendVDI != "" {
		return d.FinishSuspended(ctx, req)
	}
	t, err := d.pool(ctx, req.Host)
	if err != nil {
		return err
	}
	report := func(step string, pct int) {
		if req.Progress != nil {
			req.Progress(compute.Progress{Percent: pct, Step: step, PoweredOff: true})
		}
	}
	disks, err := destDisks(ctx, t, req)
	if err != nil {
		return err
	}
	vm, found, err := migrationVM(ctx, t, req.Instance.UUID, req.Migration.UUID)
	if err != nil {
		return err
	}
	tpl, err := readTemplate(t, req, disks)
	if err != nil {
		return err
	}
	networks, err := networksFor(ctx, t, tpl.VIFs)
	if err != nil {
		return err
	}
	if req.ResizeInstance && !found {
		if err := growDisks(ctx, t, disks, req.NewFlavor); err != nil {
			return err
		}
	}
	if !found {
		if vm.Ref, err = createVM(ctx, t, req, tpl); err != nil {
			return err
		}
	}
	if err := attachDisks(ctx, t, vm.Ref, disks); err != nil {
		return err
	}
	if err := plugVIFs(ctx, t, vm.Ref, tpl.VIFs, networks); err != nil {
		return err
	}
	if req.PowerOn {
		if err := startOn(ctx, t.Client, vm.Ref, t.Host); err != nil {
			return withHost(t, err)
		}
	}
	report("finish", 100)
	return nil
}

func checkFinishRequest(req compute.FinishMigrationRequest) error {
	return require("FinishMigration", need{"Instance", req.Instance == nil},
		need{"Migration", req.Migration == nil || req.Migration.UUID == ""}, need{"NewFlavor", req.NewFlavor == nil},
		need{"DiskInfo.Disks", len(req.DiskInfo.Disks) == 0})
}

// destDisk is a disk the source sent, found on the destination.
type destDisk struct {
	compute.Disk
	Ref xenapi.VDIRef
	Rec xenapi.VDIRecord
}

// destDisks finds each disk of the DiskInfo on the destination and checks
// that this migration made it and completed it, at least as large as
// sent.
func destDisks(ctx context.Context, t *target, req compute.FinishMigrationRequest) ([]destDisk, error) {
	var out []destDisk
	for _, disk := range req.DiskInfo.Disks {
		bad := func(reason string) error { return &NoDiskError{ComputeHost: t.Name, VDI: disk.VDI, Reason: reason} }
		ref, err := t.Client.VDI.GetByUUID(ctx, disk.VDI)
		if xenapi.IsCode(err, xenapi.CodeUUIDInvalid) {
			return nil, bad("no such VDI in pool " + t.Pool)
		}
		if err != nil {
			return nil, withHost(t, fmt.Errorf("find VDI %s: %w", disk.VDI, err))
		}
		rec, err := t.Client.VDI.GetRecord(ctx, ref)
		if err != nil {
			return nil, withHost(t, fmt.Errorf("VDI %s: %w", disk.VDI, err))
		}
		switch oc := rec.OtherConfig; {
		case oc[KeyMigration] != req.Migration.UUID || oc[KeyRole] != RoleCopy:
			return nil, bad("not a copy made by migration " + req.Migration.UUID)
		case oc[KeyComplete] != "true":
			return nil, bad("the copy is incomplete")
		case rec.VirtualSize < disk.VirtualSize:
			return nil, bad(fmt.Sprintf("virtual size %d, %d were sent", rec.VirtualSize, disk.VirtualSize))
		}
		out = append(out, destDisk{Disk: disk, Ref: ref, Rec: rec})
	}
	return out, nil
}

// migrationVM returns the VM of the pool claiming the instance, when this
// migration made it (found true); none is not an error, but another VM
// claiming the instance is a *DuplicateInstanceError.
func migrationVM(ctx context.Context, t *target, instance, migration string) (vmEntry, bool, error) {
	vm, err := findVM(ctx, t.Client, instance)
	if errors.Is(err, compute.ErrNotFound) {
		return vmEntry{}, false, nil
	}
	if err != nil {
		return vmEntry{}, false, withHost(t, err)
	}
	if vm.Rec.OtherConfig[KeyMigration] != migration {
		return vmEntry{}, false, withHost(t, &DuplicateInstanceError{InstanceUUID: instance, Pool: t.Pool,
			Key: KeyNovaUUID, VMs: []string{vm.Rec.UUID, "(the VM migration " + migration + " would create)"}})
	}
	return vm, true, nil
}

// growDisks grows the root disk to the flavor's root_gb and the ephemeral
// disks (every other disk, in userdevice order) to the flavor's
// ephemeral_gb, split over them as Nova splits it (vmops.py,
// _resize_up_vdis; vm_utils.py, get_ephemeral_disk_sizes). VDI.resize
// only grows (vm_utils.py, update_vdi_virtual_size): a disk already as
// large is left alone, and so is an ephemeral disk past the split. Unlike
// Nova, no new ephemeral disk is made when the split names more disks
// than the instance has.
func growDisks(ctx context.Context, t *target, disks []destDisk, flavor *compute.Flavor) error {
	ephemeral := ephemeralSizes(flavor.EphemeralGB)
	ordered := append([]destDisk(nil), disks...)
	sort.SliceStable(ordered, func(i, j int) bool { return deviceNumber(ordered[i].Userdevice) < deviceNumber(ordered[j].Userdevice) })
	next := 0
	for _, disk := range ordered {
		gb := flavor.RootGB
		if disk.Userdevice != deviceRoot {
			gb = 0
			if next < len(ephemeral) {
				gb = ephemeral[next]
			}
			next++
		}
		want := int64(gb) << 30
		if want <= disk.Rec.VirtualSize {
			continue
		}
		if err := t.Client.VDI.Resize(ctx, disk.Ref, want); err != nil {
			return withHost(t, fmt.Errorf("grow VDI %s (userdevice %s) to %d bytes: %w", disk.VDI, disk.Userdevice, want, err))
		}
	}
	return nil
}

// maxEphemeralGB is the largest ephemeral disk Nova makes, in GiB, when
// the total is not a multiple of 1024 GiB (then it is 1024).
const maxEphemeralGB = 2000

// ephemeralSizes splits a flavor's ephemeral_gb into the sizes of its
// ephemeral disks, in GiB (vm_utils.py, get_ephemeral_disk_sizes): disks
// of at most 2000 GiB, or of 1024 GiB when the total is a multiple of
// 1024.
func ephemeralSizes(totalGB int) []int {
	largest := maxEphemeralGB
	if totalGB%1024 == 0 {
		largest = 1024
	}
	var out []int
	for left := totalGB; left > 0; left -= largest {
		out = append(out, min(largest, left))
	}
	return out
}

// deviceNumber orders userdevices numerically; one that is not a number
// goes last.
func deviceNumber(userdevice string) int {
	n, err := strconv.Atoi(userdevice)
	if err != nil {
		return 1 << 30
	}
	return n
}

// createVM makes the destination VM with the new flavor, in the order
// xapi checks: memory static_min ≤ dynamic_min ≤ dynamic_max ≤ static_max,
// 0 < VCPUs_at_startup ≤ VCPUs_max (vm_utils.py, create_vm).
// readTemplate reads the source VM's settings the root copy carries.
func readTemplate(t *target, req compute.FinishMigrationRequest, disks []destDisk) (vmTemplate, error) {
	tpl := vmTemplate{NameLabel: req.Instance.Name}
	for _, disk := range disks {
		if s := disk.Rec.OtherConfig[KeyVMTemplate]; s != "" && disk.Userdevice == "0" {
			if err := json.Unmarshal([]byte(s), &tpl); err != nil {
				return tpl, withHost(t, fmt.Errorf("VDI %s other_config:%s: %w", disk.VDI, KeyVMTemplate, err))
			}
		}
	}
	if tpl.NameLabel == "" {
		tpl.NameLabel = "instance-" + req.Instance.UUID
	}
	return tpl, nil
}

func createVM(ctx context.Context, t *target, req compute.FinishMigrationRequest, tpl vmTemplate) (xenapi.VMRef, error) {
	mem := int64(req.NewFlavor.MemoryMB) << 20
	vcpus := int64(req.NewFlavor.VCPUs)
	if vcpus < 1 {
		vcpus = 1
	}
	rec := xenapi.VMRecord{
		NameLabel: tpl.NameLabel, UserVersion: 1, Affinity: t.Host,
		MemoryStaticMin: 0, MemoryDynamicMin: mem, MemoryDynamicMax: mem, MemoryStaticMax: mem, MemoryTarget: mem,
		VCPUsMax: vcpus, VCPUsAtStartup: vcpus,
		ActionsAfterShutdown: "destroy", ActionsAfterReboot: "restart", ActionsAfterCrash: "destroy",
		PVBootloader: tpl.PVBootloader, PVKernel: tpl.PVKernel, PVRamdisk: tpl.PVRamdisk, PVArgs: tpl.PVArgs,
		PVBootloaderArgs: tpl.PVBootloaderArgs, HVMBootPolicy: tpl.HVMBootPolicy, HVMBootParams: tpl.HVMBootParams,
		Platform: tpl.Platform, XenstoreData: tpl.XenstoreData, DomainType: xenapi.DomainType(tpl.DomainType),
		OtherConfig: map[string]string{KeyNovaUUID: req.Instance.UUID, KeyMigration: req.Migration.UUID},
	}
	ref, err := t.Client.VM.Create(ctx, rec)
	if err != nil {
		return "", withHost(t, fmt.Errorf("create the VM of instance %s: %w", req.Instance.UUID, err))
	}
	return ref, nil
}

// attachDisks creates the VBDs the VM lacks, root bootable.
func attachDisks(ctx context.Context, t *target, vm xenapi.VMRef, disks []destDisk) error {
	have := map[string]bool{}
	vbds, err := t.Client.VM.GetVBDs(ctx, vm)
	if err != nil {
		return withHost(t, fmt.Errorf("VBDs of VM %s: %w", vm, err))
	}
	for _, vbd := range vbds {
		rec, err := t.Client.VBD.GetRecord(ctx, vbd)
		if err != nil {
			return withHost(t, fmt.Errorf("VBD %s: %w", vbd, err))
		}
		have[rec.Userdevice] = true
	}
	for _, disk := range disks {
		if have[disk.Userdevice] {
			continue
		}
		_, err := t.Client.VBD.Create(ctx, xenapi.VBDRecord{VM: vm, VDI: disk.Ref, Userdevice: disk.Userdevice,
			Bootable: disk.Userdevice == "0", Mode: xenapi.VBDModeRW, Type: xenapi.VBDTypeDisk, Unpluggable: true})
		if err != nil {
			return withHost(t, fmt.Errorf("attach VDI %s at %s: %w", disk.VDI, disk.Userdevice, err))
		}
	}
	return nil
}

// ConfirmMigration destroys the <name>-orig VM the migration kept on the
// source host (req.Host) and its disks that no other VM uses, once it has
// found the instance's VM this migration made on the destination. A
// suspended -orig is hard-shut down first, which drops its suspend image.
// A repeated call finds nothing to do.
func (d *Driver) ConfirmMigration(ctx context.Context, req compute.ConfirmMigrationRequest) error {
	if err := require("ConfirmMigration", need{"Instance", req.Instance == nil}, need{"Migration", req.Migration == nil}); err != nil {
		return err
	}
	t, err := d.pool(ctx, req.Host)
	if err != nil {
		return err
	}
	orig, err := findOrigVM(ctx, t.Client, req.Instance.UUID, req.Migration.UUID)
	if errors.Is(err, compute.ErrNotFound) {
		return nil // nothing kept as -orig: confirmed already
	}
	if err != nil {
		return withHost(t, err)
	}
	if err := d.checkDestination(ctx, req.Instance.UUID, req.Migration); err != nil {
		return err
	}
	return destroyGuest(ctx, t, orig, func(vmDisk) bool { return true })
}

// checkDestination refuses to destroy the source unless the migration's
// destination VM exists.
func (d *Driver) checkDestination(ctx context.Context, instance string, mig *compute.Migration) error {
	host := mig.DestCompute
	if host == "" {
		return fmt.Errorf("xenserver: migration %s names no destination compute host: the source is kept", mig.UUID)
	}
	t, err := d.pool(ctx, host)
	if err != nil {
		return err
	}
	_, found, err := migrationVM(ctx, t, instance, mig.UUID)
	if err != nil {
		return err
	}
	if !found {
		return withHost(t, fmt.Errorf("no VM of migration %s for instance %s: the source is kept: %w",
			mig.UUID, instance, &compute.NotFoundError{Kind: compute.KindInstance, ID: instance}))
	}
	return nil
}

// destroyGuest hard-shuts a VM down, destroys the disks keep selects and
// no other VM uses, then the VM. Disks go first, so a repeated call after
// an interruption still finds the VM and its remaining disks.
func destroyGuest(ctx context.Context, t *target, vm vmEntry, destroyDisk func(vmDisk) bool) error {
	c := t.Client
	if err := powerOff(ctx, c, vm.Ref, false, 0); err != nil {
		return withHost(t, err)
	}
	disks, err := vmDisks(ctx, c, vm)
	if err != nil {
		return withHost(t, err)
	}
	for _, disk := range disks {
		if !destroyDisk(disk) {
			continue
		}
		shared, err := usedByOthers(ctx, c, disk.VDI, vm.Ref)
		if err != nil {
			return withHost(t, err)
		}
		if shared {
			continue
		}
		if err := destroyVDI(ctx, c, disk.VDI); err != nil {
			return withHost(t, err)
		}
	}
	err = c.VM.Destroy(ctx, vm.Ref)
	if err != nil && !xenapi.IsCode(err, xenapi.CodeHandleInvalid) {
		return withHost(t, fmt.Errorf("destroy VM %s: %w", vm.Rec.UUID, err))
	}
	return nil
}

// FinishRevertMigration restores the VM the migration kept on the source
// host (req.Host): a destination VM of the same pool still claiming the
// instance for this migration is destroyed first, then nova_uuid comes
// back in place of xenflow_orig_of (one call), the -orig suffix goes, and
// the VM starts (resumes, after a suspended move) when req.PowerOn. A
// repeated call finds the VM restored and finishes what is missing.
func (d *Driver) FinishRevertMigration(ctx context.Context, req compute.FinishRevertRequest) error {
	if err := require("FinishRevertMigration", need{"Instance", req.Instance == nil}, need{"Migration", req.Migration == nil}); err != nil {
		return err
	}
	t, err := d.pool(ctx, req.Host)
	if err != nil {
		return err
	}
	inst := req.Instance.UUID
	orig, err := findOrigVM(ctx, t.Client, inst, req.Migration.UUID)
	switch {
	case errors.Is(err, compute.ErrNotFound):
		vm, verr := d.instanceVM(ctx, t, req.Instance)
		if verr != nil {
			return verr
		}
		orig = vm // restored by an earlier call
	case err != nil:
		return withHost(t, err)
	default:
		if err := d.restoreOrig(ctx, t, inst, req.Migration.UUID, orig); err != nil {
			return err
		}
	}
	if err := ensureName(ctx, t.Client, orig.Ref, orig.Rec.NameLabel, false); err != nil {
		return withHost(t, err)
	}
	if req.PowerOn {
		if err := startOn(ctx, t.Client, orig.Ref, t.Host); err != nil {
			return withHost(t, err)
		}
	}
	return nil
}

// restoreOrig gives the kept VM its nova_uuid back, after destroying a
// destination VM of the same pool that still claims the instance.
func (d *Driver) restoreOrig(ctx context.Context, t *target, inst, migration string, orig vmEntry) error {
	claim, found, err := migrationVM(ctx, t, inst, migration)
	if err != nil {
		return err
	}
	if found {
		if err := destroyGuest(ctx, t, claim, func(disk vmDisk) bool { return isCopyOf(disk, migration) }); err != nil {
			return err
		}
	}
	err = updateVMOtherConfig(ctx, t.Client, orig.Ref, func(oc map[string]string) {
		for _, k := range []string{KeyOrigOf, KeyMigration, KeyPowerState, KeyDiskInfo} {
			delete(oc, k)
		}
		oc[KeyNovaUUID] = inst
	})
	return withHostIf(t, err)
}

// isCopyOf reports whether a disk is a copy the migration made.
func isCopyOf(disk vmDisk, migration string) bool {
	oc := disk.VDIRec.OtherConfig
	return oc[KeyMigration] == migration && oc[KeyRole] == RoleCopy
}

func withHostIf(t *target, err error) error {
	if err == nil {
		return nil
	}
	return withHost(t, err)
}

// Destroy removes the instance's VM from req.Host, and its disks (those no
// other VM uses) when req.DestroyDisks. With req.Migration it removes only
// the VM that migration made and, with req.DestroyDisks, only that
// migration's copies; the kept <name>-orig VM never matches. A VM already
// gone is not an error.
func (d *Driver) Destroy(ctx context.Context, req compute.DestroyRequest) error {
	if req.Instance == nil {
		return &RequestError{Method: "Destroy", Field: "Instance"}
	}
	t, err := d.pool(ctx, req.Host)
	if err != nil {
		return err
	}
	if req.Migration == nil {
		vm, err := d.instanceVM(ctx, t, req.Instance)
		if errors.Is(err, compute.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		return destroyGuest(ctx, t, vm, func(vmDisk) bool { return req.DestroyDisks })
	}
	mig := req.Migration.UUID
	vm, found, err := migrationVM(ctx, t, req.Instance.UUID, mig)
	if errors.As(err, new(*DuplicateInstanceError)) {
		found, err = false, nil // the instance's VM is not this migration's: leave it
	}
	if err != nil {
		return err
	}
	if found && onHost(vm.Rec, t) {
		err := destroyGuest(ctx, t, vm, func(disk vmDisk) bool { return req.DestroyDisks && isCopyOf(disk, mig) })
		if err != nil {
			return err
		}
	}
	if !req.DestroyDisks {
		return nil
	}
	return withHostIf(t, discardCopies(ctx, t.endpoint(), mig, true))
}
