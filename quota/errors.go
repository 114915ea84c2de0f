package quota

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Every error the package makes wraps one of them, so
// callers test with errors.Is; the wrapping types (InputError,
// ReservationError, OverQuotaError) say where and on what. Errors of the
// context, of a Store and of an IDSource are passed on as they come.
var (
	// ErrOverQuota: a reservation would take a project or user over a limit.
	// The error is an *OverQuotaError.
	ErrOverQuota = errors.New("quota exceeded")
	// ErrInvalidLimit: a limit below −1 or above MaxAmount.
	ErrInvalidLimit = errors.New("invalid quota limit")
	// ErrInvalidDelta: a delta or charge outside ±MaxAmount, a negative
	// charge, or a sum that would overflow.
	ErrInvalidDelta = errors.New("invalid quota delta")
	// ErrUnknownResource: a resource the ledger does not count.
	ErrUnknownResource = errors.New("unknown quota resource")
	// ErrEmptyProject: an empty project id.
	ErrEmptyProject = errors.New("empty project id")
	// ErrEmptyUser: an empty user id where one is required (user limits).
	ErrEmptyUser = errors.New("empty user id")
	// ErrInvalidOption: a ledger option out of range.
	ErrInvalidOption = errors.New("invalid ledger option")
	// ErrUnknownReservation: no reservation has that id (never made, or
	// settled longer ago than the ledger's retention).
	ErrUnknownReservation = errors.New("unknown reservation")
	// ErrReservationExpired: the reservation was expired (rolled back
	// because it was older than the ledger's maximum age) before it was
	// committed or rolled back. A rollback that meets it can treat it as
	// success: expiry is a rollback.
	ErrReservationExpired = errors.New("reservation expired")
	// ErrAlreadyCommitted: a Rollback met a reservation that was already
	// committed (a retried Commit succeeds instead). The rollback did not
	// happen: the deltas are in usage and only a new, reverse reservation
	// takes them out.
	ErrAlreadyCommitted = errors.New("reservation already committed")
	// ErrAlreadyRolledBack: a Commit met a reservation that was already
	// rolled back (a retried Rollback succeeds instead).
	ErrAlreadyRolledBack = errors.New("reservation already rolled back")
	// ErrUnknownProject: a read of a project that has no record.
	ErrUnknownProject = errors.New("unknown project")
	// ErrInvalidID: an id source produced an unusable reservation id.
	ErrInvalidID = errors.New("invalid reservation id")
	// ErrNotInitialized: a method of a nil or zero Ledger (only NewLedger
	// makes a usable one) or of a nil MemStore.
	ErrNotInitialized = errors.New("ledger or store not initialized")
)

// InputError reports bad input: which operation, which field, which value.
type InputError struct {
	Op    string // the ledger operation, e.g. "reserve", "set limits"
	Field string // the field or resource at fault
	Value string // the value given, as text
	Err   error  // one of the sentinel errors
}

// Error says which operation, field and value were bad.
func (e *InputError) Error() string {
	return fmt.Sprintf("quota: %s: %s %q: %v", e.Op, e.Field, e.Value, e.Err)
}

// Unwrap returns the sentinel error.
func (e *InputError) Unwrap() error { return e.Err }

// ReservationError reports an operation on a reservation that could not be
// done: unknown, expired, already settled.
type ReservationError struct {
	Op    string // "commit", "rollback" or "get"
	ID    string // the reservation id
	State State  // the reservation's state, when it is known
	Err   error  // one of the sentinel errors
}

// Error says which operation on which reservation failed and why.
func (e *ReservationError) Error() string {
	return fmt.Sprintf("quota: %s reservation %q: %v", e.Op, e.ID, e.Err)
}

// Unwrap returns the sentinel error.
func (e *ReservationError) Unwrap() error { return e.Err }

// Scope says which limit an Over is about.
type Scope string

// The scopes of a limit.
const (
	ScopeProject Scope = "project"
	ScopeUser    Scope = "user"
)

// Over describes one resource over its limit in one scope, with the figures
// an API needs to answer like Nova's TooManyInstances.
type Over struct {
	Resource  Resource
	Scope     Scope
	Requested int64 // the positive delta asked for
	Limit     int64 // the limit (never Unlimited here)
	InUse     int64 // committed usage
	Reserved  int64 // pending positive reservations
	Headroom  int64 // Limit − InUse − Reserved, never below 0
}

// Used returns InUse + Reserved, what Nova calls "used" in TooManyInstances.
func (o Over) Used() int64 { return o.InUse + o.Reserved }

// OverQuotaError is returned when a reservation would take a project or a
// user over a limit. It names every resource and scope over. It wraps
// ErrOverQuota.
type OverQuotaError struct {
	Project string
	User    string
	Overs   []Over // in resource order, project scope before user scope
}

// Error names every resource over, with its usage, limit and headroom.
func (e *OverQuotaError) Error() string {
	var b strings.Builder
	b.WriteString("quota: ")
	for i, o := range e.Overs {
		if i > 0 {
			b.WriteString("; ")
		}
		who := e.Project
		if o.Scope == ScopeUser {
			who = e.Project + "/" + e.User
		}
		fmt.Fprintf(&b, "quota exceeded for %s of %s %s: requested %d, already used %d of %d (in use %d, reserved %d, headroom %d)",
			o.Resource, o.Scope, who, o.Requested, o.Used(), o.Limit, o.InUse, o.Reserved, o.Headroom)
	}
	return b.String()
}

// Unwrap returns ErrOverQuota.
func (e *OverQuotaError) Unwrap() error { return ErrOverQuota }

// Resources lists the resources over, once each, in resource order.
func (e *OverQuotaError) Resources() []Resource {
	var rs []Resource
	for _, o := range e.Overs {
		if len(rs) == 0 || rs[len(rs)-1] != o.Resource {
			rs = append(rs, o.Resource)
		}
	}
	return rs
}

// Headroom returns, for each resource over, the smaller headroom of its
// project and user scopes, as Nova reports it.
func (e *OverQuotaError) Headroom() map[Resource]int64 {
	h := make(map[Resource]int64, len(e.Overs))
	for _, o := range e.Overs {
		if v, ok := h[o.Resource]; !ok || o.Headroom < v {
			h[o.Resource] = o.Headroom
		}
	}
	return h
}
