package crosscell

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/migrate"
	"github.com/xenflow/xenflow/scheduler"
	sm "github.com/xenflow/xenflow/statemachine"
)

const vm1 = "11111111-1111-4111-8111-111111111111"

// op is one operation of a scenario.
type op struct {
	name     string
	run      func(ctx context.Context, c *Conductor) (*Result, error)
	wantCell string
	wantVM   sm.VMState
}

func resize(flavor string) op {
	return op{name: "resize " + flavor, run: func(ctx context.Context, c *Conductor) (*Result, error) {
		return c.Resize(ctx, migrate.ResizeRequest{InstanceUUID: vm1, FlavorID: flavor})
	}, wantVM: sm.VMResized}
}

func coldMigrate(host string) op {
	return op{name: "migrate " + host, run: func(ctx context.Context, c *Conductor) (*Result, error) {
		return c.Migrate(ctx, migrate.MigrateRequest{InstanceUUID: vm1, TargetHost: host, Admin: true})
	}, wantVM: sm.VMResized}
}

func confirm(vm sm.VMState) op {
	return op{name: "confirm", run: func(ctx context.Context, c *Conductor) (*Result, error) {
		return c.Confirm(ctx, migrate.ActionRequest{InstanceUUID: vm1})
	}, wantVM: vm}
}

func revert(vm sm.VMState) op {
	return op{name: "revert", run: func(ctx context.Context, c *Conductor) (*Result, error) {
		return c.Revert(ctx, migrate.ActionRequest{InstanceUUID: vm1})
	}, wantVM: vm}
}

func in(o op, cell string) op { o.wantCell = cell; return o }

func TestHappyPaths(t *testing.T) {
	active, stopped := sm.VMActive, sm.VMStopped
	cases := []struct {
		name string
		vm   sm.VMState
		ops  []op
	}{
		{"resize and confirm", active, []op{in(resize("medium"), "c2"), in(confirm(active), "c2")}},
		{"resize and revert", active, []op{in(resize("medium"), "c2"), in(revert(active), "c1")}},
		{"stopped resize and revert", stopped, []op{in(resize("medium"), "c2"), in(revert(stopped), "c1")}},
		{"stopped resize and confirm", stopped, []op{in(resize("medium"), "c2"), in(confirm(stopped), "c2")}},
		{"cold migrate and confirm", active, []op{in(coldMigrate("c2-h2"), "c2"), in(confirm(active), "c2")}},
		{"resize again after a revert", active, []op{in(resize("medium"), "c2"), in(revert(active), "c1"),
			in(resize("medium"), "c2"), in(confirm(active), "c2")}},
		{"back to the first cell after a confirm", active, []op{in(resize("medium"), "c2"), in(confirm(active), "c2"),
			in(coldMigrate("c1-h1"), "c1"), in(confirm(active), "c1")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			f := newFixture(t)
			f.boot(ctx, vm1, "c1", "c1-h1", "small", tc.vm)
			c := f.conductor("conductor-a")
			for _, o := range tc.ops {
				res, err := o.run(ctx, c)
				if err != nil {
					t.Fatalf("%s: %v", o.name, err)
				}
				if res.DestCell != o.wantCell || f.mappedCell(ctx, vm1) != o.wantCell {
					t.Fatalf("%s: ended in cell %s (mapping %s), want %s", o.name, res.DestCell, f.mappedCell(ctx, vm1), o.wantCell)
				}
				if res.State.VM != o.wantVM {
					t.Fatalf("%s: vm_state %s, want %s", o.name, res.State.VM, o.wantVM)
				}
				if err := f.check(ctx, vm1); err != nil {
					t.Fatalf("after %s: %v", o.name, err)
				}
			}
		})
	}
}

// TestNotificationsAsSameCell checks that a cross-cell resize, confirm
// and revert send the notifications of a same-cell one, in order, and
// leave the instance's visible copy with the same actions, finished.
func TestNotificationsAsSameCell(t *testing.T) {
	ctx := context.Background()
	run := func(policy bool, flavor string, finish func(*Conductor) (*Result, error)) ([]sm.Notification, []sm.Action) {
		f := newFixture(t)
		f.policy.AllowCrossCellResize = policy
		f.boot(ctx, vm1, "c1", "c1-h1", "tiny", sm.VMActive)
		c := f.conductor("a")
		res, err := c.Resize(ctx, migrate.ResizeRequest{InstanceUUID: vm1, FlavorID: flavor})
		if err != nil {
			t.Fatal(err)
		}
		if res.CrossCell != policy {
			t.Fatalf("cross-cell %v, want %v", res.CrossCell, policy)
		}
		if _, err := finish(c); err != nil {
			t.Fatal(err)
		}
		acts, err := f.stores[f.mappedCell(ctx, vm1)].ListActions(ctx, vm1)
		if err != nil {
			t.Fatal(err)
		}
		var names []sm.Action
		for _, a := range acts {
			if a.FinishTime.IsZero() || len(a.Events) == 0 {
				t.Fatalf("action %s not finished or without events: %+v", a.Action, a)
			}
			names = append(names, a.Action)
		}
		return f.notes.EventTypes(), names
	}
	for _, fin := range []struct {
		name string
		f    func(*Conductor) (*Result, error)
	}{
		{"confirm", func(c *Conductor) (*Result, error) {
			return c.Confirm(ctx, migrate.ActionRequest{InstanceUUID: vm1})
		}},
		{"revert", func(c *Conductor) (*Result, error) {
			return c.Revert(ctx, migrate.ActionRequest{InstanceUUID: vm1})
		}},
	} {
		sameN, sameA := run(false, "small", fin.f)
		crossN, crossA := run(true, "medium", fin.f)
		if fmt.Sprint(sameN) != fmt.Sprint(crossN) {
			t.Errorf("%s: notifications\nsame-cell  %v\ncross-cell %v", fin.name, sameN, crossN)
		}
		if fmt.Sprint(sameA) != fmt.Sprint(crossA) {
			t.Errorf("%s: actions same-cell %v, cross-cell %v", fin.name, sameA, crossA)
		}
	}
}

