package xenapi_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log"
	"net/http/httptest"
	"sort"
	"strings"
	"time"

	"github.com/xenflow/xenflow/xenapi"
	"github.com/xenflow/xenflow/xenapi/xenapitest"
)

// examplePool serves a simulated pool with two VMs, one running, and
// returns its URL and credentials. With a real pool, use its master's
// https URL instead.
func examplePool() (pool *xenapitest.Pool, url string, web xenapi.VMRef) {
	p, err := xenapitest.NewPool(xenapitest.Options{})
	if err != nil {
		log.Fatal(err)
	}
	url, err = p.Serve("")
	if err != nil {
		log.Fatal(err)
	}
	vm, err := p.AddVM(xenapitest.VMSpec{Name: "web", Running: true, Disks: []int64{8 << 20}})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := p.AddVM(xenapitest.VMSpec{Name: "db"}); err != nil {
		log.Fatal(err)
	}
	return p, url, xenapi.VMRef(vm.Ref)
}

// Log in, list the VMs with VM.get_all_records, log out.
func Example() {
	pool, url, _ := examplePool()
	defer pool.Close()
	ctx := context.Background()

	// For a real pool: xenapi.NewClient("https://pool-master",
	// xenapi.WithPinnedCertificate("sha-256:…")).
	c, err := xenapi.NewClient(url)
	if err != nil {
		log.Fatal(err)
	}
	if err := c.Login(ctx, pool.User(), pool.Password(), "example"); err != nil {
		log.Fatal(err)
	}
	defer c.Close(ctx) // logs out

	vms, err := c.VM.GetAllRecords(ctx)
	if err != nil {
		log.Fatal(err)
	}
	var lines []string
	for _, vm := range vms {
		if vm.IsControlDomain || vm.IsATemplate {
			continue
		}
		lines = append(lines, fmt.Sprintf("%s %s %d MiB", vm.NameLabel, vm.PowerState, vm.MemoryStaticMax>>20))
	}
	sort.Strings(lines)
	for _, l := range lines {
		fmt.Println(l)
	}
	// Output:
	// db Halted 1024 MiB
	// web Running 1024 MiB
}

// Start a shutdown as a task and wait for it, with progress.
func ExampleClient_WaitTask() {
	pool, url, web := examplePool()
	defer pool.Close()
	ctx := context.Background()
	c, _ := xenapi.NewClient(url, xenapi.WithTaskPollInterval(10*time.Millisecond))
	if err := c.Login(ctx, pool.User(), pool.Password(), "example"); err != nil {
		log.Fatal(err)
	}
	defer c.Close(ctx)

	task, err := c.Async.VM.CleanShutdown(ctx, web)
	if err != nil {
		log.Fatal(err)
	}
	// Cancelling ctx would cancel the task; WaitTask destroys it either way.
	if _, err := c.WaitTask(ctx, task, func(p float64) { _ = p /* show progress */ }); err != nil {
		log.Fatal(err)
	}
	state, _ := c.VM.GetPowerState(ctx, web)
	fmt.Println(state)
	// Output: Halted
}

// Branch on a XenAPI failure with errors.As and its parameters.
func ExampleFailure() {
	pool, url, web := examplePool()
	defer pool.Close()
	ctx := context.Background()
	c, _ := xenapi.NewClient(url)
	if err := c.Login(ctx, pool.User(), pool.Password(), "example"); err != nil {
		log.Fatal(err)
	}
	defer c.Close(ctx)

	err := c.VM.Start(ctx, web, false, false) // already running
	var f *xenapi.Failure
	if errors.As(err, &f) {
		if _, expected, actual, ok := f.VMBadPowerState(); ok {
			fmt.Println(f.Code, "expected:", expected, "actual:", actual)
		}
	}
	// Sentinels match on the code alone.
	fmt.Println(errors.Is(err, xenapi.ErrVMBadPowerState), xenapi.IsCode(err, xenapi.CodeHandleInvalid))
	// Output:
	// VM_BAD_POWER_STATE expected: halted actual: running
	// true false
}

// Connect over https to a pool whose hosts have self-signed certificates,
// pinning the certificate's SHA-256 fingerprint (on a host, openssl x509
// -noout -fingerprint -sha256 -in /etc/xensource/xapi-ssl.pem prints it).
func ExampleNewClient() {
	pool, err := xenapitest.NewPool(xenapitest.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	srv := httptest.NewTLSServer(pool.Handler()) // stands for the master, with its own certificate
	defer srv.Close()
	sum := sha256.Sum256(srv.Certificate().Raw)
	fingerprint := hex.EncodeToString(sum[:])

	ctx := context.Background()
	c, err := xenapi.NewClient(srv.URL, xenapi.WithPinnedCertificate(fingerprint))
	if err != nil {
		log.Fatal(err)
	}
	if err := c.Login(ctx, pool.User(), pool.Password(), "example"); err != nil {
		log.Fatal(err)
	}
	defer c.Close(ctx)
	fmt.Println("logged in over", strings.SplitN(c.URL(), ":", 2)[0])

	// TLS options need an https URL: a pin on http:// would pin nothing.
	_, err = xenapi.NewClient("http://10.0.0.1", xenapi.WithPinnedCertificate(fingerprint))
	fmt.Println(err != nil)
	// Output:
	// logged in over https
	// true
}

// Log in with an originator (xapi counts sessions per originator); a
// wrong password is a typed failure, and the client never prints the
// password or the session.
func ExampleClient_Login() {
	pool, url, _ := examplePool()
	defer pool.Close()
	ctx := context.Background()
	c, err := xenapi.NewClient(url)
	if err != nil {
		log.Fatal(err)
	}
	err = c.Login(ctx, pool.User(), "wrong", "example")
	fmt.Println(xenapi.IsCode(err, xenapi.CodeSessionAuthenticationFailed))

	if err := c.Login(ctx, pool.User(), pool.Password(), "example"); err != nil {
		log.Fatal(err)
	}
	defer c.Close(ctx) // logs out
	shown := fmt.Sprintf("%+v", c)
	fmt.Println(c.Session() != "", strings.Contains(shown, pool.Password()), strings.Contains(shown, string(c.Session())))
	// Output:
	// true
	// true false false
}
