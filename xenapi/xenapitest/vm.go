package xenapitest

import (
	"strconv"
	"strings"
)

// vmAllowedStates lists, per vm_operations value, the power states the
// operation is allowed in, in xapi's order (xapi_vm_lifecycle.ml); the
// order shows in VM_BAD_POWER_STATE's expected parameter.
var vmAllowedStates = map[string][]string{
	"changing_memory_limits": {"Halted"},
	"changing_static_range":  {"Halted"},
	"changing_VCPUs":         {"Halted"},
	"make_into_template":     {"Halted"},
	"provision":              {"Halted"},
	"start":                  {"Halted"},
	"start_on":               {"Halted"},
	"unpause":                {"Paused"},
	"resume":                 {"Suspended"},
	"resume_on":              {"Suspended"},
	"clean_reboot":           {"Running"},
	"clean_shutdown":         {"Running"},
	"changing_memory_live":   {"Running"},
	"changing_VCPUs_live":    {"Running"},
	"migrate_send":           {"Running"},
	"pause":                  {"Running"},
	"pool_migrate":           {"Running"},
	"suspend":                {"Running"},
	"changing_dynamic_range": {"Halted", "Running"},
	"clone":                  {"Halted"},
	"copy":                   {"Halted"},
	"destroy":                {"Halted", "Suspended"},
	"export":                 {"Halted", "Suspended"},
	"hard_reboot":            {"Paused", "Running"},
	"checkpoint":             {"Paused", "Suspended", "Running"},
	"hard_shutdown":          {"Paused", "Suspended", "Running"},
	"shutdown":               {"Paused", "Suspended", "Running"},
	"snapshot":               {"Halted", "Paused", "Suspended", "Running"},
}

var (
	templateAllowedOps = map[string]bool{"changing_dynamic_range": true, "changing_static_range": true,
		"changing_memory_limits": true, "changing_shadow_memory": true, "changing_VCPUs": true, "clone": true,
		"copy": true, "export": true, "metadata_export": true, "provision": true, "destroy": true}
	snapshotAllowedOps = map[string]bool{"revert": true, "clone": true, "copy": true, "export": true,
		"destroy": true, "hard_shutdown": true, "metadata_export": true}
	dom0AllowedOps = map[string]bool{"data_source_op": true, "changing_memory_live": true,
		"awaiting_memory_live": true, "metadata_export": true, "changing_dynamic_range": true, "start": true}
)

// canonicalVMOp spells a vm_operations value as xapi does, matching it
// case-insensitively as xapi's enum parsing does; unknown values are kept.
func canonicalVMOp(op string) string {
	for known := range vmAllowedStates {
		if strings.EqualFold(known, op) {
			return known
		}
	}
	return op
}

func canonicalVMOps(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[canonicalVMOp(k)] = v
	}
	return out
}

// checkVMOp applies xapi's checks for a VM operation in xapi's order:
// blocked_operations, power state, template, snapshot, control domain.
func checkVMOp(vm *object, op string) error {
	if v, ok := vm.mapv("blocked_operations")[op]; ok {
		return fail(ErrOperationBlocked, vm.ref, v)
	}
	state := vm.str("power_state")
	allowed := vmAllowedStates[op]
	ok := false
	for _, s := range allowed {
		if s == state {
			ok = true
		}
	}
	if !ok {
		exp := make([]string, len(allowed))
		for i, s := range allowed {
			exp[i] = strings.ToLower(s)
		}
		return fail(ErrVMBadPowerState, vm.ref, strings.Join(exp, ", "), strings.ToLower(state))
	}
	if vm.bool("is_a_template") && !vm.bool("is_a_snapshot") && !templateAllowedOps[op] {
		return fail(ErrVMIsTemplate, vm.ref, op)
	}
	if vm.bool("is_a_snapshot") && !snapshotAllowedOps[op] {
		return fail(ErrVMIsSnapshot, vm.ref, op)
	}
	if vm.bool("is_control_domain") && !dom0AllowedOps[op] {
		return fail(ErrOperationNotAllowed, "Operations on domain 0 are not allowed")
	}
	return nil
}

// listedVMOperations are the operations xapi lists in a VM's
// allowed_operations (update_allowed_operations), in its order.
// Operations the pool does not simulate (checkpoint, export, pool_migrate,
// migrate_send) are left out.
var listedVMOperations = []string{"snapshot", "copy", "clone", "start", "start_on", "pause",
	"unpause", "clean_shutdown", "clean_reboot", "hard_shutdown", "hard_reboot", "suspend", "resume",
	"resume_on", "destroy", "changing_VCPUs_live", "changing_static_range", "changing_dynamic_range"}

