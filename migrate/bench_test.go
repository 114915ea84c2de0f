package migrate

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/internal/cputime"
	"github.com/xenflow/xenflow/quota"
	"github.com/xenflow/xenflow/scheduler"
	sm "github.com/xenflow/xenflow/statemachine"
)

// nopDriver does nothing and reports fixed host states through the
// watcher: what is left to measure is the orchestration.
type nopDriver struct{ states []scheduler.HostState }

func (nopDriver) Capabilities() compute.DriverCapabilities { return compute.DriverCapabilities{} }
func (nopDriver) GetInfo(context.Context, compute.InstanceRequest) (compute.InstanceInfo, error) {
	return compute.InstanceInfo{PowerState: sm.PowerRunning}, nil
}
func (d nopDriver) GetAvailableResource(_ context.Context, r compute.HostRequest) (scheduler.HostState, error) {
	for _, s := range d.states {
		if s.Host == r.Host {
			return s, nil
		}
	}
	return scheduler.HostState{}, &compute.NotFoundError{Kind: "host", ID: r.Host}
}
func (d nopDriver) HostStates(_ context.Context, hosts []string) ([]scheduler.HostState, error) {
	if len(hosts) == len(d.states) {
		return d.states, nil
	}
	out := make([]scheduler.HostState, 0, len(hosts))
	for _, h := range hosts {
		s, err := d.GetAvailableResource(context.Background(), compute.HostRequest{Host: h})
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}
func (nopDriver) MigrateDiskAndPowerOff(context.Context, compute.MigrateDiskRequest) (compute.DiskInfo, error) {
	return compute.DiskInfo{}, nil
}
func (nopDriver) FinishMigration(context.Context, compute.FinishMigrationRequest) error   { return nil }
func (nopDriver) ConfirmMigration(context.Context, compute.ConfirmMigrationRequest) error { return nil }
func (nopDriver) FinishRevertMigration(context.Context, compute.FinishRevertRequest) error {
	return nil
}
func (nopDriver) Destroy(context.Context, compute.DestroyRequest) error                   { return nil }
func (nopDriver) PowerOff(context.Context, compute.PowerOffRequest) error                 { return nil }
func (nopDriver) PowerOn(context.Context, compute.InstanceRequest) error                  { return nil }
func (nopDriver) Rescue(context.Context, compute.RescueRequest) error                     { return nil }
func (nopDriver) Unrescue(context.Context, compute.InstanceRequest) error                 { return nil }
func (nopDriver) Snapshot(context.Context, compute.SnapshotRequest) error                 { return nil }
func (nopDriver) Spawn(context.Context, compute.SpawnRequest) error                       { return nil }
func (nopDriver) CleanupMigration(context.Context, compute.CleanupMigrationRequest) error { return nil }

// BenchmarkResizeConfirm measures orchestration alone: a resize and its
// confirm per op, on a driver that does nothing, the memory Store, a quota
// ledger and 100 hosts; cpu-ns/op is the control plane's CPU per resize.
// Run it on one core: go test -run - -bench ResizeConfirm -cpu 1 ./migrate
func BenchmarkResizeConfirm(b *testing.B) {
	const hosts, instances = 100, 1000
	ctx := context.Background()
	d := nopDriver{}
	var names []string
	for i := 0; i < hosts; i++ {
		h := fmt.Sprintf("host%03d", i)
		names = append(names, h)
		d.states = append(d.states, scheduler.HostState{Host: h, Node: h, TotalUsableRAMMB: 1 << 20,
			FreeRAMMB: 1 << 20, VCPUsTotal: 1024, TotalUsableDiskGB: 1 << 16, FreeDiskMB: 1 << 26})
	}
	store := compute.NewMemoryStore()
	ledger, err := quota.NewLedger(quota.WithDefaultLimits(quota.Limits{quota.Cores: -1, quota.RAM: -1, quota.Instances: -1}))
	if err != nil {
		b.Fatal(err)
	}
	flavors := Flavors{"a": {ID: "a", Name: "a", VCPUs: 1, MemoryMB: 1024, RootGB: 10},
		"b": {ID: "b", Name: "b", VCPUs: 2, MemoryMB: 2048, RootGB: 20}}
	o, err := New(Config{Store: store, Driver: d, Quota: ledger, Flavors: flavors, Hosts: names,
		Rand: rand.NewChaCha8([32]byte{1}), Owner: "bench", LeaseTTL: time.Minute,
		Options: Options{HostRefresh: time.Second}})
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < instances; i++ {
		if err := store.CreateInstance(ctx, &compute.Instance{UUID: fmt.Sprintf("i%04d", i), Host: names[i%hosts],
			Node: names[i%hosts], ProjectID: "p", UserID: "u", VMState: sm.VMActive, PowerState: sm.PowerRunning,
			Flavor: flavors["a"].Clone(), LaunchedAt: time.Now()}); err != nil {
			b.Fatal(err)
		}
	}
	next := make([]string, instances)
	for i := range next {
		next[i] = "b"
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cputime.Process()
	for n := 0; n < b.N; n++ {
		i := n % instances
		id := fmt.Sprintf("i%04d", i)
		if _, err := o.Resize(ctx, ResizeRequest{InstanceUUID: id, FlavorID: next[i]}); err != nil {
			b.Fatal(err)
		}
		if _, err := o.Confirm(ctx, ActionRequest{InstanceUUID: id}); err != nil {
			b.Fatal(err)
		}
		next[i] = map[string]string{"a": "b", "b": "a"}[next[i]]
	}
	b.StopTimer()
	cputime.Report(b, cpu0, 0)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "resizes/s")
}
