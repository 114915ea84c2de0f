package xenserver

import (
	"context"
	"errors"
	"fmt"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/statemachine"
	"github.com/xenflow/xenflow/xenapi"
)

// AdoptRequest names an existing VM for Adopt.
type AdoptRequest struct {
	// Host is the compute host the VM is on.
	Host string
	// VM is the VM's uuid or its name_label (which must name one VM).
	VM string
	// InstanceUUID is the instance the VM becomes; empty means the one
	// its other_config:nova_uuid already names, else the VM's own uuid.
	InstanceUUID string
}

// AlreadyClaimedError is a VM that another instance claims with
// other_config:nova_uuid (or as its -orig or rescue VM).
type AlreadyClaimedError struct {
	ComputeHost string
	VM          string
	// Key is the other_config key that claims it, Instance its value.
	Key      string
	Instance string
}

func (e *AlreadyClaimedError) Error() string {
	return fmt.Sprintf("xenserver: compute host %q: VM %s is claimed by instance %s (other_config:%s)",
		e.ComputeHost, e.VM, e.Instance, e.Key)
}

// NotAGuestError is a VM Adopt refuses: a template, a snapshot or a
// control domain.
type NotAGuestError struct {
	ComputeHost string
	VM          string
	What        string
}

func (e *NotAGuestError) Error() string {
	return fmt.Sprintf("xenserver: compute host %q: VM %s is a %s, not a guest", e.ComputeHost, e.VM, e.What)
}

// Adopt takes over a VM the driver did not create: it builds the
// instance and its flavor from the VM (memory_static_max, VCPUs_max, the
// root disk's virtual size rounded up to GiB, the other disks as
// ephemeral, the power state) and tags the VM other_config:nova_uuid, so
// every later call finds it. A VM another instance claims is refused
// (*AlreadyClaimedError), as is an instance another VM claims
// (*DuplicateInstanceError). Adopting the same VM again gives the same
// instance.
func (d *Driver) Adopt(ctx context.Context, req AdoptRequest) (*compute.Instance, error) {
	if req.VM == "" {
		return nil, &RequestError{Method: "Adopt", Field: "VM"}
	}
	t, err := d.pool(ctx, req.Host)
	if err != nil {
		return nil, err
	}
	vm, err := adoptable(ctx, t, req.VM)
	if err != nil {
		return nil, err
	}
	inst, err := claimFor(ctx, t, vm, req.InstanceUUID)
	if err != nil {
		return nil, err
	}
	err = updateVMOtherConfig(ctx, t.Client, vm.Ref, func(oc map[string]string) { oc[KeyNovaUUID] = inst })
	if err != nil {
		return nil, withHost(t, err)
	}
	disks, err := vmDisks(ctx, t.Client, vm)
	if err != nil {
		return nil, withHost(t, err)
	}
	return adoptedInstance(req.Host, inst, vm.Rec, disks), nil
}

// adoptable finds the VM by uuid or name_label, on the compute host, and
// refuses what is not a guest.
func adoptable(ctx context.Context, t *target, name string) (vmEntry, error) {
	ref, err := resolve(ctx, t, "VM", name, t.Client.VM.GetByUUID, t.Client.VM.GetByNameLabel)
	if err != nil {
		var nip *NotInPoolError
		if errors.As(err, &nip) && nip.Matches == 0 {
			return vmEntry{}, withHost(t, &compute.NotFoundError{Kind: compute.KindInstance, ID: name})
		}
		return vmEntry{}, err
	}
	rec, err := t.Client.VM.GetRecord(ctx, ref)
	if err != nil {
		return vmEntry{}, withHost(t, fmt.Errorf("VM %s: %w", name, err))
	}
	switch {
	case rec.IsATemplate:
		return vmEntry{}, &NotAGuestError{ComputeHost: t.Name, VM: rec.UUID, What: "template"}
	case rec.IsASnapshot:
		return vmEntry{}, &NotAGuestError{ComputeHost: t.Name, VM: rec.UUID, What: "snapshot"}
	case rec.IsControlDomain:
		return vmEntry{}, &NotAGuestError{ComputeHost: t.Name, VM: rec.UUID, What: "control domain"}
	case !onHost(rec, t):
		return vmEntry{}, withHost(t, &compute.NotFoundError{Kind: compute.KindInstance, ID: name})
	}
	return vmEntry{Ref: ref, Rec: rec}, nil
}

// claimFor decides the instance uuid the VM becomes and refuses a claim
// that clashes with another.
func claimFor(ctx context.Context, t *target, vm vmEntry, want string) (string, error) {
	oc := vm.Rec.OtherConfig
	for _, key := range []string{KeyOrigOf, KeyRescueOf} {
		if oc[key] != "" {
			return "", &AlreadyClaimedError{ComputeHost: t.Name, VM: vm.Rec.UUID, Key: key, Instance: oc[key]}
		}
	}
	have := oc[KeyNovaUUID]
	inst := want
	switch {
	case have != "" && want != "" && have != want:
		return "", &AlreadyClaimedError{ComputeHost: t.Name, VM: vm.Rec.UUID, Key: KeyNovaUUID, Instance: have}
	case have != "":
		inst = have
	case want == "":
		inst = vm.Rec.UUID
	}
	other, err := findVM(ctx, t.Client, inst)
	switch {
	case errors.Is(err, compute.ErrNotFound):
		return inst, nil
	case err != nil:
		return "", withHost(t, err)
	case other.Ref != vm.Ref:
		return "", withHost(t, &DuplicateInstanceError{InstanceUUID: inst, Pool: t.Pool, Key: KeyNovaUUID,
			VMs: []string{other.Rec.UUID, vm.Rec.UUID}})
	}
	return inst, nil
}

// adoptedInstance describes the VM as an instance of a flavor of its own.
func adoptedInstance(host, uuid string, rec xenapi.VMRecord, disks []vmDisk) *compute.Instance {
	const gib = 1 << 30
	flavor := &compute.Flavor{MemoryMB: int(rec.MemoryStaticMax >> 20), VCPUs: int(rec.VCPUsMax)}
	for _, d := range disks {
		gb := int((d.VDIRec.VirtualSize + gib - 1) / gib)
		if d.VBDRec.Userdevice == deviceRoot {
			flavor.RootGB = gb
		} else {
			flavor.EphemeralGB += gb
		}
	}
	flavor.ID = fmt.Sprintf("adopted-%dm-%dc-%dg-%dg", flavor.MemoryMB, flavor.VCPUs, flavor.RootGB, flavor.EphemeralGB)
	flavor.Name = flavor.ID
	hostname := rec.XenstoreData[xenstoreHostname]
	if hostname == "" {
		hostname = rec.NameLabel
	}
	power := powerState(rec.PowerState)
	return &compute.Instance{
		UUID: uuid, Name: rec.NameLabel, Hostname: hostname, Host: host, Node: host,
		VMState: adoptedVMState(power), PowerState: power, Flavor: flavor,
	}
}

// adoptedVMState is the vm_state a guest in a power state is in.
func adoptedVMState(p statemachine.PowerState) statemachine.VMState {
	switch p {
	case statemachine.PowerRunning:
		return statemachine.VMActive
	case statemachine.PowerPaused:
		return statemachine.VMPaused
	case statemachine.PowerSuspended:
		return statemachine.VMSuspended
	case statemachine.PowerShutdown:
		return statemachine.VMStopped
	}
	return statemachine.VMError
}
