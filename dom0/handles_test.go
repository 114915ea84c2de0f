package dom0

import (
	"context"
	"io/fs"
	"sync"
	"testing"

	"github.com/xenflow/xenflow/vhd"
)

// countingHost counts the files opened through it and not yet closed.
type countingHost struct {
	Host
	mu   sync.Mutex
	open map[*countedFile]string
}

func countFiles(h Host) *countingHost { return &countingHost{Host: h, open: map[*countedFile]string{}} }

func (h *countingHost) Open(name string) (vhd.File, error) {
	return h.OpenFile(name, 0, 0)
}

func (h *countingHost) OpenFile(name string, flag int, perm fs.FileMode) (vhd.File, error) {
	f, err := h.Host.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	c := &countedFile{File: f, h: h}
	h.mu.Lock()
	h.open[c] = name
	h.mu.Unlock()
	return c, nil
}

func (h *countingHost) Leaked() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, n := range h.open {
		out = append(out, n)
	}
	return out
}

type countedFile struct {
	vhd.File
	h    *countingHost
	once sync.Once
}

func (f *countedFile) Close() error {
	f.once.Do(func() {
		f.h.mu.Lock()
		delete(f.h.open, f)
		f.h.mu.Unlock()
	})
	return f.File.Close()
}

// TestNoHandleLeft runs transfers and chain moves that succeed and fail in
// every way the tests know and checks that every file opened was closed.
func TestNoHandleLeft(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		dst  func(Host) Host
		ctx  func() (context.Context, func(Progress))
	}{
		{"success", func(h Host) Host { return h }, nil},
		{"disk full", func(h Host) Host { return &diskFullHost{Host: h, left: 100 << 10} }, nil},
		{"corrupting", func(h Host) Host { return corruptHost{Host: h} }, nil},
		{"cancelled", func(h Host) Host { return h }, func() (context.Context, func(Progress)) {
			c, cancel := context.WithCancel(ctx)
			return c, func(Progress) { cancel() }
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srcL, dstL := localHost(t), localHost(t)
			leaf, _ := makeChain(t, srcL, 3, 9)
			dstSR, _ := SRPath(testDstSR)
			_ = dstL.MkdirAll(dstSR, 0o755)
			src, dst := countFiles(srcL), countFiles(tc.dst(dstL))
			c, prog := ctx, func(Progress) {}
			if tc.ctx != nil {
				c, prog = tc.ctx()
			}
			req := SendRequest{Label: ChainLabel{Instance: testInstance}, SrcSR: testSrcSR, Leaf: leaf, DstSR: testDstSR}
			_, err := MoveChain(c, src, dst, req, &ChainOptions{Transfer: &TransferOptions{ChunkSize: 64 << 10, Progress: prog}})
			if (err == nil) != (tc.name == "success") {
				t.Fatalf("MoveChain: %v", err)
			}
			if l := src.Leaked(); len(l) > 0 {
				t.Errorf("source files left open: %v", l)
			}
			if l := dst.Leaked(); len(l) > 0 {
				t.Errorf("destination files left open: %v", l)
			}
		})
	}
}
