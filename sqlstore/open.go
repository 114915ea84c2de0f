package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	_ "github.com/ncruces/go-sqlite3/driver"
	_ "github.com/ncruces/go-sqlite3/embed" // the SQLite library, compiled to WebAssembly
)

// Store is a compute.Store over a SQL database; [Store.Quota] gives its
// quota.Store. It is safe for concurrent use, also by several processes
// sharing the database.
type Store struct {
	db   *sql.DB
	d    dialect
	path string // the SQLite file, for errors
	cfg  config
	// wake is closed and replaced when this process adds work, for Wait.
	mu   sync.Mutex
	wake chan struct{}
	// stmts holds the hot statements, prepared once per connection.
	stmtMu sync.Mutex
	stmts  map[string]*sql.Stmt
	// writeMu queues this process's SQLite write transactions: SQLite
	// runs one writer at a time, and a goroutine waiting on a mutex
	// costs nothing, while one waiting in SQLite's busy handler sleeps
	// and retries. Other processes still wait in the busy handler.
	writeMu sync.Mutex
	// cache spares a step decoding the records the step before wrote.
	cache caches
}

type config struct {
	now         func() time.Time
	busyTimeout time.Duration
	poll        time.Duration
	log         *slog.Logger
	fenceLog    bool
}

// idleConns is how many idle connections the pool keeps.
const idleConns = 32

// Option configures Open.
type Option func(*config)

// WithClock makes the store read time from now: the records' stamps and
// the leases' expiry. Without it stamps come from the process's clock and
// lease expiry from the database's (PostgreSQL's now(); for SQLite, the
// process's, which is the database's).
func WithClock(now func() time.Time) Option {
	return func(c *config) {
		if now != nil {
			c.now = now
		}
	}
}

// WithBusyTimeout sets how long a SQLite writer waits for another to finish
// before failing (default 10 s).
func WithBusyTimeout(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.busyTimeout = d
		}
	}
}

// WithPollInterval bounds how long Wait sleeps when no notification comes
// (default 1 s): leases that expire and other processes' SQLite writes are
// only seen by polling.
func WithPollInterval(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.poll = d
		}
	}
}

// WithLogger logs the store's schema migrations to l (silent by default).
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l != nil {
			c.log = l
		}
	}
}

// Open opens the database dsn names, applies the schema migrations it
// lacks and returns the store. "postgres://…" and "postgresql://…" open
// PostgreSQL; "file:…" or a plain path open (and create) a SQLite file.
// A file that is not SQLite gives a *NotDatabaseError, a schema newer than
// the code a *SchemaVersionError, a server that cannot be reached an
// *UnavailableError.
func Open(ctx context.Context, dsn string, opts ...Option) (*Store, error) {
	cfg := config{busyTimeout: 10 * time.Second, poll: time.Second, log: slog.New(discard{})}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	s := &Store{cfg: cfg, wake: make(chan struct{}), stmts: map[string]*sql.Stmt{}, cache: newCaches()}
	source, err := s.source(dsn)
	if err != nil {
		return nil, err
	}
	if s.db, err = sql.Open(s.d.driver, source); err != nil {
		return nil, &DSNError{DSN: dsn, Reason: err.Error()}
	}
	// Keep the connections concurrent callers open: the default of two
	// idle connections makes PostgreSQL start a backend per burst.
	s.db.SetMaxIdleConns(idleConns)
	if err := s.db.PingContext(ctx); err != nil {
		s.db.Close()
		return nil, s.wrap("connect", err)
	}
	if err := s.migrate(ctx); err != nil {
		s.db.Close()
		return nil, err
	}
	s.cfg.log.Debug("sqlstore: opened", "backend", s.d.name, "schema", SchemaVersion)
	return s, nil
}

// source picks the dialect for dsn and returns the driver's data source.
func (s *Store) source(dsn string) (string, error) {
	switch {
	case dsn == "":
		return "", &DSNError{DSN: dsn, Reason: "empty"}
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		s.d = pgDialect
		return dsn, nil
	case strings.Contains(dsn, "://"):
		return "", &DSNError{DSN: dsn, Reason: "unknown scheme: want postgres:// or a SQLite file"}
	}
	s.d = sqliteDialect
	path, query, _ := strings.Cut(strings.TrimPrefix(dsn, "file:"), "?")
	s.path = path
	v, err := url.ParseQuery(query)
	if err != nil {
		return "", &DSNError{DSN: dsn, Reason: err.Error()}
	}
	if !v.Has("_txlock") {
		v.Set("_txlock", "immediate")
	}
	v.Add("_pragma", "busy_timeout("+itoa(s.cfg.busyTimeout.Milliseconds())+")")
	v.Add("_pragma", "journal_mode(wal)")
	v.Add("_pragma", "synchronous(normal)")
	return "file:" + path + "?" + v.Encode(), nil
}

