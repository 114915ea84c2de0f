package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"time"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/statemachine"
)

// leaseRow is an instance's lease columns: the fence only grows, and an
// empty owner is a released lease.
type leaseRow struct {
	owner   string
	fence   int64
	expires int64 // Unix nanoseconds; the lease is lost at expires
}

func (r leaseRow) current(now int64) bool { return r.owner != "" && now < r.expires }

func (r leaseRow) lease(instanceUUID string) compute.Lease {
	return compute.Lease{InstanceUUID: instanceUUID, Owner: r.owner, Fence: uint64(r.fence), Expires: fromNanos(r.expires)}
}

// check returns nil when l is the current lease at now, or the
// *LeaseLostError.
func (r leaseRow) check(l compute.Lease, now int64) error {
	if r.current(now) && r.owner == l.Owner && uint64(r.fence) == l.Fence {
		return nil
	}
	lost := &compute.LeaseLostError{InstanceUUID: l.InstanceUUID, Owner: l.Owner, Fence: l.Fence}
	if r.current(now) {
		lost.CurrentFence = uint64(r.fence)
	}
	return lost
}

// lockedInstance is an instance row read for update.
type lockedInstance struct {
	inst  *compute.Instance
	lease leaseRow
	now   int64 // the leases' clock when the row was read
}

// lockInstance reads the instance, its lease and the leases' clock, and
// locks the row until the transaction ends; withRecord false skips the
// record.
func (s *Store) lockInstance(ctx context.Context, tx *sql.Tx, uuid string, withRecord bool) (lockedInstance, error) {
	clock, args := s.clock()
	var li lockedInstance
	cols, dest := "", []any{&li.lease.owner, &li.lease.fence, &li.lease.expires, &li.now}
	if withRecord {
		cols = instanceCols + ", "
	}
	row := s.queryRowPrepared(ctx, tx, `SELECT `+cols+`lease_owner, lease_fence, lease_expires, `+clock+
		` FROM instances WHERE uuid = ?`+s.d.forUpdate, append(args, uuid)...)
	var err error
	if withRecord {
		li.inst, err = scanInstance(row, &uuid, s.cache.instances, dest...)
	} else {
		err = row.Scan(dest...)
	}
	if err != nil {
		return li, s.notFound("lock instance", compute.KindInstance, uuid, err)
	}
	return li, nil
}

