package quota

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xenflow/xenflow/internal/cputime"
)

// tickClock is a benchmark clock that moves one microsecond per reading, so
// that settled reservations age out of the retention window and the ledger
// stays at a steady size however large b.N is.
type tickClock struct{ ns atomic.Int64 }

func (c *tickClock) Now() time.Time { return time.Unix(0, c.ns.Add(1000)) }

func benchLedger(b *testing.B, ids IDSource) *Ledger {
	b.Helper()
	clock := &tickClock{}
	opts := []Option{
		WithClock(clock.Now),
		WithRetention(time.Millisecond), // about 500 settled reservations remembered
		WithDefaultLimits(Limits{Instances: Unlimited, Cores: Unlimited, RAM: Unlimited}),
	}
	if ids != nil {
		opts = append(opts, WithIDs(ids))
	}
	l, err := NewLedger(opts...)
	if err != nil {
		b.Fatal(err)
	}
	return l
}

// reserveCommit makes one reserve+commit pair. It reports failures with
// b.Error, which (unlike b.Fatal) may be called from the benchmark's own
// goroutines, and tells the caller to stop.
func reserveCommit(b *testing.B, l *Ledger, project string, d Deltas) bool {
	id, err := l.Reserve(context.Background(), project, "u", d)
	if err != nil {
		b.Error(err)
		return false
	}
	if err := l.Commit(context.Background(), id); err != nil {
		b.Error(err)
		return false
	}
	return true
}

// BenchmarkReserveCommit measures one reserve+commit pair (an upsize of
// cores and RAM) on one goroutine. The target is ≥ 1,000,000 pairs/s.
func BenchmarkReserveCommit(b *testing.B) {
	d := UpsizeDelta(Flavor{VCPUs: 4, MemoryMB: 8192}, Flavor{VCPUs: 2, MemoryMB: 4096})
	for _, ids := range []struct {
		name string
		src  func() IDSource
	}{
		{"ids=default", func() IDSource { return nil }},
		{"ids=sequential", func() IDSource { return SequentialIDs("bench") }},
	} {
		b.Run(ids.name, func(b *testing.B) {
			l := benchLedger(b, ids.src())
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cputime.Process()
			for i := 0; i < b.N; i++ {
				if !reserveCommit(b, l, "project", d) {
					b.FailNow()
				}
			}
			b.StopTimer()
			reportPairs(b, cpu0)
		})
	}
}

// BenchmarkReserveCommitParallel runs reserve+commit pairs from g goroutines,
// each on its own project, and reports the total pairs per second; g=1 in
// the same run is the baseline that g=8 must not collapse below.
func BenchmarkReserveCommitParallel(b *testing.B) {
	d := UpsizeDelta(Flavor{VCPUs: 4, MemoryMB: 8192}, Flavor{VCPUs: 2, MemoryMB: 4096})
	for _, g := range []int{1, 8} {
		b.Run(fmt.Sprintf("goroutines=%d", g), func(b *testing.B) {
			l := benchLedger(b, nil)
			projects := make([]string, g)
			for i := range projects {
				projects[i] = "project-" + strconv.Itoa(i)
			}
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cputime.Process()
			var wg sync.WaitGroup
			for w := 0; w < g; w++ {
				n := b.N / g
				if w < b.N%g {
					n++
				}
				wg.Add(1)
				go func(project string, n int) {
					defer wg.Done()
					for i := 0; i < n && reserveCommit(b, l, project, d); i++ {
					}
				}(projects[w], n)
			}
			wg.Wait()
			b.StopTimer()
			reportPairs(b, cpu0)
		})
	}
}

// BenchmarkBaselineMapPair is the floor any ledger pays per pair: put a fresh
// string key into a mutex-guarded map and take it out again. It gives the
// ledger's cost a ratio against work measured in the same run.
func BenchmarkBaselineMapPair(b *testing.B) {
	var mu sync.Mutex
	m := map[string]*Reservation{}
	ids := SequentialIDs("bench")
	b.ReportAllocs()
	cpu0 := cputime.Process()
	for i := 0; i < b.N; i++ {
		id, _ := ids()
		mu.Lock()
		m[id] = &Reservation{ID: id}
		mu.Unlock()
		mu.Lock()
		delete(m, id)
		mu.Unlock()
	}
	b.StopTimer()
	reportPairs(b, cpu0)
}

// reportPairs reports pairs per second of wall time and, because the
// machine may be shared, the process CPU time per pair (user + system, all
// threads, garbage collector included), which other loads disturb less.
func reportPairs(b *testing.B, cpu0 time.Duration) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pairs/s")
	if cpu := cputime.Process(); cpu > 0 {
		b.ReportMetric(float64(cpu-cpu0)/float64(b.N), "cpu-ns/pair")
	}
}
