package xenapitest

import (
	"fmt"
	"path/filepath"
	"strings"
)

// WriteGuestDisk acts as the guest: it writes data at off into the disk a
// running (or paused) VM sees at userdevice, that is into the leaf VHD of
// the VDI behind that VBD. The VBD must be attached.
func (p *Pool) WriteGuestDisk(vmRef, userdevice string, off int64, data []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	vm, err := p.get(classVM, vmRef)
	if err != nil {
		return err
	}
	if st := vm.str("power_state"); st != "Running" && st != "Paused" {
		return fail(ErrVMBadPowerState, vm.ref, "running", strings.ToLower(st))
	}
	for _, vbd := range p.vmDisks(vm) {
		if vbd.str("userdevice") != userdevice {
			continue
		}
		if !vbd.bool("currently_attached") {
			return fail(ErrDeviceAlreadyDetached, vbd.ref)
		}
		return p.writeVDI(vbd.str("VDI"), off, data)
	}
	return fmt.Errorf("xenapitest: VM %s has no disk at userdevice %q", vmRef, userdevice)
}

// WriteVDI writes data at off into a VDI's leaf VHD whatever its state,
// to prepare a disk's content before a test.
func (p *Pool) WriteVDI(vdiRef string, off int64, data []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.writeVDI(vdiRef, off, data)
}

func (p *Pool) writeVDI(vdiRef string, off int64, data []byte) error {
	vdi, err := p.get(classVDI, vdiRef)
	if err != nil {
		return err
	}
	if off < 0 || off+int64(len(data)) > vdi.int("virtual_size") {
		return fmt.Errorf("xenapitest: write of %d bytes at %d is outside VDI %s of %d bytes", len(data), off, vdiRef, vdi.int("virtual_size"))
	}
	st, _, err := p.srOf(vdi)
	if err != nil {
		return err
	}
	if err := st.disks.writeAt(vdiFile(vdi), data, off); err != nil {
		return fmt.Errorf("xenapitest: write VDI %s: %w", vdiRef, err)
	}
	return nil
}

// ReadVDI returns a VDI's whole virtual content, read through its VHD
// chain. Meant for small test disks: it allocates virtual_size bytes.
func (p *Pool) ReadVDI(vdiRef string) ([]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	vdi, err := p.get(classVDI, vdiRef)
	if err != nil {
		return nil, err
	}
	size := vdi.int("virtual_size")
	if size > 1<<30 {
		return nil, fmt.Errorf("xenapitest: VDI %s has %d bytes; use ReadVDIAt", vdiRef, size)
	}
	buf := make([]byte, size)
	return buf, p.readVDIAt(vdi, buf, 0)
}

// ReadVDIAt reads len(buf) bytes of a VDI's virtual content at off.
func (p *Pool) ReadVDIAt(vdiRef string, buf []byte, off int64) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	vdi, err := p.get(classVDI, vdiRef)
	if err != nil {
		return err
	}
	return p.readVDIAt(vdi, buf, off)
}

func (p *Pool) readVDIAt(vdi *object, buf []byte, off int64) error {
	if off < 0 || off+int64(len(buf)) > vdi.int("virtual_size") {
		return fmt.Errorf("xenapitest: read of %d bytes at %d is outside VDI %s", len(buf), off, vdi.ref)
	}
	st, _, err := p.srOf(vdi)
	if err != nil {
		return err
	}
	if err := st.disks.readAt(vdiFile(vdi), buf, off); err != nil {
		return fmt.Errorf("xenapitest: read VDI %s: %w", vdi.ref, err)
	}
	return nil
}

// VDIPath returns the path of a VDI's VHD file on this machine.
func (p *Pool) VDIPath(vdiRef string) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	vdi, err := p.get(classVDI, vdiRef)
	if err != nil {
		return "", err
	}
	st, _, err := p.srOf(vdi)
	if err != nil {
		return "", err
	}
	return filepath.Join(st.dir, vdiFile(vdi)), nil
}

// Record returns the record of any object by ref, in the wire value model.
func (p *Pool) Record(ref string) (map[string]any, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	o, ok := p.objs[ref]
	if !ok {
		return nil, fail(ErrHandleInvalid, "unknown", ref)
	}
	return o.record(), nil
}
