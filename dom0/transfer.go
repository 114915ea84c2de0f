package dom0

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/go-multierror"

	"github.com/xenflow/xenflow/vhd"
)

// FileCopy names one file to transfer: its path on the source host and the
// path it gets on the destination host (both absolute and clean).
type FileCopy struct {
	Src string
	Dst string
}

// Progress is what a transfer reports after each piece written: the file it
// concerns, how far that file is, and how far the whole transfer is.
type Progress struct {
	File     string // the destination path of the file that moved
	FileDone int64  // bytes of that file on the destination
	FileSize int64  // its size
	Done     int64  // bytes of all files on the destination
	Total    int64  // size of all files
}

// VerifyMode chooses how the destination's copy is checked against the
// SHA-256 computed while reading the source.
type VerifyMode int

const (
	// VerifySHA256Sum computes the copy's SHA-256 on the destination host:
	// the file is read where it lies, and no byte crosses the network
	// again. The file is checked in segments (VerifySegment), each as soon
	// as it is wholly written, against the controller's SHA-256 of the same
	// range, so the check overlaps the transfer. On an SSHHost or a
	// LocalHost one Python process (dom0 always has Python; its hashlib is
	// OpenSSL's, with the CPU's SHA instructions) hashes every segment of
	// a file, reading it directly, and fsyncs each segment once checked, so
	// that the data reaches the disk during the transfer and the fsync that
	// ends the file is short; on other hosts, or one without Python,
	// each segment is one command through Host.Run: openssl (or sha256sum)
	// fed by dd, which costs the host about 60% more CPU.
	VerifySHA256Sum VerifyMode = iota
	// VerifyReadBack reads the copy back through the controller and hashes
	// it: for hosts that cannot run commands; it doubles the traffic.
	VerifyReadBack
)

// TransferOptions tunes Transfer. The zero value is a good default.
type TransferOptions struct {
	// ChunkSize is the unit read from the source and written to the
	// destination in one call (each call is split into SFTP requests that
	// run concurrently); 0 means 2 MiB. Larger calls cost this process less
	// CPU per byte (the SFTP client's work is per call as well as per
	// request).
	ChunkSize int
	// Readers and Writers are how many chunk reads and writes of one file
	// run at once; 0 means 2 each.
	Readers, Writers int
	// Buffers bounds the chunks held in memory at once, by all the files
	// that move at once together; 0 means Readers+Writers+2 (at least 2).
	// The memory for file data is Buffers*ChunkSize, 12 MiB with the
	// defaults, whatever the number and size of the files.
	Buffers int
	// Files is how many files move at once; 0 means 2.
	Files int
	// Verify chooses how the copy is checked (default VerifySHA256Sum).
	Verify VerifyMode
	// FileSHA256 also computes each whole file's SHA-256 while reading
	// (TransferResult.SHA256) with VerifySHA256Sum, which otherwise only
	// hashes segments: one more pass of SHA-256 in this process.
	FileSHA256 bool
	// VerifySegment is, with VerifySHA256Sum, the size of the ranges
	// checked on the destination as soon as they are written, so that the
	// check overlaps the transfer. It is rounded up to a multiple of
	// ChunkSize (the defaults too). 0 means 32 MiB while the Python hasher runs (a request to
	// it costs next to nothing, and the last segment, checked after the
	// transfer, is short) and 256 MiB otherwise: then each check is one
	// command on the host, which costs about as much CPU as hashing 100
	// MiB, so smaller segments overlap better and cost more.
	VerifySegment int64
	// NoResume starts every file from byte 0 even when an earlier attempt
	// left a partial copy.
	NoResume bool
	// Perm is the permission of the files created; 0 means 0600: a disk
	// image holds a guest's data and is for root alone.
	Perm fs.FileMode
	// Progress, when set, is called after each chunk written (and once
	// per file when a resumed prefix is accepted). Calls are serialised.
	Progress func(Progress)
	// Logger receives debug lines; nil discards them.
	Logger *slog.Logger
}

