package computetest

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/statemachine"
)

// The steps of MigrateDiskAndPowerOff, as vmops.py
// _migrate_disk_resizing_up counts them (RESIZE_TOTAL_STEPS = 5), with the
// progress each ends at.
var migrateSteps = []struct {
	name    string
	percent int
}{{"snapshot", 20}, {"send-base", 40}, {"power-off", 60}, {"send-delta", 80}, {"rename-orig", 100}}

// The steps of FinishMigration (vmops.py finish_migration).
var finishSteps = []struct {
	name    string
	percent int
}{{"import", 25}, {"create", 50}, {"resize-disks", 75}, {"power-on", 100}}

// The step of FinishRevertMigration after the rename.
var revertSteps = []string{"power-on"}

// MethodSteps returns the steps of method m a [Fault] or the hook can fail
// at, in order, after its start (Step ""); nil for a method without steps.
func MethodSteps(m Method) []string {
	var out []string
	switch m {
	case MethodMigrateDiskAndPowerOff:
		for _, s := range migrateSteps {
			out = append(out, s.name)
		}
	case MethodFinishMigration:
		for _, s := range finishSteps {
			out = append(out, s.name)
		}
	case MethodRescue:
		out = append(out, rescueSteps...)
	case MethodFinishRevertMigration:
		out = append(out, revertSteps...)
	}
	return out
}

// migrateJob is one MigrateDiskAndPowerOff call.
type migrateJob struct {
	req compute.MigrateDiskRequest
	c   Call
	// name is the source guest's name.
	name string
	mv   *move
	sent compute.Progress
}

// MigrateDiskAndPowerOff implements [compute.Driver]: the guest's disks are
// staged on the destination, the guest is powered off (or suspended),
// the last writes are sent, and the source guest is kept as <name>-orig.
// A repeated call returns the first one's DiskInfo; a call after a
// cancellation part-way goes on where it stopped. An injected failure
// removes the staged disks, restores the guest's power and returns an
// *InstanceFaultRollback.
func (d *FakeDriver) MigrateDiskAndPowerOff(ctx context.Context, req compute.MigrateDiskRequest) (compute.DiskInfo, error) {
	c, err := d.begin(ctx, instanceCall(MethodMigrateDiskAndPowerOff, req.Host, req.Instance, req.Migration))
	if err != nil {
		return compute.DiskInfo{}, err
	}
	job := &migrateJob{req: req, c: c}
	if info, done, err := d.prepareMigrate(job); err != nil || done {
		return info, err
	}
	for _, s := range migrateSteps {
		if err := d.step(ctx, c, s.name); err != nil {
			if isCancel(err) {
				return compute.DiskInfo{}, err
			}
			d.undoMigrate(job)
			return compute.DiskInfo{}, &compute.InstanceFaultRollback{Err: err}
		}
		if err := d.migrateStep(job, s.name); err != nil {
			return compute.DiskInfo{}, err
		}
		job.sent.Percent, job.sent.Step = s.percent, s.name
		if req.Progress != nil {
			req.Progress(job.sent)
		}
	}
	return job.mv.diskInfo, nil
}

