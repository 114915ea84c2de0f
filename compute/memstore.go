package compute

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/xenflow/xenflow/statemachine"
)

// MemoryStore is the embedded in-memory [Store]. It is safe for concurrent
// use, and its zero value is an empty store that stamps records with
// time.Now; a nil *MemoryStore returns ErrNilStore. Every record is copied
// on the way in and on the way out, so callers never share memory with it;
// every update is atomic: it is either written whole or not at all.
type MemoryStore struct {
	now func() time.Time

	mu         sync.RWMutex
	instances  map[string]*Instance
	migrations map[string]*Migration
	actions    map[string][]*InstanceAction // by instance UUID, oldest first
	faults     map[string][]*Fault          // by instance UUID, oldest first
}

// StoreOption configures a MemoryStore.
type StoreOption func(*MemoryStore)

// WithStoreClock sets the clock the store stamps CreatedAt and UpdatedAt
// with (time.Now by default).
func WithStoreClock(now func() time.Time) StoreOption {
	return func(s *MemoryStore) {
		if now != nil {
			s.now = now
		}
	}
}

// NewMemoryStore returns an empty in-memory store.
func NewMemoryStore(opts ...StoreOption) *MemoryStore {
	s := &MemoryStore{
		now:        time.Now,
		instances:  map[string]*Instance{},
		migrations: map[string]*Migration{},
		actions:    map[string][]*InstanceAction{},
		faults:     map[string][]*Fault{},
	}
	for _, o := range opts {
		if o != nil {
			o(s)
		}
	}
	return s
}

var _ Store = (*MemoryStore)(nil)

// GetInstance implements [InstanceStore].
func (s *MemoryStore) GetInstance(ctx context.Context, uuid string) (*Instance, error) {
	if err := s.usable(ctx); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	inst, ok := s.instances[uuid]
	if !ok {
		return nil, &NotFoundError{Kind: KindInstance, ID: uuid}
	}
	return inst.Clone(), nil
}

// ListInstances implements [InstanceStore].
func (s *MemoryStore) ListInstances(ctx context.Context, f InstanceFilter) ([]*Instance, error) {
	if err := s.usable(ctx); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []*Instance
	for _, inst := range s.instances {
		if f.Host != "" && inst.Host != f.Host {
			continue
		}
		if len(f.VMStates) > 0 && !containsValue(f.VMStates, inst.VMState) {
			continue
		}
		if len(f.TaskStates) > 0 && !containsValue(f.TaskStates, inst.TaskState) {
			continue
		}
		if f.WithTask && inst.TaskState == statemachine.TaskNone {
			continue
		}
		out = append(out, inst.Clone())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].UUID < out[j].UUID })
	return out, nil
}

// CreateInstance implements [InstanceStore]. It sets CreatedAt and
// UpdatedAt on inst and on the stored copy.
func (s *MemoryStore) CreateInstance(ctx context.Context, inst *Instance) error {
	if err := s.usable(ctx); err != nil {
		return err
	}
	if err := inst.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	s.initLocked()
	defer s.mu.Unlock()
	if _, ok := s.instances[inst.UUID]; ok {
		return &AlreadyExistsError{Kind: KindInstance, ID: inst.UUID}
	}
	now := s.now()
	c := inst.Clone()
	c.CreatedAt, c.UpdatedAt = now, now
	s.instances[c.UUID] = c
	inst.CreatedAt, inst.UpdatedAt = now, now
	return nil
}

// SaveInstance implements [InstanceStore]: compare-and-set on the stored
// task_state when expectedTaskStates are given.
func (s *MemoryStore) SaveInstance(ctx context.Context, inst *Instance, expectedTaskStates ...statemachine.TaskState) error {
	if err := s.usable(ctx); err != nil {
		return err
	}
	if err := inst.Validate(); err != nil {
		return err
	}
	for _, t := range expectedTaskStates {
		if !t.Valid() {
			return &InvalidRecordError{Kind: KindInstance, ID: inst.UUID, Field: "expected_task_state",
				Reason: "unknown value " + quote(string(t))}
		}
	}
	c := inst.Clone()
	s.mu.Lock()
	s.initLocked()
	defer s.mu.Unlock()
	cur, ok := s.instances[inst.UUID]
	if !ok {
		return &NotFoundError{Kind: KindInstance, ID: inst.UUID}
	}
	if len(expectedTaskStates) > 0 && !containsValue(expectedTaskStates, cur.TaskState) {
		return &UnexpectedTaskStateError{InstanceUUID: inst.UUID,
			Expected: append([]statemachine.TaskState(nil), expectedTaskStates...), Actual: cur.TaskState}
	}
	now := s.now()
	c.CreatedAt = cur.CreatedAt
	c.UpdatedAt = now
	s.instances[c.UUID] = c
	inst.CreatedAt, inst.UpdatedAt = cur.CreatedAt, now
	return nil
}

