package dom0

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLocalHost(t *testing.T) {
	root := t.TempDir()
	h, err := Local(root)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.MkdirAll("/var/run/sr-mount/sr1", 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := h.OpenFile("/var/run/sr-mount/sr1/a.vhd", os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("hello"), 0); err != nil {
		t.Fatal(err)
	}
	f.Close()
	// The host's absolute paths live under the root.
	if b, err := os.ReadFile(filepath.Join(root, "var/run/sr-mount/sr1/a.vhd")); err != nil || string(b) != "hello" {
		t.Fatalf("file not under the root: %q %v", b, err)
	}
	// ".." never climbs above the root.
	if _, err := h.Stat("/../../var/run/sr-mount/sr1/a.vhd"); err != nil {
		t.Fatal(err)
	}
	// Errors name the host path, not this machine's.
	_, err = h.Open("/var/run/missing.vhd")
	var oe *OpError
	if !errors.As(err, &oe) || oe.Path != "/var/run/missing.vhd" || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
	if strings.Contains(oe.Path, root) {
		t.Errorf("error path %q shows the local root", oe.Path)
	}
	if err := h.RemoveAll("/"); err == nil {
		t.Fatal("RemoveAll of the root accepted")
	}

	ctx := context.Background()
	// Run's working directory is the root; RunPath names host files.
	out, _, err := h.Run(ctx, []string{"cat", RunPath("/var/run/sr-mount/sr1/a.vhd")})
	if err != nil || string(out) != "hello" {
		t.Fatalf("run cat: %q %v", out, err)
	}
	_, _, err = h.Run(ctx, []string{"sh", "-c", "echo no >&2; exit 4"})
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Code != 4 || !strings.Contains(err.Error(), "no") {
		t.Fatalf("exit: %v", err)
	}
	_, _, err = h.Run(ctx, []string{"sh", "-c", "head -c 5000000 /dev/zero"})
	if !errors.Is(err, ErrOutputTooLong) {
		t.Fatalf("huge output: %v", err)
	}
	cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, _, err := h.Run(cctx, []string{"sleep", "10"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("cancelled: %v", err)
	}
	if _, _, err := h.Run(ctx, nil); err == nil {
		t.Fatal("empty command accepted")
	}
	if _, err := Local(filepath.Join(root, "nope")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing root: %v", err)
	}
}
