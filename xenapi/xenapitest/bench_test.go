package xenapitest_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/xenflow/xenflow/xenapi"
	"github.com/xenflow/xenflow/xenapi/xenapitest"
)

func benchPool(b *testing.B) (*xenapitest.Pool, *xenapi.Client, xenapi.VMRef) {
	b.Helper()
	p, err := xenapitest.NewPool(xenapitest.Options{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.Close() })
	vm, err := p.AddVM(xenapitest.VMSpec{Name: "bench", Disks: []int64{2 << 20}, Running: true})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(p.Handler())
	b.Cleanup(srv.Close)
	c, err := xenapi.NewClient(srv.URL)
	if err != nil {
		b.Fatal(err)
	}
	if err := c.Login(context.Background(), p.User(), p.Password(), "bench"); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close(context.Background()) })
	return p, c, xenapi.VMRef(vm.Ref)
}

// BenchmarkHTTPGetRecord measures VM.get_record over HTTP on loopback from 8
// goroutines; calls/s is the throughput.
func BenchmarkHTTPGetRecord(b *testing.B) {
	_, c, vm := benchPool(b)
	ctx := context.Background()
	b.SetParallelism((8 + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.VM.GetRecord(ctx, vm); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "calls/s")
}

// BenchmarkInProcessGetRecord is the same call without HTTP, the baseline
// for the wire's cost.
func BenchmarkInProcessGetRecord(b *testing.B) {
	p, c, vm := benchPool(b)
	ctx := context.Background()
	s := string(c.Session())
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if _, err := p.Call(ctx, "VM.get_record", s, string(vm)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "calls/s")
}

// BenchmarkDelayedCallsConcurrent runs 8 calls that each wait 100 ms in
// the pool (an injected delay) at once; ms/round near 100, not 800, shows
// that neither the pool nor the client serialises them.
func BenchmarkDelayedCallsConcurrent(b *testing.B) {
	p, c, vm := benchPool(b)
	p.InjectFault(xenapitest.Fault{Method: "VM.get_record", Delay: 100 * time.Millisecond})
	ctx := context.Background()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		var wg sync.WaitGroup
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := c.VM.GetRecord(ctx, vm); err != nil {
					b.Error(err)
				}
			}()
		}
		wg.Wait()
	}
	b.ReportMetric(float64(time.Since(start).Milliseconds())/float64(b.N), "ms/round")
}

// BenchmarkSnapshot measures VDI.snapshot (two VHD files made, one
// renamed and hidden) and VDI.destroy of the snapshot over HTTP. Every 20
// snapshots the disk is replaced, since nothing coalesces the chain.
func BenchmarkSnapshot(b *testing.B) {
	p, c, _ := benchPool(b)
	ctx := context.Background()
	var vdi xenapi.VDIRef
	for i := 0; i < b.N; i++ {
		if i%20 == 0 {
			b.StopTimer()
			vm, err := p.AddVM(xenapitest.VMSpec{Name: fmt.Sprint("snap-", i), Disks: []int64{64 << 20}})
			if err != nil {
				b.Fatal(err)
			}
			vdi = xenapi.VDIRef(vm.VDIs[0])
			b.StartTimer()
		}
		snap, err := c.VDI.Snapshot(ctx, vdi, nil)
		if err != nil {
			b.Fatal(fmt.Errorf("snapshot %d: %w", i, err))
		}
		if err := c.VDI.Destroy(ctx, snap); err != nil {
			b.Fatal(err)
		}
	}
}
