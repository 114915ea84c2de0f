package dom0

import (
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/xenflow/xenflow/vhd"
)

// ErrBadName is wrapped by every error about a name, UUID or path that
// cannot safely become part of a path on a host.
var ErrBadName = errors.New("dom0: unsafe or malformed name")

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
// A UUID is 16 bytes printed as hex, so the path is safe whatever the
// UUID's origin; the null UUID is refused.
func SRPath(sr vhd.UUID) (string, error) {
	if sr.IsZero() {
		return "", fmt.Errorf("%w: null SR UUID", ErrBadName)
	}
	return SRMountDir + "/" + sr.String(), nil
}

// VDIPath returns the file of a VDI in a file-based SR:
// /var/run/sr-mount/<sr>/<vdi>.vhd.
func VDIPath(sr, vdi vhd.UUID) (string, error) {
	dir, err := SRPath(sr)
	if err != nil {
		return "", err
	}
	if vdi.IsZero() {
		return "", fmt.Errorf("%w: null VDI UUID", ErrBadName)
	}
	return dir + "/" + vdi.String() + ".vhd", nil
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
