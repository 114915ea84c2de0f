package sqlstore_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/compute/computetest"
	"github.com/xenflow/xenflow/internal/cputime"
	"github.com/xenflow/xenflow/sqlstore"
	"github.com/xenflow/xenflow/statemachine"
)

// benchCycle is a loop of step states: each step is one instance and one
// migration compare-and-set.
var benchCycle = []statemachine.FlowState{
	preMigrating,
	{VM: statemachine.VMActive, Task: statemachine.TaskResizeMigrating, Migration: statemachine.MigrationMigrating},
	{VM: statemachine.VMActive, Task: statemachine.TaskResizeMigrated, Migration: statemachine.MigrationPostMigrating},
	{VM: statemachine.VMActive, Task: statemachine.TaskResizeFinish, Migration: statemachine.MigrationFinished},
}

// benchInstance is one goroutine's instance, migration and lease.
type benchInstance struct {
	uuid, mig string
	lease     compute.Lease
	step      int
}

func newBenchInstance(b *testing.B, s compute.Store, n int) *benchInstance {
	ctx := context.Background()
	bi := &benchInstance{uuid: fmt.Sprintf("i%d", n), mig: fmt.Sprintf("m%d", n)}
	inst := computetest.Instance(bi.uuid)
	inst.TaskState = statemachine.TaskResizePrep
	if err := s.CreateInstance(ctx, inst); err != nil {
		b.Fatal(err)
	}
	if err := s.CreateMigration(ctx, computetest.Migration(bi.mig, bi.uuid)); err != nil {
		b.Fatal(err)
	}
	l, err := s.AcquireLease(ctx, compute.LeaseRequest{InstanceUUID: bi.uuid, Owner: "bench", TTL: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	bi.lease = l
	return bi
}

// next writes the instance's next step.
func (bi *benchInstance) next(b *testing.B, s compute.Store) {
	from, to := benchCycle[bi.step%len(benchCycle)], benchCycle[(bi.step+1)%len(benchCycle)]
	_, _, err := s.Transition(context.Background(), compute.TransitionRequest{InstanceUUID: bi.uuid, MigrationUUID: bi.mig,
		Expect: from, Lease: bi.lease, Apply: func(inst *compute.Instance, mig *compute.Migration) error {
			inst.SetFlowState(mig, to)
			inst.Progress = bi.step % 100
			return nil
		}})
	if err != nil {
		b.Error(err)
	}
	bi.step++
}

// BenchmarkStep measures step transitions per second (steps/s): memory,
// SQLite on one file and PostgreSQL on loopback, each from one goroutine
// and from 8 goroutines driving an instance each.
func BenchmarkStep(b *testing.B) {
	stores := []struct {
		name string
		open func(b *testing.B) compute.Store
	}{
		{"memory", func(*testing.B) compute.Store { return compute.NewMemoryStore() }},
		{"sqlite", func(b *testing.B) compute.Store { return openStore(b, filepath.Join(b.TempDir(), "state.db")) }},
		{"postgres", func(b *testing.B) compute.Store { return openStore(b, pgDSN(b)) }},
	}
	for _, st := range stores {
		for _, goroutines := range []int{1, 8} {
			b.Run(fmt.Sprintf("%s/goroutines=%d", st.name, goroutines), func(b *testing.B) {
				benchSteps(b, st.open(b), goroutines)
			})
		}
	}
}

func benchSteps(b *testing.B, s compute.Store, goroutines int) {
	instances := make([]*benchInstance, goroutines)
	for i := range instances {
		instances[i] = newBenchInstance(b, s, i)
	}
	var n atomic.Int64
	cpu0 := cputime.Process()
	b.ResetTimer()
	if goroutines == 1 {
		for i := 0; i < b.N; i++ {
			instances[0].next(b, s)
		}
	} else {
		b.SetParallelism((goroutines + 1) / 2) // 2 cores × 4 = 8 goroutines
		b.RunParallel(func(pb *testing.PB) {
			bi := instances[int(n.Add(1)-1)%goroutines]
			for pb.Next() {
				bi.next(b, s)
			}
		})
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "steps/s")
	// CPU time shows the cost of a step that wall time hides behind other
	// load on a shared machine (for PostgreSQL it leaves out the server's
	// share).
	b.ReportMetric(float64(cputime.Process()-cpu0)/float64(b.N), "cpu-ns/step")
}

var _ compute.Store = (*sqlstore.Store)(nil)
