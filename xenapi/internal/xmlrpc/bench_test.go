package xmlrpc

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"testing"

	"github.com/xenflow/xenflow/internal/cputime"
)

// xapiVMRecord returns a VM record shaped like the ones xapi returns from
// VM.get_record: every field a XenServer 8 VM has, strings untyped, ints as
// decimal strings, empty maps and sets, many empty strings.
func xapiVMRecord(i int) Struct {
	ref := func(kind string, n int) string { return fmt.Sprintf("OpaqueRef:%08x-%s-4a1b-9c2d-%012x", i, kind, n) }
	return Struct{
		"uuid": fmt.Sprintf("%08x-1111-4222-8333-%012x", i, i), "allowed_operations": Array{"changing_dynamic_range", "hard_reboot", "hard_shutdown", "pause", "clean_shutdown", "clean_reboot", "snapshot", "checkpoint", "pool_migrate", "suspend"},
		"current_operations": Struct{}, "name_label": fmt.Sprintf("instance-%08d", i), "name_description": "",
		"power_state": "Running", "user_version": "1", "is_a_template": false, "is_default_template": false,
		"suspend_VDI": "OpaqueRef:NULL", "resident_on": ref("host", 0), "scheduled_to_be_resident_on": "OpaqueRef:NULL", "affinity": "OpaqueRef:NULL",
		"memory_overhead": "11534336", "memory_target": "4294967296", "memory_static_max": "4294967296", "memory_dynamic_max": "4294967296",
		"memory_dynamic_min": "4294967296", "memory_static_min": "1073741824", "VCPUs_params": Struct{"weight": "256"}, "VCPUs_max": "4", "VCPUs_at_startup": "4",
		"actions_after_softreboot": "soft_reboot", "actions_after_shutdown": "destroy", "actions_after_reboot": "restart", "actions_after_crash": "restart",
		"consoles": Array{ref("console", 1)}, "VIFs": Array{ref("vif", 1), ref("vif", 2)}, "VBDs": Array{ref("vbd", 1), ref("vbd", 2), ref("vbd", 3)},
		"VUSBs": Array{}, "crash_dumps": Array{}, "VTPMs": Array{}, "PV_bootloader": "", "PV_kernel": "", "PV_ramdisk": "", "PV_args": "",
		"PV_bootloader_args": "", "PV_legacy_args": "", "HVM_boot_policy": "BIOS order", "HVM_boot_params": Struct{"order": "cdn"}, "HVM_shadow_multiplier": 1.0,
		"platform": Struct{"timeoffset": "0", "device-model": "qemu-upstream-compat", "videoram": "8", "hpet": "true", "secureboot": "false", "vga": "std", "apic": "true", "viridian": "true", "nx": "true", "acpi": "1", "pae": "true", "cores-per-socket": "2"},
		"PCI_bus":  "", "other_config": Struct{"nova_uuid": fmt.Sprintf("%08x-aaaa-4bbb-8ccc-%012x", i, i), "base_template_name": "Other install media", "import_task": "OpaqueRef:NULL", "mac_seed": fmt.Sprintf("%08x-5555-4666-8777-888888888888", i), "install-methods": "cdrom,nfs,http,ftp"},
		"domid": fmt.Sprint(i % 1000), "domarch": "x64", "last_boot_CPU_flags": Struct{"vendor": "AuthenticAMD", "features": "1fcbfbff-f6f83203-2fd3fbff-040007f7-0000000f-219c07a9-00400004-00000000-00001000-9d000000-00000000-00000000-00000000-00000000-00000000"},
		"is_control_domain": false, "metrics": ref("metrics", 1), "guest_metrics": ref("guest_metrics", 1), "last_booted_record": "", "recommendations": "<restrictions><restriction field=\"memory-static-max\" max=\"1649267441664\"/><restriction field=\"vcpus-max\" max=\"32\"/></restrictions>",
		"xenstore_data": Struct{"vm-data": "", "vm-data/mmio-hole-size": "268435456"}, "ha_always_run": false, "ha_restart_priority": "", "is_a_snapshot": false, "snapshot_of": "OpaqueRef:NULL", "snapshots": Array{},
		"snapshot_time": mustTime("19700101T00:00:00Z"), "transportable_snapshot_id": "", "blobs": Struct{}, "tags": Array{}, "blocked_operations": Struct{},
		"snapshot_info": Struct{}, "snapshot_metadata": "", "parent": "OpaqueRef:NULL", "children": Array{}, "bios_strings": Struct{"bios-vendor": "Xen", "bios-version": "", "system-manufacturer": "Xen", "system-product-name": "HVM domU", "system-version": "", "system-serial-number": "", "baseboard-manufacturer": "", "hp-rombios": "", "oem-1": "Xen", "oem-2": "MS_VM_CERT/SHA1/bdbeb6e0a816d43fa6d3fe8aaef04c2bad9d3e3d"},
		"protection_policy": "OpaqueRef:NULL", "is_snapshot_from_vmpp": false, "snapshot_schedule": "OpaqueRef:NULL", "is_vmss_snapshot": false, "appliance": "OpaqueRef:NULL",
		"start_delay": "0", "shutdown_delay": "0", "order": "0", "VGPUs": Array{}, "attached_PCIs": Array{}, "suspend_SR": "OpaqueRef:NULL", "version": "0", "generation_id": "0:0",
		"hardware_platform_version": "0", "has_vendor_device": false, "requires_reboot": false, "reference_label": "", "domain_type": "hvm", "NVRAM": Struct{}, "pending_guidances": Array{},
	}
}

