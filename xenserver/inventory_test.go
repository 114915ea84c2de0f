package xenserver

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/statemachine"
	"github.com/xenflow/xenflow/xenapi/xenapitest"
)

func TestNewRefusesBadInventory(t *testing.T) {
	good := func() Config {
		return Config{Inventory: Inventory{
			Pools: map[string]PoolEndpoint{"p": {URL: "https://192.0.2.1", User: "root", Password: "pw"}},
			Hosts: map[string]HostEntry{"c1": {Pool: "p", XenServerHost: "h1", SR: "sr"}},
		}}
	}
	tests := []struct {
		name  string
		edit  func(*Config)
		field string
	}{
		{"no hosts", func(c *Config) { c.Inventory.Hosts = nil }, "Inventory.Hosts"},
		{"unknown pool", func(c *Config) { c.Inventory.Hosts["c1"] = HostEntry{Pool: "q", XenServerHost: "h", SR: "s"} }, "Inventory.Hosts[c1].Pool"},
		{"no URL", func(c *Config) { c.Inventory.Pools["p"] = PoolEndpoint{} }, "Inventory.Pools[p].URL"},
		{"no host", func(c *Config) { c.Inventory.Hosts["c1"] = HostEntry{Pool: "p", SR: "s"} }, "Inventory.Hosts[c1].XenServerHost"},
		{"no SR", func(c *Config) { c.Inventory.Hosts["c1"] = HostEntry{Pool: "p", XenServerHost: "h"} }, "Inventory.Hosts[c1].SR"},
		{"unknown transport", func(c *Config) {
			c.Inventory.Hosts["c1"] = HostEntry{Pool: "p", XenServerHost: "h", SR: "s", Transport: "rsync"}
		}, "Inventory.Hosts[c1].Transport"},
		{"negative limit", func(c *Config) { c.Transfer.BandwidthLimit = -1 }, "Transfer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good()
			tt.edit(&cfg)
			_, err := New(cfg)
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.Field != tt.field {
				t.Fatalf("New: %v, want a *ConfigError on %s", err, tt.field)
			}
		})
	}
	if _, err := New(good()); err != nil {
		t.Fatalf("New(good): %v", err)
	}
}

func TestPasswordNeverPrints(t *testing.T) {
	const secret = "s3cr3t-pw"
	ep := PoolEndpoint{URL: "https://192.0.2.1", User: "root", Password: secret}
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("endpoint", "password", ep.Password, "ep", ep)
	js, err := json.Marshal(ep)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{fmt.Sprint(ep), fmt.Sprintf("%+v", ep), fmt.Sprintf("%#v", ep), logged.String(), string(js)} {
		if strings.Contains(s, secret) {
			t.Errorf("the password shows in %q", s)
		}
	}
	if string(ep.Password) != secret {
		t.Error("string() must give the secret")
	}
}

func TestResolveHostsAndSRs(t *testing.T) {
	for _, l := range layouts {
		t.Run(string(l), func(t *testing.T) {
			e := newEnv(t, l, envOptions{})
			ctx := context.Background()
			for name := range e.cfg.Inventory.Hosts {
				tg, err := e.d.pool(ctx, name)
				if err != nil {
					t.Fatalf("pool(%s): %v", name, err)
				}
				if string(tg.Host) != e.hostOf[name].Ref() || string(tg.SR) != e.hostOf[name].SR() {
					t.Errorf("%s resolved to host %s SR %s, want %s %s", name, tg.Host, tg.SR, e.hostOf[name].Ref(), e.hostOf[name].SR())
				}
			}
			// One session per pool, however many hosts.
			logins := 0
			for _, p := range e.pools {
				logins += p.CallCount("session.login_with_password")
			}
			if logins != len(e.pools) {
				t.Errorf("%d logins for %d pools", logins, len(e.pools))
			}
		})
	}
}

