package xenserver

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/scheduler"
	"github.com/xenflow/xenflow/xenapi"
)

var (
	_ compute.Driver           = (*Driver)(nil)
	_ compute.HostStateWatcher = (*Driver)(nil)
	_ compute.HostStateWatcher = (*Watcher)(nil)
)

// Hypervisor type and VM modes the driver reports, as Nova's XenAPI
// driver did (nova/virt/xenapi/driver.py, get_available_resource; host.py,
// to_supported_instances).
const (
	HypervisorType = "XenServer"
	// hvTypeXen is the hypervisor type of the supported-instance triples
	// (nova/objects/fields.py, HVType.XEN).
	hvTypeXen = "xen"
	vmModeXen = "xen"
	vmModeHVM = "hvm"
)

// hostMetrics is the part of a host_metrics record the driver reads; the
// xenapi client has no typed host_metrics calls.
type hostMetrics struct {
	MemoryTotal int64 `xapi:"memory_total,ro"`
	MemoryFree  int64 `xapi:"memory_free,ro"`
	Live        bool  `xapi:"live,ro"`
}

// hostSnapshot is what a host state is computed from: the host's record
// and metrics, its instance SR and the guest VMs resident on it.
type hostSnapshot struct {
	Host    xenapi.HostRecord
	Metrics hostMetrics
	// FreeMemory is host.compute_free_memory, or host_metrics.memory_free
	// where the call is not made (the watcher).
	FreeMemory int64
	SR         xenapi.SRRecord
	VMs        []xenapi.VMRecord
}

// GetAvailableResource returns what req.Host offers the scheduler, read
// from xapi's records (nova/virt/xenapi/host.py, HostState.update_status;
// driver.py, get_available_resource): memory from host_metrics and
// host.compute_free_memory, vCPUs from cpu_info, disk from the instance
// SR's physical_size and physical_utilisation, the guests resident on the
// host, and the hypervisor's type, version and CPU architecture.
func (d *Driver) GetAvailableResource(ctx context.Context, req compute.HostRequest) (scheduler.HostState, error) {
	t, err := d.pool(ctx, req.Host)
	if err != nil {
		return scheduler.HostState{}, err
	}
	snap, err := readHostSnapshot(ctx, t)
	if err != nil {
		return scheduler.HostState{}, withHost(t, err)
	}
	return snap.state(req.Host), nil
}

// readHostSnapshot reads a host's records: host, host_metrics,
// compute_free_memory, the SR and the resident guests.
func readHostSnapshot(ctx context.Context, t *target) (hostSnapshot, error) {
	c := t.Client
	var s hostSnapshot
	var err error
	if s.Host, err = c.Host.GetRecord(ctx, t.Host); err != nil {
		return s, fmt.Errorf("host %s: %w", t.Host, err)
	}
	if s.Metrics, err = readHostMetrics(ctx, c, s.Host.Metrics); err != nil {
		return s, err
	}
	v, err := c.Call(ctx, "host.compute_free_memory", string(t.Host))
	if err != nil {
		return s, fmt.Errorf("host.compute_free_memory of %s: %w", t.Host, err)
	}
	if s.FreeMemory, err = decimal(v); err != nil {
		return s, fmt.Errorf("host.compute_free_memory of %s: %w", t.Host, err)
	}
	if s.SR, err = c.SR.GetRecord(ctx, t.SR); err != nil {
		return s, fmt.Errorf("SR %s: %w", t.SR, err)
	}
	recs, err := c.VM.GetAllRecordsWhere(ctx, fmt.Sprintf(`field "resident_on"="%s" and field "is_control_domain"="false"`, t.Host))
	if err != nil {
		return s, fmt.Errorf("VMs resident on %s: %w", t.Host, err)
	}
	for _, rec := range recs {
		s.VMs = append(s.VMs, rec)
	}
	return s, nil
}

// readHostMetrics reads a host_metrics record with the generic call.
func readHostMetrics(ctx context.Context, c *xenapi.Client, ref string) (hostMetrics, error) {
	var m hostMetrics
	if xenapi.IsNull(ref) {
		return m, nil
	}
	v, err := c.Call(ctx, "host_metrics.get_record", ref)
	if err != nil {
		return m, fmt.Errorf("host_metrics %s: %w", ref, err)
	}
	return m, decodeRecordValue(v, "host_metrics", &m)
}

