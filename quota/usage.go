package quota

import (
	"context"
	"errors"
)

// Usage is a snapshot of one project's limits and usage.
type Usage struct {
	Project string
	Total   Counters
	Users   map[string]Counters
	Pending int // reservations not yet settled
}

// Headroom returns how much more of r the project (and user, when not
// empty) can reserve now, or Unlimited when no limit applies.
func (u Usage) Headroom(user string, r Resource) int64 {
	if !r.Valid() {
		return 0
	}
	h := headroom(u.Total, r)
	if c, ok := u.Users[user]; ok && user != "" {
		if hu := headroom(c, r); hu != Unlimited && (h == Unlimited || hu < h) {
			h = hu
		}
	}
	return h
}

func headroom(c Counters, r Resource) int64 {
	if c.Limit[r] < 0 {
		return Unlimited
	}
	h := c.Limit[r] - c.InUse[r] - c.Reserved[r]
	if h < 0 {
		h = 0
	}
	return h
}

// Usage returns a snapshot of a project's limits and usage. A project the
// ledger has never seen has the default limits and no usage.
func (l *Ledger) Usage(ctx context.Context, project string) (Usage, error) {
	if err := l.usable(); err != nil {
		return Usage{}, err
	}
	if project == "" {
		return Usage{}, &InputError{Op: "usage", Field: "project", Err: ErrEmptyProject}
	}
	u := Usage{Project: project, Users: map[string]Counters{}}
	err := l.store.View(ctx, project, func(pq *ProjectQuota) error {
		if !pq.Initialized {
			return &InputError{Op: "usage", Field: "project", Value: project, Err: ErrUnknownProject}
		}
		u.Total = pq.Total
		for name, c := range pq.Users {
			u.Users[name] = *c
		}
		u.Pending = len(pq.Pending)
		return nil
	})
	if errors.Is(err, ErrUnknownProject) {
		u.Total = Counters{Limit: l.defaults}
		return u, nil
	}
	if err != nil {
		return Usage{}, err
	}
	return u, nil
}

// Reservation returns a copy of a reservation, pending or settled (until the
// retention has passed), so that a resumed flow can see what became of the
// id it stored. An unknown id gives an error wrapping ErrUnknownReservation.
func (l *Ledger) Reservation(ctx context.Context, id string) (Reservation, error) {
	if err := l.usable(); err != nil {
		return Reservation{}, err
	}
	gen, project, ok := splitID(id)
	if !ok {
		return Reservation{}, &ReservationError{Op: "get", ID: id, Err: ErrUnknownReservation}
	}
	var out Reservation
	err := l.store.View(ctx, project, func(pq *ProjectQuota) error {
		if r := pq.Pending[gen]; r != nil {
			out = *r
			return nil
		}
		if r := pq.Settled[gen]; r != nil {
			out = *r
			return nil
		}
		return &ReservationError{Op: "get", ID: id, Err: ErrUnknownReservation}
	})
	if errors.Is(err, ErrUnknownProject) {
		return Reservation{}, &ReservationError{Op: "get", ID: id, Err: ErrUnknownReservation}
	}
	return out, err
}
