package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/xenflow/xenflow/xenapi/xenapitest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return // -h: the usage is printed, exit 0
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "fakepool:", err)
		os.Exit(1)
	}
}

// faultFlags collects repeated -fault METHOD:N:CODE[:PARAM...] flags.
type faultFlags []xenapitest.Fault

func (f *faultFlags) String() string {
	parts := make([]string, len(*f))
	for i, x := range *f {
		parts[i] = strings.Join(append([]string{x.Method, strconv.Itoa(x.N), x.Code}, x.Params...), ":")
	}
	return strings.Join(parts, ",")
}

// Set parses one METHOD:N:CODE[:PARAM...].
func (f *faultFlags) Set(s string) error {
	parts := strings.Split(s, ":")
	if len(parts) < 3 || parts[0] == "" || parts[2] == "" {
		return fmt.Errorf("fault %q: want METHOD:N:CODE[:PARAM...]", s)
	}
	n, err := strconv.Atoi(parts[1])
	if err != nil || n < 0 {
		return fmt.Errorf("fault %q: N must be a use number from 1 (0: every use), not %q", s, parts[1])
	}
	*f = append(*f, xenapitest.Fault{Method: parts[0], N: n, Code: parts[2], Params: parts[3:]})
	return nil
}

// config is what the flags ask for.
type config struct {
	listen, dir, user, password string
	hosts, pools                int
	vms                         int
	diskMiB                     int64
	shared, verbose             bool
	faults                      faultFlags
	timeouts                    xenapitest.HTTPTimeouts
}

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("fakepool", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: fakepool [flags]

Serves simulated XenServer pools over XenAPI's XML-RPC, with the disk
handlers /export_raw_vdi and /import_raw_vdi, and prints one line per pool:
"url=URL user=USER password=PASSWORD". It serves until interrupted.

Flags:
`)
		fs.PrintDefaults()
	}
	fs.StringVar(&c.listen, "listen", "127.0.0.1:0", "address of the (first) pool master's endpoint; with -pools K the next masters listen on the following ports")
	fs.IntVar(&c.hosts, "hosts", 2, "number of hosts in each pool (the first is the master)")
	fs.IntVar(&c.pools, "pools", 1, "number of standalone pools to serve, on consecutive ports")
	fs.StringVar(&c.dir, "dir", "", "directory for the hosts' dom0 trees and SRs (default: a temporary directory removed at exit); pool i of several goes in DIR/pool<i>")
	fs.StringVar(&c.user, "user", xenapitest.DefaultUser, "user name login_with_password accepts")
	fs.StringVar(&c.password, "password", xenapitest.DefaultPassword, "password login_with_password accepts")
	fs.IntVar(&c.vms, "vms", 0, "seed this many running guests in each pool, guest-<pool>-001, guest-<pool>-002, ... spread over its hosts, each with one root disk of -disk-mib (0: two VMs per host, instance-<host>-<n>, with a root and an ephemeral disk)")
	fs.Int64Var(&c.diskMiB, "disk-mib", 64, "size of each seeded VM's root disk in MiB")
	fs.BoolVar(&c.shared, "shared-sr", false, "give each pool an SR every host sees")
	fs.Var(&c.faults, "fault", "METHOD:N:CODE[:PARAM...]: the N-th call of METHOD (a XenAPI wire name, or an HTTP handler's action: get_export_raw_vdi, put_import_raw_vdi, get_export_metadata, put_import_metadata) fails with CODE and the parameters (separated by ':'); N 0 fails every call; repeatable")
	fs.DurationVar(&c.timeouts.ReadHeader, "header-timeout", xenapitest.DefaultReadHeaderTimeout, "how long a client may take to send a request's headers")
	fs.DurationVar(&c.timeouts.Body, "body-timeout", xenapitest.DefaultBodyTimeout, "how long a client may take to send an XML-RPC body, or pause a disk stream")
	fs.BoolVar(&c.verbose, "v", false, "log every call to stderr")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	switch {
	case fs.NArg() != 0:
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	case c.hosts < 1:
		return nil, errors.New("-hosts must be at least 1")
	case c.pools < 1:
		return nil, errors.New("-pools must be at least 1")
	case c.vms < 0 || c.vms > maxGuests:
		return nil, fmt.Errorf("-vms %d is outside 0..%d", c.vms, maxGuests)
	case c.diskMiB < 1 || c.diskMiB > 2040<<10:
		return nil, fmt.Errorf("-disk-mib %d is outside 1..%d", c.diskMiB, 2040<<10)
	}
	return c, nil
}

// run parses args, builds and serves the pools, prints their url lines to
// stdout, and returns when ctx is done.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	pools, urls, err := servePools(c, stderr)
	defer func() {
		for _, p := range pools {
			_ = p.Close()
		}
	}()
	if err != nil {
		return err
	}
	for _, u := range urls {
		if _, err := fmt.Fprintf(stdout, "url=%s user=%s password=%s\n", u, c.user, c.password); err != nil {
			return err
		}
	}
	<-ctx.Done()
	var errs []error
	for _, p := range pools {
		errs = append(errs, p.Close())
	}
	return errors.Join(errs...)
}

// servePools builds c.pools pools and serves their masters on consecutive
// ports from c.listen's (port 0: a free run of ports).
func servePools(c *config, stderr io.Writer) ([]*xenapitest.Pool, []string, error) {
	host, port, err := net.SplitHostPort(c.listen)
	if err != nil {
		return nil, nil, fmt.Errorf("-listen %q: %w", c.listen, err)
	}
	base, err := strconv.Atoi(port)
	if err != nil {
		return nil, nil, fmt.Errorf("-listen %q: port: %w", c.listen, err)
	}
	if base == 0 && c.pools > 1 {
		if base, err = freePorts(host, c.pools); err != nil {
			return nil, nil, err
		}
	}
	var pools []*xenapitest.Pool
	var urls []string
	for i := 0; i < c.pools; i++ {
		p, err := newPool(c, i, stderr)
		if err != nil {
			return pools, nil, err
		}
		pools = append(pools, p)
		addr := net.JoinHostPort(host, "0")
		if base != 0 {
			addr = net.JoinHostPort(host, strconv.Itoa(base+i))
		}
		u, err := p.Serve(addr)
		if err != nil {
			return pools, nil, err
		}
		urls = append(urls, u)
	}
	return pools, urls, nil
}

// freePorts finds n consecutive free ports on host and returns the first.
func freePorts(host string, n int) (int, error) {
	for attempt := 0; attempt < 20; attempt++ {
		first, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return 0, err
		}
		base := first.Addr().(*net.TCPAddr).Port
		held := []net.Listener{first}
		for i := 1; i < n; i++ {
			ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(base+i)))
			if err != nil {
				break
			}
			held = append(held, ln)
		}
		for _, ln := range held {
			ln.Close()
		}
		if len(held) == n {
			return base, nil
		}
	}
	return 0, fmt.Errorf("no %d consecutive free ports on %s", n, host)
}

// newPool builds pool i with its seeded VMs and the faults.
func newPool(c *config, i int, stderr io.Writer) (*xenapitest.Pool, error) {
	opts := xenapitest.Options{Hosts: c.hosts, User: c.user, Password: c.password, SharedSR: c.shared, HTTPTimeouts: c.timeouts}
	if c.verbose {
		opts.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("pool", i+1)
	}
	if c.dir != "" {
		opts.Dir = c.dir
		if c.pools > 1 {
			opts.Dir = filepath.Join(c.dir, fmt.Sprintf("pool%d", i+1))
		}
		if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
			return nil, err
		}
	}
	pool, err := xenapitest.NewPool(opts)
	if err != nil {
		return nil, err
	}
	seedFn := seed
	if c.vms > 0 {
		seedFn = func(p *xenapitest.Pool, diskMiB int64) error { return seedGuests(p, i+1, c.vms, diskMiB) }
	}
	if err := seedFn(pool, c.diskMiB); err != nil {
		pool.Close()
		return nil, err
	}
	for _, f := range c.faults {
		pool.InjectFault(f)
	}
	return pool, nil
}

// seed adds two VMs per host, each with a root disk of diskMiB holding a
// recognisable first sector, an ephemeral disk and a VIF on the pool's
// network; the first VM of each host runs.
func seed(pool *xenapitest.Pool, diskMiB int64) error {
	for i, h := range pool.Hosts() {
		for j := 1; j <= 2; j++ {
			name := fmt.Sprintf("instance-%d-%d", i+1, j)
			vm, err := pool.AddVM(xenapitest.VMSpec{
				Name:        name,
				Host:        h.Name(),
				Memory:      512 << 20,
				VCPUs:       j,
				Disks:       []int64{diskMiB << 20, 16 << 20},
				Networks:    []string{pool.Network()},
				Running:     j == 1,
				OtherConfig: map[string]string{"nova_uuid": fmt.Sprintf("00000000-0000-4000-8000-%012d", i*10+j)},
			})
			if err != nil {
				return err
			}
			if err := pool.WriteVDI(vm.VDIs[0], 0, []byte("root disk of "+name+"\n")); err != nil {
				return err
			}
		}
	}
	return nil
}

// maxGuests bounds -vms: the names and nova_uuids have room for it.
const maxGuests = 999

// guestMemory is each guest's memory: small, so many fit on a host.
const guestMemory = 128 << 20

// seedGuests adds n running guests to pool number poolNo, spread over its
// hosts in turn, each with one root disk of diskMiB whose first sector
// names it, a VIF on the pool's network, and an other_config:nova_uuid
// that tags it, unique across the pools.
func seedGuests(pool *xenapitest.Pool, poolNo, n int, diskMiB int64) error {
	hosts := pool.Hosts()
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("guest-%d-%03d", poolNo, i)
		vm, err := pool.AddVM(xenapitest.VMSpec{
			Name: name, Host: hosts[(i-1)%len(hosts)].Name(), Memory: guestMemory, VCPUs: 1,
			Disks: []int64{diskMiB << 20}, Networks: []string{pool.Network()}, Running: true,
			OtherConfig: map[string]string{"nova_uuid": fmt.Sprintf("00000000-0000-4000-9%03d-%012d", poolNo, i)},
		})
		if err != nil {
			return err
		}
		if err := pool.WriteVDI(vm.VDIs[0], 0, []byte("root disk of "+name+"\n")); err != nil {
			return err
		}
	}
	return nil
}