// prepareMigrate checks the request before anything is touched, and finds
// a move done already.
func (d *FakeDriver) prepareMigrate(job *migrateJob) (compute.DiskInfo, bool, error) {
	req := job.req
	if req.Instance == nil || req.Migration == nil || req.NewFlavor == nil {
		return compute.DiskInfo{}, false, &compute.InvalidRecordError{Kind: compute.KindMigration,
			ID: migrationUUID(req.Migration), Field: "request", Reason: "instance, migration and new flavor are required"}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if mv, ok := d.moves[req.Migration.UUID]; ok && mv.done {
		return mv.diskInfo, true, nil
	}
	if _, err := d.hostLocked(req.DestHost); err != nil {
		return compute.DiskInfo{}, false, err
	}
	h, g, err := d.guestLocked(req.Host, req.Instance, "")
	if err != nil {
		return compute.DiskInfo{}, false, err
	}
	job.name = g.Name
	if err := d.refuseMoveLocked(h, g, req); err != nil {
		return compute.DiskInfo{}, false, err
	}
	return compute.DiskInfo{}, false, nil
}

// refuseMoveLocked says what XenAPI refuses before touching anything.
func (d *FakeDriver) refuseMoveLocked(h *fakeHost, g *Guest, req compute.MigrateDiskRequest) error {
	rollback := func(format string, a ...any) error {
		return &compute.InstanceFaultRollback{Err: fmt.Errorf("computetest: "+format, a...)}
	}
	switch {
	case req.Host == req.DestHost && !d.caps.SupportsMigrateToSameHost:
		return rollback("UnableToMigrateToSelf: instance %s to host %s", g.InstanceUUID, req.Host)
	case req.Suspend && !d.caps.SupportsSuspendMigrate:
		return fmt.Errorf("computetest: suspended migration: %w", compute.ErrNotImplemented)
	case req.Suspend && g.Flavor.ID != req.NewFlavor.ID:
		return rollback("a suspended migration cannot change the flavor (%s to %s)", g.Flavor.ID, req.NewFlavor.ID)
	case req.NewFlavor.RootGB == 0 && h.vdis[g.VDIs[0]].VirtualSize > 0:
		return rollback("ResizeError: can't resize a disk to 0 GB")
	case req.NewFlavor.EphemeralGB < g.Flavor.EphemeralGB:
		return rollback("ResizeError: can't resize down ephemeral disks (%d GB to %d GB)", g.Flavor.EphemeralGB, req.NewFlavor.EphemeralGB)
	}
	return nil
}

// migrateStep does one step of the move, finding it done when it is.
func (d *FakeDriver) migrateStep(job *migrateJob, step string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	src, g, err := d.guestLocked(job.req.Host, job.req.Instance, "")
	if err != nil {
		return err
	}
	dst := d.hosts[job.req.DestHost]
	mig := job.req.Migration.UUID
	switch step {
	case "snapshot":
		if d.moves[mig] == nil {
			d.moves[mig] = &move{source: src.config.Host, dest: dst.config.Host, wasPower: g.Power}
		}
		job.mv = d.moves[mig]
	case "send-base":
		d.sendLocked(job, src, dst, g, g.Power == statemachine.PowerRunning)
	case "power-off":
		g.Power = statemachine.PowerShutdown
		if job.req.Suspend {
			g.Power = statemachine.PowerSuspended
		}
		job.sent.PoweredOff = true
	case "send-delta":
		d.sendLocked(job, src, dst, g, false)
	case "rename-orig":
		delete(src.guests, g.Name)
		g.Name += OrigSuffix
		g.MigrationUUID = mig
		src.guests[g.Name] = g
		job.mv.diskInfo = d.diskInfoLocked(job, dst)
		job.mv.done = true
	}
	return nil
}

// sendLocked brings the staged copies on dst up to the source disks: the
// first send copies each whole disk, a later one what was written since.
func (d *FakeDriver) sendLocked(job *migrateJob, src, dst *fakeHost, g *Guest, running bool) {
	mig := job.req.Migration.UUID
	for _, id := range g.VDIs {
		v := src.vdis[id]
		staged := stagedVDI(dst, mig, v.Label)
		if staged == nil {
			c := *v
			c.MigrationUUID = mig
			if c.Userdevice == "0" && gib(job.req.NewFlavor.RootGB) < c.VirtualSize {
				c.VirtualSize = gib(job.req.NewFlavor.RootGB) // _migrate_disk_resizing_down
			}
			staged = dst.vdis[d.newVDILocked(dst, c)]
			dst.written[staged.UUID] = src.written[id]
			d.countSent(job, v.VirtualSize, running)
		}
		d.countSent(job, src.written[id]-dst.written[staged.UUID], running)
		staged.SHA256 = v.SHA256
		dst.written[staged.UUID] = src.written[id]
	}
}

func (d *FakeDriver) countSent(job *migrateJob, n int64, running bool) {
	job.sent.BytesSent += n
	if running {
		job.sent.BytesSentRunning += n
	}
}

// stagedVDI returns the disk labelled label that migration mig sent to h.
func stagedVDI(h *fakeHost, mig, label string) *VDI {
	for _, v := range h.vdis {
		if v.MigrationUUID == mig && v.Label == label {
			return v
		}
	}
	return nil
}

func (d *FakeDriver) diskInfoLocked(job *migrateJob, dst *fakeHost) compute.DiskInfo {
	info := compute.DiskInfo{Transport: "fake", BytesSent: job.sent.BytesSent, BytesSentRunning: job.sent.BytesSentRunning}
	for _, v := range sortedVDIs(dst, job.req.Migration.UUID) {
		info.Disks = append(info.Disks, compute.Disk{Label: v.Label, Userdevice: v.Userdevice, VDI: v.UUID,
			VirtualSize: v.VirtualSize, SHA256: v.SHA256})
	}
	return info
}

// sortedVDIs returns the disks migration mig sent to h, by userdevice.
func sortedVDIs(h *fakeHost, mig string) []*VDI {
	var out []*VDI
	for _, v := range h.vdis {
		if v.MigrationUUID == mig {
			out = append(out, v)
		}
	}
	sortVDIs(out)
	return out
}

func sortVDIs(vs []*VDI) {
	sort.Slice(vs, func(i, j int) bool { return vs[i].Userdevice < vs[j].Userdevice })
}

// undoMigrate puts the source back as it was and removes the staged disks.
func (d *FakeDriver) undoMigrate(job *migrateJob) {
	d.mu.Lock()
	defer d.mu.Unlock()
	mig := job.req.Migration.UUID
	mv := d.moves[mig]
	if mv == nil {
		return
	}
	for _, v := range sortedVDIs(d.hosts[mv.dest], mig) {
		d.deleteVDILocked(d.hosts[mv.dest], v.UUID)
	}
	if g, ok := d.hosts[mv.source].guests[job.name]; ok {
		g.Power = mv.wasPower
	}
	delete(d.moves, mig)
}

// FinishMigration implements [compute.Driver]: the staged disks become
// the destination guest with the new flavor, grown when ResizeInstance,
// started when PowerOn. Every step finds itself done on a repeated call;
// an injected failure destroys the guest it made and keeps the staged
// disks (the source's <name>-orig is untouched, so a revert can follow).
func (d *FakeDriver) FinishMigration(ctx context.Context, req compute.FinishMigrationRequest) error {
	c, err := d.begin(ctx, instanceCall(MethodFinishMigration, req.Host, req.Instance, req.Migration))
	if err != nil {
		return err
	}
	if req.Instance == nil || req.Migration == nil || req.NewFlavor == nil {
		return &compute.InvalidRecordError{Kind: compute.KindMigration, ID: migrationUUID(req.Migration),
			Field: "request", Reason: "instance, migration and new flavor are required"}
	}
	var p compute.Progress
	for _, s := range finishSteps {
		if err := d.step(ctx, c, s.name); err != nil {
			if !isCancel(err) {
				d.removeMigrationGuests(req.Host, req.Migration.UUID)
			}
			return err
		}
		if err := d.finishStep(req, s.name); err != nil {
			return err
		}
		p.Percent, p.Step = s.percent, s.name
		if req.Progress != nil {
			req.Progress(p)
		}
	}
	return nil
}

func (d *FakeDriver) finishStep(req compute.FinishMigrationRequest, step string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	h, err := d.hostLocked(req.Host)
	if err != nil {
		return err
	}
	name := guestName(req.Instance)
	g := h.guests[name]
	if g != nil && g.MigrationUUID != req.Migration.UUID {
		return &compute.AlreadyExistsError{Kind: "guest", ID: req.Host + "/" + name}
	}
	switch step {
	case "import":
		for _, disk := range req.DiskInfo.Disks {
			if v, ok := h.vdis[disk.VDI]; !ok || v.MigrationUUID != req.Migration.UUID {
				return &compute.NotFoundError{Kind: "VDI", ID: req.Host + "/" + disk.VDI}
			}
		}
	case "create":
		if g == nil {
			g = &Guest{Name: name, InstanceUUID: req.Instance.UUID, Host: req.Host, Power: statemachine.PowerShutdown,
				Flavor: *req.NewFlavor.Clone(), MigrationUUID: req.Migration.UUID}
			for _, disk := range req.DiskInfo.Disks {
				g.VDIs = append(g.VDIs, disk.VDI)
			}
			h.guests[name] = g
		}
	case "resize-disks":
		if req.ResizeInstance && len(g.VDIs) > 0 {
			root := h.vdis[g.VDIs[0]]
			root.VirtualSize = max(root.VirtualSize, gib(req.NewFlavor.RootGB))
		}
	case "power-on":
		g.Power = powerFor(req.PowerOn)
	}
	return nil
}

// removeMigrationGuests destroys the guests migration mig created on host,
// keeping their disks.
func (d *FakeDriver) removeMigrationGuests(host, mig string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if h, ok := d.hosts[host]; ok {
		for name, g := range h.guests {
			if g.MigrationUUID == mig && !strings.HasSuffix(name, OrigSuffix) {
				delete(h.guests, name)
			}
		}
	}
}

// ConfirmMigration implements [compute.Driver]: the <name>-orig guest of
// the migration and its disks are destroyed; none left is no error.
func (d *FakeDriver) ConfirmMigration(ctx context.Context, req compute.ConfirmMigrationRequest) error {
	c := instanceCall(MethodConfirmMigration, req.Host, req.Instance, req.Migration)
	return d.onHost(ctx, c, needMigration(req.Instance, req.Migration), func(h *fakeHost) error {
		orig, ok := h.guests[guestName(req.Instance)+OrigSuffix]
		if !ok || orig.MigrationUUID != req.Migration.UUID {
			return nil // done already, or kept by another migration: not this confirm's to destroy
		}
		d.destroyGuestLocked(h, orig, true)
		delete(d.moves, req.Migration.UUID)
		return nil
	})
}

// needMigration is the error of a request without its instance or
// migration.
func needMigration(inst *compute.Instance, m *compute.Migration) error {
	if inst == nil || m == nil {
		return &compute.InvalidRecordError{Kind: compute.KindMigration, ID: migrationUUID(m), Field: "request",
			Reason: "instance and migration are required"}
	}
	return nil
}

// FinishRevertMigration implements [compute.Driver]: <name>-orig is
// renamed back and started when PowerOn (resumed, when it moved
// suspended).
func (d *FakeDriver) FinishRevertMigration(ctx context.Context, req compute.FinishRevertRequest) error {
	c, err := d.begin(ctx, instanceCall(MethodFinishRevertMigration, req.Host, req.Instance, req.Migration))
	if err != nil {
		return err
	}
	if err := needMigration(req.Instance, req.Migration); err != nil {
		return err
	}
	if err := d.restoreOrig(req); err != nil {
		return err
	}
	if err := d.step(ctx, c, revertSteps[0]); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	_, g, err := d.guestLocked(req.Host, req.Instance, "")
	if err != nil {
		return err
	}
	if req.PowerOn && g.Bootlocked {
		return fmt.Errorf("%s on %s: %w", g.Name, req.Host, ErrBootlocked)
	}
	if req.PowerOn || g.Power == statemachine.PowerSuspended {
		g.Power = powerFor(req.PowerOn)
	}
	delete(d.moves, req.Migration.UUID)
	return nil
}

// restoreOrig renames the migration's <name>-orig back; the guest under
// its own name (already restored, or never renamed) is left as it is.
func (d *FakeDriver) restoreOrig(req compute.FinishRevertRequest) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	h, g, err := d.guestLocked(req.Host, req.Instance, "")
	if err == nil && g.MigrationUUID == "" {
		return nil
	}
	if h == nil {
		return err
	}
	_, orig, err := d.guestLocked(req.Host, req.Instance, OrigSuffix)
	if err != nil {
		return err
	}
	if g != nil { // a guest of the migration under the instance's name: not the source's
		return &compute.AlreadyExistsError{Kind: "guest", ID: req.Host + "/" + g.Name}
	}
	delete(h.guests, orig.Name)
	orig.Name = strings.TrimSuffix(orig.Name, OrigSuffix)
	orig.MigrationUUID = ""
	h.guests[orig.Name] = orig
	return nil
}

