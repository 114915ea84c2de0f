package crosscell_test

import (
	"context"
	"fmt"
	"time"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/compute/computetest"
	"github.com/xenflow/xenflow/migrate"
	"github.com/xenflow/xenflow/migrate/crosscell"
	"github.com/xenflow/xenflow/quota"
	sm "github.com/xenflow/xenflow/statemachine"
)

// exampleConductor builds two cells of one host each on a FakeDriver,
// with an instance of flavor small in cell1, whose host has no room for
// medium, and a conductor with the cross-cell policy on and opts.
func exampleConductor(opts migrate.Options, now func() time.Time) (*crosscell.Conductor, *compute.Instance, []crosscell.Cell) {
	ctx := context.Background()
	driver := computetest.NewFakeDriver()
	var cells []crosscell.Cell
	for _, name := range []string{"cell1", "cell2"} {
		ram := int64(65536)
		if name == "cell1" {
			ram = 3000 // room for the instance as it is, not for its new flavor
		}
		host := name + "-host"
		if err := driver.AddHost(computetest.HostConfig{Host: host, TotalUsableRAMMB: ram, VCPUsTotal: 16,
			TotalUsableDiskGB: 500}); err != nil {
			panic(err)
		}
		cells = append(cells, crosscell.Cell{Name: name, Driver: driver, Hosts: []string{host},
			Store: compute.NewMemoryStore(compute.WithStoreClock(now))})
	}
	flavors := migrate.Flavors{
		"small":  {ID: "small", Name: "m1.small", VCPUs: 1, MemoryMB: 2048, RootGB: 20},
		"medium": {ID: "medium", Name: "m1.medium", VCPUs: 2, MemoryMB: 4096, RootGB: 40},
	}
	api := crosscell.NewMemoryAPIStore()
	inst := &compute.Instance{UUID: "8d5f0c62-4f3b-4c55-9a5e-0c1f2a3b4c5d", Name: "web", Host: "cell1-host",
		Node: "cell1-host", Cell: "cell1", ProjectID: "p", UserID: "u", VMState: sm.VMActive,
		PowerState: sm.PowerRunning, Flavor: flavors["small"].Clone(), LaunchedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	must(cells[0].Store.CreateInstance(ctx, inst))
	must(driver.AddGuest("cell1-host", inst, sm.PowerRunning))
	must(api.SaveMapping(ctx, crosscell.InstanceMapping{InstanceUUID: inst.UUID, Cell: "cell1", ProjectID: "p"}))
	ledger, err := quota.NewLedger(quota.WithClock(now))
	must(err)
	c, err := crosscell.New(crosscell.Config{Cells: cells, API: api, Quota: ledger, Flavors: flavors, Now: now,
		Owner: "conductor-1", Policy: crosscell.Policy{AllowCrossCellResize: true}, Options: opts})
	must(err)
	return c, inst, cells
}

// A resize that only another cell has room for: with the cross-cell
// policy on, the instance moves from cell1 to cell2, waits in
// VERIFY_RESIZE there, and a confirm removes what cell1 kept.
func ExampleConductor_Resize() {
	ctx := context.Background()
	c, inst, cells := exampleConductor(migrate.Options{}, time.Now)
	res, err := c.Resize(ctx, migrate.ResizeRequest{InstanceUUID: inst.UUID, FlavorID: "medium"})
	must(err)
	status, _ := res.State.Status()
	fmt.Printf("%s -> %s on %s: %s\n", res.SourceCell, res.DestCell, res.DestHost, status)
	res, err = c.Confirm(ctx, migrate.ActionRequest{InstanceUUID: inst.UUID})
	must(err)
	status, _ = res.State.Status()
	left, err := cells[0].Store.ListInstances(ctx, compute.InstanceFilter{})
	must(err)
	fmt.Printf("confirmed in %s: %s; cell1 holds %d instances\n", res.DestCell, status, len(left))
	// Output:
	// cell1 -> cell2 on cell2-host: VERIFY_RESIZE
	// confirmed in cell2: ACTIVE; cell1 holds 0 instances
}

// A cross-cell resize left in VERIFY_RESIZE is confirmed by the periodic
// poll once resize_confirm_window has passed.
func ExampleConductor_PollAutoConfirm() {
	ctx := context.Background()
	clock := computetest.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	c, inst, _ := exampleConductor(migrate.Options{ResizeConfirmWindow: time.Hour}, clock.Now)
	_, err := c.Resize(ctx, migrate.ResizeRequest{InstanceUUID: inst.UUID, FlavorID: "medium"})
	must(err)
	for _, after := range []time.Duration{30 * time.Minute, time.Hour} {
		clock.Advance(after - clock.Now().Sub(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)))
		done, err := c.PollAutoConfirm(ctx)
		must(err)
		fmt.Printf("after %v: %d confirmed", after, len(done))
		for _, r := range done {
			status, _ := r.State.Status()
			fmt.Printf(" (%s in %s)", status, r.DestCell)
		}
		fmt.Println()
	}
	// Output:
	// after 30m0s: 0 confirmed
	// after 1h0m0s: 1 confirmed (ACTIVE in cell2)
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}
