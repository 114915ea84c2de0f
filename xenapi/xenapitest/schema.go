package xenapitest

import (
	"time"
)

// kind is the XenAPI type of a field, which decides how it is stored,
// how it goes on the wire and how a setter parses its argument.
type kind int

const (
	kString    kind = iota // string, enum, ref: stored as string
	kInt                   // int: stored as int64, sent as a decimal string
	kBool                  // bool
	kFloat                 // float: stored as float64
	kTime                  // datetime: stored as time.Time
	kSet                   // string/ref/enum set: stored as []string
	kMap                   // (string -> string) map: stored as map[string]string
	kEnumLower             // enum accepted case-insensitively and stored in canonical case
)

// field describes one field of a class.
type field struct {
	name string
	kind kind
	// rw means the datamodel generates set_<name> (and add_to/remove_from
	// for maps, add/remove for sets).
	rw bool
	// ctor means the field is read from the create record; required says
	// that leaving it out fails like xapi's Dispatcher_FieldNotFound.
	ctor, required bool
	// enum lists the canonical spellings of an enum field (for
	// case-insensitive input); nil for other fields.
	enum []string
}

// class describes one class of the datamodel as far as the pool simulates it.
type class struct {
	name   string // wire name: VM, VDI, VBD, SR, PBD, host, pool, task, session
	fields []field
	index  map[string]*field
	// nameLabel says whether get_by_name_label exists.
	nameLabel bool
	// listable says whether get_all and get_all_records exist.
	listable bool
}

func newClass(name string, nameLabel, listable bool, fields ...field) *class {
	c := &class{name: name, fields: fields, index: make(map[string]*field, len(fields)), nameLabel: nameLabel, listable: listable}
	for i := range c.fields {
		c.index[c.fields[i].name] = &c.fields[i]
	}
	return c
}

// Field constructors, to keep the tables below readable.
func ro(name string, k kind) field { return field{name: name, kind: k} }
func rw(name string, k kind) field { return field{name: name, kind: k, rw: true} }
func req(f field) field            { f.ctor, f.required = true, true; return f }
func opt(f field) field            { f.ctor = true; return f }
func enum(f field, values ...string) field {
	f.kind = kEnumLower
	f.enum = values
	return f
}

var (
	powerStates      = []string{"Halted", "Paused", "Running", "Suspended"}
	onNormalExit     = []string{"destroy", "restart"}
	onCrash          = []string{"destroy", "coredump_and_destroy", "restart", "coredump_and_restart", "preserve", "rename_restart"}
	vdiTypes         = []string{"system", "user", "ephemeral", "suspend", "crashdump", "ha_statefile", "metadata", "redo_log", "rrd", "pvs_cache", "cbt_metadata"}
	vbdModes         = []string{"RO", "RW"}
	vbdTypes         = []string{"CD", "Disk", "Floppy"}
	taskStatuses     = []string{"pending", "success", "failure", "cancelling", "cancelled"}
	domainTypes      = []string{"hvm", "pv", "pv_in_pvh", "pvh", "unspecified"}
	onBootValues     = []string{"reset", "persist"}
	nullRef          = "OpaqueRef:NULL"
	neverTime        = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)
	classVM          *class
	classVDI         *class
	classVBD         *class
	classSR          *class
	classPBD         *class
	classHost        *class
	classPool        *class
	classTask        *class
	classSession     *class
	classNetwork     *class
	classVIF         *class
	classHostMetrics *class
	classesByName    map[string]*class
	classesOrdered   []*class
)

