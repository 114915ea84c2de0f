package xenserver

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/xenapi"
)

// exportedOrig is the metadata xapi exports for a suspended -orig VM with
// a root disk, a data disk, a CD holding an ISO and one VIF.
func exportedOrig() *xenapi.Metadata {
	obj := func(class, id string, snap map[string]any) *xenapi.MetadataObject {
		return &xenapi.MetadataObject{Class: class, ID: id, Snapshot: snap}
	}
	null := string(xenapi.NullRef)
	return &xenapi.Metadata{Objects: []*xenapi.MetadataObject{
		obj("VM", "Ref:0", map[string]any{"uuid": "vm-src", "name_label": "instance-1-orig", "is_a_snapshot": false,
			"power_state": "Suspended", "suspend_VDI": "Ref:7", "affinity": "Ref:9", "resident_on": null,
			"VBDs": []any{"Ref:1", "Ref:3", "Ref:5"}, "VIFs": []any{"Ref:8"},
			"other_config": map[string]any{KeyOrigOf: "inst-1", KeyMigration: "mig-1", KeyDiskInfo: "{}",
				KeyPowerState: "Running", "keep": "me"}}),
		obj("VBD", "Ref:1", map[string]any{"VM": "Ref:0", "VDI": "Ref:2", "userdevice": "0", "type": "Disk", "empty": false}),
		obj("VDI", "Ref:2", map[string]any{"uuid": "root-src", "SR": "Ref:6"}),
		obj("VBD", "Ref:3", map[string]any{"VM": "Ref:0", "VDI": "Ref:4", "userdevice": "1", "type": "Disk", "empty": false}),
		obj("VDI", "Ref:4", map[string]any{"uuid": "data-src", "SR": "Ref:6"}),
		obj("VBD", "Ref:5", map[string]any{"VM": "Ref:0", "VDI": "Ref:10", "userdevice": "3", "type": "CD", "empty": false}),
		obj("SR", "Ref:6", map[string]any{"uuid": "sr-src"}),
		obj("VDI", "Ref:7", map[string]any{"uuid": "suspend-src", "SR": "Ref:6"}),
		obj("VIF", "Ref:8", map[string]any{"VM": "Ref:0", "network": "Ref:11", "MAC": "aa:bb:cc:dd:ee:ff"}),
		obj("host", "Ref:9", map[string]any{"uuid": "host-src"}),
		obj("VDI", "Ref:10", map[string]any{"uuid": "iso", "SR": "Ref:12"}),
		obj("network", "Ref:11", map[string]any{"name_label": "Pool-wide network"}),
		obj("SR", "Ref:12", map[string]any{"uuid": "iso-sr", "content_type": "iso"}),
	}}
}

func suspendFinishReq() compute.FinishMigrationRequest {
	return compute.FinishMigrationRequest{Instance: &compute.Instance{UUID: "inst-1"}, Migration: &compute.Migration{UUID: "mig-1"},
		DiskInfo: compute.DiskInfo{SuspendVDI: "suspend-copy"}}
}

func TestSuspendedMetadata(t *testing.T) {
	md := exportedOrig()
	disks := []destDisk{{Disk: compute.Disk{Userdevice: "0", VDI: "root-copy"}}, {Disk: compute.Disk{Userdevice: "1", VDI: "data-copy"}}}
	vdiMap, err := suspendedMetadata(md, suspendFinishReq(), disks)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"root-src": "root-copy", "data-src": "data-copy", "suspend-src": "suspend-copy"}
	if d := cmp.Diff(want, vdiMap); d != "" {
		t.Errorf("VDI map (-want +got):\n%s", d)
	}
	vm := md.Object("Ref:0")
	wantOC := map[string]any{KeyNovaUUID: "inst-1", KeyMigration: "mig-1", KeyPowerState: "Running", "keep": "me"}
	if d := cmp.Diff(wantOC, vm.Snapshot["other_config"]); d != "" {
		t.Errorf("other_config (-want +got):\n%s", d)
	}
	if vm.Str("name_label") != "instance-1" || vm.Str("affinity") != string(xenapi.NullRef) || len(vm.Refs("VIFs")) != 0 {
		t.Errorf("VM record %v", vm.Snapshot)
	}
	cd := md.Object("Ref:5")
	if cd.Str("VDI") != string(xenapi.NullRef) || cd.Snapshot["empty"] != true {
		t.Errorf("the CD is not emptied: %v", cd.Snapshot)
	}
	var classes []string
	for _, o := range md.Objects {
		classes = append(classes, o.Class+" "+o.ID)
	}
	wantObjs := []string{"VM Ref:0", "VBD Ref:1", "VDI Ref:2", "VBD Ref:3", "VDI Ref:4", "VBD Ref:5", "SR Ref:6", "VDI Ref:7",
		"host Ref:9", "SR Ref:12"}
	if d := cmp.Diff(wantObjs, classes); d != "" {
		t.Errorf("objects (-want +got):\n%s", d)
	}
}

func TestSuspendedMetadataRefused(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(md *xenapi.Metadata)
		disks []destDisk
		field string
	}{
		{"a disk without a copy", func(*xenapi.Metadata) {}, []destDisk{{Disk: compute.Disk{Userdevice: "0", VDI: "root-copy"}}}, "VBD 1"},
		{"no suspend image", func(md *xenapi.Metadata) { md.Object("Ref:0").Snapshot["suspend_VDI"] = string(xenapi.NullRef) },
			nil, "VM.suspend_VDI"},
		{"two VMs", func(md *xenapi.Metadata) {
			md.Objects = append(md.Objects, &xenapi.MetadataObject{Class: "VM", ID: "Ref:99", Snapshot: map[string]any{}})
		}, nil, "objects"},
		{"no VM", func(md *xenapi.Metadata) { md.Remove("Ref:0") }, nil, "objects"},
	}
	all := []destDisk{{Disk: compute.Disk{Userdevice: "0", VDI: "root-copy"}}, {Disk: compute.Disk{Userdevice: "1", VDI: "data-copy"}}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			md := exportedOrig()
			tc.edit(md)
			disks := tc.disks
			if disks == nil {
				disks = all
			}
			_, err := suspendedMetadata(md, suspendFinishReq(), disks)
			var me *xenapi.MetadataError
			if !errors.As(err, &me) || me.Field != tc.field || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("got %v, want a MetadataError on %s", err, tc.field)
			}
		})
	}
}
