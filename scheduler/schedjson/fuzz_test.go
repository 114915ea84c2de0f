package schedjson

import (
	"errors"
	"testing"

	"github.com/xenflow/xenflow/scheduler"
)

const seedDoc = `{"config":{"enabled_filters":["ComputeFilter","AvailabilityZoneFilter","RamFilter","CoreFilter","DiskFilter","ImagePropertiesFilter","SameHostFilter","DifferentHostFilter","ServerGroupAffinityFilter","ServerGroupAntiAffinityFilter","IoOpsFilter","NumInstancesFilter","RetryFilter","ComputeCapabilitiesFilter"],"host_subset_size":2,"seed":3},
"hosts":[{"host":"a","cell":"c1","availability_zone":"az1","total_usable_ram_mb":4096,"free_ram_mb":1024,"total_usable_disk_gb":100,"free_disk_mb":50000,"vcpus_total":8,"cpu_arch":"x86_64","hypervisor_type":"xen","vm_mode":"hvm","hypervisor_version":8002000,"instances":["i1"],"aggregates":[{"name":"g","metadata":{"ram_weight_multiplier":"2"}}]},
{"host":"b","cell":"c1","total_usable_ram_mb":4096,"free_ram_mb":3072,"total_usable_disk_gb":100,"free_disk_mb":10000,"vcpus_total":8}],
"request":{"flavor":{"memory_mb":512,"vcpus":1,"root_gb":10,"extra_specs":{"capabilities:hypervisor_type":"s== xen","capabilities:cpu_info:arch":"<or> x86_64 <or> i686","free_ram_mb":">= 512","hw:cpu_policy":"dedicated"}},"num_instances":2,"availability_zone":"az1","image_properties":{"hw_architecture":"amd64","img_hv_requested_version":">=8.0"},"scheduler_hints":{"different_host":"i9"},"instance_group":{"policy":"anti-affinity","members":["i1"]},"tried_hosts":[["b","b"]]}}`

// FuzzParse: any input document is parsed and scheduled without a panic;
// failures are bad input, and no valid host is reported in the output.
func FuzzParse(f *testing.F) {
	f.Add([]byte(seedDoc))
	f.Add([]byte(`{"hosts":[]}`))
	f.Add([]byte(`{"hosts":[{"host":"a","total_usable_ram_mb":-1,"free_ram_mb":1,"total_usable_disk_gb":1,"free_disk_mb":1,"vcpus_total":1}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		in, err := Parse(data)
		if err != nil {
			if !errors.Is(err, scheduler.ErrBadInput) {
				t.Fatalf("Parse error is not bad input: %v", err)
			}
			return
		}
		if len(in.Hosts) > 200 || in.Request.NumInstances > 50 || len(in.Request.InstanceUUIDs) > 50 {
			return // keep each run short
		}
		out, err := Run(in)
		if err != nil {
			if !errors.Is(err, scheduler.ErrBadInput) {
				t.Fatalf("Run error is not bad input: %v", err)
			}
			return
		}
		if out.Error == "" && len(out.Selected) == 0 {
			t.Fatal("no error and no selection")
		}
	})
}

func TestParseDefaults(t *testing.T) {
	in, err := Parse([]byte(`{"hosts":[{"host":"a","total_usable_ram_mb":1,"free_ram_mb":1,"total_usable_disk_gb":1,"free_disk_mb":1,"vcpus_total":1}],"request":{"flavor":{"memory_mb":1}}}`))
	if err != nil {
		t.Fatal(err)
	}
	d := scheduler.DefaultConfig()
	if in.Config.HostSubsetSize != 1 || in.Config.MaxAttempts != 3 || in.Config.IoOpsWeightMultiplier != -1 ||
		in.Config.BuildFailureWeightMultiplier != 1e6 || len(in.Config.EnabledFilters) != len(d.EnabledFilters) {
		t.Fatalf("defaults: %+v", in.Config)
	}
	h := in.Hosts[0]
	if h.Disabled || h.Down || h.CPUAllocationRatio != 0 {
		t.Fatalf("host defaults: %+v", h)
	}
	out, err := Run(in)
	if err != nil || len(out.Selected) != 1 || out.Selected[0].Host != "a" || out.Selected[0].Node != "a" {
		t.Fatalf("run: %+v %v", out, err)
	}
}

// TestParseRefuses: documents that cannot be scheduled are bad input
// naming the field, never a selection.
func TestParseRefuses(t *testing.T) {
	const host = `{"host":"a","total_usable_ram_mb":1024,"free_ram_mb":1024,"total_usable_disk_gb":10,"free_disk_mb":10240,"vcpus_total":1}`
	tests := []struct {
		name, doc, field string
	}{
		{"no request", `{"hosts":[` + host + `]}`, "request"},
		{"null request", `{"hosts":[` + host + `],"request":null}`, "request"},
		{"no hosts", `{"hosts":[],"request":{"flavor":{"memory_mb":1}}}`, "hosts"},
		{"unknown key", `{"hosts":[` + host + `],"request":{"flavor":{"memory_mb":1,"extra_spec":{}}}}`, "document"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, err := Parse([]byte(tt.doc))
			var bad *scheduler.BadInputError
			if !errors.As(err, &bad) || bad.Field != tt.field {
				t.Fatalf("Parse = %+v, %v; want *BadInputError on %q", in, err, tt.field)
			}
		})
	}
}

// TestRunRefusesInfiniteWeights: per-aggregate multipliers whose weights
// overflow give an error that is bad input, not an output that JSON
// cannot encode.
func TestRunRefusesInfiniteWeights(t *testing.T) {
	doc := `{"hosts":[
 {"host":"a","total_usable_ram_mb":8192,"free_ram_mb":8192,"total_usable_disk_gb":100,"free_disk_mb":51200,"vcpus_total":8,
  "aggregates":[{"name":"x","metadata":{"ram_weight_multiplier":"1e308","disk_weight_multiplier":"1e308"}}]},
 {"host":"b","total_usable_ram_mb":8192,"free_ram_mb":1024,"total_usable_disk_gb":100,"free_disk_mb":1024,"vcpus_total":8}],
 "request":{"flavor":{"memory_mb":1}}}`
	in, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	out, err := Run(in)
	if !errors.Is(err, scheduler.ErrBadInput) || !errors.Is(err, scheduler.ErrNonFiniteWeight) {
		t.Fatalf("Run = %+v, %v; want a non-finite weight error that is bad input", out, err)
	}
}
