package quota

import (
	"context"
	"time"
)

// Store keeps each project's quota record. The ledger reads and changes a
// record only inside Update or View, so atomicity is the store's job: one
// Update is one transaction on one project.
//
// The ledger validates everything before it changes usage or reservations,
// so when fn returns an error the store may discard the record or keep it:
// at most a new record has been given its default limits. A durable store
// loads the record, calls fn, and writes the record back only when fn
// returns nil.
type Store interface {
	// Update calls fn with the project's record while no other Update or
	// View of that project runs. A project without a record gets a new
	// record, ProjectQuota{Project: project}, which the store keeps only if
	// fn returns nil. Update returns fn's error, or the store's own.
	// A store may call fn more than once, each time on a fresh copy of the
	// record (to retry a transaction that met a conflict); only the last
	// call's record may be kept. It must not keep fn or call it after
	// Update returns.
	Update(ctx context.Context, project string, fn func(*ProjectQuota) error) error
	// View calls fn with the project's record while no Update of that
	// project runs. fn must not change or keep the record. A project
	// without a record gives an error wrapping ErrUnknownProject.
	View(ctx context.Context, project string, fn func(*ProjectQuota) error) error
	// Projects lists the projects that have a record, in any order.
	Projects(ctx context.Context) ([]string, error)
}

// ProjectQuota is one project's record: its limits, usage and reservations,
// and the same per user within the project.
type ProjectQuota struct {
	Project string
	// Initialized is set by the ledger when it first fills in the record's
	// default limits.
	Initialized bool
	// Total is the project-wide limit and usage.
	Total Counters
	// Users holds each user's limit and usage within the project.
	Users map[string]*Counters
	// Pending holds the reservations not yet settled, by id.
	Pending map[string]*Reservation
	// Settled holds settled reservations (committed, rolled back, expired)
	// by id until the ledger's retention has passed, so that a retried
	// commit or rollback gets a precise answer and never counts twice.
	Settled map[string]*Reservation
	// SettledOrder lists the ids in Settled in the order they were settled;
	// the ledger forgets them from the front.
	SettledOrder []string
}

// Counters are the limit and usage of one scope (a project, or one user of
// a project), per resource.
type Counters struct {
	Limit    Amounts // Unlimited (−1) or ≥ 0
	InUse    Amounts // committed usage, never below 0
	Reserved Amounts // sum of the positive deltas of pending reservations
	// Unders accumulates what commits of negative deltas would have taken
	// below zero and were clamped: a sign of drift that Reconcile repairs.
	Unders Amounts
}

// State is the state of a reservation.
type State uint8

// Reservation states. Pending is the only unsettled state; every pending
// reservation ends in exactly one of the other three.
const (
	Pending State = iota
	Committed
	RolledBack
	Expired
)

// String returns the state's name, e.g. "committed".
func (s State) String() string {
	switch s {
	case Pending:
		return "pending"
	case Committed:
		return "committed"
	case RolledBack:
		return "rolled_back"
	case Expired:
		return "expired"
	}
	return "state(?)"
}

// Reservation is one request's deltas, held until it is settled.
type Reservation struct {
	ID      string
	Project string
	User    string
	Deltas  Amounts
	Created time.Time
	State   State
	Settled time.Time // when it left Pending; zero while pending
}
