package xenapi

import "time"

// Records are decoded from xapi's structs by their `xapi` tags. Fields the
// server sends that a record does not list are ignored; fields it leaves
// out stay zero. Every int64 travels as a decimal string.
//
// When a record is sent (VM.create, VDI.create, VBD.create) fields tagged
// "ro" are never sent, fields tagged "omitempty" are sent only when not
// zero (so the server applies its default), and nil maps and slices are sent
// as empty ones.

// VMRecord is a VM's fields. For VM.create, xapi requires name_label,
// name_description, user_version, is_a_template, affinity, the five memory
// fields, VCPUs_params, VCPUs_max, VCPUs_at_startup, the actions_after_*
// fields, the PV_* fields, HVM_boot_policy, HVM_boot_params, platform,
// PCI_bus, other_config and recommendations; a missing one fails with
// INTERNAL_ERROR.
type VMRecord struct {
	UUID                    string                 `xapi:"uuid,ro"`
	AllowedOperations       []VMOperation          `xapi:"allowed_operations,ro"`
	CurrentOperations       map[string]VMOperation `xapi:"current_operations,ro"`
	NameLabel               string                 `xapi:"name_label"`
	NameDescription         string                 `xapi:"name_description"`
	PowerState              VMPowerState           `xapi:"power_state,omitempty"`
	UserVersion             int64                  `xapi:"user_version"`
	IsATemplate             bool                   `xapi:"is_a_template"`
	IsDefaultTemplate       bool                   `xapi:"is_default_template,ro"`
	SuspendVDI              VDIRef                 `xapi:"suspend_VDI,omitempty"`
	ResidentOn              HostRef                `xapi:"resident_on,ro"`
	ScheduledToBeResidentOn HostRef                `xapi:"scheduled_to_be_resident_on,ro"`
	Affinity                HostRef                `xapi:"affinity"`
	MemoryOverhead          int64                  `xapi:"memory_overhead,ro"`
	MemoryTarget            int64                  `xapi:"memory_target"`
	MemoryStaticMax         int64                  `xapi:"memory_static_max"`
	MemoryDynamicMax        int64                  `xapi:"memory_dynamic_max"`
	MemoryDynamicMin        int64                  `xapi:"memory_dynamic_min"`
	MemoryStaticMin         int64                  `xapi:"memory_static_min"`
	VCPUsParams             map[string]string      `xapi:"VCPUs_params"`
	VCPUsMax                int64                  `xapi:"VCPUs_max"`
	VCPUsAtStartup          int64                  `xapi:"VCPUs_at_startup"`
	ActionsAfterShutdown    OnNormalExit           `xapi:"actions_after_shutdown"`
	ActionsAfterReboot      OnNormalExit           `xapi:"actions_after_reboot"`
	ActionsAfterCrash       OnCrashBehaviour       `xapi:"actions_after_crash"`
	Consoles                []string               `xapi:"consoles,ro"`
	VIFs                    []VIFRef               `xapi:"VIFs,ro"`
	VBDs                    []VBDRef               `xapi:"VBDs,ro"`
	PVBootloader            string                 `xapi:"PV_bootloader"`
	PVKernel                string                 `xapi:"PV_kernel"`
	PVRamdisk               string                 `xapi:"PV_ramdisk"`
	PVArgs                  string                 `xapi:"PV_args"`
	PVBootloaderArgs        string                 `xapi:"PV_bootloader_args"`
	PVLegacyArgs            string                 `xapi:"PV_legacy_args"`
	HVMBootPolicy           string                 `xapi:"HVM_boot_policy"`
	HVMBootParams           map[string]string      `xapi:"HVM_boot_params"`
	HVMShadowMultiplier     float64                `xapi:"HVM_shadow_multiplier,omitempty"`
	Platform                map[string]string      `xapi:"platform"`
	PCIBus                  string                 `xapi:"PCI_bus"`
	OtherConfig             map[string]string      `xapi:"other_config"`
	Domid                   int64                  `xapi:"domid,ro"`
	Domarch                 string                 `xapi:"domarch,ro"`
	LastBootCPUFlags        map[string]string      `xapi:"last_boot_CPU_flags,ro"`
	IsControlDomain         bool                   `xapi:"is_control_domain,ro"`
	Metrics                 string                 `xapi:"metrics,ro"`
	GuestMetrics            string                 `xapi:"guest_metrics,ro"`
	Recommendations         string                 `xapi:"recommendations"`
	XenstoreData            map[string]string      `xapi:"xenstore_data"`
	HAAlwaysRun             bool                   `xapi:"ha_always_run,omitempty"`
	HARestartPriority       string                 `xapi:"ha_restart_priority,omitempty"`
	IsASnapshot             bool                   `xapi:"is_a_snapshot,ro"`
	SnapshotOf              VMRef                  `xapi:"snapshot_of,ro"`
	Snapshots               []VMRef                `xapi:"snapshots,ro"`
	SnapshotTime            time.Time              `xapi:"snapshot_time,ro"`
	Tags                    []string               `xapi:"tags"`
	BlockedOperations       map[VMOperation]string `xapi:"blocked_operations"`
	Parent                  VMRef                  `xapi:"parent,ro"`
	Children                []VMRef                `xapi:"children,ro"`
	BIOSStrings             map[string]string      `xapi:"bios_strings,ro"`
	Version                 int64                  `xapi:"version,ro"`
	GenerationID            string                 `xapi:"generation_id,ro"`
	HasVendorDevice         bool                   `xapi:"has_vendor_device,omitempty"`
	RequiresReboot          bool                   `xapi:"requires_reboot,ro"`
	DomainType              DomainType             `xapi:"domain_type,omitempty"`
	NVRAM                   map[string]string      `xapi:"NVRAM,omitempty"`
}

