package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/stdlib"
	"github.com/xenflow/xenflow/compute"
)

// checkLeaseRequest refuses an empty instance or owner and a TTL that is
// not positive.
func checkLeaseRequest(instanceUUID, owner string, ttl time.Duration) error {
	switch {
	case instanceUUID == "":
		return &compute.InvalidRecordError{Kind: compute.KindLease, Field: "instance_uuid", Reason: "empty"}
	case owner == "":
		return &compute.InvalidRecordError{Kind: compute.KindLease, ID: instanceUUID, Field: "owner", Reason: "empty"}
	case ttl <= 0:
		return &compute.InvalidRecordError{Kind: compute.KindLease, ID: instanceUUID, Field: "ttl", Reason: "not positive: " + ttl.String()}
	}
	return nil
}

// setLease writes the lease next over the one read (compare-and-set on the
// fence read).
func (s *Store) setLease(ctx context.Context, tx *sql.Tx, uuid string, read, next leaseRow) error {
	res, err := tx.ExecContext(ctx, s.d.q(`UPDATE instances SET lease_owner = ?, lease_fence = ?, lease_expires = ?
		WHERE uuid = ? AND lease_fence = ? AND lease_owner = ?`), next.owner, next.fence, next.expires, uuid, read.fence, read.owner)
	if err := oneRow(res, err); err != nil {
		return s.conflict("write lease", err)
	}
	return nil
}

// AcquireLease implements compute.LeaseStore.
func (s *Store) AcquireLease(ctx context.Context, req compute.LeaseRequest) (compute.Lease, error) {
	if err := s.usable(ctx); err != nil {
		return compute.Lease{}, err
	}
	if err := checkLeaseRequest(req.InstanceUUID, req.Owner, req.TTL); err != nil {
		return compute.Lease{}, err
	}
	var got leaseRow
	err := s.inTx(ctx, "acquire lease", func(tx *sql.Tx) error {
		li, err := s.lockInstance(ctx, tx, req.InstanceUUID, false)
		if err != nil {
			return err
		}
		cur := li.lease
		switch {
		case cur.current(li.now) && cur.owner != req.Owner:
			return &compute.LeaseHeldError{InstanceUUID: req.InstanceUUID, Holder: cur.owner, Expires: fromNanos(cur.expires)}
		case cur.current(li.now):
			got = cur
		default:
			got = leaseRow{owner: req.Owner, fence: cur.fence + 1}
		}
		got.expires = li.now + int64(req.TTL)
		if err := s.setLease(ctx, tx, req.InstanceUUID, cur, got); err != nil || got.fence == cur.fence {
			return err
		}
		return s.logGrant(ctx, tx, req.InstanceUUID, got)
	})
	if err != nil {
		return compute.Lease{}, err
	}
	return got.lease(req.InstanceUUID), nil
}

// RenewLease implements compute.LeaseStore: one UPDATE … RETURNING of
// the current lease's expiry; a lease it does not find is read again for
// the precise error.
func (s *Store) RenewLease(ctx context.Context, l compute.Lease, ttl time.Duration) (compute.Lease, error) {
	if err := s.usable(ctx); err != nil {
		return compute.Lease{}, err
	}
	if err := checkLeaseRequest(l.InstanceUUID, l.Owner, ttl); err != nil {
		return compute.Lease{}, err
	}
	got := leaseRow{owner: l.Owner, fence: int64(l.Fence)}
	err := s.inTx(ctx, "renew lease", func(tx *sql.Tx) error {
		clock, args := s.clock()
		err := tx.QueryRowContext(ctx, s.d.q(`UPDATE instances SET lease_expires = `+clock+` + ?
			WHERE uuid = ? AND lease_owner = ? AND lease_fence = ? AND lease_owner <> '' AND lease_expires > `+clock+
			` RETURNING lease_expires`), append(append(append([]any{}, args...), int64(ttl), l.InstanceUUID, l.Owner, got.fence), args...)...).
			Scan(&got.expires)
		if !errors.Is(err, sql.ErrNoRows) {
			return s.wrap("renew lease", err)
		}
		li, err := s.lockInstance(ctx, tx, l.InstanceUUID, false)
		if err != nil {
			return err
		}
		if err := li.lease.check(l, li.now); err != nil {
			return err
		}
		return errRetry // current again by the clock read after the UPDATE's: renew once more
	})
	if err != nil {
		return compute.Lease{}, err
	}
	return got.lease(l.InstanceUUID), nil
}

// ReleaseLease implements compute.LeaseStore: the owner is cleared, the
// fence kept, and waiting orchestrators are told the instance is free.
func (s *Store) ReleaseLease(ctx context.Context, l compute.Lease) error {
	if err := s.usable(ctx); err != nil {
		return err
	}
	clock, args := s.clock()
	released := false
	err := s.inTx(ctx, "release lease", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.d.q(`UPDATE instances SET lease_owner = '', lease_expires = 0
			WHERE uuid = ? AND lease_owner = ? AND lease_fence = ? AND lease_owner <> '' AND lease_expires > `+clock),
			append([]any{l.InstanceUUID, l.Owner, int64(l.Fence)}, args...)...)
		if err := oneRow(res, err); err != nil {
			if err == errNoRow {
				return nil
			}
			return s.wrap("release lease", err)
		}
		released = true
		return s.notifyTx(ctx, tx, l.InstanceUUID)
	})
	s.wakeIf(err == nil && released)
	return err
}

