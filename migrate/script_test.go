package migrate

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/compute/computetest"
	"github.com/xenflow/xenflow/quota"
	"github.com/xenflow/xenflow/scheduler"
	sm "github.com/xenflow/xenflow/statemachine"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the expected output of the scripts under testdata")

// TestScripts runs every testdata/*.txt scenario: each case is a command
// line, a "----" line and the expected output up to a blank line (as in
// etcd raft's testdata). -rewrite writes the actual output instead.
func TestScripts(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts: %v", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) { runScript(t, f) })
	}
}

func runScript(t *testing.T, path string) {
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(string(raw), "\n"), "\n")
	h := newHarness(t, 3)
	var out []string
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if strings.TrimSpace(l) == "" || strings.HasPrefix(l, "#") {
			out = append(out, l)
			continue
		}
		if i+1 >= len(lines) || lines[i+1] != "----" {
			t.Fatalf("%s:%d: command %q without ----", path, i+1, l)
		}
		j := i + 2
		for j < len(lines) && lines[j] != "" {
			j++
		}
		want := strings.Join(lines[i+2:j], "\n")
		got := strings.Join(h.command(l), "\n")
		if got == "" {
			got = "ok"
		}
		if got != want && !*rewrite {
			t.Errorf("%s:%d: %s\n--- got\n%s\n--- want\n%s", path, i+1, l, got, want)
		}
		out = append(out, l, "----", got)
		i = j - 1
	}
	if *rewrite {
		if err := os.WriteFile(path, []byte(strings.Join(out, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// args parses "key=value" and bare "flag" words.
type args map[string]string

func parseArgs(words []string) args {
	a := args{}
	for _, w := range words {
		k, v, ok := strings.Cut(w, "=")
		if !ok {
			v = "true"
		}
		a[k] = v
	}
	return a
}

func (a args) int(k string, def int) int {
	if v, ok := a[k]; ok {
		n, err := strconv.Atoi(v)
		if err == nil {
			return n
		}
	}
	return def
}

func (a args) or(k, def string) string {
	if v, ok := a[k]; ok {
		return v
	}
	return def
}

// command runs one script line and returns its output lines.
func (h *harness) command(line string) []string {
	words := strings.Fields(line)
	a := parseArgs(words[1:])
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if n := a.int("crash-after", 0); n > 0 {
		// A process that stops after n writes never releases its leases.
		h.store.armCrash(n, cancel)
		h.store.dropRelease = true
		defer func() { h.store.armCrash(0, nil); h.store.dropRelease = false }()
	}
	h.trace.take()
	h.trace.on = true
	defer func() { h.trace.on = false }()
	if out, ok := h.setupCommand(ctx, words[0], a); ok {
		return stable(append(h.trace.take(), out...))
	}
	switch words[0] {
	case "show":
		return stable(h.show(ctx, a["id"]))
	case "actions":
		return stable(h.actions(ctx, a["id"]))
	case "check":
		return errLines(h.invariants(ctx, a["id"]))
	}
	return stable(append(h.trace.take(), h.flowCommand(ctx, words[0], a)...))
}

// setupCommand runs a command that sets the scene (hosts, instances,
// options, limits, faults, leases, the clock); false when verb is not one.
func (h *harness) setupCommand(ctx context.Context, verb string, a args) ([]string, bool) {
	switch verb {
	case "reset":
		*h = *newHarness(h.t, a.int("hosts", 3))
	case "host":
		h.addHost(computetest.HostConfig{Host: a["name"], TotalUsableRAMMB: int64(a.int("ram", 65536)),
			VCPUsTotal: int64(a.int("vcpus", 32)), TotalUsableDiskGB: int64(a.int("disk", 2000)),
			Disabled: a["disabled"] == "true"})
	case "instance":
		vm := sm.VMState(a.or("state", "active"))
		return errLines(h.addInstance(ctx, a["id"], a.or("host", "host1"), a.or("flavor", "small"), vm, a["locked"] == "true")), true
	case "options":
		h.opts.NovaCompatibleErrors = a["nova-errors"] == "true"
		h.opts.AllowResizeToSameHost = a["resize-same-host"] == "true"
		h.opts.ResizeConfirmWindow, _ = time.ParseDuration(a.or("window", "0s"))
		if a["ghost-host"] == "true" {
			h.hosts = append(h.hosts, "ghost")
		}
		h.orchs = map[string]*Orchestrator{}
	case "limits":
		return errLines(h.ledger.SetLimits(ctx, testProject, quota.Limits{quota.Cores: int64(a.int("cores", -1)),
			quota.RAM: int64(a.int("ram", -1)), quota.Instances: -1})), true
	case "fail":
		f := computetest.Fault{Method: computetest.Method(a["method"]), Step: a["step"], Nth: a.int("nth", 1)}
		if a["rollback"] == "true" {
			f.Err = &compute.InstanceFaultRollback{Err: computetest.ErrInjected}
		}
		h.driver.InjectFault(f)
	case "clear-faults":
		h.driver.ClearFaults()
		h.driver.SetHook(h.traceHook)
	case "flavor-disable":
		h.flavors[a["id"]].Disabled = true
	case "hold":
		_, err := h.store.AcquireLease(ctx, compute.LeaseRequest{InstanceUUID: a["id"], Owner: a["owner"], TTL: time.Hour})
		return errLines(err), true
	case "force":
		return errLines(h.force(ctx, a["id"], sm.TaskState(a["task"]))), true
	case "advance":
		d, _ := time.ParseDuration(a["d"])
		h.clock.Advance(d)
	default:
		return nil, false
	}
	return nil, true
}

// force rewrites an instance's task_state under a lease of its own, as
// a record left by another control plane (Nova leaves resize_migrated
// when its source compute stops after the disk move).
func (h *harness) force(ctx context.Context, id string, task sm.TaskState) error {
	l, err := h.store.AcquireLease(ctx, compute.LeaseRequest{InstanceUUID: id, Owner: "force", TTL: time.Second})
	if err != nil {
		return err
	}
	defer h.store.ReleaseLease(ctx, l)
	inst, err := h.mem.GetInstance(ctx, id)
	if err != nil {
		return err
	}
	mig, err := h.mem.GetMigration(ctx, inst.SystemMetadata[SysMetaMigration])
	if err != nil {
		return err
	}
	_, _, err = h.store.Transition(ctx, compute.TransitionRequest{InstanceUUID: id, MigrationUUID: mig.UUID,
		Expect: inst.FlowState(mig), Lease: l, Apply: func(i *compute.Instance, _ *compute.Migration) error {
			i.TaskState = task
			if task == sm.TaskResizeMigrated && i.OldFlavor != nil {
				i.Flavor = i.OldFlavor.Clone()
			}
			return nil
		}})
	return err
}

// actions lists an instance's actions and their events.
func (h *harness) actions(ctx context.Context, id string) []string {
	acts, err := h.mem.ListActions(ctx, id)
	if err != nil {
		return errLines(err)
	}
	var out []string
	for _, a := range acts {
		done := "running"
		if !a.FinishTime.IsZero() {
			done = "finished"
		}
		out = append(out, fmt.Sprintf("action %s %s message=%q", a.Action, done, a.Message))
		for _, e := range a.Events {
			out = append(out, fmt.Sprintf("  event %s host=%s %s", e.Event, e.Host, e.Result))
		}
	}
	return out
}

// flowCommand runs an orchestrator operation and appends the result and
// the instance's description.
func (h *harness) flowCommand(ctx context.Context, verb string, a args) []string {
	o := h.orch(a.or("owner", "a"))
	var res *Result
	var err error
	switch verb {
	case "resize":
		res, err = o.Resize(ctx, ResizeRequest{InstanceUUID: a["id"], FlavorID: a["flavor"], Admin: a["admin"] == "true"})
	case "migrate":
		res, err = o.Migrate(ctx, MigrateRequest{InstanceUUID: a["id"], TargetHost: a["target"], Suspend: a["suspend"] == "true"})
	case "confirm":
		res, err = o.Confirm(ctx, ActionRequest{InstanceUUID: a["id"]})
	case "revert":
		res, err = o.Revert(ctx, ActionRequest{InstanceUUID: a["id"]})
	case "resume":
		ocs, err := o.Resume(ctx)
		var out []string
		for _, oc := range ocs {
			out = append(out, fmt.Sprintf("resumed %s: %s -> %s%s", oc.InstanceUUID, oc.From, oc.To, errSuffix(oc.Err)))
		}
		return append(append(h.trace.take(), out...), errLines(err)...)
	case "poll":
		done, err := o.PollAutoConfirm(ctx)
		out := append(h.trace.take(), fmt.Sprintf("auto-confirmed %d", len(done)))
		return append(out, errLines(err)...)
	default:
		return []string{"unknown command " + verb}
	}
	out := h.trace.take()
	if err != nil {
		out = append(out, "error: "+describe(err))
	} else if res != nil {
		out = append(out, fmt.Sprintf("result: %s (migration %s -> %s, attempts %d)", res.State, res.SourceHost,
			res.DestHost, res.Attempts))
	}
	if a["id"] != "" {
		out = append(out, h.show(context.Background(), a["id"])...)
	}
	return out
}

// describe names an error's most telling type and its message.
func describe(err error) string {
	var op *OperationError
	if errors.As(err, &op) {
		return fmt.Sprintf("%s in %s: %v", typeName(op.Err), op.State, op.Err)
	}
	return fmt.Sprintf("%s: %v", typeName(err), err)
}

// typeName names the most telling typed error in err's chain.
func typeName(err error) string {
	var (
		over *quota.OverQuotaError
		nvh  *scheduler.NoValidHostError
		rb   *compute.InstanceFaultRollback
		held *compute.LeaseHeldError
		st   *compute.UnexpectedStateError
		cl   *ClaimError
		ie   *InterruptedError
	)
	for _, target := range []any{&over, &nvh, &rb, &held, &st, &cl, &ie} {
		if errors.As(err, target) {
			return fmt.Sprintf("%T", reflect.ValueOf(target).Elem().Interface())
		}
	}
	for u := errors.Unwrap(err); u != nil; u = errors.Unwrap(u) {
		err = u
	}
	return fmt.Sprintf("%T", err)
}

func errSuffix(err error) string {
	if err == nil {
		return ""
	}
	return " (" + describe(err) + ")"
}

func errLines(err error) []string {
	if err == nil {
		return nil
	}
	return []string{"error: " + describe(err)}
}
