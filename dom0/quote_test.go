package dom0

import (
	"context"
	"os/exec"
	"strings"
	"testing"

	"github.com/xenflow/xenflow/internal/oracle"
)

func TestQuote(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "''"},
		{"plain", "plain"},
		{"/var/run/sr-mount/x.vhd", "/var/run/sr-mount/x.vhd"},
		{"a b", "'a b'"},
		{"it's", `'it'\''s'`},
		{"$(reboot)", "'$(reboot)'"},
		{"`id`", "'`id`'"},
		{"a;b", "'a;b'"},
		{"x=1", "'x=1'"},
		{"~root", "'~root'"},
		{"*", "'*'"},
		{"new\nline", "'new\nline'"},
		{"'", `''\'''`},
	} {
		if got := Quote(tc.in); got != tc.want {
			t.Errorf("Quote(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestQuoteCommandRoundTrip gives quoted commands to a real POSIX shell and
// checks that the program receives exactly the words given.
func TestQuoteCommandRoundTrip(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		oracle.Missing(t, "a POSIX sh is needed: %v", err)
	}
	cases := [][]string{
		{"a b", "it's", "$HOME", "`id`", ";", "&&", "|", "*", "?", "[a]", "", "~", "#x", "\\", "\"", "'", "'\"'", "\t", "new\nline", "x=1", "-n", "--", "ünïcødé", "!", "${IFS}"},
		{"$(touch /tmp/xenflow-quote-pwned)"},
	}
	for _, args := range cases {
		script := "printf '%s\\0' " + QuoteCommand(args)
		out, err := exec.CommandContext(context.Background(), "sh", "-c", script).Output()
		if err != nil {
			t.Fatalf("%q: %v", script, err)
		}
		got := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
		if len(got) != len(args) {
			t.Fatalf("%d words came out of %q, want %d: %q", len(got), script, len(args), got)
		}
		for i := range args {
			if got[i] != args[i] {
				t.Errorf("word %d: got %q, want %q", i, got[i], args[i])
			}
		}
	}
}

func FuzzQuote(f *testing.F) {
	for _, s := range []string{"", "a b", "it's", "$(x)", "'\"'", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if strings.IndexByte(s, 0) >= 0 {
			return // no shell word can hold NUL
		}
		out, err := exec.Command("sh", "-c", "printf '%s' "+Quote(s)).Output()
		if err != nil {
			t.Fatal(err)
		}
		if string(out) != s {
			t.Fatalf("Quote(%q) came back as %q", s, out)
		}
	})
}
