package dom0

import (
	"fmt"
	"log/slog"
)

// Secret holds a password or a passphrase. It prints, logs and marshals as
// "REDACTED", so it cannot leak through an error message, a log line or a
// %v of a configuration. Convert it with string(s) only where the secret is
// used.
type Secret string

const redacted = "REDACTED"

// String returns "REDACTED" (or "" for an empty secret).
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString is String for %#v.
func (s Secret) GoString() string { return fmt.Sprintf("dom0.Secret(%q)", s.String()) }

// Format makes every verb (%s, %v, %q, %x...) print the redacted form.
func (s Secret) Format(f fmt.State, verb rune) { fmt.Fprint(f, s.String()) }

// LogValue keeps the secret out of slog output.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText keeps the secret out of JSON, XML and text encodings.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }
