package xmlrpc

import (
	"fmt"
	"io"
	"strconv"
	"time"
)

// Status values of a xapi result envelope.
const (
	StatusSuccess = "Success"
	StatusFailure = "Failure"
)

// Success returns xapi's success envelope {Status: "Success", Value: v}.
func Success(v Value) Struct {
	return Struct{"Status": StatusSuccess, "Value": v}
}

// Failure returns xapi's failure envelope
// {Status: "Failure", ErrorDescription: [code, params...]}.
func Failure(code string, params ...string) Struct {
	desc := make(Array, 0, 1+len(params))
	desc = append(desc, code)
	for _, p := range params {
		desc = append(desc, p)
	}
	return Struct{"Status": StatusFailure, "ErrorDescription": desc}
}

// EncodeSuccess writes a methodResponse carrying Success(v).
func EncodeSuccess(w io.Writer, v Value) error { return EncodeResponse(w, Success(v)) }

// EncodeFailure writes a methodResponse carrying Failure(code, params...).
func EncodeFailure(w io.Writer, code string, params ...string) error {
	return EncodeResponse(w, Failure(code, params...))
}

// SplitResult takes a decoded xapi result envelope apart. On success it
// returns the Value member (nil when absent) and a nil description; on
// failure it returns the ErrorDescription as strings (code first; non-string
// elements are formatted). A value that is not an envelope yields an error
// wrapping ErrBadEnvelope.
func SplitResult(v Value) (value Value, failure []string, err error) {
	s, ok := v.(Struct)
	if !ok {
		return nil, nil, fmt.Errorf("xmlrpc: result is %s, not a struct: %w", TypeName(v), ErrBadEnvelope)
	}
	status, _ := s["Status"].(string)
	switch status {
	case StatusSuccess:
		return s["Value"], nil, nil
	case StatusFailure:
		desc, ok := s["ErrorDescription"].(Array)
		if !ok {
			return nil, nil, fmt.Errorf("xmlrpc: Failure envelope with ErrorDescription of type %s: %w", TypeName(s["ErrorDescription"]), ErrBadEnvelope)
		}
		if len(desc) == 0 {
			return nil, nil, fmt.Errorf("xmlrpc: Failure envelope with an empty ErrorDescription: %w", ErrBadEnvelope)
		}
		out := make([]string, len(desc))
		for i, e := range desc {
			out[i] = ScalarString(e)
		}
		return nil, out, nil
	}
	return nil, nil, fmt.Errorf("xmlrpc: result Status is %q: %w", clip(ScalarString(s["Status"])), ErrBadEnvelope)
}

// ScalarString gives a decoded scalar as xapi writes it in a string: ints
// in decimal, booleans as true/false, times in XML-RPC's UTC form, nil as
// the empty string.
func ScalarString(v Value) string {
	switch x := v.(type) {
	case string:
		return x
	case int64:
		return strconv.FormatInt(x, 10)
	case bool:
		return strconv.FormatBool(x)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case time.Time:
		return x.UTC().Format("20060102T15:04:05Z")
	case nil:
		return ""
	}
	return fmt.Sprint(v)
}

// TypeName names the XML-RPC type of a decoded value (string, int,
// boolean, double, dateTime, base64, struct, array or nil), for errors
// that say what was found instead of what was wanted.
func TypeName(v Value) string {
	switch v.(type) {
	case nil:
		return "nil"
	case string:
		return "string"
	case int64:
		return "int"
	case bool:
		return "boolean"
	case float64:
		return "double"
	case time.Time:
		return "dateTime"
	case []byte:
		return "base64"
	case Struct:
		return "struct"
	case Array:
		return "array"
	}
	return fmt.Sprintf("%T", v)
}
