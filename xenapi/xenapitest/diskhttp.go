package xenapitest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Paths of xapi's disk handlers (Constants.export_raw_vdi_uri,
// import_raw_vdi_uri), served by every host's Handler.
const (
	ExportRawVDIPath = "/export_raw_vdi"
	ImportRawVDIPath = "/import_raw_vdi"
)

// Names of the disk handlers in the call log and for Fault.Method: xapi's
// HTTP action names (Datamodel.http_actions).
const (
	ExportRawVDIAction = "get_export_raw_vdi"
	ImportRawVDIAction = "put_import_raw_vdi"
)

// Error codes of the disk handlers.
const (
	ErrVDITooLarge = "VDI_TOO_LARGE"
	ErrVDIIOError  = "VDI_IO_ERROR"
)

// httpOp is one request to one of xapi's HTTP handlers: who asked (the
// session), and the task that tracks it (Xapi_http.with_context).
type httpOp struct {
	h     *Host
	w     http.ResponseWriter
	r     *http.Request
	q     url.Values
	wire  string // the HTTP action name, for the call log and faults
	realm string // the realm a 401 names
	label string // name_label of the task the handler makes

	session     string
	tempSession bool // made from basic auth; logged out at the end
	task        *taskState
}

// diskOp is one request to a disk handler.
type diskOp struct {
	httpOp
	export bool
	format string
	cut    *streamCut // an injected fault that stops the stream
}

// param reads a parameter from the query or, as xapi does, a cookie.
func (op *httpOp) param(name string) (string, bool) {
	if v, ok := op.q[name]; ok && len(v) > 0 {
		return v[0], true
	}
	if c, err := op.r.Cookie(name); err == nil {
		return c.Value, true
	}
	return "", false
}

// serveDisk answers /export_raw_vdi and /import_raw_vdi as xapi's
// export_raw_vdi.ml and import_raw_vdi.ml do: credentials (401), the VDI
// (UUID_INVALID), the host that sees its SR (302), the format (404), then
// the transfer, tracked by a task.
func (h *Host) serveDisk(w http.ResponseWriter, r *http.Request, export bool) {
	op := &diskOp{httpOp: httpOp{h: h, w: w, r: r, q: r.URL.Query(), wire: ImportRawVDIAction, realm: "VDI.import", label: "VDI.import"}, export: export}
	if export {
		op.wire, op.realm, op.label = ExportRawVDIAction, "VDI.export_raw", "VDI.export_raw_vdi"
	}
	want := http.MethodPut
	if export {
		want = http.MethodGet
	}
	if r.Method != want {
		w.Header().Set("Allow", want)
		http.Error(w, op.realm+" needs "+want, http.StatusMethodNotAllowed)
		return
	}
	p := h.p
	vdiParam, _ := op.param("vdi")
	op.format, _ = op.param("format")
	op.format = strings.ToLower(op.format)
	if op.format == "" {
		op.format = "raw"
	}
	base, _ := op.param("base")
	seq, nth := p.logHTTP(h, op.wire, diskArgs(vdiParam, op.format, base))
	err := op.run(vdiParam, base, nth)
	p.logResult(seq, err)
}

func diskArgs(vdi, format, base string) string {
	s := "vdi=" + strconv.Quote(vdi) + ", format=" + strconv.Quote(format)
	if base != "" {
		s += ", base=" + strconv.Quote(base)
	}
	return s
}

// errAnswered marks a failure whose HTTP answer is already written.
var errAnswered = errors.New("answered")

func (op *diskOp) run(vdiParam, base string, nth int) error {
	p := op.h.p
	if err := op.authenticate(); err != nil {
		return err
	}
	if op.tempSession {
		defer p.dropSession(op.session)
	}
	plan, err := p.planDisk(op, vdiParam, base)
	if err != nil {
		op.fail(err)
		return err
	}
	if plan.redirect != "" {
		op.redirect(plan.redirect)
		return nil
	}
	if err := op.startTask(); err != nil {
		op.fail(err)
		return err
	}
	if err := op.admit(plan, nth); err != nil {
		return op.finish(err, false)
	}
	if op.export {
		sent, err := op.sendExport(plan)
		return op.finish(err, sent)
	}
	return op.finish(op.receiveImport(plan), false)
}

// refusal is an error xapi answers with its own HTTP status.
type refusal struct {
	status int
	err    *Failure
}

func (r *refusal) Error() string { return r.err.Error() }
func (r *refusal) Unwrap() error { return r.err }

