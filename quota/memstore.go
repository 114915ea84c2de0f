package quota

import (
	"context"
	"hash/maphash"
	"sort"
	"sync"
)

// memShards is the number of shards of a MemStore's project index. Each
// project also has its own lock, so operations on different projects share
// only a read lock on their shard's index.
const memShards = 64

// MemStore is the in-memory Store, the ledger's default. It is safe for
// concurrent use: each project's record has its own mutex, and the index of
// projects is split into shards, so goroutines working on different projects
// do not wait for each other. Its zero value is an empty store; the methods
// of a nil *MemStore return an error wrapping ErrNotInitialized.
type MemStore struct {
	once   sync.Once
	seed   maphash.Seed
	shards [memShards]memShard
}

type memShard struct {
	mu       sync.RWMutex
	projects map[string]*memEntry
	_        [32]byte // keep neighbouring shards' locks on separate cache lines
}

type memEntry struct {
	mu sync.Mutex
	pq ProjectQuota
}

// NewMemStore returns an empty in-memory store.
func NewMemStore() *MemStore {
	s := &MemStore{}
	s.once.Do(s.setup)
	return s
}

func (s *MemStore) setup() {
	s.seed = maphash.MakeSeed()
	for i := range s.shards {
		s.shards[i].projects = make(map[string]*memEntry)
	}
}

// begin makes a zero MemStore ready and refuses a nil one, a nil fn (when
// the method takes one) and a done context.
func (s *MemStore) begin(ctx context.Context, op string, fn func(*ProjectQuota) error, needFn bool) error {
	if s == nil {
		return &InputError{Op: op, Field: "store", Value: "nil", Err: ErrNotInitialized}
	}
	if needFn && fn == nil {
		return &InputError{Op: op, Field: "fn", Value: "nil", Err: ErrInvalidOption}
	}
	s.once.Do(s.setup)
	return ctx.Err()
}

func (s *MemStore) shard(project string) *memShard {
	return &s.shards[maphash.String(s.seed, project)%memShards]
}

func (s *MemStore) lookup(project string) (*memShard, *memEntry) {
	sh := s.shard(project)
	sh.mu.RLock()
	e := sh.projects[project]
	sh.mu.RUnlock()
	return sh, e
}

// Update implements Store.
func (s *MemStore) Update(ctx context.Context, project string, fn func(*ProjectQuota) error) error {
	if err := s.begin(ctx, "update", fn, true); err != nil {
		return err
	}
	sh, e := s.lookup(project)
	if e == nil {
		sh.mu.Lock()
		if e = sh.projects[project]; e == nil {
			// Create the record under the shard lock and publish it only
			// if fn succeeds, so failed calls leave nothing behind.
			ne := &memEntry{pq: ProjectQuota{Project: project}}
			err := fn(&ne.pq)
			if err == nil {
				sh.projects[project] = ne
			}
			sh.mu.Unlock()
			return err
		}
		sh.mu.Unlock()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return fn(&e.pq)
}

// View implements Store.
func (s *MemStore) View(ctx context.Context, project string, fn func(*ProjectQuota) error) error {
	if err := s.begin(ctx, "view", fn, true); err != nil {
		return err
	}
	_, e := s.lookup(project)
	if e == nil {
		return &InputError{Op: "view", Field: "project", Value: project, Err: ErrUnknownProject}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return fn(&e.pq)
}

// Projects implements Store; the list is sorted.
func (s *MemStore) Projects(ctx context.Context) ([]string, error) {
	if err := s.begin(ctx, "projects", nil, false); err != nil {
		return nil, err
	}
	var ps []string
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.RLock()
		for p := range sh.projects {
			ps = append(ps, p)
		}
		sh.mu.RUnlock()
	}
	sort.Strings(ps)
	return ps, nil
}
