package statemachine

import (
	"errors"
	"testing"
)

// FuzzParse feeds arbitrary strings to every parser and to Status: each
// either accepts a value that prints back as its input, or fails with an
// *UnknownValueError; nothing panics.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"active", "resize_prep", "None", "", "pre-migrating", "live-migration",
		"confirmResize", "compute.instance.resize.prep.start", "shutdown", "soft-delete", "\x00", "ACTIVE"} {
		f.Add(s, 4)
	}
	f.Fuzz(func(t *testing.T, s string, n int) {
		check := func(ok bool, err error) {
			t.Helper()
			var uv *UnknownValueError
			if err != nil && !errors.As(err, &uv) {
				t.Fatalf("%q: untyped error %v", s, err)
			}
			if err == nil && !ok {
				t.Fatalf("%q: accepted but does not round-trip", s)
			}
		}
		v, err := ParseVMState(s)
		check(v.String() == s, err)
		ts, err := ParseTaskState(s)
		check(string(ts) == s || (s == "None" && ts == TaskNone), err)
		ms, err := ParseMigrationStatus(s)
		check(string(ms) == s, err)
		mt, err := ParseMigrationType(s)
		check(string(mt) == s, err)
		a, err := ParseAction(s)
		check(string(a) == s, err)
		no, err := ParseNotification(s)
		check(string(no) == s, err)
		ps, err := ParsePowerStateName(s)
		check(ps.String() == s, err)
		pn, err := ParsePowerState(n)
		check(int(pn) == n, err)
		st, err := Status(VMState(s), TaskState(s))
		if err == nil && st == StatusUnknown {
			t.Fatalf("%q: UNKNOWN without an error", s)
		}
		_ = Check(Operation(s), Subject{VMState: VMState(s), TaskState: TaskState(s)})
	})
}