// admit runs the injected fault, then refuses what xapi refuses before
// any byte moves: a cancelled task, an unknown format (404), a VHD
// import with a Transfer-Encoding (403), a VHD over MaxVHDSize.
func (op *diskOp) admit(plan *diskPlan, nth int) error {
	cut, err := op.injected(nth)
	op.cut = cut
	if err != nil {
		return err
	}
	switch op.format {
	case "raw", "vhd":
	default:
		// xapi knows tar (and qcow2 on XCP-ng) too; the pool does not.
		return &refusal{http.StatusNotFound, fail(ErrInternalError, "Unknown format "+op.format)}
	}
	if !op.export && op.format != "raw" && len(op.r.TransferEncoding) > 0 {
		return &refusal{http.StatusForbidden, fail(ErrInternalError, "import code cannot handle encoding: "+strings.Join(op.r.TransferEncoding, ","))}
	}
	if op.format == "vhd" && plan.size > MaxVHDSize {
		return fail(ErrVDITooLarge, plan.vdi, strconv.FormatInt(MaxVHDSize, 10))
	}
	return nil
}

// injected runs the faults injected for the nth use of the handler: it
// waits out their delay (ending early when the task is cancelled or the
// client goes away), then returns their stream cut and their failure, or
// errTaskCancelled when the task was cancelled.
func (op *httpOp) injected(nth int) (*streamCut, error) {
	delay, cut, ferr := op.h.p.matchFaults(op.wire, nth)
	if delay > 0 {
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-op.task.cancel:
			return cut, errTaskCancelled
		case <-op.r.Context().Done():
			return cut, op.r.Context().Err()
		}
	}
	if ferr != nil {
		return cut, ferr
	}
	select {
	case <-op.task.cancel:
		return cut, errTaskCancelled
	default:
	}
	return cut, nil
}

// authenticate finds the session: session_id (query or cookie), else HTTP
// basic auth, which logs in for this request only. Anything else is 401,
// as Xapi_http.with_context answers.
func (op *httpOp) authenticate() error {
	p := op.h.p
	if s, ok := op.param("session_id"); ok {
		if !p.validSession(s) {
			return op.unauthorised(fail(ErrSessionInvalid, s))
		}
		op.session = s
		return nil
	}
	user, pwd, ok := op.r.BasicAuth()
	if !ok {
		return op.unauthorised(fail(ErrSessionAuthenticationFailed))
	}
	s, err := p.basicSession(user, pwd)
	if err != nil {
		return op.unauthorised(err)
	}
	op.session, op.tempSession = s, true
	return nil
}

func (op *httpOp) unauthorised(err error) error {
	if t, ok := op.param("task_id"); ok {
		op.h.p.failTaskRef(t, fail(ErrSessionAuthenticationFailed))
	}
	op.w.Header().Set("WWW-Authenticate", `Basic realm="`+op.realm+`"`)
	op.w.Header().Set("Connection", "close")
	http.Error(op.w, "401 Unauthorised", http.StatusUnauthorized)
	return err
}

// redirect answers 302 to the host that sees the SR, keeping the path and
// query, as Importexport.return_302_redirect does (xapi always names
// https; the pool keeps the scheme the request came with).
func (op *httpOp) redirect(addr string) {
	scheme := "http"
	if op.r.TLS != nil {
		scheme = "https"
	}
	loc := scheme + "://" + addr + op.r.URL.Path
	if op.r.URL.RawQuery != "" {
		loc += "?" + op.r.URL.RawQuery
	}
	op.w.Header().Set("Location", loc)
	op.w.WriteHeader(http.StatusFound)
}

// fail answers an error found before the transfer: HTTP 500 naming the
// XenAPI error, as xapi's HTTP server answers an exception, and the task
// (if one was named) failed with it.
func (op *httpOp) fail(err error) {
	if op.task != nil {
		op.h.p.finishTask(op.task, nil, err, "failure")
	} else if t, ok := op.param("task_id"); ok {
		op.h.p.failTaskRef(t, err)
	}
	op.w.Header().Set("Connection", "close")
	internalHTML(op.w, http.StatusInternalServerError, serverErrorText(err))
}

// serverErrorText renders an error as xapi's ExnHelper.string_of_exn does
// for a Server_error.
func serverErrorText(err error) string {
	var f *Failure
	if errors.As(err, &f) {
		return fmt.Sprintf("Server_error(%s, [ %s ])", f.Code, strings.Join(f.Params, "; "))
	}
	return err.Error()
}

