package scheduler_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/xenflow/xenflow/scheduler"
)

func host(name, cell string, freeRAM int64) scheduler.HostState {
	return scheduler.HostState{
		Host: name, Cell: cell,
		TotalUsableRAMMB: 8192, FreeRAMMB: freeRAM, TotalUsableDiskGB: 100, FreeDiskMB: 51200,
		VCPUsTotal: 8,
	}
}

func mustSelect(t *testing.T, cfg scheduler.Config, hosts []scheduler.HostState, req *scheduler.Request, opts ...scheduler.Option) *scheduler.Result {
	t.Helper()
	hs, err := scheduler.NewHostSet(hosts)
	if err != nil {
		t.Fatal(err)
	}
	s, err := scheduler.New(cfg, append(opts, scheduler.WithExplain())...)
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Select(hs, req)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func ramOnly() scheduler.Config {
	cfg := scheduler.DefaultConfig()
	cfg.Weighers = []string{scheduler.RAMWeigherName}
	return cfg
}

func names(ws []scheduler.WeighedHost) string {
	var b []string
	for _, w := range ws {
		b = append(b, w.Host)
	}
	return strings.Join(b, ",")
}

func TestSelectBehaviour(t *testing.T) {
	tests := []struct {
		name    string
		cfg     func() scheduler.Config
		hosts   []scheduler.HostState
		req     scheduler.Request
		opts    []scheduler.Option
		weighed string
		weights []float64
		chosen  []string
		alts    [][]string
	}{
		{
			name:    "RAM spreads; normalised to the largest, minval 0",
			cfg:     ramOnly,
			hosts:   []scheduler.HostState{host("a", "c", 1024), host("b", "c", 4096), host("c", "c", 2048)},
			weighed: "b,c,a", weights: []float64{1, 0.5, 0.25},
			chosen: []string{"b"}, alts: [][]string{{"c", "a"}},
		},
		{
			name:    "equal raw weights with minval 0 normalise to 1, not 0",
			cfg:     ramOnly,
			hosts:   []scheduler.HostState{host("a", "c", 2048), host("b", "c", 2048)},
			weighed: "a,b", weights: []float64{1, 1},
			chosen: []string{"a"}, alts: [][]string{{"b"}},
		},
		{
			name: "all equal without minval: every weight 0, input order kept",
			cfg: func() scheduler.Config {
				c := scheduler.DefaultConfig()
				c.Weighers = []string{scheduler.BuildFailureWeigherName}
				return c
			},
			hosts:   []scheduler.HostState{host("z", "c", 1), host("y", "c", 2), host("x", "c", 3)},
			weighed: "z,y,x", weights: []float64{0, 0, 0},
			chosen: []string{"z"}, alts: [][]string{{"y", "x"}},
		},
		{
			name:    "negative multiplier stacks",
			cfg:     func() scheduler.Config { c := ramOnly(); c.RAMWeightMultiplier = -1; return c },
			hosts:   []scheduler.HostState{host("a", "c", 1024), host("b", "c", 4096)},
			weighed: "a,b", weights: []float64{-0.25, -1},
			chosen: []string{"a"}, alts: [][]string{{"b"}},
		},
		{
			name: "per-aggregate multiplier: the smallest value wins",
			cfg:  ramOnly,
			hosts: func() []scheduler.HostState {
				a, b := host("a", "c", 4096), host("b", "c", 2048)
				a.Aggregates = []scheduler.Aggregate{
					{Name: "x", Metadata: map[string]string{"ram_weight_multiplier": "0.1"}},
					{Name: "y", Metadata: map[string]string{"ram_weight_multiplier": "3"}},
				}
				return []scheduler.HostState{a, b}
			}(),
			weighed: "b,a", weights: []float64{0.5, 0.1},
			chosen: []string{"b"}, alts: [][]string{{"a"}},
		},
		{
			name: "alternates come from the chosen host's cell only",
			cfg:  ramOnly,
			hosts: []scheduler.HostState{host("a", "c1", 8000), host("b", "c2", 7000), host("c", "c1", 6000),
				host("d", "c1", 5000), host("e", "c1", 4000)},
			weighed: "a,b,c,d,e",
			chosen:  []string{"a"}, alts: [][]string{{"c", "d"}},
		},
		{
			name:    "host_subset_size: the injected choice picks the third best",
			cfg:     func() scheduler.Config { c := ramOnly(); c.HostSubsetSize = 3; return c },
			hosts:   []scheduler.HostState{host("a", "c", 8000), host("b", "c", 7000), host("c", "c", 6000), host("d", "c", 5000)},
			opts:    []scheduler.Option{scheduler.WithRand(func(n int) int { return n - 1 })},
			weighed: "a,b,c,d",
			chosen:  []string{"c"}, alts: [][]string{{"a", "b"}},
		},
		{
			name:    "multi-create consumes RAM between picks",
			cfg:     ramOnly,
			hosts:   []scheduler.HostState{host("a", "c", 6000), host("b", "c", 5000)},
			req:     scheduler.Request{NumInstances: 2, Flavor: scheduler.Flavor{MemoryMB: 2000}},
			weighed: "a,b",
			chosen:  []string{"a", "b"}, alts: [][]string{{}, {}},
		},
		{
			name:    "ignore_hosts is case-insensitive and removes every node of the host",
			cfg:     ramOnly,
			hosts:   []scheduler.HostState{host("a", "c", 6000), {Host: "B", Node: "n1", TotalUsableRAMMB: 1, FreeRAMMB: 9000, TotalUsableDiskGB: 1, VCPUsTotal: 1}, {Host: "B", Node: "n2", TotalUsableRAMMB: 1, FreeRAMMB: 9000, TotalUsableDiskGB: 1, VCPUsTotal: 1}},
			req:     scheduler.Request{IgnoreHosts: []string{"b"}},
			weighed: "a",
			chosen:  []string{"a"}, alts: [][]string{{}},
		},
		{
			name: "forced host skips the filters",
			cfg: func() scheduler.Config {
				c := ramOnly()
				c.EnabledFilters = []string{scheduler.ComputeFilterName}
				return c
			},
			hosts: func() []scheduler.HostState {
				a := host("a", "c", 6000)
				a.Disabled = true
				return []scheduler.HostState{a, host("b", "c", 7000)}
			}(),
			req:     scheduler.Request{ForceHosts: []string{"A"}},
			weighed: "a",
			chosen:  []string{"a"}, alts: [][]string{{}},
		},
		{
			name: "anti-affinity: a second instance avoids the first one's host",
			cfg: func() scheduler.Config {
				c := ramOnly()
				c.EnabledFilters = []string{scheduler.ServerGroupAntiAffinityFilterName}
				return c
			},
			hosts: []scheduler.HostState{host("a", "c", 6000), host("b", "c", 5000)},
			req: scheduler.Request{InstanceUUIDs: []string{"i1", "i2"},
				InstanceGroup: &scheduler.InstanceGroup{Policy: scheduler.PolicyAntiAffinity, Members: []string{"i1", "i2"}}},
			weighed: "a,b",
			chosen:  []string{"a", "b"}, alts: [][]string{{}, {}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := tt.req
			res := mustSelect(t, tt.cfg(), tt.hosts, &req, tt.opts...)
			if got := names(res.Weighed); got != tt.weighed {
				t.Fatalf("weighed %s, want %s", got, tt.weighed)
			}
			for i, w := range tt.weights {
				if res.Weighed[i].Weight != w {
					t.Fatalf("weight[%d] = %v, want %v", i, res.Weighed[i].Weight, w)
				}
			}
			if len(res.Selections) != len(tt.chosen) {
				t.Fatalf("%d selections, want %d", len(res.Selections), len(tt.chosen))
			}
			for i, c := range tt.chosen {
				sel := res.Selections[i]
				if sel.Host != c {
					t.Fatalf("selection %d = %s, want %s", i, sel.Host, c)
				}
				var alts []string
				for _, a := range sel.Alternates {
					alts = append(alts, a.Host)
				}
				if strings.Join(alts, ",") != strings.Join(tt.alts[i], ",") {
					t.Fatalf("alternates %d = %v, want %v", i, alts, tt.alts[i])
				}
			}
		})
	}
}

func TestNoValidHostSaysWhichFilter(t *testing.T) {
	cfg := scheduler.DefaultConfig()
	cfg.EnabledFilters = []string{scheduler.ComputeFilterName, scheduler.RamFilterName, scheduler.IoOpsFilterName}
	down := host("down", "c", 8000)
	down.Down = true
	small := host("small", "c", 100)
	small.RAMAllocationRatio = 1.0
	busy := host("busy", "c", 8000)
	busy.NumIOOps = 8
	hs, err := scheduler.NewHostSet([]scheduler.HostState{down, small, busy, host("gone", "c", 8000)})
	if err != nil {
		t.Fatal(err)
	}
	s, err := scheduler.New(cfg, scheduler.WithExplain())
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Select(hs, &scheduler.Request{Flavor: scheduler.Flavor{MemoryMB: 1024}, IgnoreHosts: []string{"GONE"}})
	if !errors.Is(err, scheduler.ErrNoValidHost) {
		t.Fatalf("err = %v", err)
	}
	var nvh *scheduler.NoValidHostError
	if !errors.As(err, &nvh) {
		t.Fatal("not a *NoValidHostError")
	}
	want := []scheduler.FilterCount{{Filter: "ComputeFilter", Removed: 1}, {Filter: "RamFilter", Removed: 1}, {Filter: "IoOpsFilter", Removed: 1}}
	for i, w := range want {
		if nvh.FilteredOut[i] != w {
			t.Fatalf("filtered out %+v, want %+v", nvh.FilteredOut, want)
		}
	}
	if nvh.Ignored != 1 || nvh.Hosts["RamFilter"][0] != "small" {
		t.Fatalf("%+v", nvh)
	}
	for _, s := range []string{"ComputeFilter removed 1", "RamFilter removed 1", "IoOpsFilter removed 1", "1 ignored"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("message %q lacks %q", err.Error(), s)
		}
	}
}

