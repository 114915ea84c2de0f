package xenserver

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/xenapi"
)

// other_config keys the driver reads and writes on VMs and VDIs.
const (
	// KeyNovaUUID tags the VM of an instance, as Nova tags it
	// (nova/virt/xenapi/vm_utils.py, create_vm).
	KeyNovaUUID = "nova_uuid"
	// KeyOrigOf holds the instance uuid on a source VM kept as
	// <name>-orig, in place of nova_uuid, so exactly one VM claims the
	// instance.
	KeyOrigOf = "xenflow_orig_of"
	// KeyMigration holds the uuid of the migration that made or kept a
	// VM or VDI, so a repeated call finds it.
	KeyMigration = "xenflow_migration"
	// KeyPowerState holds the source VM's power state when its move
	// began ("Running" or "Halted"), so a repeated call restores it.
	KeyPowerState = "xenflow_power_state"
	// KeyUserdevice holds, on a destination VDI, the userdevice of the
	// source disk it copies.
	KeyUserdevice = "xenflow_userdevice"
	// KeyRole says what a VDI the driver made is: RoleSnapshot or
	// RoleCopy.
	KeyRole = "xenflow_role"
	// KeySHA256 holds a destination VDI's digest of the bytes sent.
	KeySHA256 = "xenflow_sha256"
	// KeyComplete is "true" on a destination VDI whose copy finished.
	KeyComplete = "xenflow_complete"
)

// Values of KeyRole.
const (
	RoleSnapshot = "snapshot"
	RoleCopy     = "copy"
)

// origSuffix is appended to the source VM's name_label while it is kept
// for a revert (nova/virt/xenapi/vmops.py, _migrate_disk_resizing_up).
const origSuffix = "-orig"

// vmEntry is a VM found in a pool.
type vmEntry struct {
	Ref xenapi.VMRef
	Rec xenapi.VMRecord
}

// guestVMs returns the pool's VMs that can be guests: not templates, not
// snapshots, not control domains (nova/virt/xenapi/vm_utils.py, list_vms).
func guestVMs(ctx context.Context, c *xenapi.Client) (map[xenapi.VMRef]xenapi.VMRecord, error) {
	recs, err := c.VM.GetAllRecordsWhere(ctx, `field "is_a_template"="false" and field "is_control_domain"="false"`)
	if err != nil {
		return nil, fmt.Errorf("xenserver: list VMs: %w", err)
	}
	for ref, rec := range recs {
		if rec.IsASnapshot || rec.IsATemplate || rec.IsControlDomain {
			delete(recs, ref)
		}
	}
	return recs, nil
}

// findVMsBy returns the guest VMs whose other_config[key] is value, in a
// stable order.
func findVMsBy(ctx context.Context, c *xenapi.Client, match func(map[string]string) bool) ([]vmEntry, error) {
	recs, err := guestVMs(ctx, c)
	if err != nil {
		return nil, err
	}
	var out []vmEntry
	for ref, rec := range recs {
		if match(rec.OtherConfig) {
			out = append(out, vmEntry{Ref: ref, Rec: rec})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Rec.UUID < out[j].Rec.UUID })
	return out, nil
}

// findVM returns the one VM of the pool that claims the instance with
// other_config:nova_uuid. No VM is a *compute.NotFoundError; two or more
// are a *DuplicateInstanceError. A VM is never matched by name alone.
func findVM(ctx context.Context, c *xenapi.Client, instanceUUID string) (vmEntry, error) {
	return findOne(ctx, c, KeyNovaUUID, instanceUUID, func(oc map[string]string) bool {
		return oc[KeyNovaUUID] == instanceUUID
	})
}

// findOrigVM returns the VM kept as <name>-orig for the instance by the
// migration (other_config xenflow_orig_of and xenflow_migration).
func findOrigVM(ctx context.Context, c *xenapi.Client, instanceUUID, migrationUUID string) (vmEntry, error) {
	return findOne(ctx, c, KeyOrigOf, instanceUUID, func(oc map[string]string) bool {
		return oc[KeyOrigOf] == instanceUUID && oc[KeyMigration] == migrationUUID
	})
}

