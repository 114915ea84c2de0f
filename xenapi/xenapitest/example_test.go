package xenapitest_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"

	"github.com/xenflow/xenflow/xenapi"
	"github.com/xenflow/xenflow/xenapi/xenapitest"
)

// A pool of two hosts served over HTTP with httptest, driven by the xenapi
// client. The first host is the master; its address must be one the
// client can reach, because members answer HOST_IS_SLAVE with it.
func ExampleNewPool() {
	dir, err := os.MkdirTemp("", "pool")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	pool, err := xenapitest.NewPool(xenapitest.Options{Dir: dir, Hosts: 2})
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	srv := httptest.NewServer(pool.Handler())
	defer srv.Close()
	pool.Master().SetAddress(strings.TrimPrefix(srv.URL, "http://"))

	vm, err := pool.AddVM(xenapitest.VMSpec{Name: "instance-1", Disks: []int64{16 << 20}, Running: true})
	if err != nil {
		log.Fatal(err)
	}

	ctx := context.Background()
	c, err := xenapi.NewClient(srv.URL)
	if err != nil {
		log.Fatal(err)
	}
	if err := c.Login(ctx, pool.User(), pool.Password(), "example"); err != nil {
		log.Fatal(err)
	}
	defer c.Close(ctx)
	if err := c.VM.HardShutdown(ctx, xenapi.VMRef(vm.Ref)); err != nil {
		log.Fatal(err)
	}
	state, err := c.VM.GetPowerState(ctx, xenapi.VMRef(vm.Ref))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(state)
	err = c.VM.CleanShutdown(ctx, xenapi.VMRef(vm.Ref))
	if f, ok := xenapi.AsFailure(err); ok {
		fmt.Println(f.Code, f.Params[1], f.Params[2])
	}
	// The call log, as a fault sweep would use it.
	for _, call := range pool.Calls() {
		fmt.Println(strings.TrimSpace(fmt.Sprint(call.Method, " ", call.N, " ", call.Error)))
	}
	// Output:
	// Halted
	// VM_BAD_POWER_STATE running halted
	// session.login_with_password 1
	// VM.hard_shutdown 1
	// VM.get_power_state 1
	// VM.clean_shutdown 1 VM_BAD_POWER_STATE
}

// Moving a disk over xapi's HTTP handlers, as the XenServer driver's xapi
// transport does: a VHD stream exported from one VDI is imported onto a
// new VDI of another host. The import is sent to the master and
// redirected (302) to the host whose local SR holds the target.
func ExamplePool_Serve_diskHandlers() {
	pool, err := xenapitest.NewPool(xenapitest.Options{Hosts: 2})
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	base, err := pool.Serve("")
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	s, err := pool.Call(ctx, "session.login_with_password", pool.User(), pool.Password())
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
	target, err := pool.Call(ctx, "VDI.create", s, map[string]any{
		"name_label": "copy", "name_description": "", "SR": pool.Hosts()[1].SR(), "virtual_size": "4194304",
		"type": "user", "sharable": false, "read_only": false, "other_config": map[string]any{},
	})
	if err != nil {
		log.Fatal(err)
	}

	resp, err := http.Get(fmt.Sprintf("%sexport_raw_vdi?session_id=%s&vdi=%s&format=vhd", base, s, vm.VDIs[0]))
	if err != nil {
		log.Fatal(err)
	}
	stream, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("export:", resp.Status, resp.Header.Get("Content-Type"))

	put := fmt.Sprintf("%simport_raw_vdi?session_id=%s&vdi=%s&format=vhd", base, s, target)
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for {
		req, err := http.NewRequest(http.MethodPut, put, bytes.NewReader(stream)) // a Content-Length: VHD imports need one
		if err != nil {
			log.Fatal(err)
		}
		resp, err := noFollow.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		resp.Body.Close()
		fmt.Println("import:", resp.Status)
		if resp.StatusCode != http.StatusFound {
			break
		}
		put = resp.Header.Get("Location") // the same PUT, to the host that sees the SR
	}
	data, err := pool.ReadVDI(target.(string))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s\n", data[:10])
	// Output:
	// export: 200 OK application/vhd
	// import: 302 Found
	// import: 200 OK
	// guest data
}