// ClaimRequest asks ClaimWork for operations to drive.
type ClaimRequest struct {
	Owner string
	TTL   time.Duration
	// Limit is the most leases to take; 0 means 1.
	Limit int
}

// ClaimWork gives req.Owner the leases of up to req.Limit instances with
// an operation in progress (a task_state, or a migration still holding
// resources) that no one holds, in one transaction. On PostgreSQL the rows
// are picked with FOR UPDATE SKIP LOCKED, so orchestrators claiming at the
// same time take different instances instead of waiting for each other.
// Each lease has a fence larger than any its instance had.
func (s *Store) ClaimWork(ctx context.Context, req ClaimRequest) ([]compute.Lease, error) {
	if err := s.usable(ctx); err != nil {
		return nil, err
	}
	if err := checkLeaseRequest("claim", req.Owner, req.TTL); err != nil {
		return nil, err
	}
	if req.Limit <= 0 {
		req.Limit = 1
	}
	var got []compute.Lease
	err := s.inTx(ctx, "claim work", func(tx *sql.Tx) error {
		got = got[:0]
		free, err := s.unleased(ctx, tx, req.Limit)
		if err != nil {
			return err
		}
		for _, f := range free {
			next := leaseRow{owner: req.Owner, fence: f.lease.fence + 1, expires: f.now + int64(req.TTL)}
			if err := s.setLease(ctx, tx, f.uuid, f.lease, next); err != nil {
				return err
			}
			if err := s.logGrant(ctx, tx, f.uuid, next); err != nil {
				return err
			}
			got = append(got, next.lease(f.uuid))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return got, nil
}

type freeInstance struct {
	uuid  string
	lease leaseRow
	now   int64
}

// unleased locks up to limit instances with work and no current lease.
func (s *Store) unleased(ctx context.Context, tx *sql.Tx, limit int) ([]freeInstance, error) {
	clock, args := s.clock()
	rows, err := tx.QueryContext(ctx, s.d.q(`SELECT uuid, lease_owner, lease_fence, lease_expires, n FROM
		(SELECT `+clock+` AS n) AS clock, instances
		WHERE (task_state <> '' OR uuid IN (SELECT instance_uuid FROM migrations WHERE in_progress = 1))
		AND (lease_owner = '' OR lease_expires <= n)
		ORDER BY uuid LIMIT ?`+skipLockedOf(s.d)), append(args, limit)...)
	if err != nil {
		return nil, s.wrap("claim work", err)
	}
	defer rows.Close()
	var out []freeInstance
	for rows.Next() {
		var f freeInstance
		if err := rows.Scan(&f.uuid, &f.lease.owner, &f.lease.fence, &f.lease.expires, &f.now); err != nil {
			return nil, s.wrap("claim work", err)
		}
		out = append(out, f)
	}
	return out, s.wrap("claim work", rows.Err())
}

// skipLockedOf locks only the instances' rows (PostgreSQL refuses FOR
// UPDATE on the clock's subquery).
func skipLockedOf(d dialect) string {
	if d.skipLocked == "" {
		return ""
	}
	return d.skipLocked[:len(" FOR UPDATE")] + " OF instances SKIP LOCKED"
}

// Wait returns when work may have arrived — an operation started, a lease
// released — or after the poll interval (WithPollInterval), or when ctx is
// done (its error). On PostgreSQL it listens for the notifications every
// process's writes send; on SQLite it hears this process's writes, and
// other processes' only by the poll. A caller claims work with ClaimWork
// first and waits when there is none.
func (s *Store) Wait(ctx context.Context) error {
	if err := s.usable(ctx); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeoutCause(ctx, s.cfg.poll, errPolled)
	defer cancel()
	s.mu.Lock()
	local := s.wake
	s.mu.Unlock()
	if s.d.notify == "" {
		select {
		case <-local:
		case <-ctx.Done():
		}
		return s.waitErr(ctx)
	}
	return s.listen(ctx)
}

// waitErr is nil when the wait ended by a wake-up or the poll interval,
// else the caller's context's error.
func (s *Store) waitErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil && context.Cause(ctx) != errPolled {
		return err
	}
	return nil
}

// errPolled ends a Wait at the poll interval.
var errPolled = errors.New("sqlstore: poll interval passed")

// listen waits for one notification on a connection of its own.
func (s *Store) listen(ctx context.Context) error {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return s.wrap("wait", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "LISTEN "+workChannel); err != nil {
		return s.wrap("wait", err)
	}
	err = conn.Raw(func(dc any) error {
		c, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("sqlstore: wait: driver connection %T", dc)
		}
		_, err := c.Conn().WaitForNotification(ctx)
		return err
	})
	if ctx.Err() != nil {
		return s.waitErr(ctx)
	}
	if err != nil {
		return s.wrap("wait", err)
	}
	_, err = conn.ExecContext(ctx, "UNLISTEN "+workChannel)
	return s.wrap("wait", err)
}
