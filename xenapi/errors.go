package xenapi

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/xenflow/xenflow/xenapi/internal/xmlrpc"
)

// Error codes xapi returns in ErrorDescription[0] that callers branch on.
// The parameters each carries are listed next to it.
const (
	CodeSessionInvalid                = "SESSION_INVALID"                  // [handle]
	CodeSessionAuthenticationFailed   = "SESSION_AUTHENTICATION_FAILED"    // []
	CodeHandleInvalid                 = "HANDLE_INVALID"                   // [class, handle]
	CodeUUIDInvalid                   = "UUID_INVALID"                     // [type, uuid]
	CodeVMBadPowerState               = "VM_BAD_POWER_STATE"               // [vm, expected, actual]
	CodeOperationBlocked              = "OPERATION_BLOCKED"                // [ref, code]
	CodeOperationNotAllowed           = "OPERATION_NOT_ALLOWED"            // [reason]
	CodeOtherOperationInProgress      = "OTHER_OPERATION_IN_PROGRESS"      // [class, object, operation_type, operation_ref]
	CodeHostIsSlave                   = "HOST_IS_SLAVE"                    // [master address]
	CodeVDIInUse                      = "VDI_IN_USE"                       // [vdi, operation]
	CodeVDIMissing                    = "VDI_MISSING"                      // [sr, vdi]
	CodeSRFull                        = "SR_FULL"                          // [requested, maximum]
	CodeSRBackendFailure              = "SR_BACKEND_FAILURE"               // [status, stdout, stderr]; also the prefix of SR_BACKEND_FAILURE_<n>
	CodeMessageMethodUnknown          = "MESSAGE_METHOD_UNKNOWN"           // [method]
	CodeMessageParameterCountMismatch = "MESSAGE_PARAMETER_COUNT_MISMATCH" // [method, expected, received]
	CodeMessageRemoved                = "MESSAGE_REMOVED"                  // []
	CodeMapDuplicateKey               = "MAP_DUPLICATE_KEY"                // [type, param_name, uuid, key]
	CodeDeviceAlreadyDetached         = "DEVICE_ALREADY_DETACHED"          // [device]
	CodeDeviceAlreadyAttached         = "DEVICE_ALREADY_ATTACHED"          // [device]
	CodeDeviceDetachRejected          = "DEVICE_DETACH_REJECTED"           // [type, ref, msg]
	CodeTaskCancelled                 = "TASK_CANCELLED"                   // [task]
	CodeInternalError                 = "INTERNAL_ERROR"                   // [message]
	CodeEventsLost                    = "EVENTS_LOST"                      // []
	CodeEventFromTokenParseFailure    = "EVENT_FROM_TOKEN_PARSE_FAILURE"   // [token]
	CodeXenAPIPluginFailure           = "XENAPI_PLUGIN_FAILURE"            // [reason, output, log]
)

// Failure is a XenAPI error: the code and every parameter of xapi's
// ErrorDescription. Calls return it wrapped with the method name; use
// errors.As to get it, or errors.Is against a sentinel such as
// ErrHandleInvalid, which matches on the code alone.
type Failure struct {
	Code   string
	Params []string
}

// Error implements error.
func (f *Failure) Error() string {
	if len(f.Params) == 0 {
		return "xenapi: " + f.Code
	}
	q := make([]string, len(f.Params))
	for i, p := range f.Params {
		q[i] = strconv.Quote(p)
	}
	return "xenapi: " + f.Code + " [" + strings.Join(q, ", ") + "]"
}

// Is reports whether target is a *Failure with the same code and either no
// parameters or the same parameters. It makes errors.Is work with the
// sentinels below.
func (f *Failure) Is(target error) bool {
	t, ok := target.(*Failure)
	if !ok || t.Code != f.Code {
		return false
	}
	if len(t.Params) == 0 {
		return true
	}
	if len(t.Params) != len(f.Params) {
		return false
	}
	for i := range t.Params {
		if t.Params[i] != f.Params[i] {
			return false
		}
	}
	return true
}

// Param returns parameter i, or "" when there are fewer parameters.
func (f *Failure) Param(i int) string {
	if i < 0 || i >= len(f.Params) {
		return ""
	}
	return f.Params[i]
}

