package scheduler

import (
	"errors"
	"math"
	"testing"
)

// The legacy filters Nova deleted (RamFilter, CoreFilter, DiskFilter in
// Train, RetryFilter in Victoria) are checked against their rules value
// by value here; TestNovaOracle runs them inside Nova's own pipeline.

func TestRamFilter(t *testing.T) {
	tests := []struct {
		name        string
		total, free int64
		ratio       float64
		req         int64
		want        bool
	}{
		{"fits", 4096, 2048, 1.0, 2048, true},
		{"one MB short", 4096, 2047, 1.0, 2048, false},
		{"overcommit 1.5", 4096, 0, 1.5, 2048, true}, // limit 6144, used 4096, usable 2048
		{"overcommit 1.5 short", 4096, 0, 1.5, 2049, false},
		{"never more than total", 2048, 2048, 16, 2049, false}, // no overcommit against itself
		{"negative free", 4096, -1024, 2.0, 3072, true},        // limit 8192, used 5120
		{"zero request", 0, 0, 1.0, 0, true},
	}
	f := &builtinFilter{kind: fRam, p: newParams(DefaultConfig())}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &HostState{TotalUsableRAMMB: tt.total, FreeRAMMB: tt.free, RAMAllocationRatio: tt.ratio}
			r := &Request{Flavor: Flavor{MemoryMB: tt.req}}
			if got := f.HostPasses(h, r); got != tt.want {
				t.Fatalf("RamFilter = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestCoreFilter(t *testing.T) {
	tests := []struct {
		name        string
		total, used int64
		ratio       float64
		req         int64
		want        bool
	}{
		{"fits", 8, 4, 1.0, 4, true},
		{"full", 8, 5, 1.0, 4, false},
		{"overcommit 16", 8, 120, 16, 8, true}, // limit 128, free 8
		{"overcommit 16 short", 8, 121, 16, 8, false},
		{"more vCPUs than the host has", 8, 0, 16, 9, false},
		{"vcpus_total 0 passes", 0, 50, 16, 64, true}, // "assuming CPU collection broken"
		{"ratio rounds", 3, 1, 0.5, 1, false},         // limit 1.5, free 0.5
	}
	f := &builtinFilter{kind: fCore, p: newParams(DefaultConfig())}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &HostState{VCPUsTotal: tt.total, VCPUsUsed: tt.used, CPUAllocationRatio: tt.ratio}
			if got := f.HostPasses(h, &Request{Flavor: Flavor{VCPUs: tt.req}}); got != tt.want {
				t.Fatalf("CoreFilter = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestDiskFilter(t *testing.T) {
	tests := []struct {
		name       string
		totalGB    int64
		freeMB     int64
		ratio      float64
		root, eph  int64
		swap, want any
	}{
		{"fits", 100, 20 * 1024, 1.0, 10, 10, int64(0), true},
		{"swap counts", 100, 20 * 1024, 1.0, 10, 10, int64(1), false},
		{"overcommit 2", 100, 0, 2.0, 100, 0, int64(0), true}, // limit 204800, used 102400
		{"never more than total", 10, 10 * 1024, 8, 10, 0, int64(1), false},
		{"negative free", 100, -1024, 1.0, 0, 0, int64(0), false},
	}
	f := &builtinFilter{kind: fDisk, p: newParams(DefaultConfig())}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &HostState{TotalUsableDiskGB: tt.totalGB, FreeDiskMB: tt.freeMB, DiskAllocationRatio: tt.ratio}
			r := &Request{Flavor: Flavor{RootGB: tt.root, EphemeralGB: tt.eph, SwapMB: tt.swap.(int64)}}
			if got := f.HostPasses(h, r); got != tt.want.(bool) {
				t.Fatalf("DiskFilter = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRetryFilter(t *testing.T) {
	f := &builtinFilter{kind: fRetry, p: newParams(DefaultConfig())}
	r := &Request{TriedHosts: []HostNode{{"h1", "n1"}}}
	for _, tt := range []struct {
		host, node string
		want       bool
	}{{"h1", "n1", false}, {"h1", "n2", true}, {"H1", "n1", true}, {"h2", "n1", true}} {
		if got := f.HostPasses(&HostState{Host: tt.host, Node: tt.node}, r); got != tt.want {
			t.Errorf("RetryFilter(%s,%s) = %v, want %v", tt.host, tt.node, got, tt.want)
		}
	}
	if !f.HostPasses(&HostState{Host: "h1", Node: "n1"}, &Request{}) {
		t.Error("RetryFilter without tried hosts must pass")
	}
}

func TestPyFloat(t *testing.T) {
	tests := []struct {
		in   string
		want float64
		ok   bool
	}{
		{"1", 1, true}, {" 2.5 ", 2.5, true}, {"-1e3", -1000, true}, {"1_000.5", 1000.5, true},
		{".5", 0.5, true}, {"5.", 5, true}, {"+3", 3, true}, {"inf", math.Inf(1), true},
		{"-Infinity", math.Inf(-1), true}, {"0x10", 0, false}, {"1__0", 0, false}, {"_1", 0, false},
		{"", 0, false}, {"abc", 0, false}, {"1e", 0, false}, {"1.2.3", 0, false},
	}
	for _, tt := range tests {
		got, ok := pyFloat(tt.in)
		if ok != tt.ok || (ok && got != tt.want) {
			t.Errorf("pyFloat(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
	if v, ok := pyFloat("nan"); !ok || !math.IsNaN(v) {
		t.Errorf("pyFloat(nan) = %v, %v", v, ok)
	}
}

func TestVersionPredicate(t *testing.T) {
	tests := []struct {
		pred string
		hv   int64
		want bool
		ok   bool
	}{
		{">=6.0", 6000000, true, true},
		{">=6.0", 5009000, false, true},
		{">=7.1, <8.3", 8002000, true, true},
		{"==8.2.0", 8002000, true, true},
		{"==8.2", 8002000, true, true},
		{"!=8.2.1", 8002001, false, true},
		{"<8.2.1", 8002000, true, true},
		{">1.0a1", 1000, true, true}, // a release is newer than its pre-release
	}
	for _, tt := range tests {
		conds, ok := parseVersionPredicate(tt.pred)
		if !ok {
			t.Fatalf("parse %q failed", tt.pred)
		}
		got, ok := satisfies(conds, tt.hv)
		if got != tt.want || ok != tt.ok {
			t.Errorf("%q on %d = %v, %v; want %v, %v", tt.pred, tt.hv, got, ok, tt.want, tt.ok)
		}
	}
	for _, bad := range []string{"", ">=6", "6.0", ">= 6.0 7.0", ">=6.0,", "~6.0"} {
		if _, ok := parseVersionPredicate(bad); ok {
			t.Errorf("parseVersionPredicate(%q) accepted", bad)
		}
	}
	if _, ok := satisfies([]versionCond{{">=", strictVersion{v: [3]int64{1, 0, 0}}}}, 5); ok {
		t.Error("version 5 (\"5\") is not a StrictVersion")
	}
	if got := versionString(8002001); got != "8.2.1" {
		t.Errorf("versionString = %q", got)
	}
}

func TestCanonicalNames(t *testing.T) {
	for in, want := range map[string]string{"amd64": "x86_64", "I386": "i686", "x86_32": "i686", "X86_64": "x86_64"} {
		if got, ok := canonicalArch(in); !ok || got != want {
			t.Errorf("canonicalArch(%q) = %q, %v", in, got, ok)
		}
	}
	if got, ok := canonicalHVType("XAPI"); !ok || got != "xen" {
		t.Errorf("canonicalHVType(XAPI) = %q, %v", got, ok)
	}
	for in, want := range map[string]string{"pv": "xen", "HV": "hvm", "baremetal": "hvm"} {
		if got, ok := canonicalVMMode(in); !ok || got != want {
			t.Errorf("canonicalVMMode(%q) = %q, %v", in, got, ok)
		}
	}
	if _, ok := canonicalArch("pdp11"); ok {
		t.Error("pdp11 accepted")
	}
}

func TestBadInput(t *testing.T) {
	good := func() HostState {
		return HostState{Host: "h", TotalUsableRAMMB: 1024, FreeRAMMB: 1024,
			TotalUsableDiskGB: 10, FreeDiskMB: 10240, VCPUsTotal: 4}
	}
	hostCases := []struct {
		name  string
		hosts func() []HostState
		field string
	}{
		{"zero hosts", func() []HostState { return nil }, "hosts"},
		{"negative RAM", func() []HostState { h := good(); h.TotalUsableRAMMB = -1; return []HostState{h} }, "hosts[0].total_usable_ram_mb"},
		{"negative disk", func() []HostState { h := good(); h.TotalUsableDiskGB = -1; return []HostState{h} }, "hosts[0].total_usable_disk_gb"},
		{"negative vCPUs", func() []HostState { h := good(); h.VCPUsTotal = -4; return []HostState{h} }, "hosts[0].vcpus_total"},
		{"negative I/O", func() []HostState { h := good(); h.NumIOOps = -1; return []HostState{h} }, "hosts[0].num_io_ops"},
		{"NaN ratio", func() []HostState { h := good(); h.CPUAllocationRatio = math.NaN(); return []HostState{h} }, "hosts[0].cpu_allocation_ratio"},
		{"Inf ratio", func() []HostState { h := good(); h.RAMAllocationRatio = math.Inf(1); return []HostState{h} }, "hosts[0].ram_allocation_ratio"},
		{"missing name", func() []HostState { h := good(); h.Host = ""; return []HostState{h} }, "hosts[0].host"},
		{"duplicate host", func() []HostState { return []HostState{good(), good()} }, "hosts[1].host"},
		{"NaN aggregate multiplier", func() []HostState {
			h := good()
			h.Aggregates = []Aggregate{{Name: "a", Metadata: map[string]string{"ram_weight_multiplier": "nan"}}}
			return []HostState{h}
		}, "hosts[0].aggregates[0].metadata.ram_weight_multiplier"},
		{"infinite aggregate multiplier", func() []HostState {
			h := good()
			h.Aggregates = []Aggregate{{Metadata: map[string]string{"io_ops_weight_multiplier": "-inf"}}}
			return []HostState{h}
		}, "hosts[0].aggregates[0].metadata.io_ops_weight_multiplier"},
		{"empty instance", func() []HostState { h := good(); h.Instances = []string{""}; return []HostState{h} }, "hosts[0].instances[0]"},
	}
	for _, tt := range hostCases {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewHostSet(tt.hosts())
			checkField(t, err, tt.field)
		})
	}
	cfgCases := []struct {
		name  string
		edit  func(*Config)
		field string
	}{
		{"NaN multiplier", func(c *Config) { c.RAMWeightMultiplier = math.NaN() }, "config.ram_weight_multiplier"},
		{"Inf multiplier", func(c *Config) { c.BuildFailureWeightMultiplier = math.Inf(-1) }, "config.build_failure_weight_multiplier"},
		{"negative soft affinity", func(c *Config) { c.SoftAffinityWeightMultiplier = -1 }, "config.soft_affinity_weight_multiplier"},
		{"subset 0", func(c *Config) { c.HostSubsetSize = 0 }, "config.host_subset_size"},
		{"max_attempts 0", func(c *Config) { c.MaxAttempts = 0 }, "config.max_attempts"},
		{"unknown filter", func(c *Config) { c.EnabledFilters = []string{"ComputeFilter", "NoSuchFilter"} }, "config.enabled_filters[1]"},
		{"unknown weigher", func(c *Config) { c.Weighers = []string{"MetricsWeigher"} }, "config.weighers[0]"},
		{"bad default arch", func(c *Config) { c.ImagePropertiesDefaultArchitecture = "vax" }, "config.image_properties_default_architecture"},
	}
	for _, tt := range cfgCases {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tt.edit(&cfg)
			_, err := New(cfg)
			checkField(t, err, tt.field)
		})
	}
	hs, err := NewHostSet([]HostState{good()})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	reqCases := []struct {
		name  string
		req   Request
		field string
	}{
		{"unknown policy", Request{InstanceGroup: &InstanceGroup{Policy: "best-effort"}}, "request.instance_group.policy"},
		{"negative memory", Request{Flavor: Flavor{MemoryMB: -1}}, "request.flavor.memory_mb"},
		{"negative instances", Request{NumInstances: -2}, "request.num_instances"},
		{"negative max_server_per_host", Request{InstanceGroup: &InstanceGroup{Policy: PolicyAntiAffinity, MaxServerPerHost: -1}}, "request.instance_group.max_server_per_host"},
		{"bad architecture", Request{ImageProperties: map[string]string{"hw_architecture": "vax"}}, "request.image_properties.hw_architecture"},
		{"bad version predicate", Request{ImageProperties: map[string]string{"img_hv_requested_version": ">=6"}}, "request.image_properties.img_hv_requested_version"},
		{"mismatched uuids", Request{NumInstances: 2, InstanceUUIDs: []string{"a"}}, "request.num_instances"},
	}
	for _, tt := range reqCases {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Select(hs, &tt.req)
			checkField(t, err, tt.field)
		})
	}
	if _, err := s.Select(nil, &Request{}); !errors.Is(err, ErrBadInput) {
		t.Errorf("nil host set: %v", err)
	}
}

func checkField(t *testing.T, err error, field string) {
	t.Helper()
	var bad *BadInputError
	if !errors.As(err, &bad) {
		t.Fatalf("error %v, want *BadInputError for %s", err, field)
	}
	if !errors.Is(err, ErrBadInput) {
		t.Fatalf("errors.Is(%v, ErrBadInput) is false", err)
	}
	if bad.Field != field {
		t.Fatalf("field %q, want %q (%v)", bad.Field, field, err)
	}
}
