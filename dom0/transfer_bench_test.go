package dom0

import (
	"context"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// benchFileSize is 1 GiB; XENFLOW_BENCH_MIB overrides it for quick runs.
var benchFileSize = func() int64 {
	if n, err := strconv.Atoi(os.Getenv("XENFLOW_BENCH_MIB")); err == nil && n > 0 {
		return int64(n) << 20
	}
	return 1 << 30
}()

// benchEnv is one sshd, two "hosts" (directories on it, each reached over
// its own connection) and a 1 GiB source file.
type benchEnv struct {
	sshd     *testSSHD
	src, dst *SSHHost
	srcFile  string
	dstDir   string
}

func newBenchEnv(b *testing.B) *benchEnv {
	b.Helper()
	if testing.Short() {
		b.Skip("1 GiB transfer benchmark skipped in -short mode")
	}
	s := startSSHD(b)
	e := &benchEnv{sshd: s, src: s.Dial(b), dst: s.Dial(b)}
	srcDir := b.TempDir()
	e.dstDir = b.TempDir()
	e.srcFile = filepath.Join(srcDir, "0.vhd")
	f, err := os.Create(e.srcFile)
	if err != nil {
		b.Fatal(err)
	}
	block := make([]byte, 4<<20)
	rng := rand.New(rand.NewSource(1))
	for n := int64(0); n < benchFileSize; n += int64(len(block)) {
		rng.Read(block)
		if _, err := f.Write(block); err != nil {
			b.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	return e
}

func (e *benchEnv) clean(b *testing.B) {
	ents, _ := os.ReadDir(e.dstDir)
	for _, x := range ents {
		if err := os.Remove(filepath.Join(e.dstDir, x.Name())); err != nil {
			b.Fatal(err)
		}
	}
}

// scp copies the file with one OpenSSH scp (SFTP protocol) to the same
// sshd: one encryption, no relay.
func (e *benchEnv) scp(b *testing.B) {
	port := e.sshd.Addr[len("127.0.0.1:"):]
	cmd := exec.Command("scp", "-q", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
		"-o", "UserKnownHostsFile="+e.sshd.KnownHosts, "-i", e.sshd.UserKey, "-P", port,
		e.srcFile, e.sshd.User+"@127.0.0.1:"+e.dstDir+"/scp.vhd")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("scp: %v\n%s", err, out)
	}
}

// sftpDefaults relays the file through this process with pkg/sftp's
// defaults (no concurrent writes) and a plain io.Copy, over the
// connections of src and dst (e's own hosts when nil).
func (e *benchEnv) sftpDefaults(b *testing.B, src, dst *SSHHost) {
	if src == nil {
		src, dst = e.src, e.dst
	}
	open := func(c *ssh.Client) *sftp.Client {
		s, err := sftp.NewClient(c)
		if err != nil {
			b.Fatal(err)
		}
		return s
	}
	sc, dc := open(src.Client()), open(dst.Client())
	defer sc.Close()
	defer dc.Close()
	in, err := sc.Open(e.srcFile)
	if err != nil {
		b.Fatal(err)
	}
	defer in.Close()
	out, err := dc.Create(e.dstDir + "/default.vhd")
	if err != nil {
		b.Fatal(err)
	}
	defer out.Close()
	if n, err := io.Copy(out, in); err != nil || n != benchFileSize {
		b.Fatalf("io.Copy: %d %v", n, err)
	}
}

// xenflow relays the file with Transfer (defaults, SHA-256 verified on the
// destination), twice at once to two names if twoFiles is set, and returns the peak heap in use and the
// peak memory the runtime holds from the OS (Sys less HeapReleased) seen
// while it ran.
func (e *benchEnv) xenflow(b *testing.B, opts *TransferOptions, twoFiles bool) (heapMiB, sysMiB float64) {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var maxHeap, maxSys uint64
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			maxHeap = max(maxHeap, ms.HeapInuse)
			maxSys = max(maxSys, ms.Sys-ms.HeapReleased)
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	files := []FileCopy{{Src: e.srcFile, Dst: e.dstDir + "/xenflow.vhd"}}
	if twoFiles {
		files = append(files, FileCopy{Src: e.srcFile, Dst: e.dstDir + "/xenflow2.vhd"})
	}
	_, err := Transfer(context.Background(), e.src, e.dst, files, opts)
	close(stop)
	wg.Wait()
	if err != nil {
		b.Fatal(err)
	}
	return float64(maxHeap) / (1 << 20), float64(maxSys) / (1 << 20)
}

// BenchmarkTransfer1GiB measures each way of moving a 1 GiB file between two
// directories of one real sshd, for benchstat.
func BenchmarkTransfer1GiB(b *testing.B) {
	e := newBenchEnv(b)
	b.Run("scp", func(b *testing.B) {
		b.SetBytes(benchFileSize)
		for i := 0; i < b.N; i++ {
			e.scp(b)
			b.StopTimer()
			e.clean(b)
			b.StartTimer()
		}
	})
	b.Run("sftp-defaults", func(b *testing.B) {
		b.SetBytes(benchFileSize)
		for i := 0; i < b.N; i++ {
			e.sftpDefaults(b, nil, nil)
			b.StopTimer()
			e.clean(b)
			b.StartTimer()
		}
	})
	xenflow := func(twoFiles bool) func(*testing.B) {
		return func(b *testing.B) {
			b.SetBytes(benchFileSize)
			if twoFiles {
				b.SetBytes(2 * benchFileSize)
			}
			var heap, sys float64
			for i := 0; i < b.N; i++ {
				h, s := e.xenflow(b, nil, twoFiles)
				heap, sys = max(heap, h), max(sys, s)
				b.StopTimer()
				e.clean(b)
				b.StartTimer()
			}
			b.ReportMetric(heap, "peak-heap-MiB")
			b.ReportMetric(sys, "peak-mapped-MiB")
		}
	}
	b.Run("xenflow", xenflow(false))
	// Two copies of the file at once (Transfer's default of two files
	// moving together): the memory bound holds for the whole transfer.
	b.Run("xenflow-2files", xenflow(true))
}

// BenchmarkTransferRatio runs the three ways back to back in each iteration
// and reports the ratios of their throughputs, measured in the same run:
// xenflow/scp (target at least 0.6) and xenflow/sftp-defaults (target at
// least 1.5), and the controller's peak memory (target under 64 MiB).
func BenchmarkTransferRatio(b *testing.B) {
	e := newBenchEnv(b)
	var tScp, tDef, tX time.Duration
	var heap, sys float64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		e.scp(b)
		tScp += time.Since(start)
		e.clean(b)
		start = time.Now()
		e.sftpDefaults(b, nil, nil)
		tDef += time.Since(start)
		e.clean(b)
		start = time.Now()
		h, s := e.xenflow(b, nil, false)
		tX += time.Since(start)
		heap, sys = max(heap, h), max(sys, s)
		e.clean(b)
	}
	mbps := func(d time.Duration) float64 { return float64(b.N) * float64(benchFileSize) / (1 << 20) / d.Seconds() }
	b.ReportMetric(mbps(tScp), "scp-MiB/s")
	b.ReportMetric(mbps(tDef), "sftpdefault-MiB/s")
	b.ReportMetric(mbps(tX), "xenflow-MiB/s")
	b.ReportMetric(tScp.Seconds()/tX.Seconds(), "xenflow/scp")
	b.ReportMetric(tDef.Seconds()/tX.Seconds(), "xenflow/sftpdefault")
	b.ReportMetric(heap, "peak-heap-MiB")
	b.ReportMetric(sys, "peak-mapped-MiB")
}
