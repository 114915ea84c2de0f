// Command vhdutil is a work-alike of blktap's vhd-util, the tool XenServer
// and Nova drive VHD files with, built on the vhd package:
//
//	vhdutil create   -n FILE -s MiB [-r]          dynamic disk (fixed with -r)
//	vhdutil snapshot -n CHILD -p PARENT           differencing child of PARENT
//	vhdutil query    -n FILE [-v] [-s] [-p] [-f] [-d] [-a]
//	vhdutil modify   -n FILE -p PARENT            relink FILE to PARENT
//	vhdutil set      -n FILE -f hidden -v 0|1
//	vhdutil check    -n FILE [-t] [-I] [-b]       "FILE is valid" or the reason
//	vhdutil coalesce -n FILE                      FILE's sectors into its parent
//	vhdutil read     -n FILE -o RAW|-             the chain's virtual disk as raw
//	vhdutil write    -n FILE -i RAW -O OFFSET     raw bytes into FILE at OFFSET
//	vhdutil resize   -n FILE -s MiB               grow the virtual size
//	vhdutil import   -d STAGING_DIR -s SR_DIR     staged chain into an SR; prints the leaf UUID
//	vhdutil stage    -s SR_DIR -u LEAF_UUID -d STAGING_DIR [-q FIRST_SEQ] [-l DEPTH]
//	vhdutil scan     -d DIR                       one line per VHD
//
// query prints, in this order and in vhd-util's words: -v the virtual size
// in MiB, -s the physical size in bytes, -p the parent's path (or "FILE has
// no parent"), -f "hidden: N", -d "chain depth: N", -a the number of
// allocated blocks. Flags may be combined
// as vhd-util's callers do ("-vsfp"). check's -t ignores timestamps in the
// future, -I skips the parent UUID comparison, -b looks for data where the
// sector bitmap is clear, as vhd-util check's flags of the same names.
//
// read writes a regular file sparsely, as qemu-img convert does: blocks no
// disk of the chain allocates are not read, blocks that read as zeros are
// not written, and the file is then truncated to the virtual size, so an
// empty 2 TiB disk costs no space. "-o -" writes to stdout; a pipe or a
// device named by -o gets every byte. The output file is created 0600.
//
// import refuses staged files that are still hard links into another
// directory, as the files "stage" makes are into their SR: import rewrites
// each file's headers in place (new parent UUIDs and locators), which
// would rewrite the source SR's disks too. Copy the staging directory (as
// rsync does between hosts), or import on the destination host.
//
// check prints its verdict on stdout ("FILE is valid", "FILE is invalid:
// reason"); a file it cannot read at all is an error on stderr alone.
// Exit status: 0 on success; 22 (EINVAL, as vhd-util) when a VHD is invalid
// or a parent cannot be found; 2 for a usage error; 1 for any other
// failure.
package main
