package xmlrpc

import (
	"errors"
	"fmt"
	"strconv"
)

// Value is one XML-RPC value; see the package documentation for the dynamic
// types it holds.
type Value = any

// Struct is a decoded <struct>: member name to value.
type Struct = map[string]any

// Array is a decoded <array>.
type Array = []any

// Default limits used when a Decoder field is zero.
const (
	// DefaultMaxBodySize is the largest body a zero Decoder reads: 128 MiB.
	// VM.get_all_records of 10,000 VMs, more than a pool holds, is about
	// 86 MB.
	DefaultMaxBodySize = 128 << 20
	// DefaultMaxDepth is how deeply a zero Decoder lets structs and arrays
	// nest. XenAPI values nest at most four or five levels.
	DefaultMaxDepth = 64
	// DefaultMaxValues is how many values (scalars, structs and arrays:
	// each <value>) a zero Decoder accepts in one body: one per 32 bytes
	// of DefaultMaxBodySize, 4 Mi, three times the 1.4 million of
	// VM.get_all_records of 10,000 VMs. It bounds what a body of tiny
	// values (an empty <value/> is 8 bytes) costs.
	DefaultMaxValues = DefaultMaxBodySize / bytesPerValue
)

// Sentinel causes carried by *DecodeError, for errors.Is.
var (
	// ErrTooLarge means the body is larger than the decoder's MaxBodySize
	// or holds more than its MaxValues values.
	ErrTooLarge = errors.New("body exceeds the size limit")
	// ErrTooDeep means structs and arrays nest deeper than MaxDepth.
	ErrTooDeep = errors.New("values nest deeper than the depth limit")
	// ErrSyntax means the body is not well-formed XML-RPC.
	ErrSyntax = errors.New("malformed XML-RPC")
	// ErrBadEnvelope means a well-formed value is not a xapi result
	// envelope ({Status, Value} or {Status, ErrorDescription}).
	ErrBadEnvelope = errors.New("not a xapi result envelope")
)

// DecodeError reports why and where a body could not be decoded.
type DecodeError struct {
	Offset int64  // byte offset in the body where the problem was found
	Line   int    // 1-based line of Offset
	What   string // what was wrong, e.g. `expected <value>, found <foo>`
	Err    error  // ErrSyntax, ErrTooLarge, ErrTooDeep, io.ErrUnexpectedEOF or a read error
}

// Error implements error.
func (e *DecodeError) Error() string {
	return fmt.Sprintf("xmlrpc: decode at offset %d (line %d): %s", e.Offset, e.Line, e.What)
}

// Unwrap returns the cause.
func (e *DecodeError) Unwrap() error { return e.Err }

// Fault is an XML-RPC <fault>. xapi sends faults only for transport or parse
// problems; API errors arrive as a Failure envelope instead.
type Fault struct {
	Code   int64
	String string
}

// Error implements error.
func (f *Fault) Error() string {
	return "xmlrpc: fault " + strconv.FormatInt(f.Code, 10) + ": " + f.String
}
