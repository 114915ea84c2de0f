package sqlstore_test

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/compute/computetest"
	"github.com/xenflow/xenflow/sqlstore"
	"github.com/xenflow/xenflow/statemachine"
)

// instanceTables lists the tables keyed by instance: every table with an
// instance_uuid column, and instances itself (keyed by uuid).
func instanceTables(t *testing.T, s *sqlstore.Store) map[string]string {
	t.Helper()
	q := `SELECT m.name FROM sqlite_master m, pragma_table_info(m.name) c
		WHERE m.type = 'table' AND c.name = 'instance_uuid'`
	if s.Backend() == "postgres" {
		q = `SELECT table_name FROM information_schema.columns
			WHERE table_schema = current_schema() AND column_name = 'instance_uuid'`
	}
	rows, err := s.DB().Query(q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]string{"instances": "uuid"}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		out[name] = "instance_uuid"
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// rowsOf counts the rows of instance uuid in every table keyed by
// instance.
func rowsOf(t *testing.T, s *sqlstore.Store, uuid string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for table, col := range instanceTables(t, s) {
		var n int
		q := "SELECT COUNT(*) FROM " + table + " WHERE " + col + " = ?"
		if s.Backend() == "postgres" {
			q = "SELECT COUNT(*) FROM " + table + " WHERE " + col + " = $1"
		}
		if err := s.DB().QueryRow(q, uuid).Scan(&n); err != nil && err != sql.ErrNoRows {
			t.Fatalf("%s: %v", table, err)
		}
		out[table] = n
	}
	return out
}

// TestDestroyInstanceDurable destroys an instance with a migration, an
// action, a fault and a lease in the fence log, closes the database and
// opens it again: no table keyed by instance holds a row of it, the other
// instance's rows stay, and the instance can be created again.
func TestDestroyInstanceDurable(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			dsn := b.dsn(t)
			s, err := sqlstore.Open(ctx, dsn, sqlstore.WithFenceLog())
			if err != nil {
				t.Fatal(err)
			}
			for _, id := range []string{"gone", "kept"} {
				fill(t, s, id)
			}
			kept := rowsOf(t, s, "kept")
			if got := rowsOf(t, s, "gone"); got["instances"] != 1 || got["migrations"] != 1 ||
				got["instance_actions"] != 1 || got["instance_faults"] != 1 || got["fence_log"] != 1 {
				t.Fatalf("before the destroy: %v", got)
			}
			if err := s.DestroyInstance(ctx, "gone"); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = openStore(t, dsn, sqlstore.WithFenceLog())
			for table, n := range rowsOf(t, s, "gone") {
				if n != 0 {
					t.Errorf("after reopening: %d rows of the destroyed instance in %s", n, table)
				}
			}
			for table, n := range rowsOf(t, s, "kept") {
				if n != kept[table] {
					t.Errorf("after reopening: the other instance has %d rows in %s, had %d", n, table, kept[table])
				}
			}
			if err := s.CreateInstance(ctx, computetest.Instance("gone")); err != nil {
				t.Fatalf("create again: %v", err)
			}
		})
	}
}

// fill stores an instance with a migration, an action and a fault.
func fill(t *testing.T, s *sqlstore.Store, id string) {
	t.Helper()
	ctx := context.Background()
	steps := []func() error{
		func() error { return s.CreateInstance(ctx, computetest.Instance(id)) },
		func() error { return s.CreateMigration(ctx, computetest.Migration("m-"+id, id)) },
		func() error {
			return s.CreateAction(ctx, &compute.InstanceAction{RequestID: "r-" + id, InstanceUUID: id,
				Action: statemachine.ActionResize})
		},
		func() error { return s.AddFault(ctx, &compute.Fault{InstanceUUID: id, Code: 500, Message: "boom"}) },
		func() error {
			_, err := s.AcquireLease(ctx, compute.LeaseRequest{InstanceUUID: id, Owner: "o", TTL: time.Minute})
			return err
		},
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("%s step %d: %v", id, i, err)
		}
	}
}
