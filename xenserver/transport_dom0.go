package xenserver

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/dom0"
	"github.com/xenflow/xenflow/vhd"
	"github.com/xenflow/xenflow/xenapi"
)

// NoDom0Error is a dom0 move between hosts whose control domains the
// inventory does not give.
type NoDom0Error struct {
	ComputeHost string
}

func (e *NoDom0Error) Error() string {
	return fmt.Sprintf("xenserver: compute host %q: the dom0 transport needs HostEntry.Dom0", e.ComputeHost)
}

// Dom0Transport moves VHD chains between control domains, Nova's layout
// for file-based SRs (nova/virt/xenapi/vm_utils.py, migrate_vhd; the
// "migration" plugin's transfer_vhd and move_vhds_into_sr), with the dom0
// package's chain move: the chain hard-linked into a staging directory on
// the source, copied through the controller with every segment verified
// (resumable), then assembled on the destination with vhd.Import, keeping
// the chain structure (leaf and parents). Both hosts need
// HostEntry.Dom0, and their SRs must be file-based (ext, NFS).
//
// The first Send of a snapshot sends its parents, which are immutable
// (sequence 1..n, as Nova's _migrate_disk_resizing_up does); each later
// snapshot adds the parents that appeared since; the last Send, of the
// halted guest's own VDI, sends its leaf and the parents still missing,
// renaming what is already staged so the sequence stays leaf 0, base last.
// Finish imports the chain, scans the SR and tags the leaf VDI.
type Dom0Transport struct {
	// Options tunes the chain move (transfer, Direct, staging root); nil
	// means the dom0 package's defaults.
	Options *dom0.ChainOptions
}

// NewDom0Transport returns the dom0 transport, for Config.Transports
// under TransportDom0.
func NewDom0Transport(opts *dom0.ChainOptions) *Dom0Transport { return &Dom0Transport{Options: opts} }

// Name returns "dom0".
func (*Dom0Transport) Name() string { return TransportDom0 }

// Begin checks both hosts' dom0 and the destination's free space, and
// removes a destination staging directory an earlier attempt left.
func (x *Dom0Transport) Begin(ctx context.Context, req DiskMoveRequest) (DiskMove, error) {
	for _, ep := range []Endpoint{req.Source, req.Dest} {
		if ep.Dom0 == nil {
			return nil, &NoDom0Error{ComputeHost: ep.ComputeHost}
		}
	}
	if err := checkFree(ctx, req.Dest, req.Record.UUID, req.Record.VirtualSize); err != nil {
		return nil, err
	}
	m := &dom0Move{x: x, req: req}
	var err error
	if m.send, err = x.sendRequest(ctx, req); err != nil {
		return nil, err
	}
	if err := dom0.CleanupChain(ctx, req.Source.Dom0, req.Dest.Dom0, m.send, x.Options); err != nil {
		return nil, fmt.Errorf("xenserver: clear the staging of %s: %w", m.send.Label, err)
	}
	return m, nil
}

// sendRequest names the chain in transit: the label, both SRs.
func (x *Dom0Transport) sendRequest(ctx context.Context, req DiskMoveRequest) (dom0.SendRequest, error) {
	inst, err := vhd.ParseUUID(req.InstanceUUID)
	if err != nil {
		return dom0.SendRequest{}, fmt.Errorf("xenserver: instance uuid %q: %w", req.InstanceUUID, err)
	}
	label := dom0.ChainLabel{Instance: inst}
	if req.Userdevice != deviceRoot {
		n, err := strconv.Atoi(req.Userdevice)
		if err != nil || n < 0 {
			return dom0.SendRequest{}, fmt.Errorf("xenserver: userdevice %q: not a number", req.Userdevice)
		}
		label.Ephemeral = n
	}
	src, err := srUUID(ctx, req.Source)
	if err != nil {
		return dom0.SendRequest{}, err
	}
	dst, err := srUUID(ctx, req.Dest)
	if err != nil {
		return dom0.SendRequest{}, err
	}
	return dom0.SendRequest{Label: label, SrcSR: src, DstSR: dst}, nil
}

func srUUID(ctx context.Context, ep Endpoint) (vhd.UUID, error) {
	s, err := ep.Client.SR.GetUUID(ctx, ep.SR)
	if err != nil {
		return vhd.UUID{}, fmt.Errorf("xenserver: uuid of SR %s on %q: %w", ep.SR, ep.ComputeHost, err)
	}
	u, err := vhd.ParseUUID(s)
	if err != nil {
		return vhd.UUID{}, fmt.Errorf("xenserver: SR uuid %q on %q: %w", s, ep.ComputeHost, err)
	}
	return u, nil
}

