package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	neturl "net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/xenflow/xenflow/xenapi"
	"github.com/xenflow/xenflow/xenapi/xenapitest"
	"github.com/xenflow/xenflow/xenserver"
)

// runJob runs the command in process and returns its stdout.
func runJob(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), args, &out, &errOut)
	if err != nil {
		t.Logf("stderr: %s", errOut.String())
	}
	return out.String(), err
}

// lastSummary parses the JSON summary on the last line of out.
func lastSummary(t *testing.T, out string) summary {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var s summary
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &s); err != nil {
		t.Fatalf("last line %q: %v", lines[len(lines)-1], err)
	}
	return s
}

func TestDefaultRun(t *testing.T) {
	out, err := runJob(t)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"state     active/None/none                 -> active/resize_prep/pre-migrating",
		"-> resized/None/finished",
		"state     resized/None/confirming          -> active/None/confirmed",
		"step      send-delta on host1",
		"progress  100%",
		"verified  root disk ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	last := lines[len(lines)-1]
	re := regexp.MustCompile(`^resize-up host1 -> host2 by xapi: [0-9.]+ MiB sent while running, [0-9.]+ [KM]iB while powered off, downtime [0-9.]+m?s, total [0-9.]+m?s; confirmed \(active/None/confirmed\)$`)
	if !re.MatchString(last) {
		t.Errorf("summary %q", last)
	}
}

// modeCase is a run of TestModes and what its summary must say.
type modeCase struct {
	name           string
	args           []string
	op, outcome    string
	from, to       string
	endOnSource    bool
	wantTransition string
}

func TestModes(t *testing.T) {
	for _, tc := range []modeCase{
		{"resize up", nil, "resize-up", "confirmed", "1c-512m-1g", "2c-1024m-2g", false, "resized/None/confirming"},
		{"revert", []string{"-revert"}, "resize-up", "reverted", "1c-512m-1g", "2c-1024m-2g", true, "resized/resize_reverting/reverting"},
		{"migrate", []string{"-migrate"}, "migrate", "confirmed", "1c-512m-1g", "1c-512m-1g", false, "resized/None/finished"},
		{"down", []string{"-down"}, "resize-down", "confirmed", "2c-1024m-2g", "1c-512m-2g", false, "resized/None/finished"},
		{"three hosts", []string{"-hosts", "3"}, "resize-up", "confirmed", "1c-512m-1g", "2c-1024m-2g", false, "resized/None/finished"},
		{"dom0 transport", []string{"-transport", "dom0"}, "resize-up", "confirmed", "1c-512m-1g", "2c-1024m-2g", false, "resized/None/finished"},
		{"no confirm", []string{"-no-confirm"}, "resize-up", "verify_resize", "1c-512m-1g", "2c-1024m-2g", false, "resized/None/finished"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runJob(t, append(tc.args, "-json", "-disk-mib", "16")...)
			if err != nil {
				t.Fatal(err)
			}
			s := lastSummary(t, out)
			if s.Operation != tc.op || s.Outcome != tc.outcome || s.FromFlavor != tc.from || s.ToFlavor != tc.to {
				t.Errorf("summary %+v", s)
			}
			if s.SourceHost != "host1" || s.DestHost == "host1" || s.DestHost == "" || s.Transport != tc.transport() {
				t.Errorf("moved %s -> %s", s.SourceHost, s.DestHost)
			}
			wantHost := s.DestHost
			if tc.endOnSource {
				wantHost = s.SourceHost
			}
			if s.Host != wantHost {
				t.Errorf("instance ends on %s, want %s", s.Host, wantHost)
			}
			if s.BytesSentRunning <= 0 || s.BytesSentPoweredOff <= 0 || s.DowntimeSeconds <= 0 || s.TotalSeconds < s.DowntimeSeconds {
				t.Errorf("measures %+v", s)
			}
			if !strings.Contains(out, tc.wantTransition) {
				t.Errorf("no transition to %s:\n%s", tc.wantTransition, out)
			}
		})
	}
}

// transport is the transport a mode's arguments ask for.
func (tc modeCase) transport() string {
	for i, a := range tc.args {
		if a == "-transport" {
			return tc.args[i+1]
		}
	}
	return "xapi"
}

