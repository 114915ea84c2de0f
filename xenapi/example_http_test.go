package xenapi_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/url"

	"github.com/xenflow/xenflow/xenapi"
	"github.com/xenflow/xenflow/xenapi/xenapitest"
)

// Copy a disk through xapi's HTTP handlers with the client's session: a
// VHD exported from one VDI is imported onto a new VDI in another host's
// local SR. The import goes to the master, which redirects it (302) to
// the host that sees the SR; DoHTTP follows, and the body travels once.
func ExampleClient_DoHTTP() {
	pool, err := xenapitest.NewPool(xenapitest.Options{Hosts: 2})
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	master, err := pool.Serve("")
	if err != nil {
		log.Fatal(err)
	}
	vm, err := pool.AddVM(xenapitest.VMSpec{Name: "instance-1", Disks: []int64{4 << 20}})
	if err != nil {
		log.Fatal(err)
	}
	if err := pool.WriteVDI(vm.VDIs[0], 0, []byte("guest data")); err != nil {
		log.Fatal(err)
	}

	ctx := context.Background()
	c, err := xenapi.NewClient(master)
	if err != nil {
		log.Fatal(err)
	}
	if err := c.Login(ctx, pool.User(), pool.Password(), "example"); err != nil {
		log.Fatal(err)
	}
	defer c.Close(ctx)
	target, err := c.VDI.Create(ctx, xenapi.VDIRecord{NameLabel: "copy", SR: xenapi.SRRef(pool.Hosts()[1].SR()),
		VirtualSize: 4 << 20, Type: xenapi.VDITypeUser})
	if err != nil {
		log.Fatal(err)
	}

	resp, err := c.DoHTTP(ctx, xenapi.HTTPRequest{
		Method: http.MethodGet,
		Path:   "/export_raw_vdi",
		Query:  url.Values{"vdi": {vm.VDIs[0]}, "format": {"vhd"}},
	})
	if err != nil {
		log.Fatal(err)
	}
	stream, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("export:", resp.Status, resp.Header.Get("Content-Type"))

	resp, err = c.DoHTTP(ctx, xenapi.HTTPRequest{
		Method:        http.MethodPut,
		Path:          "/import_raw_vdi",
		Query:         url.Values{"vdi": {string(target)}, "format": {"vhd"}},
		Body:          bytes.NewReader(stream),
		ContentLength: int64(len(stream)), // xapi refuses a chunked VHD import
	})
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	fmt.Println("import:", resp.Status)
	data, err := pool.ReadVDI(string(target))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s\n", data[:10])

	// A status other than 2xx is an *HTTPError; xapi answers an unknown
	// VDI with 500.
	_, err = c.DoHTTP(ctx, xenapi.HTTPRequest{Method: http.MethodGet, Path: "/export_raw_vdi",
		Query: url.Values{"vdi": {"OpaqueRef:no-such-vdi"}}})
	var he *xenapi.HTTPError
	if errors.As(err, &he) {
		fmt.Println(he.Method, he.Path, he.Status)
	}
	// Output:
	// export: 200 OK application/vhd
	// import: 200 OK
	// guest data
	// GET /export_raw_vdi 500
}
