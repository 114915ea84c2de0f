package cputime

import (
	"runtime"
	"testing"
)

// TestProcessGrows burns some CPU and checks that Process sees it.
func TestProcessGrows(t *testing.T) {
	if runtime.GOOS == "windows" || runtime.GOOS == "plan9" {
		t.Skip("CPU time is not measured here")
	}
	before := Process()
	if before <= 0 {
		t.Fatalf("Process() = %v before any work, want > 0", before)
	}
	x := 0
	for i := 0; i < 50_000_000; i++ {
		x ^= i * 7
	}
	if after := Process(); after <= before {
		t.Fatalf("Process() went from %v to %v across a busy loop (%d)", before, after, x)
	}
}
