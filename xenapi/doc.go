// Package xenapi is a XenAPI client for XenServer and XCP-ng pools: the
// XML-RPC wire protocol of xapi, typed calls, typed failures, sessions that
// survive SESSION_INVALID and pool-master changes, and Async tasks.
//
// # Getting started
//
// NewClient connects (over https, verifying or pinning the pool's
// certificates), Client.Login opens a session, the typed calls under
// c.VM, c.VDI, ... do the work (c.VM.GetAllRecords lists the VMs), the
// Async forms under c.Async start long operations that Client.WaitTask
// follows, and Client.Close logs out. The examples run against the
// simulated pool of package xenapitest.
//
// # Sessions
//
// NewClient takes the URL of any host of the pool. Login calls
// session.login_with_password with an originator (xapi counts sessions per
// originator) and keeps the credentials: a call answered with
// SESSION_INVALID logs in again and is retried once, and HOST_IS_SLAVE
// (at login or on a call) moves the client to the master's address and
// retries once. Close logs out, so sessions are never leaked. A Client
// prints (every fmt verb) and logs (slog) with its password and session
// reference redacted.
//
// # Calls
//
// Calls are grouped by class as in xapi: c.VM.GetAllRecords, c.VDI.Resize,
// c.VBD.Plug, c.SR.Scan, c.Host.CallPlugin, c.Pool.GetMaster,
// c.Task.GetRecord, c.Event.From, and the Async forms under c.Async
// (c.Async.VM.CleanShutdown returns a TaskRef; Client.WaitTask follows it).
// They are generated (go generate) from the table in internal/genapi, which
// lists the calls the resize, cold-migration and rescue flows need with
// their xapi parameter lists; Client.Call reaches any other call.
//
// Every call takes a context. References are distinct string types (VMRef,
// VDIRef, ...; NullRef is "OpaqueRef:NULL"); records (VMRecord, VDIRecord,
// ...) are decoded leniently by field type; enums (VMPowerState, VDIType,
// VBDMode, TaskStatus, ...) are string types that keep values they do not
// know. int64 values travel as decimal strings both ways, as xapi's
// documentation asks. Optional trailing parameters (VM.snapshot's
// ignore_vdis, VDI.copy's base_vdi and into_vdi, VDI.snapshot's
// driver_params) are left off the wire while they hold the server default,
// so older servers do not answer MESSAGE_PARAMETER_COUNT_MISMATCH.
//
// # Errors
//
// A XenAPI error is a *Failure carrying the code and every parameter,
// wrapped in a *CallError naming the method and URL. Use errors.As, or
// errors.Is with the sentinels (ErrHandleInvalid, ErrVMBadPowerState, ...),
// or IsCode / IsSRBackendFailure; Failure has accessors for the documented
// parameters (HandleInvalid, VMBadPowerState, OperationBlocked,
// HostIsSlave, VDIInUse, SRBackendFailure, ParameterCountMismatch,
// MessageMethodUnknown). Transport problems come as *url.Error or
// *HTTPError, a redirect the client will not follow as *RedirectError,
// malformed or oversized bodies as *DecodeError, values of the
// wrong type as *TypeError.
//
// # Transport
//
// Certificates are verified by default; WithRootCAs, WithPinnedCertificate
// (SHA-256 of the host certificate, for xapi's self-signed certificates) and,
// by name only, InsecureSkipVerify change that; they need an https URL and
// cannot be combined with WithHTTPClient. With pinning, a pinned
// member that answers a login with HOST_IS_SLAVE is asked for the master's
// fingerprint (xapi's x-xenapi-request-host-certificate-thumbprint header),
// which is then pinned too. The client never changes scheme: HOST_IS_SLAVE
// may name a host or host:port, anything else is refused with a
// *RedirectError, and HTTP redirects of calls are not followed. Calls from
// many goroutines run concurrently over one http.Transport; response
// headers are awaited at most DefaultResponseHeaderTimeout
// (WithResponseHeaderTimeout), response bodies are limited
// (WithMaxResponseSize) and decoded with bounded depth and a bounded
// number of values.
//
// # HTTP handlers
//
// Client.DoHTTP reaches xapi's HTTP handlers, such as /export_raw_vdi and
// /import_raw_vdi, with the client's session and TLS policy. It follows
// xapi's 302 to the pool member that sees an SR (same scheme, host only),
// sends a PUT's body with a Content-Length once the server accepted the
// headers (Expect: 100-continue), logs in again on 401, and returns any
// other status as an *HTTPError.
//
// # Tasks
//
// c.Async.<Class>.<Call> starts a call as a xapi task and returns its
// TaskRef. WaitTask polls task.get_record (WithTaskPollInterval), or with
// WithTaskEvents follows the task with event.from, reports
// progress, decodes task.result (which xapi stores as an XML-RPC
// "<value>…</value>" inside a string), returns a failed task's
// error_info as a *Failure, cancels the task (task.cancel) when the
// context ends first, and destroys the task in every case.
//
// # Wire codec
//
// The XML-RPC codec is this module's own (xenapi/internal/xmlrpc, shared
// with the simulated pool in xenapitest), written for xapi's dialect:
// untyped and empty values, ints as strings, duplicate struct members,
// dates without a zone. Its bounds are described under Transport.
package xenapi
