// Package xenserver is the XenServer / XCP-ng side of the flows: a
// compute.Driver over an inventory of pools, modelled on Nova's XenAPI
// driver (nova/virt/xenapi/driver.py, vmops.py, vm_utils.py) but driven
// from the controller, on every SR type, with pluggable disk transports.
//
// # Inventory and sessions
//
// Config.Inventory maps each compute host (Nova's instance.host) to a pool
// endpoint (URL, TLS policy: CA pool or pinned certificate fingerprints,
// credentials), the XenServer host (uuid or name_label), the SR that holds
// instance disks, the disk transport and optional dom0 access. Hosts of one
// pool share one xenapi.Client and one session, logged in at first use;
// the client logs in again on SESSION_INVALID and follows a new master
// (HOST_IS_SLAVE). Hosts that are each their own pool have an endpoint
// each. A host or SR the pool does not have is a *NotInPoolError at first
// use; a compute host the inventory does not list is an
// *UnknownHostError. Passwords are of type Password, which never prints.
//
// # Instances on VMs
//
// An instance's VM is the one guest VM of the pool whose
// other_config:nova_uuid is the instance's uuid (as Nova tags it; never by
// name alone), on the compute host's XenServer host (resident there, or
// halted with its affinity there). Two VMs claiming one instance is a
// *DuplicateInstanceError.
//
// # Resize and cold migration
//
// MigrateDiskAndPowerOff (nova/virt/xenapi/vmops.py,
// _migrate_disk_resizing_up) refuses a root or ephemeral shrink, and
// root_gb going to 0, before touching anything (*compute.InstanceFaultRollback
// wrapping a *ResizeRefusedError). Otherwise, for a running guest, it
// snapshots each disk and sends the snapshot whole while the guest runs;
// while the data written since the last snapshot exceeds
// MigrateConfig.PreCopyThreshold it snapshots again and sends the delta
// (at most MaxPreCopyRounds times), so the downtime is set by the last
// delta and not by the guest's write rate; then it powers the guest off
// (clean, hard after the timeout), sends what changed since the last
// snapshot, tags the destination disks complete, and keeps the source as
// <name>-orig: its other_config:nova_uuid moves to xenflow_orig_of (with
// xenflow_migration, the migration's uuid) in one call, so exactly one VM
// claims the instance at any time. Progress goes to the request's
// ProgressFunc at each step. On any failure it puts the source back as it
// was (tags, name, running if it ran), removes the copies and its
// snapshots, and returns *compute.InstanceFaultRollback.
//
// When source and destination see the same SR (a shared SR in one pool) no
// bytes move: the guest is powered off and each disk cloned (VDI.clone,
// copy-on-write), so a revert finds the original untouched.
//
// FinishMigration (vmops.py, finish_migration) checks the destination
// disks (present, tagged complete by this migration, the size sent), grows
// the root disk to root_gb and the ephemeral disks to their share of
// ephemeral_gb with VDI.resize (vmops.py, _resize_up_vdis), creates the
// VM with the new flavor (VM.create with memory static_min ≤ dynamic_min ≤ dynamic_max ≤
// static_max and VCPUs_max, VCPUs_at_startup, as vm_utils.py create_vm),
// its VBDs and its VIFs (the source's devices and MACs, on the network of
// the same uuid in one pool, else of the same name_label; a missing
// network is refused before the VM is made), tags it nova_uuid and
// xenflow_migration, and starts it on the destination host unless the
// instance was stopped. ConfirmMigration
// destroys the <name>-orig VM and the disks no other VM uses, and only
// after it found the destination VM. FinishRevertMigration renames
// <name>-orig back, gives it nova_uuid again and starts it unless the
// instance was stopped. Destroy with a migration removes only the VM and
// disks that migration made on the host.
//
// # Suspended cold migration
//
// A cold migration with MigrateDiskRequest.Suspend (never built by Nova)
// keeps the guest's running state, within a pool and across pools, as
// xapi's own VM.migrate_send moves a suspended VM
// (xapi_vm_migrate.ml, inter_pool_metadata_transfer): VM.suspend, the
// disks and the suspend image copied, the source kept as a suspended
// <name>-orig; FinishMigration exports the -orig's metadata
// (/export_metadata), makes it the destination VM's (nova_uuid and the
// migration, its disks and suspend image mapped onto the copies, VIFs
// recreated with their MACs, CDs emptied) and imports it
// (/import_metadata), which makes the VM Suspended, then resumes it on
// the destination host (VM.resume_on). XenAPI makes a suspended VM in no
// other way. A flavor that changes memory or vCPUs is refused
// (*SuspendRefusedError). Confirm and revert are the cold move's; a
// revert resumes the -orig.
//
// Every method is idempotent: what it makes is tagged with the
// migration's uuid, so a repeated call (after a crash or a cancellation at
// any call) finds it and finishes the job, or finds it done.
//
// # Disk transports
//
// The Transport interface (transport.go) moves one disk's data in steps:
// Begin, Send (whole, then deltas), Finish or Abort. The "xapi" transport,
// the default, streams GET /export_raw_vdi?format=vhd[&base=] from the
// source pool into PUT /import_raw_vdi?format=vhd on a VDI it created on
// the destination SR, through the controller with a fixed buffer,
// Content-Length passed on, SHA-256 of what went through; each import
// and each export runs under a task the relay creates (task_id) and waits
// for, since xapi reports the import's outcome in its task, and a
// cancelled context or a relay that stops early cancels them
// (task.cancel); progress is the bytes the controller
// relayed, counted as they pass; disks over 2040
// GiB (VDI_TOO_LARGE) and disks larger than the destination SR's free
// space are refused before anything moves; with TransferConfig.Verify the
// copy and the source are exported back as raw and compared.
// TransferConfig caps the transfers per host (more wait their turn) and
// the bandwidth of each (a token bucket, RateLimiter).
package xenserver
