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
// disk with the same writes, one of each per iteration (in turn first),
// and reports the medians and their ratio (target: within 20 %), with
// the bytes sent while the guest was off (the same for both: the last
// delta holds the guest's writes, not the disk's size):
//
//	go test -run '^$' -bench Downtime -benchtime 6x ./examples/resize
func BenchmarkDowntime(b *testing.B) {
	sizes := []string{"1024", "8192"}
	samples := make([][]float64, len(sizes))
	offBytes := make([][]float64, len(sizes))
	for i := 0; i < b.N; i++ {
		for j := range sizes {
			k := (i + j) % len(sizes) // alternate which size runs first
			s := summaryOf(b, sizes[k])
			samples[k] = append(samples[k], s.DowntimeSeconds)
			offBytes[k] = append(offBytes[k], float64(s.BytesSentPoweredOff))
		}
	}
	m1, m8 := median(samples[0]), median(samples[1])
	b.ReportMetric(m1*1000, "downtime-1GiB-ms")
	b.ReportMetric(m8*1000, "downtime-8GiB-ms")
	b.ReportMetric(m8/m1, "ratio-8GiB/1GiB")
	b.ReportMetric(median(offBytes[0])/(1<<20), "off-MiB-1GiB")
	b.ReportMetric(median(offBytes[1])/(1<<20), "off-MiB-8GiB")
}

// summaryOf runs the default resize with a root disk of size MiB and
// returns its summary.
func summaryOf(b *testing.B, size string) summary {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"-disk-mib", size, "-json"}, &out, io.Discard); err != nil {
		b.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	var s summary
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &s); err != nil {
		b.Fatal(err)
	}
	return s
}

// median returns the middle of xs.
func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}