// GetMigration implements [MigrationStore].
func (s *MemoryStore) GetMigration(ctx context.Context, uuid string) (*Migration, error) {
	if err := s.usable(ctx); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	m, ok := s.migrations[uuid]
	if !ok {
		return nil, &NotFoundError{Kind: KindMigration, ID: uuid}
	}
	return m.Clone(), nil
}

// ListMigrations implements [MigrationStore].
func (s *MemoryStore) ListMigrations(ctx context.Context, f MigrationFilter) ([]*Migration, error) {
	if err := s.usable(ctx); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []*Migration
	for _, m := range s.migrations {
		switch {
		case f.InstanceUUID != "" && m.InstanceUUID != f.InstanceUUID,
			len(f.Statuses) > 0 && !containsValue(f.Statuses, m.Status),
			f.SourceCompute != "" && m.SourceCompute != f.SourceCompute,
			f.DestCompute != "" && m.DestCompute != f.DestCompute,
			!f.UpdatedAtOrBefore.IsZero() && m.UpdatedAt.After(f.UpdatedAtOrBefore),
			f.InProgress && !m.Status.InProgress():
			continue
		}
		out = append(out, m.Clone())
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.Before(out[j].CreatedAt)
		}
		return out[i].UUID < out[j].UUID
	})
	return out, nil
}

// CreateMigration implements [MigrationStore].
func (s *MemoryStore) CreateMigration(ctx context.Context, m *Migration) error {
	if err := s.usable(ctx); err != nil {
		return err
	}
	if err := m.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	s.initLocked()
	defer s.mu.Unlock()
	if _, ok := s.migrations[m.UUID]; ok {
		return &AlreadyExistsError{Kind: KindMigration, ID: m.UUID}
	}
	now := s.now()
	c := m.Clone()
	c.CreatedAt, c.UpdatedAt = now, now
	s.migrations[c.UUID] = c
	m.CreatedAt, m.UpdatedAt = now, now
	return nil
}

// SaveMigration implements [MigrationStore]: compare-and-set on the stored
// status when expectedStatuses are given.
func (s *MemoryStore) SaveMigration(ctx context.Context, m *Migration, expectedStatuses ...statemachine.MigrationStatus) error {
	if err := s.usable(ctx); err != nil {
		return err
	}
	if err := m.Validate(); err != nil {
		return err
	}
	c := m.Clone()
	s.mu.Lock()
	s.initLocked()
	defer s.mu.Unlock()
	cur, ok := s.migrations[m.UUID]
	if !ok {
		return &NotFoundError{Kind: KindMigration, ID: m.UUID}
	}
	if len(expectedStatuses) > 0 && !containsValue(expectedStatuses, cur.Status) {
		return &UnexpectedMigrationStatusError{MigrationUUID: m.UUID,
			Expected: append([]statemachine.MigrationStatus(nil), expectedStatuses...), Actual: cur.Status}
	}
	now := s.now()
	c.CreatedAt = cur.CreatedAt
	c.UpdatedAt = now
	s.migrations[c.UUID] = c
	m.CreatedAt, m.UpdatedAt = cur.CreatedAt, now
	return nil
}

// CreateAction implements [ActionStore]. A zero StartTime is set to now.
func (s *MemoryStore) CreateAction(ctx context.Context, a *InstanceAction) error {
	if err := s.usable(ctx); err != nil {
		return err
	}
	if err := a.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	s.initLocked()
	defer s.mu.Unlock()
	if s.findAction(a.InstanceUUID, a.RequestID) != nil {
		return &AlreadyExistsError{Kind: KindAction, ID: a.InstanceUUID + "/" + a.RequestID}
	}
	c := a.Clone()
	if c.StartTime.IsZero() {
		c.StartTime = s.now()
		a.StartTime = c.StartTime
	}
	s.actions[c.InstanceUUID] = append(s.actions[c.InstanceUUID], c)
	return nil
}