func findOne(ctx context.Context, c *xenapi.Client, key, instanceUUID string, match func(map[string]string) bool) (vmEntry, error) {
	if instanceUUID == "" {
		return vmEntry{}, &compute.NotFoundError{Kind: compute.KindInstance, ID: "(empty uuid)"}
	}
	vms, err := findVMsBy(ctx, c, match)
	if err != nil {
		return vmEntry{}, err
	}
	switch len(vms) {
	case 0:
		return vmEntry{}, &compute.NotFoundError{Kind: compute.KindInstance, ID: instanceUUID}
	case 1:
		return vms[0], nil
	}
	dup := &DuplicateInstanceError{InstanceUUID: instanceUUID, Key: key}
	for _, v := range vms {
		dup.VMs = append(dup.VMs, v.Rec.UUID)
	}
	return vmEntry{}, dup
}

// onHost reports whether a VM belongs to the target's XenServer host: it
// runs there, or it is halted with its affinity there (or no affinity).
func onHost(rec xenapi.VMRecord, t *target) bool {
	if !rec.ResidentOn.IsNull() {
		return rec.ResidentOn == t.Host
	}
	return rec.Affinity.IsNull() || rec.Affinity == t.Host
}

// instanceVM finds the instance's VM on a compute host: the pool's one VM
// claiming it, which must be on the target's host.
func (d *Driver) instanceVM(ctx context.Context, t *target, inst *compute.Instance) (vmEntry, error) {
	if inst == nil {
		return vmEntry{}, &compute.NotFoundError{Kind: compute.KindInstance, ID: "(nil instance)"}
	}
	vm, err := findVM(ctx, t.Client, inst.UUID)
	if err != nil {
		return vmEntry{}, withHost(t, err)
	}
	if !onHost(vm.Rec, t) {
		return vmEntry{}, withHost(t, &compute.NotFoundError{Kind: compute.KindInstance, ID: inst.UUID})
	}
	return vm, nil
}

// lookup resolves a compute host and finds the instance's VM on it.
func (d *Driver) lookup(ctx context.Context, host string, inst *compute.Instance) (*target, vmEntry, error) {
	t, err := d.pool(ctx, host)
	if err != nil {
		return nil, vmEntry{}, err
	}
	vm, err := d.instanceVM(ctx, t, inst)
	return t, vm, err
}

// withHost names the compute host and pool in an error.
func withHost(t *target, err error) error {
	if dup := (*DuplicateInstanceError)(nil); errors.As(err, &dup) && dup.Pool == "" {
		dup.Pool = t.Pool
	}
	return fmt.Errorf("xenserver: compute host %q (pool %q): %w", t.Name, t.Pool, err)
}

// powerOff takes a VM to Halted: a clean shutdown first when clean,
// waited for at most timeout, then a hard one. A VM already halted is left
// alone.
func powerOff(ctx context.Context, c *xenapi.Client, vm xenapi.VMRef, clean bool, timeout time.Duration) error {
	state, err := c.VM.GetPowerState(ctx, vm)
	if err != nil {
		return fmt.Errorf("xenserver: power state of VM %s: %w", vm, err)
	}
	switch {
	case state.Is(xenapi.VMPowerStateHalted):
		return nil
	case state.Is(xenapi.VMPowerStateSuspended):
		// A suspended VM goes to Halted by hard_shutdown only.
		clean = false
	}
	if clean && timeout > 0 && cleanShutdown(ctx, c, vm, timeout) {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	err = c.VM.HardShutdown(ctx, vm)
	if badState(err, xenapi.VMPowerStateHalted) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("xenserver: hard shutdown of VM %s: %w", vm, err)
	}
	return nil
}

// cleanShutdown asks the guest to shut down and waits at most timeout;
// it reports whether the VM is halted.
func cleanShutdown(ctx context.Context, c *xenapi.Client, vm xenapi.VMRef, timeout time.Duration) bool {
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	task, err := c.Async.VM.CleanShutdown(tctx, vm)
	if err == nil {
		_, err = c.WaitTask(tctx, task, nil)
	}
	if err == nil || badState(err, xenapi.VMPowerStateHalted) {
		return true
	}
	state, serr := c.VM.GetPowerState(ctx, vm)
	return serr == nil && state.Is(xenapi.VMPowerStateHalted)
}

