package xenserver_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"strings"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/statemachine"
	"github.com/xenflow/xenflow/xenapi/xenapitest"
	"github.com/xenflow/xenflow/xenserver"
)

// servePool starts a simulated one-host pool on 127.0.0.1 and returns it
// with its endpoint.
func servePool(dir string) (*xenapitest.Pool, xenserver.PoolEndpoint) {
	p, err := xenapitest.NewPool(xenapitest.Options{Dir: dir})
	if err != nil {
		log.Fatal(err)
	}
	url, err := p.Serve("127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	return p, xenserver.PoolEndpoint{URL: url, User: p.User(), Password: xenserver.Password(p.Password())}
}

// New checks the inventory's shape; the pools are contacted at first use.
func ExampleNew() {
	inv := xenserver.Inventory{
		Pools: map[string]xenserver.PoolEndpoint{
			"rack1": {URL: "https://10.0.0.1", User: "root", Password: "secret",
				PinnedFingerprints: []string{"sha256:" + strings.Repeat("ab", 32)}},
		},
		Hosts: map[string]xenserver.HostEntry{
			"compute1": {Pool: "rack1", XenServerHost: "xs1", SR: "Local storage"},
			"compute2": {Pool: "rack2", XenServerHost: "xs2", SR: "Local storage"},
		},
	}
	_, err := xenserver.New(xenserver.Config{Inventory: inv})
	fmt.Println(err)
	delete(inv.Hosts, "compute2")
	_, err = xenserver.New(xenserver.Config{Inventory: inv})
	fmt.Println(err, inv.Pools["rack1"].Password)
	// Output:
	// xenserver: config Inventory.Hosts[compute2].Pool: no pool "rack2" in Inventory.Pools
	// <nil> [redacted]
}

// A driver over two standalone pools resizes an instance up from one to
// the other: MigrateDiskAndPowerOff on the source, FinishMigration on the
// destination, ConfirmMigration on the source.
func ExampleDriver_MigrateDiskAndPowerOff() {
	dir, err := os.MkdirTemp("", "xenserver-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	src, srcEP := servePool(dir + "/a")
	defer src.Close()
	dst, dstEP := servePool(dir + "/b")
	defer dst.Close()

	d, err := xenserver.New(xenserver.Config{Inventory: xenserver.Inventory{
		Pools: map[string]xenserver.PoolEndpoint{"a": srcEP, "b": dstEP},
		Hosts: map[string]xenserver.HostEntry{
			"compute-a": {Pool: "a", XenServerHost: src.Master().Name(), SR: src.Master().SRUUID()},
			"compute-b": {Pool: "b", XenServerHost: dst.Master().UUID(), SR: dst.Master().SRUUID()},
		},
	}})
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	defer d.Close(ctx)

	const uuid = "6c1f5e0a-3b2d-4e8f-9a7b-1c2d3e4f5a6b"
	if _, err := src.AddVM(xenapitest.VMSpec{Name: "instance-6c1f5e0a", Disks: []int64{8 << 20}, Running: true,
		Memory: 256 << 20, OtherConfig: map[string]string{xenserver.KeyNovaUUID: uuid}}); err != nil {
		log.Fatal(err)
	}
	small := &compute.Flavor{ID: "1", MemoryMB: 256, VCPUs: 1, RootGB: 1}
	large := &compute.Flavor{ID: "2", MemoryMB: 512, VCPUs: 2, RootGB: 2}
	inst := &compute.Instance{UUID: uuid, Name: "instance-6c1f5e0a", Flavor: small}
	mig := &compute.Migration{UUID: "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0", InstanceUUID: uuid,
		SourceCompute: "compute-a", DestCompute: "compute-b", OldFlavor: small, NewFlavor: large}

	info, err := d.MigrateDiskAndPowerOff(ctx, compute.MigrateDiskRequest{
		Instance: inst, Migration: mig, Host: "compute-a", DestHost: "compute-b", NewFlavor: large,
		CleanShutdown: true,
		Progress: func(p compute.Progress) {
			fmt.Printf("%d%% %s powered-off=%v\n", p.Percent, p.Step, p.PoweredOff)
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("transport:", info.Transport, "disks:", len(info.Disks))
	err = d.FinishMigration(ctx, compute.FinishMigrationRequest{Instance: inst, Migration: mig, Host: "compute-b",
		DiskInfo: info, NewFlavor: large, ResizeInstance: true, PowerOn: true})
	if err != nil {
		log.Fatal(err)
	}
	if err := d.ConfirmMigration(ctx, compute.ConfirmMigrationRequest{Instance: inst, Migration: mig, Host: "compute-a"}); err != nil {
		log.Fatal(err)
	}
	got, err := d.GetInfo(ctx, compute.InstanceRequest{Instance: inst, Host: "compute-b"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(got.PowerState == statemachine.PowerRunning, got.MemoryMB, got.VCPUs)
	// Output:
	// 20% snapshot powered-off=false
	// 40% send-base powered-off=false
	// 60% power-off powered-off=true
	// 80% send-delta powered-off=true
	// 80% finish powered-off=true
	// transport: xapi disks: 1
	// true 512 2
}
