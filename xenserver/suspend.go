package xenserver

import (
	"context"
	"errors"
	"fmt"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/xenapi"
)

// Suspended moves (a cold migration that keeps the guest's running state,
// never built by Nova) move the VM itself: xapi makes no suspended VM but
// by VM.suspend (VM.create, VM.copy and VM.clone give halted VMs), so the
// suspended VM's disks and suspend image are copied to the destination
// SR, its VBDs and suspend_VDI are pointed at the copies and it is
// resumed on the destination host. That needs both hosts in one pool.
//
// The core calls these in place of its cold-move steps when
// MigrateDiskRequest.Suspend is set (MigrateSuspended) and when
// FinishMigrationRequest.DiskInfo.SuspendVDI is not empty
// (FinishSuspended); ConfirmSuspended removes the source disks.

// RoleSuspendSource is the xenflow_role of a source disk a suspended move
// left behind, until the move is confirmed.
const RoleSuspendSource = "suspend-source"

// userdeviceSuspend labels the suspend image among a move's disks.
const userdeviceSuspend = "suspend"

// SuspendRefusedError is a suspended move the driver refuses before
// touching anything: the flavor changes memory or vCPUs (the suspend image
// holds a domain of the old shape), the hosts are in different pools, or
// the guest does not run.
type SuspendRefusedError struct {
	InstanceUUID string
	Reason       string
}

func (e *SuspendRefusedError) Error() string {
	return fmt.Sprintf("xenserver: instance %s: cannot move suspended: %s", e.InstanceUUID, e.Reason)
}

// checkSuspendMove refuses a suspended move that cannot work.
func checkSuspendMove(req compute.MigrateDiskRequest, src, dst *target) error {
	refuse := func(reason string) error {
		return &SuspendRefusedError{InstanceUUID: req.Instance.UUID, Reason: reason}
	}
	old := req.Instance.Flavor
	if old == nil && req.Migration != nil {
		old = req.Migration.OldFlavor
	}
	switch {
	case old == nil || req.NewFlavor == nil:
		return refuse("the old and new flavors must be known")
	case old.MemoryMB != req.NewFlavor.MemoryMB:
		return refuse(fmt.Sprintf("the flavor changes memory from %d to %d MB", old.MemoryMB, req.NewFlavor.MemoryMB))
	case old.VCPUs != req.NewFlavor.VCPUs:
		return refuse(fmt.Sprintf("the flavor changes vCPUs from %d to %d", old.VCPUs, req.NewFlavor.VCPUs))
	case !src.samePool(dst):
		return refuse(fmt.Sprintf("%s and %s are in different pools: XenAPI cannot create a suspended VM", src, dst))
	case src.Name == dst.Name:
		return refuse("source and destination are the same host")
	}
	return nil
}

