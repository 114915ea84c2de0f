package xenapitest

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
)

// suspendMagic starts the state a suspend image holds.
const suspendMagic = "xenflow-suspend-image\n"

// suspendState is what VM.suspend writes at the start of the suspend
// image: enough of the domain to check, on resume, that the image belongs
// to a VM of the same shape.
func suspendState(vm *object) []byte {
	return []byte(fmt.Sprintf("%svm=%s\nmemory=%d\nvcpus=%d\ndomid=%d\n\n", suspendMagic,
		vm.str("uuid"), vm.int("memory_static_max"), vm.int("VCPUs_at_startup"), vm.int("domid")))
}

// suspendSR chooses where a VM's suspend image goes, as
// Xapi_vm_helpers.choose_suspend_sr does: the VM's suspend_SR, else the
// pool's suspend_image_SR, else the host's suspend_image_sr; an SR the
// host cannot see is passed over.
func (p *Pool) suspendSR(vm, host *object) (*object, error) {
	for _, ref := range []string{vm.str("suspend_SR"), p.poolObj.str("suspend_image_SR"), host.str("suspend_image_sr")} {
		srObj, ok := p.objs[ref]
		if !ok || srObj.cls != classSR {
			continue
		}
		if st := p.srs[ref]; st != nil && st.visibleFrom(p.hostOf(host.ref)) {
			return srObj, nil
		}
	}
	return nil, fail(ErrSRNotFound, nullRef)
}

func (p *Pool) hostOf(ref string) *Host {
	for _, h := range p.hosts {
		if h.ref == ref {
			return h
		}
	}
	return nil
}

// suspendVM saves a running VM's state into a new suspend image VDI (type
// suspend, the VM's memory size) and leaves the VM Suspended with
// suspend_VDI naming it.
func (p *Pool) suspendVM(vm *object) error {
	host, ok := p.objs[vm.str("resident_on")]
	if !ok {
		return fail(ErrInternalError, "VM "+vm.ref+" is running nowhere")
	}
	srObj, err := p.suspendSR(vm, host)
	if err != nil {
		return err
	}
	vdi, err := p.createVDI(srObj, vm.int("memory_static_max"), map[string]any{
		"name_label":       "Suspend image",
		"name_description": "Suspend image of VM " + vm.str("uuid"),
		"SR":               srObj.ref,
		"type":             "suspend",
		"other_config":     map[string]string{},
	})
	if err != nil {
		return err
	}
	if err := p.writeVDI(vdi.ref, 0, suspendState(vm)); err != nil {
		_ = p.destroyVDI(vdi.ref)
		return fail(ErrInternalError, err.Error())
	}
	p.haltVM(vm, "Suspended")
	vm.f["suspend_VDI"] = vdi.ref
	p.touch(vm)
	return nil
}

// checkSuspendImage reads a suspend image before a resume: it must hold
// the state of a VM of this one's memory and vCPUs.
func (p *Pool) checkSuspendImage(vm *object) error {
	vdi, err := p.get(classVDI, vm.str("suspend_VDI"))
	if err != nil {
		return err
	}
	head := make([]byte, 512)
	if err := p.readVDIAt(vdi, head, 0); err != nil {
		return fail(ErrInternalError, err.Error())
	}
	fields := map[string]string{}
	if !bytes.HasPrefix(head, []byte(suspendMagic)) {
		return fail(ErrInternalError, "xenopsd: suspend image "+vdi.str("uuid")+" holds no domain state")
	}
	for _, line := range strings.Split(string(head[len(suspendMagic):]), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			fields[k] = v
		}
	}
	if fields["memory"] != strconv.FormatInt(vm.int("memory_static_max"), 10) || fields["vcpus"] != strconv.FormatInt(vm.int("VCPUs_at_startup"), 10) {
		return fail(ErrInternalError, fmt.Sprintf("xenopsd: suspend image %s is of a domain with memory %s and %s vCPUs", vdi.str("uuid"), fields["memory"], fields["vcpus"]))
	}
	return nil
}

// dropSuspendImage destroys a VM's suspend image after a resume or a hard
// shutdown, and clears suspend_VDI.
func (p *Pool) dropSuspendImage(vm *object) {
	ref := vm.str("suspend_VDI")
	if ref == nullRef || ref == "" {
		return
	}
	if _, ok := p.objs[ref]; ok {
		if err := p.destroyVDI(ref); err != nil {
			p.log.Debug("suspend image not destroyed", "vdi", ref, "err", err)
		}
	}
	vm.f["suspend_VDI"] = nullRef
	p.touch(vm)
}

// resumeVM boots a suspended VM from its suspend image, then destroys it.
func (p *Pool) resumeVM(vm *object, hostRef string, paused bool, op string) error {
	if err := p.checkSuspendImage(vm); err != nil {
		return err
	}
	if err := p.bootVM(vm, hostRef, paused, op); err != nil {
		return err
	}
	p.dropSuspendImage(vm)
	return nil
}

// setSuspendVDI is VM.set_suspend_VDI (xapi_vm.ml): a suspended VM's
// suspend image may be replaced only by a VDI of identical content,
// compared by MD5 of the whole disk.
func (p *Pool) setSuspendVDI(vm *object, ref string) error {
	if st := vm.str("power_state"); st != "Suspended" {
		return fail(ErrVMBadPowerState, vm.ref, "suspended", strings.ToLower(st))
	}
	src, err := p.get(classVDI, vm.str("suspend_VDI"))
	if err != nil {
		return err
	}
	dst, err := p.get(classVDI, ref)
	if err != nil {
		return err
	}
	a, err := p.vdiMD5(src)
	if err != nil {
		return err
	}
	b, err := p.vdiMD5(dst)
	if err != nil {
		return err
	}
	if a != b {
		return fail(ErrSuspendVDIReplacement, src.str("uuid")+" : "+a, dst.str("uuid")+" : "+b)
	}
	vm.f["suspend_VDI"] = dst.ref
	p.touch(vm)
	return nil
}

func (p *Pool) vdiMD5(vdi *object) (string, error) {
	h := md5.New()
	buf := make([]byte, streamBlockSize)
	size := vdi.int("virtual_size")
	for off := int64(0); off < size; off += int64(len(buf)) {
		chunk := buf[:min(int64(len(buf)), size-off)]
		if err := p.readVDIAt(vdi, chunk, off); err != nil {
			return "", fail(ErrInternalError, err.Error())
		}
		h.Write(chunk)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