// startOn takes a VM to Running on a host: VM.start_on from Halted,
// VM.resume_on from Suspended (a suspended move's source or destination).
// A VM already running is left alone.
func startOn(ctx context.Context, c *xenapi.Client, vm xenapi.VMRef, host xenapi.HostRef) error {
	state, err := c.VM.GetPowerState(ctx, vm)
	if err != nil {
		return fmt.Errorf("xenserver: power state of VM %s: %w", vm, err)
	}
	verb := "start"
	switch {
	case state.Is(xenapi.VMPowerStateRunning):
		return nil
	case state.Is(xenapi.VMPowerStateSuspended):
		verb = "resume"
		err = resumeOn(ctx, c, vm, host)
	default:
		err = c.VM.StartOn(ctx, vm, host, false, false)
	}
	if badState(err, xenapi.VMPowerStateRunning) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("xenserver: %s VM %s on host %s: %w", verb, vm, host, err)
	}
	return nil
}

// badState reports whether err is VM_BAD_POWER_STATE with the VM already
// in state.
func badState(err error, state xenapi.VMPowerState) bool {
	f, ok := xenapi.AsFailure(err)
	if !ok {
		return false
	}
	_, _, actual, ok := f.VMBadPowerState()
	return ok && actual.Is(state)
}

// vmDisk is one disk of a VM: its VBD and VDI.
type vmDisk struct {
	VBD    xenapi.VBDRef
	VBDRec xenapi.VBDRecord
	VDI    xenapi.VDIRef
	VDIRec xenapi.VDIRecord
}

// userdeviceNumber orders disks by userdevice.
func (d vmDisk) userdeviceNumber() int { return deviceNumber(d.VBDRec.Userdevice) }

// vmDisks returns a VM's disks (VBDs of type Disk with a VDI), by
// userdevice.
func vmDisks(ctx context.Context, c *xenapi.Client, vm vmEntry) ([]vmDisk, error) {
	var out []vmDisk
	for _, vbd := range vm.Rec.VBDs {
		rec, err := c.VBD.GetRecord(ctx, vbd)
		if err != nil {
			return nil, fmt.Errorf("xenserver: VBD %s of VM %s: %w", vbd, vm.Rec.UUID, err)
		}
		if rec.Empty || rec.VDI.IsNull() || rec.Type == xenapi.VBDTypeCD {
			continue
		}
		vdi, err := c.VDI.GetRecord(ctx, rec.VDI)
		if err != nil {
			return nil, fmt.Errorf("xenserver: VDI %s of VM %s: %w", rec.VDI, vm.Rec.UUID, err)
		}
		out = append(out, vmDisk{VBD: vbd, VBDRec: rec, VDI: rec.VDI, VDIRec: vdi})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].userdeviceNumber() < out[j].userdeviceNumber() })
	return out, nil
}

// updateVMOtherConfig rewrites a VM's other_config in one call
// (VM.set_other_config), so tags move together or not at all.
func updateVMOtherConfig(ctx context.Context, c *xenapi.Client, vm xenapi.VMRef, edit func(map[string]string)) error {
	return updateOtherConfig(ctx, "VM", vm, c.VM.GetOtherConfig, c.VM.SetOtherConfig, edit)
}

// updateVDIOtherConfig rewrites a VDI's other_config in one call.
func updateVDIOtherConfig(ctx context.Context, c *xenapi.Client, vdi xenapi.VDIRef, edit func(map[string]string)) error {
	return updateOtherConfig(ctx, "VDI", vdi, c.VDI.GetOtherConfig, c.VDI.SetOtherConfig, edit)
}

// updateOtherConfig reads an object's other_config, edits it and writes it
// back whole.
func updateOtherConfig[R ~string](ctx context.Context, class string, ref R,
	get func(context.Context, R) (map[string]string, error), set func(context.Context, R, map[string]string) error,
	edit func(map[string]string)) error {
	oc, err := get(ctx, ref)
	if err != nil {
		return fmt.Errorf("xenserver: other_config of %s %s: %w", class, ref, err)
	}
	if oc == nil {
		oc = map[string]string{}
	}
	edit(oc)
	if err := set(ctx, ref, oc); err != nil {
		return fmt.Errorf("xenserver: set other_config of %s %s: %w", class, ref, err)
	}
	return nil
}
