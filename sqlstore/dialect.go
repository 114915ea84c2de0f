package sqlstore

import (
	"strconv"
	"strings"
)

// dialect holds everything that differs between SQLite and PostgreSQL; the
// statements are written once, with ? placeholders. Both databases take
// INSERT … ON CONFLICT DO NOTHING and UPDATE … RETURNING as they are.
type dialect struct {
	name   string // "sqlite" or "postgres"
	driver string // database/sql driver name
	// numbered rewrites ? into $1, $2, …
	numbered bool
	// forUpdate locks the rows a SELECT reads until the transaction ends;
	// SQLite's immediate transactions hold the database's write lock
	// instead.
	forUpdate string
	// skipLocked is the locking clause of ClaimWork: rows another
	// transaction holds are passed over.
	skipLocked string
	// clock is an expression of the database's clock in Unix nanoseconds;
	// empty when the database is embedded and shares the process's clock.
	clock string
	// lockSchema serializes concurrent Opens migrating the schema (before
	// its table exists: two CREATE TABLE IF NOT EXISTS at once can both
	// try to create it).
	lockSchema string
	// notify wakes the orchestrators waiting in Store.Wait; empty when the
	// database has no notifications.
	notify string
	// withUpdate is set when the database runs an UPDATE in a WITH
	// clause, so a step writes its instance and migration in one
	// statement (one round trip).
	withUpdate bool
}

var (
	sqliteDialect = dialect{name: "sqlite", driver: "sqlite3"}
	pgDialect     = dialect{
		name: "postgres", driver: "pgx", numbered: true,
		forUpdate:  " FOR UPDATE",
		skipLocked: " FOR UPDATE SKIP LOCKED",
		clock:      "CAST(EXTRACT(EPOCH FROM now()) * 1000000 AS BIGINT) * 1000",
		lockSchema: "SELECT pg_advisory_xact_lock(" + schemaLockKey + ")",
		notify:     "SELECT pg_notify('" + workChannel + "', ?)",
		withUpdate: true,
	}
)

// schemaLockKey is the PostgreSQL advisory lock of schema migrations.
const schemaLockKey = "7310245918"

// workChannel is the PostgreSQL notification channel of new work.
const workChannel = "xenflow_work"

// q returns the statement in the dialect's placeholders.
func (d dialect) q(stmt string) string {
	if !d.numbered {
		return stmt
	}
	var b strings.Builder
	n := 0
	for _, r := range stmt {
		if r == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// in returns "?, ?, …" for n values.
func in(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}
