package main

// The calls of the xapi reference's section (b), with parameter lists
// from xapi's datamodel (session left out). Optional trailing parameters
// carry the test for "equals the server default".

func p(wire, typ string) param { return param{wire: wire, typ: typ} }

func o(wire, typ, def string) param { return param{wire: wire, typ: typ, def: def} }

const (
	defNullRef = "isNullRef(string(%s))"
	defEmpty   = "len(%s) == 0"
)

// std returns the calls xapi generates for every class held in the
// database that the flows use.
func std(class, ref, rec string, nameLabel bool) []method {
	ms := []method{
		{class: class, name: "get_by_uuid", params: []param{p("uuid", "string")}, ret: ref, doc: "returns the " + class + " with this uuid (UUID_INVALID when there is none)."},
		{class: class, name: "get_record", params: []param{p("self", ref)}, ret: rec, doc: "returns a consistent snapshot of the " + class + "'s fields."},
		{class: class, name: "get_all", ret: "[]" + ref, doc: "returns every " + class + "."},
		{class: class, name: "get_all_records", ret: "map[" + ref + "]" + rec, doc: "returns the record of every " + class + ", by reference."},
		{class: class, name: "get_all_records_where", params: []param{p("expr", "string")}, ret: "map[" + ref + "]" + rec, doc: "returns the records matching a query such as `field \"name__label\"=\"x\" and field \"is_control_domain\"=\"false\"`."},
		{class: class, name: "get_all_where", params: []param{p("expr", "string")}, ret: "[]" + ref, doc: "returns the references matching a query (see get_all_records_where)."},
		{class: class, name: "get_uuid", params: []param{p("self", ref)}, ret: "string", doc: "returns the uuid field."},
	}
	if nameLabel {
		ms = append(ms,
			method{class: class, name: "get_by_name_label", params: []param{p("label", "string")}, ret: "[]" + ref, doc: "returns every " + class + " with this name_label."},
			method{class: class, name: "get_name_label", params: []param{p("self", ref)}, ret: "string", doc: "returns the name_label field."},
			method{class: class, name: "get_name_description", params: []param{p("self", ref)}, ret: "string", doc: "returns the name_description field."},
			method{class: class, name: "get_other_config", params: []param{p("self", ref)}, ret: "map[string]string", doc: "returns the other_config map."},
		)
	}
	return ms
}