func (o *TransferOptions) withDefaults() TransferOptions {
	var r TransferOptions
	if o != nil {
		r = *o
	}
	if r.ChunkSize <= 0 {
		r.ChunkSize = 2 << 20
	}
	if r.ChunkSize > 64<<20 {
		r.ChunkSize = 64 << 20
	}
	if r.Readers <= 0 {
		r.Readers = 2
	}
	if r.Writers <= 0 {
		r.Writers = 2
	}
	if r.Buffers <= 0 {
		r.Buffers = r.Readers + r.Writers + 2
	}
	if r.Buffers < 2 {
		r.Buffers = 2
	}
	if r.VerifySegment < 0 {
		r.VerifySegment = 0
	}
	if c := int64(r.ChunkSize); r.VerifySegment%c != 0 {
		r.VerifySegment += c - r.VerifySegment%c
	}
	if r.Files <= 0 {
		r.Files = 2
	}
	if r.Perm == 0 {
		r.Perm = 0o600
	}
	if r.Logger == nil {
		r.Logger = slog.New(discardHandler{})
	}
	return r
}

// TransferResult describes one file moved.
type TransferResult struct {
	Src, Dst string
	Size     int64
	SHA256   [sha256.Size]byte // of the whole source as read (VerifyReadBack, or FileSHA256 set), else zero
	Resumed  int64             // bytes kept from an earlier attempt
}

// VerifyError reports a copy whose SHA-256 differs from the source's. The
// partial copy is removed; the final name was never created.
type VerifyError struct {
	Host   string // the destination host
	Path   string // the destination path
	Offset int64  // start of the range that differs
	Length int64  // its length
	Want   string // hex SHA-256 of the source's range as read
	Got    string // hex SHA-256 of the copy's range
}

func (e *VerifyError) Error() string {
	return fmt.Sprintf("dom0 %s: %s: bytes %d..%d of the copy have SHA-256 %s, the source's had %s",
		e.Host, e.Path, e.Offset, e.Offset+e.Length, e.Got, e.Want)
}

// PartName is the name a file has on the destination while it is being
// written: ".<name>.part" in the same directory. A later Transfer of the same
// file resumes from it.
func PartName(dst string) string {
	dir, base := path.Split(dst)
	return dir + "." + base + ".part"
}

// Transfer copies files from src to dst through this process, over both
// hosts' connections: several files at once, each read and written by
// concurrent requests.
//
// Each file is written to PartName(Dst) and renamed to Dst (replacing it)
// only when complete and verified: the SHA-256 of the bytes read from the
// source must equal the copy's (see VerifyMode). An earlier partial copy is
// resumed: its prefix, less a margin for writes that may have been in
// flight, is kept if its hash (sha256sum on the destination) equals the
// source's, and the rest is sent.
//
// When ctx is cancelled or a file fails, the other files stop; the partial
// copies stay under their part names, never under a final name (the caller
// removes the directory, or retries to resume). The first failure is
// returned; the results of the files finished before it come with it.
func Transfer(ctx context.Context, src, dst Host, files []FileCopy, opts *TransferOptions) ([]TransferResult, error) {
	o := opts.withDefaults()
	seen := map[string]bool{}
	for _, f := range files {
		if err := checkAbs(f.Src); err != nil {
			return nil, fmt.Errorf("dom0: transfer source: %w", err)
		}
		if err := checkAbs(f.Dst); err != nil {
			return nil, fmt.Errorf("dom0: transfer destination: %w", err)
		}
		if seen[f.Dst] {
			return nil, fmt.Errorf("%w: destination %s given twice", ErrBadName, f.Dst)
		}
		seen[f.Dst] = true
	}
	sizes := make([]int64, len(files))
	var total int64
	for i, f := range files {
		fi, err := statNoLinks(src, f.Src)
		if err != nil {
			return nil, err
		}
		if !fi.Mode().IsRegular() {
			return nil, &OpError{Host: src.String(), Op: "transfer", Path: f.Src, Err: errors.New("not a regular file")}
		}
		sizes[i] = fi.Size()
		total += fi.Size()
	}
	prog := &progress{fn: o.Progress, total: total}
	bufs := newChunkPool(o.Buffers, o.ChunkSize)

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	results := make([]TransferResult, len(files))
	errs := make([]error, len(files))
	sem := make(chan struct{}, o.Files)
	var wg sync.WaitGroup
	for i := range files {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			r, err := copyFile(ctx, src, dst, files[i], sizes[i], &o, prog, bufs)
			results[i], errs[i] = r, err
			if err != nil {
				cancel(err)
			}
		}(i)
	}
	wg.Wait()
	var done []TransferResult
	for i := range files {
		if errs[i] == nil && results[i].Dst != "" {
			done = append(done, results[i])
		}
	}
	if err := context.Cause(ctx); err != nil {
		return done, err
	}
	return done, nil
}

