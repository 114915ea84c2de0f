// Package schedjson reads and writes the JSON documents of
// examples/schedule: one input document (config, hosts, request) in, one
// result document (weighed, selected, alternates, filtered_out) out. The
// same format feeds Nova's own scheduler code in the package's oracle
// tests. It does no I/O beyond the byte slices and writers it is given.
package schedjson
