package dom0

import (
	"context"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"time"

	"github.com/pkg/sftp"

	"github.com/xenflow/xenflow/vhd"
)

// FileStat is what Sys returns in the FileInfo an SSHHost gives for a
// regular file (Stat of a name or of an open file): the owner SFTP reports,
// and the number of hard links, which SFTP version 3 (the version OpenSSH
// speaks) does not carry and no OpenSSH extension reports (statvfs@openssh.com
// describes the file system, not the file). The link count is asked of the
// host with stat(1), one short command per Stat, and is believed only if
// the file stat(1) describes has the size and modification time SFTP gave.
// vhd.Import reads Nlink to refuse a staged file that is still linked
// into an SR.
type FileStat struct {
	UID, GID uint32
	// Nlink is the number of hard links; 0 when it could not be learnt
	// (no stat(1) on the host, no session left, or the file changed
	// between the two looks).
	Nlink uint64
}

// linkedFileInfo is a FileInfo whose Sys is a *FileStat.
type linkedFileInfo struct {
	fs.FileInfo
	sys *FileStat
}

func (fi linkedFileInfo) Sys() any { return fi.sys }

// withLinks adds the link count of the regular file p to fi.
func (h *SSHHost) withLinks(p string, fi fs.FileInfo) fs.FileInfo {
	if fi == nil || !fi.Mode().IsRegular() {
		return fi
	}
	st := &FileStat{Nlink: h.linkCount(p, fi)}
	if s, ok := fi.Sys().(*sftp.FileStat); ok {
		st.UID, st.GID = s.UID, s.GID
	}
	return linkedFileInfo{FileInfo: fi, sys: st}
}

// linkCountTimeout bounds the command that reads a link count.
const linkCountTimeout = 30 * time.Second

// linkCount runs stat(1) on the host for p's link count, size and
// modification time, and returns the link count if the size and time are
// fi's; 0 otherwise.
func (h *SSHHost) linkCount(p string, fi fs.FileInfo) uint64 {
	ctx, cancel := context.WithTimeout(context.Background(), linkCountTimeout)
	defer cancel()
	out, _, err := h.Run(ctx, []string{"stat", "-L", "-c", "%h %s %Y", "--", RunPath(p)})
	if err != nil {
		h.log.Debug("dom0: link count unknown", "host", h.name, "path", p, "err", err)
		return 0
	}
	n, size, mtime, err := parseLinkCount(out)
	if err != nil || size != fi.Size() || mtime != fi.ModTime().Unix() {
		h.log.Debug("dom0: link count unknown", "host", h.name, "path", p, "err", err, "size", size, "mtime", mtime)
		return 0
	}
	return n
}

// parseLinkCount reads stat -c '%h %s %Y' output: links, size, mtime, all
// decimal, on one line.
func parseLinkCount(out []byte) (links uint64, size, mtime int64, err error) {
	f := strings.Fields(string(out))
	if len(f) != 3 || len(out) > 64 || out[len(out)-1] != '\n' || strings.Count(string(out), "\n") != 1 {
		return 0, 0, 0, fmt.Errorf("stat printed %q, want links, size and time", clip(string(out)))
	}
	links, err = strconv.ParseUint(f[0], 10, 64)
	if err == nil {
		size, err = strconv.ParseInt(f[1], 10, 64)
	}
	if err == nil {
		mtime, err = strconv.ParseInt(f[2], 10, 64)
	}
	if err != nil || links == 0 || size < 0 {
		return 0, 0, 0, fmt.Errorf("stat printed %q, want links, size and time", clip(string(out)))
	}
	return links, size, mtime, nil
}

// statNoLinks is h.Stat without the link count, which costs an SSHHost a
// command: for dom0's own looks at a size.
func statNoLinks(h Host, name string) (fs.FileInfo, error) {
	if s, ok := h.(interface {
		statNoLinks(string) (fs.FileInfo, error)
	}); ok {
		return s.statNoLinks(name)
	}
	return h.Stat(name)
}

// fileStatNoLinks is f.Stat without the link count.
func fileStatNoLinks(f vhd.File) (fs.FileInfo, error) {
	if s, ok := f.(interface{ statNoLinks() (fs.FileInfo, error) }); ok {
		return s.statNoLinks()
	}
	return f.Stat()
}