// VDIRecord is a virtual disk's fields. VDI.create needs name_label,
// name_description, SR, virtual_size, type, sharable, read_only,
// other_config, xenstore_data, sm_config and tags.
type VDIRecord struct {
	UUID                string                  `xapi:"uuid,ro"`
	NameLabel           string                  `xapi:"name_label"`
	NameDescription     string                  `xapi:"name_description"`
	AllowedOperations   []VDIOperation          `xapi:"allowed_operations,ro"`
	CurrentOperations   map[string]VDIOperation `xapi:"current_operations,ro"`
	SR                  SRRef                   `xapi:"SR"`
	VBDs                []VBDRef                `xapi:"VBDs,ro"`
	VirtualSize         int64                   `xapi:"virtual_size"`
	PhysicalUtilisation int64                   `xapi:"physical_utilisation,ro"`
	Type                VDIType                 `xapi:"type"`
	Sharable            bool                    `xapi:"sharable"`
	ReadOnly            bool                    `xapi:"read_only"`
	OtherConfig         map[string]string       `xapi:"other_config"`
	StorageLock         bool                    `xapi:"storage_lock,ro"`
	Location            string                  `xapi:"location,ro"`
	Managed             bool                    `xapi:"managed,ro"`
	Missing             bool                    `xapi:"missing,ro"`
	Parent              VDIRef                  `xapi:"parent,ro"`
	XenstoreData        map[string]string       `xapi:"xenstore_data"`
	SMConfig            map[string]string       `xapi:"sm_config"`
	IsASnapshot         bool                    `xapi:"is_a_snapshot,ro"`
	SnapshotOf          VDIRef                  `xapi:"snapshot_of,ro"`
	Snapshots           []VDIRef                `xapi:"snapshots,ro"`
	SnapshotTime        time.Time               `xapi:"snapshot_time,ro"`
	Tags                []string                `xapi:"tags"`
	AllowCaching        bool                    `xapi:"allow_caching,ro"`
	OnBoot              string                  `xapi:"on_boot,ro"`
	MetadataOfPool      PoolRef                 `xapi:"metadata_of_pool,ro"`
	IsToolsISO          bool                    `xapi:"is_tools_iso,ro"`
	CBTEnabled          bool                    `xapi:"cbt_enabled,ro"`
}

