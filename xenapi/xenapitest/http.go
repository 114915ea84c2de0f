package xenapitest

import (
	"context"
	"errors"
	"fmt"
	"html"
	"net/http"
	"time"

	"github.com/xenflow/xenflow/xenapi/internal/xmlrpc"
)

// RPCFault is an XML-RPC <fault>. The pool answers with one only where
// xapi does: an Async call of a message that has no Async form.
type RPCFault struct {
	Code   int64
	String string
}

// Error implements error.
func (f *RPCFault) Error() string { return fmt.Sprintf("xenapitest: fault %d: %s", f.Code, f.String) }

// Call makes an in-process call to the master, as if it had arrived over
// the wire: params are the wire parameters (session first where the
// method takes one). Ints may be Go integers or decimal strings. The
// result is in the wire value model (ints as decimal strings, records as
// map[string]any, sets as []any, void as ""); a XenAPI error is a
// *Failure.
func (p *Pool) Call(ctx context.Context, method string, params ...any) (any, error) {
	return p.hosts[0].Call(ctx, method, params...)
}

// Call makes an in-process call to this host's endpoint: a call to a
// host other than the master fails with HOST_IS_SLAVE.
func (h *Host) Call(ctx context.Context, method string, params ...any) (any, error) {
	res, err := h.p.dispatch(ctx, h, method, params)
	var f *xmlrpc.Fault
	if errors.As(err, &f) {
		return nil, &RPCFault{Code: f.Code, String: f.String}
	}
	return res, err
}

// Handler returns the master's XML-RPC endpoint.
func (p *Pool) Handler() http.Handler { return p.hosts[0].Handler() }

// Handler returns the host's XML-RPC endpoint: POST a methodCall to any
// path (xapi serves "/", Python's client posts to "/RPC2"); the answer is
// xapi's envelope, {Status, Value} or {Status, ErrorDescription}.
// Malformed XML gets HTTP 500 with an HTML body, as from xapi.
func (h *Host) Handler() http.Handler { return hostHandler{h} }

type hostHandler struct{ h *Host }

func (hh hostHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case ExportRawVDIPath:
		hh.h.serveDisk(w, r, true)
		return
	case ImportRawVDIPath:
		hh.h.serveDisk(w, r, false)
		return
	case ExportMetadataPath:
		hh.h.serveExportMetadata(w, r)
		return
	case ImportMetadataPath:
		hh.h.serveImportMetadata(w, r)
		return
	}
	if r.URL.Path == "/jsonrpc" {
		http.Error(w, "JSON-RPC is not simulated; use XML-RPC", http.StatusNotFound)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "XML-RPC needs POST", http.StatusMethodNotAllowed)
		return
	}
	// The whole body within the timeout: at most 300 KiB may come.
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(hh.h.p.opts.HTTPTimeouts.Body))
	dec := &xmlrpc.Decoder{MaxBodySize: maxRequestBody}
	body, err := dec.ReadBody(r.Body, r.ContentLength)
	if err != nil {
		if errors.Is(err, xmlrpc.ErrTooLarge) {
			internalHTML(w, http.StatusRequestEntityTooLarge, "request body exceeds the RPC size limit")
			return
		}
		internalHTML(w, http.StatusBadRequest, err.Error())
		return
	}
	method, params, err := dec.DecodeCallBytes(body)
	if err != nil {
		internalHTML(w, http.StatusInternalServerError, "Xmlrpc.Parse_error: "+err.Error())
		return
	}
	res, err := hh.h.p.dispatch(r.Context(), hh.h, method, params)
	if r.Context().Err() != nil {
		return // the client went away
	}
	var out []byte
	var f *Failure
	var fault *xmlrpc.Fault
	switch {
	case err == nil:
		out, err = xmlrpc.AppendResponse(nil, map[string]any{"Status": "Success", "Value": res})
		if err != nil {
			out, _ = xmlrpc.AppendResponse(nil, failureEnvelope(fail(ErrInternalError, err.Error())))
		}
	case errors.As(err, &fault):
		out = xmlrpc.AppendFault(nil, fault.Code, fault.String)
	case errors.As(err, &f):
		out, _ = xmlrpc.AppendResponse(nil, failureEnvelope(f))
	default:
		out, _ = xmlrpc.AppendResponse(nil, failureEnvelope(fail(ErrInternalError, err.Error())))
	}
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("Content-Length", fmt.Sprint(len(out)))
	_, _ = w.Write(out)
}

func failureEnvelope(f *Failure) map[string]any {
	d := f.Description()
	desc := make([]any, len(d))
	for i, s := range d {
		desc[i] = s
	}
	return map[string]any{"Status": "Failure", "ErrorDescription": desc}
}

func internalHTML(w http.ResponseWriter, status int, detail string) {
	w.Header().Set("Content-Type", "text/html")
	w.WriteHeader(status)
	fmt.Fprintf(w, "<html><body><h1>HTTP %d internal server error</h1>An unexpected error occurred; please wait a while and try again. If the problem persists, please contact your support representative.<h1> Additional information </h1>%s</body></html>", status, html.EscapeString(detail))
}

// internal runs a method directly: no session, no call log, no faults. It
// is how fixtures build objects.
func (p *Pool) internal(name string, params ...any) (any, error) {
	m := p.methods[name]
	if m == nil {
		return nil, fail(ErrMessageMethodUnknown, name)
	}
	a := &args{m: m, v: make([]any, len(m.params))}
	copy(a.v, params)
	return p.run(&call{p: p, ctx: context.Background(), host: p.hosts[0]}, m, a)
}
