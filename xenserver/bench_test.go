package xenserver

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/url"
	"os/exec"
	"runtime"
	"runtime/metrics"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/internal/oracle"
	"github.com/xenflow/xenflow/xenapi"
	"github.com/xenflow/xenflow/xenapi/xenapitest"
)

// firstClock records the first time the driver asks for after reset: the
// start of the power-off in a move.
type firstClock struct {
	mu    sync.Mutex
	first time.Time
}

func (c *firstClock) now() time.Time {
	t := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.first.IsZero() {
		c.first = t
	}
	return t
}

func (c *firstClock) reset() { c.mu.Lock(); c.first = time.Time{}; c.mu.Unlock() }

// downtimeRun moves a running guest with a disk of size bytes (16 MiB of
// data spread over it) to another pool; while the base is sent the guest
// writes 8 MiB, which the last delta carries. It returns the time from the
// start of the power-off to the guest running on the destination.
func downtimeRun(b *testing.B, size int64) time.Duration {
	b.StopTimer()
	clock := &firstClock{}
	e := newEnv(b, standalone, envOptions{config: func(c *Config) { c.Clock = clock.now }})
	p := e.poolOf["compute1"]
	const uuid = "2b3c4d5e-6f70-4182-93a4-b5c6d7e8f901"
	vm, err := p.AddVM(xenapitest.VMSpec{Name: "instance-bench", Disks: []int64{size}, Running: true, Memory: 256 << 20,
		OtherConfig: map[string]string{KeyNovaUUID: uuid}})
	if err != nil {
		b.Fatal(err)
	}
	for i := int64(0); i < 8; i++ {
		if err := p.WriteVDI(vm.VDIs[0], i*(size/8), pattern(fmt.Sprint("base ", i), 2<<20)); err != nil {
			b.Fatal(err)
		}
	}
	inst := &compute.Instance{UUID: uuid, Name: "instance-bench", Flavor: small}
	mig := &compute.Migration{UUID: "8e9f0a1b-2c3d-4e5f-8a7b-9c0d1e2f3a4b", InstanceUUID: uuid,
		SourceCompute: "compute1", DestCompute: "compute2"}
	ctx := context.Background()
	wrote := false
	b.StartTimer()
	info, err := e.d.MigrateDiskAndPowerOff(ctx, compute.MigrateDiskRequest{Instance: inst, Migration: mig,
		Host: "compute1", DestHost: "compute2", NewFlavor: large, CleanShutdown: true,
		Progress: func(pr compute.Progress) {
			if pr.Step == "send-base" && !wrote {
				wrote = true
				for i := int64(0); i < 4; i++ {
					if err := p.WriteGuestDisk(vm.Ref, "0", size/3+i*(size/5), pattern("delta", 2<<20)); err != nil {
						b.Error(err)
					}
				}
			}
		}})
	if err != nil {
		b.Fatal(err)
	}
	if err := e.d.FinishMigration(ctx, compute.FinishMigrationRequest{Instance: inst, Migration: mig, Host: "compute2",
		DiskInfo: info, NewFlavor: large, PowerOn: true}); err != nil {
		b.Fatal(err)
	}
	down := time.Since(clock.first)
	b.StopTimer()
	if !wrote {
		b.Fatal("the guest never wrote while running")
	}
	return down
}

// BenchmarkDowntime compares the downtime of moving a 1 GiB and an 8 GiB
// disk with the same guest writes (sparse disks): the downtime follows
// the last delta, not the disk's size.
func BenchmarkDowntime(b *testing.B) {
	var small, big time.Duration
	for i := 0; i < b.N; i++ {
		small += downtimeRun(b, 1<<30)
		big += downtimeRun(b, 8<<30)
	}
	b.ReportMetric(float64(small.Microseconds())/1e3/float64(b.N), "ms-down-1GiB")
	b.ReportMetric(float64(big.Microseconds())/1e3/float64(b.N), "ms-down-8GiB")
	b.ReportMetric(float64(big)/float64(small), "ratio-8/1")
}

// relayData is how much of the 1 GiB disk the relay benchmark fills.
const relayData = 1 << 30

