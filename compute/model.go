package compute

import (
	"fmt"
	"maps"
	"time"

	"github.com/xenflow/xenflow/statemachine"
)

// System metadata keys the flows use.
const (
	// SysMetaOldVMState is where prep_resize keeps the vm_state the
	// instance had before the move (active or stopped).
	SysMetaOldVMState = "old_vm_state"
	// SysMetaImageBaseImageRef is the image a rescue falls back to.
	SysMetaImageBaseImageRef = "image_base_image_ref"
)

// Flavor is an instance type: the sizes an instance is given.
type Flavor struct {
	// ID is the flavor's flavorid, the name users pass to resize.
	ID          string
	Name        string
	MemoryMB    int
	VCPUs       int
	RootGB      int
	EphemeralGB int
	// SwapMB is the swap disk size in MiB (Nova's flavor.swap).
	SwapMB   int
	Disabled bool
	// ExtraSpecs are the flavor's extra_specs (e.g. "hw:cpu_policy").
	ExtraSpecs map[string]string
}

// Clone returns a deep copy of f; nil gives nil.
func (f *Flavor) Clone() *Flavor {
	if f == nil {
		return nil
	}
	c := *f
	c.ExtraSpecs = cloneMap(f.ExtraSpecs)
	return &c
}

// Instance is a server as Nova's instances table holds it, reduced to what
// moving and rescuing it needs.
type Instance struct {
	UUID     string
	Name     string
	Hostname string
	// Host and Node are the compute service and hypervisor node the
	// instance is on; a resize points them at the destination in
	// resize_instance.
	Host string
	Node string
	// Cell names the cell database holding this copy of the instance.
	Cell             string
	AvailabilityZone string
	// ProjectID and UserID own the instance; quota is counted against them.
	ProjectID string
	UserID    string

	VMState    statemachine.VMState
	TaskState  statemachine.TaskState
	PowerState statemachine.PowerState

	Flavor *Flavor
	// OldFlavor and NewFlavor are set while a move is in progress.
	OldFlavor *Flavor
	NewFlavor *Flavor

	// Progress is the percentage of the current operation, 0..100.
	Progress int
	Locked   bool
	// LaunchedAt is when the guest last started; zero means never.
	LaunchedAt time.Time
	ImageRef   string
	// SystemMetadata is Nova's system_metadata (e.g. SysMetaOldVMState).
	SystemMetadata map[string]string
	// Hidden marks the copy of an instance a cross-cell resize keeps in
	// the cell the API does not show.
	Hidden bool

	// CreatedAt and UpdatedAt are set by the Store.
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Clone returns a deep copy of i; nil gives nil. The copy and its three
// flavors are one allocation: the Store copies every record it takes in
// and gives out, and the flows' steps are mostly these copies.
func (i *Instance) Clone() *Instance {
	if i == nil {
		return nil
	}
	b := &struct {
		inst    Instance
		flavors [3]Flavor
	}{inst: *i}
	c := &b.inst
	c.Flavor = cloneFlavorInto(&b.flavors[0], i.Flavor)
	c.OldFlavor = cloneFlavorInto(&b.flavors[1], i.OldFlavor)
	c.NewFlavor = cloneFlavorInto(&b.flavors[2], i.NewFlavor)
	c.SystemMetadata = cloneMap(i.SystemMetadata)
	return c
}

// cloneFlavorInto copies f into dst and returns dst; nil gives nil.
func cloneFlavorInto(dst, f *Flavor) *Flavor {
	if f == nil {
		return nil
	}
	*dst = *f
	dst.ExtraSpecs = cloneMap(f.ExtraSpecs)
	return dst
}

// Launched reports whether launched_at is set.
func (i *Instance) Launched() bool { return i != nil && !i.LaunchedAt.IsZero() }

// Subject returns what statemachine.Check looks at; admin says whether the
// request has an admin context. A nil instance gives a zero Subject, which
// every precondition refuses.
func (i *Instance) Subject(admin bool) statemachine.Subject {
	if i == nil {
		return statemachine.Subject{Admin: admin}
	}
	return statemachine.Subject{InstanceUUID: i.UUID, VMState: i.VMState, TaskState: i.TaskState,
		Launched: i.Launched(), Locked: i.Locked, Admin: admin}
}

// FlowState returns the flow state of the instance with migration m: its
// vm_state and task_state, m's status and phase (statemachine.MigrationNone
// and no phase when m is nil). It is what TransitionStore.Transition
// compares with TransitionRequest.Expect.
func (i *Instance) FlowState(m *Migration) statemachine.FlowState {
	var s statemachine.FlowState
	if i != nil {
		s.VM, s.Task = i.VMState, i.TaskState
	}
	if m != nil {
		s.Migration, s.Phase = m.Status, m.Phase
	}
	return s
}

// SetFlowState writes s into the records: vm_state and task_state into i,
// status and phase into m (when m is not nil), so that i.FlowState(m) is s.
// A TransitionRequest.Apply calls it with the target state of the flow row
// it writes.
func (i *Instance) SetFlowState(m *Migration, s statemachine.FlowState) {
	if i != nil {
		i.VMState, i.TaskState = s.VM, s.Task
	}
	if m != nil {
		m.Status, m.Phase = s.Migration, s.Phase
	}
}

// Facts returns the facts the flow tables' guards read: old_vm_state from
// the system metadata and the power state.
func (i *Instance) Facts() statemachine.Facts {
	if i == nil {
		return statemachine.Facts{}
	}
	return statemachine.Facts{OldVMState: statemachine.VMState(i.SystemMetadata[SysMetaOldVMState]),
		PowerState: i.PowerState}
}

// Status returns the API status of the instance.
func (i *Instance) Status() (statemachine.APIStatus, error) {
	if i == nil {
		return statemachine.StatusUnknown, &InvalidRecordError{Kind: KindInstance, Field: "record", Reason: "nil"}
	}
	return statemachine.Status(i.VMState, i.TaskState)
}

// Validate checks that i can be stored: not nil, a UUID, and Nova's values
// for vm_state, task_state and power_state. An empty vm_state is refused.
func (i *Instance) Validate() error {
	if i == nil {
		return &InvalidRecordError{Kind: KindInstance, Field: "record", Reason: "nil"}
	}
	if i.UUID == "" {
		return &InvalidRecordError{Kind: KindInstance, Field: "uuid", Reason: "empty"}
	}
	if !i.VMState.Valid() {
		return &InvalidRecordError{Kind: KindInstance, ID: i.UUID, Field: "vm_state",
			Reason: "unknown value " + quote(string(i.VMState))}
	}
	if !i.TaskState.Valid() {
		return &InvalidRecordError{Kind: KindInstance, ID: i.UUID, Field: "task_state",
			Reason: "unknown value " + quote(string(i.TaskState))}
	}
	if !i.PowerState.Valid() {
		return &InvalidRecordError{Kind: KindInstance, ID: i.UUID, Field: "power_state",
			Reason: "unknown value " + i.PowerState.String()}
	}
	if i.Progress < 0 || i.Progress > 100 {
		return &InvalidRecordError{Kind: KindInstance, ID: i.UUID, Field: "progress",
			Reason: "outside 0..100"}
	}
	for _, f := range []struct {
		name string
		f    *Flavor
	}{{"flavor", i.Flavor}, {"old_flavor", i.OldFlavor}, {"new_flavor", i.NewFlavor}} {
		if err := validateFlavor(KindInstance, i.UUID, f.name, f.f); err != nil {
			return err
		}
	}
	return nil
}

// validateFlavor refuses negative sizes in a flavor the record holds (a nil
// flavor is allowed).
func validateFlavor(kind, id, field string, f *Flavor) error {
	if f == nil {
		return nil
	}
	for _, v := range []struct {
		name string
		n    int
	}{{"memory_mb", f.MemoryMB}, {"vcpus", f.VCPUs}, {"root_gb", f.RootGB}, {"ephemeral_gb", f.EphemeralGB}, {"swap", f.SwapMB}} {
		if v.n < 0 {
			return &InvalidRecordError{Kind: kind, ID: id, Field: field + "." + v.name, Reason: "negative"}
		}
	}
	return nil
}

// Migration is a move of an instance between hosts (Nova's migrations table).
type Migration struct {
	UUID         string
	InstanceUUID string

	SourceCompute string
	SourceNode    string
	DestCompute   string
	DestNode      string
	// DestHost is the destination's address as the source reaches it.
	DestHost string

	OldFlavor *Flavor
	NewFlavor *Flavor

	Status statemachine.MigrationStatus
	// Phase tells apart the steps Nova runs within one status (e.g. the
	// destination claimed while pre-migrating); the flows set it with
	// the status through Instance.SetFlowState.
	Phase statemachine.MovePhase
	Type  statemachine.MigrationType
	// CrossCellMove is true for a cross-cell resize or migration.
	CrossCellMove bool

	// QuotaReservationID is the quota reservation held for this move, if
	// the quota ledger made one.
	QuotaReservationID string

	// DiskInfo is what the source's MigrateDiskAndPowerOff sent, kept for
	// the destination's FinishMigration (after a restart too) and as the
	// record of the bytes moved and the downtime.
	DiskInfo DiskInfo

	// CreatedAt and UpdatedAt are set by the Store; auto-confirm measures
	// its window from UpdatedAt.
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Clone returns a deep copy of m; nil gives nil. Like Instance.Clone it
// makes one allocation for the record and its flavors (and one for the
// disks of its DiskInfo).
func (m *Migration) Clone() *Migration {
	if m == nil {
		return nil
	}
	b := &struct {
		mig     Migration
		flavors [2]Flavor
	}{mig: *m}
	c := &b.mig
	c.OldFlavor = cloneFlavorInto(&b.flavors[0], m.OldFlavor)
	c.NewFlavor = cloneFlavorInto(&b.flavors[1], m.NewFlavor)
	c.DiskInfo.Disks = append([]Disk(nil), m.DiskInfo.Disks...)
	return c
}

// IsResize reports whether the move changes the flavor (Nova: the old and
// new instance type ids differ).
func (m *Migration) IsResize() bool {
	if m == nil || m.OldFlavor == nil || m.NewFlavor == nil {
		return false
	}
	return m.OldFlavor.ID != m.NewFlavor.ID
}

// Validate checks that m can be stored: not nil, a UUID, an instance UUID,
// a known status, phase and type.
func (m *Migration) Validate() error {
	if m == nil {
		return &InvalidRecordError{Kind: KindMigration, Field: "record", Reason: "nil"}
	}
	if m.UUID == "" {
		return &InvalidRecordError{Kind: KindMigration, Field: "uuid", Reason: "empty"}
	}
	if m.InstanceUUID == "" {
		return &InvalidRecordError{Kind: KindMigration, ID: m.UUID, Field: "instance_uuid", Reason: "empty"}
	}
	if !m.Status.Valid() {
		return &InvalidRecordError{Kind: KindMigration, ID: m.UUID, Field: "status",
			Reason: "unknown value " + quote(string(m.Status))}
	}
	if !m.Type.Valid() {
		return &InvalidRecordError{Kind: KindMigration, ID: m.UUID, Field: "migration_type",
			Reason: "unknown value " + quote(string(m.Type))}
	}
	if !m.Phase.Valid() {
		return &InvalidRecordError{Kind: KindMigration, ID: m.UUID, Field: "phase",
			Reason: "unknown value " + quote(string(m.Phase))}
	}
	if err := validateFlavor(KindMigration, m.UUID, "old_flavor", m.OldFlavor); err != nil {
		return err
	}
	if err := validateFlavor(KindMigration, m.UUID, "new_flavor", m.NewFlavor); err != nil {
		return err
	}
	return validateDiskInfo(m.UUID, m.DiskInfo)
}

// validateDiskInfo refuses negative sizes, counts and durations in a
// migration's disk info.
func validateDiskInfo(id string, d DiskInfo) error {
	bad := func(field string) error {
		return &InvalidRecordError{Kind: KindMigration, ID: id, Field: "disk_info." + field, Reason: "negative"}
	}
	switch {
	case d.BytesSent < 0:
		return bad("bytes_sent")
	case d.BytesSentRunning < 0:
		return bad("bytes_sent_running")
	case d.Downtime < 0:
		return bad("downtime")
	}
	for n, disk := range d.Disks {
		if disk.VirtualSize < 0 {
			return bad(fmt.Sprintf("disks[%d].virtual_size", n))
		}
	}
	return nil
}

// InstanceAction records an operation a user or the system started on an
// instance (Nova's instance_actions), with its events.
type InstanceAction struct {
	// RequestID identifies the request that started the action; with
	// InstanceUUID it is the action's key.
	RequestID    string
	InstanceUUID string
	Action       statemachine.Action
	UserID       string
	ProjectID    string
	StartTime    time.Time
	FinishTime   time.Time
	// Message is "Error" when an event of the action failed.
	Message string
	Events  []InstanceActionEvent
}

// Clone returns a deep copy of a; nil gives nil.
func (a *InstanceAction) Clone() *InstanceAction {
	if a == nil {
		return nil
	}
	c := *a
	c.Events = append([]InstanceActionEvent(nil), a.Events...)
	return &c
}

// Validate checks that a can be stored.
func (a *InstanceAction) Validate() error {
	if a == nil {
		return &InvalidRecordError{Kind: KindAction, Field: "record", Reason: "nil"}
	}
	if a.InstanceUUID == "" {
		return &InvalidRecordError{Kind: KindAction, Field: "instance_uuid", Reason: "empty"}
	}
	if a.RequestID == "" {
		return &InvalidRecordError{Kind: KindAction, ID: a.InstanceUUID, Field: "request_id", Reason: "empty"}
	}
	if _, err := statemachine.ParseAction(string(a.Action)); err != nil {
		return &InvalidRecordError{Kind: KindAction, ID: a.InstanceUUID + "/" + a.RequestID, Field: "action",
			Reason: "unknown value " + quote(string(a.Action))}
	}
	for _, e := range a.Events {
		if e.Event == "" {
			return &InvalidRecordError{Kind: KindAction, ID: a.InstanceUUID + "/" + a.RequestID,
				Field: "events", Reason: "an event has no name"}
		}
	}
	return nil
}

// Results of an instance action event.
const (
	EventResultSuccess = "Success"
	EventResultError   = "Error"
)

// InstanceActionEvent is one step of an action (Nova names them after the
// method, e.g. "compute_prep_resize", "conductor_migrate_server").
type InstanceActionEvent struct {
	Event      string
	Host       string
	StartTime  time.Time
	FinishTime time.Time
	// Result is EventResultSuccess or EventResultError once finished.
	Result    string
	Traceback string
}

// Fault records why an instance went wrong (Nova's instance_faults).
type Fault struct {
	InstanceUUID string
	// Code is the HTTP-like code of the exception (500 unless it says).
	Code    int
	Message string
	Details string
	Host    string
	// CreatedAt is set by the Store.
	CreatedAt time.Time
}

// Clone returns a copy of f; nil gives nil.
func (f *Fault) Clone() *Fault {
	if f == nil {
		return nil
	}
	c := *f
	return &c
}

// Validate checks that f can be stored.
func (f *Fault) Validate() error {
	if f == nil {
		return &InvalidRecordError{Kind: KindFault, Field: "record", Reason: "nil"}
	}
	if f.InstanceUUID == "" {
		return &InvalidRecordError{Kind: KindFault, Field: "instance_uuid", Reason: "empty"}
	}
	return nil
}

func cloneMap(m map[string]string) map[string]string { return maps.Clone(m) }
