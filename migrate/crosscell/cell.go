package crosscell

import (
	"context"
	"sort"
	"sync"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/migrate"
	"github.com/xenflow/xenflow/quota"
	"github.com/xenflow/xenflow/statemachine"
)

// Cell is one cell: its database (a CellStore) and its compute hosts,
// reached through its driver.
type Cell struct {
	Name   string
	Store  CellStore
	Driver compute.Driver
	// Hosts are the cell's compute hosts.
	Hosts []string
}

// CellStore is a cell's database: a compute.Store that can also hard-delete
// an instance with its migrations, actions and faults (Nova's
// instance.destroy(hard_delete=True) of the cross-cell tasks, which lets a
// later move come back to the cell without archiving).
type CellStore interface {
	compute.Store
	// DestroyInstance hard-deletes the instance and every record that
	// belongs to it; an instance that does not exist is no error.
	DestroyInstance(ctx context.Context, uuid string) error
}

// InstanceMapping says which cell holds an instance (Nova's
// instance_mappings table in the API database).
type InstanceMapping struct {
	InstanceUUID string
	Cell         string
	ProjectID    string
}

// RequestSpec is what the API database keeps of an instance's scheduling
// request (Nova's request_specs), as far as a move reads it.
type RequestSpec struct {
	InstanceUUID     string
	ProjectID        string
	AvailabilityZone string
	// RequestedCell is the cell the move starts from.
	RequestedCell string
	// AllowCrossCellMove is set by the API when the cross-cell policy
	// allows the move (RequestSpec.requested_destination.allow_cross_cell_move).
	AllowCrossCellMove bool
}

// APIStore is the API database: instance mappings and request specs.
type APIStore interface {
	// GetMapping returns the instance's mapping, or a *compute.NotFoundError.
	GetMapping(ctx context.Context, instanceUUID string) (InstanceMapping, error)
	// SaveMapping creates or replaces the instance's mapping.
	SaveMapping(ctx context.Context, m InstanceMapping) error
	// GetRequestSpec returns the instance's request spec, or a
	// *compute.NotFoundError.
	GetRequestSpec(ctx context.Context, instanceUUID string) (RequestSpec, error)
	// SaveRequestSpec creates or replaces the instance's request spec.
	SaveRequestSpec(ctx context.Context, s RequestSpec) error
}

// MemoryAPIStore is an in-memory APIStore, safe for concurrent use.
type MemoryAPIStore struct {
	mu       sync.Mutex
	mappings map[string]InstanceMapping
	specs    map[string]RequestSpec
}

// NewMemoryAPIStore returns an empty API store.
func NewMemoryAPIStore() *MemoryAPIStore {
	return &MemoryAPIStore{mappings: map[string]InstanceMapping{}, specs: map[string]RequestSpec{}}
}

var _ APIStore = (*MemoryAPIStore)(nil)

