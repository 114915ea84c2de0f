package xenapitest

import (
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/xenflow/xenflow/vhd"
)

// diskPlan is what a disk request acts on, settled under the pool lock
// before any byte moves.
type diskPlan struct {
	redirect string // a host address to send the client to instead
	vdi      string // VDI ref
	uuid     string // VDI uuid
	size     int64  // virtual size
	st       *srState
	file     string
	stream   *vhdStream // the VHD an export sends
}

// vdiOfReq finds a VDI by ref or uuid, as Importexport.vdi_of_req does.
// The caller holds p.mu.
func (p *Pool) vdiOfReq(v string) (*object, error) {
	if o, ok := p.objs[v]; ok && o.cls == classVDI {
		return o, nil
	}
	if o, ok := p.byUUID[classVDI.name+"/"+v]; ok {
		return o, nil
	}
	return nil, fail(ErrUUIDInvalid, classVDI.name, v)
}

// planDisk resolves a disk request's VDI (and base) and decides whether
// this host serves it.
func (p *Pool) planDisk(op *diskOp, vdiParam, base string) (*diskPlan, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if vdiParam == "" {
		return nil, fail(ErrInternalError, "missing parameter: vdi")
	}
	vdi, err := p.vdiOfReq(vdiParam)
	if err != nil {
		return nil, err
	}
	st, srObj, err := p.srOf(vdi)
	if err != nil {
		return nil, err
	}
	if !st.visibleFrom(op.h) {
		return &diskPlan{redirect: st.host.address}, nil
	}
	plan := &diskPlan{vdi: vdi.ref, uuid: vdi.str("uuid"), size: vdi.int("virtual_size"), st: st, file: vdiFile(vdi)}
	if !st.disks.exists(plan.file) {
		return nil, fail(ErrVDIMissing, srObj.ref, vdi.ref)
	}
	var baseVDI *object
	if base != "" {
		if baseVDI, err = p.vdiOfReq(base); err != nil {
			return nil, err
		}
	}
	if !op.export {
		if p.attached(vdi) {
			return nil, fail(ErrVDIInUse, vdi.ref, "import")
		}
		if vdi.bool("read_only") {
			return nil, fail(ErrVDIReadOnly, vdi.ref)
		}
		return plan, nil
	}
	if op.format == "vhd" {
		if plan.stream, err = p.planStream(plan, baseVDI); err != nil {
			return nil, err
		}
	}
	return plan, nil
}

// planStream chooses the blocks of a VHD export: every block the VDI's
// chain holds, or with a base the blocks allocated in either chain above
// the disk they share (vhd-tool stream --relative-to), so that applying
// the stream onto a copy of the base gives the VDI.
func (p *Pool) planStream(plan *diskPlan, base *object) (*vhdStream, error) {
	uuid, err := vhd.ParseUUID(p.newUUID())
	if err != nil {
		return nil, fail(ErrInternalError, err.Error())
	}
	s := &vhdStream{size: plan.size, uuid: uuid, now: p.now()}
	files, err := plan.st.disks.chainFiles(plan.file)
	if err != nil {
		return nil, storageError("export", err)
	}
	var above, baseAbove []string
	if base == nil {
		above = files
	} else {
		if above, baseAbove, err = p.divergence(plan, files, base); err != nil {
			return nil, err
		}
		if s.parent, err = plan.st.disks.identity(vdiFile(base)); err != nil {
			return nil, storageError("export", err)
		}
	}
	var sets []map[uint32]bool
	for _, f := range append(above, baseAbove...) {
		b, err := plan.st.disks.blocks(f)
		if err != nil {
			return nil, storageError("export", err)
		}
		sets = append(sets, b)
	}
	s.blocks = sortedBlocks(sets...)
	return s, nil
}

// divergence returns the files of each chain above the newest disk the two
// chains share. A base on another SR or in another chain shares none: xapi
// cannot stream that difference (vhd-tool fails, VDI_IO_ERROR).
func (p *Pool) divergence(plan *diskPlan, files []string, base *object) ([]string, []string, error) {
	bst, _, err := p.srOf(base)
	if err != nil {
		return nil, nil, err
	}
	unrelated := fail(ErrVDIIOError, "Device I/O errors")
	if bst != plan.st {
		return nil, nil, fmt.Errorf("%w: base VDI %s is on another SR than VDI %s", unrelated, base.ref, plan.vdi)
	}
	baseFiles, err := bst.disks.chainFiles(vdiFile(base))
	if err != nil {
		return nil, nil, storageError("export", err)
	}
	at := map[string]int{}
	for i, f := range baseFiles {
		at[f] = i
	}
	for i, f := range files {
		if j, ok := at[f]; ok {
			return files[:i], baseFiles[:j], nil
		}
	}
	return nil, nil, fmt.Errorf("%w: base VDI %s shares no disk with the chain of VDI %s", unrelated, base.ref, plan.vdi)
}

