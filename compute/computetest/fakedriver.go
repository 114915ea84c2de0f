package computetest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/scheduler"
	"github.com/xenflow/xenflow/statemachine"
)

// Method names a [compute.Driver] method in the call log and in faults.
type Method string

// The methods of compute.Driver.
const (
	MethodGetInfo                Method = "GetInfo"
	MethodGetAvailableResource   Method = "GetAvailableResource"
	MethodMigrateDiskAndPowerOff Method = "MigrateDiskAndPowerOff"
	MethodFinishMigration        Method = "FinishMigration"
	MethodConfirmMigration       Method = "ConfirmMigration"
	MethodFinishRevertMigration  Method = "FinishRevertMigration"
	MethodDestroy                Method = "Destroy"
	MethodPowerOff               Method = "PowerOff"
	MethodPowerOn                Method = "PowerOn"
	MethodRescue                 Method = "Rescue"
	MethodUnrescue               Method = "Unrescue"
	MethodSnapshot               Method = "Snapshot"
	MethodSpawn                  Method = "Spawn"
	MethodCleanupMigration       Method = "CleanupMigration"
	// MethodDeleteImage is compute.ImageDeleter's method.
	MethodDeleteImage Method = "DeleteImage"
)

// Suffixes of the guests the XenServer driver keeps beside an instance's.
const (
	// OrigSuffix names the source guest a move keeps for a revert
	// (nova/virt/xenapi/vmops.py, _migrate_disk_resizing_up renames it
	// <name>-orig).
	OrigSuffix = "-orig"
	// RescueSuffix names the rescue guest (vmops.py, rescue).
	RescueSuffix = "-rescue"
)

// ErrInjected is the error a [Fault] without its own Err returns.
var ErrInjected = errors.New("computetest: injected fault")

// Call is one entry of the call log, or the point a fault hook is asked
// about: a method's start (Step "") or one of its steps.
type Call struct {
	// Seq numbers the calls of the driver from 1 (steps share their
	// call's number).
	Seq           int
	Method        Method
	Step          string
	Host          string
	InstanceUUID  string
	MigrationUUID string
}

// Fault makes the driver fail: the Nth time Method reaches Step ("" is the
// call's start, before anything is touched), or every time when Nth is 0.
// A method whose contract rolls back (MigrateDiskAndPowerOff, Rescue,
// FinishMigration) undoes its earlier steps first.
type Fault struct {
	Method Method
	Step   string
	Nth    int
	// Err is returned; ErrInjected when nil.
	Err error
}

// HostConfig is a simulated host: its name and the capacities
// GetAvailableResource reports (TotalUsableRAMMB, TotalUsableDiskGB,
// VCPUsTotal, allocation ratios, cell, zone, aggregates, Disabled, Down);
// the used and free amounts are counted from the host's guests.
type HostConfig = scheduler.HostState

// Guest is a simulated VM, as [FakeDriver.Guests] reports it.
type Guest struct {
	// Name is the instance's name, or it with OrigSuffix or RescueSuffix.
	Name         string
	InstanceUUID string
	Host         string
	Power        statemachine.PowerState
	Flavor       compute.Flavor
	// VDIs are the UUIDs of the guest's disks, in userdevice order.
	VDIs []string
	// Bootlocked is XenServer's blocked_operations start, set by Rescue.
	Bootlocked bool
	// MigrationUUID is the migration that created the guest or kept it.
	MigrationUUID string
}

// VDI is a simulated disk.
type VDI struct {
	UUID string
	Host string
	// Label is the chain label (the instance UUID, or with
	// "_ephemeral_N"); Userdevice its position on the guest.
	Label       string
	Userdevice  string
	VirtualSize int64
	// SHA256 is the hex digest standing for the disk's content.
	SHA256 string
	// MigrationUUID is the migration that sent the disk to this host.
	MigrationUUID string
}

