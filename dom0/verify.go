package dom0

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// segmentVerifier checks the copy while it is being written: the bytes the
// controller hashed in order are cut into segments; once a segment is wholly
// written on the destination, the SHA-256 of that range is computed there
// (streamHasher, else one command) and must equal the controller's hash of
// the same range. The hashing on the
// destination thus overlaps the transfer instead of following it.
type segmentVerifier struct {
	ctx     context.Context
	fail    context.CancelCauseFunc
	dst     Host
	part    string
	dstName string
	segSize int64 // 0: chosen by how segments are checked (see size)
	chunk   int64 // the transfer's chunk size
	// streaming is 1 once the streaming hasher runs, 2 once it is known
	// that it does not (0 before).
	streaming atomic.Int32

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

func newSegmentVerifier(ctx context.Context, fail context.CancelCauseFunc, dst Host, part, dstName string, start, segSize, chunk int64, workers int) *segmentVerifier {
	v := &segmentVerifier{
		ctx: ctx, fail: fail, dst: dst, part: part, dstName: dstName, segSize: segSize, chunk: max(chunk, 1),
		cur: sha256.New(), curStart: start, written: start,
		jobs: make(chan segment, workers+3), // room for a slow check or fsync
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
		size := v.size()
		n := min(int64(len(b)), max(size-v.curLen, 0))
		v.cur.Write(b[:n])
		v.curLen += n
		b = b[n:]
		if v.curLen >= size {
			v.flush()
		}
	}
}

// Default segment sizes, with the streaming hasher and with one command per
// segment.
const (
	streamSegment  = 32 << 20
	commandSegment = 256 << 20
)

// size is the length of the segment being hashed: a multiple of the chunk
// size, so that one chunk never closes more than one segment (the worker
// waits for a segment's bytes to be written, and the chunk that would
// complete a second one is only queued for writing after it is hashed).
func (v *segmentVerifier) size() int64 {
	s := v.segSize
	if s <= 0 {
		// Streaming, or not known yet: the few segments cut before the
		// hasher is found missing cost one command each.
		s = streamSegment
		if v.streaming.Load() == 2 {
			s = commandSegment
		}
	}
	if r := s % v.chunk; r != 0 {
		s += v.chunk - r
	}
	return s
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
	// One hashing process runs for the whole file when the host can start
	// one (it starts now, overlapping the first segment's transfer);
	// otherwise each segment is one command.
	sh := startStreamHasher(v.ctx, v.dst, v.part)
	if sh != nil {
		v.streaming.Store(1)
	} else {
		v.streaming.Store(2)
	}
	for s := range v.jobs {
		v.mu.Lock()
		for v.written < s.off+s.n && v.ctx.Err() == nil {
			v.cond.Wait()
		}
		v.mu.Unlock()
		if v.ctx.Err() != nil {
			continue
		}
		var got []byte
		var err error
		if sh != nil {
			got, err = sh.hash(s.off, s.n)
		} else {
			got, err = hashRangeOn(v.ctx, v.dst, v.part, s.off, s.n)
		}
		if err == nil && !bytes.Equal(got, s.sum) {
			err = &VerifyError{Host: v.dst.String(), Path: v.dstName, Offset: s.off, Length: s.n,
				Want: hex.EncodeToString(s.sum), Got: hex.EncodeToString(got)}
		}
		if err == nil && sh != nil {
			// Write the verified bytes out now, while the transfer goes
			// on, rather than all in the fsync that ends the file.
			err = sh.sync()
		}
		if err != nil {
			v.mu.Lock()
			v.errs = append(v.errs, err)
			v.mu.Unlock()
			v.fail(err)
		}
	}
	if sh != nil {
		if err := sh.close(); err != nil && v.ctx.Err() == nil {
			v.mu.Lock()
			v.errs = append(v.errs, err)
			v.mu.Unlock()
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

// streamHasher is one process on the destination host that hashes ranges
// of one file on request: the controller writes "offset length" lines to
// its input, and it answers each with the range's SHA-256 in hex. It is
// Python (2.7 or 3, which XenServer's and XCP-ng's dom0 always have; its
// hashlib is OpenSSL's, with the CPU's SHA instructions) reading the file
// directly: compared with one "dd | openssl" pipeline per segment, it saves
// two copies of every byte through a pipe and the start of a shell and
// three programs per segment, which cost the host as much CPU as the
// hashing itself.
type streamHasher struct {
	p   *process
	out *bufio.Reader
}

// streamHashLauncher runs the program $0 on the file $1 with the first
// Python found, or says "none".
const streamHashLauncher = `for p in python3 python; do if command -v "$p" >/dev/null 2>&1; then exec "$p" -c "$0" "$1"; fi; done; echo none`

// streamHashProgram opens the file, says "ready", then answers each
// "offset length" line with the SHA-256 of that range, and each "sync"
// line with "synced" once the file's data is on disk (fsync); it exits at
// the end of its input, with status 3 when the file is shorter than a
// range, or 5 when fsync fails.
// Requests and answers alternate, so input that arrives while a range is
// being hashed can only be its end (the controller went away: sshd closes
// the command's input when the session closes, and does not kill it): the
// program looks between reads and exits at once, status 4.
const streamHashProgram = `import hashlib, os, select, sys
f = open(sys.argv[1], "rb", 0)
b = bytearray(1 << 20)
m = memoryview(b)
w = sys.stdout
w.write("ready\n")
w.flush()
while True:
    line = sys.stdin.readline()
    if not line:
        break
    if line == "sync\n":
        try:
            os.fsync(f.fileno())
        except OSError as e:
            sys.stderr.write("fsync: %s\n" % e)
            sys.exit(5)
        w.write("synced\n")
        w.flush()
        continue
    off, n = [int(x) for x in line.split()]
    h = hashlib.sha256()
    f.seek(off)
    while n > 0:
        k = f.readinto(m[:min(n, len(b))])
        if not k:
            sys.stderr.write("file ends at %d\n" % f.tell())
            sys.exit(3)
        h.update(m[:k])
        n -= k
        if n > 0 and select.select([sys.stdin], [], [], 0)[0]:
            sys.exit(4)
    w.write(h.hexdigest() + "\n")
    w.flush()
`

// startStreamHasher starts a streamHasher for name on h, or returns nil
// when h cannot start commands or has no Python (the caller then runs one
// command per range).
func startStreamHasher(ctx context.Context, h Host, name string) *streamHasher {
	// Only these two types, not any type that has their method: a type
	// that embeds one to change its paths would hash the wrong file.
	var st starter
	switch h := h.(type) {
	case *SSHHost:
		st = h
	case *LocalHost:
		st = h
	default:
		return nil
	}
	p, err := st.start(ctx, []string{"sh", "-c", streamHashLauncher, streamHashProgram, RunPath(name)})
	if err != nil {
		return nil
	}
	s := &streamHasher{p: p, out: bufio.NewReaderSize(p.stdout, 256)}
	if line, err := s.line(); err != nil || line != "ready" {
		p.stdin.Close()
		p.kill()
		_ = p.wait()
		return nil
	}
	return s
}

// line reads one line of the program's output, without its newline.
func (s *streamHasher) line() (string, error) {
	b, err := s.out.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return "", fmt.Errorf("hash program printed a line of over %d bytes", s.out.Size())
		}
		return "", err
	}
	return string(b[:len(b)-1]), nil
}

// hash returns the SHA-256 of bytes [off, off+n) of the file.
func (s *streamHasher) hash(off, n int64) ([]byte, error) {
	if _, err := fmt.Fprintf(s.p.stdin, "%d %d\n", off, n); err != nil {
		s.p.kill()
		return nil, s.failed(err)
	}
	line, err := s.line()
	if err != nil {
		return nil, s.failed(err)
	}
	return parseSHA256Sum([]byte(line))
}

// sync makes the program fsync the file: the bytes written so far are on
// disk when it returns.
func (s *streamHasher) sync() error {
	if _, err := io.WriteString(s.p.stdin, "sync\n"); err != nil {
		s.p.kill()
		return s.failed(err)
	}
	line, err := s.line()
	if err != nil {
		return s.failed(err)
	}
	if line != "synced" {
		return fmt.Errorf("dom0: hash program answered %q to sync", clip(line))
	}
	return nil
}

// failed returns why the program stopped answering: its exit status and
// message when it exited, else err. It gives the program a moment to exit
// on its own, so that its exit status arrives (over SSH, killing means
// closing the session, which can lose it), then kills it.
func (s *streamHasher) failed(err error) error {
	s.p.stdin.Close()
	exited := make(chan error, 1)
	go func() { exited <- s.p.wait() }()
	var werr error
	select {
	case werr = <-exited:
	case <-time.After(5 * time.Second):
		s.p.kill()
		werr = <-exited
	}
	if werr != nil {
		return werr
	}
	return fmt.Errorf("hash program stopped answering: %w", err)
}

// close ends the program's input and waits for it to exit.
func (s *streamHasher) close() error {
	s.p.stdin.Close()
	return s.p.wait()
}
