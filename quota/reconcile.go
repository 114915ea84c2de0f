package quota

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
)

// Drift is one figure the ledger had wrong: what it recorded and what the
// recount found. Reconcile reports every drift it corrects.
type Drift struct {
	Project  string
	User     string // empty for the project-wide figure
	Resource Resource
	Field    string // "in_use" or "reserved"
	Recorded int64
	Counted  int64
}

// String describes the drift, e.g. "p/alice cores in_use: recorded 4, counted 2".
func (d Drift) String() string {
	who := d.Project
	if d.User != "" {
		who += "/" + d.User
	}
	return fmt.Sprintf("%s %s %s: recorded %d, counted %d", who, d.Resource, d.Field, d.Recorded, d.Counted)
}

// Reconcile recounts a project's usage from the charges of the instances
// that exist (InstanceCharge, or ResizeCharge for an instance whose resize
// reached the destination and is not yet confirmed or reverted), recounts
// reserved from the pending reservations, reports every figure that differs
// and corrects it. It is the safety net of nova-manage's
// quota_usage_refresh: run after a crash or on a schedule, it returns an
// empty report when nothing leaked.
//
// Users that have a record but no charges are counted at zero. Charges must
// not be negative; bad input changes nothing.
func (l *Ledger) Reconcile(ctx context.Context, project string, charges []Charge) ([]Drift, error) {
	if err := l.usable(); err != nil {
		return nil, err
	}
	if project == "" {
		return nil, &InputError{Op: "reconcile", Field: "project", Err: ErrEmptyProject}
	}
	var total Amounts
	users := make(map[string]*Amounts)
	for i, c := range charges {
		for r, v := range c.Amount {
			if v < 0 || v > MaxAmount || total[r] > maxTotal-v {
				return nil, &InputError{Op: "reconcile", Field: fmt.Sprintf("charges[%d].%s", i, Resource(r)), Value: fmt.Sprint(v), Err: ErrInvalidDelta}
			}
			total[r] += v
		}
		if c.User == "" {
			continue
		}
		u := users[c.User]
		if u == nil {
			u = new(Amounts)
			users[c.User] = u
		}
		for r, v := range c.Amount {
			u[r] += v
		}
	}
	var drift []Drift
	err := l.store.Update(ctx, project, func(pq *ProjectQuota) error {
		drift = drift[:0] // a store may retry the transaction
		l.init(pq)
		var reserved Amounts
		userReserved := make(map[string]*Amounts)
		for _, res := range pq.Pending {
			ur := userReserved[res.User]
			if ur == nil && res.User != "" {
				ur = new(Amounts)
				userReserved[res.User] = ur
			}
			for r, d := range res.Deltas {
				if d > 0 {
					reserved[r] += d
					if ur != nil {
						ur[r] += d
					}
				}
			}
		}
		drift = fix(drift, project, "", &pq.Total, &total, &reserved)
		for u := range users {
			if pq.Users[u] == nil {
				pq.Users[u] = unlimitedCounters()
			}
		}
		for u := range userReserved {
			if pq.Users[u] == nil {
				pq.Users[u] = unlimitedCounters()
			}
		}
		var zero Amounts
		for u, c := range pq.Users {
			in, rs := users[u], userReserved[u]
			if in == nil {
				in = &zero
			}
			if rs == nil {
				rs = &zero
			}
			drift = fix(drift, project, u, c, in, rs)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(drift, func(i, j int) bool {
		a, b := drift[i], drift[j]
		if a.User != b.User {
			return a.User < b.User
		}
		if a.Resource != b.Resource {
			return a.Resource < b.Resource
		}
		return a.Field < b.Field
	})
	for _, d := range drift {
		l.log.LogAttrs(ctx, slog.LevelWarn, "quota: usage drift corrected",
			slog.String("project", d.Project), slog.String("user", d.User),
			slog.String("resource", d.Resource.String()), slog.String("field", d.Field),
			slog.Int64("recorded", d.Recorded), slog.Int64("counted", d.Counted))
	}
	return drift, nil
}

func fix(drift []Drift, project, user string, c *Counters, inUse, reserved *Amounts) []Drift {
	for r := range c.InUse {
		if c.InUse[r] != inUse[r] {
			drift = append(drift, Drift{Project: project, User: user, Resource: Resource(r), Field: "in_use", Recorded: c.InUse[r], Counted: inUse[r]})
			c.InUse[r] = inUse[r]
		}
		if c.Reserved[r] != reserved[r] {
			drift = append(drift, Drift{Project: project, User: user, Resource: Resource(r), Field: "reserved", Recorded: c.Reserved[r], Counted: reserved[r]})
			c.Reserved[r] = reserved[r]
		}
	}
	return drift
}
