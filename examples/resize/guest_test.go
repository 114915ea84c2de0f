package main

import (
	"context"
	"errors"
	"testing"

	"github.com/xenflow/xenflow/xenapi"
	"github.com/xenflow/xenflow/xenapi/xenapitest"
)

// TestGuestDiskVerify: the check passes on the disk the guest wrote, with
// its chain of layers, and names the first byte changed behind its back.
func TestGuestDiskVerify(t *testing.T) {
	ctx := context.Background()
	pool, err := xenapitest.NewPool(xenapitest.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	const size = 8 << 20
	vm, err := pool.AddVM(xenapitest.VMSpec{Name: "g", Disks: []int64{size}, Running: true})
	if err != nil {
		t.Fatal(err)
	}
	url, err := pool.Serve("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := poolClient(ctx, t, url)
	defer c.Close(ctx)
	g := newGuestDisk(pool, vm.Ref, size)
	if err := g.buildChain(ctx, c, xenapi.VDIRef(vm.VDIs[0]), 3, 8); err != nil {
		t.Fatal(err)
	}
	for n := 0; n < 5; n++ {
		if err := g.write(g.logOffset(n), block("log %d", n)); err != nil {
			t.Fatal(err)
		}
	}
	if g.count() != 3*8+5 {
		t.Fatalf("%d writes", g.count())
	}
	if err := g.verify(vm.VDIs[0], "root"); err != nil {
		t.Fatal(err)
	}
	off := g.logOffset(2) + 100
	if err := pool.WriteVDI(vm.VDIs[0], off, []byte{0xff}); err != nil {
		t.Fatal(err)
	}
	var ve *VerifyError
	if err := g.verify(vm.VDIs[0], "root"); !errors.As(err, &ve) || ve.Offset != off || ve.Got != 0xff {
		t.Fatalf("after a byte changed at %d: %v", off, err)
	}
}
