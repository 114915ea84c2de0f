package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/migrate"
	"github.com/xenflow/xenflow/quota"
	"github.com/xenflow/xenflow/sqlstore"
	sm "github.com/xenflow/xenflow/statemachine"
	"github.com/xenflow/xenflow/xenapi"
	"github.com/xenflow/xenflow/xenapi/xenapitest"
	"github.com/xenflow/xenflow/xenserver"
)

// buildCommand builds the command in pkg (a directory relative to this
// one) into dir as name and returns the binary's path.
func buildCommand(t *testing.T, dir, pkg, name string) string {
	t.Helper()
	bin := filepath.Join(dir, name)
	if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	return bin
}

// servePool runs fakepool (bin) as a process of its own on 127.0.0.1 with
// extra flags and returns its URL; the process is stopped by its pid.
func servePool(t *testing.T, bin string, extra ...string) string {
	t.Helper()
	return servePools(t, bin, 1, extra...)[0]
}

// servePools runs fakepool (bin) serving n pools and returns their URLs.
func servePools(t *testing.T, bin string, n int, extra ...string) []string {
	t.Helper()
	args := append([]string{"-listen", "127.0.0.1:0", "-dir", filepath.Join(t.TempDir(), "pool"), "-pools", strconv.Itoa(n)}, extra...)
	cmd := exec.Command(bin, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	r := bufio.NewReader(stdout)
	var urls []string
	for len(urls) < n {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		m := regexp.MustCompile(`^url=(http://127\.0\.0\.1:\d+/) `).FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("fakepool said %q", line)
		}
		urls = append(urls, m[1])
	}
	return urls
}

// poolView is what a XenAPI client sees of the pool, for the checks.
type poolView struct {
	vms, vdis int
	// hash is the SHA-256 of the root disk of the VM claiming the
	// instance on host; host is the name_label of the host it runs on.
	hash, host string
}

// viewPool counts the pool's guest VMs and VDIs and hashes the root disk
// of the VM that claims instanceUUID (nova_uuid) on host (any host when
// empty; the VM named name when instanceUUID is empty).
func viewPool(ctx context.Context, t *testing.T, url, name, instanceUUID, host string) poolView {
	t.Helper()
	c := poolClient(ctx, t, url)
	defer c.Close(ctx)
	vms, err := guestVMs(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	v := poolView{vms: len(vms), vdis: managedVDIs(ctx, t, c, "", new([]string))}
	var found []string
	for ref, r := range vms {
		claims := r.OtherConfig[xenserver.KeyNovaUUID] == instanceUUID && instanceUUID != ""
		if !claims && !(instanceUUID == "" && r.NameLabel == name) {
			continue
		}
		h, err := c.Host.GetRecord(ctx, r.ResidentOn)
		if err != nil || (host != "" && h.NameLabel != host) || r.PowerState != xenapi.VMPowerStateRunning {
			continue
		}
		root, err := rootOf(ctx, c, ref, r)
		if err != nil {
			t.Fatal(err)
		}
		v.host, v.hash = h.NameLabel, hashVDI(ctx, t, c, root.VDI, root.Size)
		found = append(found, r.NameLabel)
	}
	if len(found) != 1 {
		t.Fatalf("running VMs claiming %s %s on %q: %v", name, instanceUUID, host, found)
	}
	return v
}

// poolClient logs in to the simulated pool at url as its user.
func poolClient(ctx context.Context, t *testing.T, url string) *xenapi.Client {
	t.Helper()
	c, err := xenapi.NewClient(url)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login(ctx, xenapitest.DefaultUser, xenapitest.DefaultPassword, "resize-test"); err != nil {
		t.Fatal(err)
	}
	return c
}

// hashVDI is the SHA-256 of a VDI's raw content.
func hashVDI(ctx context.Context, t *testing.T, c *xenapi.Client, vdi xenapi.VDIRef, size int64) string {
	t.Helper()
	sum, err := vdiSHA256(ctx, c, vdi, size)
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

// crashRun runs the resize binary with args, killed by itself with
// SIGKILL after its crashAfter-th persisted step (0: not at all); it
// reports whether the process was killed.
func crashRun(t *testing.T, bin string, crashAfter int, args ...string) (killed bool, out string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d", crashAfterEnv, crashAfter))
	b, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			return true, string(b)
		}
	}
	if err != nil {
		t.Fatalf("resize %q: %v\n%s", args, err, b)
	}
	return false, string(b)
}

// crashPoint is one stop of the crash test: the flow (the operation's
// flags) and the step after which the process is killed.
type crashPoint struct {
	flow  string
	after int
}

// crashFlows are the flows the points are spread over, in order.
var crashFlows = []struct {
	name string
	args []string
}{
	{"resize-confirm", []string{"-memory-mib", "1024"}},
	{"resize-revert", []string{"-memory-mib", "1024", "-revert"}},
	{"migrate-confirm", []string{"-migrate"}},
}

// crashPoints spreads n points over the flows: every step of the first,
// then of the next, as steps[i] counts flow i's.
func crashPoints(n int, steps []int) []crashPoint {
	var pts []crashPoint
	for i, f := range crashFlows {
		for s := 1; s <= steps[i] && len(pts) < n; s++ {
			pts = append(pts, crashPoint{flow: f.name, after: s})
		}
	}
	return pts
}

