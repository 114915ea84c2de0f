package compute

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/xenflow/xenflow/statemachine"
)

// MemoryStore is the embedded in-memory [Store]. It is safe for concurrent
// use, and its zero value is an empty store that stamps records and times
// leases with time.Now (see [WithStoreClock]); a nil *MemoryStore returns
// ErrNilStore. Every record is copied
// on the way in and on the way out, so callers never share memory with it;
// every update is atomic: it is either written whole or not at all.
type MemoryStore struct {
	now func() time.Time

	mu         sync.RWMutex
	instances  map[string]*Instance
	migrations map[string]*Migration
	actions    map[string][]*InstanceAction // by instance UUID, oldest first
	faults     map[string][]*Fault          // by instance UUID, oldest first
	leases     map[string]*leaseRecord      // by instance UUID
}

// StoreOption configures a MemoryStore.
type StoreOption func(*MemoryStore)

// WithStoreClock sets the clock the store stamps CreatedAt and UpdatedAt
// with and measures lease expiry by (time.Now by default).
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
		leases:     map[string]*leaseRecord{},
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
	return getRecord(s, instanceTable, uuid)
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
	return createRecord(s, instanceTable, inst)
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
	return saveRecord(s, instanceTable, inst, func(cur *Instance) error {
		if len(expectedTaskStates) > 0 && !containsValue(expectedTaskStates, cur.TaskState) {
			return &UnexpectedTaskStateError{InstanceUUID: inst.UUID,
				Expected: append([]statemachine.TaskState(nil), expectedTaskStates...), Actual: cur.TaskState}
		}
		return nil
	})
}

// GetMigration implements [MigrationStore].
func (s *MemoryStore) GetMigration(ctx context.Context, uuid string) (*Migration, error) {
	if err := s.usable(ctx); err != nil {
		return nil, err
	}
	return getRecord(s, migrationTable, uuid)
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
	return createRecord(s, migrationTable, m)
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
	return saveRecord(s, migrationTable, m, func(cur *Migration) error {
		if len(expectedStatuses) > 0 && !containsValue(expectedStatuses, cur.Status) {
			return &UnexpectedMigrationStatusError{MigrationUUID: m.UUID,
				Expected: append([]statemachine.MigrationStatus(nil), expectedStatuses...), Actual: cur.Status}
		}
		return nil
	})
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

// stampedRecord is a record the store keeps by UUID and stamps with
// CreatedAt and UpdatedAt: *Instance and *Migration.
type stampedRecord[R any] interface {
	Clone() R
	key() string
	created() time.Time
	stamp(createdAt, updatedAt time.Time)
}

func (i *Instance) key() string           { return i.UUID }
func (i *Instance) created() time.Time    { return i.CreatedAt }
func (i *Instance) stamp(c, u time.Time)  { i.CreatedAt, i.UpdatedAt = c, u }
func (m *Migration) key() string          { return m.UUID }
func (m *Migration) created() time.Time   { return m.CreatedAt }
func (m *Migration) stamp(c, u time.Time) { m.CreatedAt, m.UpdatedAt = c, u }

// recordTable names the map of one kind of stampedRecord.
type recordTable[R stampedRecord[R]] struct {
	kind string
	m    func(*MemoryStore) map[string]R
}

var (
	instanceTable  = recordTable[*Instance]{KindInstance, func(s *MemoryStore) map[string]*Instance { return s.instances }}
	migrationTable = recordTable[*Migration]{KindMigration, func(s *MemoryStore) map[string]*Migration { return s.migrations }}
)

// getRecord returns a copy of the record id of table t.
func getRecord[R stampedRecord[R]](s *MemoryStore, t recordTable[R], id string) (R, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r, ok := t.m(s)[id]
	if !ok {
		var zero R
		return zero, &NotFoundError{Kind: t.kind, ID: id}
	}
	return r.Clone(), nil
}

// createRecord stores a copy of r, which must be new, and stamps both with
// the time now.
func createRecord[R stampedRecord[R]](s *MemoryStore, t recordTable[R], r R) error {
	s.mu.Lock()
	s.initLocked()
	defer s.mu.Unlock()
	m := t.m(s)
	if _, ok := m[r.key()]; ok {
		return &AlreadyExistsError{Kind: t.kind, ID: r.key()}
	}
	now := s.now()
	c := r.Clone()
	c.stamp(now, now)
	m[r.key()] = c
	r.stamp(now, now)
	return nil
}

// saveRecord replaces the stored record with a copy of r if check accepts
// the stored one (the compare of a compare-and-set), keeping its CreatedAt
// and stamping UpdatedAt; r gets the same stamps.
func saveRecord[R stampedRecord[R]](s *MemoryStore, t recordTable[R], r R, check func(cur R) error) error {
	c := r.Clone()
	s.mu.Lock()
	s.initLocked()
	defer s.mu.Unlock()
	m := t.m(s)
	cur, ok := m[r.key()]
	if !ok {
		return &NotFoundError{Kind: t.kind, ID: r.key()}
	}
	if err := check(cur); err != nil {
		return err
	}
	now := s.now()
	c.stamp(cur.created(), now)
	m[r.key()] = c
	r.stamp(cur.created(), now)
	return nil
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
		s.leases = map[string]*leaseRecord{}
	}
}
