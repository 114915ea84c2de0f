package main

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
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
	for _, args := range [][]string{{"-hosts", "0"}, {"-nosuchflag"}, {"extra"}} {
		if err := run(context.Background(), args, io.Discard, io.Discard); err == nil {
			t.Errorf("%q: no error", args)
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
