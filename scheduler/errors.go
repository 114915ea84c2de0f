package scheduler

import (
	"errors"
	"fmt"
	"strings"
)

// ErrBadInput is matched (with errors.Is) by every *BadInputError.
var ErrBadInput = errors.New("scheduler: bad input")

// ErrNoValidHost is matched (with errors.Is) by every *NoValidHostError.
var ErrNoValidHost = errors.New("no valid host was found")

// BadInputError reports a host, request or configuration field that cannot
// be used. Field names the value the way the JSON input spells it, for
// example "hosts[3].total_usable_ram_mb" or "config.ram_weight_multiplier".
type BadInputError struct {
	Field  string
	Reason string
}

// Error implements error: "scheduler: bad input: <field>: <reason>".
func (e *BadInputError) Error() string {
	return fmt.Sprintf("scheduler: bad input: %s: %s", e.Field, e.Reason)
}

// Is makes errors.Is(err, ErrBadInput) true.
func (e *BadInputError) Is(target error) bool { return target == ErrBadInput }

func badInput(field, format string, args ...any) error {
	return &BadInputError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// ErrNonFiniteWeight is matched (with errors.Is) by every
// *NonFiniteWeightError.
var ErrNonFiniteWeight = errors.New("scheduler: weight is not finite")

// NonFiniteWeightError reports a host whose total weight came out
// infinite or NaN: per-aggregate multipliers (or a caller's weigher) so
// large that the sum overflows. No ranking is returned: Select refuses
// rather than choose by a meaningless order.
type NonFiniteWeightError struct {
	Host   string
	Node   string
	Weight float64
}

// Error implements error.
func (e *NonFiniteWeightError) Error() string {
	return fmt.Sprintf("scheduler: weight of host %q node %q is %v: lower the weight multipliers (configured or per aggregate)", e.Host, e.Node, e.Weight)
}

// Is makes errors.Is(err, ErrNonFiniteWeight) true, and errors.Is(err,
// ErrBadInput) too: the multipliers given are what cannot be used.
func (e *NonFiniteWeightError) Is(target error) bool {
	return target == ErrNonFiniteWeight || target == ErrBadInput
}

// FilterCount says how many hosts one filter removed, in the order the
// filters ran.
type FilterCount struct {
	Filter  string
	Removed int
}

// NoValidHostError is Nova's NoValidHost: no host was left for instance
// Instance (0-based) of a request for Requested instances. FilteredOut
// says, filter by filter, how many hosts each one removed over the whole
// request; Ignored counts hosts dropped by ignore_hosts and NotForced
// those dropped by force_hosts, force_nodes or the requested destination.
type NoValidHostError struct {
	Instance    int
	Requested   int
	Candidates  int
	Ignored     int
	NotForced   int
	FilteredOut []FilterCount
	// Hosts lists, per filter name, the hosts each filter removed. It is
	// filled only when the scheduler was built with Explain set.
	Hosts map[string][]string
}

// Error implements error: Nova's message with the hosts each filter
// removed.
func (e *NoValidHostError) Error() string {
	var b strings.Builder
	b.WriteString("no valid host was found")
	if e.Requested > 1 {
		fmt.Fprintf(&b, " for instance %d of %d: there are not enough hosts available", e.Instance+1, e.Requested)
	}
	fmt.Fprintf(&b, " (%d hosts", e.Candidates)
	if e.Ignored > 0 {
		fmt.Fprintf(&b, ", %d ignored", e.Ignored)
	}
	if e.NotForced > 0 {
		fmt.Fprintf(&b, ", %d not in the forced or requested hosts", e.NotForced)
	}
	for _, fc := range e.FilteredOut {
		fmt.Fprintf(&b, ", %s removed %d", fc.Filter, fc.Removed)
	}
	b.WriteString(")")
	return b.String()
}

// Is makes errors.Is(err, ErrNoValidHost) true.
func (e *NoValidHostError) Is(target error) bool { return target == ErrNoValidHost }
