package scheduler_test

import (
	"errors"
	"fmt"
	"math/rand"
	"testing"

	"github.com/xenflow/xenflow/scheduler"
)

// TestDefaultFiltersPlaceOnlyWhereItFits: with DefaultConfig an instance
// lands only on a host of its zone with the RAM, disk and vCPUs it needs,
// and the filter that says no is the one Nova would name.
func TestDefaultFiltersPlaceOnlyWhereItFits(t *testing.T) {
	mk := func(name, az string, freeRAM, freeDiskMB, vcpus int64) scheduler.HostState {
		return scheduler.HostState{Host: name, AvailabilityZone: az,
			TotalUsableRAMMB: 8192, FreeRAMMB: freeRAM, TotalUsableDiskGB: 100, FreeDiskMB: freeDiskMB,
			VCPUsTotal: vcpus}
	}
	twoGiB := scheduler.Flavor{MemoryMB: 2048, VCPUs: 2, RootGB: 20}
	tests := []struct {
		name    string
		hosts   []scheduler.HostState
		req     scheduler.Request
		chosen  string // "" when no host is valid
		removed string // the filter that removed a host
	}{
		{"2 GiB skips the host with 100 MiB free",
			[]scheduler.HostState{mk("tight", "", 100, 102400, 8), mk("roomy", "", 4096, 40960, 8)},
			scheduler.Request{Flavor: twoGiB}, "roomy", scheduler.RamFilterName},
		{"2 GiB on a host with 100 MiB free: no valid host",
			[]scheduler.HostState{mk("tight", "", 100, 102400, 8)},
			scheduler.Request{Flavor: twoGiB}, "", scheduler.RamFilterName},
		{"az1 skips the roomier az2 host",
			[]scheduler.HostState{mk("b", "az2", 8000, 102400, 8), mk("a", "az1", 4096, 40960, 8)},
			scheduler.Request{Flavor: twoGiB, AvailabilityZone: "az1"}, "a", scheduler.AvailabilityZoneFilterName},
		{"az1 with only az2 hosts: no valid host",
			[]scheduler.HostState{mk("b", "az2", 8000, 102400, 8)},
			scheduler.Request{Flavor: twoGiB, AvailabilityZone: "az1"}, "", scheduler.AvailabilityZoneFilterName},
		{"20 GiB root disk skips the host with 10 GiB free",
			[]scheduler.HostState{mk("full", "", 8000, 10240, 8), mk("free", "", 4096, 40960, 8)},
			scheduler.Request{Flavor: twoGiB}, "free", scheduler.DiskFilterName},
		{"16 vCPUs skip the 8-CPU host",
			[]scheduler.HostState{mk("small", "", 8000, 102400, 8), mk("big", "", 4096, 40960, 32)},
			scheduler.Request{Flavor: scheduler.Flavor{MemoryMB: 512, VCPUs: 16}}, "big", scheduler.CoreFilterName},
		{"tried host is not tried again",
			[]scheduler.HostState{mk("tried", "", 8000, 102400, 8), mk("other", "", 4096, 40960, 8)},
			scheduler.Request{Flavor: twoGiB, TriedHosts: []scheduler.HostNode{{Host: "tried", Node: "tried"}}}, "other", scheduler.RetryFilterName},
		{"extra spec capabilities:hypervisor_type",
			[]scheduler.HostState{{Host: "kvm", HypervisorType: "kvm", TotalUsableRAMMB: 8192, FreeRAMMB: 8192, TotalUsableDiskGB: 100, FreeDiskMB: 102400, VCPUsTotal: 8},
				{Host: "xen", HypervisorType: "xen", TotalUsableRAMMB: 8192, FreeRAMMB: 4096, TotalUsableDiskGB: 100, FreeDiskMB: 40960, VCPUsTotal: 8}},
			scheduler.Request{Flavor: scheduler.Flavor{MemoryMB: 512, ExtraSpecs: map[string]string{"capabilities:hypervisor_type": "s== xen"}}},
			"xen", scheduler.ComputeCapabilitiesFilterName},
	}
	s, err := scheduler.New(scheduler.DefaultConfig(), scheduler.WithExplain())
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs, err := scheduler.NewHostSet(tt.hosts)
			if err != nil {
				t.Fatal(err)
			}
			res, err := s.Select(hs, &tt.req)
			var removed map[string][]string
			if tt.chosen == "" {
				var nvh *scheduler.NoValidHostError
				if !errors.As(err, &nvh) {
					t.Fatalf("Select = %+v, %v; want no valid host", res, err)
				}
				removed = nvh.Hosts
			} else {
				if err != nil {
					t.Fatal(err)
				}
				if got := res.Selections[0].Host; got != tt.chosen {
					t.Fatalf("chose %s, want %s", got, tt.chosen)
				}
				removed = res.FilteredHosts
			}
			if len(removed[tt.removed]) != 1 {
				t.Fatalf("filtered %v, want one host removed by %s", removed, tt.removed)
			}
		})
	}
}

// TestDefaultFiltersNeverOvercommit checks on random hosts that whatever
// DefaultConfig selects has the free RAM (ratio 1.0 by default), disk
// and vCPUs the flavor asks for, in the requested zone.
func TestDefaultFiltersNeverOvercommit(t *testing.T) {
	r := rand.New(rand.NewSource(16))
	s, err := scheduler.New(scheduler.DefaultConfig(), scheduler.WithRand(r.Intn))
	if err != nil {
		t.Fatal(err)
	}
	placed := 0
	for i := 0; i < 300; i++ {
		hosts := make([]scheduler.HostState, 1+r.Intn(20))
		for j := range hosts {
			total := 1024 * (1 + r.Int63n(16))
			hosts[j] = scheduler.HostState{Host: fmt.Sprintf("h%d", j),
				AvailabilityZone: []string{"", "az1", "az2"}[r.Intn(3)],
				TotalUsableRAMMB: total, FreeRAMMB: r.Int63n(total + 1),
				TotalUsableDiskGB: 100, FreeDiskMB: r.Int63n(102401),
				VCPUsTotal: 1 + r.Int63n(16), VCPUsUsed: r.Int63n(64)}
		}
		req := scheduler.Request{Flavor: scheduler.Flavor{MemoryMB: 256 * (1 + r.Int63n(16)), VCPUs: 1 + r.Int63n(4), RootGB: r.Int63n(60)},
			AvailabilityZone: []string{"", "az1", "az2"}[r.Intn(3)]}
		hs, err := scheduler.NewHostSet(hosts)
		if err != nil {
			t.Fatal(err)
		}
		res, err := s.Select(hs, &req)
		if errors.Is(err, scheduler.ErrNoValidHost) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		placed++
		h := hosts[res.Selections[0].Index]
		f := req.Flavor
		if h.FreeRAMMB < f.MemoryMB || h.FreeDiskMB < f.RootGB*1024 || h.VCPUsTotal < f.VCPUs {
			t.Fatalf("case %d: %+v placed on %+v", i, f, h)
		}
		if req.AvailabilityZone != "" && req.AvailabilityZone != "nova" && h.AvailabilityZone != req.AvailabilityZone {
			t.Fatalf("case %d: zone %q placed on %+v", i, req.AvailabilityZone, h)
		}
	}
	if placed < 50 {
		t.Fatalf("only %d of 300 requests placed: the test checks too little", placed)
	}
}
