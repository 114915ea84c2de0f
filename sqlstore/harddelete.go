package sqlstore

import (
	"context"
	"database/sql"

	"github.com/xenflow/xenflow/compute"
)

var _ compute.InstanceDestroyer = (*Store)(nil)

// destroyStatements delete an instance's rows, one statement per table
// keyed by instance (sqlstore/schema.go): the instance row (which holds
// its lease) first, as Transition locks it first, then its migrations,
// instance actions (with their events), faults and fence log.
var destroyStatements = []struct{ table, stmt string }{
	{"instances", `DELETE FROM instances WHERE uuid = ?`},
	{"migrations", `DELETE FROM migrations WHERE instance_uuid = ?`},
	{"instance_actions", `DELETE FROM instance_actions WHERE instance_uuid = ?`},
	{"instance_faults", `DELETE FROM instance_faults WHERE instance_uuid = ?`},
	{"fence_log", `DELETE FROM fence_log WHERE instance_uuid = ?`},
}

// DestroyInstance implements compute.InstanceDestroyer: the instance and
// every row of it are deleted in one transaction; an instance that does
// not exist is no error.
func (s *Store) DestroyInstance(ctx context.Context, uuid string) error {
	if err := s.usable(ctx); err != nil {
		return err
	}
	if uuid == "" {
		return &compute.InvalidRecordError{Kind: compute.KindInstance, Field: "uuid", Reason: "empty"}
	}
	return s.inTx(ctx, "destroy instance", func(tx *sql.Tx) error {
		for _, d := range destroyStatements {
			if _, err := tx.ExecContext(ctx, s.d.q(d.stmt), uuid); err != nil {
				return s.wrap("destroy instance: "+d.table, err)
			}
		}
		return nil
	})
}
