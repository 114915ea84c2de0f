package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/statemachine"
)

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func nanos(t time.Time) int64 { return t.UnixNano() }

func fromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// encode returns the JSON of a record.
func encode(kind, id string, v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", &compute.InvalidRecordError{Kind: kind, ID: id, Field: "record", Reason: err.Error()}
	}
	return string(b), nil
}

// decode fills v from a stored record.
func decode(kind, id, record string, v any) error {
	if err := json.Unmarshal([]byte(record), v); err != nil {
		return &CorruptRecordError{Kind: kind, ID: id, Err: err}
	}
	return nil
}

const (
	instanceCols  = `record, created_at, updated_at`
	migrationCols = `record, created_at, updated_at`
)

// scanner is *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

// scanInstance reads the instanceCols of a row; the stamps come from their
// columns. id points to the record's uuid, which a list query scans with
// the row. With a cache, a record whose text is cached is not decoded
// again.
func scanInstance(row scanner, id *string, c *recordCache[*compute.Instance], extra ...any) (*compute.Instance, error) {
	var rec string
	var created, updated int64
	if err := row.Scan(append([]any{&rec, &created, &updated}, extra...)...); err != nil {
		return nil, err
	}
	inst, err := decodeCached(c, compute.KindInstance, *id, rec, func() *compute.Instance { return &compute.Instance{} })
	if err != nil {
		return nil, err
	}
	inst.CreatedAt, inst.UpdatedAt = fromNanos(created), fromNanos(updated)
	return inst, nil
}

func scanMigration(row scanner, id *string, c *recordCache[*compute.Migration]) (*compute.Migration, error) {
	var rec string
	var created, updated int64
	if err := row.Scan(&rec, &created, &updated); err != nil {
		return nil, err
	}
	m, err := decodeCached(c, compute.KindMigration, *id, rec, func() *compute.Migration { return &compute.Migration{} })
	if err != nil {
		return nil, err
	}
	m.CreatedAt, m.UpdatedAt = fromNanos(created), fromNanos(updated)
	return m, nil
}

// decodeCached decodes rec into a new record, or takes it from the cache
// (nil: none) when rec is the text cached for id.
func decodeCached[T any](c *recordCache[T], kind, id, rec string, newT func() T) (T, error) {
	if c != nil {
		if v, ok := c.get(id, rec); ok {
			return v, nil
		}
	}
	v := newT()
	if err := decode(kind, id, rec, v); err != nil {
		return v, err
	}
	if c != nil {
		c.put(id, rec, v)
	}
	return v, nil
}

// notFound turns sql.ErrNoRows into a *compute.NotFoundError.
func (s *Store) notFound(op, kind, id string, err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return &compute.NotFoundError{Kind: kind, ID: id}
	}
	var corrupt *CorruptRecordError
	if errors.As(err, &corrupt) {
		return err
	}
	return s.wrap(op, err)
}

// GetInstance implements compute.InstanceStore.
func (s *Store) GetInstance(ctx context.Context, uuid string) (*compute.Instance, error) {
	if err := s.usable(ctx); err != nil {
		return nil, err
	}
	row := s.db.QueryRowContext(ctx, s.d.q(`SELECT `+instanceCols+` FROM instances WHERE uuid = ?`), uuid)
	inst, err := scanInstance(row, &uuid, nil)
	if err != nil {
		return nil, s.notFound("get instance", compute.KindInstance, uuid, err)
	}
	return inst, nil
}

// where collects the conditions and arguments of a query.
type where struct {
	conds []string
	args  []any
}

func (w *where) add(cond string, args ...any) {
	w.conds = append(w.conds, cond)
	w.args = append(w.args, args...)
}

func (w *where) sql() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}

func addIn[T ~string](w *where, col string, vals []T) {
	if len(vals) == 0 {
		return
	}
	args := make([]any, len(vals))
	for i, v := range vals {
		args[i] = string(v)
	}
	w.add(col+" IN ("+in(len(vals))+")", args...)
}

