package xenserver

import (
	"context"
	"log/slog"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/statemachine"
	"github.com/xenflow/xenflow/xenapi"
)

var (
	_ compute.Driver           = (*Driver)(nil)
	_ compute.HostStateWatcher = (*Driver)(nil)
)

// Driver is the XenServer side of the flows (compute.Driver) over an
// inventory of pools. It is safe for concurrent use.
type Driver struct {
	cfg        Config
	log        *slog.Logger
	pools      map[string]*poolConn
	transports map[string]Transport
	slots      *hostSlots
}

// New returns a driver for the pools and compute hosts of cfg. It checks
// the inventory's shape; each compute host's XenServer host and SR are
// looked up at its first use, and a missing one is a *NotInPoolError then.
// No pool is contacted before a method needs it.
func New(cfg Config) (*Driver, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	d := &Driver{
		cfg:        cfg,
		log:        cfg.Logger,
		pools:      map[string]*poolConn{},
		transports: map[string]Transport{},
		slots:      newHostSlots(cfg.Transfer.MaxPerHost),
	}
	if d.log == nil {
		d.log = slog.New(discardHandler{})
	}
	for name, ep := range cfg.Inventory.Pools {
		d.pools[name] = &poolConn{name: name, ep: ep, originator: cfg.Originator}
	}
	d.transports[TransportXAPI] = &xapiTransport{cfg: cfg.Transfer}
	d.transports[TransportDom0] = NewDom0Transport(nil)
	for name, t := range cfg.Transports {
		d.transports[name] = t
	}
	return d, nil
}

// transport returns the transport that moves disks from a compute host.
func (d *Driver) transport(t *target) (Transport, error) {
	name := t.Entry.Transport
	if name == "" {
		name = TransportXAPI
	}
	tr, ok := d.transports[name]
	if !ok {
		return nil, &UnknownTransportError{Host: t.Name, Transport: name}
	}
	return tr, nil
}

// Capabilities reports what the driver supports: no move to the same host
// (Nova's XenAPI driver: supports_migrate_to_same_host False), suspended
// cold migrations (within a pool and across pools), Snapshot and Spawn
// for cross-cell moves.
func (d *Driver) Capabilities() compute.DriverCapabilities {
	return compute.DriverCapabilities{SupportsSuspendMigrate: true, SupportsCrossCell: true}
}

// GetInfo returns the state of the instance's VM on req.Host. While the
// instance is rescued (its VM halted, a rescue VM made for it) it is the
// rescue VM's, as Nova's vmops.py lookup(check_rescue=True) prefers the
// -rescue VM.
func (d *Driver) GetInfo(ctx context.Context, req compute.InstanceRequest) (compute.InstanceInfo, error) {
	t, vm, err := d.lookup(ctx, req.Host, req.Instance)
	if err != nil {
		return compute.InstanceInfo{}, err
	}
	if !vm.Rec.PowerState.Is(xenapi.VMPowerStateRunning) {
		rescues, err := findVMsBy(ctx, t.Client, func(oc map[string]string) bool { return oc[KeyRescueOf] == req.Instance.UUID })
		if err != nil {
			return compute.InstanceInfo{}, withHost(t, err)
		}
		if len(rescues) == 1 {
			vm = rescues[0]
		}
	}
	return compute.InstanceInfo{
		PowerState: powerState(vm.Rec.PowerState),
		MemoryMB:   int(vm.Rec.MemoryStaticMax >> 20),
		VCPUs:      int(vm.Rec.VCPUsMax),
	}, nil
}

// powerState maps xapi's power state to Nova's
// (nova/virt/xenapi/vm_utils.py, XENAPI_POWER_STATE).
func powerState(s xenapi.VMPowerState) statemachine.PowerState {
	switch {
	case s.Is(xenapi.VMPowerStateRunning):
		return statemachine.PowerRunning
	case s.Is(xenapi.VMPowerStateHalted):
		return statemachine.PowerShutdown
	case s.Is(xenapi.VMPowerStatePaused):
		return statemachine.PowerPaused
	case s.Is(xenapi.VMPowerStateSuspended):
		return statemachine.PowerSuspended
	case s.Is("Crashed"):
		return statemachine.PowerCrashed
	}
	return statemachine.PowerNoState
}

// PowerOff stops the instance's VM on req.Host: a clean shutdown first
// when req.Clean, hard after req.Timeout (the configured shutdown timeout
// when zero). A VM already halted is left alone, so a repeated call finds
// the job done.
func (d *Driver) PowerOff(ctx context.Context, req compute.PowerOffRequest) error {
	t, vm, err := d.lookup(ctx, req.Host, req.Instance)
	if err != nil {
		return err
	}
	timeout := req.Timeout
	if timeout <= 0 {
		timeout = d.cfg.Migrate.ShutdownTimeout
	}
	if err := powerOff(ctx, t.Client, vm.Ref, req.Clean, timeout); err != nil {
		return withHost(t, err)
	}
	return nil
}

// PowerOn starts the instance's VM on req.Host's XenServer host; a VM
// already running is left alone.
func (d *Driver) PowerOn(ctx context.Context, req compute.InstanceRequest) error {
	t, vm, err := d.lookup(ctx, req.Host, req.Instance)
	if err != nil {
		return err
	}
	if err := startOn(ctx, t.Client, vm.Ref, t.Host); err != nil {
		return withHost(t, err)
	}
	return nil
}

// discardHandler is a slog.Handler that drops everything.
type discardHandler struct{}

func (discardHandler) Enabled(context.Context, slog.Level) bool  { return false }
func (discardHandler) Handle(context.Context, slog.Record) error { return nil }
func (h discardHandler) WithAttrs([]slog.Attr) slog.Handler      { return h }
func (h discardHandler) WithGroup(string) slog.Handler           { return h }