// vmAllowedOperations lists the operations checkVMOp would allow now.
func vmAllowedOperations(vm *object) []string {
	out := []string{}
	blocked := vm.mapv("blocked_operations")
	state := vm.str("power_state")
	template := vm.bool("is_a_template") && !vm.bool("is_a_snapshot")
	snapshot, dom0 := vm.bool("is_a_snapshot"), vm.bool("is_control_domain")
	for _, op := range listedVMOperations {
		if _, ok := blocked[op]; ok {
			continue
		}
		inState := false
		for _, st := range vmAllowedStates[op] {
			inState = inState || st == state
		}
		if inState && !(template && !templateAllowedOps[op]) && !(snapshot && !snapshotAllowedOps[op]) && !(dom0 && !dom0AllowedOps[op]) {
			out = append(out, op)
		}
	}
	return out
}

// checkMemory enforces static_min ≤ dynamic_min ≤ dynamic_max ≤ static_max.
func checkMemory(smin, dmin, dmax, smax int64) error {
	if !(0 <= smin && smin <= dmin && dmin <= dmax && dmax <= smax) {
		return fail(ErrMemoryConstraintViolation)
	}
	return nil
}

const vcpuRule = "VCPU values must satisfy: 0 < VCPUs_at_startup ≤ VCPUs_max"

