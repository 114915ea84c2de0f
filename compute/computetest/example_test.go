package computetest_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/compute/computetest"
	"github.com/xenflow/xenflow/statemachine"
)

// A resize on the fake driver: the source guest is kept as <name>-orig
// until the confirm, and a fault injected in the middle of the move rolls
// the source back.
func ExampleFakeDriver() {
	ctx := context.Background()
	d := computetest.NewFakeDriver()
	for _, h := range []string{"host-a", "host-b"} {
		_ = d.AddHost(computetest.HostConfig{Host: h, TotalUsableRAMMB: 8192, TotalUsableDiskGB: 100, VCPUsTotal: 4})
	}
	inst := computetest.Instance("9f4c")
	_ = d.AddGuest("host-a", inst, statemachine.PowerRunning)
	mig := computetest.Migration("m1", "9f4c")
	req := compute.MigrateDiskRequest{Instance: inst, Migration: mig, Host: "host-a", DestHost: "host-b", NewFlavor: mig.NewFlavor}

	d.InjectFault(computetest.Fault{Method: computetest.MethodMigrateDiskAndPowerOff, Step: "send-delta", Nth: 1})
	_, err := d.MigrateDiskAndPowerOff(ctx, req)
	var rb *compute.InstanceFaultRollback
	fmt.Println("rolled back:", errors.As(err, &rb), d.Guests("host-a")[0].Power)

	info, _ := d.MigrateDiskAndPowerOff(ctx, req)
	_ = d.FinishMigration(ctx, compute.FinishMigrationRequest{Instance: inst, Migration: mig, Host: "host-b",
		DiskInfo: info, NewFlavor: mig.NewFlavor, ResizeInstance: true, PowerOn: true})
	fmt.Println("source:", d.Guests("host-a")[0].Name, d.Guests("host-a")[0].Power)
	fmt.Println("destination:", d.Guests("host-b")[0].Name, d.Guests("host-b")[0].Power)
	_ = d.ConfirmMigration(ctx, compute.ConfirmMigrationRequest{Instance: inst, Migration: mig, Host: "host-a"})
	fmt.Println("after confirm:", len(d.Guests("host-a")), "guests on the source")
	// Output:
	// rolled back: true running
	// source: instance-9f4c-orig shutdown
	// destination: instance-9f4c running
	// after confirm: 0 guests on the source
}

// A Store implementation runs the conformance suite from its own tests,
// giving each subtest a fresh store on the suite's clock.
func ExampleTestStore() {
	_ = func(t *testing.T) {
		computetest.TestStore(t, func(_ *testing.T, now func() time.Time) compute.Store {
			return compute.NewMemoryStore(compute.WithStoreClock(now))
		})
	}
}
