package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"time"

	"github.com/xenflow/xenflow/xenapi"
	"github.com/xenflow/xenflow/xenapi/xenapitest"
)

// blockSize is the size of one guest write.
const blockSize = 4096

// writeSpan bounds where the guest writes: the first 64 MiB of the disk
// (all of it when smaller), so disks of any size get the same writes.
const writeSpan = 64 << 20

// guestDisk acts as the guest of a simulated VM on its root disk and
// remembers what it wrote, block by block, the last write winning: the
// content the disk must have wherever the instance goes.
type guestDisk struct {
	pool *xenapitest.Pool
	size int64
	rng  *rand.Rand

	mu     sync.Mutex
	vm     string
	blocks map[int64][]byte
	writes int
}

func newGuestDisk(pool *xenapitest.Pool, vmRef string, size int64) *guestDisk {
	return &guestDisk{pool: pool, vm: vmRef, size: size, blocks: map[int64][]byte{},
		rng: rand.New(rand.NewPCG(1, 2))}
}

// write writes one block at off as the guest; it is remembered only when
// the pool took it (a halted guest writes nothing).
func (g *guestDisk) write(off int64, data []byte) error {
	if err := g.pool.WriteGuestDisk(g.vm, "0", off, data); err != nil {
		return err
	}
	g.mu.Lock()
	g.blocks[off] = data
	g.writes++
	g.mu.Unlock()
	return nil
}

// nextOffset picks the next block to write.
func (g *guestDisk) nextOffset() int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.rng.Int64N(min(g.size, writeSpan)/blockSize) * blockSize
}

// block returns a block of recognisable content.
func block(format string, args ...any) []byte {
	line := []byte(fmt.Sprintf(format, args...) + "\n")
	return bytes.Repeat(line, blockSize/len(line)+1)[:blockSize]
}

// layer writes n blocks of layer i.
func (g *guestDisk) layer(i, n int) error {
	for j := 0; j < n; j++ {
		off := g.nextOffset()
		if err := g.write(off, block("layer %d block %d at %d", i, j, off)); err != nil {
			return fmt.Errorf("guest write of layer %d: %w", i, err)
		}
	}
	return nil
}

// buildChain writes `layers` layers of data, each closed by a VDI.snapshot
// whose snapshot is destroyed at once: the disk becomes a chain of hidden
// base copies under the leaf the guest goes on writing to, as a
// file-based SR keeps it after snapshots are deleted.
func (g *guestDisk) buildChain(ctx context.Context, c *xenapi.Client, vdi xenapi.VDIRef, layers, perLayer int) error {
	for i := 1; i <= layers; i++ {
		if err := g.layer(i, perLayer); err != nil {
			return err
		}
		snap, err := c.VDI.Snapshot(ctx, vdi, nil)
		if err != nil {
			return fmt.Errorf("snapshot of layer %d: %w", i, err)
		}
		if err := c.VDI.Destroy(ctx, snap); err != nil {
			return fmt.Errorf("destroying the snapshot of layer %d: %w", i, err)
		}
	}
	return nil
}

// logSpan is the size of the region the running guest appends to, as a
// log: its writes during a move touch a few 2 MiB VHD blocks, not all.
const logSpan = 4 << 20

// logOffset is where the guest's n-th log block goes: after the first
// quarter of the write span (of the disk when smaller), wrapping.
func (g *guestDisk) logOffset(n int) int64 {
	span := min(g.size, writeSpan)
	return span/4 + int64(n)*blockSize%min(logSpan, span/2)
}

// keepWriting appends a block to the guest's log every interval until
// stop is closed, and returns how many writes the pool took.
func (g *guestDisk) keepWriting(stop <-chan struct{}, interval time.Duration) int {
	n := 0
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return n
		case <-t.C:
		}
		off := g.logOffset(n)
		if g.write(off, block("guest write %d at %d", n, off)) == nil {
			n++
		}
	}
}

// count returns the writes the pool took.
func (g *guestDisk) count() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.writes
}

// verify compares the first g.size bytes of vdi with what the guest
// wrote (zero elsewhere), 1 MiB at a time.
func (g *guestDisk) verify(vdiRef, vdiUUID string) error {
	g.mu.Lock()
	offs := make([]int64, 0, len(g.blocks))
	for off := range g.blocks {
		offs = append(offs, off)
	}
	blocks := g.blocks
	g.mu.Unlock()
	sort.Slice(offs, func(i, j int) bool { return offs[i] < offs[j] })
	const chunk = 1 << 20
	got, want := make([]byte, chunk), make([]byte, chunk)
	next := 0
	for base := int64(0); base < g.size; base += chunk {
		n := min(chunk, g.size-base)
		if err := g.pool.ReadVDIAt(vdiRef, got[:n], base); err != nil {
			return fmt.Errorf("reading %s at %d: %w", vdiUUID, base, err)
		}
		clear(want[:n])
		for ; next < len(offs) && offs[next] < base+n; next++ {
			g.mu.Lock()
			copy(want[offs[next]-base:], blocks[offs[next]])
			g.mu.Unlock()
		}
		if i := firstDiff(got[:n], want[:n]); i >= 0 {
			return &VerifyError{VDI: vdiUUID, Offset: base + int64(i), Want: want[i], Got: got[i]}
		}
	}
	return nil
}

// firstDiff returns the first index where a and b differ, or -1.
func firstDiff(a, b []byte) int {
	if bytes.Equal(a, b) {
		return -1
	}
	for i := range a {
		if a[i] != b[i] {
			return i
		}
	}
	return -1
}