// VBDRecord is a virtual block device's fields. VBD.create needs VM, VDI
// (OpaqueRef:NULL for an empty drive), userdevice, bootable, mode, type,
// empty, other_config, qos_algorithm_type and qos_algorithm_params.
// Unpluggable is sent only when true (the server default is true).
type VBDRecord struct {
	UUID               string                  `xapi:"uuid,ro"`
	AllowedOperations  []VBDOperation          `xapi:"allowed_operations,ro"`
	CurrentOperations  map[string]VBDOperation `xapi:"current_operations,ro"`
	VM                 VMRef                   `xapi:"VM"`
	VDI                VDIRef                  `xapi:"VDI"`
	Device             string                  `xapi:"device,omitempty"`
	Userdevice         string                  `xapi:"userdevice"`
	Bootable           bool                    `xapi:"bootable"`
	Mode               VBDMode                 `xapi:"mode"`
	Type               VBDType                 `xapi:"type"`
	Unpluggable        bool                    `xapi:"unpluggable,omitempty"`
	StorageLock        bool                    `xapi:"storage_lock,ro"`
	Empty              bool                    `xapi:"empty"`
	OtherConfig        map[string]string       `xapi:"other_config"`
	CurrentlyAttached  bool                    `xapi:"currently_attached,ro"`
	StatusCode         int64                   `xapi:"status_code,ro"`
	StatusDetail       string                  `xapi:"status_detail,ro"`
	RuntimeProperties  map[string]string       `xapi:"runtime_properties,ro"`
	QoSAlgorithmType   string                  `xapi:"qos_algorithm_type"`
	QoSAlgorithmParams map[string]string       `xapi:"qos_algorithm_params"`
	QoSSupportedAlgos  []string                `xapi:"qos_supported_algorithms,ro"`
	Metrics            string                  `xapi:"metrics,ro"`
}

// SRRecord is a storage repository's fields.
type SRRecord struct {
	UUID                string            `xapi:"uuid,ro"`
	NameLabel           string            `xapi:"name_label"`
	NameDescription     string            `xapi:"name_description"`
	AllowedOperations   []string          `xapi:"allowed_operations,ro"`
	CurrentOperations   map[string]string `xapi:"current_operations,ro"`
	VDIs                []VDIRef          `xapi:"VDIs,ro"`
	PBDs                []PBDRef          `xapi:"PBDs,ro"`
	VirtualAllocation   int64             `xapi:"virtual_allocation,ro"`
	PhysicalUtilisation int64             `xapi:"physical_utilisation,ro"`
	PhysicalSize        int64             `xapi:"physical_size,ro"`
	Type                string            `xapi:"type,ro"`
	ContentType         string            `xapi:"content_type,ro"`
	Shared              bool              `xapi:"shared,ro"`
	OtherConfig         map[string]string `xapi:"other_config"`
	Tags                []string          `xapi:"tags"`
	SMConfig            map[string]string `xapi:"sm_config,ro"`
	LocalCacheEnabled   bool              `xapi:"local_cache_enabled,ro"`
	IsToolsSR           bool              `xapi:"is_tools_sr,ro"`
}

