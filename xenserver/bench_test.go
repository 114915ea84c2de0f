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

// moveClock records the first time the driver asks for after the
// power-off begins (the start of the downtime).
type moveClock struct {
	mu    sync.Mutex
	first time.Time
}

func (c *moveClock) now() time.Time {
	t := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.first.IsZero() {
		c.first = t
	}
	return t
}

// downtimeCase is one way of moving the benchmark's guest.
type downtimeCase struct {
	name      string
	transport string
	// rounds asks for pre-copy rounds: every write while the guest runs
	// is worth another round, and the guest writes during each round.
	rounds bool
}

var downtimeCases = []downtimeCase{
	{name: "xapi", transport: TransportXAPI},
	{name: "dom0", transport: TransportDom0},
	{name: "xapi-pre-copy-rounds", transport: TransportXAPI, rounds: true},
}

// downtimeEnv is a pair of standalone pools moving disks with the case's
// transport and the clock the downtime is read from.
func downtimeEnv(b *testing.B, c downtimeCase, clock *moveClock) *testEnv {
	var e *testEnv
	if c.transport == TransportDom0 {
		e = dom0Env(b, standalone, c.rounds)
	} else {
		e = newEnv(b, standalone, envOptions{})
		if c.rounds {
			e.cfg.Migrate.PreCopyThreshold = 1
		}
	}
	e.cfg.Clock = clock.now
	e.newDriver(b)
	return e
}

// downtimeResult is what one move measured.
type downtimeResult struct {
	// down runs from the start of the power-off to the guest running on
	// the destination.
	down time.Duration
	// lastDelta is the time to send the last delta: from the guest being
	// off to the delta sent.
	lastDelta time.Duration
}

// downtimeRun moves a running guest with a disk of size bytes (16 MiB of
// data spread over it) to another pool; while the base is sent the guest
// writes 8 MiB, and 2 MiB during each pre-copy round, which the deltas
// carry.
func downtimeRun(b *testing.B, c downtimeCase, size int64) downtimeResult {
	b.StopTimer()
	defer b.StartTimer()
	clock := &moveClock{}
	e := downtimeEnv(b, c, clock)
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
	write := func(label string, at int64, n int) {
		for i := 0; i < n; i++ {
			if err := p.WriteGuestDisk(vm.Ref, "0", at+int64(i)*(size/5), pattern(label, 2<<20)); err != nil {
				b.Error(err)
			}
		}
	}
	inst := &compute.Instance{UUID: uuid, Name: "instance-bench", Flavor: small}
	mig := &compute.Migration{UUID: "8e9f0a1b-2c3d-4e5f-8a7b-9c0d1e2f3a4b", InstanceUUID: uuid,
		SourceCompute: "compute1", DestCompute: "compute2"}
	ctx := context.Background()
	wrote, rounds := false, 0
	var offAt, sentAt time.Time
	progress := func(pr compute.Progress) {
		switch {
		case pr.Step == "send-base" && !wrote:
			wrote = true
			write("delta", size/3, 4)
		case pr.Step == "send-delta" && !pr.PoweredOff && rounds < 2:
			rounds++
			write(fmt.Sprint("round ", rounds), size/7, 1)
		case pr.Step == "power-off":
			offAt = time.Now()
		case pr.Step == "send-delta" && pr.PoweredOff:
			sentAt = time.Now()
		}
	}
	b.StartTimer()
	info, err := e.d.MigrateDiskAndPowerOff(ctx, compute.MigrateDiskRequest{Instance: inst, Migration: mig,
		Host: "compute1", DestHost: "compute2", NewFlavor: large, CleanShutdown: true, Progress: progress})
	if err != nil {
		b.Fatal(err)
	}
	if err := e.d.FinishMigration(ctx, compute.FinishMigrationRequest{Instance: inst, Migration: mig, Host: "compute2",
		DiskInfo: info, NewFlavor: large, PowerOn: true}); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	r := downtimeResult{down: time.Since(clock.first), lastDelta: sentAt.Sub(offAt)}
	if !wrote || offAt.IsZero() || sentAt.IsZero() || (c.rounds && rounds == 0) {
		b.Fatalf("the move was not the one measured: wrote %v, rounds %d, off %v, sent %v", wrote, rounds, offAt, sentAt)
	}
	if info.Transport != c.transport {
		b.Fatalf("moved with %q, want %q", info.Transport, c.transport)
	}
	return r
}

// BenchmarkDowntime compares, for each transport and with pre-copy
// rounds, the downtime of moving a 1 GiB and an 8 GiB disk with the same
// guest writes (sparse disks): the downtime follows the last delta, not
// the disk's size. It also reports the downtime against the time the last
// delta took to send.
func BenchmarkDowntime(b *testing.B) {
	for _, c := range downtimeCases {
		b.Run(c.name, func(b *testing.B) {
			var small, big, delta time.Duration
			for i := 0; i < b.N; i++ {
				r1 := downtimeRun(b, c, 1<<30)
				r8 := downtimeRun(b, c, 8<<30)
				small, big, delta = small+r1.down, big+r8.down, delta+r1.lastDelta+r8.lastDelta
			}
			ms := func(d time.Duration, n int) float64 { return float64(d.Microseconds()) / 1e3 / float64(n) }
			b.ReportMetric(ms(small, b.N), "ms-down-1GiB")
			b.ReportMetric(ms(big, b.N), "ms-down-8GiB")
			b.ReportMetric(float64(big)/float64(small), "ratio-8/1")
			b.ReportMetric(ms(delta, 2*b.N), "ms-last-delta")
			b.ReportMetric(float64(small+big)/float64(delta), "down/last-delta")
		})
	}
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
