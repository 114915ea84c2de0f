package migrate_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/migrate"
	"github.com/xenflow/xenflow/quota"
	sm "github.com/xenflow/xenflow/statemachine"
	"github.com/xenflow/xenflow/xenapi/xenapitest"
	"github.com/xenflow/xenflow/xenserver"
)

// BenchmarkEndToEndResizes resizes 1,000 instances with small disks at
// once over 100 hosts (ten simulated pools of ten, each served over HTTP
// on 127.0.0.1) with the real XenServer driver, and reports the time the
// 1,000 took, the resizes per second and how many rolled back; every
// instance is then checked RESIZED with its data on the destination, or
// (a resize the loaded pools failed) ACTIVE with it on the source.
// Building the pools is not timed. Run it once:
//
//	go test -run - -bench EndToEndResizes -benchtime 1x ./migrate
func BenchmarkEndToEndResizes(b *testing.B) {
	const pools, hostsPerPool, instances, written = 10, 10, 1000, 64 << 10
	l := eLayout{name: "10x10"}
	for i := 0; i < pools; i++ {
		l.pools = append(l.pools, hostsPerPool)
	}
	for n := 0; n < b.N; n++ {
		b.StopTimer()
		w := newEPools(b, l, 64<<30)
		var err error
		if w.ledger, err = quota.NewLedger(quota.WithDefaultLimits(quota.Limits{quota.Cores: quota.Unlimited,
			quota.RAM: quota.Unlimited, quota.Instances: quota.Unlimited})); err != nil {
			b.Fatal(err)
		}
		data := pattern(written)
		ids := w.addInstances(instances, data)
		w.opts.HostRefresh = time.Hour // host states read once, then consumed as Nova's host manager does
		o := w.orch(w.store, "bench")
		b.StartTimer()
		start := time.Now()
		errs := make([]error, instances)
		var wg sync.WaitGroup
		for i, id := range ids {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = o.Resize(context.Background(), migrate.ResizeRequest{InstanceUUID: id, FlavorID: "large"})
			}()
		}
		wg.Wait()
		elapsed := time.Since(start)
		b.StopTimer()
		// A resize the pools fail (under this load the simulated pool's
		// HTTP server may drop a connection) must have rolled back to the
		// source; only the ones that moved count.
		var moved, failed []string
		for i, err := range errs {
			var opErr *migrate.OperationError
			switch {
			case err == nil:
				moved = append(moved, ids[i])
			case errors.As(err, &opErr):
				failed = append(failed, ids[i])
				b.Logf("resize of %s rolled back: %v", ids[i], err)
			default:
				b.Fatalf("resize of %s: %v", ids[i], err)
			}
		}
		w.checkResized(moved, data)
		w.checkRolledBack(failed, data)
		b.ReportMetric(elapsed.Seconds(), "s/1000-resizes")
		b.ReportMetric(float64(len(moved))/elapsed.Seconds(), "resizes/s")
		b.ReportMetric(float64(len(failed)), "rolled-back")
	}
}

func pattern(n int) []byte {
	out := make([]byte, n)
	for i := range out {
		out[i] = byte(i*7 + i/4096)
	}
	return out
}

// addInstances boots n instances of flavor medium round-robin over the
// hosts, each with a 1 MiB root disk whose first bytes the guest wrote.
func (w *eworld) addInstances(n int, data []byte) []string {
	w.t.Helper()
	ctx := context.Background()
	f := w.flavors["medium"]
	var ids []string
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i)
		host := w.hosts[i%len(w.hosts)]
		p := w.pools[w.poolOf[host]]
		name := "instance-" + id[:8]
		vm, err := p.AddVM(xenapitest.VMSpec{Name: name, Host: host, Memory: int64(f.MemoryMB) << 20, VCPUs: f.VCPUs,
			Disks: []int64{1 << 20}, Running: true, Networks: []string{p.Network()},
			OtherConfig: map[string]string{xenserver.KeyNovaUUID: id}})
		if err != nil {
			w.t.Fatal(err)
		}
		if err := p.WriteGuestDisk(vm.Ref, "0", 0, data); err != nil {
			w.t.Fatal(err)
		}
		if err := w.store.CreateInstance(ctx, &compute.Instance{UUID: id, Name: name, Host: host, Node: host,
			ProjectID: eProject, UserID: eUser, VMState: sm.VMActive, PowerState: sm.PowerRunning, Flavor: f.Clone(),
			LaunchedAt: eStart}); err != nil {
			w.t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if _, err := w.ledger.Reconcile(ctx, eProject, w.charges()); err != nil {
		w.t.Fatal(err)
	}
	return ids
}

// checkRolledBack checks every instance ACTIVE on its source host with
// its data there.
func (w *eworld) checkRolledBack(ids []string, data []byte) {
	w.t.Helper()
	for _, id := range ids {
		inst, err := w.store.GetInstance(context.Background(), id)
		if err != nil {
			w.t.Fatal(err)
		}
		if inst.VMState != sm.VMActive || inst.TaskState != sm.TaskNone {
			w.t.Fatalf("instance %s after a failed resize: %s/%s", id, inst.VMState, inst.TaskState)
		}
		w.checkData(inst, data)
	}
}

// checkResized checks every instance RESIZED on another host with its
// data on the root disk there.
func (w *eworld) checkResized(ids []string, data []byte) {
	w.t.Helper()
	ctx := context.Background()
	for _, id := range ids {
		inst, err := w.store.GetInstance(ctx, id)
		if err != nil {
			w.t.Fatal(err)
		}
		if inst.VMState != sm.VMResized || inst.TaskState != sm.TaskNone {
			w.t.Fatalf("instance %s: %s/%s", id, inst.VMState, inst.TaskState)
		}
		w.checkData(inst, data)
	}
}

// checkData compares the start of the instance's root disk, on the host
// the Store names, with data.
func (w *eworld) checkData(inst *compute.Instance, data []byte) {
	w.t.Helper()
	pi := w.poolOf[inst.Host]
	ref, _ := w.instanceVM(inst)
	got := make([]byte, len(data))
	if err := w.pools[pi].ReadVDIAt(string(w.root(w.clients[pi], ref)), got, 0); err != nil {
		w.t.Fatal(err)
	}
	if string(got) != string(data) {
		w.t.Fatalf("instance %s: root disk on %s differs from the guest's data", inst.UUID, inst.Host)
	}
}
