//go:build !unix

package xmlrpc

import (
	"testing"
	"time"
)

// processCPUTime is not measured on this system.
func processCPUTime() time.Duration { return 0 }

// reportCPU reports nothing on this system.
func reportCPU(b *testing.B, cpu0 time.Duration, bytesPerOp int64) {}
