package dom0

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSSHHostFileOperations(t *testing.T) {
	s := startSSHD(t)
	h := s.Dial(t)
	root := t.TempDir()
	dir := root + "/a/b"
	if err := h.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	f, err := h.OpenFile(dir+"/x.vhd", os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("xenflow!"), 100000)
	if _, err := f.WriteAt(data, 10); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(data))
	if _, err := f.ReadAt(got, 10); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("read back differs")
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	fi, err := f.Stat()
	if err != nil || fi.Size() != int64(len(data))+10 {
		t.Fatalf("stat: %v %v", fi, err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(filepath.Join(dir, "x.vhd")); fi.Mode().Perm() != 0o640 {
		t.Errorf("perm %v, want 0640", fi.Mode().Perm())
	}
	if err := h.Link(dir+"/x.vhd", dir+"/0.vhd"); err != nil {
		t.Fatal(err)
	}
	if err := h.Rename(dir+"/0.vhd", dir+"/1.vhd"); err != nil {
		t.Fatal(err)
	}
	if err := h.Truncate(dir+"/1.vhd", 5); err != nil {
		t.Fatal(err)
	}
	if fi, err := h.Stat(dir + "/x.vhd"); err != nil || fi.Size() != 5 {
		t.Fatalf("hard link does not share data: %v %v", fi, err)
	}
	if err := h.Chmod(dir+"/1.vhd", 0o600); err != nil {
		t.Fatal(err)
	}
	ents, err := h.ReadDir(dir)
	if err != nil || len(ents) != 2 || ents[0].Name() != "1.vhd" || ents[1].Name() != "x.vhd" {
		t.Fatalf("readdir: %v %v", ents, err)
	}
	_, err = h.Stat(dir + "/missing")
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %v, want ErrNotExist", err)
	}
	var oe *OpError
	if !errors.As(err, &oe) || oe.Path != dir+"/missing" || !strings.Contains(err.Error(), s.Addr) {
		t.Fatalf("error does not say where: %v", err)
	}
	if err := h.RemoveAll(root + "/a"); err != nil {
		t.Fatal(err)
	}
	if err := h.RemoveAll(root + "/a"); err != nil {
		t.Fatalf("RemoveAll of a missing tree: %v", err)
	}
	if _, err := os.Stat(root + "/a"); !os.IsNotExist(err) {
		t.Fatal("RemoveAll left the tree")
	}
}

func TestSSHHostRun(t *testing.T) {
	s := startSSHD(t)
	h := s.Dial(t)
	ctx := context.Background()
	// Words with spaces, quotes and shell syntax arrive unchanged.
	args := []string{"a b", "it's", "$HOME", "`id`", ";", "*", ""}
	out, _, err := h.Run(ctx, append([]string{"printf", `%s\n`}, args...))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n"); strings.Join(got, "|") != strings.Join(args, "|") {
		t.Fatalf("args came out as %q", got)
	}
	// The working directory is the host's root.
	out, _, err = h.Run(ctx, []string{"pwd"})
	if err != nil || strings.TrimSpace(string(out)) != "/" {
		t.Fatalf("pwd: %q %v", out, err)
	}
	_, _, err = h.Run(ctx, []string{"sh", "-c", "echo boom >&2; exit 3"})
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Code != 3 || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("exit: %v", err)
	}
	cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, _, err = h.Run(cctx, []string{"sleep", "30"})
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 10*time.Second {
		t.Fatalf("cancelled run: %v after %v", err, time.Since(start))
	}
	// The connection is still usable after all that.
	if _, _, err := h.Run(ctx, []string{"true"}); err != nil {
		t.Fatal(err)
	}
}

// TestSSHRunCancelKillsPipeline checks that cancelling a command kills a
// whole shell pipeline on the host, not only the shell.
func TestSSHRunCancelKillsPipeline(t *testing.T) {
	s := startSSHD(t)
	h := s.Dial(t)
	marker := filepath.Join(t.TempDir(), "still-running")
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_, _, err := h.Run(ctx, []string{"sh", "-c", `sleep 2 | (sleep 3; touch "$1")`, "sh", marker})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
	time.Sleep(4 * time.Second)
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("a member of the cancelled pipeline kept running")
	}
}
