package sqlstore_test

import (
	"os"
	"testing"

	"github.com/xenflow/xenflow/sqlstore/sqlstoretest"
)

// pg is the PostgreSQL server the test binary starts once.
var pg *sqlstoretest.Postgres

func TestMain(m *testing.M) {
	pg = sqlstoretest.Start()
	code := m.Run()
	pg.Stop()
	os.Exit(code)
}

// pgDSN returns the DSN of a fresh, empty schema of the test server, or
// skips (fails under CI=true) when there is no server.
func pgDSN(tb testing.TB) string {
	tb.Helper()
	return pg.DSN(tb)
}
