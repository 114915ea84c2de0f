package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xenflow/xenflow/xenapi"
)

var urlLine = regexp.MustCompile(`^url=(http://127\.0\.0\.1:\d+/) user=(\S+) password=(\S+)$`)

// check logs in with the xenapi client and lists the seeded VMs.
func check(t *testing.T, url, user, password string, hosts int) {
	t.Helper()
	ctx := context.Background()
	c, err := xenapi.NewClient(url)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login(ctx, user, password, "fakepool-test"); err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	recs, err := c.VM.GetAllRecords(ctx)
	if err != nil {
		t.Fatal(err)
	}
	running, halted := 0, 0
	for _, r := range recs {
		if r.IsControlDomain {
			continue
		}
		if r.PowerState == xenapi.VMPowerStateRunning {
			running++
		} else {
			halted++
		}
	}
	if running != hosts || halted != hosts {
		t.Fatalf("%d running and %d halted VMs, want %d of each", running, halted, hosts)
	}
}

func TestRun(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-listen", "127.0.0.1:0", "-hosts", "3", "-dir", dir}, pw, io.Discard)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	m := urlLine.FindStringSubmatch(strings.TrimSuffix(line, "\n"))
	if m == nil {
		t.Fatalf("first line %q", line)
	}
	check(t, m[1], m[2], m[3], 3)
	vhds, _ := filepath.Glob(filepath.Join(dir, "host*", "var", "run", "sr-mount", "*", "*.vhd"))
	if len(vhds) != 3*2*2 {
		t.Fatalf("%d VHD files", len(vhds))
	}
	cancel()
	go io.Copy(io.Discard, pr)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after cancel")
	}
}

func TestRunBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-hosts", "0"}, {"-nosuchflag"}, {"extra"}, {"-pools", "0"},
		{"-fault", "VM.start"}, {"-fault", "VM.start:x:HOST_OFFLINE"}, {"-fault", "VM.start:-1:HOST_OFFLINE"}, {"-fault", ":1:X"},
		{"-listen", "127.0.0.1"}, {"-body-timeout", "soon"},
		{"-vms", "-1"}, {"-vms", "1000"}, {"-disk-mib", "0"},
	} {
		if err := run(context.Background(), args, io.Discard, io.Discard); err == nil || errors.Is(err, flag.ErrHelp) {
			t.Errorf("%q: error %v", args, err)
		}
	}
}

// TestHelp: -h prints the usage, naming every flag, and is not an error
// for main.
func TestHelp(t *testing.T) {
	var stderr strings.Builder
	err := run(context.Background(), []string{"-h"}, io.Discard, &stderr)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("run -h: %v", err)
	}
	for _, f := range []string{"-fault", "-pools", "-hosts", "-listen", "-shared-sr", "-body-timeout", "-header-timeout", "METHOD:N:CODE"} {
		if !strings.Contains(stderr.String(), f) {
			t.Errorf("usage does not mention %s:\n%s", f, stderr.String())
		}
	}
}

// start runs the program with args until the test ends and returns the
// url lines it printed.
func start(t *testing.T, args []string, lines int) []string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, args, pw, io.Discard)
		pw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		go io.Copy(io.Discard, pr)
		select {
		case err := <-done:
			if err != nil {
				t.Error(err)
			}
		case <-time.After(10 * time.Second):
			t.Error("run did not return after cancel")
		}
	})
	r := bufio.NewReader(pr)
	var out []string
	for i := 0; i < lines; i++ {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, strings.TrimSuffix(line, "\n"))
	}
	return out
}

// TestRunPools serves three standalone pools on consecutive ports.
func TestRunPools(t *testing.T) {
	lines := start(t, []string{"-pools", "3", "-hosts", "2", "-shared-sr", "-dir", t.TempDir()}, 3)
	var ports []int
	uuids := map[string]bool{}
	for _, line := range lines {
		m := urlLine.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("line %q", line)
		}
		check(t, m[1], m[2], m[3], 2)
		u, err := url.Parse(m[1])
		if err != nil {
			t.Fatal(err)
		}
		port, _ := strconv.Atoi(u.Port())
		ports = append(ports, port)
		c, err := xenapi.NewClient(m[1])
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Login(context.Background(), m[2], m[3], "fakepool-test"); err != nil {
			t.Fatal(err)
		}
		pools, err := c.Call(context.Background(), "pool.get_all_records")
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range pools.(map[string]any) {
			uuids[r.(map[string]any)["uuid"].(string)] = true
		}
		srs, err := c.Call(context.Background(), "SR.get_all_records")
		if err != nil {
			t.Fatal(err)
		}
		shared := 0
		for _, r := range srs.(map[string]any) {
			if r.(map[string]any)["shared"] == true {
				shared++
			}
		}
		if shared != 1 {
			t.Fatalf("%d shared SRs with -shared-sr, want 1", shared)
		}
		c.Close(context.Background())
	}
	if ports[1] != ports[0]+1 || ports[2] != ports[0]+2 {
		t.Fatalf("ports %v are not consecutive", ports)
	}
	if len(uuids) != 3 {
		t.Fatalf("%d distinct pools, want 3", len(uuids))
	}
}

