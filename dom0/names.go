package dom0

import (
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
)

// UUID is a UUID in canonical form (lower-case 8-4-4-4-12 hex), as XenServer
// names SRs and VDIs and Nova names instances. Only ParseUUID makes one from
// outside input, so a UUID is always safe to put in a path.
type UUID string

// ErrBadName is wrapped by every error about a name, UUID or sequence number
// that cannot safely become part of a path.
var ErrBadName = errors.New("dom0: unsafe or malformed name")

// ParseUUID checks that s is a UUID (any case, with hyphens) and returns it in
// canonical lower-case form.
func ParseUUID(s string) (UUID, error) {
	if len(s) != 36 {
		return "", fmt.Errorf("%w: UUID %q: want 36 characters, got %d", ErrBadName, clip(s), len(s))
	}
	b := []byte(strings.ToLower(s))
	for i, c := range b {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return "", fmt.Errorf("%w: UUID %q: want '-' at %d", ErrBadName, clip(s), i)
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
				return "", fmt.Errorf("%w: UUID %q: not hex at %d", ErrBadName, clip(s), i)
			}
		}
	}
	return UUID(b), nil
}

// MustParseUUID is ParseUUID for constants in programs and tests; it panics on
// a malformed UUID.
func MustParseUUID(s string) UUID {
	u, err := ParseUUID(s)
	if err != nil {
		panic(err)
	}
	return u
}

func (u UUID) String() string { return string(u) }

func (u UUID) valid() bool { _, err := ParseUUID(string(u)); return err == nil }

// clip shortens untrusted text before it goes into an error message.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// SRMountDir is where a XenServer host mounts file-based SRs.
const SRMountDir = "/var/run/sr-mount"

// SRPath returns the directory of a file-based SR: /var/run/sr-mount/<sr>.
func SRPath(sr UUID) (string, error) {
	if !sr.valid() {
		return "", fmt.Errorf("%w: SR UUID %q", ErrBadName, clip(string(sr)))
	}
	return SRMountDir + "/" + string(sr), nil
}

// VDIPath returns the file of a VDI in a file-based SR:
// /var/run/sr-mount/<sr>/<vdi>.vhd.
func VDIPath(sr, vdi UUID) (string, error) {
	dir, err := SRPath(sr)
	if err != nil {
		return "", err
	}
	if !vdi.valid() {
		return "", fmt.Errorf("%w: VDI UUID %q", ErrBadName, clip(string(vdi)))
	}
	return dir + "/" + string(vdi) + ".vhd", nil
}

// SeqName returns the staging name of the VHD at position seq of a chain:
// "<seq>.vhd", 0 being the leaf.
func SeqName(seq int) (string, error) {
	if seq < 0 || seq > MaxChainLength {
		return "", fmt.Errorf("%w: sequence number %d out of range 0..%d", ErrBadName, seq, MaxChainLength)
	}
	return strconv.Itoa(seq) + ".vhd", nil
}

// MaxChainLength is the longest chain staged or imported (Nova's
// MAX_VDI_CHAIN_SIZE is 16; XenServer allows up to 30 levels).
const MaxChainLength = 30

// ParseSeqName reads a staging name "<seq>.vhd" from a peer: digits only, no
// sign, no leading zero, at most MaxChainLength.
func ParseSeqName(name string) (int, error) {
	num, ok := strings.CutSuffix(name, ".vhd")
	if !ok || num == "" || len(num) > 2 || (len(num) > 1 && num[0] == '0') {
		return 0, fmt.Errorf("%w: staging name %q is not <seq>.vhd", ErrBadName, clip(name))
	}
	for i := 0; i < len(num); i++ {
		if num[i] < '0' || num[i] > '9' {
			return 0, fmt.Errorf("%w: staging name %q is not <seq>.vhd", ErrBadName, clip(name))
		}
	}
	n, _ := strconv.Atoi(num)
	if n > MaxChainLength {
		return 0, fmt.Errorf("%w: staging name %q: sequence number above %d", ErrBadName, clip(name), MaxChainLength)
	}
	return n, nil
}

// CheckBaseName accepts a single path element received from a peer (a file
// name listed in a directory): not empty, not "." or "..", no "/", no NUL, no
// control characters.
func CheckBaseName(name string) error {
	if name == "" || name == "." || name == ".." || len(name) > 255 {
		return fmt.Errorf("%w: file name %q", ErrBadName, clip(name))
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c == '/' || c < 0x20 || c == 0x7f {
			return fmt.Errorf("%w: file name %q", ErrBadName, clip(name))
		}
	}
	return nil
}

// checkAbs accepts a host path given by the caller: absolute, already clean
// (no "..", no "//", no trailing "/"), not the root.
func checkAbs(p string) error {
	if p == "" || p[0] != '/' || path.Clean(p) != p || p == "/" || strings.IndexByte(p, 0) >= 0 {
		return fmt.Errorf("%w: path %q must be absolute and clean", ErrBadName, clip(p))
	}
	return nil
}
