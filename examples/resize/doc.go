// Command resize is xenflow's main job: it resizes an instance between
// XenServer hosts with the orchestrator of package migrate and the
// driver of package xenserver, and shows what happens.
//
//	go run ./examples/resize
//
// With no flags it builds a simulated pool (package xenapi/xenapitest) of
// two hosts with local SRs in a temporary directory and serves it on
// 127.0.0.1; the instance runs on the first host, its root disk a VHD chain
// of several layers (data written, VDI.snapshot, more data, ...). It
// resizes the instance up (1 vCPU, 512 MiB to 2 vCPUs, 1024 MiB and a
// larger root disk) while the guest keeps appending to its disk until the
// power-off, prints every state transition (vm_state/task_state/migration
// status), the driver's steps and the progress (a bar on a terminal,
// plain lines otherwise), compares the destination disk byte for byte
// with what the guest wrote, confirms, and ends with one line: source and
// destination host, bytes sent while the guest ran and while it was
// powered off, the downtime (power-off to the destination guest's start)
// and the total time.
//
// -h prints every flag. Exit status 0 on success and for -h, 1 when the
// run fails, 2 for bad flags.
package main
