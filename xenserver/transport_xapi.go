package xenserver

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/xenapi"
)

// MaxVHDExportSize is the largest virtual size xapi exports as a VHD
// (ocaml/xapi/export_raw_vdi.ml: VDI_TOO_LARGE above 2040 GiB).
const MaxVHDExportSize = 2040 << 30

// xapiTransport moves disks through xapi's HTTP handlers: GET
// /export_raw_vdi?format=vhd[&base=] from the source pool streamed through
// the controller into PUT /import_raw_vdi?format=vhd on a VDI it creates on
// the destination SR with VDI.create. It works on every VHD-based SR and
// needs no SSH.
type xapiTransport struct {
	cfg TransferConfig
}

func (*xapiTransport) Name() string { return TransportXAPI }

// Begin refuses a disk over MaxVHDExportSize or larger than the
// destination SR's free space, then creates the destination VDI (the full
// virtual size) tagged with the migration.
func (x *xapiTransport) Begin(ctx context.Context, req DiskMoveRequest) (DiskMove, error) {
	size := req.Record.VirtualSize
	if size > MaxVHDExportSize {
		return nil, &VDITooLargeError{ComputeHost: req.Source.ComputeHost, VDI: req.Record.UUID, Size: size, Max: MaxVHDExportSize}
	}
	if err := checkFree(ctx, req.Dest, req.Record.UUID, size); err != nil {
		return nil, err
	}
	c := req.Dest.Client
	ref, err := c.VDI.Create(ctx, xenapi.VDIRecord{
		NameLabel:       req.Record.NameLabel,
		NameDescription: req.Record.NameDescription,
		SR:              req.Dest.SR,
		VirtualSize:     size,
		Type:            xenapi.VDITypeUser,
		OtherConfig: map[string]string{
			KeyMigration:  req.MigrationUUID,
			KeyUserdevice: req.Userdevice,
			KeyRole:       RoleCopy,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("xenserver: create the copy of VDI %s on %q: %w", req.Record.UUID, req.Dest.ComputeHost, err)
	}
	return &xapiMove{x: x, req: req, dst: ref, sum: sha256.New()}, nil
}

// Discard destroys the migration's incomplete copies on the destination
// SR.
func (x *xapiTransport) Discard(ctx context.Context, dest Endpoint, migrationUUID string) error {
	return discardCopies(ctx, dest, migrationUUID, false)
}

// xapiMove is one disk's move over the xapi transport.
type xapiMove struct {
	x    *xapiTransport
	req  DiskMoveRequest
	dst  xenapi.VDIRef
	sum  hash.Hash
	last xenapi.VDIRef // the VDI last sent
	sent int64
}

// Send relays one export into the destination VDI.
func (m *xapiMove) Send(ctx context.Context, vdi, base xenapi.VDIRef) (int64, error) {
	q := url.Values{"vdi": {string(vdi)}, "format": {"vhd"}}
	if !base.IsNull() {
		q.Set("base", string(base))
	}
	n, err := relay(ctx, relayRequest{
		From: m.req.Source, To: m.req.Dest, Query: q, Into: m.dst, Hash: m.sum,
		Limiter: m.req.Limiter, Progress: m.req.Progress, BufferSize: m.x.cfg.BufferSize,
	})
	m.sent += n
	if err != nil {
		return n, err
	}
	m.last = vdi
	return n, nil
}

// Finish checks the copy (exporting both back as raw when the transfer
// config asks) and tags it complete with its digest.
func (m *xapiMove) Finish(ctx context.Context) (compute.Disk, error) {
	c := m.req.Dest.Client
	rec, err := c.VDI.GetRecord(ctx, m.dst)
	if err != nil {
		return compute.Disk{}, fmt.Errorf("xenserver: copy of VDI %s on %q: %w", m.req.Record.UUID, m.req.Dest.ComputeHost, err)
	}
	if rec.VirtualSize < m.req.Record.VirtualSize {
		return compute.Disk{}, &NoDiskError{ComputeHost: m.req.Dest.ComputeHost, VDI: rec.UUID,
			Reason: fmt.Sprintf("virtual size %d, source has %d", rec.VirtualSize, m.req.Record.VirtualSize)}
	}
	if m.x.cfg.Verify {
		if err := m.verify(ctx); err != nil {
			return compute.Disk{}, err
		}
	}
	digest := hex.EncodeToString(m.sum.Sum(nil))
	err = updateVDIOtherConfig(ctx, c, m.dst, func(oc map[string]string) {
		oc[KeySHA256] = digest
		oc[KeyComplete] = "true"
	})
	if err != nil {
		return compute.Disk{}, err
	}
	return compute.Disk{Label: m.req.Label, Userdevice: m.req.Userdevice, VDI: rec.UUID,
		VirtualSize: m.req.Record.VirtualSize, SHA256: digest}, nil
}

// verify exports the last VDI sent and the copy as raw and compares their
// SHA-256.
func (m *xapiMove) verify(ctx context.Context) error {
	src, err := rawDigest(ctx, m.req.Source, m.last, m.req.Record.VirtualSize)
	if err != nil {
		return err
	}
	dst, err := rawDigest(ctx, m.req.Dest, m.dst, m.req.Record.VirtualSize)
	if err != nil {
		return err
	}
	if src != dst {
		return &DigestMismatchError{VDI: string(m.dst), Sent: src, Got: dst}
	}
	return nil
}

// rawDigest hashes the first size bytes of a raw export of vdi.
func rawDigest(ctx context.Context, ep Endpoint, vdi xenapi.VDIRef, size int64) (string, error) {
	resp, err := ep.Client.DoHTTP(ctx, xenapi.HTTPRequest{Method: http.MethodGet, Path: "/export_raw_vdi",
		Query: url.Values{"vdi": {string(vdi)}, "format": {"raw"}}})
	if err != nil {
		return "", &TransferError{Step: "verify", ComputeHost: ep.ComputeHost, VDI: string(vdi), Err: err}
	}
	defer resp.Body.Close()
	h := sha256.New()
	n, err := io.Copy(h, io.LimitReader(resp.Body, size))
	if err == nil && n < size {
		err = &ShortBodyError{Want: size, Got: n}
	}
	if err != nil {
		return "", &TransferError{Step: "verify", ComputeHost: ep.ComputeHost, VDI: string(vdi), Err: err}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Abort destroys the destination VDI.
func (m *xapiMove) Abort(ctx context.Context) error {
	return destroyVDI(ctx, m.req.Dest.Client, m.dst)
}

// relayRequest is one export streamed into one import.
type relayRequest struct {
	From, To   Endpoint
	Query      url.Values
	Into       xenapi.VDIRef
	Hash       hash.Hash
	Limiter    *RateLimiter
	Progress   func(int64)
	BufferSize int
}

// relay streams GET /export_raw_vdi?format=vhd from the source pool into
// PUT /import_raw_vdi?format=vhd on the destination, through a fixed
// buffer. xapi sends the export without a Content-Length (the body ends
// when the connection closes) and its VHD import refuses a body without
// one, so the relay reads the stream's head (footer, header, BAT: at most
// a few MiB) and computes the length from the BAT; a Content-Length the
// export does send must agree. Every byte goes through the hash; an export
// shorter or longer than its length fails the move.
//
// The export runs under a task of its own (task_id), as the import does:
// a relay that stops early cancels it, so the source host stops reading
// the disk, and a relay that read everything waits for it, so an export
// xapi failed after its last byte fails the move too.
func relay(ctx context.Context, r relayRequest) (int64, error) {
	vdi := r.Query.Get("vdi")
	exportErr := func(err error) error {
		return &TransferError{Step: "export", ComputeHost: r.From.ComputeHost, VDI: vdi, Err: err}
	}
	c := r.From.Client
	task, err := c.Task.Create(ctx, "xenflow: export "+vdi, "export_raw_vdi")
	if err != nil {
		return 0, exportErr(fmt.Errorf("create the export's task: %w", err))
	}
	r.Query = cloneQuery(r.Query)
	r.Query.Set("task_id", string(task))
	n, err := relayUnder(ctx, r, exportErr)
	if err != nil {
		dropTask(c, task)
		return n, err
	}
	if _, err := c.WaitTask(ctx, task, nil); err != nil { // destroys the task
		return n, exportErr(fmt.Errorf("the export's task: %w", err))
	}
	return n, nil
}

func cloneQuery(q url.Values) url.Values {
	out := make(url.Values, len(q)+1)
	for k, v := range q {
		out[k] = append([]string(nil), v...)
	}
	return out
}

// relayUnder is relay's stream: the export's head, then the body piped
// into the import.
func relayUnder(ctx context.Context, r relayRequest, exportErr func(error) error) (int64, error) {
	resp, head, length, err := openExport(ctx, r)
	if err != nil {
		return 0, exportErr(err)
	}
	defer resp.Body.Close()
	body := &relayBody{r: io.LimitReader(io.MultiReader(bytes.NewReader(head), resp.Body), length), want: length,
		hash: r.Hash, progress: r.Progress}
	err = importStream(ctx, r, body, length, func() {
		body.stopped.Store(true) // what the export says after this is not its fault
		resp.Body.Close()
	})
	switch {
	case body.err != nil:
		return body.n, exportErr(body.err)
	case err != nil:
		return body.n, &TransferError{Step: "import", ComputeHost: r.To.ComputeHost, VDI: string(r.Into), Err: err}
	case body.n != length:
		return body.n, exportErr(&ShortBodyError{Want: length, Got: body.n})
	}
	if n, _ := resp.Body.Read(make([]byte, 1)); n > 0 {
		return body.n, exportErr(fmt.Errorf("the stream goes on past the %d bytes its BAT gives", length))
	}
	return body.n, nil
}

// openExport starts the export and reads the VHD stream's head; it
// returns the response, the head and the stream's length.
func openExport(ctx context.Context, r relayRequest) (*http.Response, []byte, int64, error) {
	resp, err := r.From.Client.DoHTTP(ctx, xenapi.HTTPRequest{Method: http.MethodGet, Path: "/export_raw_vdi", Query: r.Query})
	if err != nil {
		return nil, nil, 0, err
	}
	head, length, err := streamHead(resp.Body)
	if err == nil && resp.ContentLength >= 0 && resp.ContentLength != length {
		err = fmt.Errorf("Content-Length %d, the stream's BAT says %d", resp.ContentLength, length)
	}
	if err != nil {
		resp.Body.Close()
		return nil, nil, 0, err
	}
	return resp, head, length, nil
}

// importStream PUTs length bytes of body into the destination VDI
// (putVHD), copied through a fixed buffer on a goroutine of its own;
// stopExport stops that copy's reads when the import fails. It returns
// once the copy is over, so body's counters can be read.
func importStream(ctx context.Context, r relayRequest, body io.Reader, length int64, stopExport func()) error {
	var src io.Reader = body
	if r.Limiter != nil {
		src = r.Limiter.Reader(ctx, body)
	}
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, err := io.CopyBuffer(pw, onlyReader{src}, make([]byte, r.BufferSize))
		pw.CloseWithError(err)
	}()
	return putVHD(ctx, r.To.Client, r.Into, pr, length, func(ok bool) {
		if !ok {
			// The copy may be blocked on the pipe or on the export.
			pr.CloseWithError(errImportOver)
			stopExport()
		}
		<-done
	})
}

// putVHD PUTs length bytes of a VHD stream into vdi with
// /import_raw_vdi?format=vhd. The import runs under a task of its own
// (task_id), as xapi's clients do: xapi's handler may answer 200 before
// the VHD is written, and tells how the import ended only in the task, so
// putVHD waits for it. A cancelled ctx cancels the task (task.cancel),
// which stops the import on the host whether or not it still reads the
// connection. settle, when not nil, runs once the request is over (ok
// false when it failed), before the task is waited for.
func putVHD(ctx context.Context, c *xenapi.Client, vdi xenapi.VDIRef, body io.Reader, length int64, settle func(ok bool)) error {
	if settle == nil {
		settle = func(bool) {}
	}
	task, err := c.Task.Create(ctx, "xenflow: import into "+string(vdi), "import_raw_vdi")
	if err != nil {
		settle(false)
		return fmt.Errorf("create the import's task: %w", err)
	}
	in, err := c.DoHTTP(ctx, xenapi.HTTPRequest{Method: http.MethodPut, Path: "/import_raw_vdi",
		Query: url.Values{"vdi": {string(vdi)}, "format": {"vhd"}, "task_id": {string(task)}}, Body: body, ContentLength: length})
	if err != nil {
		settle(false)
		dropTask(c, task)
		return err
	}
	settle(true)
	_, _ = io.Copy(io.Discard, io.LimitReader(in.Body, 4096))
	in.Body.Close()
	if _, err := c.WaitTask(ctx, task, nil); err != nil { // WaitTask destroys the task, or cancels it on ctx's end
		return fmt.Errorf("the import's task: %w", err)
	}
	return nil
}

// taskCleanupTimeout bounds cancelling and destroying a task after its
// request failed.
const taskCleanupTimeout = 10 * time.Second

// dropTask cancels and destroys the task of a request that failed: xapi
// may never have taken it up, or may still be running it.
func dropTask(c *xenapi.Client, task xenapi.TaskRef) {
	ctx, cancel := context.WithTimeout(context.Background(), taskCleanupTimeout)
	defer cancel()
	_ = c.Task.Cancel(ctx, task)
	_ = c.Task.Destroy(ctx, task)
}

// errImportOver stops the relay's copy once the import answered.
var errImportOver = errors.New("xenserver: the import is over")

// relayBody counts and hashes the export as it is read, and turns an
// early end into a *ShortBodyError.
type relayBody struct {
	r        io.Reader
	want, n  int64
	hash     hash.Hash
	progress func(int64)
	err      error
	stopped  atomic.Bool // the relay closed the export itself
}

func (b *relayBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if n > 0 {
		b.hash.Write(p[:n])
		b.n += int64(n)
		if b.progress != nil {
			b.progress(b.n)
		}
	}
	if (err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF)) && b.n < b.want {
		err = &ShortBodyError{Want: b.want, Got: b.n}
	}
	if err != nil && err != io.EOF && !b.stopped.Load() {
		b.err = err
	}
	return n, err
}

// onlyReader hides any WriterTo, so io.CopyBuffer uses the given buffer.
type onlyReader struct{ io.Reader }
