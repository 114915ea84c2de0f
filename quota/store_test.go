package quota

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"testing"
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

func (s *jsonStore) load(project string) (*ProjectQuota, bool, error) {
	b, ok := s.rows[project]
	if !ok {
		return &ProjectQuota{Project: project}, false, nil
	}
	var pq ProjectQuota
	if err := json.Unmarshal(b, &pq); err != nil {
		return nil, true, fmt.Errorf("decode %s: %w", project, err)
	}
	return &pq, true, nil
}

func (s *jsonStore) Update(ctx context.Context, project string, fn func(*ProjectQuota) error) error {
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

func (s *jsonStore) View(ctx context.Context, project string, fn func(*ProjectQuota) error) error {
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
		return &InputError{Op: "view", Field: "project", Value: project, Err: ErrUnknownProject}
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
			runPropertyOn(t, seed, 4, ops, newJSONStore())
		})
		t.Run(fmt.Sprint("retrying/seed", seed), func(t *testing.T) {
			s := newJSONStore()
			s.retry = true
			runPropertyOn(t, seed, 4, ops, s)
		})
	}
}

func TestMemStoreProjects(t *testing.T) {
	ctx := context.Background()
	s := NewMemStore()
	for _, p := range []string{"c", "a", "b"} {
		if err := s.Update(ctx, p, func(pq *ProjectQuota) error {
			if pq.Project != p {
				t.Errorf("record of %q says %q", p, pq.Project)
			}
			pq.Initialized = true
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Update(ctx, "d", func(*ProjectQuota) error { return ErrInvalidDelta }); err != ErrInvalidDelta {
		t.Fatalf("Update returned %v, want fn's error", err)
	}
	ps, err := s.Projects(ctx)
	if err != nil || fmt.Sprint(ps) != "[a b c]" {
		t.Errorf("Projects = %v, %v; want [a b c] (a failed update keeps no record)", ps, err)
	}
	if err := s.View(ctx, "d", func(*ProjectQuota) error { return nil }); !errorsIs(err, ErrUnknownProject) {
		t.Errorf("View of a missing project: %v", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.Update(cancelled, "a", func(*ProjectQuota) error { return nil }); !errorsIs(err, context.Canceled) {
		t.Errorf("Update with a cancelled context: %v", err)
	}
}