// TestRealCrashes kills examples/resize with SIGKILL after each of 20
// persisted steps of a resize against examples/fakepool running as a
// process of its own, then runs it again with -resume on the same SQLite
// file: the instance ends ACTIVE or RESIZED, the VM that claims it runs
// on the host the Store names with the disk's content unchanged, the
// quota is exact, and after a confirm of a resize left in VERIFY_RESIZE
// the pool has as many VMs and VDIs as before.
func TestRealCrashes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the commands 40 times")
	}
	dir := t.TempDir()
	resizeBin := buildCommand(t, dir, ".", "resize")
	poolBin := buildCommand(t, dir, "../fakepool", "fakepool")
	pw := filepath.Join(dir, "password")
	if err := os.WriteFile(pw, []byte(xenapitest.DefaultPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var steps []int
	for _, f := range crashFlows {
		steps = append(steps, countSteps(t, resizeBin, poolBin, pw, f.args))
	}
	pts := crashPoints(20, steps)
	if len(pts) != 20 {
		t.Fatalf("the flows persist %v steps: fewer than 20 points", steps)
	}
	t.Logf("steps persisted per flow %v", steps)
	for _, pt := range pts {
		t.Run(fmt.Sprintf("%s/after-%d", pt.flow, pt.after), func(t *testing.T) {
			t.Parallel()
			crashAndResume(t, resizeBin, poolBin, pw, pt)
		})
	}
}

// countSteps runs a flow to its end and returns how many steps it
// persisted (as the test hook counts them).
func countSteps(t *testing.T, resizeBin, poolBin, pw string, flow []string) int {
	t.Helper()
	url := servePool(t, poolBin, "-hosts", "2")
	args := append([]string{"-xapi", url, "-password-file", pw, "-vm", "instance-1-1",
		"-db", filepath.Join(t.TempDir(), "count.db")}, flow...)
	_, out := crashRun(t, resizeBin, 0, args...)
	n := strings.Count(out, "persisted step ")
	if n < 4 {
		t.Fatalf("%q persisted %d steps:\n%s", flow, n, out)
	}
	return n
}

// crashAndResume is one point of TestRealCrashes.
func crashAndResume(t *testing.T, resizeBin, poolBin, pw string, pt crashPoint) {
	// The deadline covers the runs of the commands too: 20 points run at
	// once, each with its pool and two or three runs, on a machine that
	// may be busy.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	url := servePool(t, poolBin, "-hosts", "2")
	before := viewPool(ctx, t, url, "instance-1-1", "", "")
	dbFile := filepath.Join(t.TempDir(), "state.db")
	base := []string{"-xapi", url, "-password-file", pw, "-db", dbFile}
	args := append(append([]string{}, base...), "-vm", "instance-1-1")
	for _, f := range crashFlows {
		if f.name == pt.flow {
			args = append(args, f.args...)
		}
	}
	if killed, out := crashRun(t, resizeBin, pt.after, args...); !killed {
		t.Fatalf("the run ended before step %d:\n%s", pt.after, out)
	}
	if _, out := crashRun(t, resizeBin, 0, append(base, "-resume")...); !strings.Contains(out, "resumed ") {
		t.Fatalf("-resume printed:\n%s", out)
	}
	inst := checkStored(ctx, t, dbFile)
	after := viewPool(ctx, t, url, "", inst.UUID, inst.Host)
	if after.hash != before.hash {
		t.Fatalf("the disk on %s changed: %s, was %s", inst.Host, after.hash, before.hash)
	}
	if inst.VMState == sm.VMResized {
		if _, out := crashRun(t, resizeBin, 0, append(base, "-vm", "instance-1-1", "-confirm")...); !strings.Contains(out, "confirmed: instance") {
			t.Fatalf("-confirm printed:\n%s", out)
		}
		inst = checkStored(ctx, t, dbFile)
		after = viewPool(ctx, t, url, "", inst.UUID, inst.Host)
	}
	if after.vms != before.vms || after.vdis != before.vdis || after.hash != before.hash {
		t.Fatalf("pool after: %d VMs, %d VDIs, disk %s; before: %d, %d, %s",
			after.vms, after.vdis, after.hash, before.vms, before.vdis, before.hash)
	}
}

// checkStored reads the instance from the database: a fence log that
// passes sqlstore.CheckFenceLog, the instance ACTIVE or RESIZED with no
// task, no operation left in progress, and the quota usage exactly
// what its flavors charge with nothing pending. It returns the instance.
func checkStored(ctx context.Context, t *testing.T, dbFile string) *compute.Instance {
	t.Helper()
	db, err := sqlstore.Open(ctx, dbFile)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if log, err := db.FenceLog(ctx, ""); err != nil || len(log) == 0 || sqlstore.CheckFenceLog(log) != nil {
		t.Fatalf("fence log of %d entries (%v): %v", len(log), err, sqlstore.CheckFenceLog(log))
	}
	insts, err := db.ListInstances(ctx, compute.InstanceFilter{})
	if err != nil || len(insts) != 1 {
		t.Fatalf("instances in the Store: %d, %v", len(insts), err)
	}
	inst := insts[0]
	if (inst.VMState != sm.VMActive && inst.VMState != sm.VMResized) || inst.TaskState != sm.TaskNone {
		t.Fatalf("instance %s/%s after -resume", inst.VMState, inst.TaskState)
	}
	ledger, err := quota.NewLedger(quota.WithStore(db.Quota()))
	if err != nil {
		t.Fatal(err)
	}
	u, err := ledger.Usage(ctx, inst.ProjectID)
	if err != nil || u.Pending != 0 {
		t.Fatalf("quota: %d reservations pending (%v)", u.Pending, err)
	}
	drift, err := ledger.Reconcile(ctx, inst.ProjectID, []quota.Charge{migrate.Charge(inst)})
	if err != nil || len(drift) != 0 {
		t.Fatalf("quota of %s/%s drifted: %+v (%v)", inst.VMState, inst.TaskState, drift, err)
	}
	return inst
}
