package xenapitest

import "strconv"

// vmFootprint is what a resident VM takes from its host's memory, as xapi
// counts it for host.compute_free_memory: its memory target (the
// balloon's size; dynamic_max when it does not balloon) plus its
// overhead.
func vmFootprint(vm *object) int64 {
	target := vm.int("memory_target")
	if target <= 0 {
		target = vm.int("memory_dynamic_max")
	}
	return target + vm.int("memory_overhead")
}

// hostFreeMemory is host.compute_free_memory: the host's RAM minus what
// the control domain and every other resident VM take. The caller holds
// p.mu.
func (p *Pool) hostFreeMemory(host *object) int64 {
	free := p.opts.HostMemory - host.int("memory_overhead")
	for _, r := range host.set("resident_VMs") {
		if o, ok := p.objs[r]; ok {
			free -= vmFootprint(o)
		}
	}
	return free
}

// updateHostMetrics refreshes host_metrics.memory_free after the host's
// resident VMs changed, as xapi's monitoring does. The caller holds p.mu.
func (p *Pool) updateHostMetrics(host *object) {
	m, ok := p.objs[host.str("metrics")]
	if !ok {
		return
	}
	m.f["memory_free"] = p.hostFreeMemory(host)
	m.f["last_updated"] = p.now()
	p.touch(m)
}

// addHostMetrics gives a new host its host_metrics object. The caller
// holds p.mu.
func (p *Pool) addHostMetrics(host *object) {
	m := p.newObject(classHostMetrics, map[string]any{
		"memory_total": p.opts.HostMemory,
		"live":         true,
		"last_updated": p.now(),
	})
	host.f["metrics"] = m.ref
	p.updateHostMetrics(host)
}

// checkHostMemory refuses to start vm on host when its memory_static_max
// does not fit in the host's free memory.
func (p *Pool) checkHostMemory(vm, host *object) error {
	free := p.hostFreeMemory(host)
	if need := vm.int("memory_static_max"); need > free {
		return fail(ErrHostNotEnoughFreeMemory, strconv.FormatInt(need, 10), strconv.FormatInt(free, 10))
	}
	return nil
}

// HostFreeMemory returns host.compute_free_memory of a host: its RAM
// minus the control domain's and the resident VMs' memory.
func (h *Host) HostFreeMemory() int64 {
	h.p.mu.Lock()
	defer h.p.mu.Unlock()
	return h.p.hostFreeMemory(h.p.objs[h.ref])
}
