package scheduler_test

import (
	"errors"
	"fmt"
	"math/rand"

	"github.com/xenflow/xenflow/scheduler"
)

func exampleHosts() []scheduler.HostState {
	mk := func(name, az string, freeRAM int64, enabled bool) scheduler.HostState {
		return scheduler.HostState{
			Host: name, Cell: "cell1", AvailabilityZone: az, Disabled: !enabled,
			TotalUsableRAMMB: 65536, FreeRAMMB: freeRAM, TotalUsableDiskGB: 1000, FreeDiskMB: 512000,
			VCPUsTotal: 32, VCPUsUsed: 8, HypervisorType: "xen", HypervisorVersion: 8002000,
			CPUArch: "x86_64", VMMode: "hvm",
		}
	}
	return []scheduler.HostState{
		mk("xs1", "az1", 16384, true),
		mk("xs2", "az1", 49152, true),
		mk("xs3", "az1", 65536, false), // disabled
		mk("xs4", "az2", 60000, true),
	}
}

// Select with the default filters (AvailabilityZoneFilter among them) and
// Nova's default weighers. The weight is 3: RAM, disk and CPU each
// normalise to 1 for the best host (equal free disk and vCPUs normalise to
// 1 too, since those weighers have minval 0).
func ExampleScheduler_Select() {
	hs, err := scheduler.NewHostSet(exampleHosts())
	if err != nil {
		panic(err)
	}
	cfg := scheduler.DefaultConfig()
	s, err := scheduler.New(cfg, scheduler.WithRand(rand.New(rand.NewSource(1)).Intn))
	if err != nil {
		panic(err)
	}
	res, err := s.Select(hs, &scheduler.Request{
		Flavor:           scheduler.Flavor{MemoryMB: 4096, VCPUs: 2, RootGB: 40},
		AvailabilityZone: "az1",
		ImageProperties:  map[string]string{"hw_vm_mode": "hvm"},
	})
	if err != nil {
		panic(err)
	}
	sel := res.Selections[0]
	fmt.Printf("%s (weight %.3f), alternates %v\n", sel.Host, sel.Weight, sel.Alternates)
	for _, fc := range res.FilteredOut {
		if fc.Removed > 0 {
			fmt.Printf("%s removed %d\n", fc.Filter, fc.Removed)
		}
	}
	// Output:
	// xs2 (weight 3.000), alternates [{xs1 xs1}]
	// AvailabilityZoneFilter removed 1
	// ComputeFilter removed 1
}

// maintenanceFilter is a filter of the caller's own: hosts whose name is in a
// maintenance list do not pass.
type maintenanceFilter struct{ hosts map[string]bool }

func (f maintenanceFilter) Name() string { return "MaintenanceFilter" }

func (f maintenanceFilter) HostPasses(h *scheduler.HostState, _ *scheduler.Request) bool {
	return !f.hosts[h.Host]
}

// A custom filter, named in the configuration like the built-ins.
func ExampleWithFilter() {
	hs, err := scheduler.NewHostSet(exampleHosts())
	if err != nil {
		panic(err)
	}
	cfg := scheduler.DefaultConfig()
	cfg.EnabledFilters = []string{"MaintenanceFilter", scheduler.ComputeFilterName}
	s, err := scheduler.New(cfg, scheduler.WithFilter(maintenanceFilter{hosts: map[string]bool{"xs4": true, "xs2": true, "xs1": true}}))
	if err != nil {
		panic(err)
	}
	_, err = s.Select(hs, &scheduler.Request{Flavor: scheduler.Flavor{MemoryMB: 1024}})
	if errors.Is(err, scheduler.ErrNoValidHost) {
		fmt.Println(err)
	}
	// Output:
	// no valid host was found (4 hosts, MaintenanceFilter removed 3, ComputeFilter removed 1)
}

// Consume keeps a host set current between requests, as Nova's host
// manager does with its cache: the second request sees the first one's
// instance.
func ExampleHostSet_Consume() {
	hs, err := scheduler.NewHostSet(exampleHosts())
	if err != nil {
		panic(err)
	}
	cfg := scheduler.DefaultConfig()
	cfg.Weighers = []string{scheduler.RAMWeigherName}
	s, err := scheduler.New(cfg)
	if err != nil {
		panic(err)
	}
	req := &scheduler.Request{Flavor: scheduler.Flavor{MemoryMB: 45056, VCPUs: 8}}
	for i := 0; i < 2; i++ {
		res, err := s.Select(hs, req)
		if err != nil {
			panic(err)
		}
		sel := res.Selections[0]
		fmt.Printf("%s had %d MB free\n", sel.Host, hs.Host(sel.Index).FreeRAMMB)
		if err := hs.Consume(sel.Index, req, fmt.Sprintf("instance-%d", i)); err != nil {
			panic(err)
		}
	}
	// Output:
	// xs4 had 60000 MB free
	// xs2 had 49152 MB free
}

// Flavor extra specs scoped "capabilities:" choose hosts by their
// attributes, with Nova's extra_specs_ops operators: here a hypervisor of
// at least 8.2.1 and a host name among two.
func ExampleFlavor_extraSpecs() {
	hosts := exampleHosts()
	hosts[0].HypervisorVersion = 8002001 // xs1
	hs, err := scheduler.NewHostSet(hosts)
	if err != nil {
		panic(err)
	}
	s, err := scheduler.New(scheduler.DefaultConfig(), scheduler.WithExplain())
	if err != nil {
		panic(err)
	}
	res, err := s.Select(hs, &scheduler.Request{Flavor: scheduler.Flavor{MemoryMB: 4096, VCPUs: 2,
		ExtraSpecs: map[string]string{
			"capabilities:hypervisor_version": ">= 8002001",
			"capabilities:host":               "<or> xs1 <or> xs4",
		}}})
	if err != nil {
		panic(err)
	}
	fmt.Println(res.Selections[0].Host, res.FilteredHosts[scheduler.ComputeCapabilitiesFilterName])
	// Output:
	// xs1 [xs2 xs4]
}
