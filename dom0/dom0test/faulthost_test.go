package dom0test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/xenflow/xenflow/dom0"
	"github.com/xenflow/xenflow/vhd"
)

// newHost wraps a local host over a fresh directory holding a/f (4 KiB)
// and the directory d.
func newHost(t *testing.T) *FaultHost {
	t.Helper()
	l, err := dom0.Local(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	if err := l.MkdirAll("/a", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := l.MkdirAll("/d", 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := l.OpenFile("/a/f", os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(make([]byte, 4096), 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return NewFaultHost(l)
}

// hostOps are the host's operations, each with the path it logs and a
// check that the wrapped host was not touched when it failed.
var hostOps = []struct {
	op, path string
	call     func(h dom0.Host) error
	// untouched checks the wrapped host after the failed call.
	untouched func(h dom0.Host) error
}{
	{OpOpen, "/a/f", func(h dom0.Host) error { _, err := h.Open("/a/f"); return err }, nil},
	{OpOpenFile, "/a/new", func(h dom0.Host) error {
		_, err := h.OpenFile("/a/new", os.O_RDWR|os.O_CREATE, 0o644)
		return err
	}, missing("/a/new")},
	{OpStat, "/a/f", func(h dom0.Host) error { _, err := h.Stat("/a/f"); return err }, nil},
	{OpRename, "/a/f -> /a/g", func(h dom0.Host) error { return h.Rename("/a/f", "/a/g") }, missing("/a/g")},
	{OpLink, "/a/f -> /a/l", func(h dom0.Host) error { return h.Link("/a/f", "/a/l") }, missing("/a/l")},
	{OpRemove, "/a/f", func(h dom0.Host) error { return h.Remove("/a/f") }, present("/a/f")},
	{OpMkdirAll, "/m/n", func(h dom0.Host) error { return h.MkdirAll("/m/n", 0o755) }, missing("/m")},
	{OpReadDir, "/a", func(h dom0.Host) error { _, err := h.ReadDir("/a"); return err }, nil},
	{OpChmod, "/a/f", func(h dom0.Host) error { return h.Chmod("/a/f", 0o600) }, mode("/a/f", 0o644)},
	{OpTruncate, "/a/f", func(h dom0.Host) error { return h.Truncate("/a/f", 0) }, size("/a/f", 4096)},
	{OpRemoveAll, "/d", func(h dom0.Host) error { return h.RemoveAll("/d") }, present("/d")},
	{OpRun, "touch ./a/ran", func(h dom0.Host) error {
		_, _, err := h.Run(context.Background(), []string{"touch", "./a/ran"})
		return err
	}, missing("/a/ran")},
}

func missing(name string) func(dom0.Host) error {
	return func(h dom0.Host) error {
		if _, err := h.Stat(name); !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%s: %v, want it missing", name, err)
		}
		return nil
	}
}

func present(name string) func(dom0.Host) error {
	return func(h dom0.Host) error {
		_, err := h.Stat(name)
		return err
	}
}

func mode(name string, want fs.FileMode) func(dom0.Host) error {
	return func(h dom0.Host) error {
		fi, err := h.Stat(name)
		if err == nil && fi.Mode().Perm() != want {
			err = fmt.Errorf("%s: mode %v, want %v", name, fi.Mode().Perm(), want)
		}
		return err
	}
}

func size(name string, want int64) func(dom0.Host) error {
	return func(h dom0.Host) error {
		fi, err := h.Stat(name)
		if err == nil && fi.Size() != want {
			err = fmt.Errorf("%s: size %d, want %d", name, fi.Size(), want)
		}
		return err
	}
}

// checkInjected: err is the *dom0.OpError of an injected fault on op and
// path.
func checkInjected(t *testing.T, err error, op, path string) {
	t.Helper()
	var oe *dom0.OpError
	if !errors.As(err, &oe) || oe.Op != op || oe.Path != path || !errors.Is(err, ErrInjected) {
		t.Fatalf("got %v, want an injected *dom0.OpError on %s %s", err, op, path)
	}
}

func TestFailNthHostOps(t *testing.T) {
	for _, tc := range hostOps {
		t.Run(tc.op, func(t *testing.T) {
			h := newHost(t)
			h.FailNth(tc.op, 2)
			if err := tc.call(h); err != nil {
				t.Fatalf("first call: %v", err)
			}
			if tc.untouched != nil {
				// Undo what the first call did, straight on the wrapped host.
				resetHost(t, h.Unwrap())
			}
			checkInjected(t, tc.call(h), tc.op, tc.path)
			if tc.untouched != nil {
				if err := tc.untouched(h.Unwrap()); err != nil {
					t.Fatalf("the failed call reached the host: %v", err)
				}
			}
			if err := tc.call(h); err != nil {
				t.Fatalf("third call: %v", err)
			}
			calls := h.Calls()
			if len(calls) != 3 || h.CallCount(tc.op) != 3 {
				t.Fatalf("log %v, count %d", calls, h.CallCount(tc.op))
			}
			for i, c := range calls {
				if c.Seq != i+1 || c.Op != tc.op || c.N != i+1 || c.Path != tc.path || c.Failed != (i == 1) {
					t.Fatalf("call %d: %+v", i, c)
				}
			}
		})
	}
}

// resetHost puts the fixture back as newHost made it.
func resetHost(t *testing.T, h dom0.Host) {
	t.Helper()
	for _, n := range []string{"/a/new", "/a/g", "/a/l", "/a/ran", "/m"} {
		if err := h.RemoveAll(n); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := h.Stat("/a/f"); errors.Is(err, fs.ErrNotExist) {
		if err := h.Rename("/a/g", "/a/f"); err != nil {
			f, err := h.OpenFile("/a/f", os.O_RDWR|os.O_CREATE, 0o644)
			if err != nil {
				t.Fatal(err)
			}
			f.Close()
		}
	}
	if err := h.MkdirAll("/d", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := h.Chmod("/a/f", 0o644); err != nil {
		t.Fatal(err)
	}
	if err := h.Truncate("/a/f", 4096); err != nil {
		t.Fatal(err)
	}
}

// fileOps are the operations on an open file.
var fileOps = []struct {
	op   string
	call func(f vhd.File) error
}{
	{OpFileReadAt, func(f vhd.File) error { _, err := f.ReadAt(make([]byte, 16), 0); return err }},
	{OpFileWriteAt, func(f vhd.File) error { _, err := f.WriteAt([]byte("x"), 0); return err }},
	{OpFileStat, func(f vhd.File) error { _, err := f.Stat(); return err }},
	{OpFileTruncate, func(f vhd.File) error { return f.Truncate(4096) }},
	{OpFileSync, func(f vhd.File) error { return f.Sync() }},
}

func TestFailNthFileOps(t *testing.T) {
	for _, tc := range fileOps {
		t.Run(tc.op, func(t *testing.T) {
			h := newHost(t)
			f, err := h.OpenFile("/a/f", os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			h.FailNth(tc.op, 1)
			checkInjected(t, tc.call(f), tc.op, "/a/f")
			if err := tc.call(f); err != nil {
				t.Fatalf("second call: %v", err)
			}
			if h.CallCount(tc.op) != 2 || h.CallCount(OpOpenFile) != 1 {
				t.Fatalf("counts %d, %d; log %v", h.CallCount(tc.op), h.CallCount(OpOpenFile), h.Calls())
			}
		})
	}
}

// TestFailedWriteWritesNothing: an injected WriteAt leaves the file as it
// was.
func TestFailedWriteWritesNothing(t *testing.T) {
	h := newHost(t)
	f, err := h.OpenFile("/a/f", os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h.FailNth(OpFileWriteAt, 1)
	if n, err := f.WriteAt([]byte("xyz"), 0); n != 0 || err == nil {
		t.Fatalf("WriteAt: %d, %v", n, err)
	}
	got := make([]byte, 3)
	if _, err := f.ReadAt(got, 0); err != nil || string(got) != "\x00\x00\x00" {
		t.Fatalf("file starts %q, %v", got, err)
	}
}

// TestFailedCloseReleases: a file and a host whose Close fails are closed
// all the same.
func TestFailedCloseReleases(t *testing.T) {
	h := newHost(t)
	f, err := h.Open("/a/f")
	if err != nil {
		t.Fatal(err)
	}
	h.FailNth(OpFileClose, 1)
	checkInjected(t, f.Close(), OpFileClose, "/a/f")
	if _, err := f.ReadAt(make([]byte, 1), 0); err == nil {
		t.Fatal("the file still reads after its failed Close")
	}
	c := &closeHost{Host: h.Unwrap()}
	ch := NewFaultHost(c)
	ch.FailNth(OpClose, 1)
	checkInjected(t, ch.Close(), OpClose, "")
	if !c.closed {
		t.Fatal("the wrapped host was not closed by a failed Close")
	}
}

// closeHost records its Close.
type closeHost struct {
	dom0.Host
	closed bool
}

func (c *closeHost) Close() error { c.closed = true; return c.Host.Close() }

// TestFaultMatching: Op "" and N 0 match everything, Match narrows, Err
// is wrapped with ErrInjected, the first fault added wins, ClearFaults
// ends them.
func TestFaultMatching(t *testing.T) {
	h := newHost(t)
	cause := syscall.ENOSPC
	h.InjectFault(Fault{Match: func(c Call) bool { return strings.HasPrefix(c.Path, "/d") }, Err: cause})
	h.InjectFault(Fault{Op: OpStat})
	if _, err := h.ReadDir("/a"); err != nil {
		t.Fatalf("ReadDir /a: %v", err)
	}
	for _, call := range []func() error{
		func() error { _, err := h.ReadDir("/d"); return err },
		func() error { return h.MkdirAll("/d/x", 0o755) },
		func() error { _, err := h.Stat("/d"); return err },
	} {
		err := call()
		if !errors.Is(err, cause) || !errors.Is(err, ErrInjected) {
			t.Fatalf("got %v, want ENOSPC and ErrInjected", err)
		}
	}
	if _, err := h.Stat("/a"); !errors.Is(err, ErrInjected) || errors.Is(err, cause) {
		t.Fatalf("Stat /a: %v", err)
	}
	h.ClearFaults()
	if _, err := h.Stat("/d"); err != nil {
		t.Fatalf("after ClearFaults: %v", err)
	}
	var failed []string
	for _, c := range h.Calls() {
		if c.Failed {
			failed = append(failed, c.String())
		}
	}
	want := []string{"ReadDir#2 /d -> injected", "MkdirAll#1 /d/x -> injected", "Stat#1 /d -> injected", "Stat#2 /a -> injected"}
	if fmt.Sprint(failed) != fmt.Sprint(want) {
		t.Fatalf("failed calls %q, want %q", failed, want)
	}
	h.ResetCalls()
	if _, err := h.Stat("/a"); err != nil || len(h.Calls()) != 1 || h.Calls()[0].N != 4 {
		t.Fatalf("after ResetCalls: %v, %v", err, h.Calls())
	}
}

// TestConcurrentCounts: calls from many goroutines are each counted once,
// and exactly one of them meets the n-th-use fault.
func TestConcurrentCounts(t *testing.T) {
	h := newHost(t)
	f, err := h.OpenFile("/a/f", os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h.FailNth(OpFileWriteAt, 37)
	const workers, each = 8, 25
	var wg sync.WaitGroup
	var mu sync.Mutex
	failures := 0
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if _, err := f.WriteAt([]byte{byte(w)}, int64(w*each+i)); err != nil {
					mu.Lock()
					failures++
					mu.Unlock()
				}
			}
		}(w)
	}
	wg.Wait()
	if n := h.CallCount(OpFileWriteAt); n != workers*each || failures != 1 {
		t.Fatalf("%d writes counted, %d failed; want %d and 1", n, failures, workers*each)
	}
}

// TestStreams passes the wrapped host's SFTP stream count on.
func TestStreams(t *testing.T) {
	h := newHost(t)
	if h.Streams() != 1 {
		t.Fatalf("Streams of a local host: %d", h.Streams())
	}
	if s := NewFaultHost(streamsHost{h.Unwrap()}).Streams(); s != 3 {
		t.Fatalf("Streams: %d, want 3", s)
	}
}

type streamsHost struct{ dom0.Host }

func (streamsHost) Streams() int { return 3 }
