package dom0

import (
	"io/fs"
	"sync"
	"syscall"

	"github.com/xenflow/xenflow/vhd"
)

// diskFullHost is a Host whose files accept writes until a byte budget is
// spent, then fail with ENOSPC, like a full file system.
type diskFullHost struct {
	Host
	mu   sync.Mutex
	left int64
}

func (h *diskFullHost) OpenFile(name string, flag int, perm fs.FileMode) (vhd.File, error) {
	f, err := h.Host.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &diskFullFile{File: f, h: h, name: name}, nil
}

type diskFullFile struct {
	vhd.File
	h    *diskFullHost
	name string
}

func (f *diskFullFile) WriteAt(p []byte, off int64) (int, error) {
	f.h.mu.Lock()
	if int64(len(p)) > f.h.left {
		n := f.h.left
		f.h.left = 0
		f.h.mu.Unlock()
		if n > 0 {
			if _, err := f.File.WriteAt(p[:n], off); err != nil {
				return 0, err
			}
		}
		return int(n), &OpError{Host: f.h.String(), Op: "write", Path: f.name, Err: syscall.ENOSPC}
	}
	f.h.left -= int64(len(p))
	f.h.mu.Unlock()
	return f.File.WriteAt(p, off)
}