// GetMapping implements [APIStore].
func (s *MemoryAPIStore) GetMapping(ctx context.Context, uuid string) (InstanceMapping, error) {
	if err := ctx.Err(); err != nil {
		return InstanceMapping{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.mappings[uuid]
	if !ok {
		return InstanceMapping{}, &compute.NotFoundError{Kind: "instance_mapping", ID: uuid}
	}
	return m, nil
}

// SaveMapping implements [APIStore].
func (s *MemoryAPIStore) SaveMapping(ctx context.Context, m InstanceMapping) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if m.InstanceUUID == "" || m.Cell == "" {
		return &compute.InvalidRecordError{Kind: "instance_mapping", ID: m.InstanceUUID, Field: "instance_uuid/cell", Reason: "empty"}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mappings[m.InstanceUUID] = m
	return nil
}

// GetRequestSpec implements [APIStore].
func (s *MemoryAPIStore) GetRequestSpec(ctx context.Context, uuid string) (RequestSpec, error) {
	if err := ctx.Err(); err != nil {
		return RequestSpec{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.specs[uuid]
	if !ok {
		return RequestSpec{}, &compute.NotFoundError{Kind: "request_spec", ID: uuid}
	}
	return r, nil
}

// SaveRequestSpec implements [APIStore].
func (s *MemoryAPIStore) SaveRequestSpec(ctx context.Context, r RequestSpec) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if r.InstanceUUID == "" {
		return &compute.InvalidRecordError{Kind: "request_spec", Field: "instance_uuid", Reason: "empty"}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.specs[r.InstanceUUID] = r
	return nil
}

// VisibleInstances lists what the API shows of a cell: the instances that
// match f without those marked Hidden (Nova's instance list filters
// hidden=False).
func VisibleInstances(ctx context.Context, s compute.InstanceStore, f compute.InstanceFilter) ([]*compute.Instance, error) {
	all, err := s.ListInstances(ctx, f)
	return keep(all, func(i *compute.Instance) bool { return !i.Hidden }), err
}

// keep returns the elements of xs for which f is true, in place.
func keep[T any](xs []T, f func(T) bool) []T {
	out := xs[:0]
	for _, x := range xs {
		if f(x) {
			out = append(out, x)
		}
	}
	return out
}

// QuotaCharges counts a project's usage over every cell as the quota
// recount does (quota.Ledger.Reconcile's charges): one charge per visible
// instance, so the hidden copy of a move is never counted twice; an
// instance waiting in VERIFY_RESIZE is charged max(old, new).
func QuotaCharges(ctx context.Context, cells []Cell, project string) ([]quota.Charge, error) {
	var out []quota.Charge
	for _, c := range cells {
		insts, err := VisibleInstances(ctx, c.Store, compute.InstanceFilter{})
		if err != nil {
			return nil, err
		}
		for _, i := range insts {
			if i.ProjectID != project {
				continue
			}
			out = append(out, migrate.Charge(i))
		}
	}
	return out, nil
}

func quotaFlavor(f *compute.Flavor) quota.Flavor {
	if f == nil {
		return quota.Flavor{}
	}
	return quota.Flavor{VCPUs: int64(f.VCPUs), MemoryMB: int64(f.MemoryMB), RootGB: int64(f.RootGB),
		EphemeralGB: int64(f.EphemeralGB)}
}

// hardDeleteStore is a CellStore over a compute.Store without deletes: a
// destroyed instance and its records are hidden from every read, and the
// instance may be created again. It is how a MemoryStore becomes a cell
// database until compute.Store grows a hard delete of its own.
type hardDeleteStore struct {
	compute.Store
	mu   sync.Mutex
	gone map[string]*tombstone // by instance UUID
}

// tombstone is what one DestroyInstance removed.
type tombstone struct {
	instanceGone bool
	migrations   map[string]bool
	actions      map[string]bool // request IDs
	faultsUntil  int             // faults listed before the destroy
}

// NewCellStore returns s as a CellStore: s itself when it can hard-delete,
// else a wrapper that hides destroyed records from every read.
func NewCellStore(s compute.Store) CellStore {
	if cs, ok := s.(CellStore); ok {
		return cs
	}
	return &hardDeleteStore{Store: s, gone: map[string]*tombstone{}}
}

func (s *hardDeleteStore) tomb(uuid string) *tombstone {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gone[uuid]
}

// DestroyInstance implements [CellStore].
func (s *hardDeleteStore) DestroyInstance(ctx context.Context, uuid string) error {
	if _, err := s.GetInstance(ctx, uuid); err != nil {
		if isNotFound(err) {
			return nil
		}
		return err
	}
	migs, err := s.Store.ListMigrations(ctx, compute.MigrationFilter{InstanceUUID: uuid})
	if err != nil {
		return err
	}
	acts, err := s.Store.ListActions(ctx, uuid)
	if err != nil {
		return err
	}
	faults, err := s.Store.ListFaults(ctx, uuid)
	if err != nil {
		return err
	}
	t := &tombstone{instanceGone: true, migrations: map[string]bool{}, actions: map[string]bool{}, faultsUntil: len(faults)}
	for _, m := range migs {
		t.migrations[m.UUID] = true
	}
	for _, a := range acts {
		t.actions[a.RequestID] = true
	}
	s.mu.Lock()
	s.gone[uuid] = t
	s.mu.Unlock()
	return nil
}

func (s *hardDeleteStore) GetInstance(ctx context.Context, uuid string) (*compute.Instance, error) {
	if t := s.tomb(uuid); t != nil && t.instanceGone {
		return nil, &compute.NotFoundError{Kind: compute.KindInstance, ID: uuid}
	}
	return s.Store.GetInstance(ctx, uuid)
}

func (s *hardDeleteStore) ListInstances(ctx context.Context, f compute.InstanceFilter) ([]*compute.Instance, error) {
	all, err := s.Store.ListInstances(ctx, f)
	return keep(all, func(i *compute.Instance) bool { t := s.tomb(i.UUID); return t == nil || !t.instanceGone }), err
}

// CreateInstance implements compute.InstanceStore: an instance destroyed
// before is written again in place of the old record.
func (s *hardDeleteStore) CreateInstance(ctx context.Context, inst *compute.Instance) error {
	t := s.tomb(instanceUUID(inst))
	if t == nil || !t.instanceGone {
		return s.Store.CreateInstance(ctx, inst)
	}
	if err := inst.Validate(); err != nil {
		return err
	}
	if err := s.Store.SaveInstance(ctx, inst); err != nil {
		return err
	}
	s.mu.Lock()
	t.instanceGone = false
	s.mu.Unlock()
	return nil
}

func (s *hardDeleteStore) SaveInstance(ctx context.Context, inst *compute.Instance, expected ...statemachine.TaskState) error {
	if t := s.tomb(instanceUUID(inst)); t != nil && t.instanceGone {
		return &compute.NotFoundError{Kind: compute.KindInstance, ID: inst.UUID}
	}
	return s.Store.SaveInstance(ctx, inst, expected...)
}

func (s *hardDeleteStore) migrationGone(m *compute.Migration) bool {
	t := s.tomb(m.InstanceUUID)
	return t != nil && t.migrations[m.UUID]
}

func (s *hardDeleteStore) GetMigration(ctx context.Context, uuid string) (*compute.Migration, error) {
	m, err := s.Store.GetMigration(ctx, uuid)
	if err == nil && s.migrationGone(m) {
		return nil, &compute.NotFoundError{Kind: compute.KindMigration, ID: uuid}
	}
	return m, err
}

func (s *hardDeleteStore) ListMigrations(ctx context.Context, f compute.MigrationFilter) ([]*compute.Migration, error) {
	all, err := s.Store.ListMigrations(ctx, f)
	return keep(all, func(m *compute.Migration) bool { return !s.migrationGone(m) }), err
}

func (s *hardDeleteStore) ListActions(ctx context.Context, uuid string) ([]*compute.InstanceAction, error) {
	all, err := s.Store.ListActions(ctx, uuid)
	t := s.tomb(uuid)
	if err != nil || t == nil {
		return all, err
	}
	return keep(all, func(a *compute.InstanceAction) bool { return !t.actions[a.RequestID] }), nil
}

func (s *hardDeleteStore) ListFaults(ctx context.Context, uuid string) ([]*compute.Fault, error) {
	all, err := s.Store.ListFaults(ctx, uuid)
	t := s.tomb(uuid)
	if err != nil || t == nil {
		return all, err
	}
	// newest first: the faults recorded since the destroy lead the list
	return all[:max(len(all)-t.faultsUntil, 0)], nil
}

func (s *hardDeleteStore) Transition(ctx context.Context, req compute.TransitionRequest) (*compute.Instance, *compute.Migration, error) {
	if t := s.tomb(req.InstanceUUID); t != nil && (t.instanceGone || t.migrations[req.MigrationUUID]) {
		return nil, nil, &compute.NotFoundError{Kind: compute.KindInstance, ID: req.InstanceUUID}
	}
	return s.Store.Transition(ctx, req)
}

func (s *hardDeleteStore) AcquireLease(ctx context.Context, req compute.LeaseRequest) (compute.Lease, error) {
	if t := s.tomb(req.InstanceUUID); t != nil && t.instanceGone {
		return compute.Lease{}, &compute.NotFoundError{Kind: compute.KindInstance, ID: req.InstanceUUID}
	}
	return s.Store.AcquireLease(ctx, req)
}

func instanceUUID(i *compute.Instance) string {
	if i == nil {
		return ""
	}
	return i.UUID
}

// sortedCells returns the names of cells in order.
func sortedCells(cells map[string]*Cell) []string {
	out := make([]string, 0, len(cells))
	for n := range cells {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
