package xenserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/xenapi"
)

// More other_config keys of a migration.
const (
	// KeyDiskInfo holds, on the kept <name>-orig VM, the DiskInfo its
	// move returned (JSON), so a repeated call returns it again.
	KeyDiskInfo = "xenflow_disk_info"
	// KeyVMTemplate holds, on the destination root disk, the source VM's
	// boot settings (JSON) for FinishMigration's VM.create.
	KeyVMTemplate = "xenflow_vm"
)

// rollbackTimeout bounds putting the source back after a failure, which
// runs even when the caller's context was cancelled.
const rollbackTimeout = 2 * time.Minute

// progressEvery is how many bytes a Send moves between progress reports.
const progressEvery = 32 << 20

// MigrateDiskAndPowerOff sends the instance's disks from req.Host to
// req.DestHost and powers the guest off, keeping the source VM as
// <name>-orig (nova/virt/xenapi/vmops.py, migrate_disk_and_power_off). See
// the package documentation for the steps. Every failure after which the
// source is as it was is a *compute.InstanceFaultRollback. With
// req.Suspend the guest moves suspended (MigrateSuspended).
func (d *Driver) MigrateDiskAndPowerOff(ctx context.Context, req compute.MigrateDiskRequest) (compute.DiskInfo, error) {
	if req.Suspend {
		return d.MigrateSuspended(ctx, req)
	}
	if err := checkMigrateRequest(req); err != nil {
		return compute.DiskInfo{}, &compute.InstanceFaultRollback{Err: err}
	}
	m, err := d.newMove(ctx, req)
	if err != nil {
		return compute.DiskInfo{}, &compute.InstanceFaultRollback{Err: err}
	}
	if m.done != nil {
		return d.migratedDiskInfo(ctx, m)
	}
	info, err := m.run(ctx)
	if err == nil {
		return info, nil
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
	defer cancel()
	if rerr := m.rollback(rctx); rerr != nil {
		d.log.Error("xenserver: rolling back a move failed", "instance", req.Instance.UUID, "err", rerr)
		return compute.DiskInfo{}, fmt.Errorf("%w (rolling back failed: %v)", err, rerr)
	}
	return compute.DiskInfo{}, &compute.InstanceFaultRollback{Err: err}
}

// need is a field a request must have.
type need struct {
	field   string
	missing bool
}

// require returns a *RequestError for the first missing field.
func require(method string, needs ...need) error {
	for _, n := range needs {
		if n.missing {
			return &RequestError{Method: method, Field: n.field}
		}
	}
	return nil
}

func checkMigrateRequest(req compute.MigrateDiskRequest) error {
	const method = "MigrateDiskAndPowerOff"
	err := require(method, need{"Instance", req.Instance == nil},
		need{"Migration", req.Migration == nil || req.Migration.UUID == ""}, need{"NewFlavor", req.NewFlavor == nil})
	switch {
	case err != nil:
		return err
	case req.Host == req.DestHost:
		return fmt.Errorf("xenserver: %s: source and destination are both %q (UnableToMigrateToSelf)", method, req.Host)
	}
	old := req.Instance.Flavor
	if old == nil {
		old = req.Migration.OldFlavor
	}
	return checkResize(req.Instance.UUID, old, req.NewFlavor)
}

// checkResize refuses what the driver cannot do to disks: shrink the root
// or the ephemeral disk, or take root_gb to 0 from non-zero
// (vmops.py, _ensure_not_resize_down_ephemeral and migrate_disk_and_power_off).
// Memory and vCPUs may shrink.
func checkResize(instance string, old, new *compute.Flavor) error {
	if old == nil {
		return nil
	}
	if old.RootGB > 0 && new.RootGB == 0 || new.RootGB > 0 && new.RootGB < old.RootGB {
		return &ResizeRefusedError{InstanceUUID: instance, Field: "root_gb", Old: old.RootGB, New: new.RootGB}
	}
	if new.EphemeralGB < old.EphemeralGB {
		return &ResizeRefusedError{InstanceUUID: instance, Field: "ephemeral_gb", Old: old.EphemeralGB, New: new.EphemeralGB}
	}
	return nil
}

// move is one MigrateDiskAndPowerOff in progress.
type move struct {
	d        *Driver
	req      compute.MigrateDiskRequest
	src, dst *target
	vm       vmEntry
	// done is the kept <name>-orig VM when an earlier call finished.
	done *vmEntry

	marked     bool // the source carries the migration's tags
	wasRunning bool
	renamed    bool
	tr         Transport
	disks      []vmDisk
	vifs       []vifTemplate
	moves      []DiskMove
	snaps      []xenapi.VDIRef // the last snapshot of each disk
	leafSize   []int64         // each disk's leaf size just after it
	info       compute.DiskInfo
	offAt      time.Time
	percent    int
	step       string
	poweredOff bool
}

// newMove resolves both hosts and the source VM; a VM already kept as
// <name>-orig by this migration means an earlier call finished.
func (d *Driver) newMove(ctx context.Context, req compute.MigrateDiskRequest) (*move, error) {
	src, err := d.pool(ctx, req.Host)
	if err != nil {
		return nil, err
	}
	dst, err := d.pool(ctx, req.DestHost)
	if err != nil {
		return nil, err
	}
	m := &move{d: d, req: req, src: src, dst: dst}
	vm, err := d.instanceVM(ctx, src, req.Instance)
	if errors.Is(err, compute.ErrNotFound) {
		orig, oerr := findOrigVM(ctx, src.Client, req.Instance.UUID, req.Migration.UUID)
		if oerr != nil {
			return nil, err
		}
		m.done = &orig
		return m, nil
	}
	if err != nil {
		return nil, err
	}
	m.vm = vm
	return m, nil
}

// run does the move: tag the source, drop what an interrupted earlier
// call left, then copy (or clone, on a shared SR) and keep the source.
func (m *move) run(ctx context.Context) (compute.DiskInfo, error) {
	if err := m.markSource(ctx); err != nil {
		return compute.DiskInfo{}, err
	}
	disks, err := vmDisks(ctx, m.src.Client, m.vm)
	if err != nil {
		return compute.DiskInfo{}, err
	}
	if len(disks) == 0 {
		return compute.DiskInfo{}, &NoDiskError{ComputeHost: m.src.Name, VDI: m.vm.Rec.UUID, Reason: "the VM has no disk"}
	}
	m.disks = disks
	if m.vifs, err = sourceVIFs(ctx, m.src.Client, m.vm); err != nil {
		return compute.DiskInfo{}, err
	}
	m.snaps = make([]xenapi.VDIRef, len(disks))
	m.leafSize = make([]int64, len(disks))
	if err := m.discardLeftovers(ctx); err != nil {
		return compute.DiskInfo{}, err
	}
	if m.shared() {
		err = m.runShared(ctx)
	} else {
		err = m.runCopy(ctx)
	}
	if err != nil {
		return compute.DiskInfo{}, err
	}
	if err := m.keepOrig(ctx); err != nil {
		return compute.DiskInfo{}, err
	}
	m.report("finish", 80)
	return m.info, nil
}

// markSource tags the source VM with the migration and the power state it
// had, or reads them back when an earlier call tagged it.
func (m *move) markSource(ctx context.Context) error {
	oc := m.vm.Rec.OtherConfig
	if oc[KeyMigration] == m.req.Migration.UUID && oc[KeyPowerState] != "" {
		m.marked = true
		m.wasRunning = oc[KeyPowerState] == string(xenapi.VMPowerStateRunning)
		return nil
	}
	m.wasRunning = m.vm.Rec.PowerState.Is(xenapi.VMPowerStateRunning)
	state := string(xenapi.VMPowerStateHalted)
	if m.wasRunning {
		state = string(xenapi.VMPowerStateRunning)
	}
	err := updateVMOtherConfig(ctx, m.src.Client, m.vm.Ref, func(oc map[string]string) {
		oc[KeyMigration] = m.req.Migration.UUID
		oc[KeyPowerState] = state
	})
	if err != nil {
		return err
	}
	m.marked = true
	return nil
}

// discardLeftovers removes the snapshots and copies an interrupted earlier
// call of this migration made; none of them is the only copy of anything.
// A complete copy goes too: until the source is kept as -orig no call has
// handed out a DiskInfo naming it, and a call that finds the -orig answers
// without moving (newMove), so nothing needs it.
func (m *move) discardLeftovers(ctx context.Context) error {
	mig := m.req.Migration.UUID
	errs := []error{discardSnapshots(ctx, m.src.Client, mig, migrationSnapshot(mig))}
	if !m.shared() {
		if tr, err := m.d.transport(m.src); err != nil {
			errs = append(errs, err)
		} else {
			errs = append(errs, tr.Discard(ctx, m.dst.endpoint(), mig))
		}
	}
	errs = append(errs, discardCopies(ctx, m.dst.endpoint(), mig, true))
	return errors.Join(errs...)
}

// shared reports whether the destination sees the source's disks: one
// pool, and every disk on the destination's SR.
func (m *move) shared() bool {
	if !m.src.samePool(m.dst) {
		return false
	}
	for _, d := range m.disks {
		if d.VDIRec.SR != m.dst.SR {
			return false
		}
	}
	return true
}

// report sends progress to the request's ProgressFunc.
func (m *move) report(step string, percent int) {
	m.step, m.percent = step, percent
	if m.req.Progress != nil {
		m.req.Progress(compute.Progress{Percent: percent, Step: step, BytesSent: m.info.BytesSent,
			BytesSentRunning: m.info.BytesSentRunning, PoweredOff: m.poweredOff})
	}
}

// powerOff stops the source guest (clean, then hard after the timeout).
func (m *move) powerOff(ctx context.Context) error {
	timeout := m.req.ShutdownTimeout
	if timeout <= 0 {
		timeout = m.d.cfg.Migrate.ShutdownTimeout
	}
	m.offAt = m.d.cfg.Clock()
	if err := powerOff(ctx, m.src.Client, m.vm.Ref, m.req.CleanShutdown, timeout); err != nil {
		return err
	}
	m.poweredOff = true
	m.report("power-off", 60)
	return nil
}

// runShared moves nothing: it powers the guest off and clones each disk on
// the shared SR (copy-on-write), tagged as this migration's copies.
func (m *move) runShared(ctx context.Context) error {
	if err := m.powerOff(ctx); err != nil {
		return err
	}
	c := m.src.Client
	m.info.Transport = TransportShared
	for i, disk := range m.disks {
		clone, err := c.VDI.Clone(ctx, disk.VDI, nil)
		if err != nil {
			return fmt.Errorf("xenserver: clone VDI %s: %w", disk.VDIRec.UUID, err)
		}
		rec, err := c.VDI.GetRecord(ctx, clone)
		if err != nil {
			return errors.Join(fmt.Errorf("xenserver: clone of VDI %s: %w", disk.VDIRec.UUID, err), destroyVDI(ctx, c, clone))
		}
		cd := compute.Disk{Label: diskLabel(m.req.Instance.UUID, i, disk), Userdevice: disk.VBDRec.Userdevice,
			VDI: rec.UUID, VirtualSize: disk.VDIRec.VirtualSize}
		err = updateVDIOtherConfig(ctx, c, clone, func(oc map[string]string) {
			oc[KeyMigration], oc[KeyUserdevice], oc[KeyRole], oc[KeyComplete] = m.req.Migration.UUID, disk.VBDRec.Userdevice, RoleCopy, "true"
			if disk.VBDRec.Userdevice == "0" {
				oc[KeyVMTemplate] = templateOf(m.vm.Rec, m.vifs)
			}
		})
		if err != nil {
			return errors.Join(err, destroyVDI(ctx, c, clone))
		}
		m.info.Disks = append(m.info.Disks, cd)
	}
	m.info.Downtime = m.d.cfg.Clock().Sub(m.offAt)
	return nil
}

// diskLabel is Nova's chain label: the instance uuid for the root disk,
// <uuid>_ephemeral_<n> for the others.
func diskLabel(instance string, i int, disk vmDisk) string {
	if disk.VBDRec.Userdevice == "0" {
		return instance
	}
	return fmt.Sprintf("%s_ephemeral_%d", instance, i)
}

// runCopy moves the disks with the source host's transport: whole
// snapshots and pre-copy deltas while the guest runs, the last delta
// after the power-off.
func (m *move) runCopy(ctx context.Context) error {
	tr, err := m.d.transport(m.src)
	if err != nil {
		return err
	}
	m.tr = tr
	m.info.Transport = tr.Name()
	if err := m.checkSpace(ctx); err != nil {
		return err
	}
	if err := m.begin(ctx); err != nil {
		return err
	}
	state, err := m.src.Client.VM.GetPowerState(ctx, m.vm.Ref)
	if err != nil {
		return fmt.Errorf("xenserver: power state of VM %s: %w", m.vm.Rec.UUID, err)
	}
	if state.Is(xenapi.VMPowerStateRunning) {
		if err := m.preCopy(ctx); err != nil {
			return err
		}
	}
	if err := m.powerOff(ctx); err != nil {
		return err
	}
	for i, disk := range m.disks {
		if err := m.send(ctx, i, disk.VDI, m.snaps[i], false); err != nil {
			return err
		}
	}
	m.report("send-delta", 80)
	if err := m.destroySnapshots(ctx); err != nil {
		return err
	}
	return m.finish(ctx)
}

// checkSpace refuses, before anything moves, disks whose virtual sizes
// together exceed the destination SR's free space.
func (m *move) checkSpace(ctx context.Context) error {
	var need int64
	var names []string
	for _, d := range m.disks {
		need += d.VDIRec.VirtualSize
		names = append(names, d.VDIRec.UUID)
	}
	return checkFree(ctx, m.dst.endpoint(), strings.Join(names, "+"), need)
}

// begin starts a move per disk.
func (m *move) begin(ctx context.Context) error {
	for i, disk := range m.disks {
		dm, err := m.tr.Begin(ctx, DiskMoveRequest{
			Source: m.src.endpoint(), Dest: m.dst.endpoint(),
			InstanceUUID: m.req.Instance.UUID, MigrationUUID: m.req.Migration.UUID,
			VDI: disk.VDI, Record: disk.VDIRec, Userdevice: disk.VBDRec.Userdevice,
			Label: diskLabel(m.req.Instance.UUID, i, disk), Limiter: m.limiter(),
			Progress: m.sendProgress(),
		})
		if err != nil {
			return err
		}
		m.moves = append(m.moves, dm)
	}
	return nil
}

func (m *move) limiter() *RateLimiter {
	if m.d.cfg.Transfer.BandwidthLimit <= 0 {
		return nil
	}
	return NewRateLimiter(m.d.cfg.Transfer.BandwidthLimit, m.d.cfg.Clock)
}

// sendProgress reports a Send in progress every progressEvery bytes.
func (m *move) sendProgress() func(int64) {
	var last int64
	return func(n int64) {
		if n < last {
			last = 0 // a new Send
		}
		if n-last >= progressEvery && m.req.Progress != nil {
			last = n
			p := compute.Progress{Percent: m.percent, Step: m.step, BytesSent: m.info.BytesSent + n,
				BytesSentRunning: m.info.BytesSentRunning, PoweredOff: m.poweredOff}
			if !m.poweredOff {
				p.BytesSentRunning += n
			}
			m.req.Progress(p)
		}
	}
}

// preCopy sends a snapshot of each disk whole while the guest runs, then,
// while the guest wrote more than the threshold since the last snapshot,
// a new snapshot's delta (bounded rounds).
func (m *move) preCopy(ctx context.Context) error {
	if err := m.snapshotAll(ctx); err != nil {
		return err
	}
	m.report("snapshot", 20)
	for i := range m.disks {
		if err := m.send(ctx, i, m.snaps[i], "", true); err != nil {
			return err
		}
	}
	m.report("send-base", 40)
	for round := 0; round < m.d.cfg.Migrate.MaxPreCopyRounds; round++ {
		dirty, err := m.dirtyBytes(ctx)
		if err != nil {
			return err
		}
		if dirty <= m.d.cfg.Migrate.PreCopyThreshold {
			return nil
		}
		prev := append([]xenapi.VDIRef(nil), m.snaps...)
		if err := m.snapshotAll(ctx); err != nil {
			return err
		}
		for i := range m.disks {
			if err := m.send(ctx, i, m.snaps[i], prev[i], true); err != nil {
				return err
			}
			if err := destroyVDI(ctx, m.src.Client, prev[i]); err != nil {
				return err
			}
		}
		m.report("send-delta", 40)
	}
	return nil
}

// snapshotAll takes a new snapshot of every disk, tagged with the
// migration, and makes it the disk's last one.
func (m *move) snapshotAll(ctx context.Context) error {
	c := m.src.Client
	mig := m.req.Migration.UUID
	for i, disk := range m.disks {
		snap, err := snapshotTagged(ctx, c, disk.VDI, mig, func(oc map[string]string) {
			for _, k := range []string{KeyUserdevice, KeyComplete, KeySHA256, KeyVMTemplate} {
				delete(oc, k)
			}
			oc[KeyMigration], oc[KeyRole] = mig, RoleSnapshot
		})
		if err != nil {
			return err
		}
		m.snaps[i] = snap
		if m.leafSize[i], err = c.VDI.GetPhysicalUtilisation(ctx, disk.VDI); err != nil {
			return fmt.Errorf("xenserver: physical utilisation of VDI %s: %w", disk.VDIRec.UUID, err)
		}
	}
	return nil
}

// dirtyBytes is what the guest wrote since the last snapshots: how much
// each disk's leaf grew since then. xapi refreshes physical_utilisation
// on SR.scan, so each disk's SR is scanned first.
func (m *move) dirtyBytes(ctx context.Context) (int64, error) {
	c := m.src.Client
	scanned := map[xenapi.SRRef]bool{}
	var n int64
	for i, disk := range m.disks {
		if sr := disk.VDIRec.SR; !scanned[sr] {
			if err := c.SR.Scan(ctx, sr); err != nil {
				return 0, fmt.Errorf("xenserver: scan SR %s: %w", sr, err)
			}
			scanned[sr] = true
		}
		u, err := c.VDI.GetPhysicalUtilisation(ctx, disk.VDI)
		if err != nil {
			return 0, fmt.Errorf("xenserver: physical utilisation of VDI %s: %w", disk.VDIRec.UUID, err)
		}
		n += max(0, u-m.leafSize[i])
	}
	return n, nil
}

// send moves one disk's vdi (relative to base) through the transport, in
// turn with the hosts' other transfers.
func (m *move) send(ctx context.Context, i int, vdi, base xenapi.VDIRef, running bool) error {
	release, err := m.d.slots.acquire(ctx, m.src.Name, m.dst.Name)
	if err != nil {
		return err
	}
	defer release()
	if base == "" {
		base = xenapi.NullRef
	}
	n, err := m.moves[i].Send(ctx, vdi, base)
	m.info.BytesSent += n
	if running {
		m.info.BytesSentRunning += n
	}
	return err
}

// destroySnapshots removes the migration's snapshots on the source.
func (m *move) destroySnapshots(ctx context.Context) error {
	var errs []error
	for i, s := range m.snaps {
		if s.IsNull() {
			continue
		}
		if err := destroyVDI(ctx, m.src.Client, s); err != nil {
			errs = append(errs, err)
			continue
		}
		m.snaps[i] = ""
	}
	return errors.Join(errs...)
}

// finish completes each disk's move and records the source VM's boot
// settings on the destination root disk.
func (m *move) finish(ctx context.Context) error {
	for i, dm := range m.moves {
		disk, err := dm.Finish(ctx)
		if err != nil {
			return err
		}
		m.info.Disks = append(m.info.Disks, disk)
		if m.disks[i].VBDRec.Userdevice != deviceRoot {
			continue
		}
		if err := m.recordTemplate(ctx, disk.VDI); err != nil {
			return err
		}
	}
	m.info.Downtime = m.d.cfg.Clock().Sub(m.offAt)
	return nil
}

// recordTemplate records the source VM's settings and network interfaces
// on the destination's root copy, for FinishMigration.
func (m *move) recordTemplate(ctx context.Context, rootCopy string) error {
	ref, err := m.dst.Client.VDI.GetByUUID(ctx, rootCopy)
	if err != nil {
		return fmt.Errorf("xenserver: copy %s on %q: %w", rootCopy, m.dst.Name, err)
	}
	return updateVDIOtherConfig(ctx, m.dst.Client, ref, func(oc map[string]string) { oc[KeyVMTemplate] = templateOf(m.vm.Rec, m.vifs) })
}

// keepOrig keeps the source for a revert: nova_uuid moves to
// xenflow_orig_of (with the DiskInfo) in one call, then the VM is renamed
// <name>-orig.
func (m *move) keepOrig(ctx context.Context) error {
	blob, err := json.Marshal(m.info)
	if err != nil {
		return fmt.Errorf("xenserver: encode the disk info: %w", err)
	}
	inst := m.req.Instance.UUID
	err = updateVMOtherConfig(ctx, m.src.Client, m.vm.Ref, func(oc map[string]string) {
		delete(oc, KeyNovaUUID)
		oc[KeyOrigOf], oc[KeyMigration], oc[KeyDiskInfo] = inst, m.req.Migration.UUID, string(blob)
	})
	if err != nil {
		return err
	}
	m.renamed = true
	return ensureName(ctx, m.src.Client, m.vm.Ref, m.vm.Rec.NameLabel, true)
}

// ensureName gives a VM its name with the -orig suffix (orig true) or
// without it.
func ensureName(ctx context.Context, c *xenapi.Client, vm xenapi.VMRef, name string, orig bool) error {
	base := strings.TrimSuffix(name, origSuffix)
	want := base
	if orig {
		want = base + origSuffix
	}
	if name == want {
		return nil
	}
	if err := c.VM.SetNameLabel(ctx, vm, want); err != nil {
		return fmt.Errorf("xenserver: rename VM %s to %q: %w", vm, want, err)
	}
	return nil
}

// rollback puts the source back as it was: copies and snapshots removed,
// tags and name restored, running again if it ran. It never destroys a
// source disk.
func (m *move) rollback(ctx context.Context) error {
	var errs []error
	for _, dm := range m.moves {
		errs = append(errs, dm.Abort(ctx))
	}
	if m.marked {
		// Clones on a shared SR, and anything a transport left.
		errs = append(errs, m.discardLeftovers(ctx))
	}
	if !m.marked {
		return errors.Join(errs...)
	}
	inst := m.req.Instance.UUID
	errs = append(errs, updateVMOtherConfig(ctx, m.src.Client, m.vm.Ref, func(oc map[string]string) {
		for _, k := range []string{KeyOrigOf, KeyMigration, KeyPowerState, KeyDiskInfo} {
			delete(oc, k)
		}
		oc[KeyNovaUUID] = inst
	}))
	if m.renamed {
		errs = append(errs, ensureName(ctx, m.src.Client, m.vm.Ref, m.vm.Rec.NameLabel+origSuffix, false))
	}
	if m.wasRunning {
		errs = append(errs, startOn(ctx, m.src.Client, m.vm.Ref, m.src.Host))
	}
	return errors.Join(errs...)
}

// migratedDiskInfo is the answer to a repeated call after a finished
// move: the DiskInfo kept on the <name>-orig VM.
func (d *Driver) migratedDiskInfo(ctx context.Context, m *move) (compute.DiskInfo, error) {
	orig := m.done
	var info compute.DiskInfo
	if err := json.Unmarshal([]byte(orig.Rec.OtherConfig[KeyDiskInfo]), &info); err != nil {
		return info, fmt.Errorf("xenserver: VM %s: other_config:%s: %w", orig.Rec.UUID, KeyDiskInfo, err)
	}
	if err := ensureName(ctx, m.src.Client, orig.Ref, orig.Rec.NameLabel, true); err != nil {
		return compute.DiskInfo{}, err
	}
	return info, nil
}

// vmTemplate is what FinishMigration takes from the source VM besides the
// flavor: its boot settings (vm_utils.py, create_vm).
type vmTemplate struct {
	NameLabel        string            `json:"name_label"`
	PVBootloader     string            `json:"pv_bootloader,omitempty"`
	PVKernel         string            `json:"pv_kernel,omitempty"`
	PVRamdisk        string            `json:"pv_ramdisk,omitempty"`
	PVArgs           string            `json:"pv_args,omitempty"`
	PVBootloaderArgs string            `json:"pv_bootloader_args,omitempty"`
	HVMBootPolicy    string            `json:"hvm_boot_policy,omitempty"`
	HVMBootParams    map[string]string `json:"hvm_boot_params,omitempty"`
	Platform         map[string]string `json:"platform,omitempty"`
	DomainType       string            `json:"domain_type,omitempty"`
	XenstoreData     map[string]string `json:"xenstore_data,omitempty"`
	VIFs             []vifTemplate     `json:"vifs,omitempty"`
}

// templateOf encodes a VM's boot settings and network interfaces.
func templateOf(rec xenapi.VMRecord, vifs []vifTemplate) string {
	b, _ := json.Marshal(vmTemplate{
		NameLabel: strings.TrimSuffix(rec.NameLabel, origSuffix), PVBootloader: rec.PVBootloader,
		PVKernel: rec.PVKernel, PVRamdisk: rec.PVRamdisk, PVArgs: rec.PVArgs, PVBootloaderArgs: rec.PVBootloaderArgs,
		HVMBootPolicy: rec.HVMBootPolicy, HVMBootParams: rec.HVMBootParams, Platform: rec.Platform,
		DomainType: string(rec.DomainType), XenstoreData: rec.XenstoreData, VIFs: vifs,
	})
	return string(b)
}