// TestRunFault injects failures from the command line: the N-th call
// fails with the code and parameters, the others succeed.
func TestRunFault(t *testing.T) {
	lines := start(t, []string{"-hosts", "1", "-fault", "VM.get_all_records:2:HOST_OFFLINE:OpaqueRef:x", "-fault", "VM.get_all:0:INTERNAL_ERROR"}, 1)
	ctx := context.Background()
	c := login(ctx, t, lines[0])
	defer c.Close(ctx)
	for i, want := range []string{"", "HOST_OFFLINE", ""} {
		_, err := c.VM.GetAllRecords(ctx)
		var f *xenapi.Failure
		switch {
		case want == "" && err != nil:
			t.Fatalf("call %d: %v", i+1, err)
		case want != "" && (!errors.As(err, &f) || f.Code != want || len(f.Params) != 2 || f.Params[0] != "OpaqueRef"):
			t.Fatalf("call %d: %v, want %s [OpaqueRef x]", i+1, err, want)
		}
	}
	for i := 0; i < 2; i++ {
		var f *xenapi.Failure
		if _, err := c.Call(ctx, "VM.get_all"); !errors.As(err, &f) || f.Code != "INTERNAL_ERROR" {
			t.Fatalf("VM.get_all with N 0, call %d: %v", i+1, err)
		}
	}
}

// TestBinarySignal builds the program, runs it, reads its one line and
// stops it with SIGINT: it must exit 0.
func TestBinarySignal(t *testing.T) {
	if testing.Short() || runtime.GOOS == "windows" {
		t.Skip("builds a binary")
	}
	bin := filepath.Join(t.TempDir(), "fakepool")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	help := exec.Command(bin, "-h")
	if out, err := help.CombinedOutput(); err != nil || !strings.Contains(string(out), "-pools") {
		t.Fatalf("fakepool -h: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "-hosts", "1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	m := urlLine.FindStringSubmatch(strings.TrimSuffix(line, "\n"))
	if m == nil {
		t.Fatalf("first line %q", line)
	}
	check(t, m[1], m[2], m[3], 1)
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	select {
	case err := <-waited:
		if err != nil {
			t.Fatalf("exit after SIGINT: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("still running 10 s after SIGINT")
	}
}

// TestRunGuests: -vms seeds that many running guests, named in order,
// spread over the hosts, each tagged with its own nova_uuid and with one
// root disk of -disk-mib.
func TestRunGuests(t *testing.T) {
	lines := start(t, []string{"-listen", "127.0.0.1:0", "-hosts", "2", "-vms", "5", "-disk-mib", "2", "-dir", t.TempDir()}, 1)
	ctx := context.Background()
	c := login(ctx, t, lines[0])
	defer c.Close(ctx)
	recs, err := c.VM.GetAllRecords(ctx)
	if err != nil {
		t.Fatal(err)
	}
	perHost, tags := map[xenapi.HostRef]int{}, map[string]bool{}
	for _, r := range recs {
		if r.IsControlDomain {
			continue
		}
		if !regexp.MustCompile(`^guest-1-00[1-5]$`).MatchString(r.NameLabel) || r.PowerState != xenapi.VMPowerStateRunning {
			t.Errorf("VM %s %s", r.NameLabel, r.PowerState)
		}
		perHost[r.ResidentOn]++
		tags[r.OtherConfig["nova_uuid"]] = true
		checkGuestRoot(ctx, t, c, r, 2<<20)
	}
	if len(tags) != 5 || len(perHost) != 2 {
		t.Fatalf("%d tagged guests on %d hosts, want 5 on 2", len(tags), len(perHost))
	}
}

// checkGuestRoot checks that a seeded guest has one disk, of size bytes.
func checkGuestRoot(ctx context.Context, t *testing.T, c *xenapi.Client, r xenapi.VMRecord, size int64) {
	t.Helper()
	if len(r.VBDs) != 1 {
		t.Fatalf("VM %s has %d VBDs, want a root disk only", r.NameLabel, len(r.VBDs))
	}
	b, err := c.VBD.GetRecord(ctx, r.VBDs[0])
	if err != nil {
		t.Fatal(err)
	}
	d, err := c.VDI.GetRecord(ctx, b.VDI)
	if err != nil || d.VirtualSize != size {
		t.Fatalf("VM %s root disk: %d bytes (%v), want %d", r.NameLabel, d.VirtualSize, err, size)
	}
}

// login logs in to the pool a url line names, as its user.
func login(ctx context.Context, t *testing.T, line string) *xenapi.Client {
	t.Helper()
	m := urlLine.FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("line %q", line)
	}
	c, err := xenapi.NewClient(m[1])
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login(ctx, m[2], m[3], "fakepool-test"); err != nil {
		t.Fatal(err)
	}
	return c
}
