package statemachine

// Notification is the event_type of one of Nova's legacy (unversioned)
// notifications. The compute manager sends "compute.instance." + a suffix
// (nova/compute/manager.py _notify_about_instance_usage); the conductor sends
// "compute_task." + the method when it sets an instance's state after a
// failure (nova/scheduler/utils.py set_vm_state_and_notify).
type Notification string

// Nova's notification event types used by the flows of this module.
const (
	// NotifyExists is the usage audit sent before a resize (prep_resize),
	// before a rescue and when a revert starts on the destination.
	NotifyExists Notification = "compute.instance.exists"

	NotifyResizePrepStart Notification = "compute.instance.resize.prep.start"
	NotifyResizePrepEnd   Notification = "compute.instance.resize.prep.end"
	// NotifyResizeError is sent when prep_resize fails, whether the resize
	// is rescheduled or not.
	NotifyResizeError Notification = "compute.instance.resize.error"

	NotifyResizeStart Notification = "compute.instance.resize.start"
	NotifyResizeEnd   Notification = "compute.instance.resize.end"

	NotifyFinishResizeStart Notification = "compute.instance.finish_resize.start"
	NotifyFinishResizeEnd   Notification = "compute.instance.finish_resize.end"

	NotifyResizeConfirmStart Notification = "compute.instance.resize.confirm.start"
	NotifyResizeConfirmEnd   Notification = "compute.instance.resize.confirm.end"

	NotifyResizeRevertStart Notification = "compute.instance.resize.revert.start"
	NotifyResizeRevertEnd   Notification = "compute.instance.resize.revert.end"

	NotifyRescueStart   Notification = "compute.instance.rescue.start"
	NotifyRescueEnd     Notification = "compute.instance.rescue.end"
	NotifyUnrescueStart Notification = "compute.instance.unrescue.start"
	NotifyUnrescueEnd   Notification = "compute.instance.unrescue.end"

	NotifyPowerOffStart Notification = "compute.instance.power_off.start"
	NotifyPowerOffEnd   Notification = "compute.instance.power_off.end"
	NotifyPowerOnStart  Notification = "compute.instance.power_on.start"
	NotifyPowerOnEnd    Notification = "compute.instance.power_on.end"

	// NotifyMigrateServerError is the conductor's error notification when a
	// cold move fails there (NoValidHost, UnsupportedPolicy, any other
	// exception); it goes with an instance fault.
	NotifyMigrateServerError Notification = "compute_task.migrate_server"
)

// Notifications returns every notification event type of this package.
func Notifications() []Notification {
	return []Notification{NotifyExists, NotifyResizePrepStart,
		NotifyResizePrepEnd, NotifyResizeError, NotifyResizeStart,
		NotifyResizeEnd, NotifyFinishResizeStart, NotifyFinishResizeEnd,
		NotifyResizeConfirmStart, NotifyResizeConfirmEnd,
		NotifyResizeRevertStart, NotifyResizeRevertEnd, NotifyRescueStart,
		NotifyRescueEnd, NotifyUnrescueStart, NotifyUnrescueEnd,
		NotifyPowerOffStart, NotifyPowerOffEnd, NotifyPowerOnStart,
		NotifyPowerOnEnd, NotifyMigrateServerError}
}

// String returns the event type.
func (n Notification) String() string { return string(n) }

// ParseNotification returns the notification with event type s, or an
// *UnknownValueError.
func ParseNotification(s string) (Notification, error) {
	for _, n := range Notifications() {
		if string(n) == s {
			return n, nil
		}
	}
	return "", &UnknownValueError{Kind: "notification", Value: s}
}