func TestConsumeUpdatesTheHostSet(t *testing.T) {
	hs, err := scheduler.NewHostSet([]scheduler.HostState{host("a", "c", 6000), host("b", "c", 5000)})
	if err != nil {
		t.Fatal(err)
	}
	s, err := scheduler.New(ramOnly())
	if err != nil {
		t.Fatal(err)
	}
	req := &scheduler.Request{Flavor: scheduler.Flavor{MemoryMB: 2000, RootGB: 1, VCPUs: 2}}
	res, err := s.Select(hs, req)
	if err != nil {
		t.Fatal(err)
	}
	if hs.Host(0).FreeRAMMB != 6000 {
		t.Fatal("Select changed the host set")
	}
	if err := hs.Consume(res.Selections[0].Index, req, "i1"); err != nil {
		t.Fatal(err)
	}
	h := hs.Host(0)
	if h.FreeRAMMB != 4000 || h.FreeDiskMB != 51200-1024 || h.VCPUsUsed != 2 || h.NumInstances != 1 || h.NumIOOps != 1 || h.Instances[0] != "i1" {
		t.Fatalf("after consume: %+v", h)
	}
	res, err = s.Select(hs, req)
	if err != nil {
		t.Fatal(err)
	}
	if res.Selections[0].Host != "b" {
		t.Fatalf("second request chose %s, want b", res.Selections[0].Host)
	}
	if err := hs.Consume(7, req, ""); !errors.Is(err, scheduler.ErrBadInput) {
		t.Fatalf("out of range: %v", err)
	}
}

