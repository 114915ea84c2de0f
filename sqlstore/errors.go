package sqlstore

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/ncruces/go-sqlite3"
)

// Sentinels to test errors with errors.Is.
var (
	// ErrUnavailable matches every *UnavailableError.
	ErrUnavailable = errors.New("sqlstore: database unavailable")
	// ErrNotDatabase matches every *NotDatabaseError.
	ErrNotDatabase = errors.New("sqlstore: not a database")
	// ErrSchemaVersion matches every *SchemaVersionError.
	ErrSchemaVersion = errors.New("sqlstore: schema version")
	// ErrCorruptRecord matches every *CorruptRecordError.
	ErrCorruptRecord = errors.New("sqlstore: corrupt record")
	// ErrBadDSN matches every *DSNError.
	ErrBadDSN = errors.New("sqlstore: bad data source name")
	// ErrClosed is returned by the methods of a closed or nil Store.
	ErrClosed = errors.New("sqlstore: store closed")
)

// UnavailableError says that the database could not be reached (connection
// refused) or went away during Op (connection lost, server shut down; a
// SQLite file whose disk is full, that cannot be written or opened). A
// step that fails this way wrote nothing and can be retried once the
// database is back.
type UnavailableError struct {
	Backend string // "sqlite" or "postgres"
	Op      string
	Err     error
}

// Error implements the error interface.
func (e *UnavailableError) Error() string {
	return fmt.Sprintf("sqlstore: %s: %s: database unavailable: %v", e.Backend, e.Op, e.Err)
}

// Unwrap returns the cause.
func (e *UnavailableError) Unwrap() error { return e.Err }

// Is makes the error match ErrUnavailable.
func (e *UnavailableError) Is(target error) bool { return target == ErrUnavailable }

// NotDatabaseError says that Path exists but is not a SQLite database.
type NotDatabaseError struct {
	Path string
	Err  error
}

// Error implements the error interface.
func (e *NotDatabaseError) Error() string {
	return fmt.Sprintf("sqlstore: %s is not a SQLite database: %v", e.Path, e.Err)
}

// Unwrap returns the cause.
func (e *NotDatabaseError) Unwrap() error { return e.Err }

// Is makes the error match ErrNotDatabase.
func (e *NotDatabaseError) Is(target error) bool { return target == ErrNotDatabase }

// SchemaVersionError refuses a database whose schema (Database) is newer
// than the newest this code knows (Code): an older binary must not write
// records it does not understand.
type SchemaVersionError struct {
	Database int
	Code     int
}

// Error implements the error interface.
func (e *SchemaVersionError) Error() string {
	return fmt.Sprintf("sqlstore: the database's schema is version %d, newer than this code's %d", e.Database, e.Code)
}

// Is makes the error match ErrSchemaVersion.
func (e *SchemaVersionError) Is(target error) bool { return target == ErrSchemaVersion }

// CorruptRecordError says that the stored record of Kind with ID could not
// be decoded.
type CorruptRecordError struct {
	Kind string
	ID   string
	Err  error
}

// Error implements the error interface.
func (e *CorruptRecordError) Error() string {
	return fmt.Sprintf("sqlstore: stored %s %s cannot be decoded: %v", e.Kind, e.ID, e.Err)
}

// Unwrap returns the cause.
func (e *CorruptRecordError) Unwrap() error { return e.Err }

// Is makes the error match ErrCorruptRecord.
func (e *CorruptRecordError) Is(target error) bool { return target == ErrCorruptRecord }

// DSNError says why a data source name cannot be opened.
type DSNError struct {
	DSN    string
	Reason string
}

// Error implements the error interface.
func (e *DSNError) Error() string {
	return fmt.Sprintf("sqlstore: data source %q: %s", e.DSN, e.Reason)
}

// Is makes the error match ErrBadDSN.
func (e *DSNError) Is(target error) bool { return target == ErrBadDSN }

// errRetry asks inTx to run the transaction again.
var errRetry = errors.New("sqlstore: transaction conflict, retry")

// wrap turns a database error of op into the package's errors: a context's
// error as it is, a lost or refused connection an *UnavailableError, a
// PostgreSQL serialization failure or deadlock errRetry, anything else
// wrapped with op.
func (s *Store) wrap(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return err
	case retryable(err):
		return fmt.Errorf("%w: %s: %w", errRetry, op, err)
	case errors.Is(err, sqlite3.NOTADB):
		return &NotDatabaseError{Path: s.path, Err: err}
	case unavailable(err):
		return &UnavailableError{Backend: s.d.name, Op: op, Err: err}
	}
	return fmt.Errorf("sqlstore: %s: %s: %w", s.d.name, op, err)
}

func retryable(err error) bool {
	var pg *pgconn.PgError
	return errors.As(err, &pg) && (pg.Code == "40001" || pg.Code == "40P01")
}

// unavailable reports whether err says the database is out of reach: a
// network error, a connection closed under the client, PostgreSQL's
// connection-exception (08) and operator-intervention (57P) classes, or a
// SQLite file that can no longer be written or opened (disk full, I/O
// error, read-only, cannot open).
func unavailable(err error) bool {
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		return strings.HasPrefix(pg.Code, "08") || strings.HasPrefix(pg.Code, "57P")
	}
	for _, code := range []sqlite3.ErrorCode{sqlite3.FULL, sqlite3.IOERR, sqlite3.READONLY, sqlite3.CANTOPEN} {
		if errors.Is(err, code) {
			return true
		}
	}
	var ne net.Error
	var ce *pgconn.ConnectError
	return errors.As(err, &ne) || errors.As(err, &ce) || errors.Is(err, driver.ErrBadConn) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || pgconn.Timeout(err) ||
		strings.Contains(err.Error(), "conn closed")
}
