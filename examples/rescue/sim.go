package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/xenflow/xenflow/compute"
	sm "github.com/xenflow/xenflow/statemachine"
	"github.com/xenflow/xenflow/xenapi"
	"github.com/xenflow/xenflow/xenapi/xenapitest"
	"github.com/xenflow/xenflow/xenserver"
)

// The simulated instance and image.
const (
	simInstanceUUID = "3f2a9c1e-5b7d-4c8e-9f0a-1b2c3d4e5f60"
	simInstanceName = "instance-3f2a9c1e"
	simImageID      = "rescue-image"
	simImageBytes   = 4 << 20
	originalData    = "the instance's own data"
	markerData      = "repaired while rescued"
	markerOffset    = 1 << 20
)

// runSimulated is the run without -xapi.
func runSimulated(ctx context.Context, c *config, stdout io.Writer) error {
	pool, err := xenapitest.NewPool(xenapitest.Options{Hosts: 1})
	if err != nil {
		return err
	}
	defer pool.Close()
	addr := c.serve
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	url, err := pool.Serve(addr)
	if err != nil {
		return fmt.Errorf("serving the simulated pool on %s: %w", addr, err)
	}
	client, err := xenapi.NewClient(url)
	if err != nil {
		return err
	}
	if err := client.Login(ctx, pool.User(), pool.Password(), "xenflow-examples-rescue"); err != nil {
		return err
	}
	defer client.Close(context.WithoutCancel(ctx))
	j, drv, err := simJob(ctx, c, pool, url, client, stdout)
	if err != nil {
		return err
	}
	defer drv.Close(context.WithoutCancel(ctx))
	fmt.Fprintf(stdout, "simulated pool of one host served at %s\n", url)
	if err := j.run(ctx); err != nil {
		return err
	}
	if c.serve == "" {
		return nil
	}
	fmt.Fprintf(stdout, "serving url=%s user=%s password=%s until interrupted\n", url, pool.User(), pool.Password())
	<-ctx.Done()
	return nil
}

// simJob makes the instance's VM with data on its root disk, the rescue
// image and the driver, and returns the job.
func simJob(ctx context.Context, c *config, pool *xenapitest.Pool, url string, client *xenapi.Client, stdout io.Writer) (*job, *xenserver.Driver, error) {
	host := pool.Master()
	vmInfo, err := pool.AddVM(xenapitest.VMSpec{Name: simInstanceName, Memory: 512 << 20, VCPUs: 1,
		Disks: []int64{c.diskMiB << 20}, Running: true, Networks: []string{pool.Network()},
		OtherConfig: map[string]string{xenserver.KeyNovaUUID: simInstanceUUID}})
	if err != nil {
		return nil, nil, err
	}
	if err := pool.WriteGuestDisk(vmInfo.Ref, "0", 0, []byte(originalData)); err != nil {
		return nil, nil, err
	}
	image, err := client.VDI.Create(ctx, xenapi.VDIRecord{NameLabel: "rescue image", SR: xenapi.SRRef(host.SR()),
		VirtualSize: simImageBytes, Type: "user", OtherConfig: map[string]string{xenserver.KeyImageID: simImageID}})
	if err != nil {
		return nil, nil, fmt.Errorf("creating the rescue image: %w", err)
	}
	if err := pool.WriteVDI(string(image), 0, []byte("rescue system")); err != nil {
		return nil, nil, err
	}
	inv := xenserver.Inventory{
		Pools: map[string]xenserver.PoolEndpoint{"sim": {URL: url, User: pool.User(), Password: xenserver.Password(pool.Password())}},
		Hosts: map[string]xenserver.HostEntry{host.Name(): {Pool: "sim", XenServerHost: host.UUID(), SR: host.SRUUID()}},
	}
	drv, err := xenserver.New(xenserver.Config{Inventory: inv, Originator: "xenflow-examples-rescue"})
	if err != nil {
		return nil, nil, err
	}
	inst := &compute.Instance{UUID: simInstanceUUID, Name: simInstanceName, Hostname: "guest", Host: host.Name(), Node: host.Name(),
		ProjectID: "demo", UserID: "demo", VMState: sm.VMActive, PowerState: sm.PowerRunning, ImageRef: simImageID,
		LaunchedAt: time.Now(), Flavor: &compute.Flavor{ID: "small", Name: "small", MemoryMB: 512, VCPUs: 1, RootGB: 1}}
	m := &marker{kept: []byte(originalData), data: []byte(markerData), off: markerOffset,
		write: func(vm xenapi.VMRef, userdevice string, off int64, data []byte) error {
			return pool.WriteGuestDisk(string(vm), userdevice, off, data)
		},
		read: func(vdi xenapi.VDIRef, off int64, n int) ([]byte, error) {
			buf := make([]byte, n)
			return buf, pool.ReadVDIAt(string(vdi), buf, off)
		}}
	return &job{stdout: stdout, jsonOut: c.jsonOut, driver: drv, images: drv, client: client, inst: inst, image: simImageID, marker: m, db: c.db}, drv, nil
}
