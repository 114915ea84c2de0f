package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xenflow/xenflow/xenapi"
	"github.com/xenflow/xenflow/xenapi/xenapitest"
	"github.com/xenflow/xenflow/xenserver"
)

// lastJSON parses the last line of out as the summary.
func lastJSON(t *testing.T, out string) summary {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var s summary
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &s); err != nil {
		t.Fatalf("last line is not the JSON summary: %v\n%s", err, out)
	}
	return s
}

func TestDefaultRun(t *testing.T) {
	var out, errs bytes.Buffer
	if err := run(context.Background(), nil, &out, &errs); err != nil {
		t.Fatalf("run: %v\n%s%s", err, out.String(), errs.String())
	}
	for _, want := range []string{
		"active/None/none -> active/rescuing/none",
		"active/rescuing/none -> rescued/None/none",
		"as userdevice 1; the original is Halted, bootlocked=true",
		"rescued/unrescuing/none -> active/None/none",
		"the original is Running, bootlocked=false; rescue VMs left: 0",
		"holds the marker and its own data",
		"summary: instance " + simInstanceUUID,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestJSON(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"-json", "-disk-mib", "4"}, &out, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	s := lastJSON(t, out.String())
	if !s.MarkerWritten || !s.MarkerFound || s.RescueVMsLeft != 0 || s.OriginalBootLck || s.FinalVMState != "active" ||
		s.OriginalPower != "Running" || s.PasswordLength != 12 || s.RescueDisk != s.OriginalRoot || s.RescueVM == "" {
		t.Fatalf("summary: %+v", s)
	}
}

// TestRealPool runs against a pool served on 127.0.0.1, as
// examples/fakepool serves one: a VM without nova_uuid is adopted and
// rescued from a VDI given by uuid.
func TestRealPool(t *testing.T) {
	pool, err := xenapitest.NewPool(xenapitest.Options{Hosts: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	url, err := pool.Serve("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host := pool.Hosts()[1]
	if _, err := pool.AddVM(xenapitest.VMSpec{Name: "db1", Host: host.Name(), Disks: []int64{8 << 20}, Running: true}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c, err := xenapi.NewClient(url)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login(ctx, pool.User(), pool.Password(), "test"); err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	img, err := c.VDI.Create(ctx, xenapi.VDIRecord{NameLabel: "rescue", SR: xenapi.SRRef(host.SR()), VirtualSize: 1 << 20,
		Type: "user", OtherConfig: map[string]string{xenserver.KeyImageID: "img"}})
	if err != nil {
		t.Fatal(err)
	}
	imgUUID, err := c.VDI.GetUUID(ctx, img)
	if err != nil {
		t.Fatal(err)
	}
	pw := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(pw, []byte(pool.Password()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err = run(ctx, []string{"-xapi", url, "-user", pool.User(), "-password-file", pw, "-vm", "db1",
		"-rescue-image", imgUUID, "-json"}, &out, &out)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	s := lastJSON(t, out.String())
	if s.Host != host.Name() || s.MarkerWritten || s.RescueDisk != s.OriginalRoot || s.OriginalPower != "Running" || s.RescueVMsLeft != 0 {
		t.Fatalf("summary: %+v\n%s", s, out.String())
	}

	// With -db the instance's record outlives the run: a second run
	// takes it from the database, and -resume finds nothing unfinished.
	db := filepath.Join(t.TempDir(), "state.db")
	base := []string{"-xapi", url, "-user", pool.User(), "-password-file", pw, "-vm", "db1", "-db", db}
	for _, args := range [][]string{
		append(append([]string{}, base...), "-rescue-image", imgUUID, "-json"),
		append(append([]string{}, base...), "-rescue-image", imgUUID, "-json"),
		append(append([]string{}, base...), "-resume"),
	} {
		out.Reset()
		if err := run(ctx, args, &out, &out); err != nil {
			t.Fatalf("%q: %v\n%s", args, err, out.String())
		}
		if args[len(args)-1] == "-resume" {
			if !strings.Contains(out.String(), "resumed every rescue") {
				t.Fatalf("-resume printed %q", out.String())
			}
			continue
		}
		if s := lastJSON(t, out.String()); s.FinalVMState != "active" || s.RescueVMsLeft != 0 {
			t.Fatalf("summary with -db: %+v", s)
		}
	}
}

// lineWriter calls fn with everything written so far, under a lock.
type lineWriter struct {
	mu  sync.Mutex
	buf bytes.Buffer
	fn  func(string)
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, err := w.buf.Write(p)
	w.fn(w.buf.String())
	return n, err
}

func TestServe(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	served := make(chan string, 1)
	w := &lineWriter{fn: func(s string) {
		if i := strings.Index(s, "serving url="); i >= 0 && strings.HasSuffix(s, "\n") {
			select {
			case served <- strings.Fields(s[i+len("serving url="):])[0]:
			default:
			}
		}
	}}
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"-serve", "127.0.0.1:0"}, w, w) }()
	var url string
	select {
	case url = <-served:
	case err := <-done:
		t.Fatalf("run ended before serving: %v", err)
	}
	// Any XenAPI client sees the result: the instance's VM, running.
	c, err := xenapi.NewClient(url)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login(ctx, "root", "xenroot", "test"); err != nil {
		t.Fatal(err)
	}
	refs, err := c.VM.GetByNameLabel(ctx, simInstanceName)
	if err != nil || len(refs) != 1 {
		t.Fatalf("the served pool: %v, %v", refs, err)
	}
	_ = c.Close(ctx)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run after interrupt: %v", err)
	}
}

func TestFlags(t *testing.T) {
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args   []string
		status int
		says   string
	}{
		{[]string{"-h"}, exitOK, "usage: rescue"},
		{[]string{"-nope"}, exitUsage, "flag provided but not defined"},
		{[]string{"extra"}, exitUsage, "unexpected"},
		{[]string{"-disk-mib", "0"}, exitUsage, "-disk-mib"},
		{[]string{"-vm", "x"}, exitUsage, "-vm: needs -xapi"},
		{[]string{"-resume"}, exitUsage, "-resume: needs -db"},
		{[]string{"-resume", "-db", "s.db"}, exitUsage, "-resume: needs -xapi"},
		{[]string{"-xapi", "ftp://x"}, exitUsage, "not an http"},
		{[]string{"-xapi", "http://127.0.0.1:1", "-vm", "x", "-rescue-image", "y"}, exitUsage, "-password-file: required"},
		{[]string{"-xapi", "http://127.0.0.1:1", "-serve", "127.0.0.1:0"}, exitUsage, "-serve"},
		{[]string{"-xapi", "http://127.0.0.1:1", "-vm", "x", "-rescue-image", "y", "-password-file", pw}, exitUsage, "no password"},
	}
	for _, tt := range tests {
		var out, errs bytes.Buffer
		err := run(context.Background(), tt.args, &out, &errs)
		status := exitStatus(err, &errs)
		if status != tt.status || !strings.Contains(out.String()+errs.String(), tt.says) {
			t.Errorf("%v: status %d, want %d; output %q lacks %q", tt.args, status, tt.status, out.String()+errs.String(), tt.says)
		}
		if tt.status == exitOK && !errors.Is(err, flag.ErrHelp) {
			t.Errorf("%v: %v", tt.args, err)
		}
	}
}
