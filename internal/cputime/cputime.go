// Package cputime measures the CPU time this process has used, so that
// benchmarks can report what an operation costs next to its wall time
// (which, on a shared machine, also counts waiting for a CPU).
package cputime

import (
	"testing"
	"time"
)

// Report adds cpu-ns/op to b and, when bytesPerOp > 0, cpu-MB/s (MB moved
// per CPU-second), for the CPU time used since cpu0 (a value of Process).
// It reports nothing where CPU time is not measured.
func Report(b *testing.B, cpu0 time.Duration, bytesPerOp int64) {
	cpu := Process() - cpu0
	if cpu0 == 0 || cpu <= 0 || b.N == 0 {
		return
	}
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
	if bytesPerOp > 0 {
		b.ReportMetric(float64(bytesPerOp)*float64(b.N)/cpu.Seconds()/1e6, "cpu-MB/s")
	}
}
