package crosscell

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/migrate"
	"github.com/xenflow/xenflow/quota"
)

// Cell is one cell: its database and its compute hosts, reached through
// its driver.
type Cell struct {
	Name string
	// Store is the cell's database. It must also implement
	// compute.InstanceDestroyer: the cross-cell tasks hard-delete the
	// copy a move leaves in a cell (Nova's
	// instance.destroy(hard_delete=True)), which lets a later move come
	// back to the cell without archiving. New refuses a store without it
	// with a *NoHardDeleteError.
	Store  compute.Store
	Driver compute.Driver
	// Hosts are the cell's compute hosts.
	Hosts []string
}

// destroyer returns the cell's hard delete (New checked that its Store
// has one).
func (c *Cell) destroyer() (compute.InstanceDestroyer, error) {
	d, ok := c.Store.(compute.InstanceDestroyer)
	if !ok {
		return nil, &NoHardDeleteError{Cell: c.Name, Store: fmt.Sprintf("%T", c.Store)}
	}
	return d, nil
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

// sortedCells returns the names of cells in order.
func sortedCells(cells map[string]*Cell) []string {
	out := make([]string, 0, len(cells))
	for n := range cells {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
