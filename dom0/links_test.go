package dom0

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/xenflow/xenflow/vhd"
)

func TestParseLinkCount(t *testing.T) {
	tests := []struct {
		out         string
		links       uint64
		size, mtime int64
		ok          bool
	}{
		{out: "1 4096 1700000000\n", links: 1, size: 4096, mtime: 1700000000, ok: true},
		{out: "3 0 0\n", links: 3, ok: true},
		{out: "2 10 -5\n", links: 2, size: 10, mtime: -5, ok: true},
		{out: ""},
		{out: "1 4096 1700000000"},
		{out: "1 4096\n"},
		{out: "1 4096 17 9\n"},
		{out: "0 4096 17\n"},
		{out: "x 4096 17\n"},
		{out: "1 -1 17\n"},
		{out: "1 4096 17\n1 4096 17\n"},
		{out: "18446744073709551616 1 1\n"},
	}
	for _, tt := range tests {
		links, size, mtime, err := parseLinkCount([]byte(tt.out))
		if (err == nil) != tt.ok || links != tt.links || size != tt.size || mtime != tt.mtime {
			t.Errorf("parseLinkCount(%q) = %d, %d, %d, %v", tt.out, links, size, mtime, err)
		}
	}
}

func FuzzParseLinkCount(f *testing.F) {
	f.Add([]byte("1 4096 1700000000\n"))
	f.Add([]byte("2 0 0\n"))
	f.Fuzz(func(t *testing.T, out []byte) {
		links, size, _, err := parseLinkCount(out)
		if err == nil && (links == 0 || size < 0) {
			t.Fatalf("%q accepted as %d links, %d bytes", out, links, size)
		}
	})
}

// nlink is the link count an SSHHost's FileInfo carries.
func nlink(t *testing.T, fi os.FileInfo) uint64 {
	t.Helper()
	st, ok := fi.Sys().(*FileStat)
	if !ok {
		t.Fatalf("Sys() is %T, want *FileStat", fi.Sys())
	}
	return st.Nlink
}

// TestSSHLinkCount: Stat of a file, by name or open, says how many hard
// links it has.
func TestSSHLinkCount(t *testing.T) {
	s := startSSHD(t)
	h := s.Dial(t)
	dir := t.TempDir()
	if err := os.WriteFile(dir+"/a", []byte("data"), 0o600); err != nil {
		t.Fatal(err)
	}
	for want := uint64(1); want <= 3; want++ {
		if want > 1 {
			if err := h.Link(dir+"/a", dir+"/l"+string(rune('0'+want))); err != nil {
				t.Fatal(err)
			}
		}
		fi, err := h.Stat(dir + "/a")
		if err != nil {
			t.Fatal(err)
		}
		if got := nlink(t, fi); got != want {
			t.Errorf("Stat: %d links, want %d", got, want)
		}
		f, err := h.Open(dir + "/a")
		if err != nil {
			t.Fatal(err)
		}
		fi, err = f.Stat()
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if got := nlink(t, fi); got != want {
			t.Errorf("file Stat: %d links, want %d", got, want)
		}
		if fi.Size() != 4 || fi.Name() != "a" {
			t.Errorf("FileInfo %s %d, want a 4", fi.Name(), fi.Size())
		}
	}
	if fi, err := h.Stat(dir); err != nil || !fi.IsDir() {
		t.Fatalf("directory: %v %v", fi, err)
	}
}

// TestImportHardLinkedOverSSH: vhd.Import over SFTP refuses a staged file
// still linked into the SR it was staged from, and imports a chain that
// travelled to another host (TestMoveChain/ssh does the whole move).
func TestImportHardLinkedOverSSH(t *testing.T) {
	src, dst, _, _ := chainPair(t, "ssh")
	leaf, _ := makeChain(t, src, 2, 7)
	req := SendRequest{Label: ChainLabel{Instance: testInstance}, SrcSR: testSrcSR, Leaf: leaf, DstSR: testDstSR}
	sendDir, _, err := StagingDirs(req, nil)
	if err != nil {
		t.Fatal(err)
	}
	srcSR, _ := SRPath(testSrcSR)
	ctx := context.Background()
	if _, err := vhd.Stage(ctx, src, srcSR, leaf, sendDir, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := vhd.Import(ctx, src, sendDir, srcSR, nil); !errors.Is(err, vhd.ErrHardLinked) {
		t.Fatalf("import of hard links: %v, want vhd.ErrHardLinked", err)
	}
	src.RemoveAll(sendDir)

	dstSR, _ := SRPath(testDstSR)
	if err := dst.MkdirAll(dstSR, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := SendChain(ctx, src, dst, req, nil); err != nil {
		t.Fatal(err)
	}
	res, err := ImportChain(ctx, dst, req.Label, testDstSR, nil)
	if err != nil || len(res.Files) != 2 {
		t.Fatalf("import of copies: %+v, %v", res, err)
	}
}
