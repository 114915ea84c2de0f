// Package dom0 reaches a XenServer host's control domain (dom0) and moves VHD
// chains between hosts, doing from the controller what Nova's XenAPI plugin
// "migration" (transfer_vhd, move_vhds_into_sr) did inside dom0, with
// nothing to install on the host.
//
// # Hosts
//
// A Host is a dom0's file tree, seen with the host's own absolute paths
// (/var/run/sr-mount/<sr-uuid>/<vdi-uuid>.vhd), plus command execution. It
// satisfies vhd.FS, so the vhd package's chain code runs on a remote host's
// files as on local ones. Two implementations:
//
//   - DialSSH: one SSH connection (golang.org/x/crypto/ssh) reused by every
//     operation, carrying SFTP sessions (github.com/pkg/sftp) opened once at
//     dial time: one for metadata and reads, and a few more so that bulk
//     data has several flow-control windows in flight and writes use large
//     requests (SSHConfig.SFTPSessions). Host keys are
//     checked against known_hosts, asking the server for a key type recorded
//     there; SSHConfig.InsecureIgnoreHostKey turns the check off. Keys from
//     files (with passphrases), the ssh-agent and passwords; the context
//     bounds the TCP connect, the handshake and the SFTP start; keepalives
//     detect a dead peer (SSHHost.Err). Commands run with every argument
//     quoted (Quote) after "cd /"; cancelling the context kills them.
//   - Local: a directory of this machine standing for the host's "/": the
//     simulated pool's hosts (<dir>/<host>/var/run/sr-mount/...). Commands
//     run here, with the directory as working directory; pass RunPath(name)
//     to name a host file in a command on either implementation.
//
// # Moving a chain
//
// SendChain hard-links the chain (the leaf and its ancestors, through the
// parent locators) into a staging directory inside the source SR as
// 0.vhd (leaf), 1.vhd, ... (vhd.Stage), copies those files into the
// destination's staging directory, and removes the source staging.
// ImportChain then assembles the chain over the destination's files
// (vhd.Import: fresh UUIDs, parents relinked, every file checked, the leaf
// not hidden, renamed into the SR base first) and removes the staging
// directory. MoveChain does both. The destination staging directory is
// inside the destination SR (<sr>/xenflow-receive-instance<uuid>), so the
// final renames stay on one file system; ChainOptions.DestStagingRoot gives
// Nova's /images/instance<uuid> layout instead. On failure or cancellation
// both staging directories are removed and every cleanup error is reported
// (go-multierror); nothing in either SR is touched before the import's own
// checks pass.
//
// # Transfer
//
// Transfer copies files between two hosts through the controller: several
// files at once, each read and written in chunks by concurrent goroutines,
// each chunk split by pkg/sftp into concurrent requests (concurrent writes
// are on) of the size the server declares (limits@openssh.com; a limit
// under 4 KiB is not believed, and at most 64 requests of a file are in
// flight, so a hostile answer cannot multiply the requests). Memory for
// file data is bounded by TransferOptions.Buffers chunks for the whole
// transfer, whatever the number and size of the files. Progress is
// reported per file and overall.
//
// Every file is written under PartName(dst) and renamed to its final name
// only when complete and verified. The controller computes SHA-256 while
// reading the source, of each segment (TransferOptions.VerifySegment) and,
// with VerifyReadBack or TransferOptions.FileSHA256, of the whole file
// (TransferResult.SHA256). By default (VerifySHA256Sum) each segment is
// hashed on the destination host as soon as it is wholly written: the copy
// is read where it lies, no byte crosses the network twice, and the check
// overlaps the transfer instead of following it. On an SSHHost or a
// LocalHost one Python process per file (dom0 has Python 2.7 or 3; hashlib
// uses OpenSSL) reads the part file and answers each segment's request,
// then fsyncs it, so the copy reaches the disk while the transfer goes on;
// elsewhere each segment is one command, openssl or sha256sum fed by dd.
// VerifyReadBack reads the copy back through the controller instead, for
// hosts that cannot run commands. A later Transfer of the same file
// resumes a part file: its prefix, less the chunks whose writes may have
// been in flight, is kept if its SHA-256 on the destination equals that of
// the same prefix of the source, and only the rest is sent. The source's
// prefix is hashed on the source host, at the same time as the
// destination's; when the whole file's hash is wanted (FileSHA256,
// VerifyReadBack) the controller reads and hashes it instead, so that
// hash covers every byte.
//
// TransferDirect (ChainOptions.Direct) lets the source host push the files
// with its own scp, as Nova's rsync did, for hosts that trust each other;
// host keys are always checked there, and both ends are hashed on the hosts.
//
// # Safety
//
// Remote paths are built only from parsed UUIDs (vhd.UUID), sequence
// numbers and checked clean absolute paths; names listed by a peer are
// checked with CheckBaseName; ".." never climbs above a host's root.
// What would break the shared connection instead of failing one request
// is refused before it is sent: a NUL byte in a path (ErrBadName) or in a
// command's arguments, and a command line too long for the host
// (ErrBadArgument). Files and directories are created with their mode in
// the creating request itself, never chmodded afterwards; copies are 0600
// by default. Stat of a regular file over SSH carries its hard link count
// (FileStat), which vhd.Import needs to refuse a staged file still linked
// into an SR. Host keys that known_hosts marks @revoked, and hosts that
// offer no key of a recorded type, are refused with a *HostKeyError.
// Passwords and passphrases are held as Secret, which prints, logs and
// marshals as "REDACTED"; no error or log line carries a secret or key
// material.
package dom0
