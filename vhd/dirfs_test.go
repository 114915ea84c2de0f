package vhd_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/xenflow/xenflow/vhd"
)

func TestDirFSFileOperations(t *testing.T) {
	dir := t.TempDir()
	fsys := vhd.DirFS(dir)

	if err := fsys.MkdirAll("sr/staging", 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := fsys.OpenFile("/sr/a.vhd", os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("hello"), 3); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(16); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	fi, err := f.Stat()
	if err != nil || fi.Size() != 16 {
		t.Fatalf("Stat = %v, %v; want size 16", fi, err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	// The file is really inside dir.
	if _, err := os.Stat(filepath.Join(dir, "sr", "a.vhd")); err != nil {
		t.Fatal(err)
	}
	if err := fsys.Link("sr/a.vhd", "sr/staging/0.vhd"); err != nil {
		t.Fatal(err)
	}
	if err := fsys.Rename("sr/staging/0.vhd", "sr/staging/1.vhd"); err != nil {
		t.Fatal(err)
	}
	g, err := fsys.Open("sr/x/../staging/1.vhd")
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := g.ReadAt(buf, 3); err != nil || string(buf) != "hello" {
		t.Fatalf("ReadAt = %q, %v", buf, err)
	}
	g.Close()
	ents, err := fsys.ReadDir("sr")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if len(names) != 2 || names[0] != "a.vhd" || names[1] != "staging" {
		t.Fatalf("ReadDir = %v", names)
	}
	if _, err := fsys.Stat("sr/missing.vhd"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Stat missing = %v, want fs.ErrNotExist", err)
	}
	if err := fsys.Remove("sr/staging/1.vhd"); err != nil {
		t.Fatal(err)
	}
	if err := fsys.Remove("sr/staging"); err != nil {
		t.Fatal(err)
	}
	if fi, err := fsys.Stat("/"); err != nil || !fi.IsDir() {
		t.Fatalf("Stat root = %v, %v", fi, err)
	}
}

func TestDirFSRefusesEscapes(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "root")
	outside := filepath.Join(parent, "outside")
	for _, d := range []string{dir, outside, filepath.Join(dir, "in")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(outside, "secret.vhd"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "in", "ok.vhd"), []byte("ok"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Links: one leading out, one dangling out, one staying in.
	if err := os.Symlink(outside, filepath.Join(dir, "out")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "new.vhd"), filepath.Join(dir, "dangling.vhd")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "secret.vhd"), filepath.Join(dir, "file-out.vhd")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("in/ok.vhd", filepath.Join(dir, "inner.vhd")); err != nil {
		t.Fatal(err)
	}
	fsys := vhd.DirFS(dir)

	refused := []struct {
		name string
		op   func() error
	}{
		{"open ..", func() error { _, err := fsys.Open("../outside/secret.vhd"); return err }},
		{"open a/../../x", func() error { _, err := fsys.Open("in/../../outside/secret.vhd"); return err }},
		{"open /..", func() error { _, err := fsys.Open("/../outside/secret.vhd"); return err }},
		{"open NUL", func() error { _, err := fsys.Open("a\x00.vhd"); return err }},
		{"open empty", func() error { _, err := fsys.Open(""); return err }},
		{"open through link", func() error { _, err := fsys.Open("out/secret.vhd"); return err }},
		{"open link to file outside", func() error { _, err := fsys.Open("file-out.vhd"); return err }},
		{"create through dangling link", func() error {
			_, err := fsys.OpenFile("dangling.vhd", os.O_RDWR|os.O_CREATE, 0o644)
			return err
		}},
		{"create through dir link", func() error {
			_, err := fsys.OpenFile("out/new.vhd", os.O_RDWR|os.O_CREATE, 0o644)
			return err
		}},
		{"stat through link", func() error { _, err := fsys.Stat("out/secret.vhd"); return err }},
		{"rename out", func() error { return fsys.Rename("in/ok.vhd", "../outside/moved.vhd") }},
		{"rename into link", func() error { return fsys.Rename("in/ok.vhd", "out/moved.vhd") }},
		{"link out", func() error { return fsys.Link("in/ok.vhd", "out/linked.vhd") }},
		{"link from outside", func() error { return fsys.Link("../outside/secret.vhd", "in/stolen.vhd") }},
		{"remove through link", func() error { return fsys.Remove("out/secret.vhd") }},
		{"mkdir through link", func() error { return fsys.MkdirAll("out/sub/dir", 0o755) }},
		{"readdir link", func() error { _, err := fsys.ReadDir("out"); return err }},
		{"readdir ..", func() error { _, err := fsys.ReadDir(".."); return err }},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.op()
			if !errors.Is(err, vhd.ErrUnsafeName) {
				t.Fatalf("err = %v, want ErrUnsafeName", err)
			}
			var ne *vhd.NameError
			if !errors.As(err, &ne) || ne.Reason == "" {
				t.Fatalf("err = %#v, want *NameError with a reason", err)
			}
		})
	}
	// Nothing appeared outside, and the secret is still there.
	ents, err := os.ReadDir(outside)
	if err != nil || len(ents) != 1 || ents[0].Name() != "secret.vhd" {
		t.Fatalf("outside dir now holds %v (%v)", ents, err)
	}
	// A link that stays inside is fine, and so is removing a link itself.
	f, err := fsys.Open("inner.vhd")
	if err != nil {
		t.Fatalf("open inner link: %v", err)
	}
	f.Close()
	if err := fsys.Remove("file-out.vhd"); err != nil {
		t.Fatalf("remove the link itself: %v", err)
	}
	if _, err := os.Stat(filepath.Join(outside, "secret.vhd")); err != nil {
		t.Fatalf("removing the link removed its target: %v", err)
	}
}

// treeState maps every path under dir (links not followed) to its mode and,
// for regular files, contents.
func treeState(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		v := d.Type().String()
		if d.Type().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			v += ":" + string(b)
		}
		m[p] = v
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// FuzzDirFSNames runs one DirFS operation on arbitrary names in a root
// holding links that lead out: it must never panic, and nothing outside
// the root (nor the root itself) may change.
func FuzzDirFSNames(f *testing.F) {
	for _, s := range []struct {
		op   uint8
		a, b string
	}{
		{0, "out/secret.vhd", ""}, {1, "dangling.vhd", ""}, {3, "in/ok.vhd", "../outside/x"},
		{4, "in/ok.vhd", "out/x"}, {5, "/", ""}, {5, ".", ""}, {3, ".", "in/x"}, {6, "out/a/b", ""},
		{5, "file-out.vhd", ""}, {7, "/..", ""}, {3, "in", "/"}, {4, "file-out.vhd", "in/l"},
		{1, "rel/x.vhd", ""}, {3, "in/ok.vhd", "in/../../outside/secret.vhd"},
	} {
		f.Add(s.op, s.a, s.b)
	}
	f.Fuzz(func(t *testing.T, op uint8, a, b string) {
		parent := t.TempDir()
		dir := filepath.Join(parent, "root")
		outside := filepath.Join(parent, "outside")
		for _, d := range []string{dir, outside, filepath.Join(dir, "in"), filepath.Join(dir, "empty")} {
			if err := os.Mkdir(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		for p, data := range map[string]string{filepath.Join(outside, "secret.vhd"): "secret", filepath.Join(dir, "in", "ok.vhd"): "ok"} {
			if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		for link, target := range map[string]string{
			"out": outside, "rel": "../outside", "dangling.vhd": filepath.Join(outside, "new.vhd"),
			"file-out.vhd": filepath.Join(outside, "secret.vhd"), "inner.vhd": "in/ok.vhd",
		} {
			if err := os.Symlink(target, filepath.Join(dir, link)); err != nil {
				t.Fatal(err)
			}
		}
		before := treeState(t, outside)
		fsys := vhd.DirFS(dir)
		// Empty roots are where removing or renaming "." would succeed.
		for _, fsys := range []vhd.FS{fsys, vhd.DirFS(filepath.Join(dir, "empty"))} {
			var err error
			switch op % 8 {
			case 0:
				var f vhd.File
				if f, err = fsys.Open(a); err == nil {
					f.Close()
				}
			case 1:
				var f vhd.File
				if f, err = fsys.OpenFile(a, os.O_RDWR|os.O_CREATE, 0o644); err == nil {
					_, err = f.WriteAt([]byte("w"), 0)
					f.Close()
				}
			case 2:
				_, err = fsys.Stat(a)
			case 3:
				err = fsys.Rename(a, b)
			case 4:
				err = fsys.Link(a, b)
			case 5:
				err = fsys.Remove(a)
			case 6:
				err = fsys.MkdirAll(a, 0o755)
			case 7:
				_, err = fsys.ReadDir(a)
			}
			_ = err
		}
		if after := treeState(t, outside); len(after) != len(before) || fmtState(after) != fmtState(before) {
			t.Fatalf("outside changed: %v -> %v", before, after)
		}
		ents, err := os.ReadDir(parent)
		if err != nil || len(ents) != 2 {
			t.Fatalf("the root's parent now holds %v (%v)", ents, err)
		}
		if fi, err := os.Lstat(filepath.Join(dir, "empty")); err != nil || !fi.IsDir() {
			t.Fatalf("the empty root is gone or changed: %v", err)
		}
	})
}

func fmtState(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var sb strings.Builder
	for _, k := range keys {
		sb.WriteString(k + "=" + m[k] + "\n")
	}
	return sb.String()
}
