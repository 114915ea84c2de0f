// Command schedule runs Nova's filter-and-weigh host selection on one JSON
// document read from stdin and writes the result as JSON to stdout.
//
// Input:
//
//	{"config": {"enabled_filters": [...], "weighers": [...],
//	            "<name>_weight_multiplier": 1.0, "host_subset_size": 1,
//	            "max_attempts": 3, "max_io_ops_per_host": 8,
//	            "max_instances_per_host": 50, "seed": 0},
//	 "hosts": [{"host": "h1", "node": "h1", "cell": "c1", "availability_zone": "az1",
//	            "enabled": true, "up": true, "total_usable_ram_mb": 65536,
//	            "free_ram_mb": 32768, "total_usable_disk_gb": 1000, "free_disk_mb": 512000,
//	            "vcpus_total": 32, "vcpus_used": 8, "num_io_ops": 0, "num_instances": 4,
//	            "failed_builds": 0, "ram_allocation_ratio": 1.5, "cpu_allocation_ratio": 16,
//	            "disk_allocation_ratio": 1, "hypervisor_type": "xen",
//	            "hypervisor_version": 8002000, "cpu_arch": "x86_64", "vm_mode": "hvm",
//	            "instances": ["uuid", ...], "aggregates": [{"name": "a", "metadata": {}}]}],
//	 "request": {"flavor": {"memory_mb": 2048, "vcpus": 2, "root_gb": 20,
//	                        "ephemeral_gb": 0, "swap": 0},
//	             "num_instances": 1, "image_properties": {}, "availability_zone": "az1",
//	             "ignore_hosts": [], "force_hosts": [], "force_nodes": [],
//	             "scheduler_hints": {"same_host": [], "different_host": []},
//	             "instance_group": {"policy": "anti-affinity", "hosts": [], "members": [],
//	                                "max_server_per_host": 1},
//	             "requested_cell": "c1", "allow_cross_cell_move": false,
//	             "tried_hosts": [{"host": "h2", "node": "h2"}]}}
//
// Output: {"weighed": [{"host", "node", "weight"}], "selected": [...],
// "alternates": [[{"host", "node"}]], "filtered_out": {"Filter": ["host"]}},
// or {"error": "...", "filtered_out": {...}} with exit status 1 when no
// host is valid. Bad input gives {"error": "..."} and exit status 2.
// Missing fields take Nova's defaults (the host capacities are required);
// unknown filter or weigher names, and unknown keys, are an error. Also
// read: config "shuffle_best_same_weighed_hosts", "default_availability_zone",
// "image_properties_default_architecture"; host "supported_instances"
// ([[arch, hv_type, vm_mode]]); request "instance_uuid" (the instance being
// moved), "instance_uuids" (one per instance of a multi-create),
// "requested_host" and "requested_node" (a requested destination).
package main
