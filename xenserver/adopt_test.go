package xenserver

import (
	"context"
	"errors"
	"fmt"
	"log"
	"reflect"
	"testing"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/statemachine"
	"github.com/xenflow/xenflow/xenapi/xenapitest"
)

// addForeignVM adds a VM the driver did not create (no nova_uuid).
func addForeignVM(t *testing.T, e *testEnv, host, name string, running bool, oc map[string]string) xenapitest.VMInfo {
	t.Helper()
	vm, err := e.poolOf[host].AddVM(xenapitest.VMSpec{Name: name, Host: e.hostOf[host].Name(), Memory: 3 << 30, VCPUs: 3,
		Disks: []int64{5<<30 + 1, 2 << 30}, Running: running, OtherConfig: oc})
	if err != nil {
		t.Fatal(err)
	}
	return vm
}

func TestAdopt(t *testing.T) {
	const given = "5a5a5a5a-0000-4000-8000-00000000000a"
	for _, l := range layouts {
		for _, tc := range []struct {
			name    string
			byUUID  bool
			running bool
			inst    string
		}{
			{"by name, running", false, true, ""},
			{"by uuid, halted", true, false, ""},
			{"given instance uuid", false, true, given},
		} {
			t.Run(string(l)+"/"+tc.name, func(t *testing.T) {
				ctx := context.Background()
				e := newEnv(t, l, envOptions{})
				vm := addForeignVM(t, e, "compute2", "legacy-web", tc.running, nil)
				ref := "legacy-web"
				if tc.byUUID {
					ref = vm.UUID
				}
				want := tc.inst
				if want == "" {
					want = vm.UUID
				}
				var first *compute.Instance
				for i := 0; i < 2; i++ { // adopting again gives the same instance
					inst, err := e.d.Adopt(ctx, AdoptRequest{Host: "compute2", VM: ref, InstanceUUID: tc.inst})
					if err != nil {
						t.Fatal(err)
					}
					wantState, wantPower := statemachine.VMStopped, statemachine.PowerShutdown
					if tc.running {
						wantState, wantPower = statemachine.VMActive, statemachine.PowerRunning
					}
					f := inst.Flavor
					if inst.UUID != want || inst.Name != "legacy-web" || inst.Host != "compute2" ||
						inst.VMState != wantState || inst.PowerState != wantPower ||
						f.MemoryMB != 3072 || f.VCPUs != 3 || f.RootGB != 6 || f.EphemeralGB != 2 {
						t.Fatalf("adopted %+v flavor %+v", inst, f)
					}
					if first != nil && (first.UUID != inst.UUID || !reflect.DeepEqual(first.Flavor, inst.Flavor)) {
						t.Fatalf("second adoption %+v differs from the first %+v", inst, first)
					}
					first = inst
				}
				info, err := e.d.GetInfo(ctx, compute.InstanceRequest{Instance: first, Host: "compute2"})
				if err != nil || info.MemoryMB != 3072 || info.VCPUs != 3 {
					t.Fatalf("GetInfo after Adopt: %+v, %v", info, err)
				}
				if tc.running {
					hs, err := e.d.GetAvailableResource(ctx, compute.HostRequest{Host: "compute2"})
					if err != nil || len(hs.Instances) != 1 || hs.Instances[0] != want {
						t.Fatalf("host state after Adopt: %+v, %v", hs.Instances, err)
					}
				}
			})
		}
	}
}

