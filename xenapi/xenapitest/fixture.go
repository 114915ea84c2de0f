package xenapitest

import (
	"fmt"
	"strconv"
)

// VMSpec describes a VM for AddVM.
type VMSpec struct {
	Name string
	// Host names the host whose local SR holds the disks (and which runs
	// the VM); "" is the master.
	Host string
	// Memory is memory_static_max (and the dynamic range) in bytes; 0
	// means 1 GiB.
	Memory int64
	// VCPUs is VCPUs_max and VCPUs_at_startup; 0 means 1.
	VCPUs int
	// Disks are virtual sizes in bytes; disk i is attached at userdevice
	// i, the first one bootable.
	Disks []int64
	// SR is the ref of the SR that holds the disks (Pool.SharedSR, for
	// one); "" is the local SR of Host.
	SR string
	// Networks are refs of networks the VM gets a VIF on, device i on
	// Networks[i], with a made-up MAC.
	Networks []string
	// Running starts the VM.
	Running bool
	// OtherConfig is the VM's other_config.
	OtherConfig map[string]string
}

// VMInfo names what AddVM made.
type VMInfo struct {
	Ref, UUID string
	VBDs      []string // VBD refs, by userdevice
	VDIs      []string // VDI refs, by userdevice
	VIFs      []string // VIF refs, by device
}

// AddVM builds a VM with disks the way a client would (VM.create,
// VDI.create, VBD.create, VM.start) but without a session, without
// entries in the call log and without faults.
func (p *Pool) AddVM(spec VMSpec) (VMInfo, error) {
	var host *Host
	for _, h := range p.hosts {
		if h.name == spec.Host || (spec.Host == "" && h.IsMaster()) {
			host = h
		}
	}
	if host == nil {
		return VMInfo{}, fmt.Errorf("xenapitest: AddVM %q: no host %q", spec.Name, spec.Host)
	}
	mem := spec.Memory
	if mem <= 0 {
		mem = 1 << 30
	}
	vcpus := spec.VCPUs
	if vcpus <= 0 {
		vcpus = 1
	}
	oc := map[string]any{}
	for k, v := range spec.OtherConfig {
		oc[k] = v
	}
	memS := strconv.FormatInt(mem, 10)
	rec := map[string]any{
		"name_label": spec.Name, "name_description": "", "user_version": "1", "is_a_template": false,
		"affinity": host.ref, "memory_static_max": memS, "memory_dynamic_max": memS,
		"memory_dynamic_min": memS, "memory_static_min": "0", "memory_target": memS,
		"VCPUs_params": map[string]any{}, "VCPUs_max": strconv.Itoa(vcpus), "VCPUs_at_startup": strconv.Itoa(vcpus),
		"actions_after_shutdown": "destroy", "actions_after_reboot": "restart", "actions_after_crash": "destroy",
		"PV_bootloader": "pygrub", "PV_kernel": "", "PV_ramdisk": "", "PV_args": "", "PV_bootloader_args": "",
		"PV_legacy_args": "", "HVM_boot_policy": "", "HVM_boot_params": map[string]any{}, "platform": map[string]any{},
		"PCI_bus": "", "other_config": oc, "recommendations": "", "domain_type": "pv",
	}
	vmRef, err := p.internal("VM.create", rec)
	if err != nil {
		return VMInfo{}, fmt.Errorf("xenapitest: AddVM %q: %w", spec.Name, err)
	}
	info := VMInfo{Ref: vmRef.(string)}
	sr := spec.SR
	if sr == "" {
		sr = host.srRef
	}
	for i, network := range spec.Networks {
		vif, err := p.internal("VIF.create", map[string]any{
			"device": strconv.Itoa(i), "network": network, "VM": info.Ref, "MAC": "", "MTU": "1500",
			"other_config": map[string]any{}, "qos_algorithm_type": "", "qos_algorithm_params": map[string]any{},
		})
		if err != nil {
			return info, fmt.Errorf("xenapitest: AddVM %q VIF %d: %w", spec.Name, i, err)
		}
		info.VIFs = append(info.VIFs, vif.(string))
	}
	for i, size := range spec.Disks {
		vdi, err := p.internal("VDI.create", map[string]any{
			"name_label": fmt.Sprintf("%s disk %d", spec.Name, i), "name_description": "", "SR": sr,
			"virtual_size": strconv.FormatInt(size, 10), "type": "user", "sharable": false, "read_only": false,
			"other_config": map[string]any{},
		})
		if err != nil {
			return info, fmt.Errorf("xenapitest: AddVM %q disk %d: %w", spec.Name, i, err)
		}
		vbd, err := p.internal("VBD.create", map[string]any{
			"VM": info.Ref, "VDI": vdi, "userdevice": strconv.Itoa(i), "bootable": i == 0, "mode": "RW",
			"type": "Disk", "empty": false, "other_config": map[string]any{}, "qos_algorithm_type": "",
			"qos_algorithm_params": map[string]any{},
		})
		if err != nil {
			return info, fmt.Errorf("xenapitest: AddVM %q disk %d: %w", spec.Name, i, err)
		}
		info.VDIs = append(info.VDIs, vdi.(string))
		info.VBDs = append(info.VBDs, vbd.(string))
	}
	if spec.Running {
		if _, err := p.internal("VM.start", info.Ref, false, false); err != nil {
			return info, fmt.Errorf("xenapitest: AddVM %q start: %w", spec.Name, err)
		}
	}
	p.mu.Lock()
	info.UUID = p.objs[info.Ref].str("uuid")
	p.mu.Unlock()
	return info, nil
}
