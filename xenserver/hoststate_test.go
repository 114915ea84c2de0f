package xenserver

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"reflect"
	"testing"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/scheduler"
	"github.com/xenflow/xenflow/xenapi/xenapitest"
)

// placeGuests puts n running guests (1 GiB, 2 vCPUs each) and one halted
// guest on each compute host of the env, and returns the instance uuids
// running on each host.
func placeGuests(t testing.TB, e *testEnv, n int) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, host := range sortedKeys(e.cfg.Inventory.Hosts) {
		for i := 0; i <= n; i++ {
			id := fmt.Sprintf("%08x-0000-4000-8000-%012d", len(host)*1000+int(host[len(host)-1]), i)
			running := i < n
			e.addGuest(host, guestSpec{uuid: id, running: running, disks: []int64{4 << 20},
				flavor: &compute.Flavor{ID: "m", MemoryMB: 1024, VCPUs: 2}})
			if running {
				out[host] = append(out[host], id)
			}
		}
	}
	return out
}

// wantState is the host state computed independently from the simulated
// pool's own accounting.
func wantState(e *testEnv, host string, instances []string, hostMemory, srSize int64) scheduler.HostState {
	h := e.hostOf[host]
	used := srUsed(e, host)
	return scheduler.HostState{
		Host: host, Node: host,
		TotalUsableRAMMB: hostMemory >> 20, FreeRAMMB: h.HostFreeMemory() >> 20,
		TotalUsableDiskGB: srSize >> 30, FreeDiskMB: (srSize - used) >> 20,
		VCPUsTotal: 8, VCPUsUsed: int64(2 * len(instances)), NumInstances: int64(len(instances)),
		HypervisorType: "XenServer", HypervisorVersion: 8002001, CPUArch: "x86_64", VMMode: "xen",
		SupportedInstances: [][3]string{{"x86_64", "xen", "xen"}, {"x86_64", "xen", "hvm"}},
		Instances:          instances,
	}
}

func srUsed(e *testEnv, host string) int64 {
	rec, err := e.poolOf[host].Record(e.hostOf[host].SR())
	if err != nil {
		e.t.Fatal(err)
	}
	n, err := decimal(rec["physical_utilisation"])
	if err != nil {
		e.t.Fatalf("physical_utilisation %v: %v", rec["physical_utilisation"], err)
	}
	return n
}

func TestGetAvailableResource(t *testing.T) {
	const hostMemory, srSize = 32 << 30, 200 << 30
	for _, tc := range []struct {
		l       layout
		running int
	}{{standalone, 0}, {standalone, 3}, {onePool, 0}, {onePool, 2}} {
		t.Run(fmt.Sprintf("%s/%d", tc.l, tc.running), func(t *testing.T) {
			e := newEnv(t, tc.l, envOptions{hostMemory: hostMemory, srSize: srSize})
			placed := placeGuests(t, e, tc.running)
			for _, host := range sortedKeys(e.cfg.Inventory.Hosts) {
				got, err := e.d.GetAvailableResource(context.Background(), compute.HostRequest{Host: host})
				if err != nil {
					t.Fatalf("%s: %v", host, err)
				}
				want := wantState(e, host, sortedCopy(placed[host]), hostMemory, srSize)
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%s:\n got %+v\nwant %+v", host, got, want)
				}
				if tc.running > 0 && got.FreeRAMMB >= got.TotalUsableRAMMB-4096 {
					t.Errorf("%s: running guests took no memory: %+v", host, got)
				}
			}
		})
	}
}

func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

func TestGetAvailableResourceErrors(t *testing.T) {
	e := newEnv(t, standalone, envOptions{})
	_, err := e.d.GetAvailableResource(context.Background(), compute.HostRequest{Host: "nowhere"})
	if !errors.Is(err, ErrUnknownHost) {
		t.Fatalf("unknown host: %v", err)
	}
	e.pools["pool1"].FailNth("host.compute_free_memory", 1, xenapitest.ErrInternalError, "boom")
	_, err = e.d.GetAvailableResource(context.Background(), compute.HostRequest{Host: "compute1"})
	if err == nil {
		t.Fatal("a failed host.compute_free_memory was not reported")
	}
}

