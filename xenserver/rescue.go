package xenserver

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/xenapi"
)

// other_config keys of rescue.
const (
	// KeyRescueOf holds the instance uuid on its rescue VM and on the
	// rescue VM's own root disk (a clone of the rescue image), in place of
	// nova_uuid, so the instance's VM stays the one that claims it.
	KeyRescueOf = "xenflow_rescue_of"
	// KeyRescueImage holds, on a rescue VM, the uuid of the image VDI its
	// root disk is cloned from.
	KeyRescueImage = "xenflow_rescue_image"
	// KeyImageID names the image a VDI holds, as Nova's image cache tags
	// it (nova/virt/xenapi/vm_utils.py, _create_cached_image and
	// _find_cached_images: other_config image-id).
	KeyImageID = "image-id"
	// RoleRescue is the xenflow_role of a rescue VM's root disk.
	RoleRescue = "rescue"
)

// ImageExists reports whether Rescue on the compute host can find the
// image ref: a VDI tagged image-id ref, or with ref as its uuid, in the
// host's pool or another pool of the inventory. A rescue orchestrator asks
// it (rescue.ImageChecker) before it changes anything.
func (d *Driver) ImageExists(ctx context.Context, host, ref string) (bool, error) {
	if _, err := d.pool(ctx, host); err != nil {
		return false, err
	}
	return d.PoolImages(host).Has(ctx, ref)
}

// rescueSuffix is appended to the rescue VM's name
// (nova/virt/xenapi/vmops.py, rescue).
const rescueSuffix = "-rescue"

// Userdevices of a rescue VM (vmops.py: DEVICE_ROOT and DEVICE_RESCUE).
const (
	deviceRoot   = "0"
	deviceRescue = "1"
)

// xenstoreHostname is the xenstore_data key the guest agent reads its
// hostname from (vmops.py, _inject_hostname: vm-data/hostname).
const xenstoreHostname = "vm-data/hostname"

// RescueExistsError is a rescue refused because a VM named <name>-rescue
// that is not this instance's rescue VM exists (Nova: "Instance is already
// in Rescue Mode").
type RescueExistsError struct {
	InstanceUUID string
	ComputeHost  string
	// VM is the uuid of the VM that has the name.
	VM   string
	Name string
}

func (e *RescueExistsError) Error() string {
	return fmt.Sprintf("xenserver: compute host %q: instance %s: VM %s is already named %q",
		e.ComputeHost, e.InstanceUUID, e.VM, e.Name)
}

// ImageNotFoundError is an image the pool has no VDI for: none tagged
// other_config image-id with it and no VDI with it as uuid.
type ImageNotFoundError struct {
	ComputeHost string
	ImageRef    string
}

func (e *ImageNotFoundError) Error() string {
	return fmt.Sprintf("xenserver: compute host %q: no VDI holds image %q", e.ComputeHost, e.ImageRef)
}

// Is makes the error match compute.ErrNotFound.
func (e *ImageNotFoundError) Is(target error) bool { return target == compute.ErrNotFound }

