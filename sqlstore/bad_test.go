package sqlstore_test

import (
	"context"
	"database/sql"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/compute/computetest"
	"github.com/xenflow/xenflow/sqlstore"
	"github.com/xenflow/xenflow/statemachine"
)

// refusedDSN is a PostgreSQL address nothing listens on.
func refusedDSN(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "postgres://postgres@" + addr + "/postgres?sslmode=disable&connect_timeout=5"
}

// copyFixture copies a testdata file into a temporary directory.
func copyFixture(t *testing.T, name string) string {
	src, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	path := filepath.Join(t.TempDir(), name)
	dst, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestOpenBadDatabases(t *testing.T) {
	cases := []struct {
		name  string
		dsn   func(t *testing.T) string
		check func(t *testing.T, err error)
	}{
		{"not a SQLite file", func(t *testing.T) string { return copyFixture(t, "not-sqlite.db") }, func(t *testing.T, err error) {
			var e *sqlstore.NotDatabaseError
			if !errors.As(err, &e) || !errors.Is(err, sqlstore.ErrNotDatabase) || filepath.Base(e.Path) != "not-sqlite.db" {
				t.Fatalf("error %v (%T), want a *NotDatabaseError naming the file", err, err)
			}
		}},
		{"newer SQLite schema", func(t *testing.T) string {
			return bumpSchema(t, filepath.Join(t.TempDir(), "state.db"))
		}, wantSchemaVersion},
		{"newer PostgreSQL schema", func(t *testing.T) string { return bumpSchema(t, pgDSN(t)) }, wantSchemaVersion},
		{"connection refused", refusedDSN, func(t *testing.T, err error) {
			var e *sqlstore.UnavailableError
			if !errors.As(err, &e) || !errors.Is(err, sqlstore.ErrUnavailable) || e.Backend != "postgres" {
				t.Fatalf("error %v (%T), want a *UnavailableError", err, err)
			}
		}},
		{"unknown scheme", func(*testing.T) string { return "mysql://db/x" }, wantDSN},
		{"empty", func(*testing.T) string { return "" }, wantDSN},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := sqlstore.Open(context.Background(), c.dsn(t))
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			c.check(t, err)
		})
	}
}

// bumpSchema opens dsn, then records a schema version one newer than the
// code's, as a newer binary would.
func bumpSchema(t *testing.T, dsn string) string {
	s := openStore(t, dsn)
	stmt := "INSERT INTO xenflow_schema (version) VALUES (?)"
	if s.Backend() == "postgres" {
		stmt = "INSERT INTO xenflow_schema (version) VALUES ($1)"
	}
	if _, err := s.DB().Exec(stmt, sqlstore.SchemaVersion+1); err != nil {
		t.Fatal(err)
	}
	s.Close()
	return dsn
}

func wantSchemaVersion(t *testing.T, err error) {
	var e *sqlstore.SchemaVersionError
	if !errors.As(err, &e) || e.Database != sqlstore.SchemaVersion+1 || e.Code != sqlstore.SchemaVersion {
		t.Fatalf("error %v (%T), want a *SchemaVersionError %d > %d", err, err, sqlstore.SchemaVersion+1, sqlstore.SchemaVersion)
	}
}

func wantDSN(t *testing.T, err error) {
	if !errors.Is(err, sqlstore.ErrBadDSN) {
		t.Fatalf("error %v (%T), want a *DSNError", err, err)
	}
}

// TestReopenKeepsRecords: a SQLite file opened again holds what was
// written, and Open migrates an existing file without touching it.
func TestReopenKeepsRecords(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s := openStore(t, path)
	ctx := context.Background()
	if err := s.CreateInstance(ctx, computetest.Instance("i1")); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openStore(t, "file:"+path)
	inst, err := s.GetInstance(ctx, "i1")
	if err != nil || inst.Flavor.MemoryMB != 2048 {
		t.Fatalf("after reopening: %+v, %v", inst, err)
	}
}