// Discard destroys the migration's incomplete copies on the destination.
func (x *Dom0Transport) Discard(ctx context.Context, dest Endpoint, migrationUUID string) error {
	return discardCopies(ctx, dest, migrationUUID, false)
}

// dom0Move is one chain's move.
type dom0Move struct {
	x    *Dom0Transport
	req  DiskMoveRequest
	send dom0.SendRequest
	// staged is how many parents are in the destination staging
	// directory, at sequence 1..staged.
	staged int
	// leafSent is set once sequence 0 (the guest's own leaf) is staged.
	leafSent bool
	// landed is the imported chain once it is in the destination SR.
	landed   vhd.ImportResult
	imported xenapi.VDIRef
}

// Send stages vdi's parents not yet staged, and its leaf when vdi is not
// a snapshot; base only says a delta is wanted and is implied by what is
// staged.
func (m *dom0Move) Send(ctx context.Context, vdi, _ xenapi.VDIRef) (int64, error) {
	c := m.req.Source.Client
	rec, err := c.VDI.GetRecord(ctx, vdi)
	if err != nil {
		return 0, fmt.Errorf("xenserver: VDI %s on %q: %w", vdi, m.req.Source.ComputeHost, err)
	}
	leaf, err := vhd.ParseUUID(rec.UUID)
	if err != nil {
		return 0, fmt.Errorf("xenserver: VDI uuid %q: %w", rec.UUID, err)
	}
	chain, err := m.chain(leaf)
	if err != nil {
		return 0, err
	}
	fresh := len(chain) - 1 - m.staged // parents not staged yet
	if fresh < 0 {
		return 0, fmt.Errorf("xenserver: VDI %s has %d parents, %d are staged already: not the same chain", rec.UUID, len(chain)-1, m.staged)
	}
	if err := m.shift(fresh); err != nil {
		return 0, err
	}
	var n int64
	if fresh > 0 {
		sent, err := m.sendPart(ctx, chain[1], 1, fresh)
		n += sent
		if err != nil {
			return n, err
		}
		m.staged += fresh
	}
	if !rec.IsASnapshot {
		sent, err := m.sendPart(ctx, chain[0], 0, 1)
		n += sent
		if err != nil {
			return n, err
		}
		m.leafSent = true
	}
	return n, nil
}

// sendPart stages depth disks of the chain from leaf down as sequence
// first.. on the destination.
func (m *dom0Move) sendPart(ctx context.Context, leaf vhd.UUID, first, depth int) (int64, error) {
	req := m.send
	req.Leaf, req.FirstSeq, req.Depth = leaf, first, depth
	results, err := dom0.SendChain(ctx, m.req.Source.Dom0, m.req.Dest.Dom0, req, m.x.Options)
	if err != nil {
		m.staged, m.leafSent = 0, false // SendChain removed the staging directory
		return 0, &TransferError{Step: "send", ComputeHost: m.req.Source.ComputeHost, VDI: leaf.String(), Err: err}
	}
	var n int64
	for _, r := range results {
		n += r.Size - r.Resumed
	}
	return n, nil
}

// chain lists the VDI uuids of a VDI's chain on the source host, leaf
// first, from the VHD files' names.
func (m *dom0Move) chain(leaf vhd.UUID) ([]vhd.UUID, error) {
	p, err := dom0.VDIPath(m.send.SrcSR, leaf)
	if err != nil {
		return nil, err
	}
	ch, err := vhd.OpenChain(m.req.Source.Dom0, p)
	if err != nil {
		return nil, fmt.Errorf("xenserver: chain of %s on %s: %w", p, m.req.Source.Dom0, err)
	}
	defer ch.Close()
	var out []vhd.UUID
	for _, d := range ch.Disks() {
		name := path.Base(d.Name())
		u, err := vhd.ParseUUID(strings.TrimSuffix(name, ".vhd"))
		if err != nil || !strings.HasSuffix(name, ".vhd") {
			return nil, fmt.Errorf("xenserver: chain of %s on %s: %q is not a VDI file", p, m.req.Source.Dom0, name)
		}
		out = append(out, u)
	}
	return out, nil
}

// shift renames the staged parents n places up, from the base down, to
// make room for n newer parents at 1..n.
func (m *dom0Move) shift(n int) error {
	if n == 0 || m.staged == 0 {
		return nil
	}
	_, recv, err := dom0.StagingDirs(m.send, m.x.Options)
	if err != nil {
		return err
	}
	dst := m.req.Dest.Dom0
	for i := m.staged; i >= 1; i-- {
		from, to := recv+"/"+strconv.Itoa(i)+".vhd", recv+"/"+strconv.Itoa(i+n)+".vhd"
		if err := dst.Rename(from, to); err != nil {
			return fmt.Errorf("xenserver: restage %s as %s on %s: %w", from, to, dst, err)
		}
	}
	return nil
}