func TestAdoptRefusals(t *testing.T) {
	const claimed = "6b6b6b6b-0000-4000-8000-00000000000b"
	tests := []struct {
		name  string
		setup func(t *testing.T, e *testEnv) AdoptRequest
		check func(t *testing.T, err error)
	}{
		{"claimed by another instance", func(t *testing.T, e *testEnv) AdoptRequest {
			addForeignVM(t, e, "compute1", "vm", true, map[string]string{KeyNovaUUID: claimed})
			return AdoptRequest{Host: "compute1", VM: "vm", InstanceUUID: "7c7c7c7c-0000-4000-8000-00000000000c"}
		}, func(t *testing.T, err error) {
			var ac *AlreadyClaimedError
			if !errors.As(err, &ac) || ac.Instance != claimed {
				t.Fatalf("got %v", err)
			}
		}},
		{"kept as -orig", func(t *testing.T, e *testEnv) AdoptRequest {
			addForeignVM(t, e, "compute1", "vm-orig", false, map[string]string{KeyOrigOf: claimed})
			return AdoptRequest{Host: "compute1", VM: "vm-orig"}
		}, func(t *testing.T, err error) {
			if !errors.As(err, new(*AlreadyClaimedError)) {
				t.Fatalf("got %v", err)
			}
		}},
		{"instance claimed by another VM", func(t *testing.T, e *testEnv) AdoptRequest {
			addForeignVM(t, e, "compute1", "a", true, map[string]string{KeyNovaUUID: claimed})
			addForeignVM(t, e, "compute1", "b", true, nil)
			return AdoptRequest{Host: "compute1", VM: "b", InstanceUUID: claimed}
		}, func(t *testing.T, err error) {
			if !errors.As(err, new(*DuplicateInstanceError)) {
				t.Fatalf("got %v", err)
			}
		}},
		{"two VMs of that name", func(t *testing.T, e *testEnv) AdoptRequest {
			addForeignVM(t, e, "compute1", "twin", true, nil)
			addForeignVM(t, e, "compute1", "twin", false, nil)
			return AdoptRequest{Host: "compute1", VM: "twin"}
		}, func(t *testing.T, err error) {
			var nip *NotInPoolError
			if !errors.As(err, &nip) || nip.Matches != 2 {
				t.Fatalf("got %v", err)
			}
		}},
		{"no such VM", func(t *testing.T, e *testEnv) AdoptRequest {
			return AdoptRequest{Host: "compute1", VM: "ghost"}
		}, func(t *testing.T, err error) {
			if !errors.Is(err, compute.ErrNotFound) {
				t.Fatalf("got %v", err)
			}
		}},
		{"control domain", func(t *testing.T, e *testEnv) AdoptRequest {
			return AdoptRequest{Host: "compute1", VM: "Control domain on host: " + e.hostOf["compute1"].Name()}
		}, func(t *testing.T, err error) {
			if !errors.As(err, new(*NotAGuestError)) {
				t.Fatalf("got %v", err)
			}
		}},
		{"no VM named", func(t *testing.T, e *testEnv) AdoptRequest {
			return AdoptRequest{Host: "compute1"}
		}, func(t *testing.T, err error) {
			if !errors.As(err, new(*RequestError)) {
				t.Fatalf("got %v", err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, standalone, envOptions{})
			req := tc.setup(t, e)
			before := e.vms("compute1")
			_, err := e.d.Adopt(context.Background(), req)
			tc.check(t, err)
			for name, vm := range e.vms("compute1") {
				if before[name].Rec.OtherConfig[KeyNovaUUID] != vm.Rec.OtherConfig[KeyNovaUUID] {
					t.Fatalf("a refused Adopt tagged %s", name)
				}
			}
		})
	}
}

// Adopt takes over a VM the driver did not create.
func ExampleDriver_Adopt() {
	d, p, stop := exampleDriver()
	defer stop()
	if _, err := p.AddVM(xenapitest.VMSpec{Name: "legacy-db", Memory: 4 << 30, VCPUs: 2,
		Disks: []int64{20 << 30, 10 << 30}, Running: true}); err != nil {
		log.Fatal(err)
	}
	inst, err := d.Adopt(context.Background(), AdoptRequest{Host: "compute1", VM: "legacy-db",
		InstanceUUID: "0a0a0a0a-0000-4000-8000-000000000004"})
	if err != nil {
		log.Fatal(err)
	}
	f := inst.Flavor
	fmt.Println(inst.UUID, inst.Name, inst.VMState)
	fmt.Println(f.MemoryMB, f.VCPUs, f.RootGB, f.EphemeralGB)
	// Output:
	// 0a0a0a0a-0000-4000-8000-000000000004 legacy-db active
	// 4096 2 20 10
}
