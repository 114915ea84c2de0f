package xenserver

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/xenflow/xenflow/xenapi"
)

// poolConn is one pool's client, shared by every compute host of the pool.
// It logs in at first use; the client itself logs in again on
// SESSION_INVALID and follows HOST_IS_SLAVE to a new master.
type poolConn struct {
	name       string
	ep         PoolEndpoint
	originator string

	mu       sync.Mutex
	c        *xenapi.Client
	loggedIn bool
}

// client returns the pool's client, logged in.
func (p *poolConn) client(ctx context.Context) (*xenapi.Client, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.c == nil {
		c, err := xenapi.NewClient(p.ep.URL, p.options()...)
		if err != nil {
			return nil, fmt.Errorf("xenserver: pool %q: %w", p.name, err)
		}
		p.c = c
	}
	if !p.loggedIn {
		if err := p.c.Login(ctx, p.ep.User, string(p.ep.Password), p.originator); err != nil {
			return nil, fmt.Errorf("xenserver: pool %q: login as %q: %w", p.name, p.ep.User, err)
		}
		p.loggedIn = true
	}
	return p.c, nil
}

func (p *poolConn) options() []xenapi.Option {
	var opts []xenapi.Option
	if p.ep.HTTPClient != nil {
		opts = append(opts, xenapi.WithHTTPClient(p.ep.HTTPClient))
	}
	if p.ep.RootCAs != nil {
		opts = append(opts, xenapi.WithRootCAs(p.ep.RootCAs))
	}
	if len(p.ep.PinnedFingerprints) > 0 {
		opts = append(opts, xenapi.WithPinnedCertificate(p.ep.PinnedFingerprints...))
	}
	return append(opts, p.ep.ClientOptions...)
}

// close logs the pool's session out.
func (p *poolConn) close(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.c == nil {
		return nil
	}
	p.loggedIn = false
	return p.c.Close(ctx)
}

// target is a compute host resolved against its pool: the pool's client,
// the XenServer host and the SR for instance disks.
type target struct {
	// Name is the compute host's name.
	Name  string
	Entry HostEntry
	// Pool names the pool (a key of Inventory.Pools).
	Pool   string
	Client *xenapi.Client
	Host   xenapi.HostRef
	SR     xenapi.SRRef
}

// String names the target for messages.
func (t *target) String() string { return fmt.Sprintf("%s (pool %s)", t.Name, t.Pool) }

// samePool reports whether two targets are hosts of one pool.
func (t *target) samePool(o *target) bool { return t.Pool == o.Pool }

// pool resolves a compute host: its pool's client (logged in), the
// XenServer host's ref and the SR's ref. An unknown compute host is an
// *UnknownHostError; a host or SR the pool does not have is a
// *NotInPoolError.
func (d *Driver) pool(ctx context.Context, host string) (*target, error) {
	entry, ok := d.cfg.Inventory.Hosts[host]
	if !ok {
		return nil, &UnknownHostError{Host: host}
	}
	pc := d.pools[entry.Pool]
	c, err := pc.client(ctx)
	if err != nil {
		return nil, err
	}
	t := &target{Name: host, Entry: entry, Pool: entry.Pool, Client: c}
	if t.Host, err = resolve(ctx, t, "host", entry.XenServerHost, c.Host.GetByUUID, c.Host.GetByNameLabel); err != nil {
		return nil, err
	}
	if t.SR, err = resolve(ctx, t, "SR", entry.SR, c.SR.GetByUUID, c.SR.GetByNameLabel); err != nil {
		return nil, err
	}
	return t, nil
}

// resolve finds an object by uuid (when the name looks like one) or by
// name_label, which must name exactly one object.
func resolve[R ~string](ctx context.Context, t *target, kind, name string,
	byUUID func(context.Context, string) (R, error), byName func(context.Context, string) ([]R, error)) (R, error) {
	notFound := func(n int) error {
		return &NotInPoolError{Kind: kind, Name: name, ComputeHost: t.Name, Pool: t.Pool, Matches: n}
	}
	if looksLikeUUID(name) {
		ref, err := byUUID(ctx, name)
		if xenapi.IsCode(err, xenapi.CodeUUIDInvalid) || xenapi.IsCode(err, xenapi.CodeHandleInvalid) {
			return "", notFound(0)
		}
		if err != nil {
			return "", fmt.Errorf("xenserver: compute host %q: find %s %q: %w", t.Name, kind, name, err)
		}
		return ref, nil
	}
	refs, err := byName(ctx, name)
	if err != nil {
		return "", fmt.Errorf("xenserver: compute host %q: find %s %q: %w", t.Name, kind, name, err)
	}
	if len(refs) != 1 {
		return "", notFound(len(refs))
	}
	return refs[0], nil
}

// Close logs out of every pool the driver logged in to.
func (d *Driver) Close(ctx context.Context) error {
	var errs []error
	for _, name := range sortedKeys(d.pools) {
		if err := d.pools[name].close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("xenserver: pool %q: logout: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// looksLikeUUID reports whether s has the 8-4-4-4-12 hex form.
func looksLikeUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range s {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
				return false
			}
		}
	}
	return true
}
