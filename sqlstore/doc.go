// Package sqlstore keeps xenflow's state in a SQL database: it implements
// compute.Store (instances, migrations, instance actions, faults, atomic
// flow transitions and leases) and quota.Store over database/sql, with one
// schema and one set of statements for two databases.
//
//   - SQLite is the embedded default: one file, no server, no cgo
//     (github.com/ncruces/go-sqlite3), opened in WAL mode with immediate
//     transactions and a busy timeout, so writers queue instead of failing
//     (within one process on a mutex). It runs with synchronous=NORMAL: a
//     commit survives the crash of any process (the WAL is written before
//     the commit returns), but not a power loss or an operating-system
//     crash, which may take the last commits before it — never the file's
//     consistency — since the WAL is synced only at checkpoints. A disk
//     that fills up or fails under a step gives an *UnavailableError and
//     writes nothing of it.
//   - PostgreSQL (github.com/jackc/pgx/v5 through database/sql) serves
//     several orchestrators on several machines: rows are locked with
//     SELECT … FOR UPDATE, [Store.ClaimWork] hands out unleased operations
//     with FOR UPDATE SKIP LOCKED, lease expiry is read from the database's
//     clock, and [Store.Wait] wakes an idle orchestrator with LISTEN/NOTIFY.
//
// [Open] picks the database from the DSN: "postgres://…" or
// "postgresql://…" is PostgreSQL, anything else ("state.db", "file:…") a
// SQLite file. The schema is versioned; Open applies the migrations the
// database lacks and refuses, with a *SchemaVersionError, a database whose
// schema is newer than the code.
//
// Each record is a row: the fields the stores compare and query (state,
// host, status, phase, stamps, the lease and its fence) are columns, and
// the whole record is kept as JSON beside them, so a field added to
// compute.Instance or compute.Migration is stored without a schema change.
// Compare-and-set is UPDATE … WHERE <expected state> AND lease_fence = ?,
// and every change of several rows is one transaction, so a failed step
// writes nothing. A step reads its instance and migration in one
// statement, and takes the records the step before it wrote from a cache
// keyed by their stored text instead of decoding them again.
//
// [WithFenceLog] keeps a fence log: every lease granted with a new fence
// and every step written under one, in the same transaction.
// [CheckFenceLog] proves from it that no step was written by an owner
// whose lease had passed on to another — the check examples/resize's
// many-orchestrators test makes after killing one of three orchestrators. Nova keeps the same records in its instances, migrations,
// instance_actions(_events) and instance_faults tables
// (nova/db/main/models.py).
package sqlstore
