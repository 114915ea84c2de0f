package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/ncruces/go-sqlite3"
	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/compute/computetest"
	"github.com/xenflow/xenflow/migrate"
	"github.com/xenflow/xenflow/quota"
	"github.com/xenflow/xenflow/sqlstore"
	sm "github.com/xenflow/xenflow/statemachine"
)

// fillingStore fills the disk under the database (the failing VFS's
// writes fail with SQLITE_FULL) right after the after-th step it wrote.
type fillingStore struct {
	*sqlstore.Store
	after, done int
}

func (s *fillingStore) Transition(ctx context.Context, req compute.TransitionRequest) (*compute.Instance, *compute.Migration, error) {
	inst, mig, err := s.Store.Transition(ctx, req)
	if err == nil {
		if s.done++; s.done == s.after {
			diskFailure.Store(failure{sqlite3.FULL})
		}
	}
	return inst, mig, err
}

// diskFlow is an orchestrator over a SQLite file on the failing VFS, with
// a fake pool of two hosts and one running instance.
type diskFlow struct {
	store   *sqlstore.Store
	filling *fillingStore
	driver  *computetest.FakeDriver
	ledger  *quota.Ledger
	o       *migrate.Orchestrator
}

func newDiskFlow(t *testing.T, after int) *diskFlow {
	ctx := context.Background()
	st := openStore(t, "file:"+filepath.Join(t.TempDir(), "state.db")+"?vfs="+failingVFSName)
	f := &diskFlow{store: st, driver: computetest.NewFakeDriver()}
	for _, h := range []string{"host1", "host2"} {
		if err := f.driver.AddHost(computetest.HostConfig{Host: h, TotalUsableRAMMB: 65536, VCPUsTotal: 32, TotalUsableDiskGB: 2000}); err != nil {
			t.Fatal(err)
		}
	}
	small := &compute.Flavor{ID: "small", Name: "m1.small", VCPUs: 1, MemoryMB: 2048, RootGB: 20}
	large := &compute.Flavor{ID: "large", Name: "m1.large", VCPUs: 4, MemoryMB: 8192, RootGB: 80}
	inst := &compute.Instance{UUID: "i1", Name: "web", Host: "host1", Node: "host1", ProjectID: "p", UserID: "u",
		VMState: sm.VMActive, PowerState: sm.PowerRunning, Flavor: small.Clone(), LaunchedAt: time.Now()}
	if err := st.CreateInstance(ctx, inst); err != nil {
		t.Fatal(err)
	}
	if err := f.driver.AddGuest("host1", inst, sm.PowerRunning); err != nil {
		t.Fatal(err)
	}
	var err error
	if f.ledger, err = quota.NewLedger(quota.WithStore(st.Quota())); err != nil {
		t.Fatal(err)
	}
	if _, err := f.ledger.Reconcile(ctx, "p", []quota.Charge{migrate.Charge(inst)}); err != nil {
		t.Fatal(err)
	}
	f.filling = &fillingStore{Store: st, after: after}
	f.o, err = migrate.New(migrate.Config{Store: f.filling, Driver: f.driver, Quota: f.ledger,
		Flavors: migrate.Flavors{"small": small, "large": large}, Hosts: []string{"host1", "host2"},
		Rand: rand.NewChaCha8([32]byte{}), Owner: "o1", LeaseTTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestSQLiteDiskFillsMidResize fills the disk under the database after
// each step of a resize in turn: the resize stops with an error that is
// the store's *UnavailableError; once the disk is back, Resume and a
// confirm end the instance ACTIVE with no task, resized or rolled back
// with a fault, its guest on the host the Store names and nowhere else,
// no disk left over, and the quota exact.
func TestSQLiteDiskFillsMidResize(t *testing.T) {
	steps := countResizeSteps(t)
	for after := 1; after < steps; after++ {
		t.Run(fmt.Sprintf("after-step-%d", after), func(t *testing.T) {
			defer diskFailure.Store(failure{})
			ctx := context.Background()
			f := newDiskFlow(t, after)
			_, err := f.o.Resize(ctx, migrate.ResizeRequest{InstanceUUID: "i1", FlavorID: "large"})
			diskFailure.Store(failure{})
			if !errors.Is(err, sqlstore.ErrUnavailable) {
				t.Fatalf("resize on a full disk: %v (%T), want the store's *UnavailableError", err, err)
			}
			if _, err := f.o.Resume(ctx); err != nil {
				t.Fatalf("resume once the disk is back: %v", err)
			}
			if inst, err := f.store.GetInstance(ctx, "i1"); err == nil && inst.VMState == sm.VMResized {
				if _, err := f.o.Confirm(ctx, migrate.ActionRequest{InstanceUUID: "i1"}); err != nil {
					t.Fatalf("confirm: %v", err)
				}
			}
			f.check(ctx, t)
		})
	}
}

// countResizeSteps runs the resize with a disk that never fills and
// returns how many steps it wrote.
func countResizeSteps(t *testing.T) int {
	f := newDiskFlow(t, -1)
	if _, err := f.o.Resize(context.Background(), migrate.ResizeRequest{InstanceUUID: "i1", FlavorID: "large"}); err != nil {
		t.Fatal(err)
	}
	if f.filling.done < 3 {
		t.Fatalf("the resize wrote %d steps", f.filling.done)
	}
	return f.filling.done
}

// check checks the end state of a resize that met a full disk.
func (f *diskFlow) check(ctx context.Context, t *testing.T) {
	t.Helper()
	inst, err := f.store.GetInstance(ctx, "i1")
	if err != nil {
		t.Fatal(err)
	}
	faults, err := f.store.ListFaults(ctx, "i1")
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case inst.VMState != sm.VMActive || inst.TaskState != sm.TaskNone:
		t.Fatalf("instance ended %s/%s", inst.VMState, inst.TaskState)
	case inst.Flavor.ID != "large" && len(faults) == 0:
		t.Fatalf("instance kept flavor %s without a fault", inst.Flavor.ID)
	}
	t.Logf("ended %s on %s with flavor %s, %d fault(s)", inst.FlowState(nil), inst.Host, inst.Flavor.ID, len(faults))
	if migs, err := f.store.ListMigrations(ctx, compute.MigrationFilter{InProgress: true}); err != nil || len(migs) != 0 {
		t.Errorf("migrations in progress: %+v (%v)", migs, err)
	}
	for _, h := range []string{"host1", "host2"} {
		guests := f.driver.Guests(h)
		if want := map[bool]int{true: 1, false: 0}[h == inst.Host]; len(guests) != want {
			t.Errorf("%s has guests %+v; the Store says the instance is on %s", h, guests, inst.Host)
		}
		if o := f.driver.Orphans(h); len(o) != 0 {
			t.Errorf("%s has disks no guest uses: %+v", h, o)
		}
	}
	u, err := f.ledger.Usage(ctx, "p")
	if err != nil || u.Pending != 0 {
		t.Errorf("quota: %d reservations pending (%v)", u.Pending, err)
	}
	if drift, err := f.ledger.Reconcile(ctx, "p", []quota.Charge{migrate.Charge(inst)}); err != nil || len(drift) != 0 {
		t.Errorf("quota drifted: %+v (%v)", drift, err)
	}
}
