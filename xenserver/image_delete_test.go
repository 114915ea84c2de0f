package xenserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/statemachine"
	"github.com/xenflow/xenflow/xenapi"
)

const deletedImage = "xenflow-snapshot-of-web1"

// spawnedFromImage snapshots a guest of compute1 into the pools and
// spawns an instance on compute2 from the image (in the standalone layout
// the image is then in both pools).
func spawnedFromImage(t *testing.T, l layout) (*testEnv, *guest, *compute.Instance) {
	t.Helper()
	ctx := context.Background()
	e := newEnv(t, l, envOptions{})
	g := e.addGuest("compute1", guestSpec{running: true, disks: []int64{8 << 20}})
	if err := e.d.Snapshot(ctx, compute.SnapshotRequest{Instance: g.inst, Host: "compute1", ImageID: deletedImage}); err != nil {
		t.Fatal(err)
	}
	inst := &compute.Instance{UUID: spawnedUUID, Name: "instance-spawned", Host: "compute2"}
	err := e.d.Spawn(ctx, compute.SpawnRequest{Instance: inst, Host: "compute2", ImageRef: deletedImage,
		Flavor: &compute.Flavor{ID: "f", MemoryMB: 512, VCPUs: 1, RootGB: 1}, PowerOn: true})
	if err != nil {
		t.Fatal(err)
	}
	return e, g, inst
}

// imageVDIs counts the VDIs of every pool tagged with the image id.
func imageVDIs(t *testing.T, e *testEnv, id string) int {
	t.Helper()
	n := 0
	for _, host := range []string{"compute1", "compute2"} {
		if e.poolOf[host] == e.poolOf["compute1"] && host != "compute1" {
			continue
		}
		tg, err := e.d.pool(context.Background(), host)
		if err != nil {
			t.Fatal(err)
		}
		recs, err := tg.Client.VDI.GetAllRecords(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, rec := range recs {
			if rec.OtherConfig[KeyImageID] == id {
				n++
			}
		}
	}
	return n
}

// checkSpawnedIntact checks that the spawned guest runs with the image's
// data on its root disk.
func checkSpawnedIntact(t *testing.T, e *testEnv, g *guest, inst *compute.Instance) {
	t.Helper()
	got, _ := spawnedRoot(t, e, "compute2", inst, len(g.disks[0]))
	if !bytes.Equal(got, g.disks[0]) {
		t.Fatal("the spawned root disk lost its data with the image")
	}
	info, err := e.d.GetInfo(context.Background(), compute.InstanceRequest{Instance: inst, Host: "compute2"})
	if err != nil || info.PowerState != statemachine.PowerRunning {
		t.Fatalf("spawned guest %+v, %v", info, err)
	}
}

// TestDeleteImage deletes an image Snapshot stored and Spawn cached, in
// both layouts: no VDI of either pool is tagged with it, the store no
// longer has it, the guest spawned from it keeps its data, and a second
// delete finds nothing to do.
func TestDeleteImage(t *testing.T) {
	for _, l := range layouts {
		t.Run(string(l), func(t *testing.T) {
			ctx := context.Background()
			e, g, inst := spawnedFromImage(t, l)
			if n := imageVDIs(t, e, deletedImage); n == 0 {
				t.Fatal("no VDI of the image before the delete")
			}
			for i := 0; i < 2; i++ {
				if err := e.d.DeleteImage(ctx, compute.DeleteImageRequest{Host: "compute2", ImageID: deletedImage}); err != nil {
					t.Fatalf("DeleteImage #%d: %v", i+1, err)
				}
			}
			if n := imageVDIs(t, e, deletedImage); n != 0 {
				t.Fatalf("%d VDIs still tagged with the image", n)
			}
			if has, err := e.d.PoolImages("compute1").Has(ctx, deletedImage); err != nil || has {
				t.Fatalf("the pools still have the image: %v, %v", has, err)
			}
			checkSpawnedIntact(t, e, g, inst)
			checkNoImageSnapshots(t, e, "compute1")
		})
	}
}

// TestDeleteImageBadInput: an image id the driver cannot tag by and an
// unknown compute host are refused, typed.
func TestDeleteImageBadInput(t *testing.T) {
	e := newEnv(t, standalone, envOptions{})
	cases := []struct {
		name string
		req  compute.DeleteImageRequest
		want any
	}{
		{"bad id", compute.DeleteImageRequest{Host: "compute1", ImageID: "../etc"}, new(*BadImageIDError)},
		{"empty id", compute.DeleteImageRequest{Host: "compute1"}, new(*BadImageIDError)},
		{"unknown host", compute.DeleteImageRequest{Host: "nowhere", ImageID: "img"}, new(*UnknownHostError)},
	}
	for _, tc := range cases {
		err := e.d.DeleteImage(context.Background(), tc.req)
		if err == nil || !errors.As(err, tc.want) {
			t.Errorf("%s: %v (%T)", tc.name, err, err)
		}
	}
}

// TestDeleteImageRetries fails each XenAPI call of DeleteImage once: the
// call fails, and called again it finishes the job.
func TestDeleteImageRetries(t *testing.T) {
	ctx := context.Background()
	req := compute.DeleteImageRequest{Host: "compute2", ImageID: deletedImage}
	e, _, _ := spawnedFromImage(t, standalone)
	var calls []string
	for _, host := range []string{"compute1", "compute2"} {
		e.poolOf[host].ResetCalls()
	}
	if err := e.d.DeleteImage(ctx, req); err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"compute1", "compute2"} {
		for _, c := range e.poolOf[host].Calls() {
			calls = append(calls, fmt.Sprintf("%s %s %d", host, c.Method, c.N))
		}
	}
	for _, c := range calls {
		var host, method string
		var n int
		if _, err := fmt.Sscanf(c, "%s %s %d", &host, &method, &n); err != nil {
			t.Fatal(err)
		}
		t.Run(fmt.Sprintf("%s/%s#%d", host, method, n), func(t *testing.T) {
			t.Parallel()
			e, g, inst := spawnedFromImage(t, standalone)
			p := e.poolOf[host]
			p.ResetCalls()
			p.FailNth(method, n, xenapi.CodeInternalError, "injected")
			if err := e.d.DeleteImage(ctx, req); err == nil {
				t.Fatal("the injected fault did not reach DeleteImage")
			}
			p.ClearFaults()
			if err := e.d.DeleteImage(ctx, req); err != nil {
				t.Fatalf("called again: %v", err)
			}
			if n := imageVDIs(t, e, deletedImage); n != 0 {
				t.Fatalf("%d VDIs still tagged with the image", n)
			}
			checkSpawnedIntact(t, e, g, inst)
		})
	}
	t.Logf("%d calls failed", len(calls))
}
