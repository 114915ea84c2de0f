package xenapi_test

import (
	"context"
	"fmt"
	"log"

	"github.com/xenflow/xenflow/xenapi"
	"github.com/xenflow/xenflow/xenapi/xenapitest"
)

// Make a suspended VM from another one's metadata, as xapi's
// VM.migrate_send does for a suspended VM: its disk and suspend image
// copied, its metadata exported and imported with a VDI map onto the
// copies. The import makes the VM Suspended; it then resumes.
func ExampleClient_ImportMetadata() {
	pool, err := xenapitest.NewPool(xenapitest.Options{Hosts: 1})
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	url, err := pool.Serve("")
	if err != nil {
		log.Fatal(err)
	}
	vm, err := pool.AddVM(xenapitest.VMSpec{Name: "instance-1", Disks: []int64{4 << 20}, Running: true})
	if err != nil {
		log.Fatal(err)
	}

	ctx := context.Background()
	c, err := xenapi.NewClient(url)
	if err != nil {
		log.Fatal(err)
	}
	if err := c.Login(ctx, pool.User(), pool.Password(), "example"); err != nil {
		log.Fatal(err)
	}
	defer c.Close(ctx)
	ref := xenapi.VMRef(vm.Ref)
	if _, err := c.Call(ctx, "VM.suspend", vm.Ref); err != nil {
		log.Fatal(err)
	}
	rec, err := c.VM.GetRecord(ctx, ref)
	if err != nil {
		log.Fatal(err)
	}

	// Copy the disk and the suspend image; map each onto its copy.
	vdiMap := map[string]string{}
	for _, vdi := range []xenapi.VDIRef{xenapi.VDIRef(vm.VDIs[0]), rec.SuspendVDI} {
		cp, err := c.VDI.Copy(ctx, vdi, xenapi.SRRef(pool.Master().SR()), xenapi.NullRef, xenapi.NullRef)
		if err != nil {
			log.Fatal(err)
		}
		from, err := c.VDI.GetUUID(ctx, vdi)
		if err != nil {
			log.Fatal(err)
		}
		to, err := c.VDI.GetUUID(ctx, cp)
		if err != nil {
			log.Fatal(err)
		}
		vdiMap[from] = to
	}

	md, err := c.ExportMetadata(ctx, xenapi.ExportMetadataRequest{VM: rec.UUID})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("exported:", len(md.Class("VM")), "VM,", len(md.Class("VBD")), "VBD,", len(md.Class("VDI")), "VDIs")
	vms, err := c.ImportMetadata(ctx, md, xenapi.ImportMetadataRequest{VDIMap: vdiMap})
	if err != nil {
		log.Fatal(err)
	}
	state, err := c.VM.GetPowerState(ctx, vms[0])
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("imported:", len(vms), "VM,", state)
	if _, err := c.Call(ctx, "VM.resume_on", string(vms[0]), pool.Master().Ref(), false, false); err != nil {
		log.Fatal(err)
	}
	state, err = c.VM.GetPowerState(ctx, vms[0])
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("resumed:", state)
	// Output:
	// exported: 1 VM, 1 VBD, 2 VDIs
	// imported: 1 VM, Suspended
	// resumed: Running
}