// relaySetup makes a halted guest whose 1 GiB disk holds relayData bytes,
// and an empty VDI of the same size on the other pool.
func relaySetup(b *testing.B) (e *testEnv, src, dst *target, from xenapi.VDIRef, into xenapi.VDIRef) {
	e = newEnv(b, standalone, envOptions{})
	p := e.poolOf["compute1"]
	vm, err := p.AddVM(xenapitest.VMSpec{Name: "instance-relay", Disks: []int64{1 << 30}})
	if err != nil {
		b.Fatal(err)
	}
	chunk := make([]byte, 8<<20)
	for off := int64(0); off < relayData; off += int64(len(chunk)) {
		copy(chunk, pattern(fmt.Sprint("relay ", off), 4096))
		if err := p.WriteVDI(vm.VDIs[0], off, chunk); err != nil {
			b.Fatal(err)
		}
	}
	ctx := context.Background()
	if src, err = e.d.pool(ctx, "compute1"); err != nil {
		b.Fatal(err)
	}
	if dst, err = e.d.pool(ctx, "compute2"); err != nil {
		b.Fatal(err)
	}
	into, err = dst.Client.VDI.Create(ctx, xenapi.VDIRecord{NameLabel: "relay", SR: dst.SR, VirtualSize: 1 << 30, Type: xenapi.VDITypeUser})
	if err != nil {
		b.Fatal(err)
	}
	return e, src, dst, xenapi.VDIRef(vm.VDIs[0]), into
}

// heapPeak samples the heap while a run goes on and returns the peak
// above the heap at the start.
func heapPeak(run func()) uint64 {
	runtime.GC()
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	base, peak := s[0].Value.Uint64(), s[0].Value.Uint64()
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				metrics.Read(s)
				peak = max(peak, s[0].Value.Uint64())
			}
		}
	}()
	run()
	close(stop)
	<-done
	return peak - base
}

// BenchmarkRelay compares the xapi transport's relay of a 1 GiB disk with
// curl piping the same export into the same import, in the same run. The
// simulated pools run in this process, so the peak heap includes their
// handlers' buffers as well as the relay's.
func BenchmarkRelay(b *testing.B) {
	if _, err := exec.LookPath("curl"); err != nil {
		oracle.Missing(b, "curl: %v", err)
		return
	}
	_, src, dst, from, into := relaySetup(b)
	ctx := context.Background()
	q := url.Values{"vdi": {string(from)}, "format": {"vhd"}}
	var relayTime, curlTime time.Duration
	var sent int64
	var peak uint64
	relayOnce := func() {
		n, err := relay(ctx, relayRequest{From: src.endpoint(), To: dst.endpoint(), Query: q, Into: into,
			Hash: sha256.New(), BufferSize: 1 << 20})
		if err != nil {
			b.Fatal(err)
		}
		sent = n
	}
	// A first, untimed relay allocates the destination's blocks, so both
	// timed imports overwrite the same allocated disk.
	relayOnce()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		timeCurl := func() {
			start := time.Now()
			curlPipe(b, src, dst, from, into, sent)
			curlTime += time.Since(start)
		}
		if i%2 == 1 {
			timeCurl()
		}
		start := time.Now()
		peak = max(peak, heapPeak(relayOnce))
		relayTime += time.Since(start)
		if i%2 == 0 {
			timeCurl()
		}
	}
	b.StopTimer()
	mbps := func(d time.Duration) float64 { return float64(sent) * float64(b.N) / d.Seconds() / 1e6 }
	b.ReportMetric(mbps(relayTime), "MB/s-relay")
	b.ReportMetric(mbps(curlTime), "MB/s-curl")
	b.ReportMetric(curlTime.Seconds()/relayTime.Seconds(), "relay/curl")
	b.ReportMetric(float64(peak)/(1<<20), "MiB-peak-heap")
	b.SetBytes(sent)
}

// curlPipe pipes the export into the import with two curl processes; the
// import gets the stream's length, as xapi requires.
func curlPipe(b *testing.B, src, dst *target, from, into xenapi.VDIRef, length int64) {
	exp := src.Client.URL() + "export_raw_vdi?" + url.Values{"session_id": {string(src.Client.Session())},
		"vdi": {string(from)}, "format": {"vhd"}}.Encode()
	imp := dst.Client.URL() + "import_raw_vdi?" + url.Values{"session_id": {string(dst.Client.Session())},
		"vdi": {string(into)}, "format": {"vhd"}}.Encode()
	cmd := exec.Command("sh", "-c", `curl -sS --fail "$EXP" | curl -sS --fail -T - -H "Content-Length: $LEN" -H "Transfer-Encoding:" -o /dev/null "$IMP"`)
	cmd.Env = append(cmd.Environ(), "EXP="+exp, "IMP="+imp, "LEN="+strconv.FormatInt(length, 10))
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("curl: %v: %s", err, out)
	}
}
