package compute

import (
	"context"
	"sync"
	"time"

	"github.com/xenflow/xenflow/statemachine"
)

// Notification priorities.
const (
	PriorityInfo  = "INFO"
	PriorityError = "ERROR"
)

// Notification is one of Nova's legacy notifications. Its EventType is one
// of the statemachine.Notify* constants, e.g.
// statemachine.NotifyResizePrepStart ("compute.instance.resize.prep.start");
// the flow tables (statemachine.Flows) say which step sends which.
type Notification struct {
	EventType statemachine.Notification
	// Priority is PriorityInfo, or PriorityError for failures.
	Priority string
	// PublisherID is "<service>.<host>", e.g. "compute.host1".
	PublisherID string
	Timestamp   time.Time
	Payload     NotificationPayload
}

// NotificationPayload is the instance usage payload Nova sends with its
// compute.instance.* notifications, reduced to what the flows know.
type NotificationPayload struct {
	InstanceUUID string
	DisplayName  string
	ProjectID    string
	UserID       string
	Host         string
	Node         string
	// State and StateDescription are the vm_state and task_state.
	State            statemachine.VMState
	StateDescription statemachine.TaskState
	PowerState       statemachine.PowerState
	// InstanceType is the current flavor's name; NewInstanceType and
	// OldInstanceType are set during a move.
	InstanceType    string
	NewInstanceType string
	OldInstanceType string
	MemoryMB        int
	VCPUs           int
	RootGB          int
	EphemeralGB     int
	Progress        int
	LaunchedAt      time.Time
	// MigrationUUID names the move the notification belongs to, if any.
	MigrationUUID string
	// Fault is the error message of an error notification.
	Fault string
}

// NewPayload fills a payload from inst (nil gives the zero payload).
func NewPayload(inst *Instance) NotificationPayload {
	if inst == nil {
		return NotificationPayload{}
	}
	p := NotificationPayload{InstanceUUID: inst.UUID, DisplayName: inst.Name,
		ProjectID: inst.ProjectID, UserID: inst.UserID, Host: inst.Host, Node: inst.Node,
		State: inst.VMState, StateDescription: inst.TaskState, PowerState: inst.PowerState,
		Progress: inst.Progress, LaunchedAt: inst.LaunchedAt}
	if f := inst.Flavor; f != nil {
		p.InstanceType, p.MemoryMB, p.VCPUs, p.RootGB, p.EphemeralGB = f.Name, f.MemoryMB, f.VCPUs, f.RootGB, f.EphemeralGB
	}
	if inst.NewFlavor != nil {
		p.NewInstanceType = inst.NewFlavor.Name
	}
	if inst.OldFlavor != nil {
		p.OldInstanceType = inst.OldFlavor.Name
	}
	return p
}

// Notifier sends notifications. A notification that cannot be sent must not
// fail a flow: implementations return the error for the caller to log.
type Notifier interface {
	// Notify sends n; an error says it was not sent.
	Notify(ctx context.Context, n Notification) error
}

// NopNotifier drops every notification.
type NopNotifier struct{}

// Notify implements [Notifier].
func (NopNotifier) Notify(context.Context, Notification) error { return nil }

// RecordingNotifier keeps every notification in memory, in order. It is safe
// for concurrent use; tests and example programs read it back.
type RecordingNotifier struct {
	mu  sync.Mutex
	got []Notification
}

// Notify implements [Notifier].
func (r *RecordingNotifier) Notify(ctx context.Context, n Notification) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, n)
	return nil
}

// Notifications returns a copy of what was recorded.
func (r *RecordingNotifier) Notifications() []Notification {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Notification(nil), r.got...)
}

// EventTypes returns the event types recorded, in order.
func (r *RecordingNotifier) EventTypes() []statemachine.Notification {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]statemachine.Notification, len(r.got))
	for i, n := range r.got {
		out[i] = n.EventType
	}
	return out
}
