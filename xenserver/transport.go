package xenserver

import (
	"context"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/dom0"
	"github.com/xenflow/xenflow/xenapi"
)

// Transport moves the data of one VM's disks from a source compute host to
// a destination compute host. The driver picks it by the source host's
// HostEntry.Transport ("xapi" unless it says "dom0").
//
// A move of one disk goes Begin, then Send one or more times, then Finish
// (or Abort):
//
//   - Begin prepares the destination and refuses, before any byte moves,
//     what cannot work (a disk too large for the format, too little free
//     space), with a typed error.
//   - Send(vdi, base) sends the content of vdi, a VDI of the source pool:
//     all of it when base is null, else only what differs from base (an
//     earlier snapshot of the same disk, already sent). The driver calls it
//     first with a snapshot of the running guest's disk, then with later
//     snapshots against the one before (pre-copy rounds), and last with the
//     halted guest's own VDI against the last snapshot.
//   - Finish makes the destination disk whole, checks it, tags it
//     (other_config xenflow_migration, xenflow_userdevice, xenflow_role
//     "copy", xenflow_complete "true") and describes it.
//   - Abort removes what the move made on the destination; it never
//     touches the source.
//
// The driver queues Send calls per host (TransferConfig.MaxPerHost) around
// the transport, so a transport need not limit concurrency itself;
// DiskMoveRequest.Limiter caps bandwidth. Discard removes what earlier,
// interrupted moves of a migration left on a destination, so that a
// repeated MigrateDiskAndPowerOff starts clean.
type Transport interface {
	// Name returns the transport's name, as DiskInfo.Transport records it.
	Name() string
	// Begin prepares moving one disk.
	Begin(ctx context.Context, req DiskMoveRequest) (DiskMove, error)
	// Discard removes every incomplete destination disk the migration's
	// earlier moves left on dest.
	Discard(ctx context.Context, dest Endpoint, migrationUUID string) error
}

// DiskMove is one disk's move in progress.
type DiskMove interface {
	// Send sends vdi whole (base null) or what differs from base, and
	// returns the bytes sent.
	Send(ctx context.Context, vdi, base xenapi.VDIRef) (int64, error)
	// Finish completes, checks and tags the destination disk.
	Finish(ctx context.Context) (compute.Disk, error)
	// Abort removes what the move made on the destination.
	Abort(ctx context.Context) error
}

// Endpoint is one side of a move: a compute host resolved against its
// pool.
type Endpoint struct {
	// ComputeHost is the compute host's name.
	ComputeHost string
	// Pool names the host's pool in the inventory.
	Pool   string
	Client *xenapi.Client
	Host   xenapi.HostRef
	// SR holds the instance disks.
	SR xenapi.SRRef
	// Dom0 is the host's control domain, nil when the inventory gives
	// none.
	Dom0 dom0.Host
}

// DiskMoveRequest describes the disk a move carries.
type DiskMoveRequest struct {
	Source, Dest  Endpoint
	InstanceUUID  string
	MigrationUUID string
	// VDI and Record are the source VM's own disk.
	VDI    xenapi.VDIRef
	Record xenapi.VDIRecord
	// Userdevice is the disk's position on the guest ("0" is root);
	// Label its chain label ("<instance uuid>" for root,
	// "<instance uuid>_ephemeral_<n>" for others).
	Userdevice string
	Label      string
	// Limiter, when not nil, caps the bytes per second sent.
	Limiter *RateLimiter
	// Progress, when not nil, is called with the bytes sent so far by the
	// Send in progress.
	Progress func(sent int64)
}

// endpoint turns a resolved target into an Endpoint.
func (t *target) endpoint() Endpoint {
	return Endpoint{ComputeHost: t.Name, Pool: t.Pool, Client: t.Client, Host: t.Host, SR: t.SR, Dom0: t.Entry.Dom0}
}