func (t methodTable) addVM() {
	getVM := func(c *call, a *args, op string) (*object, error) {
		vm, err := c.p.get(classVM, a.str(0))
		if err != nil {
			return nil, err
		}
		if a.err != nil {
			return nil, a.err
		}
		if op != "" {
			if err := checkVMOp(vm, op); err != nil {
				return nil, err
			}
		}
		return vm, nil
	}
	t.sessionCall("VM.create", true, func(c *call, a *args) (any, error) {
		f, err := createFromRecord(classVM, a.record(0))
		if err != nil {
			return nil, err
		}
		i64 := func(k string) int64 { n, _ := f[k].(int64); return n }
		if err := checkMemory(i64("memory_static_min"), i64("memory_dynamic_min"), i64("memory_dynamic_max"), i64("memory_static_max")); err != nil {
			return nil, err
		}
		if i64("VCPUs_max") < 1 {
			return nil, fail(ErrInvalidValue, "VCPUs_max", strconv.FormatInt(i64("VCPUs_max"), 10))
		}
		if n := i64("VCPUs_at_startup"); n < 1 || n > i64("VCPUs_max") {
			return nil, fail(ErrInvalidValue, "VCPUs_at_startup", strconv.FormatInt(n, 10))
		}
		if _, ok := f["memory_target"]; !ok {
			f["memory_target"] = f["memory_dynamic_max"]
		}
		if _, ok := f["HVM_shadow_multiplier"]; !ok {
			f["HVM_shadow_multiplier"] = 1.0
		}
		if _, ok := f["domain_type"]; !ok {
			f["domain_type"] = "unspecified"
		}
		f["power_state"] = "Halted"
		f["domid"] = int64(-1)
		vm := c.p.newObject(classVM, f)
		return vm.ref, nil
	}, "args")
	t.sessionCall("VM.destroy", true, func(c *call, a *args) (any, error) {
		vm, err := getVM(c, a, "destroy")
		if err != nil {
			return nil, err
		}
		c.p.dropSuspendImage(vm)
		c.p.destroyVM(vm)
		return nil, nil
	}, "self")
	t.sessionCall("VM.start", true, func(c *call, a *args) (any, error) {
		vm, err := getVM(c, a, "start")
		if err != nil {
			return nil, err
		}
		return nil, c.p.bootVM(vm, "", a.bool(1), "start")
	}, "vm", "start_paused", "force")
	t.sessionCall("VM.start_on", true, func(c *call, a *args) (any, error) {
		vm, err := getVM(c, a, "start_on")
		if err != nil {
			return nil, err
		}
		h, err := c.p.get(classHost, a.str(1))
		if err != nil {
			return nil, err
		}
		return nil, c.p.bootVM(vm, h.ref, a.bool(2), "start_on")
	}, "vm", "host", "start_paused", "force")
	t.sessionCall("VM.resume", true, func(c *call, a *args) (any, error) {
		vm, err := getVM(c, a, "resume")
		if err != nil {
			return nil, err
		}
		return nil, c.p.resumeVM(vm, "", a.bool(1), "resume")
	}, "vm", "start_paused", "force")
	t.sessionCall("VM.resume_on", true, func(c *call, a *args) (any, error) {
		vm, err := getVM(c, a, "resume_on")
		if err != nil {
			return nil, err
		}
		h, err := c.p.get(classHost, a.str(1))
		if err != nil {
			return nil, err
		}
		return nil, c.p.resumeVM(vm, h.ref, a.bool(2), "resume_on")
	}, "vm", "host", "start_paused", "force")
	for _, op := range []string{"clean_shutdown", "hard_shutdown", "shutdown"} {
		t.sessionCall("VM."+op, true, func(c *call, a *args) (any, error) {
			vm, err := getVM(c, a, op)
			if err != nil {
				return nil, err
			}
			c.p.haltVM(vm, "Halted")
			c.p.dropSuspendImage(vm)
			return nil, nil
		}, "vm")
	}
	for _, op := range []string{"clean_reboot", "hard_reboot"} {
		t.sessionCall("VM."+op, true, func(c *call, a *args) (any, error) {
			vm, err := getVM(c, a, op)
			if err != nil {
				return nil, err
			}
			vm.f["power_state"] = "Running"
			c.p.domid++
			vm.f["domid"] = c.p.domid
			c.p.touch(vm)
			return nil, nil
		}, "vm")
	}
	t.sessionCall("VM.suspend", true, func(c *call, a *args) (any, error) {
		vm, err := getVM(c, a, "suspend")
		if err != nil {
			return nil, err
		}
		return nil, c.p.suspendVM(vm)
	}, "vm")
	t.sessionCall("VM.set_suspend_VDI", false, func(c *call, a *args) (any, error) {
		vm, err := getVM(c, a, "")
		if err != nil {
			return nil, err
		}
		return nil, c.p.setSuspendVDI(vm, a.str(1))
	}, "self", "value")
	t.sessionCall("VM.pause", true, func(c *call, a *args) (any, error) {
		vm, err := getVM(c, a, "pause")
		if err != nil {
			return nil, err
		}
		vm.f["power_state"] = "Paused"
		c.p.touch(vm)
		return nil, nil
	}, "vm")
	t.sessionCall("VM.unpause", true, func(c *call, a *args) (any, error) {
		vm, err := getVM(c, a, "unpause")
		if err != nil {
			return nil, err
		}
		vm.f["power_state"] = "Running"
		c.p.touch(vm)
		return nil, nil
	}, "vm")
	t.sessionCall("VM.snapshot", true, func(c *call, a *args) (any, error) {
		vm, err := getVM(c, a, "snapshot")
		if err != nil {
			return nil, err
		}
		var ignore []string
		if a.present(2) {
			ignore = a.set(2)
		}
		return c.p.cloneVM(vm, a.str(1), true, ignore)
	}, "vm", "new_name", "ignore_vdis").withDefaults(1)
	t.sessionCall("VM.clone", true, func(c *call, a *args) (any, error) {
		vm, err := getVM(c, a, "clone")
		if err != nil {
			return nil, err
		}
		return c.p.cloneVM(vm, a.str(1), false, nil)
	}, "vm", "new_name")
	t.sessionCall("VM.copy", true, func(c *call, a *args) (any, error) {
		vm, err := getVM(c, a, "copy")
		if err != nil {
			return nil, err
		}
		name, sr := a.str(1), a.str(2)
		if a.err != nil {
			return nil, a.err
		}
		if sr != nullRef && sr != "" {
			if _, err := c.p.get(classSR, sr); err != nil {
				return nil, err
			}
		}
		return c.p.copyVM(vm, name, sr)
	}, "vm", "new_name", "sr")

	// VCPUs (xapi_vm.ml): halted only, 0 < at_startup ≤ max.
	t.sessionCall("VM.set_VCPUs_max", false, func(c *call, a *args) (any, error) {
		vm, err := getVM(c, a, "changing_VCPUs")
		if err != nil {
			return nil, err
		}
		n := a.int(1)
		if n < 1 || n < vm.int("VCPUs_at_startup") {
			return nil, fail(ErrInvalidValue, vcpuRule, strconv.FormatInt(n, 10))
		}
		vm.f["VCPUs_max"] = n
		c.p.touch(vm)
		return nil, nil
	}, "self", "value")
	t.sessionCall("VM.set_VCPUs_at_startup", false, func(c *call, a *args) (any, error) {
		vm, err := getVM(c, a, "changing_VCPUs")
		if err != nil {
			return nil, err
		}
		n := a.int(1)
		if n < 1 || n > vm.int("VCPUs_max") {
			return nil, fail(ErrInvalidValue, vcpuRule, strconv.FormatInt(n, 10))
		}
		vm.f["VCPUs_at_startup"] = n
		c.p.touch(vm)
		return nil, nil
	}, "self", "value")
	t.sessionCall("VM.set_VCPUs_number_live", true, func(c *call, a *args) (any, error) {
		vm, err := getVM(c, a, "changing_VCPUs_live")
		if err != nil {
			return nil, err
		}
		n := a.int(1)
		if n < 1 || n > vm.int("VCPUs_max") {
			return nil, fail(ErrInvalidValue, "nvcpu", strconv.FormatInt(n, 10))
		}
		c.p.touch(vm)
		return nil, nil
	}, "self", "nvcpu")

	// Memory.
	type memSetter struct {
		name, op string
		set      func(cur [4]int64, v []int64) [4]int64 // smin, dmin, dmax, smax
		params   []string
	}
	setters := []memSetter{
		{"set_memory_static_max", "changing_static_range", func(m [4]int64, v []int64) [4]int64 { m[3] = v[0]; return m }, []string{"self", "value"}},
		{"set_memory_static_min", "changing_static_range", func(m [4]int64, v []int64) [4]int64 { m[0] = v[0]; return m }, []string{"self", "value"}},
		{"set_memory_dynamic_max", "changing_memory_limits", func(m [4]int64, v []int64) [4]int64 { m[2] = v[0]; return m }, []string{"self", "value"}},
		{"set_memory_dynamic_min", "changing_memory_limits", func(m [4]int64, v []int64) [4]int64 { m[1] = v[0]; return m }, []string{"self", "value"}},
		{"set_memory_dynamic_range", "changing_dynamic_range", func(m [4]int64, v []int64) [4]int64 { m[1], m[2] = v[0], v[1]; return m }, []string{"self", "min", "max"}},
		{"set_memory_static_range", "changing_static_range", func(m [4]int64, v []int64) [4]int64 { m[0], m[3] = v[0], v[1]; return m }, []string{"self", "min", "max"}},
		{"set_memory_limits", "changing_memory_limits", func(m [4]int64, v []int64) [4]int64 { return [4]int64{v[0], v[2], v[3], v[1]} }, []string{"self", "static_min", "static_max", "dynamic_min", "dynamic_max"}},
		{"set_memory", "changing_memory_limits", func(m [4]int64, v []int64) [4]int64 { m[1], m[2], m[3] = v[0], v[0], v[0]; return m }, []string{"self", "value"}},
	}
	for _, s := range setters {
		async := s.name == "set_memory_dynamic_range" || s.name == "set_memory_static_range" || s.name == "set_memory_limits" || s.name == "set_memory"
		t.sessionCall("VM."+s.name, async, func(c *call, a *args) (any, error) {
			vm, err := getVM(c, a, s.op)
			if err != nil {
				return nil, err
			}
			vals := make([]int64, len(s.params)-1)
			for i := range vals {
				vals[i] = a.int(i + 1)
			}
			if a.err != nil {
				return nil, a.err
			}
			cur := [4]int64{vm.int("memory_static_min"), vm.int("memory_dynamic_min"), vm.int("memory_dynamic_max"), vm.int("memory_static_max")}
			m := s.set(cur, vals)
			if err := checkMemory(m[0], m[1], m[2], m[3]); err != nil {
				return nil, err
			}
			vm.f["memory_static_min"], vm.f["memory_dynamic_min"], vm.f["memory_dynamic_max"], vm.f["memory_static_max"] = m[0], m[1], m[2], m[3]
			vm.f["memory_target"] = m[2]
			c.p.touch(vm)
			return nil, nil
		}, s.params...)
	}
	t.sessionCall("VM.set_other_config", false, func(c *call, a *args) (any, error) {
		vm, err := getVM(c, a, "")
		if err != nil {
			return nil, err
		}
		vm.f["other_config"] = a.mapv(1)
		c.p.touch(vm)
		return nil, nil
	}, "self", "value")
}