// HostRecord is a host's fields.
type HostRecord struct {
	UUID             string            `xapi:"uuid,ro"`
	NameLabel        string            `xapi:"name_label"`
	NameDescription  string            `xapi:"name_description"`
	MemoryOverhead   int64             `xapi:"memory_overhead,ro"`
	APIVersionMajor  int64             `xapi:"API_version_major,ro"`
	APIVersionMinor  int64             `xapi:"API_version_minor,ro"`
	APIVersionVendor string            `xapi:"API_version_vendor,ro"`
	SoftwareVersion  map[string]string `xapi:"software_version,ro"`
	Enabled          bool              `xapi:"enabled,ro"`
	OtherConfig      map[string]string `xapi:"other_config"`
	Capabilities     []string          `xapi:"capabilities,ro"`
	ResidentVMs      []VMRef           `xapi:"resident_VMs,ro"`
	PBDs             []PBDRef          `xapi:"PBDs,ro"`
	SuspendImageSR   SRRef             `xapi:"suspend_image_sr,ro"`
	CrashDumpSR      SRRef             `xapi:"crash_dump_sr,ro"`
	CPUInfo          map[string]string `xapi:"cpu_info,ro"`
	Hostname         string            `xapi:"hostname,ro"`
	Address          string            `xapi:"address,ro"`
	Metrics          string            `xapi:"metrics,ro"`
	Edition          string            `xapi:"edition,ro"`
	Tags             []string          `xapi:"tags"`
}

// PoolRecord is the pool's fields.
type PoolRecord struct {
	UUID            string            `xapi:"uuid,ro"`
	NameLabel       string            `xapi:"name_label"`
	NameDescription string            `xapi:"name_description"`
	Master          HostRef           `xapi:"master,ro"`
	DefaultSR       SRRef             `xapi:"default_SR"`
	SuspendImageSR  SRRef             `xapi:"suspend_image_SR"`
	CrashDumpSR     SRRef             `xapi:"crash_dump_SR"`
	OtherConfig     map[string]string `xapi:"other_config"`
	HAEnabled       bool              `xapi:"ha_enabled,ro"`
	Tags            []string          `xapi:"tags"`
}

// TaskRecord is a task's fields. Result holds the XML-RPC value serialised
// into a string, as xapi stores it; DecodeTaskResult turns it into a value.
type TaskRecord struct {
	UUID              string                   `xapi:"uuid,ro"`
	NameLabel         string                   `xapi:"name_label"`
	NameDescription   string                   `xapi:"name_description"`
	AllowedOperations []TaskOperation          `xapi:"allowed_operations,ro"`
	CurrentOperations map[string]TaskOperation `xapi:"current_operations,ro"`
	Created           time.Time                `xapi:"created,ro"`
	Finished          time.Time                `xapi:"finished,ro"`
	Status            TaskStatus               `xapi:"status,ro"`
	ResidentOn        HostRef                  `xapi:"resident_on,ro"`
	Progress          float64                  `xapi:"progress,ro"`
	Type              string                   `xapi:"type,ro"`
	Result            string                   `xapi:"result,ro"`
	ErrorInfo         []string                 `xapi:"error_info,ro"`
	OtherConfig       map[string]string        `xapi:"other_config"`
	SubtaskOf         TaskRef                  `xapi:"subtask_of,ro"`
	Subtasks          []TaskRef                `xapi:"subtasks,ro"`
	Backtrace         string                   `xapi:"backtrace,ro"`
}

// EventBatch is the result of event.from.
type EventBatch struct {
	Events         []Event          `xapi:"events"`
	ValidRefCounts map[string]int64 `xapi:"valid_ref_counts"`
	Token          string           `xapi:"token"`
}

// Event is one change to one object. Snapshot is the object's record as
// xapi sent it (absent for deletions); DecodeSnapshot turns it into a typed
// record.
type Event struct {
	ID        int64          `xapi:"id"`
	Timestamp string         `xapi:"timestamp"`
	Class     string         `xapi:"class"`
	Operation EventOperation `xapi:"operation"`
	Ref       string         `xapi:"ref"`
	Snapshot  map[string]any `xapi:"snapshot"`
}

// DecodeSnapshot decodes the event's snapshot into dst, a pointer to a
// record such as *VMRecord or *TaskRecord.
func (e Event) DecodeSnapshot(dst any) error {
	return decodeInto(dst, e.Snapshot, "event."+e.Class+".snapshot")
}