// Finish imports the staged chain into the destination SR, scans the SR
// so xapi knows the new VDIs, and tags the leaf.
func (m *dom0Move) Finish(ctx context.Context) (compute.Disk, error) {
	if !m.leafSent {
		return compute.Disk{}, fmt.Errorf("xenserver: dom0 move of VDI %s: the leaf was never sent", m.req.Record.UUID)
	}
	res, err := m.importChain(ctx)
	if err != nil {
		return compute.Disk{}, err
	}
	c := m.req.Dest.Client
	if err := c.SR.Scan(ctx, m.req.Dest.SR); err != nil {
		return compute.Disk{}, fmt.Errorf("xenserver: scan SR %s on %q: %w", m.req.Dest.SR, m.req.Dest.ComputeHost, err)
	}
	ref, err := c.VDI.GetByUUID(ctx, res.Leaf.String())
	if err != nil {
		return compute.Disk{}, fmt.Errorf("xenserver: imported VDI %s on %q: %w", res.Leaf, m.req.Dest.ComputeHost, err)
	}
	m.imported = ref
	err = updateVDIOtherConfig(ctx, c, ref, func(oc map[string]string) {
		oc[KeyMigration], oc[KeyUserdevice], oc[KeyRole], oc[KeyComplete] = m.req.MigrationUUID, m.req.Userdevice, RoleCopy, "true"
	})
	if err != nil {
		return compute.Disk{}, err
	}
	if err := c.VDI.SetNameLabel(ctx, ref, m.req.Record.NameLabel); err != nil {
		return compute.Disk{}, fmt.Errorf("xenserver: name VDI %s: %w", res.Leaf, err)
	}
	return compute.Disk{Label: m.req.Label, Userdevice: m.req.Userdevice, VDI: res.Leaf.String(),
		VirtualSize: m.req.Record.VirtualSize}, nil
}

// importChain imports the staged chain into the destination SR. The chain
// is in the SR when ImportChain gives its leaf, also when removing the
// staging directory afterwards failed: that directory is only retried
// here (CleanupMigration, and the next move's Begin, remove it too), and
// the copy goes on.
func (m *dom0Move) importChain(ctx context.Context) (vhd.ImportResult, error) {
	dst := m.req.Dest.Dom0
	res, err := dom0.ImportChain(ctx, dst, m.send.Label, m.send.DstSR, m.x.Options)
	if !res.Leaf.IsZero() {
		m.landed = res
	}
	if err != nil && res.Leaf.IsZero() {
		return res, &TransferError{Step: "import", ComputeHost: m.req.Dest.ComputeHost, VDI: m.req.Record.UUID, Err: err}
	}
	if err != nil {
		_, recv, serr := dom0.StagingDirs(m.send, m.x.Options)
		if serr == nil {
			_ = dst.RemoveAll(recv)
		}
	}
	return res, nil
}

// Abort removes both staging directories and the imported chain: the
// leaf's VDI when xapi knows it, else the leaf's file, and the parents'
// files, which are fresh copies nothing else uses.
func (m *dom0Move) Abort(ctx context.Context) error {
	err := dom0.CleanupChain(ctx, m.req.Source.Dom0, m.req.Dest.Dom0, m.send, m.x.Options)
	if m.landed.Leaf.IsZero() {
		return err
	}
	leaf, err2 := m.importedLeaf(ctx)
	err = errors.Join(err, err2)
	if leaf != "" {
		err = errors.Join(err, destroyVDI(ctx, m.req.Dest.Client, leaf))
	}
	dst := m.req.Dest.Dom0
	for i, f := range m.landed.Files {
		if i == 0 && leaf != "" {
			continue
		}
		if rerr := dst.Remove(f); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			err = errors.Join(err, fmt.Errorf("xenserver: remove the imported %s on %s: %w", f, dst, rerr))
		}
	}
	if err == nil {
		m.landed, m.imported = vhd.ImportResult{}, ""
	}
	return err
}

// importedLeaf is the imported leaf's VDI, "" when xapi does not know it
// (no SR scan since the import).
func (m *dom0Move) importedLeaf(ctx context.Context) (xenapi.VDIRef, error) {
	if m.imported != "" {
		return m.imported, nil
	}
	ref, err := m.req.Dest.Client.VDI.GetByUUID(ctx, m.landed.Leaf.String())
	switch {
	case err == nil:
		return ref, nil
	case xenapi.IsCode(err, xenapi.CodeUUIDInvalid):
		return "", nil
	}
	return "", fmt.Errorf("xenserver: imported VDI %s on %q: %w", m.landed.Leaf, m.req.Dest.ComputeHost, err)
}
