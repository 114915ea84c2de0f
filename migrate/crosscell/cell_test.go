package crosscell

import (
	"context"
	"errors"
	"testing"

	"github.com/xenflow/xenflow/compute"
	sm "github.com/xenflow/xenflow/statemachine"
)

// noDestroy is a compute.Store without a hard delete.
type noDestroy struct{ compute.Store }

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
		{"Cells[1].Store", func(c *Config) {
			c.Cells = []Cell{f.cells[0], {Name: "x", Driver: f.driver, Store: noDestroy{compute.NewMemoryStore()}}}
		}},
	}
	for _, tc := range cases {
		cfg := good
		tc.edit(&cfg)
		_, err := New(cfg)
		var ce *ConfigError
		var nd *NoHardDeleteError
		switch {
		case errors.As(err, &nd):
			if tc.field != "Cells[1].Store" || nd.Cell != "x" {
				t.Errorf("%s: got %v", tc.field, err)
			}
		case !errors.As(err, &ce) || ce.Field != tc.field:
			t.Errorf("%s: got %v", tc.field, err)
		}
	}
	if _, err := New(good); err != nil {
		t.Fatal(err)
	}
}