// Transition implements compute.TransitionStore: in one transaction it
// locks the instance and the migration, checks the lease and the state,
// calls Apply and writes both rows with UPDATE … WHERE <expected state>
// AND lease_fence = ?.
func (s *Store) Transition(ctx context.Context, req compute.TransitionRequest) (*compute.Instance, *compute.Migration, error) {
	if err := s.usable(ctx); err != nil {
		return nil, nil, err
	}
	if err := req.Validate(); err != nil {
		return nil, nil, err
	}
	var inst *compute.Instance
	var mig *compute.Migration
	err := s.inTx(ctx, "transition", func(tx *sql.Tx) error {
		var err error
		inst, mig, err = s.transitionTx(ctx, tx, req)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	return inst, mig, nil
}

func (s *Store) transitionTx(ctx context.Context, tx *sql.Tx, req compute.TransitionRequest) (*compute.Instance, *compute.Migration, error) {
	li, mig, err := s.lockStep(ctx, tx, req)
	if err != nil {
		return nil, nil, err
	}
	if err := li.lease.check(req.Lease, li.now); err != nil {
		return nil, nil, err
	}
	inst := li.inst
	from := inst.FlowState(mig)
	if req.NewMigration != nil {
		from = inst.FlowState(nil)
	}
	if from != req.Expect {
		return nil, nil, &compute.UnexpectedStateError{InstanceUUID: req.InstanceUUID, Expected: req.Expect, Actual: from}
	}
	if err := req.Apply(inst, mig); err != nil {
		return nil, nil, err
	}
	if err := req.CheckApplied(inst, mig); err != nil {
		return nil, nil, err
	}
	if err := s.writeRows(ctx, tx, req, inst, mig, li.lease.fence); err != nil {
		return nil, nil, err
	}
	if err := s.logStep(ctx, tx, inst.UUID, req.Lease.Owner, req.Lease.Fence, inst.FlowState(mig)); err != nil {
		return nil, nil, err
	}
	return inst, mig, nil
}

// writeRows writes a step's instance and migration (inserted when the step
// creates it), stamped now; on PostgreSQL an instance and migration are
// written by one statement.
func (s *Store) writeRows(ctx context.Context, tx *sql.Tx, req compute.TransitionRequest, inst *compute.Instance, mig *compute.Migration, fence int64) error {
	now := s.stamp()
	switch {
	case mig != nil && req.NewMigration == nil && s.d.withUpdate:
		return s.writeBoth(ctx, tx, req, inst, mig, fence, now)
	case mig == nil:
		return s.writeStep(ctx, tx, req, inst, fence, now)
	}
	if err := s.writeStep(ctx, tx, req, inst, fence, now); err != nil {
		return err
	}
	if req.NewMigration != nil {
		return s.insertMigrationTx(ctx, tx, mig, now)
	}
	return s.updateStepMigration(ctx, tx, req.Expect, mig, now)
}

// lockStep reads and locks the step's instance and migration: both in one
// statement when the step names an existing migration, else one by one
// (also when the joined read finds no row, for the precise error).
func (s *Store) lockStep(ctx context.Context, tx *sql.Tx, req compute.TransitionRequest) (lockedInstance, *compute.Migration, error) {
	if req.MigrationUUID != "" && req.NewMigration == nil {
		li, mig, err := s.lockJoined(ctx, tx, req.InstanceUUID, req.MigrationUUID)
		if !errors.Is(err, sql.ErrNoRows) {
			return li, mig, err
		}
	}
	li, err := s.lockInstance(ctx, tx, req.InstanceUUID, true)
	if err != nil {
		return li, nil, err
	}
	mig, err := s.transitionMigration(ctx, tx, req)
	return li, mig, err
}

// lockJoined reads and locks an instance, its lease, the leases' clock and
// a migration in one statement; sql.ErrNoRows when either row is missing.
func (s *Store) lockJoined(ctx context.Context, tx *sql.Tx, uuid, migUUID string) (lockedInstance, *compute.Migration, error) {
	clock, args := s.clock()
	var li lockedInstance
	var rec string
	var created, updated int64
	row := s.queryRowPrepared(ctx, tx, `SELECT i.record, i.created_at, i.updated_at, i.lease_owner, i.lease_fence, i.lease_expires, `+
		clock+`, m.record, m.created_at, m.updated_at FROM instances i, migrations m WHERE i.uuid = ? AND m.uuid = ?`+s.d.forUpdate,
		append(args, uuid, migUUID)...)
	inst, err := scanInstance(row, &uuid, s.cache.instances, &li.lease.owner, &li.lease.fence, &li.lease.expires, &li.now,
		&rec, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return li, nil, err
	}
	if err != nil {
		return li, nil, s.notFound("lock step", compute.KindInstance, uuid, err)
	}
	li.inst = inst
	m, err := decodeCached(s.cache.migrations, compute.KindMigration, migUUID, rec, func() *compute.Migration { return &compute.Migration{} })
	if err != nil {
		return li, nil, err
	}
	m.CreatedAt, m.UpdatedAt = fromNanos(created), fromNanos(updated)
	return li, m, migrationOf(m, uuid)
}

// migrationOf refuses a migration of another instance.
func migrationOf(m *compute.Migration, instanceUUID string) error {
	if m.InstanceUUID != instanceUUID {
		return &compute.InvalidRecordError{Kind: compute.KindMigration, ID: m.UUID, Field: "instance_uuid",
			Reason: "belongs to instance " + strconv.Quote(m.InstanceUUID) + ", not " + strconv.Quote(instanceUUID)}
	}
	return nil
}

// transitionMigration reads and locks the step's migration, or checks
// that the one it creates does not exist.
func (s *Store) transitionMigration(ctx context.Context, tx *sql.Tx, req compute.TransitionRequest) (*compute.Migration, error) {
	id := req.MigrationUUID
	if req.NewMigration != nil {
		id = req.NewMigration.UUID
	}
	if id == "" {
		return nil, nil
	}
	row := s.queryRowPrepared(ctx, tx, `SELECT `+migrationCols+` FROM migrations WHERE uuid = ?`+s.d.forUpdate, id)
	m, err := scanMigration(row, &id, s.cache.migrations)
	switch {
	case req.NewMigration != nil && errors.Is(err, sql.ErrNoRows):
		return req.NewMigration.Clone(), nil
	case req.NewMigration != nil && err == nil:
		return nil, &compute.AlreadyExistsError{Kind: compute.KindMigration, ID: id}
	case err != nil:
		return nil, s.notFound("lock migration", compute.KindMigration, id, err)
	}
	return m, migrationOf(m, req.InstanceUUID)
}

// instanceStep is the compare-and-set of a step's instance on the
// expected vm_state and task_state and on the lease's fence: the
// statement, its arguments and the record written.
func instanceStep(req compute.TransitionRequest, inst *compute.Instance, fence int64, now time.Time) (string, []any, string, error) {
	inst.UpdatedAt = now
	rec, err := encode(compute.KindInstance, inst.UUID, inst)
	return `UPDATE instances SET host = ?, vm_state = ?, task_state = ?, updated_at = ?, record = ?
		WHERE uuid = ? AND vm_state = ? AND task_state = ? AND lease_fence = ?`,
		[]any{inst.Host, string(inst.VMState), string(inst.TaskState), nanos(now), rec,
			inst.UUID, string(req.Expect.VM), string(req.Expect.Task), fence}, rec, err
}

// migrationStep is the compare-and-set of a step's migration on the
// expected status and phase: the statement, its arguments and the record
// written.
func migrationStep(expect statemachine.FlowState, m *compute.Migration, now time.Time) (string, []any, string, error) {
	m.UpdatedAt = now
	rec, err := encode(compute.KindMigration, m.UUID, m)
	return updateMigration + ` WHERE uuid = ? AND status = ? AND phase = ?`,
		append(migrationRow(m, rec), m.UUID, string(expect.Migration), string(expect.Phase)), rec, err
}

// writeStep writes the instance of a step.
func (s *Store) writeStep(ctx context.Context, tx *sql.Tx, req compute.TransitionRequest, inst *compute.Instance, fence int64, now time.Time) error {
	q, args, rec, err := instanceStep(req, inst, fence, now)
	if err != nil {
		return err
	}
	res, err := s.execPrepared(ctx, tx, q, args...)
	if err := oneRow(res, err); err != nil {
		return s.conflict("write instance step", err)
	}
	s.cache.instances.put(inst.UUID, rec, inst)
	return nil
}

// updateStepMigration writes the migration of a step.
func (s *Store) updateStepMigration(ctx context.Context, tx *sql.Tx, expect statemachine.FlowState, m *compute.Migration, now time.Time) error {
	q, args, rec, err := migrationStep(expect, m, now)
	if err != nil {
		return err
	}
	res, err := s.execPrepared(ctx, tx, q, args...)
	if err := oneRow(res, err); err != nil {
		return s.conflict("write migration step", err)
	}
	s.cache.migrations.put(m.UUID, rec, m)
	return nil
}

// writeBoth writes a step's instance and migration in one statement, the
// migration's UPDATE in a WITH clause; either compare-and-set matching no
// row fails the step.
func (s *Store) writeBoth(ctx context.Context, tx *sql.Tx, req compute.TransitionRequest, inst *compute.Instance, m *compute.Migration, fence int64, now time.Time) error {
	iq, iargs, irec, err := instanceStep(req, inst, fence, now)
	if err != nil {
		return err
	}
	mq, margs, mrec, err := migrationStep(req.Expect, m, now)
	if err != nil {
		return err
	}
	var migs int64
	err = s.queryRowPrepared(ctx, tx, `WITH m AS (`+mq+` RETURNING 1) `+iq+` RETURNING (SELECT COUNT(*) FROM m)`,
		append(margs, iargs...)...).Scan(&migs)
	switch {
	case errors.Is(err, sql.ErrNoRows) || (err == nil && migs != 1):
		return errRetry
	case err != nil:
		return s.wrap("write step", err)
	}
	s.cache.instances.put(inst.UUID, irec, inst)
	s.cache.migrations.put(m.UUID, mrec, m)
	return nil
}

// conflict turns a compare-and-set that matched no row into errRetry: the
// rows are locked, so it is only seen when a lock was not held, and the
// retried transaction reports what changed.
func (s *Store) conflict(op string, err error) error {
	if errors.Is(err, errNoRow) {
		return errRetry
	}
	return s.wrap(op, err)
}
