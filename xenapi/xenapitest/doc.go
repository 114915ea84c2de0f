// Package xenapitest is a simulated XenServer pool that speaks XenAPI: the
// fake every test of the XenServer driver and the flows runs against.
//
// # Model
//
// NewPool builds a pool of N hosts; the first is the master. Each host has a
// control domain (a VM with is_control_domain set), a PBD and a local SR of
// type "ext" whose VDIs are real VHD files made, snapshotted, resized and
// read with package vhd. The pool keeps xapi's database in memory: VM, VDI,
// VBD, SR, PBD, host, host_metrics, network, VIF, pool, task and session
// objects with xapi's field names, refs ("OpaqueRef:<uuid>") and uuids.
//
// # Directory layout
//
// Every host has a root directory that stands for its dom0 filesystem:
//
//	<Dir>/<host name_label>/                              Host.Root
//	<Dir>/<host name_label>/var/run/sr-mount/<sr-uuid>/   Host.SRPath
//	<Dir>/<host name_label>/var/run/sr-mount/<sr-uuid>/<vdi-uuid>.vhd
//
// so a dom0 handle rooted at Host.Root sees the same paths as on a real
// host (/var/run/sr-mount/<sr-uuid>/<vdi-uuid>.vhd). Files put there by
// other means (a chain moved into the SR) become VDIs on SR.scan; VDIs whose
// file is gone are forgotten by it.
//
// # Ways in
//
// Pool.Call (and Host.Call) dispatch in process, with the wire's parameters
// and the wire's value model (see Pool.Call). Pool.Handler and Host.Handler
// are http.Handlers that speak xapi's XML-RPC exactly (the codec of
// xenapi/internal/xmlrpc): methodCall in, {Status, Value} or {Status,
// ErrorDescription} out. Pool.Serve listens on 127.0.0.1 for every host.
// Calls to a host other than the master answer HOST_IS_SLAVE with the
// master's address, so set addresses (Host.SetAddress, or Serve) to what a
// client can reach.
//
// # Disk data over HTTP
//
// Every host's Handler also serves xapi's disk handlers (export_raw_vdi.ml,
// import_raw_vdi.ml), with vhd-tool's stream format:
//
//	GET /export_raw_vdi?session_id=S&vdi=V[&format=raw|vhd][&base=B][&task_id=T]
//	PUT /import_raw_vdi?session_id=S&vdi=V[&format=raw|vhd][&task_id=T]
//
// V and B are refs or uuids; parameters may also come as cookies, and HTTP
// basic auth may stand for session_id (a session made for the request).
// format=raw (the default) sends or writes the virtual disk's bytes;
// format=vhd sends a dynamic VHD of the blocks the VDI's chain holds, or
// with base a differencing VHD (parent = B's file) of every 2 MiB block
// allocated in either chain above the disk the two share, read from V;
// a VHD import writes the sectors the stream's bitmaps hold and nothing
// else, ignoring the stream's parent. Checked in xapi's order: credentials
// (401 with WWW-Authenticate), the VDI (HTTP 500 naming
// UUID_INVALID [VDI, v]), the host (302 to the host that sees the SR,
// same path and query), the format (404), for a VHD import any
// Transfer-Encoding (403), VDI_TOO_LARGE [vdi, 2190433320960] for VHDs
// over MaxVHDSize. Errors are HTTP 500 with an HTML body holding
// "Server_error(CODE, [ p1; p2 ])". A base on another SR or chain is
// VDI_IO_ERROR ["Device I/O errors"] (vhd-tool fails), a malformed stream
// too. Every request runs under a task: task_id's (which task.cancel
// stops, even before the request starts), or one the pool makes and names
// in the "task-id" header; the task gets the progress and the outcome. An
// export's body ends when the connection closes, as xapi's does (no
// Content-Length unless Options.ExportContentLength); an export that fails
// or is cancelled after its 200 cuts the connection, and only the task
// tells why. Where xapi answers an import with 200 before reading it, the
// pool answers after, with 500 on failure. Requests appear in the call log
// as ExportRawVDIAction and ImportRawVDIAction and take faults like calls
// (a Delay ends early when their task is cancelled); Fault.CutAfter stops
// their stream part-way (a short export, an import that stops), for
// testing a client's handling of broken transfers.
//
// # What xapi does that the pool does too
//
//   - The dispatcher: MESSAGE_METHOD_UNKNOWN [method];
//     MESSAGE_PARAMETER_COUNT_MISMATCH [method, expected, received] where
//     the counts leave out the session and defaulted parameters and a call
//     with defaulted parameters may send more; VM_get_record as an
//     alternative to VM.get_record (not for Async); Async.<call> of a call
//     without an Async form answers an XML-RPC fault; MESSAGE_REMOVED for
//     VDI.resize_online (unless Options.ResizeOnline).
//   - Sessions: login_with_password (SESSION_AUTHENTICATION_FAILED [] for
//     wrong credentials), logout, SESSION_INVALID [handle].
//   - Generated calls for every class: get_record, get_by_uuid
//     (UUID_INVALID [class, uuid]), get_all, get_all_records,
//     get_all_records_where and get_all_where (xapi's filter language),
//     get_by_name_label, get_<field>, and for RW fields set_<field>,
//     add_to_/remove_from_<map> (MAP_DUPLICATE_KEY [class, field, uuid,
//     key]) and add_/remove_<set>. HANDLE_INVALID [class, ref] for refs
//     that name nothing.
//   - VM power states and transitions, checked in xapi's order:
//     blocked_operations (OPERATION_BLOCKED [vm, value]), then power state
//     (VM_BAD_POWER_STATE [vm, expected, actual], with expected states
//     lowercase and joined by ", " as xapi writes them), then templates,
//     snapshots and the control domain. start, start_on, clean/hard
//     shutdown, shutdown, clean/hard reboot, suspend, resume, resume_on,
//     pause, unpause, destroy, snapshot, clone, copy. A VM's
//     allowed_operations is computed from the same checks.
//   - VM.create with xapi's constructor rules: missing required fields fail
//     with INTERNAL_ERROR [Server_helpers.Dispatcher_FieldNotFound("f")],
//     extra keys are ignored; memory order static_min ≤ dynamic_min ≤
//     dynamic_max ≤ static_max (MEMORY_CONSTRAINT_VIOLATION_ORDER []) and
//     0 < VCPUs_at_startup ≤ VCPUs_max (INVALID_VALUE [rule, value]) on
//     create and in the setters, which need the VM halted.
//   - Starting a VM checks that its disks' files exist (VDI_MISSING), that
//     their local SR is on the host it starts on (VM_REQUIRES_SR), that no
//     other attached VBD writes the same VDI (VDI_IN_USE) and that the
//     host has the memory (HOST_NOT_ENOUGH_FREE_MEMORY).
//   - VDI.snapshot and VM.snapshot build real differencing chains as a
//     file-based SR does: the VDI's file becomes a hidden, read-only base
//     copy (an unmanaged VDI named "base copy") under a new uuid, the VDI
//     keeps its uuid on a new empty leaf that the VM goes on writing to,
//     and the snapshot is a second leaf over the base copy. sm_config
//     "vhd-parent" names each leaf's parent, as on XenServer.
//   - VDI.create (sizes rounded up to 2 MiB as SM does), VDI.resize (grow
//     only, detached; shrinking answers SR_BACKEND_FAILURE_79), VDI.destroy
//     (removes the file; a file other files depend on is kept as a hidden
//     base copy), VDI.copy, VDI.clone, VDI.forget, SR.scan, SR.update.
//   - VBD.create (DEVICE_ALREADY_EXISTS, "autodetect"), plug, unplug,
//     unplug_force, destroy, insert, eject, with DEVICE_ALREADY_ATTACHED /
//     DEVICE_ALREADY_DETACHED.
//   - Chains are at most 30 disks deep, as blktap opens them: a snapshot
//     past that answers SR_BACKEND_FAILURE_109.
//   - Async.<call> returns a task; the task's status, progress, result
//     (the "<value>…</value>" string, as xapi stores it) and error_info
//     follow the call; task.cancel, task.destroy, task.create.
//   - event.from with tokens, "*", class and class/ref subscriptions,
//     blocking until a change or the timeout, without holding up other
//     calls; event.inject.
//   - Shared SRs (Options.SharedSR): one "nfs" SR every host sees, the
//     pool's default_SR and suspend_image_SR; a VM whose disks are on it
//     starts, resumes and plugs on any host.
//   - Host memory as xapi counts it: host.compute_free_memory and
//     host_metrics.memory_free are the host's RAM minus the control
//     domain's and every resident VM's memory_target (plus overheads);
//     a start that does not fit memory_static_max answers
//     HOST_NOT_ENOUGH_FREE_MEMORY [needed, available].
//   - Networks and VIFs: the default network (DefaultNetworkName, bridge
//     xenbr0), network.create/destroy (NETWORK_CONTAINS_VIF [vifs]),
//     VIF.create (INVALID_DEVICE, DEVICE_ALREADY_EXISTS, MAC_INVALID, a
//     made-up MAC for ""), VIF.destroy, plug, unplug; VIFs are attached
//     while their VM runs, copied by VM.snapshot (same MAC) and
//     VM.clone/copy (new MAC), destroyed with their VM.
//   - Suspend images: VM.suspend writes the domain's state into a new VDI
//     of type suspend and of the VM's memory size (on the VM's suspend_SR,
//     else the pool's suspend_image_SR, else the host's, whichever the
//     host sees) named by suspend_VDI; VM.resume and resume_on check and
//     consume it (the VM runs where the image and the disks are seen);
//     VM.hard_shutdown and VM.destroy of a suspended VM destroy it;
//     VM.set_suspend_VDI takes only a VDI of identical content
//     (SUSPEND_VDI_REPLACEMENT_IS_NOT_IDENTICAL ["uuid : md5", ...]).
//   - host.call_plugin with plugins a test registers (RegisterPlugin):
//     XENAPI_MISSING_PLUGIN naming the plugin for others, a plugin's *Failure
//     passed through, any other plugin error as XENAPI_PLUGIN_FAILURE
//     [fn, "Exception", message].
//
// # Test hooks
//
//   - AddVM builds VMs with disks without leaving entries in the call log.
//   - WriteGuestDisk writes as the guest into a running VM's leaf VHD;
//     WriteVDI and ReadVDI prepare and read disk content.
//   - InjectFault / FailNth make the n-th use of a call fail with a chosen
//     code, or delay it; Calls lists every call made (method, use number,
//     arguments, error), so a test can sweep every fault point of a flow:
//     run it once, then once per CallRecord with Fault{Method: r.Method,
//     N: r.N}. A fault on an Async call shows in its task. Calls whose
//     number depends on timing (task polling, event.from) are better
//     swept with N 0 or left out.
//   - RegisterPlugin answers host.call_plugin.
//
// The call log never holds a session ref: the session a call is made
// with is left out, any other argument naming a session shows as
// "OpaqueRef:(session)", and passwords as ***.
//
// # HTTP
//
// Serve's servers bound every wait on a client (Options.HTTPTimeouts):
// the request's headers (ReadHeader, 10 s), an XML-RPC body (Body, 60 s
// for the whole body), a disk stream (Body again, as the longest pause
// between two reads or writes, so a large transfer may take as long as it
// keeps moving) and a kept-alive connection's idle time (Idle, 2 min). The
// body limits hold for handlers served by any net/http server.
//
// # What is not simulated
//
// JSON-RPC (/jsonrpc), TLS (serve the Handler with httptest.NewTLSServer
// if needed), PIFs, consoles, metrics objects other than host_metrics,
// templates and VM.provision, live migration (VM.pool_migrate,
// migrate_send), VDI.introduce, ballooning, the storage garbage
// collector's coalescing (Pool.CollectGarbage only deletes orphaned base
// copies, when a test asks), choosing a host by free memory (a VM with
// nothing but shared disks starts on its affinity host, else the master),
// current_operations and the allowed_operations of classes other than VM
// (left empty or fixed), RBAC, session limits and task expiry, and HA. Wrong parameter types answer
// FIELD_TYPE_ERROR [parameter], where xapi's answer varies.
package xenapitest