// vmDisks returns the VM's VBDs that have a VDI.
func (p *Pool) vmDisks(vm *object) []*object {
	var out []*object
	for _, ref := range vm.set("VBDs") {
		if vbd, ok := p.objs[ref]; ok && !vbd.bool("empty") && vbd.str("VDI") != nullRef {
			out = append(out, vbd)
		}
	}
	return out
}

// bootVM runs a halted or suspended VM on a host: on hostRef if given,
// else on the host whose local SR holds its disks (or suspend image), else
// on its affinity host, else on the master.
func (p *Pool) bootVM(vm *object, hostRef string, paused bool, op string) error {
	hostRef, err := p.placeVM(vm, hostRef, op)
	if err != nil {
		return err
	}
	host := p.objs[hostRef]
	if err := p.checkHostMemory(vm, host); err != nil {
		return err
	}
	state := "Running"
	if paused {
		state = "Paused"
	}
	vm.f["power_state"] = state
	p.domid++
	vm.f["domid"] = p.domid
	vm.f["resident_on"] = hostRef
	vm.f["last_booted_record"] = ""
	host.addToSet("resident_VMs", vm.ref)
	p.updateHostMetrics(host)
	p.touch(host)
	for _, vbd := range p.vmDisks(vm) {
		vbd.f["currently_attached"] = true
		p.touch(vbd)
	}
	p.setVIFsAttached(vm, true)
	p.touch(vm)
	return nil
}