func TestHypervisorVersion(t *testing.T) {
	for _, tc := range []struct {
		sv   map[string]string
		want int64
	}{
		{map[string]string{"product_version": "8.2.0"}, 8002000},
		{map[string]string{"product_version": "7.1.2"}, 7001002},
		{map[string]string{"platform_version": "3.2.1"}, 3002001},
		{map[string]string{"product_version": "8.4"}, 8004000},
		{map[string]string{"product_version": "8.x.1"}, 0},
		{map[string]string{"product_version": "8.1000.0"}, 0},
		{map[string]string{}, 0},
	} {
		if got := hypervisorVersion(tc.sv); got != tc.want {
			t.Errorf("%v: got %d, want %d", tc.sv, got, tc.want)
		}
	}
}

func TestHostArch(t *testing.T) {
	for _, tc := range []struct {
		caps  []string
		arch  string
		modes []string
	}{
		{[]string{"xen-3.0-x86_64", "hvm-3.0-x86_64"}, "x86_64", []string{"xen", "hvm"}},
		{[]string{"hvm-3.0-x86_32"}, "i686", []string{"hvm"}},
		{[]string{"hvm-3.0-x86_32", "hvm-3.0-x86_64"}, "x86_64", []string{"hvm"}},
		{[]string{"bogus"}, "", nil},
	} {
		arch, modes := hostArch(tc.caps)
		if arch != tc.arch || !reflect.DeepEqual(modes, tc.modes) {
			t.Errorf("%v: got %q %v, want %q %v", tc.caps, arch, modes, tc.arch, tc.modes)
		}
	}
}

// exampleDriver serves a simulated one-host pool (8 CPUs, 64 GiB, an SR of
// 1 TiB) on 127.0.0.1 and returns a driver whose compute host "compute1"
// is its host; stop closes both.
func exampleDriver() (d *Driver, p *xenapitest.Pool, stop func()) {
	dir, err := os.MkdirTemp("", "xenserver-example")
	if err != nil {
		log.Fatal(err)
	}
	p, err = xenapitest.NewPool(xenapitest.Options{Dir: dir})
	if err != nil {
		log.Fatal(err)
	}
	url, err := p.Serve("127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	d, err = New(Config{Inventory: Inventory{
		Pools: map[string]PoolEndpoint{"pool": {URL: url, User: p.User(), Password: Password(p.Password())}},
		Hosts: map[string]HostEntry{"compute1": {Pool: "pool", XenServerHost: p.Master().Name(), SR: p.Master().SRUUID()}},
	}})
	if err != nil {
		log.Fatal(err)
	}
	return d, p, func() {
		_ = d.Close(context.Background())
		_ = p.Close()
		_ = os.RemoveAll(dir)
	}
}

// GetAvailableResource reads what a compute host offers the scheduler.
func ExampleDriver_GetAvailableResource() {
	d, p, stop := exampleDriver()
	defer stop()
	if _, err := p.AddVM(xenapitest.VMSpec{Name: "web", Memory: 2 << 30, VCPUs: 2, Disks: []int64{1 << 20}, Running: true,
		OtherConfig: map[string]string{KeyNovaUUID: "0a0a0a0a-0000-4000-8000-000000000001"}}); err != nil {
		log.Fatal(err)
	}
	hs, err := d.GetAvailableResource(context.Background(), compute.HostRequest{Host: "compute1"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(hs.HypervisorType, hs.HypervisorVersion, hs.CPUArch)
	fmt.Println(hs.VCPUsTotal, hs.VCPUsUsed, hs.TotalUsableRAMMB, hs.FreeRAMMB, hs.TotalUsableDiskGB)
	fmt.Println(hs.NumInstances, hs.Instances)
	// Output:
	// XenServer 8002001 x86_64
	// 8 2 65536 59392 1024
	// 1 [0a0a0a0a-0000-4000-8000-000000000001]
}