// Sentinels for errors.Is; they match any Failure with the same code.
var (
	ErrSessionInvalid                = &Failure{Code: CodeSessionInvalid}
	ErrSessionAuthenticationFailed   = &Failure{Code: CodeSessionAuthenticationFailed}
	ErrHandleInvalid                 = &Failure{Code: CodeHandleInvalid}
	ErrUUIDInvalid                   = &Failure{Code: CodeUUIDInvalid}
	ErrVMBadPowerState               = &Failure{Code: CodeVMBadPowerState}
	ErrOperationBlocked              = &Failure{Code: CodeOperationBlocked}
	ErrOperationNotAllowed           = &Failure{Code: CodeOperationNotAllowed}
	ErrHostIsSlave                   = &Failure{Code: CodeHostIsSlave}
	ErrVDIInUse                      = &Failure{Code: CodeVDIInUse}
	ErrMessageMethodUnknown          = &Failure{Code: CodeMessageMethodUnknown}
	ErrMessageParameterCountMismatch = &Failure{Code: CodeMessageParameterCountMismatch}
	ErrMessageRemoved                = &Failure{Code: CodeMessageRemoved}
	ErrTaskCancelled                 = &Failure{Code: CodeTaskCancelled}
)

// AsFailure returns the *Failure in err's chain, if any.
func AsFailure(err error) (*Failure, bool) {
	var f *Failure
	if errors.As(err, &f) {
		return f, true
	}
	return nil, false
}

// IsCode reports whether err carries a Failure with exactly this code.
func IsCode(err error, code string) bool {
	f, ok := AsFailure(err)
	return ok && f.Code == code
}

// HasCodePrefix reports whether err carries a Failure whose code starts with
// prefix, e.g. "SR_BACKEND_FAILURE".
func HasCodePrefix(err error, prefix string) bool {
	f, ok := AsFailure(err)
	return ok && strings.HasPrefix(f.Code, prefix)
}

// IsSRBackendFailure reports whether err is SR_BACKEND_FAILURE or one of the
// numbered SR_BACKEND_FAILURE_<n> codes.
func IsSRBackendFailure(err error) bool { return HasCodePrefix(err, CodeSRBackendFailure) }

// HandleInvalid returns the class and handle of a HANDLE_INVALID failure.
func (f *Failure) HandleInvalid() (class, handle string, ok bool) {
	if f.Code != CodeHandleInvalid {
		return "", "", false
	}
	return f.Param(0), f.Param(1), true
}

// VMBadPowerState returns the VM and the expected and actual power states
// of a VM_BAD_POWER_STATE failure. xapi sends the states in lower case.
func (f *Failure) VMBadPowerState() (vm VMRef, expected, actual VMPowerState, ok bool) {
	if f.Code != CodeVMBadPowerState {
		return "", "", "", false
	}
	return VMRef(f.Param(0)), VMPowerState(f.Param(1)), VMPowerState(f.Param(2)), true
}

// OperationBlocked returns the object and the value stored in its
// blocked_operations for an OPERATION_BLOCKED failure.
func (f *Failure) OperationBlocked() (ref, code string, ok bool) {
	if f.Code != CodeOperationBlocked {
		return "", "", false
	}
	return f.Param(0), f.Param(1), true
}

// HostIsSlave returns the pool master's address of a HOST_IS_SLAVE failure.
func (f *Failure) HostIsSlave() (masterAddress string, ok bool) {
	if f.Code != CodeHostIsSlave {
		return "", false
	}
	return f.Param(0), true
}

// VDIInUse returns the VDI and the operation of a VDI_IN_USE failure.
func (f *Failure) VDIInUse() (vdi VDIRef, operation string, ok bool) {
	if f.Code != CodeVDIInUse {
		return "", "", false
	}
	return VDIRef(f.Param(0)), f.Param(1), true
}

// SRBackendFailure returns the number n of SR_BACKEND_FAILURE_<n> (0 for a
// plain SR_BACKEND_FAILURE) and the parameters: for numbered codes xapi sends
// ["", reason, stderr]; for the plain code [status, stdout, stderr].
func (f *Failure) SRBackendFailure() (n int, params []string, ok bool) {
	if !strings.HasPrefix(f.Code, CodeSRBackendFailure) {
		return 0, nil, false
	}
	rest := strings.TrimPrefix(f.Code, CodeSRBackendFailure)
	if rest != "" {
		v, err := strconv.Atoi(strings.TrimPrefix(rest, "_"))
		if err != nil || !strings.HasPrefix(rest, "_") {
			return 0, nil, false
		}
		n = v
	}
	return n, f.Params, true
}

