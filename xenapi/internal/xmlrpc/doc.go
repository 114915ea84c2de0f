// Package xmlrpc is the XML-RPC codec for xapi's dialect of XML-RPC, used by
// both the XenAPI client (package xenapi) and the simulated pool
// (package xenapitest).
//
// # Value model
//
// A decoded value is a Go value of one of these dynamic types:
//
//	string      <value>text</value> (untyped), <string>, <value/> and <value></value> ("")
//	int64       <int>, <i4>, <i8>, <ex:i8>
//	bool        <boolean>0|1</boolean>
//	float64     <double>
//	time.Time   <dateTime.iso8601> (UTC when the text carries no zone)
//	[]byte      <base64>
//	Struct      <struct> (map[string]any)
//	Array       <array> ([]any)
//	nil         <nil/>, <ex:nil/>
//
// xapi sends every string, ref, enum and int64 untyped, so most values of a
// XenAPI response decode to string; the typed layer in package xenapi turns
// them into numbers, enums and refs.
//
// Duplicate member names in a struct (seen from XCP-ng 8.3's
// host.get_all_records) are accepted and the LAST occurrence wins, as in
// Python's xmlrpc.client, which builds a dict member by member.
//
// # Encoding
//
// Strings are written untyped, as xapi itself writes them, with < > & and "
// escaped, CR written as &#13; and the control characters XML 1.0 cannot carry
// dropped (xapi drops them too; struct keys that differ only in such
// characters therefore come out as duplicates). Integers of every Go kind are written as
// <int>; XenAPI int64 parameters should be passed as decimal strings, which is
// the job of the caller. time.Time values are written in UTC as
// 20060102T15:04:05Z. Struct members are written in sorted key order, so the
// output is deterministic.
//
// # Bounds
//
// A Decoder reads at most MaxBodySize bytes, nests at most MaxDepth
// structs and arrays and accepts at most MaxValues values (by default one
// per 32 bytes of MaxBodySize), so that what a body costs in memory is
// bounded by its size whatever it holds. Arrays and structs are built at
// their final size from elements collected on a reused stack, never grown
// element by element. Every problem is reported as a *DecodeError carrying
// the byte offset, the line and what was wrong; no input makes the decoder
// panic. Faults are reported as *Fault.
package xmlrpc