// TestTraceIsCurrent fails when docs/resize-sequence.md is not the trace
// of the default run.
func TestTraceIsCurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "resize-sequence.md")
	if _, err := runJob(t, "-trace", path); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join("..", "..", "docs", "resize-sequence.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("docs/resize-sequence.md is stale: regenerate it with\n\tgo run ./examples/resize -trace docs/resize-sequence.md\ngot:\n%s", got)
	}
	for _, want := range []string{"participant H1 as host1 (source)", "O->>S: resized/None/confirming → active/None/confirmed",
		"GET /export_raw_vdi (VHD stream)", "PUT /import_raw_vdi (VHD stream)", "Note over H1: power-off"} {
		if !strings.Contains(string(got), want) {
			t.Errorf("trace lacks %q", want)
		}
	}
}

// TestTracePlain writes a plain Mermaid diagram for a name not ending in .md.
func TestTracePlain(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run.mmd")
	if _, err := runJob(t, "-migrate", "-revert", "-disk-mib", "16", "-trace", path); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(got), "sequenceDiagram\n") || !strings.Contains(string(got), "FinishRevertMigration") {
		t.Fatalf("trace:\n%s", got)
	}
}

func TestBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-hosts", "1"}, "-hosts: a move needs at least 2 hosts"},
		{[]string{"-disk-mib", "1"}, "-disk-mib: 1 is outside"},
		{[]string{"-transport", "nfs"}, `-transport: "nfs": want xapi or dom0`},
		{[]string{"-suspend"}, "-suspend: only with -migrate"},
		{[]string{"-down", "-migrate"}, "-down: a cold migration keeps the flavor"},
		{[]string{"-revert", "-no-confirm"}, "-revert and -no-confirm exclude each other"},
		{[]string{"-vm", "web"}, "-vm: only with -xapi"},
		{[]string{"-ssh-key", "id_ed25519"}, "-ssh-key: only with -xapi"},
		{[]string{"-xapi", "ftp://x"}, "is not an http:// or https:// URL"},
		{[]string{"-xapi", "http://127.0.0.1:1/"}, "-vm: required with -xapi"},
		{[]string{"-xapi", "http://127.0.0.1:1/", "-vm", "web", "-serve", "127.0.0.1:0"}, "-serve: serves the simulated pool"},
		{[]string{"-xapi", "http://127.0.0.1:1/", "-vm", "web", "-down"}, "-down: the simulated pool's flavors"},
		{[]string{"-xapi", "http://127.0.0.1:1/", "-vm", "web", "-transport", "dom0"}, "needs -ssh-key and -known-hosts"},
		{[]string{"-confirm"}, "-resume/-confirm: need -db"},
		{[]string{"-resume"}, "-resume/-confirm: need -db"},
		{[]string{"-resume", "-db", "s.db"}, "-resume: only with -xapi"},
		{[]string{"-resume", "-db", "s.db", "-revert"}, "-resume: finishes what the database holds"},
		{[]string{"-worker", "-db", "s.db"}, "-submit/-worker: need -db and -xapi"},
		{[]string{"-submit", "-xapi", "http://x/"}, "-submit/-worker: need -db and -xapi"},
		{[]string{"-submit", "-worker", "-db", "s.db", "-xapi", "http://x/"}, "-submit/-worker: one of the two"},
		{[]string{"-worker", "-db", "s.db", "-xapi", "http://x/", "-vm", "a"}, "-submit/-worker: one of the two"},
		{[]string{"-submit", "-db", "s.db", "-xapi", "http://x/", "-parallel", "2"}, "-parallel: at least 1"},
		{[]string{"-worker", "-db", "s.db", "-xapi", "http://x/", "-parallel", "0"}, "-parallel: at least 1"},
		{[]string{"-owner", ""}, "-owner: must not be empty"},
		{[]string{"-cross-cell", "-db", "s.db"}, "-cross-cell: runs on its own two simulated pools"},
		{[]string{"-cross-cell", "-down"}, "-cross-cell: runs on its own two simulated pools"},
		{[]string{"-lease-ttl", "-1s"}, "-lease-ttl: must not be negative"},
		{[]string{"-nosuchflag"}, "flag provided but not defined"},
		{[]string{"extra"}, `unexpected ["extra"]`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var stderr bytes.Buffer
			err := run(context.Background(), tc.args, io.Discard, io.Discard)
			var ue *UsageError
			if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want a *UsageError with %q", err, tc.want)
			}
			if got := exitStatus(err, &stderr); got != exitUsage || !strings.Contains(stderr.String(), tc.want) {
				t.Fatalf("exit %d, stderr %q", got, stderr.String())
			}
		})
	}
}

