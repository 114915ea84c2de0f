package quota

import (
	"context"
	"fmt"
	"testing"
)

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