func (s *MemoryStore) findAction(instanceUUID, requestID string) *InstanceAction {
	for _, a := range s.actions[instanceUUID] {
		if a.RequestID == requestID {
			return a
		}
	}
	return nil
}

// GetAction implements [ActionStore].
func (s *MemoryStore) GetAction(ctx context.Context, instanceUUID, requestID string) (*InstanceAction, error) {
	if err := s.usable(ctx); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	a := s.findAction(instanceUUID, requestID)
	if a == nil {
		return nil, &NotFoundError{Kind: KindAction, ID: instanceUUID + "/" + requestID}
	}
	return a.Clone(), nil
}

// ListActions implements [ActionStore].
func (s *MemoryStore) ListActions(ctx context.Context, instanceUUID string) ([]*InstanceAction, error) {
	if err := s.usable(ctx); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []*InstanceAction
	for _, a := range s.actions[instanceUUID] {
		out = append(out, a.Clone())
	}
	return out, nil
}

// SaveActionEvent implements [ActionStore]. A zero StartTime is set to now.
func (s *MemoryStore) SaveActionEvent(ctx context.Context, instanceUUID, requestID string, ev InstanceActionEvent) error {
	if err := s.usable(ctx); err != nil {
		return err
	}
	if ev.Event == "" {
		return &InvalidRecordError{Kind: KindAction, ID: instanceUUID + "/" + requestID, Field: "event", Reason: "empty name"}
	}
	s.mu.Lock()
	s.initLocked()
	defer s.mu.Unlock()
	a := s.findAction(instanceUUID, requestID)
	if a == nil {
		return &NotFoundError{Kind: KindAction, ID: instanceUUID + "/" + requestID}
	}
	if ev.StartTime.IsZero() {
		ev.StartTime = s.now()
	}
	replaced := false
	for i := range a.Events {
		if a.Events[i].Event == ev.Event && a.Events[i].FinishTime.IsZero() {
			a.Events[i] = ev
			replaced = true
			break
		}
	}
	if !replaced {
		a.Events = append(a.Events, ev)
	}
	if ev.Result == EventResultError {
		a.Message = EventResultError
	}
	return nil
}

// FinishAction implements [ActionStore].
func (s *MemoryStore) FinishAction(ctx context.Context, instanceUUID, requestID string, at time.Time) error {
	if err := s.usable(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	s.initLocked()
	defer s.mu.Unlock()
	a := s.findAction(instanceUUID, requestID)
	if a == nil {
		return &NotFoundError{Kind: KindAction, ID: instanceUUID + "/" + requestID}
	}
	a.FinishTime = at
	return nil
}

// AddFault implements [FaultStore].
func (s *MemoryStore) AddFault(ctx context.Context, f *Fault) error {
	if err := s.usable(ctx); err != nil {
		return err
	}
	if err := f.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	s.initLocked()
	defer s.mu.Unlock()
	c := f.Clone()
	c.CreatedAt = s.now()
	f.CreatedAt = c.CreatedAt
	s.faults[c.InstanceUUID] = append(s.faults[c.InstanceUUID], c)
	return nil
}

// ListFaults implements [FaultStore].
func (s *MemoryStore) ListFaults(ctx context.Context, instanceUUID string) ([]*Fault, error) {
	if err := s.usable(ctx); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	fs := s.faults[instanceUUID]
	out := make([]*Fault, 0, len(fs))
	for i := len(fs) - 1; i >= 0; i-- {
		out = append(out, fs[i].Clone())
	}
	return out, nil
}

func containsValue[T comparable](xs []T, x T) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// usable returns ErrNilStore for a nil store and the context's error, so
// that no method of a nil *MemoryStore panics.
func (s *MemoryStore) usable(ctx context.Context) error {
	if s == nil {
		return ErrNilStore
	}
	return ctx.Err()
}

// initLocked makes a zero MemoryStore usable: it creates the maps and the
// clock NewMemoryStore would have. Callers hold s.mu for writing.
func (s *MemoryStore) initLocked() {
	if s.now == nil {
		s.now = time.Now
	}
	if s.instances == nil {
		s.instances = map[string]*Instance{}
		s.migrations = map[string]*Migration{}
		s.actions = map[string][]*InstanceAction{}
		s.faults = map[string][]*Fault{}
	}
}
