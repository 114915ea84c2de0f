package computetest

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/scheduler"
	"github.com/xenflow/xenflow/statemachine"
)

// ErrBootlocked is what PowerOn returns for a guest Rescue bootlocked
// (XenServer's OPERATION_BLOCKED on VM.start).
var ErrBootlocked = errors.New("computetest: VM.start blocked: the guest is bootlocked by a rescue")

// Capabilities implements [compute.Driver].
func (d *FakeDriver) Capabilities() compute.DriverCapabilities {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.caps
}

// GetInfo implements [compute.Driver].
func (d *FakeDriver) GetInfo(ctx context.Context, req compute.InstanceRequest) (compute.InstanceInfo, error) {
	var info compute.InstanceInfo
	err := d.onGuest(ctx, instanceCall(MethodGetInfo, req.Host, req.Instance, nil), req.Instance, func(_ *fakeHost, g *Guest) error {
		info = compute.InstanceInfo{PowerState: g.Power, MemoryMB: g.Flavor.MemoryMB, VCPUs: g.Flavor.VCPUs}
		return nil
	})
	return info, err
}

// GetAvailableResource implements [compute.Driver]: the host's configured
// capacities, less what its guests and disks use (a guest kept for a
// revert still counts, as Nova's resource tracker keeps the old flavor on
// the source until confirm).
func (d *FakeDriver) GetAvailableResource(ctx context.Context, req compute.HostRequest) (scheduler.HostState, error) {
	if _, err := d.begin(ctx, Call{Method: MethodGetAvailableResource, Host: req.Host}); err != nil {
		return scheduler.HostState{}, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.hostStateLocked(req.Host)
}

// HostStates implements [compute.HostStateWatcher] without logging calls.
func (d *FakeDriver) HostStates(ctx context.Context, hosts []string) ([]scheduler.HostState, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]scheduler.HostState, 0, len(hosts))
	for _, name := range hosts {
		hs, err := d.hostStateLocked(name)
		if err != nil {
			return nil, err
		}
		out = append(out, hs)
	}
	return out, nil
}

func (d *FakeDriver) hostStateLocked(name string) (scheduler.HostState, error) {
	h, err := d.hostLocked(name)
	if err != nil {
		return scheduler.HostState{}, err
	}
	hs := h.config
	hs.Aggregates = append([]scheduler.Aggregate(nil), h.config.Aggregates...)
	var ramMB, vcpus, diskBytes int64
	instances := map[string]bool{}
	for _, g := range h.guests {
		ramMB += int64(g.Flavor.MemoryMB)
		vcpus += int64(g.Flavor.VCPUs)
		instances[g.InstanceUUID] = true
	}
	for _, v := range h.vdis {
		diskBytes += v.VirtualSize
	}
	hs.FreeRAMMB = hs.TotalUsableRAMMB - ramMB
	hs.FreeDiskMB = hs.TotalUsableDiskGB*1024 - diskBytes>>20
	hs.VCPUsUsed = vcpus
	hs.NumInstances = int64(len(instances))
	hs.Instances = nil
	for id := range instances {
		hs.Instances = append(hs.Instances, id)
	}
	sort.Strings(hs.Instances)
	return hs, nil
}

// PowerOff implements [compute.Driver]; a guest already off stays so.
func (d *FakeDriver) PowerOff(ctx context.Context, req compute.PowerOffRequest) error {
	return d.setPower(ctx, instanceCall(MethodPowerOff, req.Host, req.Instance, nil), req.Instance,
		statemachine.PowerShutdown)
}

// PowerOn implements [compute.Driver]; a running guest stays so, a
// bootlocked one gives ErrBootlocked.
func (d *FakeDriver) PowerOn(ctx context.Context, req compute.InstanceRequest) error {
	return d.setPower(ctx, instanceCall(MethodPowerOn, req.Host, req.Instance, nil), req.Instance,
		statemachine.PowerRunning)
}

