package vhd

import (
	"bytes"
	"fmt"
	"math/rand"
	"os"
	"testing"
)

// TestPropertyRandomChains writes random data at random (often unaligned)
// offsets into random chains — snapshotting, growing and coalescing between
// rounds — and compares every read with a plain in-memory model of the
// virtual disk. Every file must pass Check (with the data check) after each
// round.
func TestPropertyRandomChains(t *testing.T) {
	seeds := 30
	if testing.Short() || raceEnabled {
		seeds = 6
	}
	for seed := int64(1); seed <= int64(seeds); seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { propertyRun(t, seed) })
	}
}

func propertyRun(t *testing.T, seed int64) {
	r := rand.New(rand.NewSource(seed))
	m := newMemFS()
	blockSizes := []uint32{4096, 8192, 65536, DefaultBlockSize}
	o := &CreateOptions{Rand: r, Timestamp: testTime, BlockSize: blockSizes[r.Intn(len(blockSizes))]}
	if r.Intn(5) == 0 {
		o.Type = DiskFixed
	}
	size := int64(r.Intn(12*1024)+128) * SectorSize
	d, err := Create(m, "d0.vhd", size, o)
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	chain := []string{"d0.vhd"} // base first
	model := make([]byte, size)
	leaf := func() string { return chain[len(chain)-1] }
	created := 1
	for round := 0; round < 6; round++ {
		// Writes, through a Chain or through a lone Disk.
		var w interface {
			WriteAt([]byte, int64) (int, error)
		}
		var closer func() error
		if r.Intn(2) == 0 {
			c, err := OpenChainWithOptions(m, leaf(), &ChainOptions{Writable: true})
			if err != nil {
				t.Fatal(err)
			}
			w, closer = c, c.Close
		} else {
			d, err := OpenFile(m, leaf(), os.O_RDWR)
			if err != nil {
				t.Fatal(err)
			}
			w, closer = d, d.Close
		}
		bs := int64(o.BlockSize)
		for i := r.Intn(15) + 1; i > 0; i-- {
			var off, n int64
			switch r.Intn(3) {
			case 0: // sector-aligned
				off = r.Int63n(size/SectorSize) * SectorSize
				n = (r.Int63n(3*bs/SectorSize) + 1) * SectorSize
			case 1: // anything
				off = r.Int63n(size)
				n = r.Int63n(2*bs) + 1
			default: // a whole block
				off = r.Int63n((size+bs-1)/bs) * bs
				n = bs
			}
			if off >= size {
				continue
			}
			n = min(n, size-off)
			buf := make([]byte, n)
			if r.Intn(4) != 0 {
				r.Read(buf)
			}
			if got, err := w.WriteAt(buf, off); err != nil || got != len(buf) {
				t.Fatalf("round %d: WriteAt(%d bytes at %d): %d, %v", round, n, off, got, err)
			}
			copy(model[off:], buf)
		}
		if err := closer(); err != nil {
			t.Fatal(err)
		}
		verifyModel(t, m, leaf(), model, r)
		for _, n := range chain {
			if err := CheckWithOptions(m, n, &CheckOptions{CheckData: round == 5}); err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		switch k := r.Intn(10); {
		case k < 5: // snapshot
			name := fmt.Sprintf("d%d.vhd", created)
			created++
			c, err := Snapshot(m, name, leaf(), &CreateOptions{Rand: r, Timestamp: testTime})
			if err != nil {
				t.Fatal(err)
			}
			c.Close()
			chain = append(chain, name)
		case k < 7: // grow the leaf
			if info, _ := Query(m, leaf()); info.Type == DiskFixed && r.Intn(2) == 0 {
				break
			}
			ns := size + int64(r.Intn(4096)+1)*SectorSize
			if err := Resize(m, leaf(), ns); err != nil {
				t.Fatal(err)
			}
			model = append(model, make([]byte, ns-size)...)
			size = ns
		case k < 9 && len(chain) > 1: // coalesce the leaf into its parent
			p, err := Open(m, chain[len(chain)-2])
			if err != nil {
				t.Fatal(err)
			}
			psize := p.Size()
			p.Close()
			if psize != size {
				break
			}
			if err := Coalesce(m, leaf()); err != nil {
				t.Fatal(err)
			}
			// The parent alone now reads as the model.
			chain = chain[:len(chain)-1]
			verifyModel(t, m, leaf(), model, r)
		}
	}
}

func verifyModel(t *testing.T, m *memFS, leaf string, model []byte, r *rand.Rand) {
	t.Helper()
	c, err := OpenChain(m, leaf)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Size() != int64(len(model)) {
		t.Fatalf("size %d, model %d", c.Size(), len(model))
	}
	var buf bytes.Buffer
	if _, err := c.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), model) {
		i := 0
		for i < len(model) && buf.Bytes()[i] == model[i] {
			i++
		}
		t.Fatalf("%s: chain differs from the model at byte %d (depth %d)", leaf, i, c.Depth())
	}
	for i := 0; i < 20; i++ {
		off := r.Int63n(int64(len(model)))
		n := r.Intn(70000) + 1
		p := make([]byte, n)
		got, err := c.ReadAt(p, off)
		want := min(int64(n), int64(len(model))-off)
		if int64(got) != want || (int64(got) < int64(n) && err == nil) {
			t.Fatalf("ReadAt(%d, %d) = %d, %v", n, off, got, err)
		}
		if !bytes.Equal(p[:got], model[off:off+int64(got)]) {
			t.Fatalf("ReadAt(%d, %d) differs from the model", n, off)
		}
	}
}