// Destroy implements [compute.Driver]. With a migration it removes only
// the guests that migration created on the host (never a <name>-orig) and,
// with DestroyDisks, their disks and the disks the migration staged there;
// without one, the instance's guest and its rescue guest. Nothing to
// destroy is no error.
func (d *FakeDriver) Destroy(ctx context.Context, req compute.DestroyRequest) error {
	c := instanceCall(MethodDestroy, req.Host, req.Instance, req.Migration)
	return d.onHost(ctx, c, nilInstance(req.Instance), func(h *fakeHost) error {
		name := guestName(req.Instance)
		if req.Migration == nil {
			d.removeRescueLocked(h, name)
			if g, ok := h.guests[name]; ok {
				d.destroyGuestLocked(h, g, req.DestroyDisks)
			}
			return nil
		}
		for _, g := range h.guests {
			if g.MigrationUUID == req.Migration.UUID && !strings.HasSuffix(g.Name, OrigSuffix) {
				d.destroyGuestLocked(h, g, req.DestroyDisks)
			}
		}
		if req.DestroyDisks {
			d.removeUnusedLocked(h, req.Migration.UUID)
		}
		return nil
	})
}

// destroyGuestLocked removes g and, with disks, those of its disks no
// other guest uses.
func (d *FakeDriver) destroyGuestLocked(h *fakeHost, g *Guest, disks bool) {
	delete(h.guests, g.Name)
	if !disks {
		return
	}
	used := usedVDIs(h)
	for _, id := range g.VDIs {
		if !used[id] {
			d.deleteVDILocked(h, id)
		}
	}
}

