package sqlstore

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/xenflow/xenflow/compute"
)

func TestSchemaVersionCountsMigrations(t *testing.T) {
	if SchemaVersion != len(migrations) {
		t.Fatalf("SchemaVersion %d, but there are %d migrations", SchemaVersion, len(migrations))
	}
}

func TestDialectPlaceholders(t *testing.T) {
	cases := []struct {
		d    dialect
		in   string
		want string
	}{
		{sqliteDialect, "a = ? AND b IN (?, ?)", "a = ? AND b IN (?, ?)"},
		{pgDialect, "a = ? AND b IN (?, ?)", "a = $1 AND b IN ($2, $3)"},
		{pgDialect, "no placeholders", "no placeholders"},
	}
	for _, c := range cases {
		if got := c.d.q(c.in); got != c.want {
			t.Errorf("%s: q(%q) = %q, want %q", c.d.name, c.in, got, c.want)
		}
	}
}

// TestSchemaUpgrade: a database an earlier release made (schema version
// 1, with a record in it) opens with this code, which applies the later
// migrations: the record is kept and the fence log works.
func TestSchemaUpgrade(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v1.db")
	db, err := sql.Open("sqlite3", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	stmts := append(append([]string{}, migrations[0]...), `CREATE TABLE xenflow_schema (version INTEGER NOT NULL)`,
		`INSERT INTO xenflow_schema (version) VALUES (1)`,
		`INSERT INTO instances (uuid, host, vm_state, task_state, created_at, updated_at, record)
			VALUES ('i1', 'h', 'active', '', 1, 1, '{"UUID":"i1","Host":"h","VMState":"active"}')`)
	for _, stmt := range stmts {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	s, err := Open(ctx, path, WithFenceLog())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var v int
	if err := s.DB().QueryRowContext(ctx, `SELECT MAX(version) FROM xenflow_schema`).Scan(&v); err != nil || v != SchemaVersion {
		t.Fatalf("schema version %d (%v), want %d", v, err, SchemaVersion)
	}
	if inst, err := s.GetInstance(ctx, "i1"); err != nil || inst.Host != "h" {
		t.Fatalf("the version 1 record: %+v, %v", inst, err)
	}
	if _, err := s.AcquireLease(ctx, compute.LeaseRequest{InstanceUUID: "i1", Owner: "o", TTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
	if log, err := s.FenceLog(ctx, "i1"); err != nil || len(log) != 1 || log[0].Fence != 1 {
		t.Fatalf("fence log after the upgrade: %+v, %v", log, err)
	}
}
