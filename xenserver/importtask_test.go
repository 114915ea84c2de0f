package xenserver

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/xenapi/xenapitest"
)

// relayTasks counts the tasks of the pool the relay made for its imports
// ("xenflow: import into ") or exports ("xenflow: export ") that are
// still there.
func relayTasks(t *testing.T, e *testEnv, host, prefix string) int {
	t.Helper()
	ctx := context.Background()
	tg, err := e.d.pool(ctx, host)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := tg.Client.Task.GetAllRecords(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, rec := range recs {
		if strings.HasPrefix(rec.NameLabel, prefix) {
			n++
		}
	}
	return n
}

const (
	importTaskPrefix = "xenflow: import into "
	exportTaskPrefix = "xenflow: export "
)

// TestRelayImportTask: every export and every import runs under a task
// the relay made (task_id), waited for and destroyed; a cancelled move
// cancels both tasks and leaves none behind.
func TestRelayImportTask(t *testing.T) {
	t.Run("done", func(t *testing.T) {
		r := newResize(t, standalone, "compute2", true)
		r.migrate(t)
		dest := r.e.pools["pool2"]
		if n, imports := dest.CallCount("task.create"), dest.CallCount(xenapitest.ImportRawVDIAction); n == 0 || n != imports {
			t.Fatalf("%d tasks created for %d imports", n, imports)
		}
		if n := relayTasks(t, r.e, "compute2", importTaskPrefix); n != 0 {
			t.Fatalf("%d import tasks left", n)
		}
		src := r.e.pools["pool1"]
		if n, exports := src.CallCount("task.create"), src.CallCount(xenapitest.ExportRawVDIAction); n == 0 || n != exports {
			t.Fatalf("%d tasks created for %d exports", n, exports)
		}
		if n := relayTasks(t, r.e, "compute1", exportTaskPrefix); n != 0 {
			t.Fatalf("%d export tasks left", n)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		r := newResize(t, standalone, "compute2", true)
		dest := r.e.pools["pool2"]
		dest.InjectFault(xenapitest.Fault{Method: xenapitest.ImportRawVDIAction, N: 1, Delay: time.Hour})
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() { errc <- migrateOnce(ctx, &sweepState{r: r}) }()
		for i := 0; i < 5000 && dest.CallCount(xenapitest.ImportRawVDIAction) == 0; i++ {
			time.Sleep(time.Millisecond)
		}
		cancel()
		err := <-errc
		dest.ClearFaults()
		if !errors.Is(err, context.Canceled) || !errors.As(err, new(*compute.InstanceFaultRollback)) {
			t.Fatalf("got %v, want a cancelled move rolled back", err)
		}
		if dest.CallCount("task.cancel") == 0 {
			t.Fatal("the import's task was not cancelled")
		}
		if n := relayTasks(t, r.e, "compute2", importTaskPrefix); n != 0 {
			t.Fatalf("%d import tasks left", n)
		}
		src := r.e.pools["pool1"]
		if src.CallCount("task.cancel") == 0 {
			t.Fatal("the export's task was not cancelled")
		}
		if n := relayTasks(t, r.e, "compute1", exportTaskPrefix); n != 0 {
			t.Fatalf("%d export tasks left", n)
		}
		checkSourceIntact(t, r.e, r.g, true)
	})
}
