package cli

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"testing"
)

func TestExitStatus(t *testing.T) {
	tests := []struct {
		err    error
		status int
		says   string
	}{
		{nil, ExitOK, ""},
		{flag.ErrHelp, ExitOK, ""},
		{fmt.Errorf("parse: %w", &UsageError{Flag: "-x", Reason: "bad"}), ExitUsage, "cmd: parse: -x: bad\n"},
		{errors.New("boom"), ExitFail, "cmd: boom\n"},
	}
	for _, tt := range tests {
		var out bytes.Buffer
		if got := ExitStatus("cmd", tt.err, &out); got != tt.status || out.String() != tt.says {
			t.Errorf("ExitStatus(%v) = %d, %q; want %d, %q", tt.err, got, out.String(), tt.status, tt.says)
		}
	}
}
