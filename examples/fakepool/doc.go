// Command fakepool serves simulated XenServer pools (package
// xenapi/xenapitest) over XenAPI's XML-RPC, with xapi's disk handlers
// /export_raw_vdi and /import_raw_vdi, for any XenAPI client:
//
//	go run ./examples/fakepool -listen 127.0.0.1:8080 -hosts 3 -dir /tmp/pool
//
// It prints one line per pool, "url=URL user=USER password=PASSWORD", then
// serves until interrupted (SIGINT or SIGTERM). Each pool has a few VMs
// with disks (real VHD files under -dir) and a VIF on the pool's network,
// some of them running. A pool's master listens on -listen; the other
// hosts listen on free ports of 127.0.0.1 and answer HOST_IS_SLAVE with the
// master's address.
//
// -vms N seeds N running guests in each pool instead, guest-<pool>-001 …
// spread over its hosts in turn, each tagged with its own
// other_config:nova_uuid and with one root disk of -disk-mib MiB (64 by
// default) — the pools many orchestrators share in examples/resize's
// worker test:
//
//	fakepool -pools 4 -hosts 2 -vms 50 -disk-mib 1
//
// -pools K serves K standalone pools, their masters on consecutive ports
// from -listen's (with port 0, on a free run of ports); pool i keeps its
// files in DIR/pool<i>.
//
// -fault METHOD:N:CODE[:PARAM...] (repeatable) makes the N-th call of
// METHOD fail with the XenAPI error CODE and its parameters, in every
// pool: METHOD is a wire name ("VM.clean_shutdown", "Async.VM.start") or an
// HTTP handler's action (get_export_raw_vdi, put_import_raw_vdi,
// get_export_metadata, put_import_metadata); N counts from 1
// over the pool's life, and 0 fails every call. For example
//
//	fakepool -fault VM.clean_shutdown:1:VM_MISSING_PV_DRIVERS:OpaqueRef:NULL
//
// -h prints the usage and exits 0.
package main
