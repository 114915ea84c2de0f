package scheduler

import (
	"math"
	"testing"
)

// TestExtraSpecMatch follows nova/scheduler/filters/extra_specs_ops.py's
// match on the cases of Nova's own tests and the corners where Nova
// raises (the host then does not pass).
func TestExtraSpecMatch(t *testing.T) {
	tests := []struct {
		value, req string
		want       bool
	}{
		{"1", "1", true},
		{"1", "2", false},
		{"123", "= 123", true},
		{"124", "= 123", true}, // "=" means at least
		{"122", "= 123", false},
		{"12311321", "<in> 11", true},
		{"12311321", "<in> 12311321 Something", true},
		{"12310321", "<in> 11", false},
		{"12310321", "<all-in> 123 0", true},
		{"12310321", "<all-in> 123 9", false},
		{"12", "<or> 11 <or> 12", true},
		{"13", "<or> 11 <or> 12", false},
		{"12", "<or> 11 <or> 12 <or>", true},
		{"13", "<or> 11 <or> 12 <or>", false},
		{"12", "<or> 11 junk 12", true}, // the keyword between operands is not checked
		{"12", "<or>", false},           // Nova raises IndexError
		{"123", "== 123", true},
		{"123.0", "== 123", true},
		{"124", "== 123", false},
		{"124", "!= 123", true},
		{"1000", ">= 2", true},
		{"1", ">= 2", false},
		{"1", "<= 2", true},
		{"1000", "<= 2", false},
		{"abc", ">= 2", false}, // Nova raises ValueError
		{"1", ">= x", false},
		{"nan", "== nan", false},
		{"inf", ">= 1e308", true},
		{"1_000", "== 1000", true},
		{"123", "s== 123", true},
		{"1234", "s== 123", false},
		{"1234", "s!= 123", true},
		{"12", "s< 2", true}, // strings: "12" < "2"
		{"2", "s<= 2", true},
		{"3", "s> 2", true},
		{"10", "s>= 2", false},
		{"x86_64", "", false},
		{"", "", true},
		{"xen", "xen", true},
		{"xen", " xen", false}, // no operator: the whole requirement must equal
		{"xen", "s==", false},  // an operator without an operand
		{"a", "s== a b", true}, // only the first operand counts
		{"xen", "\u00a0s==\u2003xen", true},
		{"xen", "\x1cs==\x1fxen", true},
	}
	for _, tt := range tests {
		if got := extraSpecMatch(tt.value, tt.req); got != tt.want {
			t.Errorf("match(%q, %q) = %v, want %v", tt.value, tt.req, got, tt.want)
		}
	}
}

func TestCapSpecsAndValues(t *testing.T) {
	h := &HostState{Host: "h", TotalUsableRAMMB: 4096, FreeRAMMB: -10, HypervisorVersion: 8002000,
		CPUArch: "x86_64", CPUAllocationRatio: 0.5}
	specs := capSpecs(map[string]string{
		"capabilities:hypervisor_version": ">= 8002000",
		"free_ram_mb":                     "== -10",
		"hw:cpu_policy":                   "dedicated", // another scope: ignored
		"trust":                           "yes",       // not a host attribute: ignored
	})
	if len(specs) != 2 || !capabilitiesPass(h, specs) {
		t.Fatalf("specs %+v pass=%v", specs, capabilitiesPass(h, specs))
	}
	tests := []struct {
		path []string
		want string
		ok   bool
	}{
		{[]string{"host"}, "h", true},
		{[]string{"nodename"}, "h", true},
		{[]string{"free_ram_mb"}, "-10", true},
		{[]string{"hypervisor_type"}, "", false}, // None in Nova
		{[]string{"hypervisor_version"}, "8002000", true},
		{[]string{"cpu_info"}, `{"arch": "x86_64"}`, true},
		{[]string{"cpu_info", "arch"}, "x86_64", true},
		{[]string{"cpu_info", "model"}, "", false},
		{[]string{"cpu_allocation_ratio"}, "0.5", true},
		{[]string{"ram_allocation_ratio"}, "1.0", true},
		{[]string{"disk_allocation_ratio"}, "1.0", true},
		{[]string{"free_ram_mb", "x"}, "", false},
		{[]string{"stats"}, "", false},
		{[]string{""}, "", false},
		{nil, "", false},
	}
	for _, tt := range tests {
		v, ok := capValue(h, tt.path)
		if got := v.str(); got != tt.want || ok != tt.ok {
			t.Errorf("capValue(%q) = %q, %v; want %q, %v", tt.path, v.str(), ok, tt.want, tt.ok)
		}
	}
}

func TestPythonForms(t *testing.T) {
	floats := []struct {
		v    float64
		want string
	}{
		{16, "16.0"}, {1.5, "1.5"}, {0.1, "0.1"}, {1e16, "1e+16"}, {1e15, "1000000000000000.0"},
		{0.0001, "0.0001"}, {0.00001, "1e-05"}, {1.25e-7, "1.25e-07"}, {-2.5, "-2.5"},
		{math.Inf(1), "inf"}, {math.Inf(-1), "-inf"}, {math.NaN(), "nan"}, {123456789.125, "123456789.125"},
	}
	for _, tt := range floats {
		if got := pyFloatRepr(tt.v); got != tt.want {
			t.Errorf("pyFloatRepr(%v) = %q, want %q", tt.v, got, tt.want)
		}
	}
	strs := []struct{ in, want string }{
		{"x86_64", `"x86_64"`}, {`a"b\c`, `"a\"b\\c"`}, {"\n\t\x01\x7f", `"\n\t\u0001\u007f"`},
		{"é", `"\u00e9"`}, {"😀", `"\ud83d\ude00"`},
	}
	for _, tt := range strs {
		if got := pyJSONQuote(tt.in); got != tt.want {
			t.Errorf("pyJSONQuote(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}
