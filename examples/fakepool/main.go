package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/xenflow/xenflow/xenapi/xenapitest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "fakepool:", err)
		os.Exit(1)
	}
}

// run parses args, builds and serves the pool, prints the url line to
// stdout, and returns when ctx is done.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("fakepool", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:0", "address of the master's XML-RPC endpoint")
	hosts := fs.Int("hosts", 2, "number of hosts in the pool (the first is the master)")
	dir := fs.String("dir", "", "directory for the hosts' dom0 trees and SRs (default: a temporary directory removed at exit)")
	user := fs.String("user", xenapitest.DefaultUser, "user name login_with_password accepts")
	password := fs.String("password", xenapitest.DefaultPassword, "password login_with_password accepts")
	verbose := fs.Bool("v", false, "log every call to stderr")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *hosts < 1 {
		return errors.New("-hosts must be at least 1")
	}
	opts := xenapitest.Options{Dir: *dir, Hosts: *hosts, User: *user, Password: *password}
	if *verbose {
		opts.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if *dir != "" {
		if err := os.MkdirAll(*dir, 0o755); err != nil {
			return err
		}
	}
	pool, err := xenapitest.NewPool(opts)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := seed(pool); err != nil {
		return err
	}
	url, err := pool.Serve(*listen)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(stdout, "url=%s user=%s password=%s\n", url, pool.User(), pool.Password()); err != nil {
		return err
	}
	<-ctx.Done()
	return pool.Close()
}

// seed adds two VMs per host, each with a root disk holding a recognisable
// first sector and an ephemeral disk; the first VM of each host runs.
func seed(pool *xenapitest.Pool) error {
	for i, h := range pool.Hosts() {
		for j := 1; j <= 2; j++ {
			name := fmt.Sprintf("instance-%d-%d", i+1, j)
			vm, err := pool.AddVM(xenapitest.VMSpec{
				Name:        name,
				Host:        h.Name(),
				Memory:      512 << 20,
				VCPUs:       j,
				Disks:       []int64{64 << 20, 16 << 20},
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