// decodeRecordValue decodes a record returned by Client.Call into dst (a
// pointer to a struct with xapi tags), as event snapshots are decoded.
func decodeRecordValue(v any, class string, dst any) error {
	m, ok := v.(map[string]any)
	if !ok {
		return fmt.Errorf("xenserver: %s record is %T, not a struct", class, v)
	}
	return xenapi.Event{Class: class, Snapshot: m}.DecodeSnapshot(dst)
}

// decimal reads an int that xapi sends as a decimal string.
func decimal(v any) (int64, error) {
	switch n := v.(type) {
	case string:
		return strconv.ParseInt(n, 10, 64)
	case int64:
		return n, nil
	case int:
		return int64(n), nil
	}
	return 0, fmt.Errorf("xenserver: %T is not an int", v)
}

// state turns a snapshot into the scheduler's host state.
func (s hostSnapshot) state(name string) scheduler.HostState {
	arch, modes := hostArch(s.Host.Capabilities)
	hs := scheduler.HostState{
		Host: name, Node: name,
		Disabled:          !s.Host.Enabled,
		Down:              !xenapi.IsNull(s.Host.Metrics) && !s.Metrics.Live,
		TotalUsableRAMMB:  s.Metrics.MemoryTotal >> 20,
		FreeRAMMB:         s.FreeMemory >> 20,
		TotalUsableDiskGB: s.SR.PhysicalSize >> 30,
		FreeDiskMB:        max(0, s.SR.PhysicalSize-s.SR.PhysicalUtilisation) >> 20,
		VCPUsTotal:        cpuCount(s.Host.CPUInfo),
		HypervisorType:    HypervisorType,
		HypervisorVersion: hypervisorVersion(s.Host.SoftwareVersion),
		CPUArch:           arch,
		VMMode:            vmModeXen,
	}
	for _, m := range modes {
		hs.SupportedInstances = append(hs.SupportedInstances, [3]string{arch, hvTypeXen, m})
	}
	for _, vm := range s.VMs {
		if vm.IsControlDomain || vm.IsATemplate || vm.IsASnapshot {
			continue
		}
		hs.NumInstances++
		hs.VCPUsUsed += vm.VCPUsMax
		if id := vm.OtherConfig[KeyNovaUUID]; id != "" {
			hs.Instances = append(hs.Instances, id)
		}
	}
	sort.Strings(hs.Instances)
	return hs
}

// cpuCount reads host.cpu_info's cpu_count.
func cpuCount(info map[string]string) int64 {
	n, err := strconv.ParseInt(info["cpu_count"], 10, 64)
	if err != nil {
		return 0
	}
	return n
}

// hypervisorVersion is Nova's integer form of the product version
// (oslo_utils versionutils.convert_version_to_int: 8.2.1 is 8002001), from
// software_version product_version, else platform_version (XCP-ng).
func hypervisorVersion(sv map[string]string) int64 {
	v := sv["product_version"]
	if v == "" {
		v = sv["platform_version"]
	}
	parts := strings.Split(v, ".")
	var n int64
	for i := 0; i < 3; i++ {
		n *= 1000
		if i < len(parts) {
			p, err := strconv.ParseInt(parts[i], 10, 64)
			if err != nil || p < 0 || p >= 1000 {
				return 0
			}
			n += p
		}
	}
	return n
}

// hostArch reads the CPU architecture and VM modes from host.capabilities
// ("xen-3.0-x86_64", "hvm-3.0-x86_32"), as host.py to_supported_instances
// does: x86_32 is reported as i686.
func hostArch(caps []string) (string, []string) {
	arch := ""
	var modes []string
	seen := map[string]bool{}
	for _, c := range caps {
		parts := strings.Split(c, "-")
		if len(parts) != 3 {
			continue
		}
		mode, a := parts[0], parts[2]
		if a == "x86_32" {
			a = "i686"
		}
		if mode != vmModeXen && mode != vmModeHVM {
			continue
		}
		if arch == "" || a == "x86_64" {
			arch = a
		}
		if !seen[mode] {
			seen[mode] = true
			modes = append(modes, mode)
		}
	}
	return arch, modes
}
