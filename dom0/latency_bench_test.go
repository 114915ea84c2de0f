package dom0

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/pkg/sftp"
)

// delayProxy forwards TCP connections to target, delivering every byte
// delay after it arrived in each direction (a link with that one-way
// latency and no bandwidth limit of its own).
func delayProxy(tb testing.TB, target string, delay time.Duration) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { l.Close() })
	type piece struct {
		at time.Time
		b  []byte
	}
	pipe := func(dst, src net.Conn) {
		q := make(chan piece, 4096)
		go func() {
			defer close(q)
			for {
				b := make([]byte, 64<<10)
				n, err := src.Read(b)
				if n > 0 {
					q <- piece{time.Now().Add(delay), b[:n]}
				}
				if err != nil {
					return
				}
			}
		}()
		for p := range q {
			time.Sleep(time.Until(p.at))
			if _, err := dst.Write(p.b); err != nil {
				break
			}
		}
		dst.Close()
		src.Close()
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			go pipe(c, u)
			go pipe(u, c)
		}
	}()
	return l.Addr().String()
}

// BenchmarkTransferLatency relays a file between two directories of a real
// sshd reached through links with 1 ms of one-way latency (2 ms round
// trip), with Transfer and with pkg/sftp's defaults (sequential writes,
// io.Copy), and reports the ratio of their throughputs measured in the same
// iterations. XENFLOW_BENCH_MIB sets the size (default 1 GiB).
func BenchmarkTransferLatency(b *testing.B) {
	e := newBenchEnv(b)
	addr := delayProxy(b, e.sshd.Addr, time.Millisecond)
	cfg := e.sshd.Config()
	cfg.KnownHostsFiles = []string{knownHostsForTB(b, addr, e.sshd.HostKeys...)}
	dial := func() *SSHHost {
		h, err := DialSSH(context.Background(), addr, cfg)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { h.Close() })
		return h
	}
	src, dst := dial(), dial()
	var tDef, tX time.Duration
	for i := 0; i < b.N; i++ {
		start := time.Now()
		func() {
			sc, err := sftp.NewClient(src.Client())
			if err != nil {
				b.Fatal(err)
			}
			defer sc.Close()
			dc, err := sftp.NewClient(dst.Client())
			if err != nil {
				b.Fatal(err)
			}
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
		}()
		tDef += time.Since(start)
		e.clean(b)
		start = time.Now()
		if _, err := Transfer(context.Background(), src, dst, []FileCopy{{Src: e.srcFile, Dst: e.dstDir + "/xenflow.vhd"}}, nil); err != nil {
			b.Fatal(err)
		}
		tX += time.Since(start)
		e.clean(b)
	}
	mbps := func(d time.Duration) float64 { return float64(b.N) * float64(benchFileSize) / (1 << 20) / d.Seconds() }
	b.ReportMetric(mbps(tDef), "sftpdefault-MiB/s")
	b.ReportMetric(mbps(tX), "xenflow-MiB/s")
	b.ReportMetric(tDef.Seconds()/tX.Seconds(), "xenflow/sftpdefault")
}
