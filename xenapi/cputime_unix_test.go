//go:build unix

package xenapi

import (
	"syscall"
	"time"
)

// processCPUTime returns the user and system CPU time the process has used,
// so benchmarks can report CPU per operation next to wall time (which on a
// shared machine also counts waiting for a CPU).
func processCPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