// Rescue boots <name>-rescue from the rescue image req.ImageRef with the
// instance's root disk attached as userdevice 1 (nova/virt/xenapi/vmops.py,
// rescue and spawn's attach_disks_step), hostname RESCUE-<hostname> in
// xenstore_data vm-data/hostname as vmops.py _inject_hostname writes it.
//
// The steps are Nova's, reordered so that no interruption leaves the
// original bootlocked without a running rescue VM: refuse when a VM named
// <name>-rescue that is not this rescue exists; hard shutdown of the
// original; the rescue VM created (tagged xenflow_rescue_of and
// xenflow_rescue_image), its root a copy-on-write clone of the image VDI
// (VDI.clone, as Nova clones its cached image) and the original root
// attached; the rescue VM started (xapi refuses to start the original
// while the running rescue VM has its root); then the bootlock on the
// original (blocked_operations start, vmops.py _acquire_bootlock). A repeated call finds the rescue VM and finishes
// what is missing. On a failure (not a cancellation) the rescue VM and
// its own disks are removed, the bootlock released and the original
// started again if it ran, and the error is a *compute.InstanceFaultRollback.
//
// The rescue image is a VDI of the host's SR tagged other_config image-id
// with req.ImageRef (Nova's image cache; Spawn and the image store put
// images there) or whose uuid is req.ImageRef; an image only another SR
// or pool of the inventory has is imported into the host's SR first
// (PoolImages).
// req.AdminPassword is not used: setting it needs the guest agent.
func (d *Driver) Rescue(ctx context.Context, req compute.RescueRequest) error {
	if req.ImageRef == "" {
		return &RequestError{Method: "Rescue", Field: "ImageRef"}
	}
	t, orig, err := d.guest(ctx, "Rescue", req.Host, req.Instance)
	if err != nil {
		return err
	}
	r := &rescueRun{t: t, req: req, orig: orig, wasRunning: orig.Rec.PowerState.Is(xenapi.VMPowerStateRunning),
		store: d.PoolImages(req.Host)}
	err = r.run(ctx)
	if err == nil || ctx.Err() != nil {
		return err
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
	defer cancel()
	if rerr := r.rollback(rctx); rerr != nil {
		d.log.Error("xenserver: rolling back a rescue failed", "instance", req.Instance.UUID, "err", rerr)
		return fmt.Errorf("%w (rolling back failed: %v)", err, rerr)
	}
	return &compute.InstanceFaultRollback{Err: err}
}

// rescueRun is one Rescue in progress.
type rescueRun struct {
	t          *target
	req        compute.RescueRequest
	orig       vmEntry
	wasRunning bool
	rescue     vmEntry
	// store has the images the host's SR does not.
	store ImageStore
	// clone is the image clone this call made, until it is tagged.
	clone xenapi.VDIRef
}

func (r *rescueRun) run(ctx context.Context) error {
	c := r.t.Client
	found, err := r.findRescue(ctx)
	if err != nil {
		return err
	}
	origDisks, err := vmDisks(ctx, c, r.orig)
	if err != nil {
		return withHost(r.t, err)
	}
	root, ok := diskAt(origDisks, deviceRoot)
	if !ok {
		return &NoDiskError{ComputeHost: r.t.Name, VDI: r.orig.Rec.UUID, Reason: "the VM has no root disk (userdevice 0)"}
	}
	image, err := r.image(ctx, found)
	if err != nil {
		return err
	}
	if err := powerOff(ctx, c, r.orig.Ref, false, 0); err != nil {
		return withHost(r.t, err)
	}
	if !found {
		if err := r.createRescueVM(ctx, image); err != nil {
			return err
		}
	}
	if err := r.attachDisks(ctx, image, root); err != nil {
		return err
	}
	if err := startOn(ctx, c, r.rescue.Ref, r.t.Host); err != nil {
		return withHost(r.t, err)
	}
	return withHostIf(r.t, bootlock(ctx, c, r.orig.Ref, true))
}

// image finds the rescue image: the one an earlier call's rescue VM names
// (KeyRescueImage), else the request's.
func (r *rescueRun) image(ctx context.Context, found bool) (vdiEntry, error) {
	id := r.rescue.Rec.OtherConfig[KeyRescueImage]
	if !found || id == "" {
		return cachedImage(ctx, r.t, r.req.ImageRef, r.store)
	}
	ref, err := r.t.Client.VDI.GetByUUID(ctx, id)
	if err != nil {
		return vdiEntry{}, withHost(r.t, fmt.Errorf("rescue image VDI %s: %w", id, err))
	}
	rec, err := r.t.Client.VDI.GetRecord(ctx, ref)
	if err != nil {
		return vdiEntry{}, withHost(r.t, fmt.Errorf("rescue image VDI %s: %w", id, err))
	}
	return vdiEntry{Ref: ref, Rec: rec}, nil
}

// findRescue looks for VMs named <name>-rescue: one that is this
// instance's rescue VM is reused; any other is refused.
func (r *rescueRun) findRescue(ctx context.Context) (bool, error) {
	name := rescueName(r.orig.Rec.NameLabel)
	refs, err := r.t.Client.VM.GetByNameLabel(ctx, name)
	if err != nil {
		return false, withHost(r.t, fmt.Errorf("find VM %q: %w", name, err))
	}
	found := false
	for _, ref := range refs {
		rec, err := r.t.Client.VM.GetRecord(ctx, ref)
		if xenapi.IsCode(err, xenapi.CodeHandleInvalid) {
			continue
		}
		if err != nil {
			return false, withHost(r.t, fmt.Errorf("VM %s: %w", ref, err))
		}
		if rec.OtherConfig[KeyRescueOf] != r.req.Instance.UUID || found {
			return false, &RescueExistsError{InstanceUUID: r.req.Instance.UUID, ComputeHost: r.t.Name, VM: rec.UUID, Name: name}
		}
		r.rescue, found = vmEntry{Ref: ref, Rec: rec}, true
	}
	return found, nil
}

func rescueName(origName string) string { return origName + rescueSuffix }

// diskAt returns the disk at a userdevice.
func diskAt(disks []vmDisk, userdevice string) (vmDisk, bool) {
	for _, d := range disks {
		if d.VBDRec.Userdevice == userdevice {
			return d, true
		}
	}
	return vmDisk{}, false
}

// createRescueVM makes <name>-rescue with the original's memory, vCPUs and
// boot settings, tagged for the instance, hostname RESCUE-<hostname>.
func (r *rescueRun) createRescueVM(ctx context.Context, image vdiEntry) error {
	o := r.orig.Rec
	xs := map[string]string{}
	for k, v := range o.XenstoreData {
		xs[k] = v
	}
	hostname := r.req.Instance.Hostname
	if hostname == "" {
		hostname = r.req.Instance.Name
	}
	xs[xenstoreHostname] = "RESCUE-" + hostname
	rec := xenapi.VMRecord{
		NameLabel: rescueName(o.NameLabel), UserVersion: 1, Affinity: r.t.Host,
		MemoryStaticMin: o.MemoryStaticMin, MemoryDynamicMin: o.MemoryDynamicMin, MemoryDynamicMax: o.MemoryDynamicMax,
		MemoryStaticMax: o.MemoryStaticMax, MemoryTarget: o.MemoryDynamicMax,
		VCPUsMax: o.VCPUsMax, VCPUsAtStartup: o.VCPUsAtStartup,
		ActionsAfterShutdown: "destroy", ActionsAfterReboot: "restart", ActionsAfterCrash: "destroy",
		PVBootloader: o.PVBootloader, PVKernel: o.PVKernel, PVRamdisk: o.PVRamdisk, PVArgs: o.PVArgs,
		PVBootloaderArgs: o.PVBootloaderArgs, HVMBootPolicy: o.HVMBootPolicy, HVMBootParams: o.HVMBootParams,
		Platform: o.Platform, DomainType: o.DomainType, XenstoreData: xs,
		OtherConfig: map[string]string{KeyRescueOf: r.req.Instance.UUID, KeyRescueImage: image.Rec.UUID},
	}
	ref, err := r.t.Client.VM.Create(ctx, rec)
	if err != nil {
		return withHost(r.t, fmt.Errorf("create the rescue VM of instance %s: %w", r.req.Instance.UUID, err))
	}
	r.rescue = vmEntry{Ref: ref, Rec: rec}
	return nil
}

// attachDisks gives the rescue VM its root (a clone of the image) at 0
// and the original root at 1, each unless already there.
func (r *rescueRun) attachDisks(ctx context.Context, image vdiEntry, origRoot vmDisk) error {
	c := r.t.Client
	rec, err := c.VM.GetRecord(ctx, r.rescue.Ref)
	if err != nil {
		return withHost(r.t, fmt.Errorf("rescue VM %s: %w", r.rescue.Ref, err))
	}
	r.rescue.Rec = rec
	disks, err := vmDisks(ctx, c, r.rescue)
	if err != nil {
		return withHost(r.t, err)
	}
	if _, ok := diskAt(disks, deviceRoot); !ok {
		root, err := r.rescueRoot(ctx, image)
		if err != nil {
			return err
		}
		if err := r.attach(ctx, root, deviceRoot, true); err != nil {
			return err
		}
	}
	if _, ok := diskAt(disks, deviceRescue); !ok {
		return r.attach(ctx, origRoot.VDI, deviceRescue, false)
	}
	return nil
}

func (r *rescueRun) attach(ctx context.Context, vdi xenapi.VDIRef, userdevice string, bootable bool) error {
	_, err := r.t.Client.VBD.Create(ctx, xenapi.VBDRecord{VM: r.rescue.Ref, VDI: vdi, Userdevice: userdevice,
		Bootable: bootable, Mode: xenapi.VBDModeRW, Type: xenapi.VBDTypeDisk, Unpluggable: true})
	if err != nil {
		return withHost(r.t, fmt.Errorf("attach VDI %s to the rescue VM at %s: %w", vdi, userdevice, err))
	}
	return nil
}

// rescueRoot returns the rescue VM's own root disk: a tagged clone an
// earlier call left unattached, else a clone it made and was interrupted
// before tagging (see orphanClones), else a new clone of the image.
func (r *rescueRun) rescueRoot(ctx context.Context, image vdiEntry) (xenapi.VDIRef, error) {
	c := r.t.Client
	mine, err := rescueDisks(ctx, c, r.req.Instance.UUID)
	if err != nil {
		return "", withHost(r.t, err)
	}
	for _, v := range mine {
		if len(v.Rec.VBDs) == 0 {
			return v.Ref, nil
		}
	}
	clone, err := orphanClone(ctx, c, image)
	if err != nil {
		return "", withHost(r.t, err)
	}
	if clone == "" {
		if clone, err = c.VDI.Clone(ctx, image.Ref, nil); err != nil {
			return "", withHost(r.t, fmt.Errorf("clone image VDI %s: %w", image.Rec.UUID, err))
		}
	}
	r.clone = clone
	err = updateVDIOtherConfig(ctx, c, clone, func(oc map[string]string) {
		delete(oc, KeyImageID)
		oc[KeyRescueOf], oc[KeyRole] = r.req.Instance.UUID, RoleRescue
	})
	if err != nil {
		return "", withHost(r.t, err)
	}
	r.clone = ""
	return clone, nil
}

// rescueDisks returns the VDIs tagged as an instance's rescue root disks.
func rescueDisks(ctx context.Context, c *xenapi.Client, instance string) ([]vdiEntry, error) {
	recs, err := c.VDI.GetAllRecords(ctx)
	if err != nil {
		return nil, fmt.Errorf("xenserver: list VDIs: %w", err)
	}
	var out []vdiEntry
	for ref, rec := range recs {
		if rec.OtherConfig[KeyRescueOf] == instance && rec.OtherConfig[KeyRole] == RoleRescue {
			out = append(out, vdiEntry{Ref: ref, Rec: rec})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Rec.UUID < out[j].Rec.UUID })
	return out, nil
}

// orphanClone finds a clone of the image that a call interrupted between
// VDI.clone and tagging it left behind: a VDI of the image's SR, never
// attached, whose name, other_config and parent (sm_config vhd-parent)
// are the image's — a pristine copy-on-write clone of the image, whoever
// made it. It returns "" when there is none.
func orphanClone(ctx context.Context, c *xenapi.Client, image vdiEntry) (xenapi.VDIRef, error) {
	parent := image.Rec.SMConfig["vhd-parent"]
	if parent == "" {
		return "", nil
	}
	recs, err := c.VDI.GetAllRecordsWhere(ctx, fmt.Sprintf(`field "SR"="%s"`, image.Rec.SR))
	if err != nil {
		return "", fmt.Errorf("xenserver: list VDIs: %w", err)
	}
	var found []vdiEntry
	for ref, rec := range recs {
		if ref == image.Ref || len(rec.VBDs) > 0 || rec.IsASnapshot || rec.NameLabel != image.Rec.NameLabel ||
			rec.SMConfig["vhd-parent"] != parent || !sameMap(rec.OtherConfig, image.Rec.OtherConfig) {
			continue
		}
		found = append(found, vdiEntry{Ref: ref, Rec: rec})
	}
	if len(found) == 0 {
		return "", nil
	}
	sort.Slice(found, func(i, j int) bool { return found[i].Rec.UUID < found[j].Rec.UUID })
	return found[0].Ref, nil
}

func sameMap(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// findImageVDI finds the VDI that holds an image: one tagged other_config
// image-id (on the host's SR first), else the VDI with that uuid. Clones
// made for rescue never count.
func findImageVDI(ctx context.Context, t *target, imageRef string) (vdiEntry, error) {
	c := t.Client
	recs, err := c.VDI.GetAllRecords(ctx)
	if err != nil {
		return vdiEntry{}, withHost(t, fmt.Errorf("list VDIs: %w", err))
	}
	var best *vdiEntry
	for ref, rec := range recs {
		oc := rec.OtherConfig
		if oc[KeyImageID] != imageRef || oc[KeyRescueOf] != "" || rec.IsASnapshot {
			continue
		}
		e := vdiEntry{Ref: ref, Rec: rec}
		switch {
		case best == nil,
			rec.SR == t.SR && best.Rec.SR != t.SR,
			(rec.SR == t.SR) == (best.Rec.SR == t.SR) && rec.UUID < best.Rec.UUID:
			best = &e
		}
	}
	if best != nil {
		return *best, nil
	}
	if looksLikeUUID(imageRef) {
		for ref, rec := range recs {
			if rec.UUID == imageRef && rec.OtherConfig[KeyRescueOf] == "" {
				return vdiEntry{Ref: ref, Rec: rec}, nil
			}
		}
	}
	return vdiEntry{}, &ImageNotFoundError{ComputeHost: t.Name, ImageRef: imageRef}
}

// bootlock blocks (lock) or unblocks starting a VM
// (vmops.py, _acquire_bootlock and _release_bootlock); it changes nothing
// when the VM is already so.
func bootlock(ctx context.Context, c *xenapi.Client, vm xenapi.VMRef, lock bool) error {
	ops, err := c.VM.GetBlockedOperations(ctx, vm)
	if err != nil {
		return fmt.Errorf("xenserver: blocked_operations of VM %s: %w", vm, err)
	}
	_, locked := ops[xenapi.VMOperationStart]
	switch {
	case lock && !locked:
		if ops == nil {
			ops = map[xenapi.VMOperation]string{}
		}
		ops[xenapi.VMOperationStart] = ""
		err = c.VM.SetBlockedOperations(ctx, vm, ops)
	case !lock && locked:
		err = c.VM.RemoveFromBlockedOperations(ctx, vm, xenapi.VMOperationStart)
	}
	if err != nil {
		return fmt.Errorf("xenserver: set the bootlock of VM %s to %v: %w", vm, lock, err)
	}
	return nil
}

// rollback removes what the rescue made and puts the original back as the
// call found it.
func (r *rescueRun) rollback(ctx context.Context) error {
	if r.clone != "" {
		if err := destroyVDI(ctx, r.t.Client, r.clone); err != nil {
			return withHost(r.t, err)
		}
	}
	err := destroyRescue(ctx, r.t, r.req.Instance.UUID, r.orig)
	if err != nil {
		return err
	}
	if r.wasRunning {
		return withHostIf(r.t, startOn(ctx, r.t.Client, r.orig.Ref, r.t.Host))
	}
	return nil
}

// Unrescue puts the instance back from rescue (vmops.py, unrescue and
// _destroy_rescue_instance): the original's bootlock released, the rescue
// VM hard-shut down, its own disks destroyed (never
// a disk the original VM has: Nova bug 1227898), the rescue VM destroyed,
// and the original started. With no rescue VM it only releases a bootlock
// and starts the original, so it also undoes a rescue that stopped
// part-way, and a repeated call finds the job done.
func (d *Driver) Unrescue(ctx context.Context, req compute.InstanceRequest) error {
	t, orig, err := d.guest(ctx, "Unrescue", req.Host, req.Instance)
	if err != nil {
		return err
	}
	if err := destroyRescue(ctx, t, req.Instance.UUID, orig); err != nil {
		return err
	}
	return withHostIf(t, startOn(ctx, t.Client, orig.Ref, t.Host))
}

// destroyRescue releases the original's bootlock and removes the
// instance's rescue VMs and rescue disks.
func destroyRescue(ctx context.Context, t *target, instance string, orig vmEntry) error {
	c := t.Client
	rescues, err := findVMsBy(ctx, c, func(oc map[string]string) bool { return oc[KeyRescueOf] == instance })
	if err != nil {
		return withHost(t, err)
	}
	// The bootlock goes first: a rescue VM that still runs is a working
	// rescue, and a halted one next to an unlocked original leaves the
	// original startable.
	if err := bootlock(ctx, c, orig.Ref, false); err != nil {
		return withHost(t, err)
	}
	for _, vm := range rescues {
		if err := powerOff(ctx, c, vm.Ref, false, 0); err != nil {
			return withHost(t, err)
		}
	}
	keep, err := vdisOf(ctx, c, orig)
	if err != nil {
		return withHost(t, err)
	}
	for _, vm := range rescues {
		own := func(disk vmDisk) bool {
			return !keep[disk.VDI] && disk.VDIRec.OtherConfig[KeyRescueOf] == instance
		}
		if err := destroyGuest(ctx, t, vm, own); err != nil {
			return err
		}
	}
	left, err := rescueDisks(ctx, c, instance)
	if err != nil {
		return withHost(t, err)
	}
	var errs []error
	for _, v := range left {
		if len(v.Rec.VBDs) == 0 && !keep[v.Ref] {
			errs = append(errs, destroyVDI(ctx, c, v.Ref))
		}
	}
	return withHostIf(t, errors.Join(errs...))
}

// vdisOf returns the VDIs a VM has a VBD to.
func vdisOf(ctx context.Context, c *xenapi.Client, vm vmEntry) (map[xenapi.VDIRef]bool, error) {
	rec, err := c.VM.GetRecord(ctx, vm.Ref)
	if err != nil {
		return nil, fmt.Errorf("xenserver: VM %s: %w", vm.Rec.UUID, err)
	}
	disks, err := vmDisks(ctx, c, vmEntry{Ref: vm.Ref, Rec: rec})
	if err != nil {
		return nil, err
	}
	out := map[xenapi.VDIRef]bool{}
	for _, d := range disks {
		out[d.VDI] = true
	}
	return out, nil
}

// guest resolves a compute host and the instance's VM on it, for a
// method's request.
func (d *Driver) guest(ctx context.Context, method, host string, inst *compute.Instance) (*target, vmEntry, error) {
	if inst == nil {
		return nil, vmEntry{}, &RequestError{Method: method, Field: "Instance"}
	}
	t, err := d.pool(ctx, host)
	if err != nil {
		return nil, vmEntry{}, err
	}
	vm, err := d.instanceVM(ctx, t, inst)
	if err != nil {
		return nil, vmEntry{}, err
	}
	return t, vm, nil
}