// finish ends the task with the transfer's outcome. An error before any
// byte was sent is answered with HTTP 500; once an export's 200 is out,
// the connection is cut instead.
func (op *diskOp) finish(err error, headersSent bool) error {
	p := op.h.p
	switch {
	case err == nil:
		p.finishTask(op.task, "", nil, "success")
		if !op.export {
			op.w.Header().Set("task-id", op.task.ref)
			op.w.Header().Set("Content-Length", "0")
			op.w.WriteHeader(http.StatusOK)
		}
		return nil
	case errors.Is(err, errTaskCancelled):
		err = fail(ErrTaskCancelled, op.task.ref)
		p.finishTask(op.task, nil, err, "cancelled")
	default:
		// What is not a XenAPI error is an I/O error to xapi (vhd-tool
		// failed), unless the client went away.
		var f *Failure
		if !errors.As(err, &f) && !errors.Is(err, context.Canceled) {
			f = fail(ErrVDIIOError, "Device I/O errors")
			err = fmt.Errorf("%w: %v", f, err)
		}
		if f != nil {
			p.finishTask(op.task, nil, f, "failure")
		} else {
			p.finishTask(op.task, nil, err, "failure")
		}
	}
	if headersSent {
		_ = http.NewResponseController(op.w).Flush() // what was sent, the client gets
		panic(http.ErrAbortHandler)                  // then a short body
	}
	op.w.Header().Set("Connection", "close")
	if r, ok := err.(*refusal); ok {
		status := http.StatusText(r.status)
		http.Error(op.w, strconv.Itoa(r.status)+" "+status, r.status)
		return err
	}
	internalHTML(op.w, http.StatusInternalServerError, serverErrorText(err)+"\n"+err.Error())
	return err
}

var errTaskCancelled = errors.New("task cancelled")

// startTask takes the task named by task_id, or makes one as xapi does for
// every HTTP handler, and lets task.cancel reach the transfer.
func (op *httpOp) startTask() error {
	p := op.h.p
	p.mu.Lock()
	defer p.mu.Unlock()
	ref, named := op.param("task_id")
	var t *object
	if named {
		var err error
		if t, err = p.get(classTask, ref); err != nil {
			return err
		}
	} else {
		t = p.newObject(classTask, map[string]any{
			"name_label": op.label, "created": p.now(), "status": "pending", "resident_on": op.h.ref,
			"type": "<none/>", "backtrace": "()", "error_info": []string{},
		})
	}
	ts := &taskState{ref: t.ref, cancel: make(chan struct{})}
	if t.str("status") == "cancelling" {
		close(ts.cancel)
	}
	t.f["allowed_operations"] = []string{"cancel"}
	p.touch(t)
	p.tasks[t.ref] = ts
	op.task = ts
	return nil
}

// progress returns the callback a transfer calls as bytes go through: it
// moves the task's progress and stops the transfer when the task is
// cancelled or the client goes away.
func (op *httpOp) progress(total int64) func(int64) error {
	p := op.h.p
	last := -1.0
	return func(done int64) error {
		select {
		case <-op.task.cancel:
			return errTaskCancelled
		default:
		}
		if err := op.r.Context().Err(); err != nil {
			return err
		}
		frac := 1.0
		if total > 0 {
			frac = float64(done) / float64(total)
		}
		if frac-last < 0.01 && frac < 1 {
			return nil
		}
		last = frac
		p.mu.Lock()
		if o, ok := p.objs[op.task.ref]; ok {
			o.f["progress"] = min(frac, 0.99)
			p.touch(o)
		}
		p.mu.Unlock()
		return nil
	}
}

// validSession reports whether ref is a live session, and marks it active.
func (p *Pool) validSession(ref string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	o, ok := p.objs[ref]
	if !ok || o.cls != classSession {
		return false
	}
	o.f["last_active"] = p.now()
	return true
}

// basicSession logs in with HTTP basic auth credentials.
func (p *Pool) basicSession(user, pwd string) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if user != p.opts.User || pwd != p.opts.Password {
		return "", fail(ErrSessionAuthenticationFailed)
	}
	return p.newSession(user, "xapi-http"), nil
}

// newSession records a session. The caller holds p.mu.
func (p *Pool) newSession(user, originator string) string {
	now := p.now()
	s := p.newObject(classSession, map[string]any{
		"this_host":          p.hosts[0].ref,
		"last_active":        now,
		"validation_time":    now,
		"is_local_superuser": true,
		"auth_user_name":     user,
		"originator":         originator,
	})
	return s.ref
}

func (p *Pool) dropSession(ref string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if s, ok := p.objs[ref]; ok && s.cls == classSession {
		p.deleteObject(s)
	}
}

// failTaskRef fails a pending task named by ref, if there is one.
func (p *Pool) failTaskRef(ref string, err error) {
	p.mu.Lock()
	t, ok := p.objs[ref]
	live := ok && t.cls == classTask && (t.str("status") == "pending" || t.str("status") == "cancelling")
	p.mu.Unlock()
	if live {
		p.finishTask(&taskState{ref: ref}, nil, err, "failure")
	}
}

// logHTTP records a request to an HTTP handler in the call log; it counts
// like a call for Fault.N.
func (p *Pool) logHTTP(h *Host, wire, args string) (seq, nth int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.appendCall(h, wire, args)
}
