package xenserver

import (
	"context"
	"fmt"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/xenapi"
)

// Suspended moves (a cold migration that keeps the guest's running state,
// never built by Nova) go as xapi's own VM.migrate_send moves a suspended
// VM to another pool (xapi_vm_migrate.ml, inter_pool_metadata_transfer):
// the disks and the suspend image are copied, then the VM's metadata is
// exported from the source pool (/export_metadata) and imported into the
// destination's (/import_metadata) with a VDI map onto the copies, which
// makes a Suspended VM there; XenAPI has no other way to make one
// (VM.create, VM.copy and VM.clone give halted VMs). The same path serves
// two hosts of one pool and two pools.
//
// The source is kept as <name>-orig exactly as a cold move keeps it, so
// ConfirmMigration, FinishRevertMigration, Destroy and CleanupMigration
// are a cold move's: a confirm hard-shuts the suspended -orig down (xapi
// drops its suspend image) and destroys it with its disks; a revert
// resumes it.

// userdeviceSuspend labels the suspend image among a move's disks.
const userdeviceSuspend = "suspend"

// SuspendRefusedError is a suspended move the driver refuses before
// touching anything: the flavor changes memory or vCPUs (the suspend image
// holds a domain of the old shape) or the guest does not run.
type SuspendRefusedError struct {
	InstanceUUID string
	Reason       string
}

func (e *SuspendRefusedError) Error() string {
	return fmt.Sprintf("xenserver: instance %s: cannot move suspended: %s", e.InstanceUUID, e.Reason)
}

// checkSuspendMove refuses a suspended move that cannot work.
func checkSuspendMove(req compute.MigrateDiskRequest) error {
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
	}
	return nil
}