// TestConcurrentSelect: one Scheduler and one HostSet serve concurrent
// requests (run with -race); every result equals the sequential one.
func TestConcurrentSelect(t *testing.T) {
	s, hs, req := benchSetup(t, 2000) // all filters and weighers, subset 1
	multi := *req
	multi.NumInstances = 3
	want1, err := s.Select(hs, req)
	if err != nil {
		t.Fatal(err)
	}
	want3, err := s.Select(hs, &multi)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 8)
	for g := 0; g < 8; g++ {
		go func(g int) {
			for i := 0; i < 10; i++ {
				r, want := req, want1
				if (g+i)%2 == 1 {
					r, want = &multi, want3
				}
				got, err := s.Select(hs, r)
				if err != nil {
					done <- err
					return
				}
				for j := range want.Selections {
					if got.Selections[j].Index != want.Selections[j].Index || got.Selections[j].Weight != want.Selections[j].Weight {
						done <- errors.New("concurrent result differs")
						return
					}
				}
			}
			done <- nil
		}(g)
	}
	for g := 0; g < 8; g++ {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

// TestZeroHostStateIsUsable: a HostState whose service flags were never
// set is an enabled, up host; only Disabled or Down take it out.
func TestZeroHostStateIsUsable(t *testing.T) {
	base := scheduler.HostState{Host: "h", TotalUsableRAMMB: 4096, FreeRAMMB: 4096, TotalUsableDiskGB: 40, FreeDiskMB: 40960, VCPUsTotal: 4}
	cfg := scheduler.DefaultConfig()
	cfg.EnabledFilters = []string{scheduler.ComputeFilterName}
	tests := []struct {
		name string
		edit func(*scheduler.HostState)
		pass bool
	}{
		{"flags never set", func(*scheduler.HostState) {}, true},
		{"disabled", func(h *scheduler.HostState) { h.Disabled = true }, false},
		{"down", func(h *scheduler.HostState) { h.Down = true }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := base
			tt.edit(&h)
			hs, err := scheduler.NewHostSet([]scheduler.HostState{h})
			if err != nil {
				t.Fatal(err)
			}
			s, err := scheduler.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			_, err = s.Select(hs, &scheduler.Request{Flavor: scheduler.Flavor{MemoryMB: 512}})
			if (err == nil) != tt.pass {
				t.Fatalf("Select: %v, want pass=%v", err, tt.pass)
			}
			f, err := scheduler.NewFilter(scheduler.ComputeFilterName, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if got := f.HostPasses(&h, &scheduler.Request{}); got != tt.pass {
				t.Fatalf("ComputeFilter.HostPasses = %v, want %v", got, tt.pass)
			}
		})
	}
}

// TestNonFiniteWeights: multipliers whose weights cannot be finite are
// refused, by Validate when the configured ones overflow together and by
// Select when per-aggregate overrides do, never returned as a ranking.
func TestNonFiniteWeights(t *testing.T) {
	huge := func(c *scheduler.Config) {
		c.RAMWeightMultiplier, c.DiskWeightMultiplier, c.CPUWeightMultiplier = 1e308, 1e308, 1e308
	}
	if err := func() error { c := scheduler.DefaultConfig(); huge(&c); return c.Validate() }(); !errors.Is(err, scheduler.ErrBadInput) {
		t.Fatalf("Validate of multipliers summing past MaxFloat64: %v", err)
	} else if bad := new(scheduler.BadInputError); !errors.As(err, &bad) || bad.Field != "config.weighers" {
		t.Fatalf("field: %v", err)
	}
	// The same multipliers with only one of their weighers enabled are fine.
	c := scheduler.DefaultConfig()
	huge(&c)
	c.Weighers = []string{scheduler.RAMWeigherName}
	if err := c.Validate(); err != nil {
		t.Fatalf("one huge multiplier: %v", err)
	}

	agg := []scheduler.Aggregate{{Name: "big", Metadata: map[string]string{
		"ram_weight_multiplier": "1e308", "disk_weight_multiplier": "1e308"}}}
	a, b := host("a", "c", 8000), host("b", "c", 2000)
	a.Aggregates, b.Aggregates = agg, agg
	b.FreeDiskMB = 1000
	hs, err := scheduler.NewHostSet([]scheduler.HostState{a, b})
	if err != nil {
		t.Fatal(err)
	}
	for _, explain := range []bool{false, true} {
		opts := []scheduler.Option{}
		if explain {
			opts = append(opts, scheduler.WithExplain())
		}
		s, err := scheduler.New(scheduler.DefaultConfig(), opts...)
		if err != nil {
			t.Fatal(err)
		}
		res, err := s.Select(hs, &scheduler.Request{Flavor: scheduler.Flavor{MemoryMB: 512}})
		var nf *scheduler.NonFiniteWeightError
		if !errors.As(err, &nf) || !errors.Is(err, scheduler.ErrNonFiniteWeight) || nf.Host != "a" {
			t.Fatalf("explain=%v: Select = %+v, %v; want *NonFiniteWeightError on host a", explain, res, err)
		}
	}
}