// TestSuspendMigrate moves the guest suspended when the driver supports
// it, and is refused with a typed error otherwise.
func TestSuspendMigrate(t *testing.T) {
	drv, err := xenserver.New(xenserver.Config{Inventory: xenserver.Inventory{ // contacted at first use only
		Pools: map[string]xenserver.PoolEndpoint{"p": {URL: "http://127.0.0.1:1/"}},
		Hosts: map[string]xenserver.HostEntry{"h": {Pool: "p", XenServerHost: "h", SR: "sr"}}}})
	if err != nil {
		t.Fatal(err)
	}
	out, err := runJob(t, "-migrate", "-suspend", "-disk-mib", "8", "-json")
	if !drv.Capabilities().SupportsSuspendMigrate {
		var ue *UnavailableError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), "SupportsSuspendMigrate is false") {
			t.Fatalf("error %v, want an *UnavailableError", err)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	s := lastSummary(t, out)
	if s.Operation != "migrate-suspended" || s.Outcome != "confirmed" || s.BytesSentRunning != 0 || s.BytesSentPoweredOff == 0 {
		t.Fatalf("summary %+v", s)
	}
}

func TestHelp(t *testing.T) {
	var stderr bytes.Buffer
	err := run(context.Background(), []string{"-h"}, io.Discard, &stderr)
	if !errors.Is(err, flag.ErrHelp) || exitStatus(err, io.Discard) != exitOK {
		t.Fatalf("-h: %v", err)
	}
	for _, want := range []string{"usage: resize", "-xapi URL", "-no-confirm", "-db DSN", "-resume"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("usage lacks %q", want)
		}
	}
}