func TestUnknownHostOrSR(t *testing.T) {
	tests := []struct {
		name    string
		entry   HostEntry
		kind    string
		matches int
	}{
		{"host uuid", HostEntry{XenServerHost: "00000000-0000-4000-8000-000000000000"}, "host", 0},
		{"host name", HostEntry{XenServerHost: "nosuchhost"}, "host", 0},
		{"SR uuid", HostEntry{SR: "00000000-0000-4000-8000-000000000001"}, "SR", 0},
		{"SR name ambiguous", HostEntry{SR: "Local storage"}, "SR", 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, onePool, envOptions{config: func(c *Config) {
				h := c.Inventory.Hosts["compute1"]
				if tt.entry.XenServerHost != "" {
					h.XenServerHost = tt.entry.XenServerHost
				}
				if tt.entry.SR != "" {
					h.SR = tt.entry.SR
				}
				c.Inventory.Hosts["compute1"] = h
			}})
			g := &compute.Instance{UUID: "0e6f4a1c-52b7-4b1e-9c55-0b1a2c3d4e5f"}
			_, err := e.d.GetInfo(context.Background(), compute.InstanceRequest{Instance: g, Host: "compute1"})
			var nip *NotInPoolError
			if !errors.As(err, &nip) || nip.Kind != tt.kind || nip.Matches != tt.matches || nip.ComputeHost != "compute1" {
				t.Fatalf("GetInfo: %v, want a *NotInPoolError for the %s", err, tt.kind)
			}
			if !errors.Is(err, ErrUnknownHost) {
				t.Error("a *NotInPoolError must match ErrUnknownHost")
			}
		})
	}
	e := newEnv(t, standalone, envOptions{})
	_, err := e.d.GetInfo(context.Background(), compute.InstanceRequest{Instance: &compute.Instance{UUID: "x"}, Host: "compute9"})
	var uh *UnknownHostError
	if !errors.As(err, &uh) || uh.Host != "compute9" {
		t.Fatalf("GetInfo on an unknown host: %v", err)
	}
}

