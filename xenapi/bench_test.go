package xenapi

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	kolo "github.com/kolo/xmlrpc"

	"github.com/xenflow/xenflow/internal/cputime"
	"github.com/xenflow/xenflow/xenapi/internal/xmlrpc"
)

// fullVMRecordValue is a VM record with the size and shape of a XenServer 8
// record (about 90 fields).
func fullVMRecordValue(i int) map[string]any {
	r := vmRecordValue(fmt.Sprintf("instance-%08d", i))
	r["uuid"] = fmt.Sprintf("%08x-1111-4222-8333-%012x", i, i)
	r["platform"] = map[string]any{"timeoffset": "0", "device-model": "qemu-upstream-compat", "videoram": "8", "hpet": "true", "secureboot": "false", "vga": "std", "apic": "true", "viridian": "true", "nx": "true", "acpi": "1", "pae": "true", "cores-per-socket": "2"}
	r["bios_strings"] = map[string]any{"bios-vendor": "Xen", "bios-version": "", "system-manufacturer": "Xen", "system-product-name": "HVM domU", "system-version": "", "system-serial-number": "", "hp-rombios": "", "oem-1": "Xen", "oem-2": "MS_VM_CERT/SHA1/bdbeb6e0a816d43fa6d3fe8aaef04c2bad9d3e3d"}
	r["last_boot_CPU_flags"] = map[string]any{"vendor": "AuthenticAMD", "features": "1fcbfbff-f6f83203-2fd3fbff-040007f7-0000000f-219c07a9-00400004-00000000-00001000-9d000000"}
	r["xenstore_data"] = map[string]any{"vm-data": "", "vm-data/mmio-hole-size": "268435456"}
	r["HVM_boot_params"] = map[string]any{"order": "cdn"}
	r["VIFs"] = []any{fmt.Sprintf("OpaqueRef:%08x-vif1", i), fmt.Sprintf("OpaqueRef:%08x-vif2", i)}
	r["consoles"] = []any{fmt.Sprintf("OpaqueRef:%08x-console", i)}
	r["recommendations"] = `<restrictions><restriction field="memory-static-max" max="1649267441664"/><restriction field="vcpus-max" max="32"/></restrictions>`
	for _, k := range []string{"PV_bootloader", "PV_kernel", "PV_ramdisk", "PV_bootloader_args", "PV_legacy_args", "PCI_bus", "last_booted_record",
		"transportable_snapshot_id", "snapshot_metadata", "ha_restart_priority", "reference_label", "domarch"} {
		r[k] = ""
	}
	for _, k := range []string{"suspend_VDI", "scheduled_to_be_resident_on", "affinity", "snapshot_of", "parent", "protection_policy", "snapshot_schedule", "appliance", "suspend_SR"} {
		r[k] = "OpaqueRef:NULL"
	}
	for _, k := range []string{"current_operations", "blobs", "snapshot_info", "NVRAM"} {
		r[k] = map[string]any{}
	}
	for _, k := range []string{"VUSBs", "crash_dumps", "VTPMs", "snapshots", "children", "VGPUs", "attached_PCIs", "pending_guidances"} {
		r[k] = []any{}
	}
	for _, k := range []string{"is_default_template", "ha_always_run", "is_a_snapshot", "is_snapshot_from_vmpp", "is_vmss_snapshot", "has_vendor_device", "requires_reboot"} {
		r[k] = false
	}
	for _, k := range []string{"memory_overhead", "start_delay", "shutdown_delay", "order", "version", "hardware_platform_version"} {
		r[k] = "0"
	}
	r["metrics"] = fmt.Sprintf("OpaqueRef:%08x-metrics", i)
	r["guest_metrics"] = fmt.Sprintf("OpaqueRef:%08x-guest-metrics", i)
	r["generation_id"] = "0:0"
	r["actions_after_softreboot"] = "soft_reboot"
	return r
}

