package dom0

import (
	"context"
	"crypto/sha256"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// pathHost runs commands with PATH set to one directory.
type pathHost struct {
	Host
	path string
}

func (h pathHost) Run(ctx context.Context, argv []string) ([]byte, []byte, error) {
	return h.Host.Run(ctx, append([]string{"env", "PATH=" + h.path}, argv...))
}

// TestRemoteHash checks the destination-side SHA-256 of ranges with openssl
// and, on a host without it, with sha256sum.
func TestRemoteHash(t *testing.T) {
	h := localHost(t)
	data := randomFile(t, h.Root(), "/f", 3<<20+7, 5)
	noSSL := t.TempDir()
	for _, tool := range []string{"sh", "tail", "head", "sha256sum"} { // no openssl, no dd
		p, err := exec.LookPath(tool)
		if err != nil {
			t.Skipf("no %s", tool)
		}
		if err := os.Symlink(p, filepath.Join(noSSL, tool)); err != nil {
			t.Fatal(err)
		}
	}
	hosts := map[string]Host{"default PATH": h, "no openssl, no dd": pathHost{h, noSSL}}
	for name, host := range hosts {
		for _, r := range []struct{ off, n int64 }{{0, 0}, {0, 1}, {0, 3<<20 + 7}, {1 << 20, 1 << 20}, {3 << 20, 7}, {12345, 678901}} {
			got, err := hashRangeOn(context.Background(), host, "/f", r.off, r.n)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			want := sha256.Sum256(data[r.off : r.off+r.n])
			if string(got) != string(want[:]) {
				t.Errorf("%s: range %d+%d: wrong hash", name, r.off, r.n)
			}
		}
		for _, n := range []int64{int64(len(data)), 1000} {
			got, err := hashOn(context.Background(), host, "/f", n, VerifySHA256Sum)
			want := sha256.Sum256(data[:n])
			if err != nil || string(got) != string(want[:]) {
				t.Errorf("%s: prefix %d: %x %v", name, n, got, err)
			}
		}
	}
}
