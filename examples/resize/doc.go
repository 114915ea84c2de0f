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
// larger root disk) to the other host while the guest keeps appending to
// its disk until the power-off, prints every state transition
// (vm_state/task_state/migration status), the driver's calls and steps and
// the progress (a bar on a terminal, plain lines otherwise), compares the
// destination disk byte for byte with what the guest wrote, confirms, and
// ends with one line: source and destination host, the transport, bytes
// sent while the guest ran and while it was powered off, the downtime
// (power-off to the destination guest's start) and the total time.
//
// Flags for the simulated pool:
//
//	-revert            revert instead of confirm (the disk is checked on the source again)
//	-migrate           cold-migrate with the same flavor
//	-migrate -suspend  move the guest suspended, keeping its running state
//	                   (refused when the driver does not support it)
//	-down              resize down: memory and vCPUs shrink
//	-hosts N           hosts in the pool (2)
//	-disk-mib N        size of the root disk (64)
//	-transport T       xapi (/export_raw_vdi into /import_raw_vdi) or dom0
//	                   (VHD chains between the control domains)
//	-json              the summary as one JSON object on the last line
//	-serve ADDR        serve the pool at ADDR and keep serving it after the
//	                   run, until interrupted, for any XenAPI client
//	-trace FILE        the run as a Mermaid sequence diagram (a Markdown page
//	                   when FILE ends in .md); docs/resize-sequence.md is the
//	                   default run's:
//
//	go run ./examples/resize -trace docs/resize-sequence.md
//
// A real pool: -xapi URL (repeatable, one per pool), -user U,
// -password-file F, -vm NAME-OR-UUID (adopted as the instance through the
// driver's Adopt), -memory-mib, -vcpus and -root-gib for the new flavor,
// -ssh-key K and -known-hosts F for the dom0 transport. With the xapi
// transport a pool needs nothing but its XenAPI endpoint, so
// examples/fakepool served on loopback is a real pool to it:
//
//	go run ./examples/fakepool -listen 127.0.0.1:8080 &
//	echo xenroot > pw
//	go run ./examples/resize -xapi http://127.0.0.1:8080/ -password-file pw \
//		-vm instance-1-1 -memory-mib 1024 -vcpus 2
//
// -db DSN keeps the Store and the quota in a database (package sqlstore):
// a SQLite file ("state.db") or PostgreSQL ("postgres://..."); the default
// is in memory, so the first run needs nothing. -no-confirm leaves the
// instance in VERIFY_RESIZE; a later run with the same -db and -confirm or
// -revert finishes it (without -db both are refused with a typed error).
// -resume (with -db and -xapi) drives to its end every resize, cold
// migration, confirm and revert a stopped run left unfinished in that
// database, prints each outcome and exits. -owner names the orchestrator
// in the Store's leases and -lease-ttl sets their period. Every lease
// granted and every step written goes into the database's fence log
// (sqlstore.WithFenceLog).
//
// Several orchestrators share the work on one PostgreSQL database:
// -submit adopts every guest VM of the -xapi pools as an instance whose
// system metadata requests a resize to the flavor -memory-mib, -vcpus and
// -root-gib give, charges the instances to the quota and exits; then each
// -worker process (its own -owner, the same -lease-ttl) takes over the
// operations whose leases expired (migrate's Resume, beside the rest),
// resizes and confirms the requested instances no one else holds,
// -parallel at a time, waits on PostgreSQL's LISTEN/NOTIFY (or the poll
// interval, half the lease period up to 1 s) while the others hold the
// rest, and exits when every one is confirmed or rolled back:
//
//	go run ./examples/fakepool -pools 4 -hosts 2 -vms 50 -disk-mib 1 &
//	resize -db postgres://... -xapi URL1 ... -xapi URL4 -password-file pw -submit -memory-mib 256
//	resize -db postgres://... -xapi URL1 ... -xapi URL4 -password-file pw -worker -owner o1 -lease-ttl 2s &
//	resize -db postgres://... -xapi URL1 ... -xapi URL4 -password-file pw -worker -owner o2 -lease-ttl 2s
//
// -cross-cell moves the instance between two cells of two hosts each (two
// simulated pools that never talk to each other) with migrate/crosscell's
// Conductor and the XenServer driver, the cross-cell policy on and the
// scheduler preferring the other cell; the summary shows the instance's
// cell before and after, and the root disk's content is checked by its
// SHA-256 where the VM runs, after the move and after the confirm or
// revert.
//
// Test hook: with XENFLOW_RESIZE_CRASH_AFTER=N in its environment and
// -db, the command counts each persisted step on stderr and kills itself
// with SIGKILL right after the N-th, so a crash test stops it at an exact
// step and checks what -resume makes of it.
//
// -h prints every flag. Exit status 0 on success and for -h, 1 when the
// run fails, 2 for bad flags.
package main
