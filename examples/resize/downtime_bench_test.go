package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"sort"
	"strings"
	"testing"
)

// BenchmarkDowntime measures the downtime (power-off to the destination
// guest's start) of the default resize for a 1 GiB and an 8 GiB root
// disk with the same writes, one of each per iteration, and reports the
// medians and their ratio (target: within 20 %):
//
//	go test -run '^$' -bench Downtime -benchtime 5x ./examples/resize
func BenchmarkDowntime(b *testing.B) {
	sizes := []string{"1024", "8192"}
	samples := make([][]float64, len(sizes))
	for i := 0; i < b.N; i++ {
		for k, size := range sizes {
			samples[k] = append(samples[k], downtimeOf(b, size))
		}
	}
	m1, m8 := median(samples[0]), median(samples[1])
	b.ReportMetric(m1*1000, "downtime-1GiB-ms")
	b.ReportMetric(m8*1000, "downtime-8GiB-ms")
	b.ReportMetric(m8/m1, "ratio-8GiB/1GiB")
}

// downtimeOf runs the default resize with a root disk of size MiB and
// returns its downtime in seconds.
func downtimeOf(b *testing.B, size string) float64 {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"-disk-mib", size, "-json"}, &out, io.Discard); err != nil {
		b.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	var s summary
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &s); err != nil {
		b.Fatal(err)
	}
	return s.DowntimeSeconds
}

// median returns the middle of xs.
func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}
