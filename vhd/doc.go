// Package vhd reads and writes VHD disk images the way XenServer's storage
// stack — blktap's libvhd, tapdisk and vhd-util — does, in pure Go, on any
// file-like storage: everything goes through the small FS and File
// interfaces (io.ReaderAt, io.WriterAt, Stat, Truncate, Sync), so the same
// code runs on a local directory (DirFS) and on a XenServer host's control
// domain over SFTP.
//
// # What it owns
//
//   - The format: the footer (with blktap's hidden byte at offset 85) and
//     its copy at offset 0, the dynamic header, parent locators (MacX,
//     W2ku, W2ru with relative paths as blktap writes them), the BAT,
//     sector bitmaps (MSB first), blktap's batmap, checksums and the CHS
//     geometry exactly as the specification computes it: Footer, Header,
//     ParentLocator, CHS, EncodeLocator, DecodeLocator.
//   - One file: Open, OpenFile, Create (dynamic or fixed), Disk.ReadAt,
//     Disk.WriteAt (blktap-like allocation), Disk.CopyFrom, Disk.SetHidden,
//     Disk.Resize.
//   - Chains: Snapshot, SetParent (what vhd-util modify -p rewrites),
//     OpenChain (leaf to base through the locators, relative to each
//     child's directory, each parent's UUID checked, at most 30 disks by
//     default like XenServer's SM), Chain.ReadAt, Chain.WriteTo (the whole
//     virtual disk as raw, streamed), Query (vhd-util query), Check
//     (vhd-util check), Coalesce (vhd-util coalesce), Resize.
//   - Chain assembly over an FS — sequence-numbered staging sets to
//     UUID-named SR files and back, with os-xenapi's import_vhds semantics:
//     see Import and Stage.
//
// # The creator it writes
//
// New files name creator application "tap" version 1.3 (host OS 0), as
// vhd-util does, and carry a valid batmap: blktap looks for a batmap in
// every "tap" file of version 1.2 or later and vhd-util check fails
// without one. Claiming blktap matters beyond XenServer: qemu (before
// 10.0) sizes a VHD by its CHS geometry unless the creator is one it
// trusts — "tap\0" among them — so a "tap" file reads at exactly its
// current size in qemu-img, libvhdi and blktap alike. The package keeps
// the batmap true as it writes: a block's bit is set when its sector
// bitmap becomes all ones, and the checksum covers what blktap's does (a
// region sized from curr_size>>24, a formula that assumes 2 MiB blocks).
//
// Layout follows vhd-util: footer copy at 0, header at 512, BAT at 1536,
// the batmap header and map after the sector-padded BAT, then for a
// differencing disk the three locator payloads (512 bytes each), then the
// blocks and the footer. New blocks are appended where the footer was, with
// the data area aligned to 4 KiB (gap sectors before the bitmap, as
// tapdisk does); the footer is written at the new end first and the BAT
// entry last, so an interrupted allocation only leaks space. A block's
// bitmap holds exactly the sectors written (not all ones as qemu writes),
// which is what a differencing disk needs; a write that covers part of a
// sector the disk does not hold completes the sector from the parents.
//
// # Compatibility
//
// Files written here are accepted by qemu-img (-f vpc: fixed and dynamic;
// qemu has no differencing support), by libvhdi (vhdiinfo, vhdimount,
// including chains), and pass Check, which re-implements every check
// vhd-util check makes (vhd-util itself is not packaged for Debian, so the
// tests compare with files blktap wrote instead: the metadata this package
// writes for create and snapshot is byte-identical to blktap's). Files
// written by blktap, qemu-img (including its CHS-rounded sizes), Hyper-V and
// Virtual PC are read, including 511-byte "short" footers and tapdisk
// 0.1/1.1 footers whose hidden byte was set without refreshing the
// checksum. Blocks of any power-of-two size from 512 bytes to 64 MiB are
// read; Create writes 4 KiB to 2 MiB (blktap only accepts 2 MiB, the
// default). Virtual sizes reach 2 TiB (qemu stops at 2040 GiB).
//
// A differencing disk may have a raw image as its parent (a null parent
// UUID, vhd-util snapshot -m): Snapshot with CreateOptions.RawParent makes
// one, and chains, Query, Check and Coalesce follow it.
//
// Not supported: SetParent onto a raw image, the Mac alias and deprecated
// Wi2r/Wi2k locators as parent paths, tapdisk's encryption keyhash, and
// shrinking (ErrShrink). Snapshot links the parent it is given; set
// CreateOptions.SkipEmptyAncestors for vhd-util's default of linking past
// empty differencing ancestors.
//
// # Errors
//
// A malformed file gives a *FormatError naming the file, the field
// ("footer.checksum", "bat[17]", "batmap.size"...), its offset and the
// reason in vhd-util's words; it wraps a sentinel (ErrNotVHD, ErrChecksum,
// ErrTruncated, ErrCorrupt, ErrUnsupported). A broken chain gives a
// *ParentError wrapping ErrParentNotFound, ErrParentMismatch or
// ErrParentLoop; a chain longer than the limit wraps ErrChainTooDeep. Bad
// input never panics, and no allocation follows a header's claim alone:
// the BAT and batmap are bounded by the virtual size (the entries it needs
// plus a sector's worth, or a 2 TiB disk's 2^20 when that is more) and
// every other table by the block size, before anything is read. A file
// claiming more is a *FormatError whatever its (possibly sparse, possibly
// remote) size. Opening a 2 TiB sparse disk costs its 4 MiB BAT and
// 128 KiB batmap; reading and streaming cost O(block size).
//
// Disks and chains are safe for concurrent use; reads run in parallel and
// writes to one disk are serialised. The package does no network I/O of its
// own and takes time and randomness from its caller (CreateOptions.Now,
// CreateOptions.Rand, CheckOptions.Now), defaulting to time.Now and
// crypto/rand.
package vhd
