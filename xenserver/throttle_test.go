package xenserver

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xenflow/xenflow/vhd"
)

// More transfers than the cap wait their turn; none fails.
func TestHostSlotsQueue(t *testing.T) {
	s := newHostSlots(2)
	var running, peak atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			release, err := s.acquire(context.Background(), "a", "b")
			if err != nil {
				t.Error(err)
				return
			}
			n := running.Add(1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			time.Sleep(5 * time.Millisecond)
			running.Add(-1)
			release()
		}()
	}
	wg.Wait()
	if p := peak.Load(); p != 2 {
		t.Fatalf("%d transfers ran at once, the cap is 2", p)
	}
	// A full host makes the next caller wait until its context ends.
	r1, _ := s.acquire(context.Background(), "a")
	r2, _ := s.acquire(context.Background(), "a", "a")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := s.acquire(ctx, "c", "a"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("acquire on a full host: %v", err)
	}
	r1()
	r2()
	// The slot of "c" taken before waiting on "a" was given back.
	rc, err := s.acquire(context.Background(), "c", "c")
	if err != nil {
		t.Fatal(err)
	}
	rc()
}

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestRateLimiter(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1000, 0)}
	l := NewRateLimiter(1<<20, clock.now) // 1 MiB/s, burst 1 MiB
	tests := []struct {
		name    string
		advance time.Duration
		n       int
		want    time.Duration
	}{
		{"burst", 0, 1 << 20, 0},
		{"empty bucket", 0, 512 << 10, 500 * time.Millisecond},
		{"refilled", 2 * time.Second, 256 << 10, 0},
	}
	for _, tt := range tests {
		clock.add(tt.advance)
		if got := l.reserve(tt.n); got != tt.want {
			t.Errorf("%s: wait %v, want %v", tt.name, got, tt.want)
		}
	}
	// Waiting honours the context.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := l.WaitN(ctx, 4<<20); !errors.Is(err, context.Canceled) {
		t.Fatalf("WaitN with a cancelled context: %v", err)
	}
	// A reader passes everything through, a burst at most per Read.
	data := bytes.Repeat([]byte("x"), 200<<10)
	fast := NewRateLimiter(1<<40, nil)
	got, err := io.ReadAll(fast.Reader(context.Background(), bytes.NewReader(data)))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("limited reader: %d bytes, %v", len(got), err)
	}
}

// streamFile builds the head of a VHD stream: footer copy, header and a
// BAT with the given entries.
func streamFile(t *testing.T, diskType vhd.DiskType, blockSize uint32, bat []uint32) []byte {
	t.Helper()
	f := vhd.Footer{Features: 2, FormatVersion: vhd.Version(1, 0), DataOffset: vhd.FooterSize,
		CurrentSize: uint64(len(bat)) * uint64(blockSize), OriginalSize: uint64(len(bat)) * uint64(blockSize), DiskType: diskType}
	copy(f.Cookie[:], "conectix")
	fb, err := f.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	h := vhd.Header{DataOffset: ^uint64(0), TableOffset: vhd.FooterSize + vhd.HeaderSize, HeaderVersion: vhd.Version(1, 0),
		MaxTableEntries: uint32(len(bat)), BlockSize: blockSize}
	copy(h.Cookie[:], "cxsparse")
	hb, err := h.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	out := append(fb, hb...)
	batBytes := make([]byte, roundSector(int64(len(bat))*4))
	for i := range batBytes {
		batBytes[i] = 0xFF
	}
	for i, e := range bat {
		binary.BigEndian.PutUint32(batBytes[4*i:], e)
	}
	return append(out, batBytes...)
}

func TestStreamHead(t *testing.T) {
	const free = 0xFFFFFFFF
	const bs = 2 << 20
	bitmap := int64(512)
	tests := []struct {
		name    string
		stream  func(t *testing.T) []byte
		want    int64
		wantErr string // "" or the StreamError field, or "short"
	}{
		{"empty dynamic", func(t *testing.T) []byte { return streamFile(t, vhd.DiskDynamic, bs, []uint32{free, free}) },
			1536 + 512 + 512, ""},
		{"two blocks", func(t *testing.T) []byte {
			return streamFile(t, vhd.DiskDynamic, bs, []uint32{4, free, 4 + (512+bs)/512})
		}, 4*512 + 2*(bitmap+bs) + 512, ""},
		{"differencing", func(t *testing.T) []byte { return streamFile(t, vhd.DiskDifferencing, bs, []uint32{free, 4}) },
			4*512 + bitmap + bs + 512, ""},
		{"fixed", func(t *testing.T) []byte { return streamFile(t, vhd.DiskFixed, bs, []uint32{free}) }, 0, "footer.disk_type"},
		{"block inside the head", func(t *testing.T) []byte { return streamFile(t, vhd.DiskDynamic, bs, []uint32{1}) }, 0, "bat[0]"},
		{"bad block size", func(t *testing.T) []byte { return streamFile(t, vhd.DiskDynamic, 3000, []uint32{free}) }, 0, "header.block_size"},
		{"huge BAT", func(t *testing.T) []byte { return streamFile(t, vhd.DiskDynamic, bs, make([]uint32, 5<<20)) }, 0, "header.max_table_entries"},
		{"cut in the BAT", func(t *testing.T) []byte {
			bat := make([]uint32, 1000)
			for i := range bat {
				bat[i] = free
			}
			return streamFile(t, vhd.DiskDynamic, 4096, bat)[:2000]
		}, 0, "short"},
		{"cut in the header", func(t *testing.T) []byte { return make([]byte, 700) }, 0, "short"},
		{"garbage", func(t *testing.T) []byte { return bytes.Repeat([]byte{7}, 4096) }, 0, "footer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.stream(t)
			r := io.Reader(bytes.NewReader(in))
			if tt.wantErr != "short" {
				// The blocks that follow the head are not read.
				r = io.MultiReader(r, bytes.NewReader(bytes.Repeat([]byte{1}, 4096)))
			}
			head, n, err := streamHead(r)
			switch tt.wantErr {
			case "":
				if err != nil || n != tt.want || !bytes.Equal(head, in) {
					t.Fatalf("streamHead = %d bytes of head, length %d, %v; want length %d", len(head), n, err, tt.want)
				}
			case "short":
				var sb *ShortBodyError
				if !errors.As(err, &sb) {
					t.Fatalf("streamHead: %v, want a *ShortBodyError", err)
				}
			default:
				var se *StreamError
				if !errors.As(err, &se) || se.Field != tt.wantErr {
					t.Fatalf("streamHead: %v, want a *StreamError on %s", err, tt.wantErr)
				}
			}
		})
	}
}
