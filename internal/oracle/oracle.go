// Package oracle is for tests that check xenflow against real outside
// programs (qemu-img, libvhdi, OpenSSH's sshd, Nova's scheduler, the Python
// XenAPI client): when one is missing, the test is skipped on a developer's
// machine but fails under CI=true, where .ci/run has installed them all.
package oracle

import (
	"fmt"
	"os"
	"testing"
)

// Missing reports that an oracle the test needs is not there: it fails the
// test under CI=true and skips it otherwise. The message says what is
// missing and how to install it.
func Missing(tb testing.TB, format string, args ...any) {
	tb.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		tb.Fatalf("oracle missing under CI=true: %s", msg)
	}
	tb.Skipf("oracle missing: %s", msg)
}
