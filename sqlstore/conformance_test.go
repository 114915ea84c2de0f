package sqlstore_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/compute/computetest"
	"github.com/xenflow/xenflow/sqlstore"
)

// backends opens a fresh store of each kind on the test's clock.
var backends = []struct {
	name string
	dsn  func(t testing.TB) string
}{
	{"sqlite", func(t testing.TB) string { return filepath.Join(t.TempDir(), "state.db") }},
	{"postgres", pgDSN},
}

func openStore(t testing.TB, dsn string, opts ...sqlstore.Option) *sqlstore.Store {
	t.Helper()
	s, err := sqlstore.Open(context.Background(), dsn, opts...)
	if err != nil {
		t.Fatalf("Open(%s): %v", dsn, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestStoreConformance(t *testing.T) {
	t.Run("memory", func(t *testing.T) {
		computetest.TestStore(t, func(_ *testing.T, now func() time.Time) compute.Store {
			return compute.NewMemoryStore(compute.WithStoreClock(now))
		})
	})
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			computetest.TestStore(t, func(t *testing.T, now func() time.Time) compute.Store {
				return openStore(t, b.dsn(t), sqlstore.WithClock(now))
			})
		})
	}
}
