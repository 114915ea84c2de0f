package vhd

import (
	"errors"
	"testing"
)

// TestChainAllocated: sampleImages' base allocates blocks 0, 2, 4 and 5 of
// 4 KiB, its child block 4; the chain holds data exactly there.
func TestChainAllocated(t *testing.T) {
	m := sampleImages(t)
	c, err := OpenChain(m, "child.vhd")
	if err != nil {
		t.Fatal(err)
	}
	const k = 4096
	tests := []struct {
		off, n int64
		want   bool
	}{
		{0, 1, true},
		{k, k, false},
		{k, k + 1, true},
		{k - 1, 1, true},
		{3 * k, k, false},
		{6 * k, 2 * k, false},
		{6 * k, 100 * k, false},
		{5 * k, 1, true},
		{0, 0, false},
		{8 * k, k, false}, // past the virtual size
	}
	for _, tc := range tests {
		got, err := c.Allocated(tc.off, tc.n)
		if err != nil || got != tc.want {
			t.Errorf("Allocated(%d, %d) = %v, %v; want %v", tc.off, tc.n, got, err, tc.want)
		}
	}
	if _, err := c.Allocated(-1, 1); !errors.Is(err, ErrOutOfRange) {
		t.Errorf("negative offset: %v", err)
	}
	c.Close()
	if _, err := c.Allocated(0, 1); !errors.Is(err, ErrClosed) {
		t.Errorf("closed chain: %v", err)
	}
}
