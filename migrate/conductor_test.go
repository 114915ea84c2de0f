package migrate

import (
	"context"
	"errors"
	"testing"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/compute/computetest"
	sm "github.com/xenflow/xenflow/statemachine"
)

// noWatcher hides the FakeDriver's HostStateWatcher, so the conductor
// asks GetAvailableResource of each host.
type noWatcher struct{ compute.Driver }

// TestHostStatesWithoutWatcher: without the watcher every host is asked
// with GetAvailableResource; a host that fails to answer is left out of
// the choice, as a compute service that does not report.
func TestHostStatesWithoutWatcher(t *testing.T) {
	h := newHarness(t, 3)
	ctx := context.Background()
	if err := h.addInstance(ctx, "i1", "host1", "small", sm.VMActive, false); err != nil {
		t.Fatal(err)
	}
	h.driver.InjectFault(computetest.Fault{Method: computetest.MethodGetAvailableResource, Nth: 2}) // host2
	o, err := New(Config{Store: h.store, Driver: noWatcher{h.driver}, Quota: h.ledger, Flavors: h.flavors,
		Hosts: h.hosts, Now: h.clock.Now, Owner: "a"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := o.Resize(ctx, ResizeRequest{InstanceUUID: "i1", FlavorID: "medium"})
	if err != nil {
		t.Fatal(err)
	}
	if res.DestHost != "host3" {
		t.Errorf("destination %s, want host3 (host2 did not report)", res.DestHost)
	}
	if n := h.driver.CallCount(computetest.MethodGetAvailableResource); n < 4 {
		t.Errorf("GetAvailableResource called %d times, want every host and the destination's claim", n)
	}
	if err := h.invariants(ctx, "i1"); err != nil {
		t.Fatal(err)
	}
}

// TestProgress: the callback sees 0 to 100 in order, with the bytes the
// driver sent, and the instance keeps the last percentage.
func TestProgress(t *testing.T) {
	h := newHarness(t, 3)
	ctx := context.Background()
	if err := h.addInstance(ctx, "i1", "host1", "small", sm.VMActive, false); err != nil {
		t.Fatal(err)
	}
	var got []ProgressEvent
	h.opts.Progress = func(p ProgressEvent) { got = append(got, p) }
	if _, err := h.orch("a").Resize(ctx, ResizeRequest{InstanceUUID: "i1", FlavorID: "large"}); err != nil {
		t.Fatal(err)
	}
	if len(got) < 4 || got[0].Percent != 0 || got[len(got)-1].Percent != 100 {
		t.Fatalf("progress %+v", got)
	}
	var sent int64
	for i, p := range got {
		if i > 0 && p.Percent < got[i-1].Percent {
			t.Errorf("progress went back: %d after %d", p.Percent, got[i-1].Percent)
		}
		sent = max(sent, p.BytesSent)
	}
	if sent == 0 {
		t.Error("no bytes sent reported")
	}
	inst, _ := h.mem.GetInstance(ctx, "i1")
	if inst.Progress != 100 {
		t.Errorf("instance progress %d", inst.Progress)
	}
}

// TestNewRefusesBadConfig: each missing dependency is named.
func TestNewRefusesBadConfig(t *testing.T) {
	h := newHarness(t, 1)
	good := Config{Store: h.store, Driver: h.driver, Quota: h.ledger, Flavors: h.flavors, Owner: "a"}
	for _, tc := range []struct {
		field string
		edit  func(*Config)
	}{
		{"Store", func(c *Config) { c.Store = nil }},
		{"Driver", func(c *Config) { c.Driver = nil }},
		{"Quota", func(c *Config) { c.Quota = nil }},
		{"Flavors", func(c *Config) { c.Flavors = nil }},
		{"Owner", func(c *Config) { c.Owner = "" }},
		{"LeaseTTL", func(c *Config) { c.LeaseTTL = -1 }},
		{"Options.ResizeConfirmWindow", func(c *Config) { c.Options.ResizeConfirmWindow = -1 }},
	} {
		c := good
		tc.edit(&c)
		_, err := New(c)
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Field != tc.field {
			t.Errorf("%s: %v", tc.field, err)
		}
	}
	if _, err := New(good); err != nil {
		t.Fatal(err)
	}
}