// ListInstances implements compute.InstanceStore.
func (s *Store) ListInstances(ctx context.Context, f compute.InstanceFilter) ([]*compute.Instance, error) {
	if err := s.usable(ctx); err != nil {
		return nil, err
	}
	var w where
	if f.Host != "" {
		w.add("host = ?", f.Host)
	}
	addIn(&w, "vm_state", f.VMStates)
	addIn(&w, "task_state", f.TaskStates)
	if f.WithTask {
		w.add("task_state <> ''")
	}
	return listRecords(ctx, s, "list instances", `SELECT uuid, `+instanceCols+` FROM instances`+w.sql()+` ORDER BY uuid`,
		w.args, func(row scanner) (*compute.Instance, error) {
			var id string
			return scanInstance(prefixed{row, &id}, &id, nil)
		})
}

// prefixed scans a leading uuid column before the record's columns.
type prefixed struct {
	row scanner
	id  *string
}

func (p prefixed) Scan(dest ...any) error { return p.row.Scan(append([]any{p.id}, dest...)...) }

// listRecords runs a query and scans each row with scan.
func listRecords[R any](ctx context.Context, s *Store, op, query string, args []any, scan func(scanner) (R, error)) ([]R, error) {
	rows, err := s.db.QueryContext(ctx, s.d.q(query), args...)
	if err != nil {
		return nil, s.wrap(op, err)
	}
	defer rows.Close()
	var out []R
	for rows.Next() {
		r, err := scan(rows)
		if err != nil {
			return nil, s.notFound(op, "", "", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, s.wrap(op, err)
	}
	return out, nil
}

// CreateInstance implements compute.InstanceStore.
func (s *Store) CreateInstance(ctx context.Context, inst *compute.Instance) error {
	if err := s.usable(ctx); err != nil {
		return err
	}
	if err := inst.Validate(); err != nil {
		return err
	}
	c := inst.Clone()
	now := s.stamp()
	c.CreatedAt, c.UpdatedAt = now, now
	rec, err := encode(compute.KindInstance, c.UUID, c)
	if err != nil {
		return err
	}
	err = s.inTx(ctx, "create instance", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.d.q(`INSERT INTO instances (uuid, host, vm_state, task_state, created_at, updated_at, record)
			VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`),
			c.UUID, c.Host, string(c.VMState), string(c.TaskState), nanos(now), nanos(now), rec)
		if err := oneRow(res, err); err != nil {
			return s.created(err, compute.KindInstance, c.UUID)
		}
		if c.TaskState != statemachine.TaskNone {
			return s.notifyTx(ctx, tx, c.UUID)
		}
		return nil
	})
	if err != nil {
		return err
	}
	inst.CreatedAt, inst.UpdatedAt = now, now
	s.wakeIf(c.TaskState != statemachine.TaskNone)
	return nil
}

// errNoRow is an UPDATE or INSERT that changed no row.
var errNoRow = errors.New("sqlstore: no row changed")

// oneRow checks that an Exec changed exactly one row.
func oneRow(res sql.Result, err error) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n != 1 {
		return errNoRow
	}
	return nil
}

// created turns an INSERT … ON CONFLICT DO NOTHING that inserted nothing
// into an *AlreadyExistsError.
func (s *Store) created(err error, kind, id string) error {
	if errors.Is(err, errNoRow) {
		return &compute.AlreadyExistsError{Kind: kind, ID: id}
	}
	return s.wrap("create "+kind, err)
}

func (s *Store) wakeIf(work bool) {
	if work {
		s.wakeLocal()
	}
}

