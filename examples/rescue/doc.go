// Command rescue puts an instance into rescue and takes it out again with
// the orchestrator of package rescue and the XenServer driver of package
// xenserver, and shows that the rescue guest works on the instance's own
// disk.
//
//	go run ./examples/rescue
//
// With no flags it builds a simulated pool (package xenapi/xenapitest) of
// one host in a temporary directory, serves it on 127.0.0.1, and creates an
// instance (a running VM tagged other_config:nova_uuid) with data on its
// root disk, and a rescue image (a VDI tagged image-id, as Nova's image
// cache keeps images). It then:
//
//  1. rescues the instance: vm_state rescued, the original VM halted and
//     bootlocked, <name>-rescue running from the image with the original
//     root disk as userdevice 1 (the password drawn for it is printed
//     once);
//  2. writes a marker through the rescue VM's userdevice 1, as a person
//     repairing the disk would;
//  3. unrescues: the rescue VM and its own disk are gone, the original runs
//     again, not bootlocked, and the marker is on its root disk.
//
// Each state transition is printed, and the run ends with a one-line
// summary; -json prints it as one JSON object on the last line. -serve
// ADDR keeps serving the simulated pool after the run until interrupted,
// so any XenAPI client can look at the result.
//
// With -xapi URL (a real pool, or examples/fakepool served on loopback),
// -user, -password-file, -vm NAME-OR-UUID (the VM, adopted as the
// instance) and -rescue-image (the uuid of the VDI to boot the rescue VM
// from), the same rescue and unrescue run against that pool; the rescue
// VM's userdevice 1 is checked to be the original root disk, and no
// marker is written.
//
// -db DSN keeps the Store in a database (package sqlstore): a SQLite file,
// or postgres://... for PostgreSQL; the default is in memory. With -db and
// -xapi, -resume finishes every rescue and unrescue a stopped run left
// unfinished in that database (-vm names the VM, for its host) and exits.
//
// -h prints every flag. Exit status 0 on success and for -h, 1 when the
// run fails, 2 for bad flags.
package main