func init() {
	classVM = newClass("VM", true, true,
		ro("uuid", kString),
		ro("allowed_operations", kSet),
		ro("current_operations", kMap),
		req(rw("name_label", kString)),
		req(rw("name_description", kString)),
		enum(ro("power_state", 0), powerStates...),
		req(rw("user_version", kInt)),
		req(rw("is_a_template", kBool)),
		ro("is_default_template", kBool),
		ro("suspend_VDI", kString),
		ro("resident_on", kString),
		ro("scheduled_to_be_resident_on", kString),
		req(rw("affinity", kString)),
		ro("memory_overhead", kInt),
		opt(ro("memory_target", kInt)),
		req(ro("memory_static_max", kInt)),
		req(ro("memory_dynamic_max", kInt)),
		req(ro("memory_dynamic_min", kInt)),
		req(ro("memory_static_min", kInt)),
		req(rw("VCPUs_params", kMap)),
		req(ro("VCPUs_max", kInt)),
		req(ro("VCPUs_at_startup", kInt)),
		req(enum(rw("actions_after_shutdown", 0), onNormalExit...)),
		req(enum(rw("actions_after_reboot", 0), onNormalExit...)),
		req(enum(rw("actions_after_crash", 0), onCrash...)),
		ro("consoles", kSet),
		ro("VIFs", kSet),
		ro("VBDs", kSet),
		ro("crash_dumps", kSet),
		ro("VTPMs", kSet),
		req(rw("PV_bootloader", kString)),
		req(rw("PV_kernel", kString)),
		req(rw("PV_ramdisk", kString)),
		req(rw("PV_args", kString)),
		req(rw("PV_bootloader_args", kString)),
		req(rw("PV_legacy_args", kString)),
		req(rw("HVM_boot_policy", kString)),
		req(rw("HVM_boot_params", kMap)),
		opt(ro("HVM_shadow_multiplier", kFloat)),
		req(rw("platform", kMap)),
		req(rw("PCI_bus", kString)),
		req(rw("other_config", kMap)),
		ro("domid", kInt),
		ro("domarch", kString),
		ro("last_boot_CPU_flags", kMap),
		ro("is_control_domain", kBool),
		ro("metrics", kString),
		ro("guest_metrics", kString),
		ro("last_booted_record", kString),
		req(rw("recommendations", kString)),
		opt(rw("xenstore_data", kMap)),
		opt(ro("ha_always_run", kBool)),
		opt(rw("ha_restart_priority", kString)),
		ro("is_a_snapshot", kBool),
		ro("snapshot_of", kString),
		ro("snapshots", kSet),
		ro("snapshot_time", kTime),
		ro("transportable_snapshot_id", kString),
		ro("blobs", kMap),
		opt(rw("tags", kSet)),
		opt(rw("blocked_operations", kMap)),
		ro("snapshot_info", kMap),
		ro("snapshot_metadata", kString),
		ro("parent", kString),
		ro("children", kSet),
		ro("bios_strings", kMap),
		ro("appliance", kString),
		opt(rw("start_delay", kInt)),
		opt(rw("shutdown_delay", kInt)),
		opt(rw("order", kInt)),
		ro("VGPUs", kSet),
		ro("attached_PCIs", kSet),
		opt(rw("suspend_SR", kString)),
		ro("version", kInt),
		ro("generation_id", kString),
		ro("hardware_platform_version", kInt),
		ro("has_vendor_device", kBool),
		ro("requires_reboot", kBool),
		ro("reference_label", kString),
		opt(enum(ro("domain_type", 0), domainTypes...)),
		ro("NVRAM", kMap),
		ro("pending_guidances", kSet),
	)
	classVDI = newClass("VDI", true, true,
		ro("uuid", kString),
		req(rw("name_label", kString)),
		req(rw("name_description", kString)),
		ro("allowed_operations", kSet),
		ro("current_operations", kMap),
		req(ro("SR", kString)),
		ro("VBDs", kSet),
		ro("crash_dumps", kSet),
		req(ro("virtual_size", kInt)),
		ro("physical_utilisation", kInt),
		req(enum(ro("type", 0), vdiTypes...)),
		req(rw("sharable", kBool)),
		req(rw("read_only", kBool)),
		req(rw("other_config", kMap)),
		ro("storage_lock", kBool),
		ro("location", kString),
		ro("managed", kBool),
		ro("missing", kBool),
		ro("parent", kString),
		opt(rw("xenstore_data", kMap)),
		opt(rw("sm_config", kMap)),
		ro("is_a_snapshot", kBool),
		ro("snapshot_of", kString),
		ro("snapshots", kSet),
		ro("snapshot_time", kTime),
		opt(rw("tags", kSet)),
		rw("allow_caching", kBool),
		enum(rw("on_boot", 0), onBootValues...),
		ro("metadata_of_pool", kString),
		ro("metadata_latest", kBool),
		ro("is_tools_iso", kBool),
		ro("cbt_enabled", kBool),
	)
	classVBD = newClass("VBD", false, true,
		ro("uuid", kString),
		ro("allowed_operations", kSet),
		ro("current_operations", kMap),
		req(ro("VM", kString)),
		req(ro("VDI", kString)),
		opt(ro("device", kString)),
		req(rw("userdevice", kString)),
		req(rw("bootable", kBool)),
		req(enum(rw("mode", 0), vbdModes...)),
		req(enum(rw("type", 0), vbdTypes...)),
		opt(rw("unpluggable", kBool)),
		ro("storage_lock", kBool),
		req(ro("empty", kBool)),
		req(rw("other_config", kMap)),
		ro("currently_attached", kBool),
		ro("status_code", kInt),
		ro("status_detail", kString),
		ro("runtime_properties", kMap),
		req(rw("qos_algorithm_type", kString)),
		req(rw("qos_algorithm_params", kMap)),
		ro("qos_supported_algorithms", kSet),
		ro("metrics", kString),
	)
	classSR = newClass("SR", true, true,
		ro("uuid", kString),
		rw("name_label", kString),
		rw("name_description", kString),
		ro("allowed_operations", kSet),
		ro("current_operations", kMap),
		ro("VDIs", kSet),
		ro("PBDs", kSet),
		ro("virtual_allocation", kInt),
		ro("physical_utilisation", kInt),
		ro("physical_size", kInt),
		ro("type", kString),
		ro("content_type", kString),
		ro("shared", kBool),
		rw("other_config", kMap),
		rw("tags", kSet),
		rw("sm_config", kMap),
		ro("blobs", kMap),
		ro("local_cache_enabled", kBool),
		ro("introduced_by", kString),
		ro("clustered", kBool),
		ro("is_tools_sr", kBool),
	)
	classPBD = newClass("PBD", false, true,
		ro("uuid", kString),
		ro("host", kString),
		ro("SR", kString),
		ro("device_config", kMap),
		ro("currently_attached", kBool),
		rw("other_config", kMap),
	)
	classHost = newClass("host", true, true,
		ro("uuid", kString),
		rw("name_label", kString),
		rw("name_description", kString),
		ro("allowed_operations", kSet),
		ro("current_operations", kMap),
		ro("API_version_major", kInt),
		ro("API_version_minor", kInt),
		ro("API_version_vendor", kString),
		ro("API_version_vendor_implementation", kMap),
		ro("enabled", kBool),
		ro("software_version", kMap),
		rw("other_config", kMap),
		ro("capabilities", kSet),
		ro("cpu_configuration", kMap),
		ro("sched_policy", kString),
		ro("supported_bootloaders", kSet),
		ro("resident_VMs", kSet),
		rw("logging", kMap),
		ro("PIFs", kSet),
		rw("suspend_image_sr", kString),
		rw("crash_dump_sr", kString),
		ro("crashdumps", kSet),
		ro("patches", kSet),
		ro("updates", kSet),
		ro("PBDs", kSet),
		ro("host_CPUs", kSet),
		ro("cpu_info", kMap),
		ro("hostname", kString),
		ro("address", kString),
		ro("metrics", kString),
		ro("license_params", kMap),
		rw("tags", kSet),
		ro("memory_overhead", kInt),
		ro("control_domain", kString),
		ro("local_cache_sr", kString),
	)
	classPool = newClass("pool", false, true,
		ro("uuid", kString),
		rw("name_label", kString),
		rw("name_description", kString),
		ro("master", kString),
		rw("default_SR", kString),
		rw("suspend_image_SR", kString),
		rw("crash_dump_SR", kString),
		rw("other_config", kMap),
		ro("ha_enabled", kBool),
		rw("tags", kSet),
		ro("restrictions", kMap),
		ro("allowed_operations", kSet),
		ro("current_operations", kMap),
	)
	classTask = newClass("task", true, true,
		ro("uuid", kString),
		ro("name_label", kString),
		ro("name_description", kString),
		ro("allowed_operations", kSet),
		ro("current_operations", kMap),
		ro("created", kTime),
		ro("finished", kTime),
		enum(ro("status", 0), taskStatuses...),
		ro("resident_on", kString),
		ro("progress", kFloat),
		ro("type", kString),
		ro("result", kString),
		ro("error_info", kSet),
		rw("other_config", kMap),
		ro("subtask_of", kString),
		ro("subtasks", kSet),
		ro("backtrace", kString),
	)
	classSession = newClass("session", false, false,
		ro("uuid", kString),
		ro("this_host", kString),
		ro("this_user", kString),
		ro("last_active", kTime),
		ro("pool", kBool),
		rw("other_config", kMap),
		ro("is_local_superuser", kBool),
		ro("subject", kString),
		ro("validation_time", kTime),
		ro("auth_user_sid", kString),
		ro("auth_user_name", kString),
		ro("rbac_permissions", kSet),
		ro("tasks", kSet),
		ro("parent", kString),
		ro("originator", kString),
		ro("client_certificate", kBool),
	)
	classNetwork = newClass("network", true, true,
		ro("uuid", kString),
		req(rw("name_label", kString)),
		req(rw("name_description", kString)),
		ro("allowed_operations", kSet),
		ro("current_operations", kMap),
		ro("VIFs", kSet),
		ro("PIFs", kSet),
		opt(rw("MTU", kInt)),
		req(rw("other_config", kMap)),
		opt(ro("bridge", kString)),
		opt(ro("managed", kBool)),
		ro("blobs", kMap),
		opt(rw("tags", kSet)),
		rw("default_locking_mode", kString),
		ro("assigned_ips", kMap),
		ro("purpose", kSet),
	)
	classVIF = newClass("VIF", false, true,
		ro("uuid", kString),
		ro("allowed_operations", kSet),
		ro("current_operations", kMap),
		req(ro("device", kString)),
		req(ro("network", kString)),
		req(ro("VM", kString)),
		req(ro("MAC", kString)),
		req(ro("MTU", kInt)),
		req(rw("other_config", kMap)),
		ro("currently_attached", kBool),
		ro("status_code", kInt),
		ro("status_detail", kString),
		ro("runtime_properties", kMap),
		req(rw("qos_algorithm_type", kString)),
		req(rw("qos_algorithm_params", kMap)),
		ro("qos_supported_algorithms", kSet),
		ro("metrics", kString),
		ro("MAC_autogenerated", kBool),
		opt(ro("locking_mode", kString)),
		opt(ro("ipv4_allowed", kSet)),
		opt(ro("ipv6_allowed", kSet)),
	)
	classHostMetrics = newClass("host_metrics", false, true,
		ro("uuid", kString),
		ro("memory_total", kInt),
		ro("memory_free", kInt),
		ro("live", kBool),
		ro("last_updated", kTime),
		rw("other_config", kMap),
	)
	classesOrdered = []*class{classVM, classVDI, classVBD, classSR, classPBD, classHost, classPool, classTask, classSession,
		classNetwork, classVIF, classHostMetrics}
	classesByName = make(map[string]*class, len(classesOrdered))
	for _, c := range classesOrdered {
		classesByName[c.name] = c
	}
}

// zero returns the value a field holds when nothing set it.
func (f *field) zero() any {
	switch f.kind {
	case kInt:
		return int64(0)
	case kBool:
		return false
	case kFloat:
		return float64(0)
	case kTime:
		return neverTime
	case kSet:
		return []string{}
	case kMap:
		return map[string]string{}
	case kEnumLower:
		return f.enum[0]
	default:
		return ""
	}
}

// refFields are string fields that hold refs and default to OpaqueRef:NULL.
var refFields = map[string]bool{
	"suspend_VDI": true, "resident_on": true, "scheduled_to_be_resident_on": true,
	"affinity": true, "metrics": true, "guest_metrics": true, "snapshot_of": true,
	"parent": true, "appliance": true, "suspend_SR": true, "SR": true, "VM": true,
	"VDI": true, "host": true, "master": true, "default_SR": true,
	"suspend_image_SR": true, "crash_dump_SR": true, "subtask_of": true,
	"this_host": true, "this_user": true, "subject": true, "control_domain": true,
	"local_cache_sr": true, "suspend_image_sr": true, "crash_dump_sr": true,
	"metadata_of_pool": true, "network": true,
}