// SaveInstance implements compute.InstanceStore: with expectedTaskStates
// the UPDATE's WHERE compares the stored task_state.
func (s *Store) SaveInstance(ctx context.Context, inst *compute.Instance, expectedTaskStates ...statemachine.TaskState) error {
	if err := s.usable(ctx); err != nil {
		return err
	}
	if err := inst.Validate(); err != nil {
		return err
	}
	for _, t := range expectedTaskStates {
		if !t.Valid() {
			return &compute.InvalidRecordError{Kind: compute.KindInstance, ID: inst.UUID, Field: "expected_task_state",
				Reason: "unknown value " + strconv.Quote(string(t))}
		}
	}
	c := inst.Clone()
	now := s.stamp()
	c.UpdatedAt = now
	rec, err := encode(compute.KindInstance, c.UUID, c)
	if err != nil {
		return err
	}
	var created int64
	err = s.inTx(ctx, "save instance", func(tx *sql.Tx) error {
		w := where{}
		w.add("uuid = ?", c.UUID)
		addIn(&w, "task_state", expectedTaskStates)
		args := append([]any{c.Host, string(c.VMState), string(c.TaskState), nanos(now), rec}, w.args...)
		err := tx.QueryRowContext(ctx, s.d.q(`UPDATE instances SET host = ?, vm_state = ?, task_state = ?, updated_at = ?, record = ?`+
			w.sql()+` RETURNING created_at`), args...).Scan(&created)
		if errors.Is(err, sql.ErrNoRows) {
			return s.saveInstanceRefused(ctx, tx, c.UUID, expectedTaskStates)
		}
		if err != nil {
			return s.wrap("save instance", err)
		}
		if c.TaskState != statemachine.TaskNone {
			return s.notifyTx(ctx, tx, c.UUID)
		}
		return nil
	})
	if err != nil {
		return err
	}
	inst.CreatedAt, inst.UpdatedAt = fromNanos(created), now
	s.wakeIf(c.TaskState != statemachine.TaskNone)
	return nil
}

// saveInstanceRefused says why a SaveInstance changed no row.
func (s *Store) saveInstanceRefused(ctx context.Context, tx *sql.Tx, uuid string, expected []statemachine.TaskState) error {
	var task string
	err := tx.QueryRowContext(ctx, s.d.q(`SELECT task_state FROM instances WHERE uuid = ?`), uuid).Scan(&task)
	if err != nil {
		return s.notFound("save instance", compute.KindInstance, uuid, err)
	}
	return &compute.UnexpectedTaskStateError{InstanceUUID: uuid,
		Expected: append([]statemachine.TaskState(nil), expected...), Actual: statemachine.TaskState(task)}
}

// GetMigration implements compute.MigrationStore.
func (s *Store) GetMigration(ctx context.Context, uuid string) (*compute.Migration, error) {
	if err := s.usable(ctx); err != nil {
		return nil, err
	}
	row := s.db.QueryRowContext(ctx, s.d.q(`SELECT `+migrationCols+` FROM migrations WHERE uuid = ?`), uuid)
	m, err := scanMigration(row, &uuid, nil)
	if err != nil {
		return nil, s.notFound("get migration", compute.KindMigration, uuid, err)
	}
	return m, nil
}

// ListMigrations implements compute.MigrationStore.
func (s *Store) ListMigrations(ctx context.Context, f compute.MigrationFilter) ([]*compute.Migration, error) {
	if err := s.usable(ctx); err != nil {
		return nil, err
	}
	var w where
	if f.InstanceUUID != "" {
		w.add("instance_uuid = ?", f.InstanceUUID)
	}
	addIn(&w, "status", f.Statuses)
	if f.SourceCompute != "" {
		w.add("source_compute = ?", f.SourceCompute)
	}
	if f.DestCompute != "" {
		w.add("dest_compute = ?", f.DestCompute)
	}
	if !f.UpdatedAtOrBefore.IsZero() {
		w.add("updated_at <= ?", nanos(f.UpdatedAtOrBefore))
	}
	if f.InProgress {
		w.add("in_progress = 1")
	}
	return listRecords(ctx, s, "list migrations", `SELECT uuid, `+migrationCols+` FROM migrations`+w.sql()+
		` ORDER BY created_at, uuid`, w.args, func(row scanner) (*compute.Migration, error) {
		var id string
		return scanMigration(prefixed{row, &id}, &id, nil)
	})
}

