package main

import (
	"context"
	"fmt"

	"github.com/xenflow/xenflow/xenapi"
	"github.com/xenflow/xenflow/xenserver"
)

// rootDisk is an instance's VM and its root disk, as a XenAPI client
// finds them.
type rootDisk struct {
	VM      xenapi.VMRef
	Record  xenapi.VMRecord
	VDI     xenapi.VDIRef
	VDIUUID string
	SR      xenapi.SRRef
	Size    int64
}

// NoVMError is an instance no VM of the pool claims (other_config
// nova_uuid), or a VM name or uuid that names no VM.
type NoVMError struct {
	Name    string
	Matches int
}

// Error implements the error interface.
func (e *NoVMError) Error() string {
	if e.Matches > 1 {
		return fmt.Sprintf("%d VMs are named %q: give the uuid", e.Matches, e.Name)
	}
	return fmt.Sprintf("no VM %q in the pool", e.Name)
}

// guestVMs returns the pool's guest VMs (no templates, snapshots or
// control domains).
func guestVMs(ctx context.Context, c *xenapi.Client) (map[xenapi.VMRef]xenapi.VMRecord, error) {
	all, err := c.VM.GetAllRecords(ctx)
	if err != nil {
		return nil, err
	}
	for ref, r := range all {
		if r.IsATemplate || r.IsASnapshot || r.IsControlDomain {
			delete(all, ref)
		}
	}
	return all, nil
}

// instanceRoot finds the VM that claims the instance and its root disk
// (userdevice 0).
func instanceRoot(ctx context.Context, c *xenapi.Client, instanceUUID string) (rootDisk, error) {
	vms, err := guestVMs(ctx, c)
	if err != nil {
		return rootDisk{}, err
	}
	for ref, r := range vms {
		if r.OtherConfig[xenserver.KeyNovaUUID] == instanceUUID {
			return rootOf(ctx, c, ref, r)
		}
	}
	return rootDisk{}, &NoVMError{Name: "nova_uuid=" + instanceUUID}
}

// rootOf finds the disk at userdevice 0 of a VM.
func rootOf(ctx context.Context, c *xenapi.Client, ref xenapi.VMRef, r xenapi.VMRecord) (rootDisk, error) {
	for _, vbd := range r.VBDs {
		b, err := c.VBD.GetRecord(ctx, vbd)
		if err != nil {
			return rootDisk{}, err
		}
		if b.Userdevice != "0" || xenapi.IsNull(b.VDI) {
			continue
		}
		d, err := c.VDI.GetRecord(ctx, b.VDI)
		if err != nil {
			return rootDisk{}, err
		}
		return rootDisk{VM: ref, Record: r, VDI: b.VDI, VDIUUID: d.UUID, SR: d.SR, Size: d.VirtualSize}, nil
	}
	return rootDisk{}, fmt.Errorf("VM %s (%s) has no disk at userdevice 0", r.NameLabel, r.UUID)
}
