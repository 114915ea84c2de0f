package vhd

import (
	"bytes"
	"sync"
	"testing"
)

// TestConcurrentReadWrite reads a chain from several goroutines while its
// leaf is written; every read of a region nobody writes must see the
// parent's bytes, and the race detector must stay quiet.
func TestConcurrentReadWrite(t *testing.T) {
	m := newMemFS()
	o := testOpts(1)
	o.BlockSize = 65536
	base, err := Create(m, "base.vhd", 4<<20, o)
	if err != nil {
		t.Fatal(err)
	}
	pattern := bytes.Repeat([]byte("base"), 256<<10) // 1 MiB
	if _, err := base.WriteAt(pattern, 0); err != nil {
		t.Fatal(err)
	}
	base.Close()
	leaf, err := Snapshot(m, "leaf.vhd", "base.vhd", testOpts(2))
	if err != nil {
		t.Fatal(err)
	}
	leaf.Close()
	c, err := OpenChainWithOptions(m, "leaf.vhd", &ChainOptions{Writable: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	wg.Add(1)
	go func() { // writer: the second MiB and beyond
		defer wg.Done()
		buf := bytes.Repeat([]byte{7}, 3000)
		for i := int64(0); i < 200; i++ {
			if _, err := c.WriteAt(buf, 1<<20+i*9000+int64(i%512)); err != nil {
				errs <- err.Error()
				return
			}
		}
	}()
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) { // readers: the first MiB, held by the base only
			defer wg.Done()
			p := make([]byte, 100000)
			for i := 0; i < 50; i++ {
				off := int64((g*7919 + i*104729) % (1<<20 - len(p)))
				if _, err := c.ReadAt(p, off); err != nil {
					errs <- err.Error()
					return
				}
				if !bytes.Equal(p, pattern[off:off+int64(len(p))]) {
					errs <- "a read saw bytes that are not the parent's"
					return
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
