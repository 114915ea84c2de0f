package crosscell

import (
	"context"
	"errors"
	"testing"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/compute/computetest"
	"github.com/xenflow/xenflow/migrate"
	"github.com/xenflow/xenflow/scheduler"
	sm "github.com/xenflow/xenflow/statemachine"
)

// ephemeralDigest returns the digest of the first ephemeral disk of the
// instance's guest on host ("" when it has none).
func (f *fixture) ephemeralDigest(host, id string) string {
	for _, g := range f.driver.Guests(host) {
		if g.InstanceUUID == id && g.Name == "vm-"+id {
			return f.driver.GuestDisks(host, g.Name)["4"].SHA256
		}
	}
	return ""
}

// TestEphemeralDisks: by default an instance with ephemeral disks never
// leaves its cell (a resize that fits only in another cell is refused
// with NoValidHost, a cold migration stays in the cell and carries the
// disk); with Policy.AllowEphemeralLoss it moves as in Nova, with a blank
// ephemeral disk on the destination, and a revert gets the data back.
func TestEphemeralDisks(t *testing.T) {
	cases := []struct {
		name     string
		loss     bool
		op       op
		wantErr  error
		wantCell string
		// blank is whether the moved guest's ephemeral disk is blank.
		blank bool
	}{
		{"resize refused", false, resize("eph-medium"), scheduler.ErrNoValidHost, "c1", false},
		{"migrate in the cell", false, coldMigrate(""), nil, "c1", false},
		{"resize with loss", true, resize("eph-medium"), nil, "c2", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			f := newFixture(t)
			f.flavors["eph-small"] = &compute.Flavor{ID: "eph-small", VCPUs: 1, MemoryMB: 2048, RootGB: 10, EphemeralGB: 5}
			f.flavors["eph-medium"] = &compute.Flavor{ID: "eph-medium", VCPUs: 2, MemoryMB: 4096, RootGB: 40, EphemeralGB: 10}
			f.policy.AllowEphemeralLoss = tc.loss
			f.boot(ctx, vm1, "c1", "c1-h1", "eph-small", sm.VMActive)
			data := f.ephemeralDigest("c1-h1", vm1)
			if data == "" || data == computetest.BlankDigest {
				t.Fatalf("the booted guest's ephemeral disk: %q", data)
			}
			c := f.conductor("conductor")
			res, err := tc.op.run(ctx, c)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("%s: %v, want %v", tc.op.name, err, tc.wantErr)
				}
				if err := f.check(ctx, vm1); err != nil || f.ephemeralDigest("c1-h1", vm1) != data {
					t.Fatalf("after the refused move: %v, ephemeral data kept: %v", err, f.ephemeralDigest("c1-h1", vm1) == data)
				}
				return
			}
			if err != nil || res.DestCell != tc.wantCell || res.CrossCell != (tc.wantCell != "c1") {
				t.Fatalf("%s: %+v, %v; want cell %s", tc.op.name, res, err, tc.wantCell)
			}
			moved := f.ephemeralDigest(res.DestHost, vm1)
			if (moved == computetest.BlankDigest) != tc.blank || (!tc.blank && moved != data) {
				t.Fatalf("ephemeral disk on %s: %q, source's %q, want blank: %v", res.DestHost, moved, data, tc.blank)
			}
			if _, err := c.Revert(ctx, migrate.ActionRequest{InstanceUUID: vm1}); err != nil {
				t.Fatal(err)
			}
			if err := f.check(ctx, vm1); err != nil {
				t.Fatal(err)
			}
			if got := f.ephemeralDigest("c1-h1", vm1); got != data {
				t.Fatalf("after the revert the source's ephemeral disk is %q, was %q", got, data)
			}
		})
	}
}
