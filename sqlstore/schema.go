package sqlstore

import (
	"context"
	"database/sql"
)

// migrations are the schema's versions: migrations[i] takes the schema from
// version i to i+1. Only append; never edit a released one.
var migrations = [][]string{
	{
		`CREATE TABLE instances (
			uuid TEXT PRIMARY KEY,
			host TEXT NOT NULL,
			vm_state TEXT NOT NULL,
			task_state TEXT NOT NULL,
			created_at BIGINT NOT NULL,
			updated_at BIGINT NOT NULL,
			lease_owner TEXT NOT NULL DEFAULT '',
			lease_fence BIGINT NOT NULL DEFAULT 0,
			lease_expires BIGINT NOT NULL DEFAULT 0,
			record TEXT NOT NULL)`,
		`CREATE INDEX instances_task_state ON instances (task_state)`,
		`CREATE TABLE migrations (
			uuid TEXT PRIMARY KEY,
			instance_uuid TEXT NOT NULL,
			status TEXT NOT NULL,
			phase TEXT NOT NULL,
			source_compute TEXT NOT NULL,
			dest_compute TEXT NOT NULL,
			in_progress INTEGER NOT NULL,
			created_at BIGINT NOT NULL,
			updated_at BIGINT NOT NULL,
			record TEXT NOT NULL)`,
		`CREATE INDEX migrations_instance ON migrations (instance_uuid)`,
		`CREATE TABLE instance_actions (
			instance_uuid TEXT NOT NULL,
			request_id TEXT NOT NULL,
			seq BIGINT NOT NULL,
			record TEXT NOT NULL,
			PRIMARY KEY (instance_uuid, request_id))`,
		`CREATE TABLE instance_faults (
			instance_uuid TEXT NOT NULL,
			seq BIGINT NOT NULL,
			record TEXT NOT NULL)`,
		`CREATE INDEX instance_faults_instance ON instance_faults (instance_uuid, seq)`,
		`CREATE TABLE quota_projects (
			project TEXT PRIMARY KEY,
			record TEXT NOT NULL)`,
	},
	{
		// The fence log (WithFenceLog): every lease granted with a new
		// fence and every step written under one, in commit order per
		// instance.
		`CREATE TABLE fence_log (
			instance_uuid TEXT NOT NULL,
			seq BIGINT NOT NULL,
			kind TEXT NOT NULL,
			owner TEXT NOT NULL,
			fence BIGINT NOT NULL,
			state TEXT NOT NULL,
			at BIGINT NOT NULL,
			PRIMARY KEY (instance_uuid, seq))`,
	},
}

// SchemaVersion is the newest schema version this code knows: the number
// of migrations (a test keeps the two equal).
const SchemaVersion = 2

// migrate brings the schema to SchemaVersion in one transaction, or
// refuses a newer one.
func (s *Store) migrate(ctx context.Context) error {
	return s.inTx(ctx, "migrate schema", func(tx *sql.Tx) error {
		if s.d.lockSchema != "" {
			if _, err := tx.ExecContext(ctx, s.d.lockSchema); err != nil {
				return s.wrap("lock the schema", err)
			}
		}
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS xenflow_schema (version INTEGER NOT NULL)`); err != nil {
			return s.wrap("create the schema table", err)
		}
		var v int
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM xenflow_schema`).Scan(&v); err != nil {
			return s.wrap("read the schema version", err)
		}
		if v > SchemaVersion {
			return &SchemaVersionError{Database: v, Code: SchemaVersion}
		}
		for ; v < SchemaVersion; v++ {
			for _, stmt := range migrations[v] {
				if _, err := tx.ExecContext(ctx, stmt); err != nil {
					return s.wrap("migrate the schema", err)
				}
			}
			if _, err := tx.ExecContext(ctx, s.d.q(`INSERT INTO xenflow_schema (version) VALUES (?)`), v+1); err != nil {
				return s.wrap("record the schema version", err)
			}
		}
		return nil
	})
}
