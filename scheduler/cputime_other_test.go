//go:build !unix

package scheduler_test

import "time"

func processCPU() (time.Duration, bool) { return 0, false }