func (d *FakeDriver) setPower(ctx context.Context, c Call, inst *compute.Instance, p statemachine.PowerState) error {
	return d.onGuest(ctx, c, inst, func(_ *fakeHost, g *Guest) error {
		if p == statemachine.PowerRunning && g.Bootlocked && g.Power != p {
			return fmt.Errorf("%s on %s: %w", g.Name, c.Host, ErrBootlocked)
		}
		g.Power = p
		return nil
	})
}

// Rescue implements [compute.Driver] as vmops.py rescue does: hard
// shutdown, bootlock, a <name>-rescue guest booted from the image with the
// original root disk attached second. A failure after the shutdown
// destroys the rescue guest and releases the bootlock, leaving the
// original halted and startable.
func (d *FakeDriver) Rescue(ctx context.Context, req compute.RescueRequest) error {
	c, err := d.begin(ctx, instanceCall(MethodRescue, req.Host, req.Instance, nil))
	if err != nil {
		return err
	}
	var name string
	done := false
	err = d.lockedGuest(req.Host, req.Instance, func(h *fakeHost, g *Guest) error {
		name = g.Name
		r, ok := h.guests[name+RescueSuffix]
		done = ok && r.Power == statemachine.PowerRunning
		if !done {
			g.Power = statemachine.PowerShutdown // hard shutdown
		}
		return nil
	})
	if err != nil || done {
		return err
	}
	for _, step := range rescueSteps {
		if err := d.step(ctx, c, step); err != nil {
			if !isCancel(err) {
				d.undoRescue(req.Host, name)
			}
			return err
		}
		if err := d.rescueStep(req, step); err != nil {
			return err
		}
	}
	return nil
}

// rescueSteps are the steps of Rescue after the hard shutdown.
var rescueSteps = []string{"bootlock", "create-rescue", "start-rescue"}

// rescueStep does one step of Rescue, finding it done when it is.
func (d *FakeDriver) rescueStep(req compute.RescueRequest, step string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	h, g, err := d.guestLocked(req.Host, req.Instance, "")
	if err != nil {
		return err
	}
	name := g.Name + RescueSuffix
	switch step {
	case "bootlock":
		g.Bootlocked = true
	case "create-rescue":
		if _, ok := h.guests[name]; ok {
			return nil
		}
		boot := d.newVDILocked(h, VDI{Label: name, Userdevice: "0", VirtualSize: gib(1), SHA256: digest("image " + req.ImageRef)})
		h.guests[name] = &Guest{Name: name, InstanceUUID: g.InstanceUUID, Host: g.Host, Power: statemachine.PowerShutdown,
			Flavor: g.Flavor, VDIs: []string{boot, g.VDIs[0]}}
	case "start-rescue":
		h.guests[name].Power = statemachine.PowerRunning
	}
	return nil
}

// undoRescue removes a part-made rescue guest and the bootlock.
func (d *FakeDriver) undoRescue(host, name string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	h := d.hosts[host]
	d.removeRescueLocked(h, name)
	if g, ok := h.guests[name]; ok {
		g.Bootlocked = false
	}
}

// removeRescueLocked destroys name's rescue guest and its boot disk, never
// the original's root disk it had attached.
func (d *FakeDriver) removeRescueLocked(h *fakeHost, name string) {
	r, ok := h.guests[name+RescueSuffix]
	if !ok {
		return
	}
	d.deleteVDILocked(h, r.VDIs[0])
	delete(h.guests, r.Name)
}

// Unrescue implements [compute.Driver]: the rescue guest goes, the
// bootlock is released and the original starts.
func (d *FakeDriver) Unrescue(ctx context.Context, req compute.InstanceRequest) error {
	return d.onGuest(ctx, instanceCall(MethodUnrescue, req.Host, req.Instance, nil), req.Instance, func(h *fakeHost, g *Guest) error {
		d.removeRescueLocked(h, g.Name)
		g.Bootlocked = false
		g.Power = statemachine.PowerRunning
		return nil
	})
}

