package vhd

import (
	"bytes"
	"errors"
	"testing"
)

func TestCopyFrom(t *testing.T) {
	m := newMemFS()
	o := testOpts(1)
	o.BlockSize = 4096
	d, err := Create(m, "a.vhd", 64<<10, o)
	if err != nil {
		t.Fatal(err)
	}
	raw := make([]byte, 40000)
	copy(raw[5000:], bytes.Repeat([]byte{9}, 3000)) // block 1
	copy(raw[30000:], []byte("tail"))               // block 7
	n, err := d.CopyFrom(bytes.NewReader(raw), 100)
	if err != nil || n != int64(len(raw)) {
		t.Fatalf("CopyFrom: %d, %v", n, err)
	}
	if got := d.AllocatedBlocks(); got != 2 {
		t.Errorf("allocated %d blocks, want 2 (zeros skipped)", got)
	}
	got := make([]byte, len(raw))
	if _, err := d.ReadAt(got, 100); err != nil || !bytes.Equal(got, raw) {
		t.Fatalf("read back: %v", err)
	}
	if _, err := d.CopyFrom(bytes.NewReader(make([]byte, 70<<10)), 0); !errors.Is(err, ErrOutOfRange) {
		t.Fatalf("copy past the end: %v", err)
	}
	d.Close()
}