// MigrateSuspended is MigrateDiskAndPowerOff with req.Suspend: it suspends
// the guest (VM.suspend) and copies its disks and its suspend image to the
// destination SR with the source host's transport, tagged with the
// migration. The VM keeps claiming the instance. On a failure the copies
// are removed and the guest resumed where it was, and the error is a
// *compute.InstanceFaultRollback. A repeated call finds the suspended VM
// and copies again what is not complete.
func (d *Driver) MigrateSuspended(ctx context.Context, req compute.MigrateDiskRequest) (compute.DiskInfo, error) {
	if err := checkMigrateRequest(withoutSuspend(req)); err != nil {
		return compute.DiskInfo{}, &compute.InstanceFaultRollback{Err: err}
	}
	m, err := d.newMove(ctx, req)
	if err != nil {
		return compute.DiskInfo{}, &compute.InstanceFaultRollback{Err: err}
	}
	if m.done != nil {
		return compute.DiskInfo{}, &compute.InstanceFaultRollback{Err: errors.New("xenserver: the instance's VM is kept as -orig: not a suspended move")}
	}
	if err := checkSuspendMove(req, m.src, m.dst); err != nil {
		return compute.DiskInfo{}, &compute.InstanceFaultRollback{Err: err}
	}
	info, err := m.runSuspend(ctx)
	if err == nil {
		return info, nil
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
	defer cancel()
	if rerr := m.rollbackSuspend(rctx); rerr != nil {
		return compute.DiskInfo{}, fmt.Errorf("%w (rolling back failed: %v)", err, rerr)
	}
	return compute.DiskInfo{}, &compute.InstanceFaultRollback{Err: err}
}

func withoutSuspend(req compute.MigrateDiskRequest) compute.MigrateDiskRequest {
	req.Suspend = false
	return req
}

// runSuspend suspends the guest and copies its disks and suspend image.
func (m *move) runSuspend(ctx context.Context) (compute.DiskInfo, error) {
	c := m.src.Client
	state := m.vm.Rec.PowerState
	if !state.Is(xenapi.VMPowerStateRunning) && !state.Is(xenapi.VMPowerStateSuspended) {
		return compute.DiskInfo{}, &SuspendRefusedError{InstanceUUID: m.req.Instance.UUID, Reason: "the guest is " + string(state)}
	}
	if err := m.markSource(ctx); err != nil {
		return compute.DiskInfo{}, err
	}
	m.wasRunning = true
	disks, err := vmDisks(ctx, c, m.vm)
	if err != nil {
		return compute.DiskInfo{}, err
	}
	m.disks = disks
	if err := m.discardLeftovers(ctx); err != nil {
		return compute.DiskInfo{}, err
	}
	if state.Is(xenapi.VMPowerStateRunning) {
		m.offAt = m.d.cfg.Clock()
		if _, err := c.Call(ctx, "VM.suspend", string(m.vm.Ref)); err != nil {
			return compute.DiskInfo{}, fmt.Errorf("xenserver: suspend VM %s: %w", m.vm.Rec.UUID, err)
		}
	}
	m.poweredOff = true
	m.report("power-off", 40)
	vmRec, err := c.VM.GetRecord(ctx, m.vm.Ref)
	if err != nil {
		return compute.DiskInfo{}, fmt.Errorf("xenserver: suspend image of VM %s: %w", m.vm.Rec.UUID, err)
	}
	suspendVDI := vmRec.SuspendVDI
	tr, err := m.d.transport(m.src)
	if err != nil {
		return compute.DiskInfo{}, err
	}
	m.tr = tr
	m.info.Transport = tr.Name()
	for i, disk := range m.disks {
		if _, err := m.copyWhole(ctx, disk.VDI, disk.VDIRec, disk.VBDRec.Userdevice, diskLabel(m.req.Instance.UUID, i, disk)); err != nil {
			return compute.DiskInfo{}, err
		}
	}
	rec, err := c.VDI.GetRecord(ctx, suspendVDI)
	if err != nil {
		return compute.DiskInfo{}, fmt.Errorf("xenserver: suspend image %s: %w", suspendVDI, err)
	}
	img, err := m.copyWhole(ctx, suspendVDI, rec, userdeviceSuspend, m.req.Instance.UUID+"_suspend")
	if err != nil {
		return compute.DiskInfo{}, err
	}
	m.info.Disks = m.info.Disks[:len(m.info.Disks)-1]
	m.info.SuspendVDI = img.VDI
	m.info.Downtime = m.d.cfg.Clock().Sub(m.offAt)
	m.report("send-delta", 80)
	return m.info, nil
}

// copyWhole moves one VDI whole with the transport and records it.
func (m *move) copyWhole(ctx context.Context, vdi xenapi.VDIRef, rec xenapi.VDIRecord, userdevice, label string) (compute.Disk, error) {
	dm, err := m.tr.Begin(ctx, DiskMoveRequest{Source: m.src.endpoint(), Dest: m.dst.endpoint(),
		InstanceUUID: m.req.Instance.UUID, MigrationUUID: m.req.Migration.UUID, VDI: vdi, Record: rec,
		Userdevice: userdevice, Label: label, Limiter: m.limiter()})
	if err != nil {
		return compute.Disk{}, err
	}
	release, err := m.d.slots.acquire(ctx, m.src.Name, m.dst.Name)
	if err != nil {
		return compute.Disk{}, errors.Join(err, dm.Abort(ctx))
	}
	n, err := dm.Send(ctx, vdi, xenapi.NullRef)
	release()
	m.info.BytesSent += n
	if err != nil {
		return compute.Disk{}, errors.Join(err, dm.Abort(ctx))
	}
	disk, err := dm.Finish(ctx)
	if err != nil {
		return compute.Disk{}, errors.Join(err, dm.Abort(ctx))
	}
	m.info.Disks = append(m.info.Disks, disk)
	return disk, nil
}

// rollbackSuspend removes the copies and resumes the guest on the source.
func (m *move) rollbackSuspend(ctx context.Context) error {
	c := m.src.Client
	errs := []error{discardCopies(ctx, m.dst.endpoint(), m.req.Migration.UUID, true)}
	errs = append(errs, updateVMOtherConfig(ctx, c, m.vm.Ref, func(oc map[string]string) {
		delete(oc, KeyMigration)
		delete(oc, KeyPowerState)
	}))
	state, err := c.VM.GetPowerState(ctx, m.vm.Ref)
	if err == nil && state.Is(xenapi.VMPowerStateSuspended) {
		err = resumeOn(ctx, c, m.vm.Ref, m.src.Host)
	}
	return errors.Join(append(errs, err)...)
}

// FinishSuspended is FinishMigration of a suspended move, on the
// destination host: the instance's VM (suspended) gets its VBDs pointed at
// the copies (the source disks are tagged suspend-source, for
// ConfirmSuspended), its suspend_VDI set to the copied image
// (VM.set_suspend_VDI checks the content is the same) and is resumed on
// the destination (VM.resume_on). A repeated call finds what is done.
func (d *Driver) FinishSuspended(ctx context.Context, req compute.FinishMigrationRequest) error {
	if err := checkFinishRequest(req); err != nil {
		return err
	}
	if req.DiskInfo.SuspendVDI == "" {
		return &RequestError{Method: "FinishSuspended", Field: "DiskInfo.SuspendVDI"}
	}
	t, err := d.pool(ctx, req.Host)
	if err != nil {
		return err
	}
	vm, err := findVM(ctx, t.Client, req.Instance.UUID)
	if err != nil {
		return withHost(t, err)
	}
	if vm.Rec.PowerState.Is(xenapi.VMPowerStateRunning) && vm.Rec.ResidentOn == t.Host {
		return nil
	}
	disks, err := destDisks(ctx, t, req)
	if err != nil {
		return err
	}
	if err := repointDisks(ctx, t, vm, disks, req.Migration.UUID); err != nil {
		return err
	}
	c := t.Client
	img, err := c.VDI.GetByUUID(ctx, req.DiskInfo.SuspendVDI)
	if err != nil {
		return withHost(t, fmt.Errorf("suspend image copy %s: %w", req.DiskInfo.SuspendVDI, err))
	}
	if vm.Rec.SuspendVDI != img {
		if _, err := c.Call(ctx, "VM.set_suspend_VDI", string(vm.Ref), string(img)); err != nil {
			return withHost(t, fmt.Errorf("set the suspend image of VM %s: %w", vm.Rec.UUID, err))
		}
	}
	if _, err := c.Call(ctx, "VM.set_affinity", string(vm.Ref), string(t.Host)); err != nil {
		return withHost(t, fmt.Errorf("set the affinity of VM %s: %w", vm.Rec.UUID, err))
	}
	if err := resumeOn(ctx, c, vm.Ref, t.Host); err != nil && !badState(err, xenapi.VMPowerStateRunning) {
		return withHost(t, fmt.Errorf("resume VM %s on %s: %w", vm.Rec.UUID, t.Host, err))
	}
	return withHostIf(t, updateVMOtherConfig(ctx, c, vm.Ref, func(oc map[string]string) { delete(oc, KeyPowerState) }))
}

// repointDisks replaces each VBD of the VM whose VDI is not the copy at
// its userdevice with one to the copy, and tags the source disk.
func repointDisks(ctx context.Context, t *target, vm vmEntry, disks []destDisk, migration string) error {
	c := t.Client
	have, err := vmDisks(ctx, c, vm)
	if err != nil {
		return withHost(t, err)
	}
	for _, want := range disks {
		cur, ok := diskAt(have, want.Userdevice)
		if ok && cur.VDI == want.Ref {
			continue
		}
		if ok {
			err := updateVDIOtherConfig(ctx, c, cur.VDI, func(oc map[string]string) {
				oc[KeyMigration], oc[KeyRole] = migration, RoleSuspendSource
			})
			if err == nil {
				err = c.VBD.Destroy(ctx, cur.VBD)
			}
			if err != nil {
				return withHost(t, fmt.Errorf("detach VDI %s: %w", cur.VDIRec.UUID, err))
			}
		}
		_, err := c.VBD.Create(ctx, xenapi.VBDRecord{VM: vm.Ref, VDI: want.Ref, Userdevice: want.Userdevice,
			Bootable: want.Userdevice == deviceRoot, Mode: xenapi.VBDModeRW, Type: xenapi.VBDTypeDisk, Unpluggable: true})
		if err != nil {
			return withHost(t, fmt.Errorf("attach VDI %s at %s: %w", want.VDI, want.Userdevice, err))
		}
	}
	return nil
}

// ConfirmSuspended destroys the source disks a suspended move left (tagged
// suspend-source with the migration, attached to no VM) in req.Host's
// pool.
func (d *Driver) ConfirmSuspended(ctx context.Context, req compute.ConfirmMigrationRequest) error {
	if req.Migration == nil {
		return &RequestError{Method: "ConfirmSuspended", Field: "Migration"}
	}
	t, err := d.pool(ctx, req.Host)
	if err != nil {
		return err
	}
	return destroyTagged(ctx, t, req.Migration.UUID, RoleSuspendSource, func(v vdiEntry) bool { return len(v.Rec.VBDs) == 0 })
}

// resumeOn resumes a suspended VM on a host (VM.resume_on, not paused,
// not forced).
func resumeOn(ctx context.Context, c *xenapi.Client, vm xenapi.VMRef, host xenapi.HostRef) error {
	_, err := c.Call(ctx, "VM.resume_on", string(vm), string(host), false, false)
	return err
}