// migrationRow is the columns of a migration row.
func migrationRow(m *compute.Migration, rec string) []any {
	return []any{m.InstanceUUID, string(m.Status), string(m.Phase), m.SourceCompute, m.DestCompute,
		boolInt(m.Status.InProgress()), nanos(m.UpdatedAt), rec}
}

const insertMigration = `INSERT INTO migrations (uuid, created_at, instance_uuid, status, phase, source_compute, dest_compute,
	in_progress, updated_at, record) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`

// insertMigrationTx stores a new migration stamped now.
func (s *Store) insertMigrationTx(ctx context.Context, tx *sql.Tx, m *compute.Migration, now time.Time) error {
	m.CreatedAt, m.UpdatedAt = now, now
	rec, err := encode(compute.KindMigration, m.UUID, m)
	if err != nil {
		return err
	}
	res, err := tx.ExecContext(ctx, s.d.q(insertMigration), append([]any{m.UUID, nanos(now)}, migrationRow(m, rec)...)...)
	if err := oneRow(res, err); err != nil {
		return s.created(err, compute.KindMigration, m.UUID)
	}
	return s.notifyTx(ctx, tx, m.InstanceUUID)
}

// CreateMigration implements compute.MigrationStore.
func (s *Store) CreateMigration(ctx context.Context, m *compute.Migration) error {
	if err := s.usable(ctx); err != nil {
		return err
	}
	if err := m.Validate(); err != nil {
		return err
	}
	c := m.Clone()
	now := s.stamp()
	err := s.inTx(ctx, "create migration", func(tx *sql.Tx) error { return s.insertMigrationTx(ctx, tx, c, now) })
	if err != nil {
		return err
	}
	m.CreatedAt, m.UpdatedAt = now, now
	s.wakeLocal()
	return nil
}

const updateMigration = `UPDATE migrations SET instance_uuid = ?, status = ?, phase = ?, source_compute = ?,
	dest_compute = ?, in_progress = ?, updated_at = ?, record = ?`

// SaveMigration implements compute.MigrationStore: with expectedStatuses
// the UPDATE's WHERE compares the stored status.
func (s *Store) SaveMigration(ctx context.Context, m *compute.Migration, expectedStatuses ...statemachine.MigrationStatus) error {
	if err := s.usable(ctx); err != nil {
		return err
	}
	if err := m.Validate(); err != nil {
		return err
	}
	c := m.Clone()
	c.UpdatedAt = s.stamp()
	rec, err := encode(compute.KindMigration, c.UUID, c)
	if err != nil {
		return err
	}
	var created int64
	err = s.inTx(ctx, "save migration", func(tx *sql.Tx) error {
		w := where{}
		w.add("uuid = ?", c.UUID)
		addIn(&w, "status", expectedStatuses)
		err := tx.QueryRowContext(ctx, s.d.q(updateMigration+w.sql()+` RETURNING created_at`),
			append(migrationRow(c, rec), w.args...)...).Scan(&created)
		if errors.Is(err, sql.ErrNoRows) {
			return s.saveMigrationRefused(ctx, tx, c.UUID, expectedStatuses)
		}
		return s.wrap("save migration", err)
	})
	if err != nil {
		return err
	}
	m.CreatedAt, m.UpdatedAt = fromNanos(created), c.UpdatedAt
	return nil
}

// saveMigrationRefused says why a SaveMigration changed no row.
func (s *Store) saveMigrationRefused(ctx context.Context, tx *sql.Tx, uuid string, expected []statemachine.MigrationStatus) error {
	var status string
	err := tx.QueryRowContext(ctx, s.d.q(`SELECT status FROM migrations WHERE uuid = ?`), uuid).Scan(&status)
	if err != nil {
		return s.notFound("save migration", compute.KindMigration, uuid, err)
	}
	return &compute.UnexpectedMigrationStatusError{MigrationUUID: uuid,
		Expected: append([]statemachine.MigrationStatus(nil), expected...), Actual: statemachine.MigrationStatus(status)}
}