func allVMRecordsBody(tb testing.TB, n int) []byte {
	all := make(map[string]any, n)
	for i := 0; i < n; i++ {
		all[fmt.Sprintf("OpaqueRef:%08x-0000-4000-8000-%012x", i, i)] = fullVMRecordValue(i)
	}
	b, err := xmlrpc.AppendResponse(nil, xmlrpc.Success(all))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// BenchmarkGetAllRecords10000Typed decodes a VM.get_all_records response of
// 10,000 VMs all the way to map[VMRef]VMRecord; ns/op is the time for the
// whole response.
func BenchmarkGetAllRecords10000Typed(b *testing.B) {
	body := allVMRecordsBody(b, 10000)
	d := &xmlrpc.Decoder{}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cputime.Process()
	for i := 0; i < b.N; i++ {
		v, err := d.DecodeResponseBytes(body)
		if err != nil {
			b.Fatal(err)
		}
		val, _, err := xmlrpc.SplitResult(v)
		if err != nil {
			b.Fatal(err)
		}
		recs, err := decodeRecordMap[VMRef, VMRecord](val, nil, "VM.get_all_records")
		if err != nil || len(recs) != 10000 {
			b.Fatal(len(recs), err)
		}
	}
	cputime.Report(b, cpu0, int64(len(body)))
}

// BenchmarkDecodeVMGetRecordTyped is the client's share of one
// VM.get_record call: decoding the response body to a VMRecord.
func BenchmarkDecodeVMGetRecordTyped(b *testing.B) {
	body, err := xmlrpc.AppendResponse(nil, xmlrpc.Success(fullVMRecordValue(1)))
	if err != nil {
		b.Fatal(err)
	}
	d := &xmlrpc.Decoder{}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cputime.Process()
	for i := 0; i < b.N; i++ {
		v, err := d.DecodeResponseBytes(body)
		if err != nil {
			b.Fatal(err)
		}
		val, _, _ := xmlrpc.SplitResult(v)
		if _, err := decodeRecord[VMRecord](val, nil, "VM.get_record"); err != nil {
			b.Fatal(err)
		}
	}
	cputime.Report(b, cpu0, int64(len(body)))
}

// benchServer is an httptest server answering VM.get_record with a full
// record, and "VM.clean_shutdown" after holding the request for delay.
func benchServer(b *testing.B, delay time.Duration) *fakeXapi {
	f := newFakeXapi(b)
	f.noLog = true
	rec := fullVMRecordValue(1)
	f.handle("VM.get_record", func([]any) (any, []string) { return rec, nil })
	f.handle("VM.clean_shutdown", func([]any) (any, []string) {
		time.Sleep(delay)
		return "", nil
	})
	return f
}

// BenchmarkVMGetRecordHTTP measures VM.get_record calls per second over
// HTTP on loopback from 8 goroutines, decoded to VMRecord.
func BenchmarkVMGetRecordHTTP(b *testing.B) {
	f := benchServer(b, 0)
	c := f.login(b)
	defer c.Close(bg())
	parallelCalls(b, 8, func() error {
		_, err := c.VM.GetRecord(bg(), "OpaqueRef:vm")
		return err
	})
}

// parallelCalls runs b.N calls of fn spread over n goroutines and reports
// calls/s.
func parallelCalls(b *testing.B, n int, fn func() error) {
	b.ReportAllocs()
	b.ResetTimer()
	start, cpu0 := time.Now(), cputime.Process()
	var wg sync.WaitGroup
	var next int64
	var mu sync.Mutex
	for g := 0; g < n; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				if next >= int64(b.N) {
					mu.Unlock()
					return
				}
				next++
				mu.Unlock()
				if err := fn(); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "calls/s")
	b.ReportMetric(float64((cputime.Process()-cpu0).Microseconds())/float64(b.N), "cpu-µs/call")
}

// BenchmarkConcurrentBlockingCalls runs batches of 8 concurrent calls that
// the server holds for 100 ms each and reports the wall time per batch:
// about 100 ms for this client; the kolo/xmlrpc client, measured in the
// same run as the baseline, takes about 800 ms because it runs one call
// at a time.
func BenchmarkConcurrentBlockingCalls(b *testing.B) {
	const delay = 100 * time.Millisecond
	b.Run("client=xenapi", func(b *testing.B) {
		f := benchServer(b, delay)
		c := f.login(b)
		defer c.Close(bg())
		batches(b, func() error { return c.VM.CleanShutdown(bg(), "OpaqueRef:vm") })
	})
	b.Run("client=kolo", func(b *testing.B) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(delay)
			w.Header().Set("Content-Type", "text/xml")
			_ = xmlrpc.EncodeResponse(w, "ok")
		}))
		defer srv.Close()
		kc, err := kolo.NewClient(srv.URL, nil)
		if err != nil {
			b.Fatal(err)
		}
		defer kc.Close()
		batches(b, func() error {
			var s string
			return kc.Call("VM.clean_shutdown", nil, &s)
		})
	})
}

func batches(b *testing.B, call func() error) {
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		var wg sync.WaitGroup
		for j := 0; j < 8; j++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := call(); err != nil {
					b.Error(err)
				}
			}()
		}
		wg.Wait()
	}
	b.ReportMetric(float64(time.Since(start).Milliseconds())/float64(b.N), "ms/batch")
}
