package sqlstore

import (
	"context"
	"database/sql"
	"errors"

	"github.com/xenflow/xenflow/quota"
)

// QuotaStore is the quota.Store of a Store: each project's record is one
// row, read for update, changed by the ledger and written back in one
// transaction.
type QuotaStore struct{ s *Store }

var _ quota.Store = QuotaStore{}

// Quota returns the store's quota.Store, for quota.WithStore.
func (s *Store) Quota() QuotaStore { return QuotaStore{s} }

// Update implements quota.Store. Two Updates creating the same project at
// once both insert; the loser's transaction runs fn again on the winner's
// record.
func (q QuotaStore) Update(ctx context.Context, project string, fn func(*quota.ProjectQuota) error) error {
	s := q.s
	if err := s.usable(ctx); err != nil {
		return err
	}
	if fn == nil {
		return &quota.InputError{Op: "update", Field: "fn", Value: "nil", Err: quota.ErrInvalidOption}
	}
	return s.inTx(ctx, "update quota", func(tx *sql.Tx) error {
		pq, found, err := q.load(ctx, tx, project, s.d.forUpdate)
		if err != nil {
			return err
		}
		if err := fn(pq); err != nil {
			return err
		}
		rec, err := encode("quota", project, pq)
		if err != nil {
			return err
		}
		if found {
			_, err = tx.ExecContext(ctx, s.d.q(`UPDATE quota_projects SET record = ? WHERE project = ?`), rec, project)
			return s.wrap("update quota", err)
		}
		res, err := tx.ExecContext(ctx, s.d.q(`INSERT INTO quota_projects (project, record) VALUES (?, ?) ON CONFLICT DO NOTHING`),
			project, rec)
		return s.conflict("create quota", oneRow(res, err))
	})
}

// load reads a project's record, or a new one when it has none.
func (q QuotaStore) load(ctx context.Context, db interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, project, lock string) (*quota.ProjectQuota, bool, error) {
	s := q.s
	var rec string
	err := db.QueryRowContext(ctx, s.d.q(`SELECT record FROM quota_projects WHERE project = ?`+lock), project).Scan(&rec)
	if errors.Is(err, sql.ErrNoRows) {
		return &quota.ProjectQuota{Project: project}, false, nil
	}
	if err != nil {
		return nil, false, s.wrap("read quota", err)
	}
	pq := &quota.ProjectQuota{}
	return pq, true, decode("quota", project, rec, pq)
}

// View implements quota.Store: fn reads the last committed record.
func (q QuotaStore) View(ctx context.Context, project string, fn func(*quota.ProjectQuota) error) error {
	s := q.s
	if err := s.usable(ctx); err != nil {
		return err
	}
	if fn == nil {
		return &quota.InputError{Op: "view", Field: "fn", Value: "nil", Err: quota.ErrInvalidOption}
	}
	pq, found, err := q.load(ctx, s.db, project, "")
	if err != nil {
		return err
	}
	if !found {
		return &quota.InputError{Op: "view", Field: "project", Value: project, Err: quota.ErrUnknownProject}
	}
	return fn(pq)
}

// Projects implements quota.Store; the list is sorted.
func (q QuotaStore) Projects(ctx context.Context) ([]string, error) {
	s := q.s
	if err := s.usable(ctx); err != nil {
		return nil, err
	}
	return listRecords(ctx, s, "list quota projects", `SELECT project FROM quota_projects ORDER BY project`, nil,
		func(row scanner) (string, error) {
			var p string
			err := row.Scan(&p)
			return p, err
		})
}
