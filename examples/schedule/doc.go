// Command schedule runs Nova's filter-and-weigh host selection on one JSON
// document and writes the result as JSON to stdout.
//
//	schedule [-in FILE] [< FILE]
//
// It reads the document from -in FILE, or from stdin; -h prints the usage.
// examples/schedule/testdata/request.json is a complete example:
//
//	go run ./examples/schedule -in examples/schedule/testdata/request.json
//
// Input, with every key the document may hold (a valid document as it
// stands; leave out what you do not need):
//
//	{
//	  "config": {
//	    "enabled_filters": ["RetryFilter", "AvailabilityZoneFilter", "RamFilter", "DiskFilter",
//	      "CoreFilter", "ComputeFilter", "ComputeCapabilitiesFilter", "ImagePropertiesFilter",
//	      "ServerGroupAntiAffinityFilter", "ServerGroupAffinityFilter"],
//	    "weighers": ["RAMWeigher", "DiskWeigher", "CPUWeigher", "IoOpsWeigher"],
//	    "ram_weight_multiplier": 1.0, "disk_weight_multiplier": 1.0,
//	    "cpu_weight_multiplier": 1.0, "io_ops_weight_multiplier": -1.0,
//	    "build_failure_weight_multiplier": 1000000.0,
//	    "cross_cell_move_weight_multiplier": 1000000.0,
//	    "soft_affinity_weight_multiplier": 1.0, "soft_anti_affinity_weight_multiplier": 1.0,
//	    "host_subset_size": 1, "shuffle_best_same_weighed_hosts": false, "max_attempts": 3,
//	    "max_io_ops_per_host": 8, "max_instances_per_host": 50,
//	    "default_availability_zone": "nova", "image_properties_default_architecture": "x86_64",
//	    "seed": 0
//	  },
//	  "hosts": [
//	    {"host": "xs1", "node": "xs1", "cell": "cell1", "availability_zone": "az1",
//	     "enabled": true, "up": true,
//	     "total_usable_ram_mb": 65536, "free_ram_mb": 32768,
//	     "total_usable_disk_gb": 1000, "free_disk_mb": 512000,
//	     "vcpus_total": 32, "vcpus_used": 8, "num_io_ops": 0, "num_instances": 4,
//	     "failed_builds": 0,
//	     "ram_allocation_ratio": 1.0, "cpu_allocation_ratio": 16.0, "disk_allocation_ratio": 1.0,
//	     "hypervisor_type": "xen", "hypervisor_version": 8002000,
//	     "cpu_arch": "x86_64", "vm_mode": "hvm",
//	     "supported_instances": [["x86_64", "xen", "hvm"], ["x86_64", "xen", "xen"]],
//	     "instances": ["5d1f0e52-8a2b-4c9e-9a51-2f0c3b7e6a10"],
//	     "aggregates": [{"name": "gold", "metadata": {"ram_weight_multiplier": "2.0"}}]}
//	  ],
//	  "request": {
//	    "flavor": {"memory_mb": 2048, "vcpus": 2, "root_gb": 20, "ephemeral_gb": 0, "swap": 0,
//	               "extra_specs": {"capabilities:hypervisor_type": "s== xen"}},
//	    "num_instances": 1,
//	    "instance_uuid": "0b6f3c8e-2d47-4a1e-8c55-7e9d2a4f1b03",
//	    "instance_uuids": ["0b6f3c8e-2d47-4a1e-8c55-7e9d2a4f1b03"],
//	    "image_properties": {"hw_architecture": "x86_64", "img_hv_type": "xen",
//	                         "hw_vm_mode": "hvm", "img_hv_requested_version": ">=8.0"},
//	    "availability_zone": "az1",
//	    "ignore_hosts": [], "force_hosts": [], "force_nodes": [],
//	    "scheduler_hints": {"same_host": [], "different_host": []},
//	    "instance_group": {"policy": "anti-affinity", "hosts": [], "members": [],
//	                       "max_server_per_host": 1},
//	    "requested_host": "", "requested_node": "",
//	    "requested_cell": "cell1", "allow_cross_cell_move": false,
//	    "tried_hosts": [{"host": "xs2", "node": "xs2"}]
//	  }
//	}
//
// The request is required; the host capacities (total_usable_ram_mb,
// free_ram_mb, total_usable_disk_gb, free_disk_mb, vcpus_total) are
// required; everything else takes Nova's default (enabled_filters: Nova's
// pre-Placement defaults with CoreFilter, as above; see package
// scheduler). Unknown keys, filter names and weigher names are an error.
// Notes: "instance_uuid" is the instance being moved, "instance_uuids"
// one per instance of a multi-create; "requested_host" and
// "requested_node" name a requested destination; "tried_hosts" also reads
// [["host", "node"]]; a scheduler hint may be one string.
//
// Output: {"weighed": [{"host", "node", "weight"}], "selected": [...],
// "alternates": [[{"host", "node"}]], "filtered_out": {"Filter": ["host"]}},
// or {"error": "...", "filtered_out": {...}} with exit status 1 when no
// host is valid. Bad input (also multipliers that would make a weight
// infinite) gives {"error": "..."} and exit status 2.
package main
