package xenapi_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/xenflow/xenflow/internal/cputime"
	"github.com/xenflow/xenflow/xenapi"
	"github.com/xenflow/xenflow/xenapi/xenapitest"
)

// BenchmarkPoolVMGetRecord measures VM.get_record calls per second from 8
// goroutines against the simulated pool over HTTP on loopback.
func BenchmarkPoolVMGetRecord(b *testing.B) {
	p, err := xenapitest.NewPool(xenapitest.Options{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	url, err := p.Serve("")
	if err != nil {
		b.Fatal(err)
	}
	vm, err := p.AddVM(xenapitest.VMSpec{Name: "bench", Disks: []int64{8 << 20}})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	c, err := xenapi.NewClient(url)
	if err != nil {
		b.Fatal(err)
	}
	if err := c.Login(ctx, p.User(), p.Password(), "bench"); err != nil {
		b.Fatal(err)
	}
	defer c.Close(ctx)
	ref := xenapi.VMRef(vm.Ref)
	b.ReportAllocs()
	b.ResetTimer()
	start, cpu0 := time.Now(), cputime.Process()
	var wg sync.WaitGroup
	work := make(chan struct{}, 64)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range work {
				if _, err := c.VM.GetRecord(ctx, ref); err != nil {
					b.Error(err)
				}
			}
		}()
	}
	for i := 0; i < b.N; i++ {
		work <- struct{}{}
	}
	close(work)
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "calls/s")
	b.ReportMetric(float64((cputime.Process()-cpu0).Microseconds())/float64(b.N), "cpu-µs/call")
}