func TestGetInfoAndPower(t *testing.T) {
	for _, l := range layouts {
		t.Run(string(l), func(t *testing.T) {
			e := newEnv(t, l, envOptions{})
			ctx := context.Background()
			g := e.addGuest("compute2", guestSpec{running: true, flavor: &compute.Flavor{MemoryMB: 512, VCPUs: 2}})
			req := compute.InstanceRequest{Instance: g.inst, Host: "compute2"}
			info, err := e.d.GetInfo(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			if info != (compute.InstanceInfo{PowerState: statemachine.PowerRunning, MemoryMB: 512, VCPUs: 2}) {
				t.Fatalf("GetInfo = %+v", info)
			}
			for i := 0; i < 2; i++ { // twice: the second finds it done
				if err := e.d.PowerOff(ctx, compute.PowerOffRequest{Instance: g.inst, Host: "compute2", Clean: true}); err != nil {
					t.Fatalf("PowerOff %d: %v", i, err)
				}
			}
			if info, _ := e.d.GetInfo(ctx, req); info.PowerState != statemachine.PowerShutdown {
				t.Fatalf("after PowerOff: %v", info.PowerState)
			}
			for i := 0; i < 2; i++ {
				if err := e.d.PowerOn(ctx, req); err != nil {
					t.Fatalf("PowerOn %d: %v", i, err)
				}
			}
			if info, _ := e.d.GetInfo(ctx, req); info.PowerState != statemachine.PowerRunning {
				t.Fatalf("after PowerOn: %v", info.PowerState)
			}
			if l == onePool {
				// The pool's other hosts do not have the guest.
				_, err := e.d.GetInfo(ctx, compute.InstanceRequest{Instance: g.inst, Host: "compute1"})
				if !errors.Is(err, compute.ErrNotFound) {
					t.Fatalf("GetInfo on another host of the pool: %v", err)
				}
			}
		})
	}
}

// A clean shutdown that fails falls back to a hard one.
func TestPowerOffHardAfterCleanFails(t *testing.T) {
	e := newEnv(t, standalone, envOptions{})
	g := e.addGuest("compute1", guestSpec{running: true})
	p := e.poolOf["compute1"]
	p.InjectFault(xenapitest.Fault{Method: "Async.VM.clean_shutdown", Code: "VM_FAILED_SHUTDOWN_ACKNOWLEDGMENT"})
	if err := e.d.PowerOff(context.Background(), compute.PowerOffRequest{Instance: g.inst, Host: "compute1", Clean: true}); err != nil {
		t.Fatal(err)
	}
	if p.CallCount("VM.hard_shutdown") != 1 {
		t.Fatalf("calls:\n%s", p.CallsSummary())
	}
}

func TestFindVMByNovaUUIDOnly(t *testing.T) {
	e := newEnv(t, standalone, envOptions{})
	ctx := context.Background()
	g := e.addGuest("compute1", guestSpec{})
	// A VM named like the instance but without nova_uuid is never matched.
	p := e.poolOf["compute1"]
	if _, err := p.AddVM(xenapitest.VMSpec{Name: g.inst.Name, Disks: []int64{2 << 20}}); err != nil {
		t.Fatal(err)
	}
	other := &compute.Instance{UUID: "5b0c2d1e-6f7a-4b8c-9d0e-1f2a3b4c5d6e", Name: g.inst.Name}
	_, err := e.d.GetInfo(ctx, compute.InstanceRequest{Instance: other, Host: "compute1"})
	var nf *compute.NotFoundError
	if !errors.As(err, &nf) || nf.ID != other.UUID {
		t.Fatalf("GetInfo of an instance no VM claims: %v", err)
	}
	if _, err := e.d.GetInfo(ctx, compute.InstanceRequest{Instance: g.inst, Host: "compute1"}); err != nil {
		t.Fatalf("GetInfo: %v", err)
	}
	// Two VMs claiming the instance.
	if _, err := p.AddVM(xenapitest.VMSpec{Name: "impostor", Disks: []int64{2 << 20},
		OtherConfig: map[string]string{KeyNovaUUID: g.inst.UUID}}); err != nil {
		t.Fatal(err)
	}
	_, err = e.d.GetInfo(ctx, compute.InstanceRequest{Instance: g.inst, Host: "compute1"})
	var dup *DuplicateInstanceError
	if !errors.As(err, &dup) || len(dup.VMs) != 2 || dup.Pool != "pool1" || dup.InstanceUUID != g.inst.UUID {
		t.Fatalf("GetInfo with two VMs claiming the instance: %v", err)
	}
	if err := e.d.PowerOff(ctx, compute.PowerOffRequest{Instance: g.inst, Host: "compute1"}); !errors.As(err, &dup) {
		t.Fatalf("PowerOff with two VMs claiming the instance: %v", err)
	}
}

// A pool served over TLS is reached with a pinned certificate or a CA
// pool; a wrong pin is refused.
func TestTLSEndpoint(t *testing.T) {
	p, err := xenapitest.NewPool(xenapitest.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	srv := httptest.NewTLSServer(p.Handler())
	defer srv.Close()
	p.Master().SetAddress(strings.TrimPrefix(srv.URL, "https://"))
	sum := sha256.Sum256(srv.Certificate().Raw)
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	tests := []struct {
		name string
		ep   PoolEndpoint
		ok   bool
	}{
		{"pinned", PoolEndpoint{PinnedFingerprints: []string{hex.EncodeToString(sum[:])}}, true},
		{"CA pool", PoolEndpoint{RootCAs: roots}, true},
		{"wrong pin", PoolEndpoint{PinnedFingerprints: []string{strings.Repeat("00", 32)}}, false},
		{"system roots", PoolEndpoint{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ep := tt.ep
			ep.URL, ep.User, ep.Password = srv.URL, p.User(), Password(p.Password())
			d, err := New(Config{Inventory: Inventory{Pools: map[string]PoolEndpoint{"p": ep},
				Hosts: map[string]HostEntry{"c": {Pool: "p", XenServerHost: p.Master().UUID(), SR: p.Master().SRUUID()}}}})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close(context.Background())
			_, err = d.pool(context.Background(), "c")
			if tt.ok != (err == nil) {
				t.Fatalf("pool: %v", err)
			}
		})
	}
}

// A session xapi forgot is replaced: the next call logs in again.
func TestSessionRelogin(t *testing.T) {
	e := newEnv(t, standalone, envOptions{})
	g := e.addGuest("compute1", guestSpec{running: true})
	ctx := context.Background()
	tg, err := e.d.pool(ctx, "compute1")
	if err != nil {
		t.Fatal(err)
	}
	p := e.poolOf["compute1"]
	if _, err := p.Call(ctx, "session.logout", string(tg.Client.Session())); err != nil {
		t.Fatal(err)
	}
	if _, err := e.d.GetInfo(ctx, compute.InstanceRequest{Instance: g.inst, Host: "compute1"}); err != nil {
		t.Fatalf("GetInfo after the session was lost: %v", err)
	}
	if n := p.CallCount("session.login_with_password"); n != 2 {
		t.Fatalf("%d logins, want 2", n)
	}
}
