package sqlstore_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/ncruces/go-sqlite3"
	"github.com/ncruces/go-sqlite3/vfs"
	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/sqlstore"
)

// failingVFS is SQLite's own "os" VFS whose writes fail with the error in
// fail while it is set: the disk under the database filling up, or the
// device failing. It sits where SQLite meets the operating system, so
// SQLite sees exactly what a full or failing disk makes it see.
type failingVFS struct {
	vfs.VFS
	fail *atomic.Value // of failure
}

// failure is the error code writes fail with; zero writes.
type failure struct{ code sqlite3.ErrorCode }

// OpenFilename opens the file with the os VFS and wraps it.
func (v failingVFS) OpenFilename(name *vfs.Filename, flags vfs.OpenFlag) (vfs.File, vfs.OpenFlag, error) {
	f, out, err := v.VFS.(vfs.VFSFilename).OpenFilename(name, flags)
	if err != nil {
		return nil, out, err
	}
	return &failingFile{File: f, fail: v.fail}, out, nil
}

type failingFile struct {
	vfs.File
	fail *atomic.Value
}

func (f *failingFile) err() error {
	if c := f.fail.Load().(failure).code; c != 0 {
		return c
	}
	return nil
}

func (f *failingFile) WriteAt(p []byte, off int64) (int, error) {
	if err := f.err(); err != nil {
		return 0, err
	}
	return f.File.WriteAt(p, off)
}

func (f *failingFile) Truncate(size int64) error {
	if err := f.err(); err != nil {
		return err
	}
	return f.File.Truncate(size)
}

func (f *failingFile) Sync(flags vfs.SyncFlag) error {
	if err := f.err(); err != nil {
		return err
	}
	return f.File.Sync(flags)
}

// SharedMemory passes on the WAL index of the os VFS's file.
func (f *failingFile) SharedMemory() vfs.SharedMemory {
	if s, ok := f.File.(vfs.FileSharedMemory); ok {
		return s.SharedMemory()
	}
	return nil
}

// Unwrap returns the os VFS's file.
func (f *failingFile) Unwrap() vfs.File { return f.File }

// failingVFSName is the VFS's name in SQLite's registry ("?vfs=" in a DSN).
const failingVFSName = "sqlstore-test-failing"

// diskFailure is what the failing VFS's writes return; the VFS is
// registered once for the test binary.
var diskFailure = func() *atomic.Value {
	v := &atomic.Value{}
	v.Store(failure{})
	vfs.Register(failingVFSName, failingVFS{VFS: vfs.Find("os"), fail: v})
	return v
}()

// TestSQLiteDiskFails: the disk under a SQLite database fills up or fails
// while a step is written. The step stops with an *UnavailableError,
// neither the instance nor the migration changed; once the disk is back
// the same step succeeds, on the same store and after reopening the file,
// which passes SQLite's integrity check.
func TestSQLiteDiskFails(t *testing.T) {
	for _, tc := range []struct {
		name string
		code sqlite3.ErrorCode
	}{
		{"disk full", sqlite3.FULL},
		{"I/O error", sqlite3.IOERR},
		{"read-only", sqlite3.READONLY},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), "state.db")
			dsn := "file:" + path + "?vfs=" + failingVFSName
			s := openStore(t, dsn)
			lease := resizePrep(t, s)
			step := compute.TransitionRequest{InstanceUUID: "i1", MigrationUUID: "m1", Expect: preMigrating, Lease: lease, Apply: toMigrating}
			diskFailure.Store(failure{tc.code})
			_, _, err := s.Transition(ctx, step)
			diskFailure.Store(failure{})
			var ue *sqlstore.UnavailableError
			if !errors.As(err, &ue) || ue.Backend != "sqlite" || !errors.Is(err, tc.code) {
				t.Fatalf("step on a failing disk: %v (%T), want an *UnavailableError of %v", err, err, tc.code)
			}
			checkPreMigrating(t, s)
			if _, _, err := s.Transition(ctx, step); err != nil {
				t.Fatalf("the step once the disk is back: %v", err)
			}
			s.Close()
			s = openStore(t, dsn)
			var check string
			if err := s.DB().QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
				t.Fatalf("integrity check: %q, %v", check, err)
			}
			inst, _ := s.GetInstance(ctx, "i1")
			mig, _ := s.GetMigration(ctx, "m1")
			if got := inst.FlowState(mig); got != migrating {
				t.Fatalf("after reopening: %s, want the retried step's %s", got, migrating)
			}
		})
	}
}

// checkPreMigrating checks that i1 and m1 are still in resize_prep and
// pre-migrating: nothing of a failed step was written.
func checkPreMigrating(t *testing.T, s *sqlstore.Store) {
	t.Helper()
	inst, err := s.GetInstance(context.Background(), "i1")
	if err != nil {
		t.Fatal(err)
	}
	mig, err := s.GetMigration(context.Background(), "m1")
	if err != nil {
		t.Fatal(err)
	}
	if got := inst.FlowState(mig); got != preMigrating {
		t.Fatalf("after the failed step the store holds %s, want %s", got, preMigrating)
	}
}