func methods() []method {
	var ms []method
	add := func(m ...method) { ms = append(ms, m...) }

	// VM
	vm := func(name string, params []param, ret string, async bool, doc string) method {
		return method{class: "VM", name: name, params: append([]param{p("self", "VMRef")}, params...), ret: ret, async: async, doc: doc}
	}
	add(std("VM", "VMRef", "VMRecord", true)...)
	add(
		method{class: "VM", name: "snapshot", params: []param{p("vm", "VMRef"), p("new_name", "string"), o("ignore_vdis", "[]VDIRef", defEmpty)}, ret: "VMRef", async: true,
			doc: "snapshots the VM and returns the new snapshot VM. ignore_vdis (xapi 21.4.0) lists disks not to snapshot."},
		method{class: "VM", name: "create", params: []param{p("args", "VMRecord")}, ret: "VMRef", async: true,
			doc: "creates a VM from a record; fields without a server default must be set (see VMRecord)."},
		vm("destroy", nil, "", true, "destroys a halted VM's record (not its disks)."),
		vm("clean_shutdown", nil, "", true, "shuts the VM down through its guest."),
		vm("hard_shutdown", nil, "", true, "stops the VM immediately."),
		vm("shutdown", nil, "", true, "tries a clean shutdown, then a hard one (Clearwater)."),
		vm("clean_reboot", nil, "", true, "reboots the VM through its guest."),
		vm("hard_reboot", nil, "", true, "resets the VM."),
		method{class: "VM", name: "start", params: []param{p("vm", "VMRef"), p("start_paused", "bool"), p("force", "bool")}, async: true,
			doc: "starts a halted VM (VM_BAD_POWER_STATE, OPERATION_BLOCKED, NO_HOSTS_AVAILABLE)."},
		method{class: "VM", name: "start_on", params: []param{p("vm", "VMRef"), p("host", "HostRef"), p("start_paused", "bool"), p("force", "bool")}, async: true,
			doc: "starts a halted VM on the given host."},
		vm("provision", nil, "", true, "builds the disks described in other_config[\"disks\"]."),
		vm("get_power_state", nil, "VMPowerState", false, "returns Halted, Paused, Running or Suspended."),
		vm("get_VBDs", nil, "[]VBDRef", false, "returns the VM's virtual block devices."),
		vm("get_resident_on", nil, "HostRef", false, "returns the host the VM runs on (OpaqueRef:NULL when halted)."),
		vm("get_domid", nil, "int64", false, "returns the domain id (-1 when halted)."),
		vm("get_is_a_template", nil, "bool", false, "returns whether the VM is a template."),
		vm("get_blocked_operations", nil, "map[VMOperation]string", false, "returns the blocked operations and their codes."),
		vm("get_xenstore_data", nil, "map[string]string", false, "returns the xenstore_data map."),
		vm("get_memory_static_max", nil, "int64", false, "returns memory_static_max in bytes."),
		vm("get_VCPUs_max", nil, "int64", false, "returns VCPUs_max."),
		vm("set_name_label", []param{p("value", "string")}, "", false, "sets name_label."),
		vm("set_name_description", []param{p("value", "string")}, "", false, "sets name_description."),
		vm("set_blocked_operations", []param{p("value", "map[VMOperation]string")}, "", false, "replaces the blocked operations (Orlando)."),
		vm("add_to_blocked_operations", []param{p("key", "VMOperation"), p("value", "string")}, "", false, "blocks one operation; value is returned as OPERATION_BLOCKED's code."),
		vm("remove_from_blocked_operations", []param{p("key", "VMOperation")}, "", false, "unblocks one operation."),
		vm("set_memory_static_max", []param{p("value", "int64")}, "", false, "sets memory_static_max in bytes (halted VM)."),
		vm("set_memory_static_min", []param{p("value", "int64")}, "", false, "sets memory_static_min in bytes."),
		vm("set_memory_dynamic_max", []param{p("value", "int64")}, "", false, "sets memory_dynamic_max in bytes."),
		vm("set_memory_dynamic_min", []param{p("value", "int64")}, "", false, "sets memory_dynamic_min in bytes."),
		vm("set_memory_dynamic_range", []param{p("min", "int64"), p("max", "int64")}, "", true, "sets both dynamic limits (Midnight Ride)."),
		vm("set_memory_static_range", []param{p("min", "int64"), p("max", "int64")}, "", true, "sets both static limits (Midnight Ride)."),
		vm("set_memory_limits", []param{p("static_min", "int64"), p("static_max", "int64"), p("dynamic_min", "int64"), p("dynamic_max", "int64")}, "", true,
			"sets all four limits; static_min <= dynamic_min <= dynamic_max <= static_max."),
		vm("set_memory", []param{p("value", "int64")}, "", true, "sets static_max, dynamic_min and dynamic_max together (Ely)."),
		vm("set_VCPUs_max", []param{p("value", "int64")}, "", false, "sets VCPUs_max (halted VM; when growing set it before VCPUs_at_startup)."),
		vm("set_VCPUs_at_startup", []param{p("value", "int64")}, "", false, "sets VCPUs_at_startup (halted VM; 0 < value <= VCPUs_max)."),
		vm("set_VCPUs_number_live", []param{p("nvcpu", "int64")}, "", true, "changes the number of VCPUs of a running VM."),
		vm("add_to_other_config", []param{p("key", "string"), p("value", "string")}, "", false, "adds a key (MAP_DUPLICATE_KEY when present)."),
		vm("remove_from_other_config", []param{p("key", "string")}, "", false, "removes a key."),
		vm("set_other_config", []param{p("value", "map[string]string")}, "", false, "replaces other_config."),
		vm("set_xenstore_data", []param{p("value", "map[string]string")}, "", false, "replaces xenstore_data (written to vm-data when the VM starts)."),
		vm("add_to_xenstore_data", []param{p("key", "string"), p("value", "string")}, "", false, "adds a xenstore_data key."),
		vm("remove_from_xenstore_data", []param{p("key", "string")}, "", false, "removes a xenstore_data key."),
	)

	// VDI
	vdi := func(name string, params []param, ret string, async bool, doc string) method {
		return method{class: "VDI", name: name, params: append([]param{p("self", "VDIRef")}, params...), ret: ret, async: async, doc: doc}
	}
	add(std("VDI", "VDIRef", "VDIRecord", true)...)
	add(
		method{class: "VDI", name: "create", params: []param{p("args", "VDIRecord")}, ret: "VDIRef", async: true, doc: "creates a disk from a record (name_label, name_description, SR, virtual_size, type, sharable, read_only, other_config, xenstore_data, sm_config, tags)."},
		vdi("destroy", nil, "", true, "destroys the disk and its data."),
		vdi("forget", nil, "", true, "removes the disk's record only, leaving its data."),
		vdi("resize", []param{p("size", "int64")}, "", true, "grows the disk to size bytes (usually detached)."),
		vdi("resize_online", []param{p("size", "int64")}, "", true, "grows an attached disk; MESSAGE_REMOVED from Inverness until xapi 26.16."),
		vdi("snapshot", []param{o("driver_params", "map[string]string", defEmpty)}, "VDIRef", true, "snapshots the disk; the old leaf becomes a read-only parent."),
		vdi("clone", []param{o("driver_params", "map[string]string", defEmpty)}, "VDIRef", true, "clones the disk."),
		vdi("copy", []param{p("sr", "SRRef"), o("base_vdi", "VDIRef", defNullRef), o("into_vdi", "VDIRef", defNullRef)}, "VDIRef", true, "copies the disk into an SR, optionally as a delta over base_vdi or into an existing disk."),
		vdi("get_virtual_size", nil, "int64", false, "returns the virtual size in bytes."),
		vdi("get_physical_utilisation", nil, "int64", false, "returns the bytes used on the SR."),
		vdi("get_SR", nil, "SRRef", false, "returns the SR holding the disk."),
		vdi("get_VBDs", nil, "[]VBDRef", false, "returns the disk's block devices."),
		vdi("get_sm_config", nil, "map[string]string", false, "returns sm_config (for example vhd-parent)."),
		vdi("get_type", nil, "VDIType", false, "returns the disk type."),
		vdi("get_is_a_snapshot", nil, "bool", false, "returns whether the disk is a snapshot."),
		vdi("set_name_label", []param{p("value", "string")}, "", false, "sets name_label (also in the SM metadata)."),
		vdi("set_name_description", []param{p("value", "string")}, "", false, "sets name_description (also in the SM metadata)."),
		vdi("set_other_config", []param{p("value", "map[string]string")}, "", false, "replaces other_config."),
		vdi("add_to_other_config", []param{p("key", "string"), p("value", "string")}, "", false, "adds a key (MAP_DUPLICATE_KEY when present)."),
		vdi("remove_from_other_config", []param{p("key", "string")}, "", false, "removes a key."),
	)

	// VBD
	vbd := func(name string, params []param, ret string, async bool, doc string) method {
		return method{class: "VBD", name: name, params: append([]param{p("self", "VBDRef")}, params...), ret: ret, async: async, doc: doc}
	}
	add(std("VBD", "VBDRef", "VBDRecord", false)...)
	add(
		method{class: "VBD", name: "create", params: []param{p("args", "VBDRecord")}, ret: "VBDRef", async: true, doc: "creates a block device from a record (VM, VDI, userdevice, bootable, mode, type, empty, other_config, qos_algorithm_type, qos_algorithm_params)."},
		vbd("destroy", nil, "", true, "destroys the block device."),
		vbd("plug", nil, "", true, "hot-plugs the device into the running VM."),
		vbd("unplug", nil, "", true, "hot-unplugs the device (DEVICE_DETACH_REJECTED, DEVICE_ALREADY_DETACHED)."),
		vbd("unplug_force", nil, "", true, "forcibly unplugs the device."),
		vbd("insert", []param{p("vdi", "VDIRef")}, "", true, "inserts a disk into an empty CD device."),
		vbd("eject", nil, "", true, "ejects the disk of a CD device."),
		vbd("get_VM", nil, "VMRef", false, "returns the VM."),
		vbd("get_VDI", nil, "VDIRef", false, "returns the disk (OpaqueRef:NULL when empty)."),
		vbd("get_userdevice", nil, "string", false, "returns the user-facing device number, e.g. \"0\"."),
		vbd("get_currently_attached", nil, "bool", false, "returns whether the device is plugged."),
		vbd("get_mode", nil, "VBDMode", false, "returns RO or RW."),
	)

	// SR
	add(std("SR", "SRRef", "SRRecord", true)...)
	add(
		method{class: "SR", name: "scan", params: []param{p("sr", "SRRef")}, async: true, doc: "rescans the SR, adding disks found on it and forgetting missing ones."},
		method{class: "SR", name: "get_VDIs", params: []param{p("self", "SRRef")}, ret: "[]VDIRef", doc: "returns the SR's disks."},
		method{class: "SR", name: "get_type", params: []param{p("self", "SRRef")}, ret: "string", doc: "returns the SR type, e.g. ext or lvm."},
		method{class: "SR", name: "get_sm_config", params: []param{p("self", "SRRef")}, ret: "map[string]string", doc: "returns sm_config."},
	)

	// host
	h := func(name string, ret, doc string) method {
		return method{class: "host", name: name, params: []param{p("self", "HostRef")}, ret: ret, doc: doc}
	}
	add(std("host", "HostRef", "HostRecord", true)...)
	add(
		method{class: "host", name: "call_plugin", params: []param{p("host", "HostRef"), p("plugin", "string"), p("fn", "string"), p("args", "map[string]string")}, ret: "string", async: true,
			doc: "runs function fn of /etc/xapi.d/plugins/<plugin> on the host and returns its output."},
		h("get_address", "string", "returns the host's management address."),
		h("get_hostname", "string", "returns the host name."),
		h("get_software_version", "map[string]string", "returns product_version, product_brand, platform_version and more."),
		h("get_API_version_major", "int64", "returns the API major version."),
		h("get_API_version_minor", "int64", "returns the API minor version."),
		h("get_enabled", "bool", "returns whether the host accepts new VMs."),
		h("get_resident_VMs", "[]VMRef", "returns the VMs running on the host."),
	)

	// pool
	pl := func(name string, params []param, ret, doc string) method {
		return method{class: "pool", name: name, params: append([]param{p("self", "PoolRef")}, params...), ret: ret, doc: doc}
	}
	add(std("pool", "PoolRef", "PoolRecord", false)...)
	add(
		pl("get_master", nil, "HostRef", "returns the pool master."),
		pl("get_default_SR", nil, "SRRef", "returns the default SR."),
		pl("set_default_SR", []param{p("value", "SRRef")}, "", "sets the default SR."),
		pl("get_name_label", nil, "string", "returns the pool's name."),
		pl("get_other_config", nil, "map[string]string", "returns other_config."),
	)

	// task
	tk := func(name string, ret, doc string) method {
		return method{class: "task", name: name, params: []param{p("self", "TaskRef")}, ret: ret, doc: doc}
	}
	add(std("task", "TaskRef", "TaskRecord", true)...)
	add(
		method{class: "task", name: "create", params: []param{p("label", "string"), p("description", "string")}, ret: "TaskRef", doc: "creates a task that the caller completes itself."},
		tk("destroy", "", "destroys the task record."),
		tk("cancel", "", "asks the task to cancel (OPERATION_NOT_ALLOWED when it cannot); it may still complete."),
		tk("get_status", "TaskStatus", "returns pending, success, failure, cancelling or cancelled."),
		tk("get_progress", "float64", "returns progress between 0 and 1."),
		tk("get_result", "string", "returns the result as xapi stores it: an XML-RPC <value> serialised into a string (see DecodeTaskResult)."),
		tk("get_error_info", "[]string", "returns the failure's ErrorDescription."),
	)

	// event
	add(
		method{class: "event", name: "from", params: []param{p("classes", "[]string"), p("token", "string"), p("timeout", "float64")}, ret: "EventBatch",
			doc: "returns the events after token for the subscriptions in classes (\"*\", a class, or \"class/ref\"), blocking up to timeout seconds. token \"\" starts from the beginning."},
		method{class: "event", name: "inject", params: []param{p("class", "string"), p("ref", "string")}, ret: "string",
			doc: "creates an artificial event on the object and returns its token, for use as a barrier (Tampa)."},
	)
	return ms
}

