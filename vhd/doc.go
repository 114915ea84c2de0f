// Package vhd reads and writes VHD disk images the way XenServer's storage
// stack (blktap's libvhd, tapdisk and vhd-util) does: fixed, dynamic and
// differencing disks, chains of them, and the vhd-util operations XenServer
// and Nova rely on.
package vhd
