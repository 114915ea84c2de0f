package crosscell

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/xenflow/xenflow/compute"
	sm "github.com/xenflow/xenflow/statemachine"
)

// TestCellStoreHardDelete checks the CellStore over a MemoryStore: a
// destroyed instance, its migrations, actions and faults are gone from
// every read, its lease cannot be taken, and the instance can be created
// again (a later move back into the cell) without the old records.
func TestCellStoreHardDelete(t *testing.T) {
	ctx := context.Background()
	s := NewCellStore(compute.NewMemoryStore())
	inst := &compute.Instance{UUID: vm1, VMState: sm.VMActive}
	steps := []struct {
		name string
		do   func() error
	}{
		{"create", func() error { return s.CreateInstance(ctx, inst.Clone()) }},
		{"migration", func() error {
			return s.CreateMigration(ctx, &compute.Migration{UUID: "m1", InstanceUUID: vm1, Status: sm.MigrationFinished,
				Type: sm.MigrationTypeResize})
		}},
		{"action", func() error {
			return s.CreateAction(ctx, &compute.InstanceAction{RequestID: "r1", InstanceUUID: vm1, Action: sm.ActionResize})
		}},
		{"fault", func() error { return s.AddFault(ctx, &compute.Fault{InstanceUUID: vm1, Message: "old"}) }},
		{"destroy", func() error { return s.DestroyInstance(ctx, vm1) }},
		{"destroy again", func() error { return s.DestroyInstance(ctx, vm1) }},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
	}
	if _, err := s.GetInstance(ctx, vm1); !errors.Is(err, compute.ErrNotFound) {
		t.Fatalf("get after destroy: %v", err)
	}
	if _, err := s.GetMigration(ctx, "m1"); !errors.Is(err, compute.ErrNotFound) {
		t.Fatalf("migration after destroy: %v", err)
	}
	if _, err := s.AcquireLease(ctx, compute.LeaseRequest{InstanceUUID: vm1, Owner: "o", TTL: time.Minute}); !errors.Is(err, compute.ErrNotFound) {
		t.Fatalf("lease after destroy: %v", err)
	}
	if err := s.SaveInstance(ctx, inst.Clone()); !errors.Is(err, compute.ErrNotFound) {
		t.Fatalf("save after destroy: %v", err)
	}
	counts := func() [4]int {
		i, _ := s.ListInstances(ctx, compute.InstanceFilter{})
		m, _ := s.ListMigrations(ctx, compute.MigrationFilter{InstanceUUID: vm1})
		a, _ := s.ListActions(ctx, vm1)
		f, _ := s.ListFaults(ctx, vm1)
		return [4]int{len(i), len(m), len(a), len(f)}
	}
	if c := counts(); c != [4]int{} {
		t.Fatalf("after destroy: instances, migrations, actions, faults = %v", c)
	}
	again := inst.Clone()
	again.Hidden = true
	if err := s.CreateInstance(ctx, again); err != nil {
		t.Fatalf("create again: %v", err)
	}
	if err := s.AddFault(ctx, &compute.Fault{InstanceUUID: vm1, Message: "new"}); err != nil {
		t.Fatal(err)
	}
	if c := counts(); c != [4]int{1, 0, 0, 1} {
		t.Fatalf("after creating again: instances, migrations, actions, faults = %v", c)
	}
	got, err := s.GetInstance(ctx, vm1)
	if err != nil || !got.Hidden {
		t.Fatalf("created again: %+v, %v", got, err)
	}
	if err := s.CreateInstance(ctx, inst.Clone()); !errors.Is(err, compute.ErrAlreadyExists) {
		t.Fatalf("create twice: %v", err)
	}
}

// TestVisibleAndQuota checks that the hidden copy of a move is neither
// listed nor charged.
func TestVisibleAndQuota(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.boot(ctx, vm1, "c1", "c1-h1", "small", sm.VMActive)
	hidden := &compute.Instance{UUID: vm1, Cell: "c2", ProjectID: testProject, UserID: testUser, VMState: sm.VMActive,
		Hidden: true, Flavor: f.flavors["medium"].Clone()}
	if err := f.stores["c2"].CreateInstance(ctx, hidden); err != nil {
		t.Fatal(err)
	}
	for cell, want := range map[string]int{"c1": 1, "c2": 0} {
		l, err := VisibleInstances(ctx, f.stores[cell], compute.InstanceFilter{})
		if err != nil || len(l) != want {
			t.Fatalf("%s: %d visible, want %d (%v)", cell, len(l), want, err)
		}
	}
	charges, err := QuotaCharges(ctx, f.cells, testProject)
	if err != nil || len(charges) != 1 {
		t.Fatalf("%d charges, want 1 (%v)", len(charges), err)
	}
	if err := f.quotaSettled(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestAPIStoreBadInput(t *testing.T) {
	ctx := context.Background()
	s := NewMemoryAPIStore()
	if err := s.SaveMapping(ctx, InstanceMapping{InstanceUUID: vm1}); !errors.Is(err, compute.ErrInvalidRecord) {
		t.Fatalf("mapping without a cell: %v", err)
	}
	if err := s.SaveRequestSpec(ctx, RequestSpec{}); !errors.Is(err, compute.ErrInvalidRecord) {
		t.Fatalf("spec without an instance: %v", err)
	}
	if _, err := s.GetMapping(ctx, vm1); !errors.Is(err, compute.ErrNotFound) {
		t.Fatalf("unknown mapping: %v", err)
	}
	if _, err := s.GetRequestSpec(ctx, vm1); !errors.Is(err, compute.ErrNotFound) {
		t.Fatalf("unknown spec: %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	f := newFixture(t)
	good := Config{Cells: f.cells, API: f.api, Quota: f.ledger, Flavors: f.flavors, Owner: "o"}
	cases := []struct {
		field string
		edit  func(*Config)
	}{
		{"Cells", func(c *Config) { c.Cells = nil }},
		{"API", func(c *Config) { c.API = nil }},
		{"Owner", func(c *Config) { c.Owner = "" }},
		{"Cells[1].Name", func(c *Config) { c.Cells = []Cell{f.cells[0], f.cells[0]} }},
		{"Cells[0].Store", func(c *Config) { c.Cells = []Cell{{Name: "x", Driver: f.driver}} }},
	}
	for _, tc := range cases {
		cfg := good
		tc.edit(&cfg)
		_, err := New(cfg)
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Field != tc.field {
			t.Errorf("%s: got %v", tc.field, err)
		}
	}
	if _, err := New(good); err != nil {
		t.Fatal(err)
	}
}