// TestDatabaseGoesAway ends the PostgreSQL session of a step while the
// step runs: the step fails with an *UnavailableError and nothing of it is
// stored; the same step succeeds once retried.
func TestDatabaseGoesAway(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, pgDSN(t))
	lease := resizePrep(t, s)
	admin, err := sql.Open("pgx", pgAdminDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	kill := func(_ *compute.Instance, _ *compute.Migration) error {
		// End every other session of this schema's store: the one
		// running this step among them.
		_, err := admin.ExecContext(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
			WHERE pid <> pg_backend_pid() AND datname = 'postgres' AND state = 'idle in transaction'`)
		return err
	}
	_, _, err = s.Transition(ctx, compute.TransitionRequest{InstanceUUID: "i1", MigrationUUID: "m1",
		Expect: preMigrating, Lease: lease, Apply: func(inst *compute.Instance, mig *compute.Migration) error {
			if err := kill(inst, mig); err != nil {
				return err
			}
			inst.TaskState, mig.Status = statemachine.TaskResizeMigrating, statemachine.MigrationMigrating
			return nil
		}})
	if !errors.Is(err, sqlstore.ErrUnavailable) {
		t.Fatalf("step on a lost connection: %v (%T), want an *UnavailableError", err, err)
	}
	inst, _ := s.GetInstance(ctx, "i1")
	mig, _ := s.GetMigration(ctx, "m1")
	if got := inst.FlowState(mig); got != preMigrating {
		t.Fatalf("after the lost step the store holds %s, want %s", got, preMigrating)
	}
	if _, _, err := s.Transition(ctx, compute.TransitionRequest{InstanceUUID: "i1", MigrationUUID: "m1",
		Expect: preMigrating, Lease: lease, Apply: toMigrating}); err != nil {
		t.Fatalf("the retried step: %v", err)
	}
}

func pgAdminDSN() string {
	return pg.URL("postgres", "")
}

var preMigrating = statemachine.FlowState{VM: statemachine.VMActive, Task: statemachine.TaskResizePrep,
	Migration: statemachine.MigrationPreMigrating}

// migrating is the state toMigrating writes.
var migrating = statemachine.FlowState{VM: statemachine.VMActive, Task: statemachine.TaskResizeMigrating,
	Migration: statemachine.MigrationMigrating}

func toMigrating(inst *compute.Instance, mig *compute.Migration) error {
	inst.TaskState, mig.Status = statemachine.TaskResizeMigrating, statemachine.MigrationMigrating
	return nil
}

// resizePrep stores instance i1 in resize_prep with migration m1 and
// returns owner o1's lease on it.
func resizePrep(t testing.TB, s compute.Store) compute.Lease {
	t.Helper()
	ctx := context.Background()
	inst := computetest.Instance("i1")
	inst.TaskState = statemachine.TaskResizePrep
	if err := s.CreateInstance(ctx, inst); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateMigration(ctx, computetest.Migration("m1", "i1")); err != nil {
		t.Fatal(err)
	}
	l, err := s.AcquireLease(ctx, compute.LeaseRequest{InstanceUUID: "i1", Owner: "o1", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestCorruptRecord: a row whose JSON cannot be decoded gives a
// *CorruptRecordError naming the record, on every backend.
func TestCorruptRecord(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			s := openStore(t, b.dsn(t))
			if err := s.CreateInstance(ctx, computetest.Instance("i1")); err != nil {
				t.Fatal(err)
			}
			stmt := "UPDATE instances SET record = '{not json' WHERE uuid = ?"
			if s.Backend() == "postgres" {
				stmt = "UPDATE instances SET record = '{not json' WHERE uuid = $1"
			}
			if _, err := s.DB().ExecContext(ctx, stmt, "i1"); err != nil {
				t.Fatal(err)
			}
			_, err := s.GetInstance(ctx, "i1")
			var e *sqlstore.CorruptRecordError
			if !errors.As(err, &e) || e.ID != "i1" || e.Kind != compute.KindInstance {
				t.Fatalf("GetInstance of a corrupt row: %v (%T), want a *CorruptRecordError for i1", err, err)
			}
			if _, err := s.ListInstances(ctx, compute.InstanceFilter{}); !errors.As(err, &e) || e.ID != "i1" {
				t.Fatalf("ListInstances with a corrupt row: %v", err)
			}
		})
	}
}
