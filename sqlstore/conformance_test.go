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

// TestConcurrentOpen: several processes' Opens of one new database at once
// all succeed and create the schema once.
func TestConcurrentOpen(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			dsn := b.dsn(t)
			const n = 4
			errs := make(chan error, n)
			for i := 0; i < n; i++ {
				go func() {
					s, err := sqlstore.Open(context.Background(), dsn)
					if err == nil {
						err = s.Close()
					}
					errs <- err
				}()
			}
			for i := 0; i < n; i++ {
				if err := <-errs; err != nil {
					t.Fatalf("concurrent Open: %v", err)
				}
			}
			s := openStore(t, dsn)
			var rows int
			if err := s.DB().QueryRow("SELECT COUNT(*) FROM xenflow_schema").Scan(&rows); err != nil || rows != sqlstore.SchemaVersion {
				t.Fatalf("schema versions recorded: %d, %v; want %d", rows, err, sqlstore.SchemaVersion)
			}
		})
	}
}
