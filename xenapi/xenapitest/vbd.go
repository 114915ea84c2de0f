package xenapitest

import (
	"strconv"
	"strings"
)

func (t methodTable) addVBD() {
	t.sessionCall("VBD.create", true, func(c *call, a *args) (any, error) {
		f, err := createFromRecord(classVBD, a.record(0))
		if err != nil {
			return nil, err
		}
		vm, err := c.p.get(classVM, f["VM"].(string))
		if err != nil {
			return nil, err
		}
		empty, _ := f["empty"].(bool)
		vdiRef := f["VDI"].(string)
		var vdi *object
		if !empty || vdiRef != nullRef {
			if vdi, err = c.p.get(classVDI, vdiRef); err != nil {
				return nil, err
			}
		}
		if _, ok := f["unpluggable"]; !ok {
			f["unpluggable"] = true
		}
		used := map[string]bool{}
		for _, r := range vm.set("VBDs") {
			if o, ok := c.p.objs[r]; ok {
				used[o.str("userdevice")] = true
			}
		}
		dev := f["userdevice"].(string)
		if dev == "autodetect" {
			for i := 0; ; i++ {
				if !used[strconv.Itoa(i)] {
					dev = strconv.Itoa(i)
					break
				}
			}
			f["userdevice"] = dev
		} else if used[dev] {
			return nil, fail(ErrDeviceAlreadyExists, dev)
		}
		if n, err := strconv.Atoi(dev); err == nil && n >= 0 && n < 26 && f["device"] == nil {
			f["device"] = "xvd" + string(rune('a'+n))
		}
		f["currently_attached"] = false
		vbd := c.p.newObject(classVBD, f)
		vm.addToSet("VBDs", vbd.ref)
		c.p.touch(vm)
		if vdi != nil {
			vdi.addToSet("VBDs", vbd.ref)
			c.p.touch(vdi)
		}
		return vbd.ref, nil
	}, "args")
	getVBD := func(c *call, a *args) (*object, *object, error) {
		vbd, err := c.p.get(classVBD, a.str(0))
		if err != nil {
			return nil, nil, err
		}
		vm, err := c.p.get(classVM, vbd.str("VM"))
		if err != nil {
			return nil, nil, err
		}
		return vbd, vm, nil
	}
	t.sessionCall("VBD.destroy", true, func(c *call, a *args) (any, error) {
		vbd, vm, err := getVBD(c, a)
		if err != nil {
			return nil, err
		}
		if vbd.bool("currently_attached") && vm.str("power_state") != "Halted" {
			return nil, fail(ErrOperationNotAllowed, "VBD '"+vbd.str("uuid")+"' still attached to '"+vm.str("uuid")+"'")
		}
		c.p.removeVBD(vbd)
		return nil, nil
	}, "self")
	t.sessionCall("VBD.plug", true, func(c *call, a *args) (any, error) {
		vbd, vm, err := getVBD(c, a)
		if err != nil {
			return nil, err
		}
		if st := vm.str("power_state"); st != "Running" {
			return nil, fail(ErrVMBadPowerState, vm.ref, "running", strings.ToLower(st))
		}
		if vbd.bool("currently_attached") {
			return nil, fail(ErrDeviceAlreadyAttached, vbd.ref)
		}
		if vdi, ok := c.p.objs[vbd.str("VDI")]; ok && !vbd.bool("empty") {
			st, srObj, err := c.p.srOf(vdi)
			if err != nil {
				return nil, err
			}
			if !st.shared && st.host.ref != vm.str("resident_on") {
				return nil, fail(ErrVMRequiresSR, vm.ref, srObj.ref)
			}
			if !st.disks.exists(vdiFile(vdi)) {
				return nil, fail(ErrVDIMissing, srObj.ref, vdi.ref)
			}
			if vbd.str("mode") == "RW" && !vdi.bool("sharable") {
				for _, other := range vdi.set("VBDs") {
					if o, ok := c.p.objs[other]; ok && o != vbd && o.bool("currently_attached") {
						return nil, fail(ErrVDIInUse, vdi.ref, "plug")
					}
				}
			}
		}
		vbd.f["currently_attached"] = true
		c.p.touch(vbd)
		return nil, nil
	}, "self")
	unplug := func(force bool) func(c *call, a *args) (any, error) {
		return func(c *call, a *args) (any, error) {
			vbd, vm, err := getVBD(c, a)
			if err != nil {
				return nil, err
			}
			if st := vm.str("power_state"); st != "Running" {
				return nil, fail(ErrVMBadPowerState, vm.ref, "running", strings.ToLower(st))
			}
			if !vbd.bool("currently_attached") {
				return nil, fail(ErrDeviceAlreadyDetached, vbd.ref)
			}
			if !force && !vbd.bool("unpluggable") {
				return nil, fail(ErrVBDNotUnpluggable, vbd.ref)
			}
			vbd.f["currently_attached"] = false
			c.p.touch(vbd)
			return nil, nil
		}
	}
	t.sessionCall("VBD.unplug", true, unplug(false), "self")
	t.sessionCall("VBD.unplug_force", true, unplug(true), "self")
	t.sessionCall("VBD.insert", true, func(c *call, a *args) (any, error) {
		vbd, _, err := getVBD(c, a)
		if err != nil {
			return nil, err
		}
		vdi, err := c.p.get(classVDI, a.str(1))
		if err != nil {
			return nil, err
		}
		if !vbd.bool("empty") {
			return nil, fail(ErrVBDNotEmpty, vbd.ref)
		}
		vbd.f["empty"] = false
		vbd.f["VDI"] = vdi.ref
		vdi.addToSet("VBDs", vbd.ref)
		c.p.touch(vbd)
		c.p.touch(vdi)
		return nil, nil
	}, "vbd", "vdi")
	t.sessionCall("VBD.eject", true, func(c *call, a *args) (any, error) {
		vbd, _, err := getVBD(c, a)
		if err != nil {
			return nil, err
		}
		if vbd.bool("empty") {
			return nil, fail(ErrVBDIsEmpty, vbd.ref)
		}
		if vdi, ok := c.p.objs[vbd.str("VDI")]; ok {
			vdi.removeFromSet("VBDs", vbd.ref)
			c.p.touch(vdi)
		}
		vbd.f["empty"] = true
		vbd.f["VDI"] = nullRef
		c.p.touch(vbd)
		return nil, nil
	}, "vbd")
}

// removeVBD deletes a VBD and its back-references.
func (p *Pool) removeVBD(vbd *object) {
	if vm, ok := p.objs[vbd.str("VM")]; ok {
		vm.removeFromSet("VBDs", vbd.ref)
		p.touch(vm)
	}
	if vdi, ok := p.objs[vbd.str("VDI")]; ok {
		vdi.removeFromSet("VBDs", vbd.ref)
		p.touch(vdi)
	}
	p.deleteObject(vbd)
}