// haltVM takes a VM to Halted or Suspended: its domain goes away and its
// disks are detached.
func (p *Pool) haltVM(vm *object, state string) {
	if host, ok := p.objs[vm.str("resident_on")]; ok {
		host.removeFromSet("resident_VMs", vm.ref)
		p.updateHostMetrics(host)
		p.touch(host)
	}
	vm.f["power_state"] = state
	vm.f["domid"] = int64(-1)
	vm.f["resident_on"] = nullRef
	for _, ref := range vm.set("VBDs") {
		if vbd, ok := p.objs[ref]; ok && vbd.bool("currently_attached") {
			vbd.f["currently_attached"] = false
			p.touch(vbd)
		}
	}
	p.setVIFsAttached(vm, false)
	p.touch(vm)
}

// destroyVM removes a VM, its VBDs and VIFs (not its VDIs).
func (p *Pool) destroyVM(vm *object) {
	for _, ref := range vm.set("VBDs") {
		if vbd, ok := p.objs[ref]; ok {
			p.removeVBD(vbd)
		}
	}
	for _, ref := range vm.set("VIFs") {
		if vif, ok := p.objs[ref]; ok {
			p.removeVIF(vif)
		}
	}
	if of, ok := p.objs[vm.str("snapshot_of")]; ok {
		of.removeFromSet("snapshots", vm.ref)
		p.touch(of)
	}
	if host, ok := p.objs[vm.str("resident_on")]; ok {
		host.removeFromSet("resident_VMs", vm.ref)
		p.updateHostMetrics(host)
		p.touch(host)
	}
	p.deleteObject(vm)
}

// cloneVM makes a snapshot (or clone) of a VM: a halted copy of its record
// whose disks are VDI snapshots (or clones) of the VM's disks.
func (p *Pool) cloneVM(vm *object, name string, isSnapshot bool, ignore []string) (string, error) {
	skip := map[string]bool{}
	for _, r := range ignore {
		skip[r] = true
	}
	return p.duplicateVM(vm, name, isSnapshot, func(vdi string) (string, bool, error) {
		if skip[vdi] {
			return "", false, nil
		}
		r, err := p.snapshotVDI(vdi, isSnapshot)
		return r, true, err
	})
}

// copyVM makes a halted VM's full copy: its disks are copied, whole, into
// sr (into each disk's own SR when sr is NULL).
func (p *Pool) copyVM(vm *object, name, sr string) (string, error) {
	return p.duplicateVM(vm, name, false, func(vdi string) (string, bool, error) {
		target := sr
		if target == "" || target == nullRef {
			target = p.objs[vdi].str("SR")
		}
		r, err := p.copyVDI(vdi, target, "")
		return r, true, err
	})
}