// MessageMethodUnknown returns the method of a MESSAGE_METHOD_UNKNOWN
// failure.
func (f *Failure) MessageMethodUnknown() (method string, ok bool) {
	if f.Code != CodeMessageMethodUnknown {
		return "", false
	}
	return f.Param(0), true
}

// ParameterCountMismatch returns the method and the expected and received
// parameter counts (without the session and trailing defaulted parameters)
// of a MESSAGE_PARAMETER_COUNT_MISMATCH failure; a count that is not a
// number is -1.
func (f *Failure) ParameterCountMismatch() (method string, expected, received int, ok bool) {
	if f.Code != CodeMessageParameterCountMismatch {
		return "", 0, 0, false
	}
	atoi := func(s string) int {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return -1
		}
		return n
	}
	return f.Param(0), atoi(f.Param(1)), atoi(f.Param(2)), true
}

// CallError wraps every error of a call with the method name and the URL
// of the host it was sent to. Failures, transport and protocol errors are
// all reachable through it with errors.As.
type CallError struct {
	Method string
	URL    string // with any password in it masked
	Err    error
}

// Error implements error.
func (e *CallError) Error() string {
	return fmt.Sprintf("xenapi: %s at %s: %s", e.Method, e.URL, strings.TrimPrefix(e.Err.Error(), "xenapi: "))
}

// Unwrap returns the cause.
func (e *CallError) Unwrap() error { return e.Err }

// HTTPError is a response with an unexpected status: an XML-RPC call
// answered with anything but 200 (such as xapi's HTML 500 for malformed
// XML), or a DoHTTP request answered with anything but 2xx (401 for a
// session xapi no longer knows, 404 for an unknown VDI or format, ...).
type HTTPError struct {
	Method string // the HTTP method, e.g. "PUT"
	Path   string // the URL path, e.g. "/import_raw_vdi"
	Status int    // the HTTP status code
	Body   string // the first bytes of the response body
}

// Error implements error.
func (e *HTTPError) Error() string {
	s := fmt.Sprintf("HTTP %d %s", e.Status, http.StatusText(e.Status))
	if e.Method != "" {
		s = e.Method + " " + e.Path + ": " + s
	}
	if e.Body == "" {
		return s
	}
	return s + ": " + strconv.Quote(e.Body)
}

// maxErrorBody is how much of an error response's body HTTPError keeps.
const maxErrorBody = 512

// newHTTPError reads the start of the body of resp, the answer to req,
// into an *HTTPError.
func newHTTPError(req *http.Request, resp *http.Response) *HTTPError {
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	return &HTTPError{Method: req.Method, Path: req.URL.Path, Status: resp.StatusCode, Body: string(snippet)}
}

// DecodeError reports a response body that is not well-formed XML-RPC: the
// byte offset and line, and what was wrong. errors.Is(err,
// ErrResponseTooLarge) tells a response over the size limit.
type DecodeError = xmlrpc.DecodeError

// Fault is an XML-RPC <fault>, which xapi sends only for transport-level
// problems.
type Fault = xmlrpc.Fault

// Causes wrapped by DecodeError.
var (
	ErrResponseTooLarge = xmlrpc.ErrTooLarge
	ErrResponseTooDeep  = xmlrpc.ErrTooDeep
	ErrMalformed        = xmlrpc.ErrSyntax
	ErrBadEnvelope      = xmlrpc.ErrBadEnvelope
)

// TypeError reports a value of the wrong type in a response: at Path (for
// example "VM.get_record.VCPUs_max") a Want was expected and a Got came.
type TypeError struct {
	Path string
	Want string
	Got  string
}

// Error implements error.
func (e *TypeError) Error() string {
	return fmt.Sprintf("xenapi: %s: want %s, got %s", e.Path, e.Want, e.Got)
}

// ErrNotLoggedIn is returned by calls made before Login or after Logout.
var ErrNotLoggedIn = errors.New("xenapi: not logged in")
