package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/xenflow/xenflow/statemachine"
)

// FenceEntryKind says what a fence log entry records.
type FenceEntryKind string

// The kinds of fence log entries.
const (
	// FenceLease is a lease granted with a new fence (AcquireLease of a
	// free or expired lease, ClaimWork).
	FenceLease FenceEntryKind = "lease"
	// FenceStep is a step Transition wrote under a lease.
	FenceStep FenceEntryKind = "step"
)

// FenceEntry is one row of the fence log.
type FenceEntry struct {
	InstanceUUID string
	// Seq orders an instance's entries as their transactions committed.
	Seq   int64
	Kind  FenceEntryKind
	Owner string
	Fence uint64
	// State is the instance's flow state after a step ("" for a lease).
	State string
	// At is the store's clock when the entry was written.
	At time.Time
}

// WithFenceLog makes the store keep a fence log: a row for every lease it
// grants with a new fence and for every step Transition writes, in the
// transaction that grants or writes it. [Store.FenceLog] reads it and
// [CheckFenceLog] proves from it that no step was written by an owner
// whose lease had passed on. It costs one INSERT per step; every process
// sharing the database should open it with the option, or the log misses
// their grants and steps.
func WithFenceLog() Option { return func(c *config) { c.fenceLog = true } }

// logFence appends an entry to the instance's fence log when the store
// keeps one.
func (s *Store) logFence(ctx context.Context, tx *sql.Tx, e FenceEntry) error {
	if !s.cfg.fenceLog {
		return nil
	}
	_, err := s.execPrepared(ctx, tx, `INSERT INTO fence_log (instance_uuid, seq, kind, owner, fence, state, at)
		SELECT ?, COALESCE(MAX(seq), 0) + 1, ?, ?, ?, ?, ? FROM fence_log WHERE instance_uuid = ?`,
		e.InstanceUUID, string(e.Kind), e.Owner, int64(e.Fence), e.State, nanos(s.stamp()), e.InstanceUUID)
	return s.wrap("write fence log", err)
}

// logStep logs a step written under the lease (owner, fence).
func (s *Store) logStep(ctx context.Context, tx *sql.Tx, uuid, owner string, fence uint64, state statemachine.FlowState) error {
	return s.logFence(ctx, tx, FenceEntry{InstanceUUID: uuid, Kind: FenceStep, Owner: owner, Fence: fence, State: state.String()})
}

// logGrant logs a lease granted with a new fence.
func (s *Store) logGrant(ctx context.Context, tx *sql.Tx, uuid string, l leaseRow) error {
	return s.logFence(ctx, tx, FenceEntry{InstanceUUID: uuid, Kind: FenceLease, Owner: l.owner, Fence: uint64(l.fence)})
}

// FenceLog returns the fence log of the instance (of every instance when
// instanceUUID is empty), ordered by instance and Seq; it is empty unless
// the writers opened the store WithFenceLog.
func (s *Store) FenceLog(ctx context.Context, instanceUUID string) ([]FenceEntry, error) {
	if err := s.usable(ctx); err != nil {
		return nil, err
	}
	var w where
	if instanceUUID != "" {
		w.add("instance_uuid = ?", instanceUUID)
	}
	return listRecords(ctx, s, "read fence log", `SELECT instance_uuid, seq, kind, owner, fence, state, at FROM fence_log`+
		w.sql()+` ORDER BY instance_uuid, seq`, w.args, func(row scanner) (FenceEntry, error) {
		var e FenceEntry
		var kind string
		var fence, at int64
		err := row.Scan(&e.InstanceUUID, &e.Seq, &kind, &e.Owner, &fence, &e.State, &at)
		e.Kind, e.Fence, e.At = FenceEntryKind(kind), uint64(fence), fromNanos(at)
		return e, err
	})
}

// FenceViolationError is a fence log entry that breaks fencing: a fence
// that did not grow, or a step written by an owner or fence other than
// the instance's latest lease.
type FenceViolationError struct {
	Entry FenceEntry
	// Lease is the latest lease granted before the entry (zero when none).
	Lease  FenceEntry
	Reason string
}

// Error implements the error interface.
func (e *FenceViolationError) Error() string {
	return fmt.Sprintf("sqlstore: fence log of instance %s, entry %d (%s by %s, fence %d): %s; latest lease: %s, fence %d",
		e.Entry.InstanceUUID, e.Entry.Seq, e.Entry.Kind, e.Entry.Owner, e.Entry.Fence, e.Reason, e.Lease.Owner, e.Lease.Fence)
}

// CheckFenceLog checks a fence log (ordered by instance and Seq, as
// FenceLog returns it): for each instance every lease's fence is larger
// than the one before, and every step was written by the owner of the
// latest lease under its fence — so no owner wrote once a higher fence was
// issued, and no step was written by two owners. It returns the first
// violation, a *FenceViolationError.
func CheckFenceLog(log []FenceEntry) error {
	var lease FenceEntry
	for i, e := range log {
		if i == 0 || log[i-1].InstanceUUID != e.InstanceUUID {
			lease = FenceEntry{}
		} else if e.Seq <= log[i-1].Seq {
			return &FenceViolationError{Entry: e, Lease: lease, Reason: "out of order"}
		}
		switch {
		case e.Kind == FenceLease && e.Fence <= lease.Fence:
			return &FenceViolationError{Entry: e, Lease: lease, Reason: "the fence did not grow"}
		case e.Kind == FenceLease:
			lease = e
		case e.Kind != FenceStep:
			return &FenceViolationError{Entry: e, Lease: lease, Reason: "unknown kind"}
		case lease.Owner == "":
			return &FenceViolationError{Entry: e, Lease: lease, Reason: "a step without a lease"}
		case e.Owner != lease.Owner || e.Fence != lease.Fence:
			return &FenceViolationError{Entry: e, Lease: lease, Reason: "a step by other than the latest lease"}
		}
	}
	return nil
}