// TestServe keeps serving the pool after the run: a XenAPI client finds
// the instance on the destination with its new flavor.
func TestServe(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-serve", "127.0.0.1:0", "-disk-mib", "16"}, io.Discard, pw)
		pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	var url string
	for sc.Scan() {
		if m := regexp.MustCompile(`^serving url=(\S+) `).FindStringSubmatch(sc.Text()); m != nil {
			url = m[1]
			break
		}
	}
	if url == "" {
		t.Fatalf("no serving line: %v", <-done)
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	c := poolClient(ctx, t, url)
	root, err := instanceRoot(ctx, c, simInstanceUUID)
	if err != nil {
		t.Fatal(err)
	}
	if root.Record.MemoryStaticMax != 1024<<20 || root.Record.VCPUsMax != 2 || root.Record.PowerState != xenapi.VMPowerStateRunning {
		t.Errorf("VM after the resize: %d bytes, %d vCPUs, %s", root.Record.MemoryStaticMax, root.Record.VCPUsMax, root.Record.PowerState)
	}
	_ = c.Close(ctx)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// startFakepool builds examples/fakepool, serves a pool of two hosts on
// 127.0.0.1 and returns its URL; the process is stopped by its pid.
func startFakepool(t *testing.T) string {
	t.Helper()
	return servePool(t, buildCommand(t, t.TempDir(), "../fakepool", "fakepool"), "-hosts", "2")
}

// TestRealPool resizes a VM of examples/fakepool, served on loopback, as
// a real pool: nothing but its XenAPI endpoint.
func TestRealPool(t *testing.T) {
	url := startFakepool(t)
	pw := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(pw, []byte(xenapitest.DefaultPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := []string{"-xapi", url, "-password-file", pw, "-json"}
	trace := filepath.Join(t.TempDir(), "real.mmd")
	out, err := runJob(t, append(base, "-vm", "instance-1-1", "-memory-mib", "1024", "-vcpus", "2", "-trace", trace)...)
	if err != nil {
		t.Fatal(err)
	}
	diagram, err := os.ReadFile(trace)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(diagram), "O->>H1: MigrateDiskAndPowerOff") || strings.Contains(string(diagram), "xapi on") {
		t.Errorf("trace of a real pool (driver calls, no XenAPI calls):\n%s", diagram)
	}
	s := lastSummary(t, out)
	if s.SourceHost != "host1" || s.DestHost != "host2" || s.Outcome != "confirmed" || s.ToFlavor != "2c-1024m-1g-1e" {
		t.Fatalf("summary %+v", s)
	}
	checkMoved(t, url, "instance-1-1", "host2", "root disk of instance-1-1\n")

	// Left in VERIFY_RESIZE, it cannot be reverted by a later run.
	if _, err := runJob(t, append(base, "-vm", "instance-2-1", "-migrate", "-no-confirm")...); err != nil {
		t.Fatal(err)
	}
	_, err = runJob(t, append(base, "-vm", "instance-2-1", "-revert")...)
	var ue *UnavailableError
	if !errors.As(err, &ue) {
		t.Fatalf("revert of a resize left by another run: %v", err)
	}
	_, err = runJob(t, append(base, "-vm", "no-such-vm", "-vcpus", "2")...)
	var nv *NoVMError
	if !errors.As(err, &nv) {
		t.Fatalf("unknown VM: %v", err)
	}
}

// TestDurableStore leaves resizes in VERIFY_RESIZE and finishes them in
// later runs on the same -db: a revert, then a confirm, each checked
// through XenAPI; -resume then finds nothing left.
func TestDurableStore(t *testing.T) {
	url := startFakepool(t)
	pw := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(pw, []byte(xenapitest.DefaultPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := []string{"-xapi", url, "-password-file", pw, "-db", filepath.Join(t.TempDir(), "state.db")}
	vm := []string{"-vm", "instance-1-1"}
	for _, step := range []struct {
		args       []string
		want, host string
	}{
		{[]string{"-memory-mib", "1024", "-vcpus", "2", "-no-confirm"}, "verify_resize", "host2"},
		{[]string{"-revert"}, "reverted: instance", "host1"},
		{[]string{"-memory-mib", "1024", "-vcpus", "2", "-no-confirm"}, "verify_resize", "host2"},
		{[]string{"-confirm"}, "confirmed: instance", "host2"},
	} {
		out, err := runJob(t, append(append(append([]string{}, base...), vm...), step.args...)...)
		if err != nil || !strings.Contains(out, step.want) {
			t.Fatalf("%q: %v\n%s", step.args, err, out)
		}
		if step.args[0] == "-confirm" {
			checkMoved(t, url, "instance-1-1", step.host, "root disk of instance-1-1\n")
		}
	}
	_, err := runJob(t, append(append(append([]string{}, base...), vm...), "-confirm")...)
	var ue *UsageError
	if !errors.As(err, &ue) {
		t.Fatalf("-confirm with nothing waiting: %v", err)
	}
	out, err := runJob(t, append(base, "-resume")...)
	if err != nil || !strings.Contains(out, "resumed 0 operation(s)") {
		t.Fatalf("-resume: %v\n%s", err, out)
	}
}

// TestRealPools resizes a VM from one standalone pool to another, both
// given with -xapi: the hosts are named <pool>.<name_label>.
func TestRealPools(t *testing.T) {
	var urls []string
	for i := 0; i < 2; i++ {
		p, err := xenapitest.NewPool(xenapitest.Options{Dir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
		if i == 0 {
			if _, err := p.AddVM(xenapitest.VMSpec{Name: "web", Disks: []int64{8 << 20}, Memory: 512 << 20, Running: true}); err != nil {
				t.Fatal(err)
			}
		}
		u, err := p.Serve("127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		urls = append(urls, u)
	}
	pw := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(pw, []byte(xenapitest.DefaultPassword), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := runJob(t, "-xapi", urls[0], "-xapi", urls[1], "-password-file", pw, "-vm", "web", "-memory-mib", "1024", "-vcpus", "2", "-json")
	if err != nil {
		t.Fatal(err)
	}
	s := lastSummary(t, out)
	if s.SourceHost != "pool1.host1" || s.DestHost != "pool2.host1" || s.Outcome != "confirmed" || s.BytesSentRunning == 0 {
		t.Fatalf("summary %+v", s)
	}
	checkMoved(t, urls[1], "web", "host1", "")
}

// checkMoved reads the pool as any XenAPI client: the VM runs on host
// with the new flavor and its root disk kept the data fakepool wrote.
func checkMoved(t *testing.T, url, name, host, head string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := poolClient(ctx, t, url)
	defer c.Close(ctx)
	refs, err := c.VM.GetByNameLabel(ctx, name)
	if err != nil || len(refs) != 1 {
		t.Fatalf("VMs named %s: %v %v", name, refs, err)
	}
	r, err := c.VM.GetRecord(ctx, refs[0])
	if err != nil {
		t.Fatal(err)
	}
	h, err := c.Host.GetRecord(ctx, r.ResidentOn)
	if err != nil {
		t.Fatal(err)
	}
	if h.NameLabel != host || r.MemoryStaticMax != 1024<<20 || r.VCPUsMax != 2 {
		t.Fatalf("VM on %s with %d bytes, %d vCPUs", h.NameLabel, r.MemoryStaticMax, r.VCPUsMax)
	}
	root, err := rootOf(ctx, c, refs[0], r)
	if err != nil {
		t.Fatal(err)
	}
	if head == "" {
		return
	}
	resp, err := c.DoHTTP(ctx, xenapi.HTTPRequest{Method: "GET", Path: xenapitest.ExportRawVDIPath,
		Query: neturl.Values{"vdi": {string(root.VDI)}, "format": {"raw"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got := make([]byte, len(head))
	if _, err := io.ReadFull(resp.Body, got); err != nil || string(got) != head {
		t.Fatalf("root disk starts %q (%v)", got, err)
	}
}

// TestRealPoolsSuspended moves a running guest of one examples/fakepool
// pool into another with the guest suspended: it resumes in the other
// pool with its root disk byte for byte, and the confirm removes the
// source.
func TestRealPoolsSuspended(t *testing.T) {
	urls := servePools(t, buildCommand(t, t.TempDir(), "../fakepool", "fakepool"), 2, "-hosts", "1", "-vms", "1", "-disk-mib", "4")
	pw := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(pw, []byte(xenapitest.DefaultPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	src := poolClient(ctx, t, urls[0])
	defer src.Close(ctx)
	vms, err := guestVMs(ctx, src)
	if err != nil || len(vms) != 1 {
		t.Fatalf("guests of the first pool: %v, %v", vms, err)
	}
	var before rootDisk
	for ref, r := range vms {
		if before, err = rootOf(ctx, src, ref, r); err != nil {
			t.Fatal(err)
		}
	}
	sum := hashVDI(ctx, t, src, before.VDI, before.Size)
	out, err := runJob(t, "-xapi", urls[0], "-xapi", urls[1], "-password-file", pw, "-json",
		"-vm", before.Record.UUID, "-migrate", "-suspend")
	if err != nil {
		t.Fatal(err)
	}
	s := lastSummary(t, out)
	if s.Operation != "migrate-suspended" || s.Outcome != "confirmed" || !strings.HasPrefix(s.SourceHost, "pool1.") ||
		!strings.HasPrefix(s.DestHost, "pool2.") {
		t.Fatalf("summary %+v", s)
	}
	dst := poolClient(ctx, t, urls[1])
	defer dst.Close(ctx)
	var after rootDisk
	found := 0
	vms, err = guestVMs(ctx, dst)
	if err != nil {
		t.Fatal(err)
	}
	for ref, r := range vms {
		if r.NameLabel == before.Record.NameLabel {
			found++
			if after, err = rootOf(ctx, dst, ref, r); err != nil {
				t.Fatal(err)
			}
		}
	}
	if found != 1 || !after.Record.PowerState.Is(xenapi.VMPowerStateRunning) || after.Record.MemoryStaticMax != before.Record.MemoryStaticMax {
		t.Fatalf("%d VMs named %s in the second pool, %s", found, before.Record.NameLabel, after.Record.PowerState)
	}
	if got := hashVDI(ctx, t, dst, after.VDI, after.Size); got != sum {
		t.Fatalf("root disk in the second pool: SHA-256 %s, was %s", got, sum)
	}
	if vms, err := guestVMs(ctx, src); err != nil || len(vms) != 0 {
		t.Fatalf("the first pool still holds %d guests (%v)", len(vms), err)
	}
}
