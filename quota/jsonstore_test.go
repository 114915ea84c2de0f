package quota_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"testing"

	"github.com/xenflow/xenflow/quota"
	"github.com/xenflow/xenflow/quota/quotatest"
)

// jsonStore is a Store the way a durable one works: every Update decodes the
// project's record from its stored bytes, calls fn on that copy and writes
// it back only when fn returns nil. It shows that the ledger keeps no state
// outside the record and that a ProjectQuota survives encoding.
type jsonStore struct {
	mu   sync.Mutex
	rows map[string][]byte
	// retry makes every Update run fn twice, the first time on a copy it
	// throws away, as a store that retries conflicting transactions does.
	retry bool
}

func newJSONStore() *jsonStore { return &jsonStore{rows: map[string][]byte{}} }

func (s *jsonStore) load(project string) (*quota.ProjectQuota, bool, error) {
	b, ok := s.rows[project]
	if !ok {
		return &quota.ProjectQuota{Project: project}, false, nil
	}
	var pq quota.ProjectQuota
	if err := json.Unmarshal(b, &pq); err != nil {
		return nil, true, fmt.Errorf("decode %s: %w", project, err)
	}
	return &pq, true, nil
}

func (s *jsonStore) Update(ctx context.Context, project string, fn func(*quota.ProjectQuota) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	pq, _, err := s.load(project)
	if err != nil {
		return err
	}
	if s.retry {
		if err := fn(pq); err != nil {
			return err
		}
		if pq, _, err = s.load(project); err != nil {
			return err
		}
	}
	if err := fn(pq); err != nil {
		return err
	}
	b, err := json.Marshal(pq)
	if err != nil {
		return fmt.Errorf("encode %s: %w", project, err)
	}
	s.rows[project] = b
	return nil
}

func (s *jsonStore) View(ctx context.Context, project string, fn func(*quota.ProjectQuota) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	pq, ok, err := s.load(project)
	if err != nil {
		return err
	}
	if !ok {
		return &quota.InputError{Op: "view", Field: "project", Value: project, Err: quota.ErrUnknownProject}
	}
	return fn(pq)
}

func (s *jsonStore) Projects(ctx context.Context) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ps []string
	for p := range s.rows {
		ps = append(ps, p)
	}
	sort.Strings(ps)
	return ps, nil
}

// TestPropertyOnDurableStore runs the property test against a store that
// reloads every record from its encoded form.
func TestPropertyOnDurableStore(t *testing.T) {
	// Every transaction re-encodes the whole record, settled reservations
	// included, so the run is kept short.
	ops := 150
	if testing.Short() {
		ops = 60
	}
	for _, seed := range []int64{11, 12} {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			quotatest.Run(t, seed, 4, ops, newJSONStore())
		})
		t.Run(fmt.Sprint("retrying/seed", seed), func(t *testing.T) {
			s := newJSONStore()
			s.retry = true
			quotatest.Run(t, seed, 4, ops, s)
		})
	}
}
