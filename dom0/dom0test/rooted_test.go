package dom0test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xenflow/xenflow/dom0"
)

// TestRootedHost: file operations and commands of a rooted host act on
// the same files inside its directory, and no name reaches outside it.
func TestRootedHost(t *testing.T) {
	if _, err := os.Stat("/usr/bin/env"); err != nil {
		t.Skip("no env to run commands with")
	}
	dir := t.TempDir()
	l, err := dom0.Local(dir)
	if err != nil {
		t.Fatal(err)
	}
	h := Rooted(l, "/sub")
	if err := os.WriteFile(filepath.Join(dir, "outside"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	steps := []struct {
		name string
		do   func() error
	}{
		{"mkdir", func() error { return h.MkdirAll("/var/run/sr", 0o755) }},
		{"write", func() error {
			f, err := h.OpenFile("var/run/sr/a.vhd", os.O_RDWR|os.O_CREATE, 0o644)
			if err != nil {
				return err
			}
			if _, err := f.WriteAt([]byte("chain"), 0); err != nil {
				return err
			}
			return f.Close()
		}},
		{"link", func() error { return h.Link("/var/run/sr/a.vhd", "/var/run/sr/b.vhd") }},
		{"rename", func() error { return h.Rename("/var/run/sr/b.vhd", "/var/run/sr/c.vhd") }},
		{"run", func() error {
			out, _, err := h.Run(ctx, []string{"cat", dom0.RunPath("/var/run/sr/c.vhd")})
			if err == nil && string(out) != "chain" {
				err = errors.New("cat printed " + string(out))
			}
			return err
		}},
		{"escape", func() error {
			_, err := h.Stat("/../outside")
			if !errors.Is(err, fs.ErrNotExist) {
				return errors.New("/../outside is reachable")
			}
			return nil
		}},
		{"readdir", func() error {
			ents, err := h.ReadDir("/var/run/sr")
			if err == nil && len(ents) != 2 {
				err = errors.New("the SR lists " + strings.Repeat("?", len(ents)))
			}
			return err
		}},
		{"chmod+truncate", func() error {
			if err := h.Chmod("/var/run/sr/a.vhd", 0o600); err != nil {
				return err
			}
			return h.Truncate("/var/run/sr/a.vhd", 2)
		}},
		{"remove", func() error { return h.Remove("/var/run/sr/c.vhd") }},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "sub", "var", "run", "sr", "a.vhd"))
	if err != nil || string(b) != "ch" {
		t.Fatalf("the file under the directory: %q, %v", b, err)
	}
	fi, err := h.Stat("/var/run/sr/a.vhd")
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("Stat: %v, %v", fi, err)
	}
	if err := h.RemoveAll("/var"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "sub", "var")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("RemoveAll left %v", err)
	}
	if !strings.HasSuffix(h.String(), ":/sub") || h.Streams() != 1 {
		t.Fatalf("String %q, Streams %d", h.String(), h.Streams())
	}
}
