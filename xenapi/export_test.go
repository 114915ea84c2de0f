package xenapi

import "time"

// ProcessCPUTime exposes processCPUTime to the external test package's
// benchmarks.
func ProcessCPUTime() time.Duration { return processCPUTime() }