func contains[T comparable](xs []T, x T) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

func TestBadInput(t *testing.T) {
	ctx := context.Background()
	t.Run("policy off stays in the cell", func(t *testing.T) {
		f := newFixture(t)
		f.policy.AllowCrossCellResize = false
		f.boot(ctx, vm1, "c1", "c1-h1", "small", sm.VMActive)
		res, err := f.conductor("a").Resize(ctx, migrate.ResizeRequest{InstanceUUID: vm1, FlavorID: "tiny"})
		if err != nil {
			t.Fatal(err)
		}
		if res.CrossCell || res.DestCell != "c1" || res.DestHost != "c1-h2" {
			t.Fatalf("moved to %s/%s, want c1/c1-h2", res.DestCell, res.DestHost)
		}
		if err := f.check(ctx, vm1); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("policy off and only other cells fit", func(t *testing.T) {
		f := newFixture(t)
		f.policy.AllowCrossCellResize = false
		f.boot(ctx, vm1, "c1", "c1-h1", "small", sm.VMActive)
		_, err := f.conductor("a").Resize(ctx, migrate.ResizeRequest{InstanceUUID: vm1, FlavorID: "medium"})
		if !errors.Is(err, scheduler.ErrNoValidHost) {
			t.Fatalf("got %v, want NoValidHost", err)
		}
		if err := f.check(ctx, vm1); err != nil {
			t.Fatal(err)
		}
		if _, hidden := f.copies(ctx, vm1); len(hidden) != 0 {
			t.Fatalf("hidden copies %v", keys(hidden))
		}
	})
	t.Run("mapping names a cell without a copy", func(t *testing.T) {
		f := newFixture(t)
		f.boot(ctx, vm1, "c1", "c1-h1", "small", sm.VMActive)
		if err := f.api.SaveMapping(ctx, InstanceMapping{InstanceUUID: vm1, Cell: "c2"}); err != nil {
			t.Fatal(err)
		}
		c := f.conductor("a")
		_, err := c.Resize(ctx, migrate.ResizeRequest{InstanceUUID: vm1, FlavorID: "medium"})
		var nc *NoCopyError
		if !errors.As(err, &nc) || nc.Cell != "c2" || !errors.Is(err, ErrBadRequest) {
			t.Fatalf("got %v, want *NoCopyError for c2", err)
		}
		if _, err := c.ResumeInstance(ctx, vm1); !errors.As(err, &nc) {
			t.Fatalf("resume: got %v, want *NoCopyError", err)
		}
		if v, _ := f.copies(ctx, vm1); len(v) != 1 || v["c1"] == nil {
			t.Fatalf("visible copies %v", keys(v))
		}
	})
	t.Run("mapping names an unknown cell", func(t *testing.T) {
		f := newFixture(t)
		f.boot(ctx, vm1, "c1", "c1-h1", "small", sm.VMActive)
		if err := f.api.SaveMapping(ctx, InstanceMapping{InstanceUUID: vm1, Cell: "c9"}); err != nil {
			t.Fatal(err)
		}
		_, err := f.conductor("a").Resize(ctx, migrate.ResizeRequest{InstanceUUID: vm1, FlavorID: "medium"})
		var uc *UnknownCellError
		if !errors.As(err, &uc) || uc.Cell != "c9" {
			t.Fatalf("got %v, want *UnknownCellError", err)
		}
	})
	t.Run("target cell refuses the copy", func(t *testing.T) {
		f := newFixture(t)
		f.boot(ctx, vm1, "c1", "c1-h1", "small", sm.VMActive)
		f.stores["c2"].refuseCopy = true
		res, err := f.conductor("a").Resize(ctx, migrate.ResizeRequest{InstanceUUID: vm1, FlavorID: "medium"})
		var te *TaskError
		if !errors.As(err, &te) || te.Task != "TargetDBSetupTask" || te.Cell != "c2" || !errors.Is(err, compute.ErrInvalidRecord) {
			t.Fatalf("got %v, want the TargetDBSetupTask's *TaskError", err)
		}
		if res.State != (sm.FlowState{VM: sm.VMActive, Migration: sm.MigrationError}) {
			t.Fatalf("ended in %s", res.State)
		}
		if err := f.check(ctx, vm1); err != nil {
			t.Fatal(err)
		}
		if l, _ := f.stores["c2"].ListInstances(ctx, compute.InstanceFilter{}); len(l) != 0 {
			t.Fatalf("c2 holds %d instances", len(l))
		}
	})
}