type progress struct {
	mu    sync.Mutex
	fn    func(Progress)
	done  int64
	total int64
}

func (p *progress) add(file string, fileDone *int64, fileSize, n int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done += n
	*fileDone += n
	if p.fn != nil {
		p.fn(Progress{File: file, FileDone: *fileDone, FileSize: fileSize, Done: p.done, Total: p.total})
	}
}

func copyFile(ctx context.Context, src, dst Host, fc FileCopy, size int64, o *TransferOptions, prog *progress, bufs *chunkPool) (res TransferResult, err error) {
	res = TransferResult{Src: fc.Src, Dst: fc.Dst, Size: size}
	sf, err := src.Open(fc.Src)
	if err != nil {
		return res, err
	}
	defer sf.Close()
	if fi, err := fileStatNoLinks(sf); err != nil {
		return res, err
	} else if fi.Size() != size {
		return res, &OpError{Host: src.String(), Op: "transfer", Path: fc.Src, Err: errors.New("source changed size while transfer started")}
	}

	part := PartName(fc.Dst)
	// The whole file's SHA-256 is computed when it is the check
	// (VerifyReadBack) or asked for; VerifySHA256Sum checks segments.
	fileHash := o.Verify == VerifyReadBack || o.FileSHA256
	var h hash.Hash = nopHash{}
	if fileHash {
		h = sha256.New()
	}
	chunk := int64(o.ChunkSize)
	var off int64
	if !o.NoResume {
		off, err = resumePoint(ctx, src, sf, dst, fc, part, size, o, h)
		if err != nil {
			return res, err
		}
	}
	flag := os.O_WRONLY | os.O_CREATE
	if off == 0 {
		flag |= os.O_TRUNC
	}
	df, err := dst.OpenFile(part, flag, o.Perm)
	if err != nil {
		return res, err
	}
	dfOpen := true
	defer func() {
		if dfOpen {
			df.Close()
		}
	}()
	// One handle per SFTP session of each host, so that the chunks travel
	// over several channels.
	rs, ws := []io.ReaderAt{sf}, []io.WriterAt{df}
	// The extra write handles are closed, and their errors reported,
	// before the check; on failure the first error is the news.
	var extraW []vhd.File
	defer func() { _ = closeAll(extraW) }()
	for i := 1; i < max(streams(src), streams(dst)); i++ {
		f, err := src.Open(fc.Src)
		if err != nil {
			return res, err
		}
		defer f.Close()
		rs = append(rs, f)
		g, err := dst.OpenFile(part, os.O_WRONLY, 0)
		if err != nil {
			return res, err
		}
		extraW = append(extraW, g)
		ws = append(ws, g)
	}
	var fileDone int64
	if off > 0 {
		res.Resumed = off
		o.Logger.Debug("dom0: resuming", "file", fc.Dst, "offset", off)
		prog.add(fc.Dst, &fileDone, size, off)
	}

	// With VerifySHA256Sum the copy is checked segment by segment while it
	// is written; a failed check stops the transfer.
	vctx, vcancel := context.WithCancelCause(ctx)
	defer vcancel(nil)
	hashed := func(b []byte) {
		if fileHash {
			h.Write(b)
		}
	}
	onLow := func(int64) {}
	var ver *segmentVerifier
	if o.Verify == VerifySHA256Sum {
		ver = newSegmentVerifier(vctx, vcancel, dst, part, fc.Dst, off, o.VerifySegment, chunk, 1)
		hashed = func(b []byte) {
			if fileHash {
				h.Write(b)
			}
			ver.hashed(b)
		}
		onLow = ver.setWritten
	}
	low, err := pump(vctx, rs, ws, off, size, chunk, o, bufs, hashed, onLow, func(n int64) { prog.add(fc.Dst, &fileDone, size, n) })
	if err != nil {
		if ver != nil {
			vcancel(err)
			_ = ver.wait()
		}
		var ve *VerifyError
		if errors.As(err, &ve) {
			_ = dst.Remove(part) // holds bytes known to be wrong
			return res, err
		}
		// Keep only the part known to be whole, so a retry resumes from it
		// (best effort: the connection may be gone).
		_ = df.Truncate(low)
		return res, fmt.Errorf("dom0: transfer %s:%s -> %s:%s: %w", src, fc.Src, dst, fc.Dst, err)
	}
	// A server may report a failed write only when its handle is closed
	// (a network file system flushing on close): every handle that wrote
	// must close cleanly before the copy counts.
	err = closeAll(extraW)
	extraW = nil
	if err != nil {
		return res, fmt.Errorf("dom0: transfer %s:%s -> %s:%s: %w", src, fc.Src, dst, fc.Dst, err)
	}
	if err := df.Truncate(size); err != nil {
		return res, err
	}
	if err := df.Sync(); err != nil {
		return res, err
	}
	dfOpen = false
	if err := df.Close(); err != nil {
		return res, err
	}
	if fileHash {
		copy(res.SHA256[:], h.Sum(nil))
	}

	if ver != nil {
		if err := ver.wait(); err != nil {
			var ve *VerifyError
			if errors.As(err, &ve) {
				_ = dst.Remove(part)
				return res, err
			}
			return res, fmt.Errorf("dom0: verify %s:%s: %w", dst, part, err)
		}
	} else {
		got, err := hashOn(ctx, dst, part, size, o.Verify)
		if err != nil {
			return res, fmt.Errorf("dom0: verify %s:%s: %w", dst, part, err)
		}
		if !bytes.Equal(got, res.SHA256[:]) {
			_ = dst.Remove(part)
			return res, &VerifyError{Host: dst.String(), Path: fc.Dst, Length: size, Want: hex.EncodeToString(res.SHA256[:]), Got: hex.EncodeToString(got)}
		}
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	if err := dst.Rename(part, fc.Dst); err != nil {
		return res, err
	}
	return res, nil
}

// streams is how many SFTP sessions a host carries file data on (1 for a
// local host), at most 4.
// closeAll closes every file and reports every failure.
func closeAll(files []vhd.File) error {
	var errs *multierror.Error
	for _, f := range files {
		if err := f.Close(); err != nil {
			errs = multierror.Append(errs, err)
		}
	}
	return errs.ErrorOrNil()
}

func streams(h Host) int {
	if s, ok := h.(interface{ Streams() int }); ok {
		return min(max(s.Streams(), 1), 4)
	}
	return 1
}

// nopHash stands for the file's hash when it is not computed.
type nopHash struct{}

func (nopHash) Write(p []byte) (int, error) { return len(p), nil }
func (nopHash) Sum(b []byte) []byte         { return b }
func (nopHash) Reset()                      {}
func (nopHash) Size() int                   { return sha256.Size }
func (nopHash) BlockSize() int              { return sha256.BlockSize }

// resumePoint looks for an earlier partial copy and returns how much of it
// to keep, having fed that prefix of the source to h. Zero means start over.
// The prefix of the source is hashed on the source host when nothing else
// needs its bytes (h is a nopHash and the copy is checked on the
// destination), else read and hashed here.
func resumePoint(ctx context.Context, src Host, sf io.ReaderAt, dst Host, fc FileCopy, part string, size int64, o *TransferOptions, h hash.Hash) (int64, error) {
	fi, err := statNoLinks(dst, part)
	if err != nil || !fi.Mode().IsRegular() || fi.Size() == 0 {
		return 0, nil
	}
	chunk := int64(o.ChunkSize)
	// Chunks are written in order by Writers goroutines at once: after a
	// failure, the last Writers chunks below the file's length may have
	// holes. Drop them; the hash check below catches anything else.
	keep := min(fi.Size(), size)/chunk*chunk - int64(o.Writers)*chunk
	if keep <= 0 {
		return 0, nil
	}
	var wantSum, got []byte
	err = nil
	if _, nop := h.(nopHash); nop && o.Verify == VerifySHA256Sum {
		// Neither the whole file's hash nor a read-back is wanted: the
		// prefix is hashed on both hosts at once, and crosses no network.
		var srcErr error
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			wantSum, srcErr = hashPrefixOn(ctx, src, fc.Src, keep)
		}()
		got, err = hashPrefixOn(ctx, dst, part, keep)
		wg.Wait()
		if srcErr != nil {
			o.Logger.Debug("dom0: cannot hash the source on its host, reading it", "file", fc.Src, "err", srcErr)
			wantSum = nil
		}
	}
	if wantSum == nil {
		want := sha256.New()
		if err := hashRange(ctx, sf, 0, keep, chunk, io.MultiWriter(h, want)); err != nil {
			h.Reset()
			return 0, fmt.Errorf("dom0: read %s:%s to resume: %w", src, fc.Src, err)
		}
		wantSum = want.Sum(nil)
		if got == nil && err == nil {
			got, err = hashOn(ctx, dst, part, keep, o.Verify)
		}
	}
	if err != nil || !bytes.Equal(got, wantSum) {
		o.Logger.Debug("dom0: partial copy does not match, starting over", "file", fc.Dst, "err", err)
		h.Reset()
		return 0, ctx.Err()
	}
	return keep, nil
}