// MigrateSuspended is MigrateDiskAndPowerOff with req.Suspend: it suspends
// the guest (VM.suspend), copies its disks and its suspend image to the
// destination SR with the source host's transport, tagged with the
// migration, and keeps the source VM as <name>-orig, as a cold move does.
// On a failure the copies are removed and the guest resumed where it
// was, and the error is a *compute.InstanceFaultRollback. A repeated call
// finds the suspended VM and copies again what is not complete, or finds
// the -orig and answers its DiskInfo.
func (d *Driver) MigrateSuspended(ctx context.Context, req compute.MigrateDiskRequest) (compute.DiskInfo, error) {
	if err := checkMigrateRequest(withoutSuspend(req)); err != nil {
		return compute.DiskInfo{}, &compute.InstanceFaultRollback{Err: err}
	}
	m, err := d.newMove(ctx, req)
	if err != nil {
		return compute.DiskInfo{}, &compute.InstanceFaultRollback{Err: err}
	}
	if m.done != nil {
		return d.migratedDiskInfo(ctx, m)
	}
	if err := checkSuspendMove(req); err != nil {
		return compute.DiskInfo{}, &compute.InstanceFaultRollback{Err: err}
	}
	info, err := m.runSuspend(ctx)
	if err == nil {
		return info, nil
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
	defer cancel()
	if rerr := m.rollback(rctx); rerr != nil {
		return compute.DiskInfo{}, fmt.Errorf("%w (rolling back failed: %v)", err, rerr)
	}
	return compute.DiskInfo{}, &compute.InstanceFaultRollback{Err: err}
}

func withoutSuspend(req compute.MigrateDiskRequest) compute.MigrateDiskRequest {
	req.Suspend = false
	return req
}

// runSuspend suspends the guest, copies its disks and suspend image and
// keeps the source as <name>-orig.
func (m *move) runSuspend(ctx context.Context) (compute.DiskInfo, error) {
	c := m.src.Client
	if err := m.prepareSuspend(ctx); err != nil {
		return compute.DiskInfo{}, err
	}
	if m.vm.Rec.PowerState.Is(xenapi.VMPowerStateRunning) {
		m.offAt = m.d.cfg.Clock()
		if _, err := c.Call(ctx, "VM.suspend", string(m.vm.Ref)); err != nil {
			return compute.DiskInfo{}, fmt.Errorf("xenserver: suspend VM %s: %w", m.vm.Rec.UUID, err)
		}
	}
	m.poweredOff = true
	m.report("power-off", 40)
	rec, err := c.VM.GetRecord(ctx, m.vm.Ref)
	if err != nil {
		return compute.DiskInfo{}, fmt.Errorf("xenserver: suspend image of VM %s: %w", m.vm.Rec.UUID, err)
	}
	if err := m.copySuspended(ctx, rec.SuspendVDI); err != nil {
		return compute.DiskInfo{}, err
	}
	m.info.Downtime = m.d.cfg.Clock().Sub(m.offAt)
	m.report("send-delta", 70)
	if err := m.keepOrig(ctx); err != nil {
		return compute.DiskInfo{}, err
	}
	m.report("finish", 80)
	return m.info, nil
}

// prepareSuspend checks the guest runs (or an earlier call suspended it),
// tags it with the migration and reads its disks and network interfaces.
func (m *move) prepareSuspend(ctx context.Context) error {
	state := m.vm.Rec.PowerState
	if !state.Is(xenapi.VMPowerStateRunning) && !state.Is(xenapi.VMPowerStateSuspended) {
		return &SuspendRefusedError{InstanceUUID: m.req.Instance.UUID, Reason: "the guest is " + string(state)}
	}
	if err := m.markSource(ctx); err != nil {
		return err
	}
	m.wasRunning = true
	disks, err := vmDisks(ctx, m.src.Client, m.vm)
	if err != nil {
		return err
	}
	if len(disks) == 0 {
		return &NoDiskError{ComputeHost: m.src.Name, VDI: m.vm.Rec.UUID, Reason: "the VM has no disk"}
	}
	m.disks = disks
	if m.vifs, err = sourceVIFs(ctx, m.src.Client, m.vm); err != nil {
		return err
	}
	return m.discardLeftovers(ctx)
}

// copySuspended copies every disk, then the suspend image, with the
// transport; the root copy carries the VM's settings.
func (m *move) copySuspended(ctx context.Context, suspendVDI xenapi.VDIRef) error {
	c := m.src.Client
	tr, err := m.d.transport(m.src)
	if err != nil {
		return err
	}
	m.tr = tr
	m.info.Transport = tr.Name()
	for i, disk := range m.disks {
		copied, err := m.copyWhole(ctx, tr, disk.VDI, disk.VDIRec, disk.VBDRec.Userdevice, diskLabel(m.req.Instance.UUID, i, disk))
		if err != nil {
			return err
		}
		if disk.VBDRec.Userdevice == deviceRoot {
			if err := m.recordTemplate(ctx, copied.VDI); err != nil {
				return err
			}
		}
	}
	rec, err := c.VDI.GetRecord(ctx, suspendVDI)
	if err != nil {
		return fmt.Errorf("xenserver: suspend image %s: %w", suspendVDI, err)
	}
	// The suspend image is one VHD, no chain: it goes over XAPI whatever
	// the host's transport (the dom0 chain layout names disks only).
	img, err := m.copyWhole(ctx, m.d.transports[TransportXAPI], suspendVDI, rec, userdeviceSuspend, m.req.Instance.UUID+"_suspend")
	if err != nil {
		return err
	}
	m.info.Disks = m.info.Disks[:len(m.info.Disks)-1]
	m.info.SuspendVDI = img.VDI
	return nil
}

// copyWhole moves one VDI whole with a transport and records it; a
// rollback aborts the move (m.moves), which removes the copy.
func (m *move) copyWhole(ctx context.Context, tr Transport, vdi xenapi.VDIRef, rec xenapi.VDIRecord, userdevice, label string) (compute.Disk, error) {
	dm, err := tr.Begin(ctx, DiskMoveRequest{Source: m.src.endpoint(), Dest: m.dst.endpoint(),
		InstanceUUID: m.req.Instance.UUID, MigrationUUID: m.req.Migration.UUID, VDI: vdi, Record: rec,
		Userdevice: userdevice, Label: label, Limiter: m.limiter()})
	if err != nil {
		return compute.Disk{}, err
	}
	m.moves = append(m.moves, dm)
	release, err := m.d.slots.acquire(ctx, m.src.Name, m.dst.Name)
	if err != nil {
		return compute.Disk{}, err
	}
	n, err := dm.Send(ctx, vdi, xenapi.NullRef)
	release()
	m.info.BytesSent += n
	if err != nil {
		return compute.Disk{}, err
	}
	disk, err := dm.Finish(ctx)
	if err != nil {
		return compute.Disk{}, err
	}
	m.info.Disks = append(m.info.Disks, disk)
	return disk, nil
}

// FinishSuspended is FinishMigration of a suspended move, on the
// destination host (req.Host): it checks the copies, imports the -orig
// VM's metadata from the source pool into the destination pool with its
// VBDs and suspend_VDI mapped onto the copies (suspendedImport), gives the
// new VM the source's network interfaces with their MACs and resumes it
// on the destination host (VM.resume_on). The guest resumes whatever
// req.PowerOn says: it ran before the move. A repeated call finds the VM
// the import made (nova_uuid and the migration) and finishes what is
// missing.
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
	vm, found, err := migrationVM(ctx, t, req.Instance.UUID, req.Migration.UUID)
	if err != nil {
		return err
	}
	if found && vm.Rec.PowerState.Is(xenapi.VMPowerStateRunning) && vm.Rec.ResidentOn == t.Host {
		return withHostIf(t, updateVMOtherConfig(ctx, t.Client, vm.Ref, func(oc map[string]string) { delete(oc, KeyPowerState) }))
	}
	disks, err := destDisks(ctx, t, req)
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
	if !found {
		if vm, err = d.suspendedImport(ctx, t, req, disks); err != nil {
			return err
		}
	}
	return d.resumeImported(ctx, t, vm, tpl, networks)
}