// visibleFrom reports whether host h can see the SR.
func (st *srState) visibleFrom(h *Host) bool { return st.shared || st.host == h }

// sendExport streams the VDI. It reports whether the 200 was sent.
func (op *diskOp) sendExport(plan *diskPlan) (bool, error) {
	c, err := plan.st.disks.openChain(plan.file, false)
	if err != nil {
		return false, storageError("export", err)
	}
	defer c.Close()
	length, ctype := plan.size, "application/octet-stream"
	if plan.stream != nil {
		length, ctype = plan.stream.Len(), "application/vhd"
	}
	hd := op.w.Header()
	hd.Set("task-id", op.task.ref)
	hd.Set("Content-Type", ctype)
	hd.Set("Content-Disposition", `attachment; filename="`+plan.uuid+"."+op.format+`"`)
	hd.Set("Connection", "close")
	if op.h.p.opts.ExportContentLength {
		hd.Set("Content-Length", strconv.FormatInt(length, 10))
	} else {
		hd.Set("Transfer-Encoding", "identity") // the body ends when the connection closes, as xapi's
	}
	op.w.WriteHeader(http.StatusOK)
	progress := op.progress(length)
	w := op.cut.writer(stallWriter{w: op.w, rc: http.NewResponseController(op.w), d: op.h.p.opts.HTTPTimeouts.Body})
	if plan.stream != nil {
		return true, plan.stream.writeTo(w, c, progress)
	}
	return true, copyRaw(w, c, plan.size, progress)
}

// receiveImport writes the request body onto the VDI and refreshes its
// physical size.
func (op *diskOp) receiveImport(plan *diskPlan) error {
	if op.format == "raw" && op.r.ContentLength > plan.size {
		return &StreamError{Offset: plan.size, Reason: fmt.Sprintf("raw stream of %d bytes is longer than the VDI's %d bytes", op.r.ContentLength, plan.size)}
	}
	c, err := plan.st.disks.openChain(plan.file, true)
	if err != nil {
		return storageError("import", err)
	}
	progress := op.progress(op.r.ContentLength)
	body := op.cut.reader(stallReader{r: op.r.Body, rc: http.NewResponseController(op.w), d: op.h.p.opts.HTTPTimeouts.Body})
	if op.format == "vhd" {
		err = applyVHDStream(op.r.Context(), body, c, plan.size, progress)
	} else {
		err = applyRaw(op.r.Context(), body, c, plan.size, progress)
	}
	if cerr := c.Close(); err == nil && cerr != nil {
		err = cerr
	}
	p := op.h.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if vdi, ok := p.objs[plan.vdi]; ok {
		if info, qerr := plan.st.disks.query(plan.file); qerr == nil {
			p.updateVDIFromDisk(vdi, info)
			if srObj, ok := p.objs[vdi.str("SR")]; ok {
				p.refreshSR(srObj)
			}
		}
	}
	return err
}

// writer lets c.after bytes through to w, then fails with c.err.
func (c *streamCut) writer(w io.Writer) io.Writer {
	if c == nil {
		return w
	}
	return &cutWriter{w: w, left: c.after, err: c.err}
}

// reader lets c.after bytes be read from r, then fails with c.err.
func (c *streamCut) reader(r io.Reader) io.Reader {
	if c == nil {
		return r
	}
	return &cutReader{r: r, left: c.after, err: c.err}
}

type cutWriter struct {
	w    io.Writer
	left int64
	err  error
}

func (c *cutWriter) Write(p []byte) (int, error) {
	if int64(len(p)) <= c.left {
		n, err := c.w.Write(p)
		c.left -= int64(n)
		return n, err
	}
	n, err := c.w.Write(p[:c.left])
	c.left -= int64(n)
	if err == nil {
		err = c.err
	}
	return n, err
}

type cutReader struct {
	r    io.Reader
	left int64
	err  error
}

func (c *cutReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, c.err
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}
