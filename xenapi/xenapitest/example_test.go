package xenapitest_test

import (
	"context"
	"fmt"
	"log"
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
