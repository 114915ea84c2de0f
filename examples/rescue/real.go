package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/xenflow/xenflow/xenapi"
	"github.com/xenflow/xenflow/xenserver"
)

// runReal is the run against the pool given with -xapi.
func runReal(ctx context.Context, c *config, stdout io.Writer) error {
	password, err := readPassword(c.passwordFile)
	if err != nil {
		return err
	}
	client, err := xenapi.NewClient(c.xapi)
	if err != nil {
		return err
	}
	if err := client.Login(ctx, c.user, password, "xenflow-examples-rescue"); err != nil {
		return err
	}
	defer client.Close(context.WithoutCancel(ctx))
	place, err := locate(ctx, client, c.vm)
	if err != nil {
		return err
	}
	inv := xenserver.Inventory{
		Pools: map[string]xenserver.PoolEndpoint{"pool": {URL: c.xapi, User: c.user, Password: xenserver.Password(password)}},
		Hosts: map[string]xenserver.HostEntry{place.host: {Pool: "pool", XenServerHost: place.hostUUID, SR: place.srUUID}},
	}
	drv, err := xenserver.New(xenserver.Config{Inventory: inv, Originator: "xenflow-examples-rescue"})
	if err != nil {
		return err
	}
	defer drv.Close(context.WithoutCancel(ctx))
	if c.resume {
		j := &job{stdout: stdout, driver: drv, images: drv, client: client, db: c.db, resume: true}
		return j.run(ctx)
	}
	inst, err := drv.Adopt(ctx, xenserver.AdoptRequest{Host: place.host, VM: c.vm})
	if err != nil {
		return fmt.Errorf("adopting VM %s: %w", c.vm, err)
	}
	if inst.LaunchedAt.IsZero() {
		// Nova's API refuses to rescue an instance never launched; an
		// adopted VM counts as launched when it is taken over.
		inst.LaunchedAt = time.Now()
	}
	fmt.Fprintf(stdout, "pool %s: VM %s adopted as instance %s on compute host %s\n", c.xapi, c.vm, inst.UUID, place.host)
	j := &job{stdout: stdout, jsonOut: c.jsonOut, driver: drv, images: drv, client: client, inst: inst, image: c.rescueImage, db: c.db}
	return j.run(ctx)
}

// readPassword returns the first line of file.
func readPassword(file string) (string, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", err
	}
	defer f.Close()
	line, err := bufio.NewReader(f).ReadString('\n')
	if err != nil && err != io.EOF {
		return "", fmt.Errorf("reading %s: %w", file, err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", &UsageError{Flag: "-password-file", Reason: file + " holds no password on its first line"}
	}
	return line, nil
}

// placement is where a VM lives: its XenServer host and the SR of its
// root disk.
type placement struct {
	host, hostUUID, srUUID string
}

// locate finds the VM named or numbered nameOrUUID, the host it runs on
// (or has affinity to) and the SR of its root disk.
func locate(ctx context.Context, c *xenapi.Client, nameOrUUID string) (placement, error) {
	ref, err := c.VM.GetByUUID(ctx, nameOrUUID)
	if err != nil {
		v, ferr := findVM(ctx, c, nameOrUUID)
		if ferr != nil {
			return placement{}, fmt.Errorf("VM %q: %w", nameOrUUID, ferr)
		}
		ref = v.ref
	}
	rec, err := c.VM.GetRecord(ctx, ref)
	if err != nil {
		return placement{}, err
	}
	host := rec.ResidentOn
	if host.IsNull() {
		host = rec.Affinity
	}
	if host.IsNull() {
		return placement{}, fmt.Errorf("VM %q is neither running nor has an affinity host: start it first", nameOrUUID)
	}
	hrec, err := c.Host.GetRecord(ctx, host)
	if err != nil {
		return placement{}, err
	}
	root, err := diskAt(ctx, c, ref, "0")
	if err != nil {
		return placement{}, err
	}
	sr, err := c.VDI.GetSR(ctx, root.ref)
	if err != nil {
		return placement{}, err
	}
	srUUID, err := c.SR.GetUUID(ctx, sr)
	if err != nil {
		return placement{}, err
	}
	return placement{host: hrec.NameLabel, hostUUID: hrec.UUID, srUUID: srUUID}, nil
}