func mustTime(s string) Value {
	t, err := ParseDateTime(s)
	if err != nil {
		panic(err)
	}
	return t
}

// allRecordsResponse encodes a get_all_records response of n VMs.
func allRecordsResponse(tb testing.TB, n int) []byte {
	all := make(Struct, n)
	for i := 0; i < n; i++ {
		all[fmt.Sprintf("OpaqueRef:%08x-0000-4000-8000-%012x", i, i)] = xapiVMRecord(i)
	}
	b, err := AppendResponse(nil, Success(all))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func TestAllRecordsResponseDecodes(t *testing.T) {
	body := allRecordsResponse(t, 3)
	v, err := (&Decoder{}).DecodeResponseBytes(body)
	if err != nil {
		t.Fatal(err)
	}
	val, _, err := SplitResult(v)
	if err != nil {
		t.Fatal(err)
	}
	recs := val.(Struct)
	if len(recs) != 3 {
		t.Fatalf("%d records", len(recs))
	}
	for _, r := range recs {
		if n := len(r.(Struct)); n != len(xapiVMRecord(0)) {
			t.Fatalf("record has %d fields, want %d", n, len(xapiVMRecord(0)))
		}
	}
}

// BenchmarkDecodeVMRecords measures decoding throughput (MB/s) on a
// get_all_records response of 100 VMs.
func BenchmarkDecodeVMRecords(b *testing.B) {
	body := allRecordsResponse(b, 100)
	d := &Decoder{}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cputime.Process()
	for i := 0; i < b.N; i++ {
		if _, err := d.DecodeResponseBytes(body); err != nil {
			b.Fatal(err)
		}
	}
	cputime.Report(b, cpu0, int64(len(body)))
}

// BenchmarkDecodeVMRecordsStdlibTokens is the baseline for
// BenchmarkDecodeVMRecords: only tokenising the same body with
// encoding/xml, building no values.
func BenchmarkDecodeVMRecordsStdlibTokens(b *testing.B) {
	body := allRecordsResponse(b, 100)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cputime.Process()
	for i := 0; i < b.N; i++ {
		d := xml.NewDecoder(bytes.NewReader(body))
		for {
			_, err := d.RawToken()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	cputime.Report(b, cpu0, int64(len(body)))
}

// BenchmarkDecodeAllRecords10000 decodes get_all_records of 10,000 VMs;
// ns/op is the time for the whole response.
func BenchmarkDecodeAllRecords10000(b *testing.B) {
	body := allRecordsResponse(b, 10000)
	d := &Decoder{}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cputime.Process()
	for i := 0; i < b.N; i++ {
		if _, err := d.DecodeResponseBytes(body); err != nil {
			b.Fatal(err)
		}
	}
	cputime.Report(b, cpu0, int64(len(body)))
}

// BenchmarkEncodeVMRecord measures encoding one VM record response.
func BenchmarkEncodeVMRecord(b *testing.B) {
	v := Success(xapiVMRecord(1))
	buf, _ := AppendResponse(nil, v)
	size := int64(len(buf))
	b.SetBytes(size)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cputime.Process()
	for i := 0; i < b.N; i++ {
		var err error
		if buf, err = AppendResponse(buf[:0], v); err != nil {
			b.Fatal(err)
		}
	}
	cputime.Report(b, cpu0, size)
}