// resumeImported plugs the VM's network interfaces, pins it to the
// destination host and resumes it there.
func (d *Driver) resumeImported(ctx context.Context, t *target, vm vmEntry, tpl vmTemplate, networks []string) error {
	c := t.Client
	if err := plugVIFs(ctx, t, vm.Ref, tpl.VIFs, networks); err != nil {
		return err
	}
	if _, err := c.Call(ctx, "VM.set_affinity", string(vm.Ref), string(t.Host)); err != nil {
		return withHost(t, fmt.Errorf("set the affinity of VM %s: %w", vm.Rec.UUID, err))
	}
	if err := startOn(ctx, c, vm.Ref, t.Host); err != nil {
		return withHost(t, err)
	}
	return withHostIf(t, updateVMOtherConfig(ctx, c, vm.Ref, func(oc map[string]string) { delete(oc, KeyPowerState) }))
}

// suspendedImport exports the suspended -orig VM's metadata from the
// source pool, turns it into the destination VM's (suspendedMetadata) and
// imports it into the destination pool: xapi makes the VM Suspended, with
// the copies attached. xapi removes what a failed import made.
func (d *Driver) suspendedImport(ctx context.Context, t *target, req compute.FinishMigrationRequest, disks []destDisk) (vmEntry, error) {
	src, err := d.pool(ctx, req.Migration.SourceCompute)
	if err != nil {
		return vmEntry{}, err
	}
	orig, err := findOrigVM(ctx, src.Client, req.Instance.UUID, req.Migration.UUID)
	if err != nil {
		return vmEntry{}, withHost(src, fmt.Errorf("the suspended source of migration %s: %w", req.Migration.UUID, err))
	}
	if !orig.Rec.PowerState.Is(xenapi.VMPowerStateSuspended) {
		return vmEntry{}, withHost(src, fmt.Errorf("the source VM %s of migration %s is %s, not suspended",
			orig.Rec.UUID, req.Migration.UUID, orig.Rec.PowerState))
	}
	md, err := src.Client.ExportMetadata(ctx, xenapi.ExportMetadataRequest{VM: orig.Rec.UUID, ExcludedDeviceTypes: []string{"VIF"}})
	if err != nil {
		return vmEntry{}, withHost(src, err)
	}
	vdiMap, err := suspendedMetadata(md, req, disks)
	if err != nil {
		return vmEntry{}, withHost(t, err)
	}
	refs, err := t.Client.ImportMetadata(ctx, md, xenapi.ImportMetadataRequest{VDIMap: vdiMap})
	if err != nil {
		return vmEntry{}, withHost(t, fmt.Errorf("import the suspended VM of instance %s: %w", req.Instance.UUID, err))
	}
	if len(refs) != 1 {
		return vmEntry{}, withHost(t, fmt.Errorf("importing the suspended VM of instance %s made %d VMs, not one", req.Instance.UUID, len(refs)))
	}
	rec, err := t.Client.VM.GetRecord(ctx, refs[0])
	if err != nil {
		return vmEntry{}, withHost(t, err)
	}
	return vmEntry{Ref: refs[0], Rec: rec}, nil
}

// resumeOn resumes a suspended VM on a host (VM.resume_on, not paused,
// not forced).
func resumeOn(ctx context.Context, c *xenapi.Client, vm xenapi.VMRef, host xenapi.HostRef) error {
	_, err := c.Call(ctx, "VM.resume_on", string(vm), string(host), false, false)
	return err
}