// FakeDriver is an in-memory [compute.Driver]: hosts, guests and disks that
// it moves as the XenServer driver does (nova/virt/xenapi/vmops.py),
// idempotent as the Driver contract asks, with fault injection and a call
// log. It is safe for concurrent use. A cancelled context stops a method
// between two steps and leaves what a crash would; calling the method
// again finishes the job.
type FakeDriver struct {
	mu     sync.Mutex
	caps   compute.DriverCapabilities
	hosts  map[string]*fakeHost
	images map[string]VDI // image store: image ID -> root disk
	moves  map[string]*move
	seq    int
	calls  []Call
	faults []*faultRule
	hook   func(Call) error
	vdiSeq int
}

type fakeHost struct {
	config HostConfig
	guests map[string]*Guest // by name
	vdis   map[string]*VDI   // by UUID
	// written counts the bytes ever written to each disk (by UUID); a
	// copy starts with its source's count, so a later send moves the
	// difference.
	written map[string]int64
}

// move is what MigrateDiskAndPowerOff knows of a migration.
type move struct {
	source, dest string
	wasPower     statemachine.PowerState
	diskInfo     compute.DiskInfo
	done         bool
}

type faultRule struct {
	Fault
	seen int
}

// FakeDriverOption configures a FakeDriver.
type FakeDriverOption func(*FakeDriver)

// WithCapabilities sets what Capabilities reports (default: no move to
// the same host, suspend-migrate and cross-cell supported).
func WithCapabilities(c compute.DriverCapabilities) FakeDriverOption {
	return func(d *FakeDriver) { d.caps = c }
}

// NewFakeDriver returns a driver with no hosts.
func NewFakeDriver(opts ...FakeDriverOption) *FakeDriver {
	d := &FakeDriver{
		caps:   compute.DriverCapabilities{SupportsSuspendMigrate: true, SupportsCrossCell: true},
		hosts:  map[string]*fakeHost{},
		images: map[string]VDI{},
		moves:  map[string]*move{},
	}
	for _, o := range opts {
		if o != nil {
			o(d)
		}
	}
	return d
}

var (
	_ compute.Driver           = (*FakeDriver)(nil)
	_ compute.HostStateWatcher = (*FakeDriver)(nil)
	_ compute.ImageDeleter     = (*FakeDriver)(nil)
)