// Close closes the database.
func (s *Store) Close() error {
	if s == nil || s.db == nil {
		return ErrClosed
	}
	s.stmtMu.Lock()
	for q, st := range s.stmts {
		st.Close()
		delete(s.stmts, q)
	}
	s.stmtMu.Unlock()
	return s.db.Close()
}

// prepared returns the statement query (in ? placeholders) prepared on
// tx's connection, preparing it once per connection: SQLite then parses
// the hot statements of a step once, not on every call.
func (s *Store) prepared(ctx context.Context, tx *sql.Tx, query string) (*sql.Stmt, error) {
	s.stmtMu.Lock()
	st, ok := s.stmts[query]
	s.stmtMu.Unlock()
	if !ok {
		var err error
		if st, err = s.db.PrepareContext(ctx, s.d.q(query)); err != nil {
			return nil, err
		}
		s.stmtMu.Lock()
		if prev, ok := s.stmts[query]; ok {
			st.Close()
			st = prev
		} else {
			s.stmts[query] = st
		}
		s.stmtMu.Unlock()
	}
	return tx.StmtContext(ctx, st), nil
}

// execPrepared runs a prepared statement in tx.
func (s *Store) execPrepared(ctx context.Context, tx *sql.Tx, query string, args ...any) (sql.Result, error) {
	st, err := s.prepared(ctx, tx, query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

// queryRowPrepared runs a prepared query of one row in tx; a statement
// that cannot be prepared reports its error through the row.
func (s *Store) queryRowPrepared(ctx context.Context, tx *sql.Tx, query string, args ...any) *sql.Row {
	st, err := s.prepared(ctx, tx, query)
	if err != nil {
		return tx.QueryRowContext(ctx, s.d.q(query), args...)
	}
	return st.QueryRowContext(ctx, args...)
}

// DB returns the database handle, for a caller that backs up or inspects
// the database.
func (s *Store) DB() *sql.DB { return s.db }

// Backend names the database: "sqlite" or "postgres".
func (s *Store) Backend() string { return s.d.name }

// usable refuses a nil store and a done context.
func (s *Store) usable(ctx context.Context) error {
	if s == nil || s.db == nil {
		return ErrClosed
	}
	return ctx.Err()
}

// inTx runs fn in one transaction and commits when it returns nil; it runs
// fn again when the database reports a conflict it resolves by retrying.
func (s *Store) inTx(ctx context.Context, op string, fn func(tx *sql.Tx) error) error {
	const attempts = 10
	if s.d.name == sqliteDialect.name {
		s.writeMu.Lock()
		defer s.writeMu.Unlock()
	}
	for i := 1; ; i++ {
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			return s.wrap(op, err)
		}
		if err = fn(tx); err == nil {
			err = s.wrap(op+": commit", tx.Commit())
		} else {
			_ = tx.Rollback()
		}
		if err == nil || !errors.Is(err, errRetry) || i == attempts {
			return err
		}
	}
}

// stamp returns the time records are stamped with.
func (s *Store) stamp() time.Time {
	if s.cfg.now != nil {
		return s.cfg.now().UTC()
	}
	return time.Now().UTC()
}

// clock returns the SQL expression of the leases' clock in Unix
// nanoseconds and its arguments: the injected or process clock as a
// parameter, or the database's own.
func (s *Store) clock() (string, []any) {
	if s.cfg.now == nil && s.d.clock != "" {
		return s.d.clock, nil
	}
	return "CAST(? AS BIGINT)", []any{s.stamp().UnixNano()}
}

// notifyTx tells waiting orchestrators that the instance has work, when
// the transaction commits.
func (s *Store) notifyTx(ctx context.Context, tx *sql.Tx, instanceUUID string) error {
	if s.d.notify == "" {
		return nil
	}
	_, err := tx.ExecContext(ctx, s.d.q(s.d.notify), instanceUUID)
	return s.wrap("notify", err)
}

// wakeLocal wakes this process's waiters.
func (s *Store) wakeLocal() {
	s.mu.Lock()
	close(s.wake)
	s.wake = make(chan struct{})
	s.mu.Unlock()
}

type discard struct{}

func (discard) Enabled(context.Context, slog.Level) bool  { return false }
func (discard) Handle(context.Context, slog.Record) error { return nil }
func (d discard) WithAttrs([]slog.Attr) slog.Handler      { return d }
func (d discard) WithGroup(string) slog.Handler           { return d }
