package scheduler_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/xenflow/xenflow/internal/oracle"
	"github.com/xenflow/xenflow/scheduler"
	"github.com/xenflow/xenflow/scheduler/schedjson"
)

const python = "/usr/bin/python3"

// requireNova skips (or, under CI=true, fails) when python3-nova is not
// installed.
func requireNova(tb testing.TB) {
	tb.Helper()
	out, err := exec.Command(python, "-c", "import nova.scheduler.filters, nova.scheduler.weights").CombinedOutput()
	if err != nil {
		oracle.Missing(tb, "Nova's scheduler (python3-nova) is not importable with %s: %v %s", python, err, out)
	}
}

func novaScript(tb testing.TB) string {
	p, err := filepath.Abs(filepath.Join("testdata", "nova_scheduler.py"))
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// runNova feeds docs to Nova's code and returns one raw result per doc.
func runNova(tb testing.TB, docs []map[string]any) []json.RawMessage {
	tb.Helper()
	in, err := json.Marshal(map[string]any{"cases": docs})
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(python, novaScript(tb), "--cases")
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		tb.Fatalf("nova driver: %v\n%s", err, stderr.String())
	}
	var res struct {
		Results []json.RawMessage `json:"results"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		tb.Fatalf("nova driver output: %v", err)
	}
	if len(res.Results) != len(docs) {
		tb.Fatalf("nova driver returned %d results for %d cases", len(res.Results), len(docs))
	}
	return res.Results
}

// multiplierNames are Nova's weight multiplier options.
var (
	multiplierNames = []string{
		"ram_weight_multiplier", "disk_weight_multiplier", "cpu_weight_multiplier",
		"io_ops_weight_multiplier", "build_failure_weight_multiplier",
		"cross_cell_move_weight_multiplier", "soft_affinity_weight_multiplier",
		"soft_anti_affinity_weight_multiplier",
	}
)

// gen makes random documents using every built-in filter.
type gen struct {
	r *rand.Rand
}

func (g gen) pick(s ...string) string { return s[g.r.Intn(len(s))] }
func (g gen) chance(p float64) bool   { return g.r.Float64() < p }
func (g gen) i64(lo, hi int64) *int64 { v := lo + g.r.Int63n(hi-lo+1); return &v }
func (g gen) f64(v float64) *float64  { return &v }

func (g gen) uuids(pool []string, max int) []string {
	n := g.r.Intn(max + 1)
	out := make([]string, 0, n)
	for i := 0; i < n; i++ {
		out = append(out, pool[g.r.Intn(len(pool))])
	}
	return out
}

// document builds a random but valid scheduling document with many ties,
// shared instances and the corner cases of each filter and weigher.
func (g gen) document(nHosts int) schedjson.Document {
	r := g.r
	pool := make([]string, 12)
	for i := range pool {
		pool[i] = fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
	}
	cells := []string{"cell1", "cell2", "cell3"}[:1+r.Intn(3)]
	var doc schedjson.Document
	var names []string
	for i := 0; i < nHosts; i++ {
		name := fmt.Sprintf("host%d", i)
		if i > 0 && g.chance(0.15) {
			name = names[r.Intn(len(names))] // another node of a host
		}
		names = append(names, name)
		h := schedjson.HostDoc{
			Host:              name,
			Node:              fmt.Sprintf("node%d", i),
			Cell:              cells[r.Intn(len(cells))],
			TotalUsableRAMMB:  g.i64(1024, 8192),
			FreeRAMMB:         g.i64(-512, 8192),
			TotalUsableDiskGB: g.i64(10, 100),
			FreeDiskMB:        g.i64(-1024, 102400),
			VCPUsTotal:        g.i64(0, 16),
			VCPUsUsed:         r.Int63n(20),
			NumIOOps:          r.Int63n(10),
			NumInstances:      r.Int63n(25),
			FailedBuilds:      0,
		}
		if g.chance(0.3) {
			h.FreeRAMMB = g.i64(2048, 2048) // ties
		}
		if g.chance(0.1) {
			h.FailedBuilds = r.Int63n(3)
		}
		if g.chance(0.1) {
			b := false
			h.Enabled = &b
		}
		if g.chance(0.1) {
			b := false
			h.Up = &b
		}
		if g.chance(0.5) {
			h.CPUAllocationRatio = g.f64([]float64{1, 2, 4, 16, 0.5}[r.Intn(5)])
		}
		if g.chance(0.3) {
			h.RAMAllocationRatio = g.f64(1.0)
		}
		if g.chance(0.3) {
			h.AvailabilityZone = g.pick("az1", "az2", "az1,az2", " az2 , az3")
		}
		if g.chance(0.8) {
			h.CPUArch = g.pick("x86_64", "x86_64", "i686", "aarch64", "X86_64")
			h.HypervisorType = g.pick("xen", "xen", "kvm", "qemu")
			h.VMMode = g.pick("hvm", "xen", "hvm", "")
		}
		if g.chance(0.1) {
			h.SupportedInstances = [][3]string{{"x86_64", "xen", "hvm"}, {"i686", "xen", "xen"}}
		}
		h.HypervisorVersion = []int64{0, 6000000, 7001000, 8002000, 8002001, 1000}[r.Intn(6)]
		h.Instances = g.uuids(pool, 3)
		for j, n := 0, r.Intn(3); j < n; j++ {
			md := map[string]string{}
			if g.chance(0.3) {
				md["availability_zone"] = g.pick("az1", "az3", "az2, az4")
			}
			if g.chance(0.5) {
				md[multiplierNames[r.Intn(len(multiplierNames))]] = g.pick("0.5", "2", "-1", " 3.5 ", "1e1", "bogus", "1_0")
			}
			h.Aggregates = append(h.Aggregates, schedjson.AggregateDoc{Name: fmt.Sprintf("agg%d", j), Metadata: md})
		}
		doc.Hosts = append(doc.Hosts, h)
	}
	cfg := &schedjson.ConfigDoc{}
	fl := scheduler.AllFilters()
	r.Shuffle(len(fl), func(i, j int) { fl[i], fl[j] = fl[j], fl[i] })
	cfg.EnabledFilters = fl[:1+r.Intn(len(fl))]
	ws := scheduler.AllWeighers()
	r.Shuffle(len(ws), func(i, j int) { ws[i], ws[j] = ws[j], ws[i] })
	cfg.Weighers = ws[:1+r.Intn(len(ws))]
	if g.chance(0.3) {
		cfg.Weighers = nil // Nova's default: every weigher
	}
	for i, m := range multiplierNames {
		if !g.chance(0.4) {
			continue
		}
		v := []float64{0, 1, -1, 2.5, -0.25, 1000, 1e6}[r.Intn(7)]
		if i >= 6 && v < 0 {
			v = -v
		}
		switch m {
		case "ram_weight_multiplier":
			cfg.RAMWeightMultiplier = g.f64(v)
		case "disk_weight_multiplier":
			cfg.DiskWeightMultiplier = g.f64(v)
		case "cpu_weight_multiplier":
			cfg.CPUWeightMultiplier = g.f64(v)
		case "io_ops_weight_multiplier":
			cfg.IoOpsWeightMultiplier = g.f64(v)
		case "build_failure_weight_multiplier":
			cfg.BuildFailureWeightMultiplier = g.f64(v)
		case "cross_cell_move_weight_multiplier":
			cfg.CrossCellMoveWeightMultiplier = g.f64(v)
		case "soft_affinity_weight_multiplier":
			cfg.SoftAffinityWeightMultiplier = g.f64(v)
		case "soft_anti_affinity_weight_multiplier":
			cfg.SoftAntiAffinityWeightMultiplier = g.f64(v)
		}
	}
	ints := func(lo, hi int) *int { v := lo + r.Intn(hi-lo+1); return &v }
	if g.chance(0.5) {
		cfg.HostSubsetSize = ints(1, 4)
	}
	if g.chance(0.5) {
		cfg.MaxAttempts = ints(1, 5)
	}
	if g.chance(0.25) {
		t := true
		cfg.ShuffleBestSameWeighedHosts = &t
	}
	if g.chance(0.5) {
		cfg.MaxIOOpsPerHost = ints(0, 10)
	}
	if g.chance(0.5) {
		cfg.MaxInstancesPerHost = ints(1, 25)
	}
	if g.chance(0.15) {
		a := g.pick("x86_64", "i686")
		cfg.ImagePropertiesDefaultArchitecture = &a
	}
	if g.chance(0.15) {
		z := g.pick("az1", "az3")
		cfg.DefaultAvailabilityZone = &z
	}
	doc.Config = cfg

	req := &schedjson.RequestDoc{
		Flavor: schedjson.FlavorDoc{MemoryMB: r.Int63n(4096), VCPUs: r.Int63n(4), RootGB: r.Int63n(40), EphemeralGB: r.Int63n(5), Swap: r.Int63n(1024),
			ExtraSpecs: g.extraSpecs()},
	}
	if g.chance(0.4) {
		req.NumInstances = 1 + r.Intn(3)
		if g.chance(0.5) {
			for i := 0; i < req.NumInstances; i++ {
				req.InstanceUUIDs = append(req.InstanceUUIDs, fmt.Sprintf("10000000-0000-4000-8000-%012d", r.Intn(1000)))
			}
			if g.chance(0.5) {
				req.NumInstances = 0
			}
		}
	}
	if g.chance(0.3) {
		req.InstanceUUID = pool[r.Intn(len(pool))]
	}
	if g.chance(0.5) {
		req.ImageProperties = map[string]string{}
		if g.chance(0.6) {
			req.ImageProperties["hw_architecture"] = g.pick("x86_64", "amd64", "i386", "aarch64", "X86_64")
		}
		if g.chance(0.4) {
			req.ImageProperties["img_hv_type"] = g.pick("xen", "xapi", "kvm")
		}
		if g.chance(0.4) {
			req.ImageProperties["hw_vm_mode"] = g.pick("hvm", "pv", "hv", "xen")
		}
		if g.chance(0.3) {
			req.ImageProperties["img_hv_requested_version"] = g.pick(">=6.0", ">=7.1, <8.3", "==8.2.0", "!=8.2.1", "<7.0")
		}
	}
	if g.chance(0.3) {
		req.AvailabilityZone = g.pick("az1", "az2", "az3", "nova")
	}
	if g.chance(0.2) {
		req.IgnoreHosts = []string{names[r.Intn(len(names))], "HOST1"}
	}
	if g.chance(0.05) {
		req.ForceHosts = []string{names[r.Intn(len(names))]}
	}
	if g.chance(0.05) {
		req.ForceNodes = []string{fmt.Sprintf("node%d", r.Intn(nHosts))}
	}
	if g.chance(0.4) {
		req.SchedulerHints = &schedjson.HintsDoc{SameHost: g.uuids(pool, 2), DifferentHost: g.uuids(pool, 2)}
	}
	if g.chance(0.5) {
		grp := &schedjson.GroupDoc{Policy: g.pick(scheduler.PolicyAffinity, scheduler.PolicyAntiAffinity, scheduler.PolicySoftAffinity, scheduler.PolicySoftAntiAffinity)}
		grp.Members = g.uuids(pool, 6)
		for _, u := range req.InstanceUUIDs {
			if g.chance(0.5) {
				grp.Members = append(grp.Members, u)
			}
		}
		if g.chance(0.4) {
			grp.Hosts = []string{names[r.Intn(len(names))]}
		}
		if g.chance(0.4) {
			grp.MaxServerPerHost = 1 + r.Intn(3)
		}
		req.InstanceGroup = grp
	}
	if g.chance(0.08) {
		k := r.Intn(nHosts)
		req.RequestedHost = names[k]
		if g.chance(0.5) {
			req.RequestedNode = fmt.Sprintf("node%d", k)
		}
	}
	if g.chance(0.4) {
		req.RequestedCell = cells[r.Intn(len(cells))]
		req.AllowCrossCellMove = g.chance(0.7)
	}
	if g.chance(0.5) {
		for j := 0; j < 2; j++ {
			k := r.Intn(nHosts)
			req.TriedHosts = append(req.TriedHosts, schedjson.HostNodeDoc{Host: names[k], Node: fmt.Sprintf("node%d", k)})
		}
	}
	doc.Request = req
	return doc
}

// extraSpecs returns, half of the time, flavor extra specs for
// ComputeCapabilitiesFilter: keys of each kind (scoped to capabilities,
// unscoped host attributes, other scopes, unknown attributes) with each
// operator of extra_specs_ops, numeric operators on numeric attributes
// only (on anything else Nova raises).
func (g gen) extraSpecs() map[string]string {
	if !g.chance(0.5) {
		return nil
	}
	choices := []struct {
		key  string
		reqs []string
	}{
		{"capabilities:hypervisor_type", []string{"s== xen", "xen", "<or> kvm <or> xen", "s!= qemu", "<in> e", "s< l"}},
		{"capabilities:hypervisor_version", []string{">= 7001000", "= 8002000", "<= 8002000", "== 0", "!= 6000000"}},
		{"capabilities:cpu_info:arch", []string{"x86_64", "s== i686", "<or> x86_64 <or> aarch64", "<all-in> x 64"}},
		{"capabilities:cpu_info", []string{"<in> x86", `{"arch": "x86_64"}`}},
		{"capabilities:free_ram_mb", []string{">= 2048", "<= 0", "= 4000"}},
		{"vcpus_total", []string{">= 8", "s== 0"}},
		{"num_io_ops", []string{"<= 3"}},
		{"capabilities:cpu_allocation_ratio", []string{"s== 16.0", "== 16", ">= 2", "0.5"}},
		{"capabilities:ram_allocation_ratio", []string{"1.0", "== 1"}},
		{"capabilities:disk_allocation_ratio", []string{"s== 1.0"}},
		{"capabilities:num_instances", []string{"<= 10"}},
		{"capabilities:nodename", []string{"<in> node1", "s>= node2"}},
		{"capabilities:host", []string{"s>= host2", "<or> host1 <or> host3"}},
		{"capabilities:total_usable_disk_gb", []string{">= 50"}},
		{"capabilities:vcpus_used", []string{"<= 9"}},
		{"capabilities:failed_builds", []string{"== 0"}},
		{"capabilities:total_usable_ram_mb", []string{">= 4096"}},
		{"capabilities:free_disk_mb", []string{">= 0"}},
		{"capabilities:no_such_attribute", []string{"x"}},
		{"hw:cpu_policy", []string{"dedicated"}},
		{"trust", []string{"trusted"}},
	}
	m := map[string]string{}
	for i, n := 0, 1+g.r.Intn(3); i < n; i++ {
		c := choices[g.r.Intn(len(choices))]
		if c.key == "capabilities:no_such_attribute" && !g.chance(0.2) {
			continue // it removes every host
		}
		m[c.key] = c.reqs[g.r.Intn(len(c.reqs))]
	}
	return m
}

// compare checks our output against Nova's for one case.
func compare(t *testing.T, i int, docJSON []byte, ours *schedjson.Output, nova json.RawMessage) {
	t.Helper()
	var theirs schedjson.Output
	var exc struct {
		Exception string `json:"exception"`
	}
	if err := json.Unmarshal(nova, &theirs); err != nil {
		t.Fatalf("case %d: nova result: %v", i, err)
	}
	if json.Unmarshal(nova, &exc) == nil && exc.Exception != "" {
		o, _ := json.Marshal(ours)
		t.Fatalf("case %d: Nova raised:\n%s\ninput: %s\nours: %s", i, exc.Exception, docJSON, o)
	}
	fail := func(format string, args ...any) {
		t.Helper()
		o, _ := json.Marshal(ours)
		if d := os.Getenv("SCHEDULER_ORACLE_DUMP"); d != "" {
			_ = os.WriteFile(d, docJSON, 0o644)
		}
		t.Fatalf("case %d: %s\ninput: %s\nours: %s\nnova: %s", i, fmt.Sprintf(format, args...), docJSON, o, nova)
	}
	if (ours.Error != "") != (theirs.Error != "") {
		fail("no-valid-host differs")
	}
	if !sameFiltered(ours.FilteredOut, theirs.FilteredOut) {
		fail("filtered_out differs")
	}
	if ours.Error != "" {
		return
	}
	weighEq := func(what string, a, b []schedjson.HostWeight) {
		if len(a) != len(b) {
			fail("%s: %d hosts, nova %d", what, len(a), len(b))
		}
		for j := range a {
			if a[j].Host != b[j].Host || a[j].Node != b[j].Node {
				fail("%s[%d]: %s/%s, nova %s/%s", what, j, a[j].Host, a[j].Node, b[j].Host, b[j].Node)
			}
			if math.Abs(a[j].Weight-b[j].Weight) > 1e-9 {
				fail("%s[%d]: weight %v, nova %v", what, j, a[j].Weight, b[j].Weight)
			}
		}
	}
	weighEq("weighed", ours.Weighed, theirs.Weighed)
	weighEq("selected", ours.Selected, theirs.Selected)
	if len(ours.Alternates) != len(theirs.Alternates) {
		fail("alternates: %d lists, nova %d", len(ours.Alternates), len(theirs.Alternates))
	}
	for j := range ours.Alternates {
		a, b := ours.Alternates[j], theirs.Alternates[j]
		if len(a) != len(b) {
			fail("alternates[%d] differ", j)
		}
		for k := range a {
			if a[k] != b[k] {
				fail("alternates[%d][%d] differ", j, k)
			}
		}
	}
}

func sameFiltered(a, b map[string][]string) bool {
	norm := func(m map[string][]string) map[string][]string {
		out := map[string][]string{}
		for k, v := range m {
			if len(v) == 0 {
				continue
			}
			s := append([]string(nil), v...)
			sort.Strings(s)
			out[k] = s
		}
		return out
	}
	x, y := norm(a), norm(b)
	if len(x) != len(y) {
		return false
	}
	for k, v := range x {
		w, ok := y[k]
		if !ok || len(v) != len(w) {
			return false
		}
		for i := range v {
			if v[i] != w[i] {
				return false
			}
		}
	}
	return true
}

// TestNovaOracle runs the same random documents through Nova's own
// filters, weighers and selection code (python3-nova) and through this
// package, and requires the same hosts, the same order, the same
// selections and alternates, and weights equal to 1e-9.
func TestNovaOracle(t *testing.T) {
	requireNova(t)
	const cases = 400
	seed := int64(20261121)
	if s := os.Getenv("SCHEDULER_ORACLE_SEED"); s != "" {
		fmt.Sscan(s, &seed)
	}
	g := gen{r: rand.New(rand.NewSource(seed))}
	var docs []map[string]any
	var docJSON [][]byte
	var outs []*schedjson.Output
	start := time.Now()
	for i := 0; i < cases; i++ {
		n := 1 + g.r.Intn(30)
		if i%50 == 49 {
			n = 300
		}
		doc := g.document(n)
		in, err := doc.Input()
		if err != nil {
			t.Fatalf("case %d: generated document rejected: %v", i, err)
		}
		var choices []int
		rr := rand.New(rand.NewSource(int64(i)))
		intn := func(n int) int { v := rr.Intn(n); choices = append(choices, v); return v }
		out, err := schedjson.Run(in, scheduler.WithRand(intn))
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		b, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		m["_choices"] = choices
		docs = append(docs, m)
		docJSON = append(docJSON, b)
		outs = append(outs, out)
	}
	// Two large documents: the benchmark's request on 2,000 hosts, for
	// one instance and for three instances with a host subset of 4.
	for j := 0; j < 2; j++ {
		doc := benchDocument(2000)
		if j == 1 {
			doc.Request.NumInstances = 3
			four := 4
			doc.Config.HostSubsetSize = &four
		}
		in, err := doc.Input()
		if err != nil {
			t.Fatal(err)
		}
		var choices []int
		rr := rand.New(rand.NewSource(int64(j)))
		intn := func(n int) int { v := rr.Intn(n); choices = append(choices, v); return v }
		out, err := schedjson.Run(in, scheduler.WithRand(intn))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(doc)
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		m["_choices"] = choices
		docs = append(docs, m)
		docJSON = append(docJSON, b)
		outs = append(outs, out)
	}
	results := runNova(t, docs)
	noValid, multi := 0, 0
	removing := map[string]int{} // filter -> cases with a selection where it removed a host
	for i := range docs {
		compare(t, i, docJSON[i], outs[i], results[i])
		if outs[i].Error != "" {
			noValid++
			continue
		}
		if len(outs[i].Selected) > 1 {
			multi++
		}
		for f, hosts := range outs[i].FilteredOut {
			if len(hosts) > 0 {
				removing[f]++
			}
		}
	}
	for _, f := range scheduler.AllFilters() {
		if removing[f] < 5 {
			t.Errorf("%s removed hosts in only %d cases that found a host: the documents do not exercise it", f, removing[f])
		}
	}
	t.Logf("%d cases (seed %d) and 2 of 2,000 hosts equal to Nova's in %v: %d no valid host, %d multi-instance; cases with a selection where each filter removed hosts: %v",
		cases, seed, time.Since(start), noValid, multi, removing)
}

// crossCellDocument is a move whose hosts spread over two or three cells,
// weighed by the CrossCellWeigher (with the RAM weigher, to break its
// ties) under a configured multiplier and per-aggregate overrides of
// cross_cell_move_weight_multiplier.
func (g gen) crossCellDocument(nHosts int) schedjson.Document {
	r := g.r
	cells := []string{"cell1", "cell2", "cell3"}[:2+r.Intn(2)]
	var doc schedjson.Document
	for i := 0; i < nHosts; i++ {
		h := schedjson.HostDoc{Host: fmt.Sprintf("host%d", i), Node: fmt.Sprintf("node%d", i),
			Cell: cells[r.Intn(len(cells))], TotalUsableRAMMB: g.i64(4096, 8192), FreeRAMMB: g.i64(0, 8192),
			TotalUsableDiskGB: g.i64(50, 100), FreeDiskMB: g.i64(10240, 102400), VCPUsTotal: g.i64(4, 16)}
		if g.chance(0.3) {
			h.FreeRAMMB = g.i64(4096, 4096) // ties
		}
		if g.chance(0.4) {
			md := map[string]string{"cross_cell_move_weight_multiplier": g.pick("-1000000", "0", "2", "-1", "1e6", "bogus")}
			h.Aggregates = []schedjson.AggregateDoc{{Name: "agg" + h.Cell, Metadata: md}}
			if g.chance(0.3) {
				md2 := map[string]string{"cross_cell_move_weight_multiplier": g.pick("5", "-3")}
				h.Aggregates = append(h.Aggregates, schedjson.AggregateDoc{Name: "other", Metadata: md2})
			}
		}
		doc.Hosts = append(doc.Hosts, h)
	}
	cfg := &schedjson.ConfigDoc{Weighers: []string{scheduler.CrossCellWeigherName, scheduler.RAMWeigherName}}
	if g.chance(0.7) {
		cfg.CrossCellMoveWeightMultiplier = g.f64([]float64{1e6, -1e6, 0, -1, 2.5}[r.Intn(5)])
	}
	if g.chance(0.5) {
		n := 1 + r.Intn(4)
		cfg.MaxAttempts = &n
	}
	doc.Config = cfg
	doc.Request = &schedjson.RequestDoc{Flavor: schedjson.FlavorDoc{MemoryMB: 1024, VCPUs: 1, RootGB: 10},
		InstanceUUID: "00000000-0000-4000-8000-000000000001", RequestedCell: cells[r.Intn(len(cells))],
		AllowCrossCellMove: g.chance(0.85)}
	if g.chance(0.5) {
		doc.Request.IgnoreHosts = []string{doc.Hosts[0].Host}
	}
	return doc
}

// TestNovaOracleCrossCell runs cross-cell moves through Nova's own
// CrossCellWeigher (nova/scheduler/weights/cross_cell.py) and selection
// code and through this package: the same hosts, order, selections and
// alternates (every alternate in the selected host's cell), weights equal
// to 1e-9. It also counts the moves that stayed in the requested cell
// and those that left it, so both are exercised.
func TestNovaOracleCrossCell(t *testing.T) {
	requireNova(t)
	const cases = 150
	g := gen{r: rand.New(rand.NewSource(20261206))}
	var docs []map[string]any
	var docJSON [][]byte
	var outs []*schedjson.Output
	var cellOf []map[string]string
	for i := 0; i < cases; i++ {
		doc := g.crossCellDocument(2 + g.r.Intn(12))
		in, err := doc.Input()
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		out, err := schedjson.Run(in)
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		b, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		m["_choices"] = []int{}
		docs, docJSON, outs = append(docs, m), append(docJSON, b), append(outs, out)
		cells := map[string]string{"": doc.Request.RequestedCell}
		for _, h := range doc.Hosts {
			cells[h.Host] = h.Cell
		}
		cellOf = append(cellOf, cells)
	}
	results := runNova(t, docs)
	stayed, left := 0, 0
	for i := range docs {
		compare(t, i, docJSON[i], outs[i], results[i])
		if outs[i].Error != "" || len(outs[i].Alternates) == 0 {
			continue
		}
		sel := outs[i].Selected[0]
		if cellOf[i][sel.Host] == cellOf[i][""] {
			stayed++
		} else {
			left++
		}
		for _, a := range outs[i].Alternates[0] {
			if cellOf[i][a.Host] != cellOf[i][sel.Host] {
				t.Errorf("case %d: alternate %s in cell %s, selected %s in %s", i, a.Host, cellOf[i][a.Host],
					sel.Host, cellOf[i][sel.Host])
			}
		}
	}
	if stayed < 10 || left < 10 {
		t.Errorf("moves that stayed in their cell: %d, that left it: %d; the documents do not exercise the weigher", stayed, left)
	}
	t.Logf("%d cross-cell cases equal to Nova's: %d stayed in the requested cell, %d left it", cases, stayed, left)
}
