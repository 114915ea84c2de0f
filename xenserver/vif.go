package xenserver

import (
	"context"
	"fmt"
	"strconv"

	"github.com/xenflow/xenflow/xenapi"
)

// vifTemplate is a network interface of the source VM, recreated on the
// destination VM so the guest keeps its network (device, MAC, MTU) across
// a move (nova/virt/xenapi/vif.py, plug).
type vifTemplate struct {
	Device string `json:"device"`
	MAC    string `json:"mac"`
	MTU    string `json:"mtu,omitempty"`
	// Network is the network's name_label, NetworkUUID its uuid: a host
	// of the same pool finds it by uuid, another pool by name.
	Network     string `json:"network"`
	NetworkUUID string `json:"network_uuid"`
}

// sourceVIFs reads the VM's network interfaces.
func sourceVIFs(ctx context.Context, c *xenapi.Client, vm vmEntry) ([]vifTemplate, error) {
	var out []vifTemplate
	for _, ref := range vm.Rec.VIFs {
		vif, err := callRecord(ctx, c, "VIF.get_record", string(ref))
		if err != nil {
			return nil, err
		}
		net, err := callRecord(ctx, c, "network.get_record", vif["network"])
		if err != nil {
			return nil, err
		}
		out = append(out, vifTemplate{Device: vif["device"], MAC: vif["MAC"], MTU: vif["MTU"],
			Network: net["name_label"], NetworkUUID: net["uuid"]})
	}
	return out, nil
}

// callRecord makes a get_record call the client has no typed form of and
// returns the record's scalar fields as strings.
func callRecord(ctx context.Context, c *xenapi.Client, method, ref string) (map[string]string, error) {
	v, err := c.Call(ctx, method, ref)
	if err != nil {
		return nil, fmt.Errorf("xenserver: %s %s: %w", method, ref, err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("xenserver: %s %s: a %T, not a record", method, ref, v)
	}
	out := make(map[string]string, len(m))
	for k, f := range m {
		if s, ok := f.(string); ok {
			out[k] = s
		}
	}
	return out, nil
}

// networksFor finds the destination network of each VIF, so a missing
// one is refused before the VM is made.
func networksFor(ctx context.Context, t *target, vifs []vifTemplate) ([]string, error) {
	out := make([]string, len(vifs))
	for i, v := range vifs {
		n, err := findNetwork(ctx, t, v)
		if err != nil {
			return nil, err
		}
		out[i] = n
	}
	return out, nil
}

// plugVIFs creates the VIFs the VM lacks, vifs[i] on networks[i].
func plugVIFs(ctx context.Context, t *target, vm xenapi.VMRef, vifs []vifTemplate, networks []string) error {
	if len(vifs) == 0 {
		return nil
	}
	c := t.Client
	have := map[string]bool{}
	refs, err := c.Call(ctx, "VM.get_VIFs", string(vm))
	if err != nil {
		return withHost(t, fmt.Errorf("VIFs of VM %s: %w", vm, err))
	}
	list, _ := refs.([]any)
	for _, r := range list {
		ref, _ := r.(string)
		vif, err := callRecord(ctx, c, "VIF.get_record", ref)
		if err != nil {
			return withHost(t, err)
		}
		have[vif["device"]] = true
	}
	for i, v := range vifs {
		if have[v.Device] {
			continue
		}
		mtu := v.MTU
		if _, err := strconv.Atoi(mtu); err != nil {
			mtu = "1500"
		}
		_, err := c.Call(ctx, "VIF.create", map[string]any{"device": v.Device, "network": networks[i], "VM": string(vm),
			"MAC": v.MAC, "MTU": mtu, "other_config": map[string]string{}, "qos_algorithm_type": "",
			"qos_algorithm_params": map[string]string{}})
		if err != nil {
			return withHost(t, fmt.Errorf("create VIF %s of VM %s: %w", v.Device, vm, err))
		}
	}
	return nil
}

// findNetwork returns the destination's network for a VIF: the one with
// the same uuid, else the only one with the same name_label.
func findNetwork(ctx context.Context, t *target, v vifTemplate) (string, error) {
	if v.NetworkUUID != "" {
		ref, err := t.Client.Call(ctx, "network.get_by_uuid", v.NetworkUUID)
		if err == nil {
			s, _ := ref.(string)
			return s, nil
		}
		if !xenapi.IsCode(err, xenapi.CodeUUIDInvalid) {
			return "", withHost(t, fmt.Errorf("network %s: %w", v.NetworkUUID, err))
		}
	}
	refs, err := t.Client.Call(ctx, "network.get_by_name_label", v.Network)
	if err != nil {
		return "", withHost(t, fmt.Errorf("network %q: %w", v.Network, err))
	}
	list, _ := refs.([]any)
	if len(list) != 1 {
		return "", &NotInPoolError{Kind: "network", Name: v.Network, ComputeHost: t.Name, Pool: t.Pool, Matches: len(list)}
	}
	s, _ := list[0].(string)
	return s, nil
}
