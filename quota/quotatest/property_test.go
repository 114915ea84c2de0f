package quotatest_test

import (
	"context"
	"flag"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/xenflow/xenflow/quota"
	"github.com/xenflow/xenflow/quota/quotatest"
)

var seed = flag.Int64("quota.seed", 0, "run the quota property test with this seed only")

// TestMemStore runs the property test on quota's memory store.
func TestMemStore(t *testing.T) {
	var cfg quotatest.Config
	if *seed != 0 {
		cfg.Seeds = []int64{*seed}
	}
	quotatest.TestStore(t, func(*testing.T) quota.Store { return quota.NewMemStore() }, cfg)
}

// forgetfulStore loses the change of every fifth Update while reporting
// success, as a store with a lost write would.
type forgetfulStore struct {
	quota.Store
	n atomic.Int64
}

func (s *forgetfulStore) Update(ctx context.Context, project string, fn func(*quota.ProjectQuota) error) error {
	if s.n.Add(1)%5 != 0 {
		return s.Store.Update(ctx, project, fn)
	}
	var err error
	_ = s.Store.View(ctx, project, func(pq *quota.ProjectQuota) error {
		c := *pq // a shallow copy: fn's changes to the maps still leak, the counters are lost
		err = fn(&c)
		return nil
	})
	return err
}

// brokenEnv runs TestBrokenStore's property run in a child process.
const brokenEnv = "QUOTATEST_BROKEN_STORE"

// TestBrokenStore: the property test fails on a store that loses writes.
func TestBrokenStore(t *testing.T) {
	if os.Getenv(brokenEnv) == "1" {
		quotatest.TestStore(t, func(*testing.T) quota.Store { return &forgetfulStore{Store: quota.NewMemStore()} },
			quotatest.Config{Seeds: []int64{1}, Workers: 4, Ops: 100})
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^TestBrokenStore$")
	cmd.Env = append(os.Environ(), brokenEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "pending reservations hold") {
		t.Fatalf("the property test passed on a store that loses writes (%v):\n%s", err, out)
	}
}