// Snapshot implements [compute.Driver]: the root disk goes to the image
// store as req.ImageID.
func (d *FakeDriver) Snapshot(ctx context.Context, req compute.SnapshotRequest) error {
	c := instanceCall(MethodSnapshot, req.Host, req.Instance, nil)
	if err := d.crossCell(c); err != nil {
		return d.onHost(ctx, c, err, nil)
	}
	return d.onGuest(ctx, c, req.Instance, func(h *fakeHost, g *Guest) error {
		root := *h.vdis[g.VDIs[0]]
		root.UUID, root.Host, root.MigrationUUID = "", "", ""
		d.images[req.ImageID] = root
		return nil
	})
}

// Spawn implements [compute.Driver]: a guest from an image of the store,
// with a blank ephemeral disk when the flavor has ephemeral_gb (as Nova's
// spawn creates the flavor's ephemeral disks); a guest that exists
// already is only powered as asked.
func (d *FakeDriver) Spawn(ctx context.Context, req compute.SpawnRequest) error {
	c := instanceCall(MethodSpawn, req.Host, req.Instance, nil)
	invalid := d.crossCell(c)
	if invalid == nil && req.Flavor == nil {
		invalid = &compute.InvalidRecordError{Kind: compute.KindInstance, ID: req.Instance.UUID, Field: "flavor", Reason: "nil"}
	}
	return d.onHost(ctx, c, invalid, func(h *fakeHost) error {
		img, ok := d.images[req.ImageRef]
		if !ok {
			return &compute.NotFoundError{Kind: "image", ID: req.ImageRef}
		}
		name := guestName(req.Instance)
		g, ok := h.guests[name]
		if !ok {
			img.Label = req.Instance.UUID
			g = &Guest{Name: name, InstanceUUID: req.Instance.UUID, Host: req.Host, Flavor: *req.Flavor.Clone(),
				VDIs: []string{d.newVDILocked(h, img)}}
			if gb := req.Flavor.EphemeralGB; gb > 0 {
				g.VDIs = append(g.VDIs, d.newVDILocked(h, VDI{Label: req.Instance.UUID + "_ephemeral_1", Userdevice: "4",
					VirtualSize: gib(gb), SHA256: BlankDigest}))
			}
			h.guests[name] = g
		}
		g.Power = powerFor(req.PowerOn)
		return nil
	})
}

// crossCell refuses a Snapshot or Spawn call c with
// compute.ErrNotImplemented when the capabilities say so, or without its
// instance.
func (d *FakeDriver) crossCell(c Call) error {
	if !d.Capabilities().SupportsCrossCell {
		return fmt.Errorf("computetest: %s: %w", c.Method, compute.ErrNotImplemented)
	}
	if c.InstanceUUID == "" {
		return nilInstance(nil)
	}
	return nil
}

// guestLocked returns the host and the instance's guest on it, the one
// named with suffix ("" for the instance's own).
func (d *FakeDriver) guestLocked(host string, inst *compute.Instance, suffix string) (*fakeHost, *Guest, error) {
	if err := nilInstance(inst); err != nil {
		return nil, nil, err
	}
	h, err := d.hostLocked(host)
	if err != nil {
		return nil, nil, err
	}
	name := guestName(inst) + suffix
	g, ok := h.guests[name]
	if !ok {
		return h, nil, &compute.NotFoundError{Kind: "guest", ID: host + "/" + name}
	}
	return h, g, nil
}

func powerFor(on bool) statemachine.PowerState {
	if on {
		return statemachine.PowerRunning
	}
	return statemachine.PowerShutdown
}

func instanceCall(m Method, host string, inst *compute.Instance, mig *compute.Migration) Call {
	return Call{Method: m, Host: host, InstanceUUID: instanceUUID(inst), MigrationUUID: migrationUUID(mig)}
}

// GuestDisks returns copies of the disks of the guest named name on host,
// by userdevice ("0" the root, "4" the first ephemeral disk); nil when
// the host has no such guest.
func (d *FakeDriver) GuestDisks(host, name string) map[string]VDI {
	d.mu.Lock()
	defer d.mu.Unlock()
	h, ok := d.hosts[host]
	if !ok || h.guests[name] == nil {
		return nil
	}
	out := map[string]VDI{}
	for _, id := range h.guests[name].VDIs {
		if v, ok := h.vdis[id]; ok {
			out[v.Userdevice] = *v
		}
	}
	return out
}
