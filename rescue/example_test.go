package rescue_test

import (
	"context"
	"fmt"
	"time"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/compute/computetest"
	"github.com/xenflow/xenflow/rescue"
	"github.com/xenflow/xenflow/statemachine"
)

// Rescue an instance, then take it out of rescue, on the in-memory fake
// driver.
func ExampleOrchestrator_Rescue() {
	ctx := context.Background()
	store := compute.NewMemoryStore()
	driver := computetest.NewFakeDriver()
	_ = driver.AddHost(computetest.HostConfig{Host: "compute1", TotalUsableRAMMB: 4096, TotalUsableDiskGB: 40, VCPUsTotal: 4})
	inst := &compute.Instance{UUID: "9f4c", Name: "web1", Host: "compute1", VMState: statemachine.VMActive,
		PowerState: statemachine.PowerRunning, ImageRef: "rescue-image", LaunchedAt: time.Now(),
		Flavor: &compute.Flavor{ID: "small", MemoryMB: 1024, VCPUs: 1, RootGB: 10}}
	_ = store.CreateInstance(ctx, inst)
	_ = driver.AddGuest("compute1", inst, statemachine.PowerRunning)

	o, err := rescue.New(rescue.Config{Store: store, Driver: driver})
	if err != nil {
		fmt.Println(err)
		return
	}
	res, err := o.Rescue(ctx, rescue.RescueRequest{InstanceUUID: "9f4c"})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res.Instance.VMState, len(res.AdminPassword))
	for _, g := range driver.Guests("compute1") {
		fmt.Println(g.Name, g.Power, "bootlocked:", g.Bootlocked)
	}
	after, err := o.Unrescue(ctx, rescue.UnrescueRequest{InstanceUUID: "9f4c"})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(after.VMState, len(driver.Guests("compute1")))
	// Output:
	// rescued 12
	// web1 shutdown bootlocked: true
	// web1-rescue running bootlocked: false
	// active 1
}
