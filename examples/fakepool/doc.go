// Command fakepool serves a simulated XenServer pool (package
// xenapi/xenapitest) over XenAPI's XML-RPC for any XenAPI client:
//
//	go run ./examples/fakepool -listen 127.0.0.1:8080 -hosts 3 -dir /tmp/pool
//
// It first prints exactly one line, "url=URL user=USER password=PASSWORD",
// then serves until interrupted (SIGINT or SIGTERM). The pool has a few VMs
// with disks (real VHD files under -dir), some of them running. The master
// listens on -listen; the other hosts listen on free ports of 127.0.0.1 and
// answer HOST_IS_SLAVE with the master's address.
package main