// AddHost adds a simulated host (Node defaults to Host).
func (d *FakeDriver) AddHost(c HostConfig) error {
	if c.Host == "" {
		return &compute.InvalidRecordError{Kind: "host", Field: "host", Reason: "empty"}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.hosts[c.Host]; ok {
		return &compute.AlreadyExistsError{Kind: "host", ID: c.Host}
	}
	if c.Node == "" {
		c.Node = c.Host
	}
	d.hosts[c.Host] = &fakeHost{config: c, guests: map[string]*Guest{}, vdis: map[string]*VDI{}, written: map[string]int64{}}
	return nil
}

// AddGuest creates inst's guest on host, as a boot would: a root disk of
// the flavor's root_gb (at least 1 GiB), one ephemeral disk when it has
// ephemeral_gb, content named by the instance UUID, and power.
func (d *FakeDriver) AddGuest(host string, inst *compute.Instance, power statemachine.PowerState) error {
	if inst == nil || inst.Flavor == nil {
		return &compute.InvalidRecordError{Kind: compute.KindInstance, Field: "flavor", Reason: "nil"}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	h, err := d.hostLocked(host)
	if err != nil {
		return err
	}
	name := guestName(inst)
	if _, ok := h.guests[name]; ok {
		return &compute.AlreadyExistsError{Kind: "guest", ID: host + "/" + name}
	}
	g := &Guest{Name: name, InstanceUUID: inst.UUID, Host: host, Power: power, Flavor: *inst.Flavor.Clone()}
	g.VDIs = append(g.VDIs, d.newVDILocked(h, VDI{Label: inst.UUID, Userdevice: "0",
		VirtualSize: gib(max(inst.Flavor.RootGB, 1)), SHA256: digest(inst.UUID)}))
	if inst.Flavor.EphemeralGB > 0 {
		g.VDIs = append(g.VDIs, d.newVDILocked(h, VDI{Label: inst.UUID + "_ephemeral_1", Userdevice: "4",
			VirtualSize: gib(inst.Flavor.EphemeralGB), SHA256: digest(inst.UUID + "_ephemeral_1")}))
	}
	h.guests[name] = g
	return nil
}

// AddImage puts an image in the image store Spawn reads.
func (d *FakeDriver) AddImage(imageID string, virtualSize int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.images[imageID] = VDI{Label: imageID, Userdevice: "0", VirtualSize: virtualSize, SHA256: digest("image " + imageID)}
}

// WriteDisk is the guest writing data to the disk at userdevice of the
// guest named name on host: the disk's digest chains data in, and the
// bytes are sent again by the next send of the disk.
func (d *FakeDriver) WriteDisk(host, name, userdevice string, data []byte) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	h, err := d.hostLocked(host)
	if err != nil {
		return err
	}
	g, ok := h.guests[name]
	if !ok {
		return &compute.NotFoundError{Kind: "guest", ID: host + "/" + name}
	}
	for _, id := range g.VDIs {
		if v := h.vdis[id]; v.Userdevice == userdevice {
			v.SHA256 = digest(v.SHA256 + string(data))
			h.written[id] += int64(len(data))
			return nil
		}
	}
	return &compute.NotFoundError{Kind: "VDI", ID: host + "/" + name + "/" + userdevice}
}

// Guests returns copies of host's guests, by name.
func (d *FakeDriver) Guests(host string) []Guest {
	d.mu.Lock()
	defer d.mu.Unlock()
	h, ok := d.hosts[host]
	if !ok {
		return nil
	}
	out := make([]Guest, 0, len(h.guests))
	for _, g := range h.guests {
		c := *g
		c.VDIs = append([]string(nil), g.VDIs...)
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// VDIs returns copies of host's disks, by UUID.
func (d *FakeDriver) VDIs(host string) []VDI { return d.listVDIs(host, false) }

// Orphans returns the disks on host no guest uses: what a finished or
// cleaned-up flow must not leave behind.
func (d *FakeDriver) Orphans(host string) []VDI { return d.listVDIs(host, true) }

// listVDIs returns copies of host's disks (only those no guest uses, when
// orphans), by UUID.
func (d *FakeDriver) listVDIs(host string, orphans bool) []VDI {
	d.mu.Lock()
	defer d.mu.Unlock()
	h, ok := d.hosts[host]
	if !ok {
		return nil
	}
	used := usedVDIs(h)
	out := []VDI{}
	for id, v := range h.vdis {
		if !orphans || !used[id] {
			out = append(out, *v)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].UUID < out[j].UUID })
	return out
}

// InjectFault adds a fault; faults stay until ClearFaults.
func (d *FakeDriver) InjectFault(f Fault) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.faults = append(d.faults, &faultRule{Fault: f})
}

// ClearFaults removes every fault and the hook.
func (d *FakeDriver) ClearFaults() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.faults, d.hook = nil, nil
}

// SetHook sets a function asked at every call's start and every step: an
// error it returns fails the call there, as a Fault would. It runs without
// the driver's lock held, so it may call the driver (or cancel the
// context of the call, to simulate a crash). nil removes it.
func (d *FakeDriver) SetHook(hook func(Call) error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.hook = hook
}

// Calls returns the call log, oldest first (method starts only).
func (d *FakeDriver) Calls() []Call {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]Call(nil), d.calls...)
}

// CallCount returns how many times m was called.
func (d *FakeDriver) CallCount(m Method) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, c := range d.calls {
		if c.Method == m {
			n++
		}
	}
	return n
}

// begin logs a call and asks the faults about its start.
func (d *FakeDriver) begin(ctx context.Context, c Call) (Call, error) {
	d.mu.Lock()
	d.seq++
	c.Seq = d.seq
	d.calls = append(d.calls, c)
	d.mu.Unlock()
	return c, d.step(ctx, c, "")
}

