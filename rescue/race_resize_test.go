package rescue_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/compute/computetest"
	"github.com/xenflow/xenflow/migrate"
	"github.com/xenflow/xenflow/quota"
	"github.com/xenflow/xenflow/rescue"
	sm "github.com/xenflow/xenflow/statemachine"
)

// raceWorld is one instance on three fake hosts with a rescue and a migrate
// orchestrator sharing one Store.
type raceWorld struct {
	store  *compute.MemoryStore
	driver *computetest.FakeDriver
	resc   *rescue.Orchestrator
	mig    *migrate.Orchestrator
}

func newRaceWorld(t *testing.T, seed uint64, vm sm.VMState) *raceWorld {
	t.Helper()
	ctx := context.Background()
	w := &raceWorld{store: compute.NewMemoryStore(), driver: computetest.NewFakeDriver()}
	hosts := []string{"host1", "host2", "host3"}
	for _, h := range hosts {
		if err := w.driver.AddHost(computetest.HostConfig{Host: h, TotalUsableRAMMB: 65536, VCPUsTotal: 32, TotalUsableDiskGB: 2000}); err != nil {
			t.Fatal(err)
		}
	}
	small := &compute.Flavor{ID: "small", Name: "small", VCPUs: 1, MemoryMB: 2048, RootGB: 20}
	large := &compute.Flavor{ID: "large", Name: "large", VCPUs: 2, MemoryMB: 4096, RootGB: 40}
	inst := &compute.Instance{UUID: "race-1", Name: "web", Host: "host1", Node: "host1", ProjectID: "p", UserID: "u",
		VMState: vm, PowerState: sm.PowerRunning, Flavor: small.Clone(), LaunchedAt: time.Now(), ImageRef: "img"}
	if err := w.store.CreateInstance(ctx, inst); err != nil {
		t.Fatal(err)
	}
	if err := w.driver.AddGuest("host1", inst, sm.PowerRunning); err != nil {
		t.Fatal(err)
	}
	ledger, err := quota.NewLedger()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ledger.Reconcile(ctx, "p", []quota.Charge{migrate.Charge(inst)}); err != nil {
		t.Fatal(err)
	}
	if w.mig, err = migrate.New(migrate.Config{Store: w.store, Driver: w.driver, Quota: ledger,
		Flavors: migrate.Flavors{"small": small, "large": large}, Hosts: hosts,
		Rand: rand.NewChaCha8([32]byte{byte(seed)}), Owner: "migrate"}); err != nil {
		t.Fatal(err)
	}
	if w.resc, err = rescue.New(rescue.Config{Store: w.store, Driver: w.driver, Owner: "rescue", RetryDelay: -1}); err != nil {
		t.Fatal(err)
	}
	return w
}

// typed reports whether err is one of the refusals a loser may get.
func typed(err error) bool {
	return errors.Is(err, compute.ErrLease) || errors.Is(err, compute.ErrConflict) || errors.Is(err, sm.ErrInvalidState)
}

// TestRaceWithResize: a rescue (or an unrescue) and a resize of one
// instance start together, many times: exactly one wins, the other gets a
// typed refusal, and the instance ends whole where the winner left it. An
// unrescue and a resize may also both win, one after the other, the
// resize last.
func TestRaceWithResize(t *testing.T) {
	for _, unrescue := range []bool{false, true} {
		for round := range 40 {
			t.Run(fmt.Sprintf("unrescue=%v/%d", unrescue, round), func(t *testing.T) {
				ctx := context.Background()
				w := newRaceWorld(t, uint64(round), sm.VMActive)
				if unrescue {
					if _, err := w.resc.Rescue(ctx, rescue.RescueRequest{InstanceUUID: "race-1"}); err != nil {
						t.Fatal(err)
					}
				}
				var wg sync.WaitGroup
				var rescErr, resizeErr error
				wg.Add(2)
				go func() {
					defer wg.Done()
					if unrescue {
						_, rescErr = w.resc.Unrescue(ctx, rescue.UnrescueRequest{InstanceUUID: "race-1"})
					} else {
						_, rescErr = w.resc.Rescue(ctx, rescue.RescueRequest{InstanceUUID: "race-1"})
					}
				}()
				go func() {
					defer wg.Done()
					_, resizeErr = w.mig.Resize(ctx, migrate.ResizeRequest{InstanceUUID: "race-1", FlavorID: "large"})
				}()
				wg.Wait()
				inst, err := w.store.GetInstance(ctx, "race-1")
				if err != nil {
					t.Fatal(err)
				}
				switch {
				case rescErr == nil && resizeErr != nil:
					if !typed(resizeErr) {
						t.Fatalf("the resize lost with an untyped error: %v", resizeErr)
					}
					want := sm.VMRescued
					if unrescue {
						want = sm.VMActive
					}
					if inst.VMState != want || inst.Host != "host1" {
						t.Fatalf("the rescue side won but the instance is %s on %s", inst.FlowState(nil), inst.Host)
					}
				case resizeErr == nil && rescErr != nil:
					if !typed(rescErr) {
						t.Fatalf("the rescue side lost with an untyped error: %v", rescErr)
					}
					if inst.VMState != sm.VMResized || len(w.driver.Guests(inst.Host)) != 1 {
						t.Fatalf("the resize won but the instance is %s on %s", inst.FlowState(nil), inst.Host)
					}
				case unrescue && rescErr == nil && resizeErr == nil:
					// Serialised: the unrescue finished before the resize
					// looked, and the resize then ran on an active instance.
					if inst.VMState != sm.VMResized || len(w.driver.Guests(inst.Host)) != 1 {
						t.Fatalf("both won but the instance is %s on %s", inst.FlowState(nil), inst.Host)
					}
				default:
					t.Fatalf("rescue side: %v; resize: %v: exactly one must win", rescErr, resizeErr)
				}
				if inst.TaskState != sm.TaskNone {
					t.Fatalf("task_state %s left", inst.TaskState)
				}
			})
		}
	}
}
