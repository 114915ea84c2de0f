package dom0

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xenflow/xenflow/internal/oracle"
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
			oracle.Missing(t, "%s is needed: %v", tool, err)
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

// hasherHost returns a host of the kind named ("local" or "ssh", see
// hostPair), the directory of this machine where its test files go, and
// the host's name for the file base in that directory.
func hasherHost(t *testing.T, kind, base string) (h Host, root, name string) {
	t.Helper()
	_, h, _, root = hostPair(t, kind)
	if kind == "ssh" {
		root = t.TempDir()
		return h, root, root + "/" + base
	}
	return h, root, "/" + base
}

// needPython skips, or fails under CI=true, when the machine has no python3
// for the streaming hasher to run.
func needPython(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("python3"); err != nil {
		oracle.Missing(t, "python3 is needed for the streaming hasher: %v", err)
	}
}

// TestStreamHasher asks one hashing process on the host for the SHA-256 of
// several ranges of a file, over a real sshd and locally, and checks that a
// range past the end of the file ends it with an error that says so.
func TestStreamHasher(t *testing.T) {
	needPython(t)
	for _, kind := range []string{"local", "ssh"} {
		t.Run(kind, func(t *testing.T) {
			h, root, name := hasherHost(t, kind, "f")
			data := randomFile(t, root, "/f", 3<<20+7, 5)
			sh := startStreamHasher(context.Background(), h, name)
			if sh == nil {
				t.Fatal("no streaming hasher on a host with python3")
			}
			for _, r := range []struct{ off, n int64 }{{0, 0}, {0, 1}, {0, 3<<20 + 7}, {1 << 20, 1 << 20}, {3 << 20, 7}, {12345, 678901}} {
				got, err := sh.hash(r.off, r.n)
				if err != nil {
					t.Fatalf("range %d+%d: %v", r.off, r.n, err)
				}
				if want := sha256.Sum256(data[r.off : r.off+r.n]); !bytes.Equal(got, want[:]) {
					t.Errorf("range %d+%d: wrong hash", r.off, r.n)
				}
			}
			if err := sh.sync(); err != nil {
				t.Fatalf("sync: %v", err)
			}
			_, err := sh.hash(3<<20, 8)
			var ee *ExitError
			if !errors.As(err, &ee) || ee.Code != 3 || !strings.Contains(string(ee.Stderr), "file ends at") {
				t.Fatalf("range past the end: got %v, want an *ExitError with status 3 saying where the file ends", err)
			}
			closed := make(chan error, 1)
			go func() { closed <- sh.close() }()
			select {
			case err := <-closed:
				if !errors.As(err, &ee) {
					t.Errorf("close after the failure: %v, want the same *ExitError", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("close after a failed request hangs")
			}
		})
	}
}

// TestStreamHasherMissing checks the two cases where no streaming hasher
// starts and Transfer checks each segment with one command instead: a host
// without Python, and a file that cannot be opened.
func TestStreamHasherMissing(t *testing.T) {
	h := localHost(t)
	data := randomFile(t, h.Root(), "/f", 1<<20, 5)
	if sh := startStreamHasher(context.Background(), h, "/missing"); sh != nil {
		t.Error("a streaming hasher started on a missing file")
	}
	noPython := t.TempDir()
	for _, tool := range []string{"sh", "dd", "openssl", "sha256sum", "tail", "head", "cat", "setsid"} {
		if p, err := exec.LookPath(tool); err == nil {
			if err := os.Symlink(p, filepath.Join(noPython, tool)); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Setenv("PATH", noPython)
	if sh := startStreamHasher(context.Background(), h, "/f"); sh != nil {
		t.Fatal("a streaming hasher started on a host without Python")
	}
	dst := localHost(t)
	if _, err := Transfer(context.Background(), h, dst, []FileCopy{{Src: "/f", Dst: "/g"}}, &TransferOptions{ChunkSize: 64 << 10, VerifySegment: 256 << 10}); err != nil {
		t.Fatalf("transfer checked by one command per segment: %v", err)
	}
	if got, _ := os.ReadFile(filepath.Join(dst.Root(), "g")); !bytes.Equal(got, data) {
		t.Fatal("copy differs")
	}
}

// TestTransferStreamVerifyCatchesCorruption damages the copy on the
// destination's disk behind Transfer's back, after the chunk is written:
// the streaming hasher (unwrapped hosts, so it is the one used) must see
// it, and nothing may reach the final name.
func TestTransferStreamVerifyCatchesCorruption(t *testing.T) {
	needPython(t)
	for _, kind := range []string{"local", "ssh"} {
		t.Run(kind, func(t *testing.T) {
			src, dst, sr, dr := hostPair(t, kind)
			prefix := ""
			if kind == "ssh" {
				sr, dr = t.TempDir(), t.TempDir()
				prefix = dr
			}
			randomFile(t, sr, "/a.vhd", 4<<20, 1)
			srcName := "/a.vhd"
			if kind == "ssh" {
				srcName = sr + srcName
			}
			part := filepath.Join(dr, PartName("/a.vhd"))
			_, err := Transfer(context.Background(), src, dst, []FileCopy{{Src: srcName, Dst: prefix + "/a.vhd"}}, &TransferOptions{
				ChunkSize: 256 << 10, Writers: 1, VerifySegment: 1 << 20,
				Progress: damageOnDisk(t, part, 512<<10, 300<<10),
			})
			var ve *VerifyError
			if !errors.As(err, &ve) || ve.Offset != 0 || ve.Length != 1<<20 {
				t.Fatalf("got %v, want a *VerifyError for the first MiB", err)
			}
			if ents, _ := os.ReadDir(dr); len(ents) != 0 {
				t.Errorf("destination keeps %v after a failed verification", ents)
			}
		})
	}
}

// damageOnDisk returns a Progress callback that, once the file has
// reached done bytes, overwrites a few bytes at offset at of the file
// (this machine's path), behind Transfer's back.
func damageOnDisk(t *testing.T, file string, done, at int64) func(Progress) {
	var once sync.Once
	return func(p Progress) {
		if p.FileDone < done {
			return
		}
		once.Do(func() {
			f, err := os.OpenFile(file, os.O_WRONLY, 0)
			if err != nil {
				t.Error(err)
				return
			}
			defer f.Close()
			if _, err := f.WriteAt([]byte("xenflow"), at); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestTransferDefaultStreamSegments damages the copy at 40 MiB on disk: with
// the streaming hasher the default segments are 32 MiB, so the error names
// bytes 32..64 MiB.
func TestTransferDefaultStreamSegments(t *testing.T) {
	needPython(t)
	src, dst := localHost(t), localHost(t)
	randomFile(t, src.Root(), "/a.vhd", 72<<20, 3)
	part := filepath.Join(dst.Root(), PartName("/a.vhd"))
	_, err := Transfer(context.Background(), src, dst, []FileCopy{{Src: "/a.vhd", Dst: "/a.vhd"}}, &TransferOptions{
		Writers:  1,
		Progress: damageOnDisk(t, part, 48<<20, 40<<20),
	})
	var ve *VerifyError
	if !errors.As(err, &ve) || ve.Offset != 32<<20 || ve.Length != 32<<20 {
		t.Fatalf("got %v, want a *VerifyError for bytes 32..64 MiB", err)
	}
}

// TestStreamHashProgramInterpreters runs the hashing program under every
// Python interpreter of this machine's PATH that works (python3 at least;
// XenServer 7's dom0 has Python 2.7, and the program is written for both).
func TestStreamHashProgramInterpreters(t *testing.T) {
	needPython(t)
	dir := t.TempDir()
	data := randomFile(t, dir, "/f", 3<<20+5, 9)
	seen := map[string]bool{}
	for _, name := range []string{"python3", "python", "python2", "python2.7"} {
		p, err := exec.LookPath(name)
		if err != nil {
			continue
		}
		ver, err := exec.Command(p, "-c", "import sys; print(sys.version.split()[0])").Output()
		if err != nil || seen[string(ver)] {
			continue // a shim without an interpreter behind it, or one already run
		}
		seen[string(ver)] = true
		cmd := exec.Command(p, "-c", streamHashProgram, filepath.Join(dir, "f"))
		in, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		outPipe, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		out := bufio.NewReader(outPipe)
		// Requests and answers alternate, as streamHasher sends them.
		var got []string
		for _, req := range []string{"", "0 3145733\n", "sync\n", "1048576 7\n", "3145733 0\n"} {
			if req != "" {
				if _, err := io.WriteString(in, req); err != nil {
					t.Fatal(err)
				}
			}
			line, err := out.ReadString('\n')
			if err != nil {
				t.Fatalf("Python %s: after %q: %v", bytes.TrimSpace(ver), req, err)
			}
			got = append(got, line)
		}
		in.Close()
		if err := cmd.Wait(); err != nil {
			t.Fatalf("Python %s: %v", bytes.TrimSpace(ver), err)
		}
		sum := func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) + "\n" }
		want := []string{"ready\n", sum(data), "synced\n", sum(data[1<<20 : 1<<20+7]), sum(nil)}
		if strings.Join(got, "") != strings.Join(want, "") {
			t.Errorf("Python %s printed %q, want %q", bytes.TrimSpace(ver), got, want)
		}
		t.Logf("Python %s answers right", bytes.TrimSpace(ver))
	}
	if len(seen) == 0 {
		t.Fatal("no working Python interpreter, though python3 is on PATH")
	}
}

// TestStreamHasherCancel cancels the hasher's context while it waits for a
// request ("idle") and while it is busy with a long range ("busy": 64 GiB
// of a sparse file, half a minute of hashing or more). A pending request
// must fail and the process end on the host within seconds, not when the
// range is done: sshd does not kill a command whose session closes, so the
// program itself must notice.
func TestStreamHasherCancel(t *testing.T) {
	needPython(t)
	needPgrep(t)
	for _, busy := range []bool{false, true} {
		for _, kind := range []string{"local", "ssh"} {
			t.Run(map[bool]string{false: "idle", true: "busy"}[busy]+"/"+kind, func(t *testing.T) {
				const base = "cancel-me.vhd"
				h, root, name := hasherHost(t, kind, base)
				size := int64(1 << 20)
				if busy {
					size = 64 << 30
				}
				file := filepath.Join(root, base)
				if err := os.WriteFile(file, nil, 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.Truncate(file, size); err != nil {
					t.Fatalf("make a %d-byte sparse file: %v", size, err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				sh := startStreamHasher(ctx, h, name)
				if sh == nil {
					t.Fatal("no streaming hasher")
				}
				running := func() bool { return exec.Command("pgrep", "-f", base).Run() == nil }
				if !running() {
					t.Fatal("pgrep does not see the hashing process")
				}
				answered := make(chan error, 1)
				if busy {
					go func() {
						_, err := sh.hash(0, size)
						answered <- err
					}()
					time.Sleep(200 * time.Millisecond)
				}
				cancel() // acts in the background: an idle request may still be answered
				if busy {
					select {
					case err := <-answered:
						if err == nil {
							t.Fatal("the 64 GiB range was answered after the cancellation")
						}
					case <-time.After(10 * time.Second):
						t.Fatal("the request still waits 10s after its context was cancelled")
					}
				}
				deadline := time.Now().Add(10 * time.Second)
				for running() {
					if time.Now().After(deadline) {
						t.Fatal("the hashing process still runs 10s after its context was cancelled")
					}
					time.Sleep(50 * time.Millisecond)
				}
				if _, err := sh.hash(0, 1); err == nil {
					t.Error("a hash was answered after the process ended")
				}
			})
		}
	}
}

// needPgrep skips, or fails under CI=true, when pgrep (procps) is missing.
func needPgrep(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("pgrep"); err != nil {
		oracle.Missing(t, "pgrep is needed to look for processes on the host: %v (apt-get install procps)", err)
	}
}
