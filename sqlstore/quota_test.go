package sqlstore_test

import (
	"testing"

	"github.com/xenflow/xenflow/quota"
	"github.com/xenflow/xenflow/quota/quotatest"
	"github.com/xenflow/xenflow/sqlstore"
)

// TestQuotaProperty runs quota's property test (quotatest.TestStore) on
// each backend's quota.Store: concurrent reserve, commit, rollback,
// retried settlements and expiry through quota.Ledger, with the ledger's
// invariants checked inside every transaction. Each Update writes the
// whole project record, so the runs are shorter than on the memory store.
func TestQuotaProperty(t *testing.T) {
	cfg := quotatest.Config{Seeds: []int64{1, 2}, Workers: 4, Ops: 150}
	if testing.Short() {
		cfg.Ops = 60
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			quotatest.TestStore(t, func(t *testing.T) quota.Store { return openStore(t, b.dsn(t)).Quota() }, cfg)
		})
	}
}

var _ quota.Store = sqlstore.QuotaStore{}
