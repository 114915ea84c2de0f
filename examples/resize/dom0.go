package main

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/xenflow/xenflow/dom0"
	"github.com/xenflow/xenflow/xenserver"
)

// dom0Hosts holds the control domains a dom0 run opened, to close them.
type dom0Hosts []dom0.Host

// close closes every control domain.
func (h dom0Hosts) close() error {
	var errs []error
	for _, x := range h {
		errs = append(errs, x.Close())
	}
	return errors.Join(errs...)
}

// transports returns the driver's extra transports for -transport: the
// dom0 transport (VHD chains between control domains), or none for xapi.
func transports(c *config) map[string]xenserver.Transport {
	if c.transport != xenserver.TransportDom0 {
		return nil
	}
	return map[string]xenserver.Transport{xenserver.TransportDom0: xenserver.NewDom0Transport(nil)}
}

// withDom0 gives each host of inv its control domain, opened by open,
// when -transport dom0 asks for it.
func withDom0(inv xenserver.Inventory, c *config, open func(host string) (dom0.Host, error)) (dom0Hosts, error) {
	if c.transport != xenserver.TransportDom0 {
		return nil, nil
	}
	var opened dom0Hosts
	for name, entry := range inv.Hosts {
		h, err := open(name)
		if err != nil {
			return opened, fmt.Errorf("dom0 of %s: %w", name, err)
		}
		opened = append(opened, h)
		entry.Dom0 = h
		inv.Hosts[name] = entry
	}
	return opened, nil
}

// sshDom0 opens a host's control domain over SSH as root, with -ssh-key
// and -known-hosts, at the host's XenAPI address on port 22.
func sshDom0(ctx context.Context, c *config, address string) (dom0.Host, error) {
	return dom0.DialSSH(ctx, net.JoinHostPort(address, "22"), &dom0.SSHConfig{User: "root",
		KnownHostsFiles: []string{c.knownHosts}, KeyFiles: []dom0.KeyFile{{Path: c.sshKey}}})
}
