package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestErrorsNameTheFileOnce: a command on a missing file fails with exit
// status 1, nothing on stdout, and one line on stderr naming the file once
// ("open X: no such file", not "open X: open X: no such file").
func TestErrorsNameTheFileOnce(t *testing.T) {
	tests := []struct {
		args    []string
		missing string
	}{
		{[]string{"check", "-n", "{d}/missing.vhd"}, "missing.vhd"},
		{[]string{"check", "-n", "{d}/missing.vhd", "-t", "-I", "-b"}, "missing.vhd"},
		{[]string{"query", "-n", "{d}/missing.vhd", "-v"}, "missing.vhd"},
		{[]string{"read", "-n", "{d}/missing.vhd", "-o", "{d}/out.raw"}, "missing.vhd"},
		{[]string{"snapshot", "-n", "{d}/c.vhd", "-p", "{d}/missing.vhd"}, "missing.vhd"},
		{[]string{"set", "-n", "{d}/missing.vhd", "-f", "hidden", "-v", "1"}, "missing.vhd"},
		{[]string{"coalesce", "-n", "{d}/missing.vhd"}, "missing.vhd"},
		{[]string{"resize", "-n", "{d}/missing.vhd", "-s", "4"}, "missing.vhd"},
		{[]string{"modify", "-n", "{d}/missing.vhd", "-p", "{d}/missing.vhd"}, "missing.vhd"},
		{[]string{"stage", "-s", "{d}", "-u", "11111111-2222-4333-8444-555555555555", "-d", "{d}/st"}, "11111111-2222-4333-8444-555555555555.vhd"},
		{[]string{"scan", "-d", "{d}/nodir"}, "nodir"},
		{[]string{"import", "-d", "{d}/nodir", "-s", "{d}"}, "nodir"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args[:1], ""), func(t *testing.T) {
			dir := t.TempDir()
			code, out, errs := cli(dir, tc.args...)
			p := filepath.Join(dir, tc.missing)
			if code != exitFailure || out != "" || !strings.Contains(errs, "no such file") {
				t.Fatalf("%v: exit %d (want %d)\nstdout %q (want none)\nstderr %q", tc.args, code, exitFailure, out, errs)
			}
			if n := strings.Count(errs, p); n != 1 || strings.Count(errs, "\n") != 1 {
				t.Errorf("%v: stderr names %s %d times in %d lines, want once in one: %q", tc.args, p, n, strings.Count(errs, "\n"), errs)
			}
		})
	}
}

// TestStageThenImportSaysWhatToDo: importing a staging directory made by
// "stage" in the same file system is refused (the staged files are the
// SR's own), and the error and the usage say why and what to do.
func TestStageThenImportSaysWhatToDo(t *testing.T) {
	dir := t.TempDir()
	const leaf = "11111111-2222-4333-8444-555555555555"
	for _, d := range []string{"sr", "dst"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{
		{"create", "-n", "{d}/sr/base.vhd", "-s", "4"},
		{"snapshot", "-n", "{d}/sr/" + leaf + ".vhd", "-p", "{d}/sr/base.vhd"},
		{"create", "-n", "{d}/dst/keep.vhd", "-s", "2"},
		{"stage", "-s", "{d}/sr", "-u", leaf, "-d", "{d}/staging"},
	} {
		if code, _, errs := cli(dir, args...); code != exitOK {
			t.Fatalf("%v: exit %d: %s", args, code, errs)
		}
	}
	code, _, errs := cli(dir, "import", "-d", "{d}/staging", "-s", "{d}/dst")
	if code != exitInvalid {
		t.Fatalf("import: exit %d, want %d: %s", code, exitInvalid, errs)
	}
	_, usage, _ := cli(dir, "help")
	for _, say := range []string{"hard links", "rewrite", "copy the staged files", "import on the destination host"} {
		if !strings.Contains(errs, say) {
			t.Errorf("import error does not say %q: %s", say, errs)
		}
	}
	for _, say := range []string{"hard-linked", "rewrite", "copy the staging directory", "import on the destination host"} {
		if !strings.Contains(usage, say) {
			t.Errorf("usage does not say %q:\n%s", say, usage)
		}
	}
}
