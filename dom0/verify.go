package dom0

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"strconv"
	"sync"
)

// segmentVerifier checks the copy while it is being written: the bytes the
// controller hashed in order are cut into segments; once a segment is wholly
// written on the destination, sha256sum of that range runs there and must
// equal the controller's hash of the same range. The hashing on the
// destination thus overlaps the transfer instead of following it.
type segmentVerifier struct {
	ctx     context.Context
	fail    context.CancelCauseFunc
	dst     Host
	part    string
	dstName string
	segSize int64

	cur      hash.Hash
	curStart int64
	curLen   int64

	mu      sync.Mutex
	cond    *sync.Cond
	written int64 // bytes [0, written) of the part file are written

	jobs chan segment
	wg   sync.WaitGroup
	errs []error
	stop func() bool
}

type segment struct {
	off, n int64
	sum    []byte
}

func newSegmentVerifier(ctx context.Context, fail context.CancelCauseFunc, dst Host, part, dstName string, start, segSize int64, workers int) *segmentVerifier {
	v := &segmentVerifier{
		ctx: ctx, fail: fail, dst: dst, part: part, dstName: dstName, segSize: segSize,
		cur: sha256.New(), curStart: start, written: start,
		jobs: make(chan segment, workers),
	}
	v.cond = sync.NewCond(&v.mu)
	v.stop = context.AfterFunc(ctx, func() {
		v.mu.Lock()
		v.mu.Unlock()
		v.cond.Broadcast()
	})
	for i := 0; i < workers; i++ {
		v.wg.Add(1)
		go v.work()
	}
	return v
}

// hashed takes the next bytes of the file, in order (called by the single
// hashing goroutine).
func (v *segmentVerifier) hashed(b []byte) {
	for len(b) > 0 {
		n := min(int64(len(b)), v.segSize-v.curLen)
		v.cur.Write(b[:n])
		v.curLen += n
		b = b[n:]
		if v.curLen == v.segSize {
			v.flush()
		}
	}
}

// flush queues the segment hashed so far, if any.
func (v *segmentVerifier) flush() {
	if v.curLen == 0 {
		return
	}
	s := segment{off: v.curStart, n: v.curLen, sum: v.cur.Sum(nil)}
	v.curStart += v.curLen
	v.curLen = 0
	v.cur.Reset()
	select {
	case v.jobs <- s:
	case <-v.ctx.Done():
	}
}

// setWritten records that bytes [0, n) of the part file are written.
func (v *segmentVerifier) setWritten(n int64) {
	v.mu.Lock()
	if n > v.written {
		v.written = n
	}
	v.mu.Unlock()
	v.cond.Broadcast()
}

func (v *segmentVerifier) work() {
	defer v.wg.Done()
	for s := range v.jobs {
		v.mu.Lock()
		for v.written < s.off+s.n && v.ctx.Err() == nil {
			v.cond.Wait()
		}
		v.mu.Unlock()
		if v.ctx.Err() != nil {
			continue
		}
		got, err := hashRangeOn(v.ctx, v.dst, v.part, s.off, s.n)
		if err == nil && !bytes.Equal(got, s.sum) {
			err = &VerifyError{Host: v.dst.String(), Path: v.dstName, Offset: s.off, Length: s.n,
				Want: hex.EncodeToString(s.sum), Got: hex.EncodeToString(got)}
		}
		if err != nil {
			v.mu.Lock()
			v.errs = append(v.errs, err)
			v.mu.Unlock()
			v.fail(err)
		}
	}
}

// wait flushes the last segment, waits for every check and returns the
// first failure.
func (v *segmentVerifier) wait() error {
	v.flush()
	close(v.jobs)
	v.wg.Wait()
	v.stop()
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.errs) > 0 {
		return v.errs[0]
	}
	return nil
}

// sha256Script defines the shell functions the hashing commands use.
// sum prints the SHA-256 of its input, first thing on the line: with
// OpenSSL when the host has the openssl command (it uses the CPU's SHA
// instructions: about a quarter of coreutils' CPU time), else sha256sum.
// range copies bytes [$1, $1+$2) of file $3 to its output: GNU dd with byte
// offsets and 1 MiB reads when it can (one process, one pipe), else tail and
// head.
const sha256Script = `sum() { if command -v openssl >/dev/null 2>&1; then openssl dgst -sha256 -r; else sha256sum; fi; }; ` +
	`range() { if dd if=/dev/null of=/dev/null count=0 iflag=skip_bytes,count_bytes status=none 2>/dev/null; ` +
	`then dd if="$3" bs=1048576 skip="$1" count="$2" iflag=skip_bytes,count_bytes status=none; ` +
	`else tail -c +"$(($1 + 1))" -- "$3" | head -c "$2"; fi; }; `

// hashRangeOn computes on h the SHA-256 of bytes [off, off+n) of name.
func hashRangeOn(ctx context.Context, h Host, name string, off, n int64) ([]byte, error) {
	argv := []string{"sh", "-c", sha256Script + `range "$1" "$2" "$3" | sum`, "sh",
		strconv.FormatInt(off, 10), strconv.FormatInt(n, 10), RunPath(name)}
	out, _, err := h.Run(ctx, argv)
	if err != nil {
		return nil, err
	}
	return parseSHA256Sum(out)
}
