//go:build unix

package xmlrpc

import (
	"syscall"
	"testing"
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

// reportCPU adds CPU-time metrics to a benchmark that started measuring at
// cpu0: cpu-ns/op and, when bytesPerOp > 0, MB per CPU-second. On a shared
// machine these say what the code costs; wall-time ns/op and MB/s also
// count the time spent waiting for a CPU.
func reportCPU(b *testing.B, cpu0 time.Duration, bytesPerOp int64) {
	cpu := processCPUTime() - cpu0
	if cpu <= 0 || b.N == 0 {
		return
	}
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
	if bytesPerOp > 0 {
		b.ReportMetric(float64(bytesPerOp)*float64(b.N)/cpu.Seconds()/1e6, "cpu-MB/s")
	}
}
