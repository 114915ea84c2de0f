package dom0

import (
	"context"
	"net"
	"testing"
	"time"
)

// delayedPipe copies src to dst, delivering every byte p.delay after it
// arrived (a link with that one-way latency and no bandwidth limit of its
// own), then closes both.
func (p *proxy) delayedPipe(dst, src net.Conn) {
	type piece struct {
		at time.Time
		b  []byte
	}
	q := make(chan piece, 4096)
	go func() {
		defer close(q)
		for {
			b := make([]byte, 64<<10)
			n, err := src.Read(b)
			if n > 0 {
				q <- piece{time.Now().Add(p.delay), b[:n]}
			}
			if err != nil {
				return
			}
		}
	}()
	for pc := range q {
		time.Sleep(time.Until(pc.at))
		if _, err := dst.Write(pc.b); err != nil {
			break
		}
	}
	dst.Close()
	src.Close()
}

// BenchmarkTransferLatency relays a file between two directories of a real
// sshd reached through links with 1 ms of one-way latency (2 ms round
// trip), with Transfer and with pkg/sftp's defaults (sequential writes,
// io.Copy), and reports the ratio of their throughputs measured in the same
// iterations. XENFLOW_BENCH_MIB sets the size (default 1 GiB).
func BenchmarkTransferLatency(b *testing.B) {
	e := newBenchEnv(b)
	addr := newProxy(b, e.sshd.Addr, time.Millisecond).Addr()
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
		e.sftpDefaults(b, src, dst)
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