// step asks the context, the faults and the hook whether call c may go on
// at step.
func (d *FakeDriver) step(ctx context.Context, c Call, step string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.Step = step
	d.mu.Lock()
	hook := d.hook
	var err error
	for _, f := range d.faults {
		if f.Method != c.Method || f.Step != step {
			continue
		}
		f.seen++
		if f.Nth == 0 || f.Nth == f.seen {
			err = f.Err
			if err == nil {
				err = ErrInjected
			}
		}
	}
	d.mu.Unlock()
	if err != nil {
		return fmt.Errorf("computetest: %s on %s at %q: %w", c.Method, c.Host, stepName(step), err)
	}
	if hook != nil {
		return hook(c)
	}
	return nil
}

func stepName(step string) string {
	if step == "" {
		return "start"
	}
	return step
}

// onHost begins call c, returns invalid when the request is bad (checked
// before anything is touched), and runs fn with the driver locked and c's
// host.
func (d *FakeDriver) onHost(ctx context.Context, c Call, invalid error, fn func(h *fakeHost) error) error {
	if _, err := d.begin(ctx, c); err != nil {
		return err
	}
	return d.locked(c.Host, invalid, fn)
}

// onGuest is onHost for a call on inst's own guest on c's host.
func (d *FakeDriver) onGuest(ctx context.Context, c Call, inst *compute.Instance, fn func(h *fakeHost, g *Guest) error) error {
	if _, err := d.begin(ctx, c); err != nil {
		return err
	}
	return d.lockedGuest(c.Host, inst, fn)
}

// locked returns invalid, or runs fn with the driver locked and host.
func (d *FakeDriver) locked(host string, invalid error, fn func(h *fakeHost) error) error {
	if invalid != nil {
		return invalid
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	h, err := d.hostLocked(host)
	if err != nil {
		return err
	}
	return fn(h)
}

// lockedGuest runs fn with the driver locked and inst's guest on host.
func (d *FakeDriver) lockedGuest(host string, inst *compute.Instance, fn func(h *fakeHost, g *Guest) error) error {
	return d.locked(host, nilInstance(inst), func(h *fakeHost) error {
		g, ok := h.guests[guestName(inst)]
		if !ok {
			return &compute.NotFoundError{Kind: "guest", ID: host + "/" + guestName(inst)}
		}
		return fn(h, g)
	})
}

// nilInstance is the error of a request without its instance.
func nilInstance(inst *compute.Instance) error {
	if inst == nil {
		return &compute.InvalidRecordError{Kind: compute.KindInstance, Field: "record", Reason: "nil"}
	}
	return nil
}

// hostLocked returns the host, or a *NotFoundError.
func (d *FakeDriver) hostLocked(name string) (*fakeHost, error) {
	h, ok := d.hosts[name]
	if !ok {
		return nil, &compute.NotFoundError{Kind: "host", ID: name}
	}
	return h, nil
}

// newVDILocked stores a copy of v on h under a new UUID and returns it.
func (d *FakeDriver) newVDILocked(h *fakeHost, v VDI) string {
	d.vdiSeq++
	v.UUID = fmt.Sprintf("vdi-%06d", d.vdiSeq)
	v.Host = h.config.Host
	h.vdis[v.UUID] = &v
	return v.UUID
}

// deleteVDILocked removes disk id from h.
func (d *FakeDriver) deleteVDILocked(h *fakeHost, id string) {
	delete(h.vdis, id)
	delete(h.written, id)
}

// guestName is the name-label of an instance's guest.
func guestName(inst *compute.Instance) string {
	if inst.Name != "" {
		return inst.Name
	}
	return "instance-" + inst.UUID
}

func digest(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func gib(n int) int64 { return int64(n) << 30 }

func instanceUUID(inst *compute.Instance) string {
	if inst == nil {
		return ""
	}
	return inst.UUID
}

func migrationUUID(m *compute.Migration) string {
	if m == nil {
		return ""
	}
	return m.UUID
}
