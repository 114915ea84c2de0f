//go:build unix

package scheduler_test

import (
	"syscall"
	"time"
)

// processCPU returns the CPU time (user + system) this process has used,
// to report benchmark cost independently of other load on the machine.
func processCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
