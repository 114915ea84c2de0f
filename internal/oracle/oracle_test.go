package oracle

import (
	"testing"
)

// TestMissing runs Missing in a subtest with and without CI=true: it must
// fail the subtest in CI and skip it elsewhere.
func TestMissing(t *testing.T) {
	for _, ci := range []string{"true", ""} {
		t.Setenv("CI", ci)
		fake := &recorder{}
		func() {
			defer func() { _ = recover() }() // Fatalf and Skipf end the goroutine in testing; here they panic
			Missing(fake, "qemu-img %s", "absent")
		}()
		failed, skipped := fake.failed, fake.skipped
		if ci == "true" && (!failed || skipped) {
			t.Errorf("CI=true: failed=%v skipped=%v, want a failure", failed, skipped)
		}
		if ci == "" && (failed || !skipped) {
			t.Errorf("CI unset: failed=%v skipped=%v, want a skip", failed, skipped)
		}
		if fake.msg == "" {
			t.Error("no message")
		}
	}
}

// recorder is a testing.TB that records how Missing ended the test.
type recorder struct {
	testing.TB
	failed, skipped bool
	msg             string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	r.failed, r.msg = true, format
	panic("fatal")
}
func (r *recorder) Skipf(format string, args ...any) {
	r.skipped, r.msg = true, format
	panic("skip")
}
