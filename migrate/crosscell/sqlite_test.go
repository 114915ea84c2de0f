package crosscell

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/sqlstore"
	sm "github.com/xenflow/xenflow/statemachine"
)

// TestSQLiteCellsHardDelete runs the cells on two SQLite files: a resize
// to c2 confirmed, the databases closed and opened again, and c1 holds no
// record of the instance (no instance, migration, action or fault); the
// move back to c1 then works, and once confirmed c2 holds none either.
func TestSQLiteCellsHardDelete(t *testing.T) {
	ctx := context.Background()
	open := sqliteCells(t)
	f := newFixtureOn(t, open)
	f.boot(ctx, vm1, "c1", "c1-h1", "small", sm.VMActive)
	steps := []struct {
		op   op
		gone string // the cell that must hold nothing of the instance after it
	}{
		{in(resize("medium"), "c2"), ""},
		{in(confirm(sm.VMActive), "c2"), "c1"},
		{in(coldMigrate("c1-h1"), "c1"), ""},
		{in(confirm(sm.VMActive), "c1"), "c2"},
	}
	for _, st := range steps {
		res, err := st.op.run(ctx, f.conductor("conductor"))
		if err != nil {
			t.Fatalf("%s: %v", st.op.name, err)
		}
		if res.DestCell != st.op.wantCell {
			t.Fatalf("%s: ended in %s, want %s", st.op.name, res.DestCell, st.op.wantCell)
		}
		f.reopen(t, open)
		if err := f.check(ctx, vm1); err != nil {
			t.Fatalf("%s, reopened: %v", st.op.name, err)
		}
		if st.gone != "" {
			if n := f.recordsOf(ctx, st.gone, vm1); n != [4]int{} {
				t.Fatalf("%s, reopened: %s holds instance, migrations, actions, faults %v of it", st.op.name, st.gone, n)
			}
		}
	}
}

// sqliteCells returns a function that opens a cell's store in a SQLite
// file of its own, in a directory of the test's.
func sqliteCells(t *testing.T) func(string, func() time.Time) cellStore {
	dir := t.TempDir()
	return func(cell string, now func() time.Time) cellStore {
		s, err := sqlstore.Open(context.Background(), filepath.Join(dir, cell+".db"), sqlstore.WithClock(now))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
}

// TestCrashSweepSQLite is TestCrashSweep on cells kept in SQLite files:
// stopped after every write and before every driver call, the databases
// closed and opened again (what a restarted conductor finds), a second
// conductor resumes and the invariants hold, the hard deletes included.
func TestCrashSweepSQLite(t *testing.T) {
	if testing.Short() {
		t.Skip("two SQLite files per point")
	}
	for _, sc := range scenarios() {
		t.Run(sc.name, func(t *testing.T) {
			n := sc.points(t, false)
			for k := 1; k <= n; k++ {
				open := sqliteCells(t)
				f, c := sc.prepareOn(t, newFixtureOn(t, open))
				ctx, cancel := context.WithCancel(context.Background())
				f.p.arm(k, false, cancel)
				_, _ = sc.op.run(ctx, c)
				cancel()
				f.reopen(t, open)
				cell := f.recover(t, sc.name+" crash at point "+itoa(k))
				for _, other := range []string{"c1", "c2"} {
					if n := f.recordsOf(context.Background(), other, vm1); other != cell && !f.waiting(vm1) && n != [4]int{} {
						t.Errorf("%s crash at point %d: %s holds %v of the instance, which rests in %s", sc.name, k, other, n, cell)
					}
				}
			}
			t.Logf("%s: %d crash points", sc.name, n)
		})
	}
}

// waiting reports whether the instance's visible copy waits in
// VERIFY_RESIZE.
func (f *fixture) waiting(id string) bool {
	visible, _ := f.copies(context.Background(), id)
	for _, inst := range visible {
		return inst.VMState == sm.VMResized
	}
	return false
}

// reopen closes the cells' stores and opens them again from their files.
func (f *fixture) reopen(t *testing.T, open func(string, func() time.Time) cellStore) {
	for i := range f.cells {
		st := f.stores[f.cells[i].Name]
		if c, ok := st.cellStore.(interface{ Close() error }); ok {
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
		}
		st.cellStore = open(f.cells[i].Name, f.clock.Now)
	}
}

// recordsOf counts what a cell's store holds of an instance.
func (f *fixture) recordsOf(ctx context.Context, cell, uuid string) [4]int {
	s := f.stores[cell]
	var n [4]int
	if _, err := s.GetInstance(ctx, uuid); err == nil {
		n[0] = 1
	}
	migs, err1 := s.ListMigrations(ctx, compute.MigrationFilter{InstanceUUID: uuid})
	acts, err2 := s.ListActions(ctx, uuid)
	faults, err3 := s.ListFaults(ctx, uuid)
	for _, err := range []error{err1, err2, err3} {
		if err != nil {
			f.t.Fatal(err)
		}
	}
	n[1], n[2], n[3] = len(migs), len(acts), len(faults)
	return n
}