// hashPrefixOn returns the SHA-256 of the first n bytes of name, computed
// on h: by the streaming hasher when h has one, else by one command.
func hashPrefixOn(ctx context.Context, h Host, name string, n int64) ([]byte, error) {
	if sh := startStreamHasher(ctx, h, name); sh != nil {
		sum, err := sh.hash(0, n)
		if cerr := sh.close(); err == nil && cerr != nil {
			err = cerr
		}
		return sum, err
	}
	return hashOn(ctx, h, name, n, VerifySHA256Sum)
}

// hashRange hashes [off, end) of r into w, reading chunk bytes at a time.
func hashRange(ctx context.Context, r io.ReaderAt, off, end, chunk int64, w io.Writer) error {
	buf := make([]byte, min(chunk, max(end-off, 1)))
	for off < end {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := min(int64(len(buf)), end-off)
		k, err := r.ReadAt(buf[:n], off)
		if int64(k) < n {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		w.Write(buf[:n])
		off += n
	}
	return nil
}

// hashOn returns the SHA-256 of the first n bytes of name on h: computed
// there (sha256Script), or by reading it back with VerifyReadBack.
func hashOn(ctx context.Context, h Host, name string, n int64, mode VerifyMode) ([]byte, error) {
	if mode == VerifyReadBack {
		f, err := h.Open(name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		d := sha256.New()
		if err := hashRange(ctx, f, 0, n, 1<<20, d); err != nil {
			return nil, err
		}
		return d.Sum(nil), nil
	}
	argv := []string{"sh", "-c", sha256Script + `sum < "$1"`, "sh", RunPath(name)}
	if fi, err := statNoLinks(h, name); err != nil {
		return nil, err
	} else if fi.Size() != n {
		argv = []string{"sh", "-c", sha256Script + `range 0 "$1" "$2" | sum`, "sh", strconv.FormatInt(n, 10), RunPath(name)}
	}
	out, _, err := h.Run(ctx, argv)
	if err != nil {
		return nil, err
	}
	return parseSHA256Sum(out)
}

func parseSHA256Sum(out []byte) ([]byte, error) {
	if len(out) < 64 {
		return nil, fmt.Errorf("dom0: sha256sum printed %q", clip(string(out)))
	}
	sum, err := hex.DecodeString(string(out[:64]))
	if err != nil {
		return nil, fmt.Errorf("dom0: sha256sum printed %q", clip(string(out)))
	}
	return sum, nil
}

// pump copies [off, end) from r to w: Readers goroutines read chunks, one
// goroutine gives them in order to hashed, Writers goroutines write them;
// onLow learns each time the length below which every byte is written
// grows. At
// most Buffers chunks are held at once. It returns the length below which
// every byte was written (for a resume after an error).
func pump(ctx context.Context, rs []io.ReaderAt, ws []io.WriterAt, off, end, chunk int64, o *TransferOptions, bufs *chunkPool, hashed func([]byte), onLow func(int64), written func(int64)) (int64, error) {
	if end <= off {
		return off, ctx.Err()
	}
	nChunks := (end - off + chunk - 1) / chunk
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	type piece struct {
		idx int64
		b   []byte
	}
	nbuf := int(min(int64(o.Buffers), nChunks+1))
	readDone := make(chan piece, nbuf)
	writeQ := make(chan piece, nbuf)
	var next atomic.Int64

	// Chunks [0, low) are written. A writer may start chunk i only when
	// i < low+Writers, so nothing past (low+Writers)*chunk is ever written:
	// after a failure, holes can only lie in the last Writers chunks below
	// the file's length (resumePoint relies on it).
	var lowMu sync.Mutex
	lowCond := sync.NewCond(&lowMu)
	low := int64(0)
	finished := map[int64]bool{}
	markWritten := func(i int64) {
		lowMu.Lock()
		finished[i] = true
		grew := false
		for finished[low] {
			delete(finished, low)
			low++
			grew = true
		}
		lw := min(off+low*chunk, end)
		lowMu.Unlock()
		lowCond.Broadcast()
		if grew {
			onLow(lw)
		}
	}
	waitWindow := func(i int64) bool {
		lowMu.Lock()
		defer lowMu.Unlock()
		for i >= low+int64(o.Writers) && ctx.Err() == nil {
			lowCond.Wait()
		}
		return ctx.Err() == nil
	}
	stopWake := context.AfterFunc(ctx, func() {
		lowMu.Lock()
		lowMu.Unlock()
		lowCond.Broadcast()
	})
	defer stopWake()

	var wg sync.WaitGroup
	for k := 0; k < o.Readers; k++ {
		wg.Add(1)
		r := rs[k%len(rs)]
		go func() {
			defer wg.Done()
			for {
				if next.Load() >= nChunks {
					return // every chunk is taken: leave the buffers to other files
				}
				// Take a buffer before a chunk number: see below.
				b, ok := bufs.get(ctx)
				if !ok {
					return
				}
				// The lowest chunk not yet hashed always belongs to a reader
				// holding a buffer, so the hasher can always progress.
				i := next.Add(1) - 1
				if i >= nChunks {
					bufs.put(b)
					return
				}
				at := off + i*chunk
				n := min(chunk, end-at)
				got, err := r.ReadAt(b[:n], at)
				if int64(got) < n {
					if err == nil || err == io.EOF {
						err = fmt.Errorf("source ended at %d, want %d bytes: %w", at+int64(got), end, io.ErrUnexpectedEOF)
					}
					cancel(err)
					bufs.release() // a late reply may still land in b
					return
				}
				select {
				case readDone <- piece{i, b[:n]}:
				case <-ctx.Done():
					bufs.put(b)
					return
				}
			}
		}()
	}
	wg.Add(1)
	go func() { // hash in order, hand to writers
		defer wg.Done()
		defer close(writeQ)
		pending := map[int64]piece{}
		defer func() {
			for _, p := range pending {
				bufs.put(p.b)
			}
		}()
		for want := int64(0); want < nChunks; {
			select {
			case p := <-readDone:
				pending[p.idx] = p
			case <-ctx.Done():
				return
			}
			for {
				p, ok := pending[want]
				if !ok {
					break
				}
				delete(pending, want)
				hashed(p.b)
				select {
				case writeQ <- p:
				case <-ctx.Done():
					bufs.put(p.b)
					return
				}
				want++
			}
		}
	}()
	for k := 0; k < o.Writers; k++ {
		wg.Add(1)
		w := ws[k%len(ws)]
		go func() {
			defer wg.Done()
			for p := range writeQ {
				if !waitWindow(p.idx) {
					bufs.put(p.b)
					continue
				}
				if _, err := w.WriteAt(p.b, off+p.idx*chunk); err != nil {
					cancel(err)
					bufs.release() // a request may still be sending from p.b
					continue
				}
				markWritten(p.idx)
				written(int64(len(p.b)))
				bufs.put(p.b)
			}
		}()
	}
	wg.Wait()
	for len(readDone) > 0 { // read, never hashed: the hasher stopped
		bufs.put((<-readDone).b)
	}
	lowMu.Lock()
	lw := min(off+low*chunk, end)
	lowMu.Unlock()
	if err := context.Cause(ctx); err != nil && (low < nChunks) {
		return lw, err
	}
	return lw, nil
}

// chunkPool holds the chunk buffers of one Transfer, shared by the files
// that move at once: at most n exist, each of size bytes, made when first
// needed and reused.
type chunkPool struct {
	slots chan struct{} // one token per buffer that may be out
	free  chan []byte
	size  int
}

func newChunkPool(n, size int) *chunkPool {
	return &chunkPool{slots: make(chan struct{}, n), free: make(chan []byte, n), size: size}
}

// get returns a buffer of the pool's size, waiting while all are out; ok
// is false when ctx ends first.
func (p *chunkPool) get(ctx context.Context) (b []byte, ok bool) {
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, false
	}
	select {
	case b = <-p.free:
	default:
		b = make([]byte, p.size)
	}
	return b, true
}

// put gives back a buffer that get returned.
func (p *chunkPool) put(b []byte) {
	p.free <- b[:cap(b)]
	<-p.slots
}

// release gives back the slot of a buffer that get returned but that must
// not be reused (an I/O call that failed may still touch it).
func (p *chunkPool) release() {
	<-p.slots
}