type enum struct {
	goType, wire, doc string
	values            []string
}

func enums() []enum {
	return []enum{
		{"VMPowerState", "vm_power_state", "the power state of a VM.", []string{"Halted", "Paused", "Running", "Suspended"}},
		{"VMOperation", "vm_operations", "an operation on a VM, as in allowed_operations and blocked_operations.", []string{
			"snapshot", "clone", "copy", "create_template", "revert", "checkpoint", "snapshot_with_quiesce", "provision", "start", "start_on",
			"pause", "unpause", "clean_shutdown", "clean_reboot", "hard_shutdown", "power_state_reset", "hard_reboot", "suspend", "csvm", "resume",
			"resume_on", "pool_migrate", "migrate_send", "get_boot_record", "send_sysrq", "send_trigger", "query_services", "shutdown", "call_plugin",
			"changing_memory_live", "awaiting_memory_live", "changing_dynamic_range", "changing_static_range", "changing_memory_limits",
			"changing_shadow_memory", "changing_shadow_memory_live", "changing_VCPUs", "changing_VCPUs_live", "changing_NVRAM",
			"assert_operation_valid", "data_source_op", "update_allowed_operations", "make_into_template", "import", "export",
			"metadata_export", "reverting", "destroy", "create_vtpm"}},
		{"VDIType", "vdi_type", "the use of a disk.", []string{"system", "user", "ephemeral", "suspend", "crashdump", "ha_statefile", "metadata", "redo_log", "rrd", "pvs_cache", "cbt_metadata"}},
		{"VDIOperation", "vdi_operations", "an operation on a disk.", []string{"clone", "copy", "resize", "resize_online", "snapshot", "mirror", "destroy", "forget", "update", "force_unlock", "generate_config", "enable_cbt", "disable_cbt", "data_destroy", "list_changed_blocks", "set_on_boot", "blocked"}},
		{"VBDMode", "vbd_mode", "read-only or read-write access.", []string{"RO", "RW"}},
		{"VBDType", "vbd_type", "the kind of block device.", []string{"CD", "Disk", "Floppy"}},
		{"VBDOperation", "vbd_operations", "an operation on a block device.", []string{"attach", "eject", "insert", "plug", "unplug", "unplug_force", "pause", "unpause"}},
		{"TaskStatus", "task_status_type", "the state of a task.", []string{"pending", "success", "failure", "cancelling", "cancelled"}},
		{"TaskOperation", "task_allowed_operations", "an operation on a task.", []string{"cancel", "destroy"}},
		{"OnNormalExit", "on_normal_exit", "what to do when the guest shuts down or reboots.", []string{"destroy", "restart"}},
		{"OnCrashBehaviour", "on_crash_behaviour", "what to do when the guest crashes.", []string{"destroy", "coredump_and_destroy", "restart", "coredump_and_restart", "preserve", "rename_restart"}},
		{"DomainType", "domain_type", "the virtualisation mode of a VM.", []string{"hvm", "pv", "pv_in_pvh", "pvh", "unspecified"}},
		{"EventOperation", "event_operation", "what happened to an object.", []string{"add", "del", "mod"}},
	}
}
