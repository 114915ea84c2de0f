package xenapitest

import (
	"fmt"
	"strings"
)

// Error codes the simulated pool raises, spelled as xapi spells them.
const (
	ErrSessionInvalid                = "SESSION_INVALID"
	ErrSessionAuthenticationFailed   = "SESSION_AUTHENTICATION_FAILED"
	ErrHandleInvalid                 = "HANDLE_INVALID"
	ErrUUIDInvalid                   = "UUID_INVALID"
	ErrVMBadPowerState               = "VM_BAD_POWER_STATE"
	ErrOperationBlocked              = "OPERATION_BLOCKED"
	ErrOperationNotAllowed           = "OPERATION_NOT_ALLOWED"
	ErrHostIsSlave                   = "HOST_IS_SLAVE"
	ErrVDIInUse                      = "VDI_IN_USE"
	ErrVDIMissing                    = "VDI_MISSING"
	ErrVDINotManaged                 = "VDI_NOT_MANAGED"
	ErrVDIReadOnly                   = "VDI_READONLY"
	ErrSRFull                        = "SR_FULL"
	ErrMessageMethodUnknown          = "MESSAGE_METHOD_UNKNOWN"
	ErrMessageParameterCountMismatch = "MESSAGE_PARAMETER_COUNT_MISMATCH"
	ErrMessageRemoved                = "MESSAGE_REMOVED"
	ErrMapDuplicateKey               = "MAP_DUPLICATE_KEY"
	ErrDeviceAlreadyAttached         = "DEVICE_ALREADY_ATTACHED"
	ErrDeviceAlreadyDetached         = "DEVICE_ALREADY_DETACHED"
	ErrDeviceAlreadyExists           = "DEVICE_ALREADY_EXISTS"
	ErrVBDNotUnpluggable             = "VBD_NOT_UNPLUGGABLE"
	ErrVBDNotEmpty                   = "VBD_NOT_EMPTY"
	ErrVBDIsEmpty                    = "VBD_IS_EMPTY"
	ErrHostNotEnoughFreeMemory       = "HOST_NOT_ENOUGH_FREE_MEMORY"
	ErrMemoryConstraintViolation     = "MEMORY_CONSTRAINT_VIOLATION_ORDER"
	ErrInvalidValue                  = "INVALID_VALUE"
	ErrFieldTypeError                = "FIELD_TYPE_ERROR"
	ErrInternalError                 = "INTERNAL_ERROR"
	ErrVMRequiresSR                  = "VM_REQUIRES_SR"
	ErrVMIsTemplate                  = "VM_IS_TEMPLATE"
	ErrVMIsSnapshot                  = "VM_IS_SNAPSHOT"
	ErrTaskCancelled                 = "TASK_CANCELLED"
	ErrEventFromTokenParseFailure    = "EVENT_FROM_TOKEN_PARSE_FAILURE"
	ErrEventSubscriptionParseFailure = "EVENT_SUBSCRIPTION_PARSE_FAILURE"
	ErrXenAPIMissingPlugin           = "XENAPI_MISSING_PLUGIN"
	ErrXenAPIPluginFailure           = "XENAPI_PLUGIN_FAILURE"
	ErrSRBackendFailure              = "SR_BACKEND_FAILURE"
	ErrNetworkContainsVIF            = "NETWORK_CONTAINS_VIF"
	ErrInvalidDevice                 = "INVALID_DEVICE"
	ErrMACInvalid                    = "MAC_INVALID"
	ErrSuspendVDIReplacement         = "SUSPEND_VDI_REPLACEMENT_IS_NOT_IDENTICAL"
	ErrSRNotFound                    = "SR_NOT_FOUND"
)

// Failure is a XenAPI error as the pool reports it: the code and its
// parameters, exactly the ErrorDescription array of a Failure envelope.
type Failure struct {
	Code   string
	Params []string
}

// Error implements error.
func (f *Failure) Error() string {
	if len(f.Params) == 0 {
		return "xenapitest: " + f.Code
	}
	return fmt.Sprintf("xenapitest: %s [%s]", f.Code, strings.Join(f.Params, ", "))
}

// Is reports whether target is a *Failure with the same code, so
// errors.Is(err, &Failure{Code: ErrHandleInvalid}) matches any parameters.
func (f *Failure) Is(target error) bool {
	t, ok := target.(*Failure)
	return ok && t.Code == f.Code && t.Params == nil
}

// Description returns the failure as xapi's ErrorDescription: code first.
func (f *Failure) Description() []string {
	return append([]string{f.Code}, f.Params...)
}

func fail(code string, params ...string) *Failure {
	if params == nil {
		params = []string{}
	}
	return &Failure{Code: code, Params: params}
}