// duplicateVM copies a VM's record and gives the copy the disks dup makes
// from the VM's disks (dup may skip one).
func (p *Pool) duplicateVM(vm *object, name string, isSnapshot bool, dup func(vdi string) (string, bool, error)) (string, error) {
	type pair struct{ vbd, vdi string }
	var disks []pair
	for _, vbd := range p.vmDisks(vm) {
		if vbd.str("type") != "Disk" {
			continue
		}
		newVDI, ok, err := dup(vbd.str("VDI"))
		if err != nil {
			return "", err
		}
		if ok {
			disks = append(disks, pair{vbd.ref, newVDI})
		}
	}
	f := map[string]any{}
	for k, v := range vm.f {
		f[k] = copyValue(v)
	}
	delete(f, "uuid")
	f["name_label"] = name
	f["power_state"] = "Halted"
	f["domid"] = int64(-1)
	f["resident_on"] = nullRef
	f["VBDs"] = []string{}
	f["VIFs"] = []string{}
	f["suspend_VDI"] = nullRef
	f["snapshots"] = []string{}
	f["children"] = []string{}
	f["blocked_operations"] = map[string]string{}
	if isSnapshot {
		f["is_a_snapshot"] = true
		f["snapshot_of"] = vm.ref
		f["snapshot_time"] = p.now()
	} else {
		f["is_a_snapshot"] = false
		f["snapshot_of"] = nullRef
		f["parent"] = vm.ref
	}
	clone := p.newObject(classVM, f)
	for _, d := range disks {
		old := p.objs[d.vbd]
		vbdF := map[string]any{}
		for k, v := range old.f {
			vbdF[k] = copyValue(v)
		}
		delete(vbdF, "uuid")
		vbdF["VM"] = clone.ref
		vbdF["VDI"] = d.vdi
		vbdF["currently_attached"] = false
		vbd := p.newObject(classVBD, vbdF)
		clone.addToSet("VBDs", vbd.ref)
		if vdi, ok := p.objs[d.vdi]; ok {
			vdi.addToSet("VBDs", vbd.ref)
			p.touch(vdi)
		}
	}
	p.copyVIFs(vm, clone, isSnapshot)
	if isSnapshot {
		vm.addToSet("snapshots", clone.ref)
		p.touch(vm)
	}
	p.touch(clone)
	return clone.ref, nil
}

// placeVM checks that the VM's disks (and, resuming, its suspend image)
// can be used on hostRef, or chooses the host: the one whose local SR
// holds them, else the VM's affinity, else the master. Shared SRs are seen
// by every host.
func (p *Pool) placeVM(vm *object, hostRef, op string) (string, error) {
	need := ""
	use := func(vdi *object, srObj *object, st *srState) error {
		if st.shared {
			return nil
		}
		h := st.host.ref
		if (hostRef != "" && hostRef != h) || (need != "" && need != h) {
			return fail(ErrVMRequiresSR, vm.ref, srObj.ref)
		}
		need = h
		return nil
	}
	for _, vbd := range p.vmDisks(vm) {
		vdi, srObj, st, err := p.usableVDI(vbd.str("VDI"))
		if err != nil {
			return "", err
		}
		if vbd.str("mode") == "RW" && !vdi.bool("sharable") {
			for _, other := range vdi.set("VBDs") {
				if o, ok := p.objs[other]; ok && o != vbd && o.bool("currently_attached") {
					return "", fail(ErrVDIInUse, vdi.ref, op)
				}
			}
		}
		if err := use(vdi, srObj, st); err != nil {
			return "", err
		}
	}
	if op == "resume" || op == "resume_on" {
		vdi, srObj, st, err := p.usableVDI(vm.str("suspend_VDI"))
		if err != nil {
			return "", err
		}
		if err := use(vdi, srObj, st); err != nil {
			return "", err
		}
	}
	switch {
	case hostRef != "":
	case need != "":
		hostRef = need
	default:
		hostRef = p.hosts[0].ref
		if a := vm.str("affinity"); a != nullRef {
			if _, ok := p.objs[a]; ok {
				hostRef = a
			}
		}
	}
	return hostRef, nil
}

// usableVDI returns a VDI whose file exists, with its SR.
func (p *Pool) usableVDI(ref string) (*object, *object, *srState, error) {
	vdi, ok := p.objs[ref]
	if !ok || vdi.cls != classVDI {
		return nil, nil, nil, fail(ErrHandleInvalid, "VDI", ref)
	}
	st, srObj, err := p.srOf(vdi)
	if err != nil {
		return nil, nil, nil, err
	}
	if vdi.bool("missing") || !st.disks.exists(vdiFile(vdi)) {
		return nil, nil, nil, fail(ErrVDIMissing, srObj.ref, vdi.ref)
	}
	return vdi, srObj, st, nil
}
