package main

import (
	"bytes"
	"math/rand"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// cli runs one command line with "{d}" replaced by dir.
func cli(dir string, args ...string) (int, string, string) {
	a := make([]string, len(args))
	for i, s := range args {
		a[i] = strings.ReplaceAll(s, "{d}", dir)
	}
	var out, errb bytes.Buffer
	code := run(a, &out, &errb)
	return code, out.String(), errb.String()
}

type step struct {
	do     func(t *testing.T, dir string) // instead of args: a file operation
	args   []string
	code   int
	stdout string // regexp the whole output must match ("" = anything)
	stderr string // substring of stderr ("" = anything)
}

func ok(args ...string) step { return step{args: args} }

func TestRun(t *testing.T) {
	cases := []struct {
		name  string
		steps []step
	}{
		{"no arguments", []step{{args: nil, code: exitUsage, stderr: "usage:"}}},
		{"help", []step{{args: []string{"help"}, stdout: `(?s)^usage:.*scan`}}},
		{"unknown command", []step{{args: []string{"frob"}, code: exitUsage, stderr: `unknown command "frob"`}}},
		{"unknown flag", []step{{args: []string{"create", "-x"}, code: exitUsage, stderr: "not defined"}}},
		{"stray argument", []step{{args: []string{"check", "-n", "{d}/a.vhd", "extra"}, code: exitUsage, stderr: "unexpected argument"}}},
		{"create without -n", []step{{args: []string{"create", "-s", "4"}, code: exitUsage, stderr: "missing -n"}}},
		{"create without size", []step{{args: []string{"create", "-n", "{d}/a.vhd"}, code: exitUsage, stderr: "size in MiB"}}},
		{"create negative size", []step{{args: []string{"create", "-n", "{d}/a.vhd", "-s", "-4"}, code: exitUsage}}},
		{"create huge size", []step{{args: []string{"create", "-n", "{d}/a.vhd", "-s", "99999999999"}, code: exitUsage}}},
		{"create twice", []step{
			ok("create", "-n", "{d}/a.vhd", "-s", "4"),
			{args: []string{"create", "-n", "{d}/a.vhd", "-s", "4"}, code: exitFailure, stderr: "exists"},
		}},
		{"create dynamic rounds to 2 MiB", []step{
			ok("create", "-n", "{d}/a.vhd", "-s", "3"),
			{args: []string{"query", "-n", "{d}/a.vhd", "-v"}, stdout: "^4\n$"},
			{args: []string{"query", "-n", "{d}/a.vhd", "-s"}, stdout: "^3584\n$"},
			{args: []string{"check", "-n", "{d}/a.vhd"}, stdout: `^\S+/a.vhd is valid\n$`},
		}},
		{"create fixed", []step{
			ok("create", "-n", "{d}/f.vhd", "-s", "4", "-r"),
			{args: []string{"query", "-n", "{d}/f.vhd", "-v", "-s"}, stdout: "^4\n4194816\n$"},
			{args: []string{"query", "-n", "{d}/f.vhd", "-p"}, stdout: `^\S+/f.vhd has no parent\n$`},
			{args: []string{"check", "-n", "{d}/f.vhd"}, stdout: "is valid"},
		}},
		{"snapshot and query", []step{
			ok("create", "-n", "{d}/base.vhd", "-s", "8"),
			ok("snapshot", "-n", "{d}/leaf.vhd", "-p", "{d}/base.vhd"),
			{args: []string{"query", "-n", "{d}/leaf.vhd", "-vsfpd"}, stdout: `^8\n\d+\n/\S+/base.vhd\nhidden: 0\nchain depth: 2\n$`},
			{args: []string{"query", "-n", "{d}/base.vhd", "-d"}, stdout: "^chain depth: 1\n$"},
			{args: []string{"query", "-n", "{d}/leaf.vhd", "-a"}, stdout: "^0\n$"},
			{args: []string{"check", "-n", "{d}/leaf.vhd", "-t", "-I", "-b"}, stdout: "leaf.vhd is valid"},
			{args: []string{"check", "-n", "{d}/leaf.vhd"}, stdout: "leaf.vhd is valid"},
		}},
		{"snapshot of a missing parent", []step{
			{args: []string{"snapshot", "-n", "{d}/leaf.vhd", "-p", "{d}/none.vhd"}, code: exitFailure},
			{args: []string{"snapshot", "-n", "{d}/leaf.vhd"}, code: exitUsage, stderr: "missing -p"},
		}},
		{"query needs a field", []step{
			ok("create", "-n", "{d}/a.vhd", "-s", "2"),
			{args: []string{"query", "-n", "{d}/a.vhd"}, code: exitUsage, stderr: "one of"},
		}},
		{"set hidden", []step{
			ok("create", "-n", "{d}/a.vhd", "-s", "2"),
			ok("set", "-n", "{d}/a.vhd", "-f", "hidden", "-v", "1"),
			{args: []string{"query", "-n", "{d}/a.vhd", "-f"}, stdout: "^hidden: 1\n$"},
			ok("set", "-n", "{d}/a.vhd", "-f", "hidden", "-v", "0"),
			{args: []string{"query", "-n", "{d}/a.vhd", "-f"}, stdout: "^hidden: 0\n$"},
			{args: []string{"set", "-n", "{d}/a.vhd", "-f", "marker", "-v", "1"}, code: exitUsage, stderr: "only hidden"},
			{args: []string{"set", "-n", "{d}/a.vhd", "-f", "hidden", "-v", "2"}, code: exitUsage},
		}},
		{"modify relinks", []step{
			ok("create", "-n", "{d}/p1.vhd", "-s", "2"),
			ok("create", "-n", "{d}/p2.vhd", "-s", "2"),
			ok("snapshot", "-n", "{d}/c.vhd", "-p", "{d}/p1.vhd"),
			ok("modify", "-n", "{d}/c.vhd", "-p", "{d}/p2.vhd"),
			{args: []string{"query", "-n", "{d}/c.vhd", "-p"}, stdout: `^/\S+/p2.vhd\n$`},
			{args: []string{"check", "-n", "{d}/c.vhd"}, stdout: "is valid"},
			{args: []string{"modify", "-n", "{d}/p1.vhd", "-p", "{d}/p2.vhd"}, code: exitInvalid, stderr: "not a differencing"},
		}},
		{"check a file that is not a VHD", []step{
			{args: []string{"check", "-n", "{d}/junk.vhd"}, code: exitInvalid, stdout: `^\S+junk.vhd is invalid: .*invalid cookie.*\n$`},
			{args: []string{"check", "-n", "{d}/missing.vhd"}, code: exitFailure, stderr: "no such file"},
		}},
		{"resize", []step{
			ok("create", "-n", "{d}/a.vhd", "-s", "4"),
			ok("resize", "-n", "{d}/a.vhd", "-s", "20"),
			{args: []string{"query", "-n", "{d}/a.vhd", "-v"}, stdout: "^20\n$"},
			{args: []string{"resize", "-n", "{d}/a.vhd", "-s", "10"}, code: exitFailure, stderr: "shrink"},
			{args: []string{"check", "-n", "{d}/a.vhd"}, stdout: "is valid"},
		}},
		{"scan", []step{
			ok("create", "-n", "{d}/base.vhd", "-s", "4"),
			ok("snapshot", "-n", "{d}/leaf.vhd", "-p", "{d}/base.vhd"),
			ok("set", "-n", "{d}/base.vhd", "-f", "hidden", "-v", "1"),
			{args: []string{"scan", "-d", "{d}"}, stdout: `^vhd=base.vhd capacity=4194304 size=3584 hidden=1 parent=none\n` +
				`vhd=leaf.vhd capacity=4194304 size=\d+ hidden=0 parent=base.vhd\n$`},
			{args: []string{"scan", "-d", "{d}/none"}, code: exitFailure},
		}},
		{"import a gap", []step{
			ok("create", "-n", "{d}/staging/0.vhd", "-s", "2"),
			ok("create", "-n", "{d}/staging/2.vhd", "-s", "2"),
			{args: []string{"import", "-d", "{d}/staging", "-s", "{d}"}, code: exitInvalid, stderr: "gap"},
			{args: []string{"import", "-d", "{d}/staging"}, code: exitUsage, stderr: "missing -s"},
		}},
		{"stage and import", []step{
			ok("create", "-n", "{d}/sr/base.vhd", "-s", "4"),
			ok("snapshot", "-n", "{d}/sr/11111111-2222-4333-8444-555555555555.vhd", "-p", "{d}/sr/base.vhd"),
			{args: []string{"stage", "-s", "{d}/sr", "-u", "11111111-2222-4333-8444-555555555555", "-d", "{d}/staging"},
				stdout: `^\S+/staging/0.vhd \S+/sr/11111111-2222-4333-8444-555555555555.vhd\n\S+/staging/1.vhd \S+/sr/base.vhd\n$`},
			{args: []string{"stage", "-s", "{d}/sr", "-u", "nope", "-d", "{d}/staging"}, code: exitUsage},
			ok("create", "-n", "{d}/dst/keep.vhd", "-s", "2"),
			// The staged files are still the SR's (hard links): refused.
			{args: []string{"import", "-d", "{d}/staging", "-s", "{d}/dst"}, code: exitInvalid, stderr: "hard links"},
			{do: copyDir("staging", "recv")},
			{args: []string{"import", "-d", "{d}/recv", "-s", "{d}/dst"}, stdout: `^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\n$`},
			{args: []string{"scan", "-d", "{d}/dst"}, stdout: `^(vhd=\S+ capacity=\d+ size=\d+ hidden=0 parent=\S+\n){3}$`},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, d := range []string{"staging", "sr", "dst"} {
				if strings.Contains(tc.name, "import") && d == "staging" {
					continue
				}
				_ = os.Mkdir(filepath.Join(dir, d), 0o755)
			}
			if tc.name == "import a gap" {
				_ = os.Mkdir(filepath.Join(dir, "staging"), 0o755)
			}
			if tc.name == "check a file that is not a VHD" {
				if err := os.WriteFile(filepath.Join(dir, "junk.vhd"), make([]byte, 1024), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			for i, s := range tc.steps {
				if s.do != nil {
					s.do(t, dir)
					continue
				}
				code, out, errs := cli(dir, s.args...)
				if code != s.code {
					t.Fatalf("step %d %v: exit %d, want %d\nstdout: %s\nstderr: %s", i, s.args, code, s.code, out, errs)
				}
				if s.stdout != "" && !regexp.MustCompile(s.stdout).MatchString(out) {
					t.Fatalf("step %d %v: stdout %q does not match %q", i, s.args, out, s.stdout)
				}
				if s.stderr != "" && !strings.Contains(errs, s.stderr) {
					t.Fatalf("step %d %v: stderr %q does not hold %q", i, s.args, errs, s.stderr)
				}
				if s.code == exitOK && errs != "" {
					t.Fatalf("step %d %v: stderr %q on success", i, s.args, errs)
				}
			}
		})
	}
}

// copyDir copies the files of one directory into a new one, as rsync would
// between hosts.
func copyDir(from, to string) func(t *testing.T, dir string) {
	return func(t *testing.T, dir string) {
		ents, err := os.ReadDir(filepath.Join(dir, from))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(filepath.Join(dir, to), 0o755); err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			b, err := os.ReadFile(filepath.Join(dir, from, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, to, e.Name()), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestQueryBrokenChain(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"create", "-n", "{d}/base.vhd", "-s", "2"},
		{"snapshot", "-n", "{d}/leaf.vhd", "-p", "{d}/base.vhd"},
	} {
		if code, _, e := cli(dir, args...); code != 0 {
			t.Fatal(e)
		}
	}
	if err := os.Rename(filepath.Join(dir, "base.vhd"), filepath.Join(dir, "gone.vhd")); err != nil {
		t.Fatal(err)
	}
	code, out, errs := cli(dir, "query", "-n", "{d}/leaf.vhd", "-f", "-p")
	if code != exitInvalid || out != "hidden: 0\n" && out != "query failed\n" || !strings.Contains(errs, "parent not found") {
		t.Fatalf("exit %d\nstdout %q\nstderr %s", code, out, errs)
	}
}

func TestCheckReportsTheReason(t *testing.T) {
	dir := t.TempDir()
	if code, _, e := cli(dir, "create", "-n", "{d}/a.vhd", "-s", "4"); code != 0 {
		t.Fatal(e)
	}
	// Break the primary footer's checksum.
	p := filepath.Join(dir, "a.vhd")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-512+64] ^= 0xff
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errs := cli(dir, "check", "-n", "{d}/a.vhd")
	if code != exitInvalid || !strings.Contains(out, "a.vhd is invalid") || !strings.Contains(out, "checksum") || errs != "" {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", code, out, errs)
	}
}

// TestWriteReadCoalesce writes raw bytes through a chain, reads the chain
// out, coalesces the leaf and reads the base.
func TestWriteReadCoalesce(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewSource(1))
	mustRun := func(args ...string) string {
		t.Helper()
		code, out, errs := cli(dir, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errs)
		}
		return out
	}
	write := func(name string, off int, n int, model []byte) {
		t.Helper()
		data := make([]byte, n)
		rng.Read(data)
		raw := filepath.Join(dir, "in.raw")
		if err := os.WriteFile(raw, data, 0o644); err != nil {
			t.Fatal(err)
		}
		mustRun("write", "-n", "{d}/"+name, "-i", raw, "-O", itoa(off))
		copy(model[off:], data)
	}
	read := func(name string) []byte {
		t.Helper()
		mustRun("read", "-n", "{d}/"+name, "-o", "{d}/out.raw")
		b, err := os.ReadFile(filepath.Join(dir, "out.raw"))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	const size = 6 << 20
	model := make([]byte, size)
	mustRun("create", "-n", "{d}/base.vhd", "-s", "6")
	write("base.vhd", 0, 3<<20+700, model)
	write("base.vhd", 5<<20+3, 1000, model)
	mustRun("snapshot", "-n", "{d}/leaf.vhd", "-p", "{d}/base.vhd")
	baseModel := append([]byte(nil), model...)
	write("leaf.vhd", 100, 5000, model) // unaligned: partial sectors keep the base's bytes
	write("leaf.vhd", 2<<20-512, 4096, model)
	if got := read("leaf.vhd"); !bytes.Equal(got, model) {
		t.Fatal("leaf reads wrong")
	}
	if got := read("base.vhd"); !bytes.Equal(got, baseModel) {
		t.Fatal("base changed by leaf writes")
	}
	mustRun("check", "-n", "{d}/leaf.vhd")
	if got := mustRun("query", "-n", "{d}/leaf.vhd", "-a"); got != "2\n" {
		t.Fatalf("leaf allocated blocks %q, want 2", got)
	}
	mustRun("coalesce", "-n", "{d}/leaf.vhd")
	if got := read("base.vhd"); !bytes.Equal(got, model) {
		t.Fatal("base after coalesce reads wrong")
	}
	mustRun("check", "-n", "{d}/base.vhd")

	// Writes past the end and from missing files fail.
	raw := filepath.Join(dir, "in.raw")
	if err := os.WriteFile(raw, make([]byte, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := cli(dir, "write", "-n", "{d}/base.vhd", "-i", raw, "-O", itoa(size-100)); code != exitInvalid {
		t.Errorf("write past the end: exit %d", code)
	}
	if code, _, _ := cli(dir, "write", "-n", "{d}/base.vhd", "-i", raw, "-O", "-1"); code != exitUsage {
		t.Errorf("negative offset: exit %d", code)
	}
	if code, _, _ := cli(dir, "write", "-n", "{d}/base.vhd", "-i", "{d}/missing.raw"); code != exitFailure {
		t.Errorf("missing input: exit %d", code)
	}
	if code, _, _ := cli(dir, "read", "-n", "{d}/missing.vhd", "-o", "{d}/x.raw"); code != exitFailure {
		t.Errorf("missing VHD: exit %d", code)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// Example_run creates a dynamic disk and queries it, as vhd-util would.
func Example_run() {
	dir, err := os.MkdirTemp("", "vhdutil")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	disk := filepath.Join(dir, "disk.vhd")
	run([]string{"create", "-n", disk, "-s", "100"}, os.Stdout, os.Stderr)
	run([]string{"query", "-n", disk, "-v", "-f", "-d"}, os.Stdout, os.Stderr)
	// Output:
	// 100
	// hidden: 0
	// chain depth: 1
}

// TestReadRefusesToOverwriteTheChain: read -o naming the leaf, or one of
// its parents, must fail without truncating that disk.
func TestReadRefusesToOverwriteTheChain(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"create", "-n", "{d}/base.vhd", "-s", "4"},
		{"snapshot", "-n", "{d}/leaf.vhd", "-p", "{d}/base.vhd"},
	} {
		if code, _, e := cli(dir, args...); code != 0 {
			t.Fatalf("%v: %s", args, e)
		}
	}
	if err := os.Symlink(filepath.Join(dir, "base.vhd"), filepath.Join(dir, "alias.raw")); err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{"{d}/leaf.vhd", "{d}/base.vhd", "{d}/alias.raw"} {
		code, _, errs := cli(dir, "read", "-n", "{d}/leaf.vhd", "-o", out)
		if code != exitInvalid || !strings.Contains(errs, "a disk of the chain") {
			t.Errorf("read -o %s: exit %d: %s", out, code, errs)
		}
	}
	for _, name := range []string{"leaf.vhd", "base.vhd"} {
		if code, out, errs := cli(dir, "check", "-n", "{d}/"+name); code != 0 {
			t.Errorf("%s after read: exit %d: %s%s", name, code, out, errs)
		}
	}
}

// FuzzRun feeds arbitrary command lines (NUL-separated arguments) to run,
// in a directory holding a small chain: no panic, an exit status from the
// documented set, and nothing written outside that directory. Arguments
// that name other directories, and sizes or offsets of more than four
// digits (a fixed disk of that many MiB is that much zeros), are skipped.
func FuzzRun(f *testing.F) {
	for _, s := range []string{
		"query\x00-n\x00leaf.vhd\x00-vsfpd", "query\x00-n\x00leaf.vhd\x00-a", "check\x00-n\x00base.vhd\x00-t",
		"create\x00-n\x00new.vhd\x00-s\x007\x00-r", "write\x00-n\x00leaf.vhd\x00-i\x00in.raw\x00-O\x004095",
		"read\x00-n\x00leaf.vhd\x00-o\x00out.raw", "set\x00-n\x00leaf.vhd\x00-f\x00hidden\x00-v\x001",
		"resize\x00-n\x00leaf.vhd\x00-s\x009", "modify\x00-n\x00leaf.vhd\x00-p\x00leaf.vhd",
		"snapshot\x00-n\x00c.vhd\x00-p\x00leaf.vhd", "coalesce\x00-n\x00leaf.vhd", "scan\x00-d\x00.",
		"import\x00-d\x00.\x00-s\x00.", "stage\x00-s\x00.\x00-u\x00x\x00-d\x00st", "query\x00-n", "",
		"check\x00-n\x00in.raw", "write\x00-n\x00base.vhd\x00-i\x00in.raw\x00-O\x009999",
	} {
		f.Add(s)
	}
	big := regexp.MustCompile(`[0-9]{5,}`)
	f.Fuzz(func(t *testing.T, line string) {
		args := strings.Split(line, "\x00")
		if len(args) > 16 {
			return
		}
		for _, a := range args {
			if strings.Contains(a, "/") || strings.HasPrefix(a, "..") || big.MatchString(a) {
				return
			}
		}
		dir := t.TempDir()
		for _, setup := range [][]string{
			{"create", "-n", "{d}/base.vhd", "-s", "4"},
			{"snapshot", "-n", "{d}/leaf.vhd", "-p", "{d}/base.vhd"},
		} {
			if code, _, e := cli(dir, setup...); code != 0 {
				t.Fatalf("%v: %s", setup, e)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, "in.raw"), bytes.Repeat([]byte{7}, 5000), 0o644); err != nil {
			t.Fatal(err)
		}
		wd, err := os.Getwd()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Chdir(dir); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := os.Chdir(wd); err != nil {
				t.Fatal(err)
			}
		}()
		var out, errb bytes.Buffer
		switch code := run(args, &out, &errb); code {
		case exitOK, exitFailure, exitUsage, exitInvalid:
		default:
			t.Fatalf("%q: exit %d", args, code)
		}
		if ents, err := os.ReadDir(filepath.Dir(dir)); err != nil || len(ents) != 1 {
			t.Fatalf("%q: the directory around the test's now holds %v (%v)", args, ents, err)
		}
	})
}