// removeUnusedLocked removes the disks migration mig staged on h that no
// guest uses.
func (d *FakeDriver) removeUnusedLocked(h *fakeHost, mig string) {
	used := usedVDIs(h)
	for id, v := range h.vdis {
		if v.MigrationUUID == mig && !used[id] {
			d.deleteVDILocked(h, id)
		}
	}
}

func usedVDIs(h *fakeHost) map[string]bool {
	used := map[string]bool{}
	for _, g := range h.guests {
		for _, id := range g.VDIs {
			used[id] = true
		}
	}
	return used
}

// CleanupMigration implements [compute.Driver]: on req.Host it removes
// the guests req.Migration created or kept and the disks it staged, except
// what the instance still needs: its guest on the host it is on, and a
// <name>-orig while the instance has no guest of its own anywhere (the only
// copy of its disks).
func (d *FakeDriver) CleanupMigration(ctx context.Context, req compute.CleanupMigrationRequest) error {
	c := instanceCall(MethodCleanupMigration, req.Host, req.Instance, req.Migration)
	var invalid error
	if req.Migration == nil {
		invalid = &compute.InvalidRecordError{Kind: compute.KindMigration, Field: "record", Reason: "nil"}
	}
	return d.onHost(ctx, c, invalid, func(h *fakeHost) error {
		for _, g := range h.guests {
			if g.MigrationUUID == req.Migration.UUID && !d.neededLocked(g, req.Instance) {
				d.destroyGuestLocked(h, g, true)
			}
		}
		d.removeUnusedLocked(h, req.Migration.UUID)
		if _, kept := h.guests[guestNameOf(req)+OrigSuffix]; !kept {
			delete(d.moves, req.Migration.UUID)
		}
		return nil
	})
}

func guestNameOf(req compute.CleanupMigrationRequest) string {
	if req.Instance == nil {
		return ""
	}
	return guestName(req.Instance)
}

// neededLocked reports whether the instance still needs guest g.
func (d *FakeDriver) neededLocked(g *Guest, inst *compute.Instance) bool {
	if inst == nil {
		return false
	}
	if !strings.HasSuffix(g.Name, OrigSuffix) {
		return inst.Host == g.Host
	}
	for _, h := range d.hosts {
		if other, ok := h.guests[guestName(inst)]; ok && other.InstanceUUID == inst.UUID {
			return false
		}
	}
	return true
}

func isCancel(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}
