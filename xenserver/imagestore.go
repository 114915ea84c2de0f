package xenserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/vhd"
	"github.com/xenflow/xenflow/xenapi"
)

// More values of KeyRole.
const (
	// RoleImage is an image kept in a pool (tagged image-id as well).
	RoleImage = "image"
	// RoleImageSnapshot is the snapshot Snapshot exports; it is removed
	// once the image is stored.
	RoleImageSnapshot = "image-snapshot"
	// RoleSpawnRoot is the root disk Spawn cloned from an image, until its
	// VM exists.
	RoleSpawnRoot = "spawn-root"
	// RoleSpawnEphemeral is a blank ephemeral disk Spawn made, until it
	// is attached to the VM.
	RoleSpawnEphemeral = "spawn-ephemeral"
)

// KeySpawnOf holds the instance uuid on the disks Spawn made for it.
const KeySpawnOf = "xenflow_spawn_of"

// ImageStore keeps images as VHD streams: a dynamic VHD of a whole disk,
// as GET /export_raw_vdi?format=vhd gives it and PUT
// /import_raw_vdi?format=vhd takes it.
type ImageStore interface {
	// Put stores the stream (length bytes) as image id. When it fails,
	// no image id is stored.
	Put(ctx context.Context, id string, stream io.Reader, length int64) error
	// Open returns image id's stream and its length; a missing image is
	// an *ImageNotFoundError.
	Open(ctx context.Context, id string) (io.ReadCloser, int64, error)
	// Has reports whether image id is stored.
	Has(ctx context.Context, id string) (bool, error)
}

// BadImageIDError is an image id a store cannot name a file or tag by.
type BadImageIDError struct {
	ID string
}

func (e *BadImageIDError) Error() string {
	return fmt.Sprintf("xenserver: bad image id %q: want letters, digits, '-', '_' and '.', not starting with '.'", e.ID)
}

// checkImageID allows ids that are safe as file names and in other_config.
func checkImageID(id string) error {
	if id == "" || len(id) > 255 || id[0] == '.' {
		return &BadImageIDError{ID: id}
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("-_.", c)) {
			return &BadImageIDError{ID: id}
		}
	}
	return nil
}

// DirImageStore keeps images as <Dir>/<id>.vhd files, each written as
// <id>.vhd.part and renamed once whole and synced.
type DirImageStore struct {
	Dir string
}

func (s DirImageStore) path(id string) (string, error) {
	if err := checkImageID(id); err != nil {
		return "", err
	}
	return filepath.Join(s.Dir, id+".vhd"), nil
}

// Put writes the stream into <id>.vhd.
func (s DirImageStore) Put(ctx context.Context, id string, stream io.Reader, length int64) error {
	p, err := s.path(id)
	if err != nil {
		return err
	}
	part := p + ".part"
	f, err := os.OpenFile(part, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("xenserver: image store: %w", err)
	}
	n, err := io.Copy(f, ctxReader{ctx: ctx, r: io.LimitReader(stream, length)})
	if err == nil && n != length {
		err = &ShortBodyError{Want: length, Got: n}
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(part, p)
	}
	if err != nil {
		_ = os.Remove(part)
		return fmt.Errorf("xenserver: image store: put %s: %w", id, err)
	}
	return nil
}

// Open opens <id>.vhd.
func (s DirImageStore) Open(_ context.Context, id string) (io.ReadCloser, int64, error) {
	p, err := s.path(id)
	if err != nil {
		return nil, 0, err
	}
	f, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, 0, &ImageNotFoundError{ComputeHost: "(image store " + s.Dir + ")", ImageRef: id}
	}
	if err != nil {
		return nil, 0, fmt.Errorf("xenserver: image store: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("xenserver: image store: %w", err)
	}
	return f, st.Size(), nil
}

// Has reports whether <id>.vhd exists.
func (s DirImageStore) Has(_ context.Context, id string) (bool, error) {
	p, err := s.path(id)
	if err != nil {
		return false, err
	}
	_, err = os.Stat(p)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// ctxReader stops a copy when its context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}

// PoolImageStore keeps images as VDIs of the inventory's pools, tagged
// other_config image-id as Nova's image cache tags them
// (nova/virt/xenapi/vm_utils.py, _create_cached_image): Put imports into
// the SR of compute host Host; Open exports from whichever pool has the
// image.
type PoolImageStore struct {
	d    *Driver
	host string
}

// PoolImages returns the store that keeps images in the pools, putting
// new ones on compute host host's SR.
func (d *Driver) PoolImages(host string) *PoolImageStore { return &PoolImageStore{d: d, host: host} }

// Put imports the stream into a new VDI on the host's SR, tagged
// complete once the import is whole; an incomplete one is replaced.
func (s *PoolImageStore) Put(ctx context.Context, id string, stream io.Reader, length int64) error {
	if err := checkImageID(id); err != nil {
		return err
	}
	t, err := s.d.pool(ctx, s.host)
	if err != nil {
		return err
	}
	_, err = importImage(ctx, t, id, stream, length)
	return err
}

// Open exports the first complete image VDI found in the inventory's
// pools (in the order of their names).
func (s *PoolImageStore) Open(ctx context.Context, id string) (io.ReadCloser, int64, error) {
	t, img, err := s.find(ctx, id)
	if err != nil {
		return nil, 0, err
	}
	return exportVHD(ctx, t, img.Ref)
}

// Has reports whether a pool has a complete image VDI.
func (s *PoolImageStore) Has(ctx context.Context, id string) (bool, error) {
	_, _, err := s.find(ctx, id)
	if errors.Is(err, compute.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// find looks for the image in each pool, through one of its compute
// hosts.
func (s *PoolImageStore) find(ctx context.Context, id string) (*target, vdiEntry, error) {
	seen := map[string]bool{}
	for _, host := range sortedKeys(s.d.cfg.Inventory.Hosts) {
		pool := s.d.cfg.Inventory.Hosts[host].Pool
		if seen[pool] {
			continue
		}
		seen[pool] = true
		t, err := s.d.pool(ctx, host)
		if err != nil {
			return nil, vdiEntry{}, err
		}
		img, err := findImageVDI(ctx, t, id)
		if err == nil && imageComplete(img) {
			return t, img, nil
		}
		if err != nil && !errors.Is(err, compute.ErrNotFound) {
			return nil, vdiEntry{}, err
		}
	}
	return nil, vdiEntry{}, &ImageNotFoundError{ComputeHost: "(every pool)", ImageRef: id}
}

// imageComplete reports whether an image VDI is whole: one the driver
// imported carries xenflow_complete; one it did not make is taken as it is.
func imageComplete(v vdiEntry) bool {
	return v.Rec.OtherConfig[KeyRole] != RoleImage || v.Rec.OtherConfig[KeyComplete] == "true"
}

// exportVHD opens GET /export_raw_vdi?format=vhd of a VDI and returns the
// stream and its length (read from the stream's BAT: xapi sends no
// Content-Length).
func exportVHD(ctx context.Context, t *target, vdi xenapi.VDIRef) (io.ReadCloser, int64, error) {
	resp, err := t.Client.DoHTTP(ctx, xenapi.HTTPRequest{Method: http.MethodGet, Path: "/export_raw_vdi",
		Query: url.Values{"vdi": {string(vdi)}, "format": {"vhd"}}})
	if err != nil {
		return nil, 0, &TransferError{Step: "export", ComputeHost: t.Name, VDI: string(vdi), Err: err}
	}
	head, length, err := streamHead(resp.Body)
	if err != nil {
		resp.Body.Close()
		return nil, 0, &TransferError{Step: "export", ComputeHost: t.Name, VDI: string(vdi), Err: err}
	}
	body := io.MultiReader(bytes.NewReader(head), io.LimitReader(resp.Body, length-int64(len(head))))
	return readCloser{Reader: body, Closer: resp.Body}, length, nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

// importImage puts a VHD stream into a new VDI of the target's SR, tagged
// image-id and role image, complete once whole; the image's earlier
// incomplete VDIs on the SR are destroyed first.
func importImage(ctx context.Context, t *target, id string, stream io.Reader, length int64) (vdiEntry, error) {
	c := t.Client
	if err := destroyIncompleteImages(ctx, t, id); err != nil {
		return vdiEntry{}, err
	}
	head, size, err := vhdStreamSize(stream)
	if err != nil {
		return vdiEntry{}, &TransferError{Step: "import", ComputeHost: t.Name, VDI: id, Err: err}
	}
	if err := checkFree(ctx, t.endpoint(), "image "+id, size); err != nil {
		return vdiEntry{}, err
	}
	ref, err := c.VDI.Create(ctx, xenapi.VDIRecord{NameLabel: "image " + id, SR: t.SR, VirtualSize: size,
		Type: xenapi.VDITypeUser, OtherConfig: map[string]string{KeyImageID: id, KeyRole: RoleImage}})
	if err != nil {
		return vdiEntry{}, withHost(t, fmt.Errorf("create the VDI of image %s: %w", id, err))
	}
	body := io.MultiReader(bytes.NewReader(head), stream)
	err = putVHD(ctx, c, ref, io.LimitReader(body, length), length, nil)
	if err == nil {
		err = updateVDIOtherConfig(ctx, c, ref, func(oc map[string]string) { oc[KeyComplete] = "true" })
	}
	if err != nil {
		return vdiEntry{}, errors.Join(&TransferError{Step: "import", ComputeHost: t.Name, VDI: string(ref), Err: err},
			destroyVDI(context.WithoutCancel(ctx), c, ref))
	}
	rec, err := c.VDI.GetRecord(ctx, ref)
	if err != nil {
		return vdiEntry{}, withHost(t, fmt.Errorf("image VDI %s: %w", ref, err))
	}
	return vdiEntry{Ref: ref, Rec: rec}, nil
}

// vhdStreamSize reads a VHD stream's footer and returns it with the
// disk's virtual size.
func vhdStreamSize(r io.Reader) ([]byte, int64, error) {
	head := make([]byte, vhd.FooterSize)
	if _, err := io.ReadFull(r, head); err != nil {
		return nil, 0, fmt.Errorf("xenserver: VHD stream footer: %w", err)
	}
	var f vhd.Footer
	if err := f.UnmarshalBinary(head); err != nil {
		return nil, 0, &StreamError{Field: "footer", Reason: err.Error()}
	}
	return head, int64(f.CurrentSize), nil
}

// destroyIncompleteImages destroys the image's VDIs on the target's SR
// that an interrupted import left.
func destroyIncompleteImages(ctx context.Context, t *target, id string) error {
	recs, err := t.Client.VDI.GetAllRecordsWhere(ctx, fmt.Sprintf(`field "SR"="%s"`, t.SR))
	if err != nil {
		return withHost(t, fmt.Errorf("list VDIs: %w", err))
	}
	var errs []error
	for ref, rec := range recs {
		oc := rec.OtherConfig
		if oc[KeyImageID] == id && oc[KeyRole] == RoleImage && oc[KeyComplete] != "true" && len(rec.VBDs) == 0 {
			errs = append(errs, destroyVDI(ctx, t.Client, ref))
		}
	}
	return withHostIf(t, errors.Join(errs...))
}

// Snapshot stores the instance's root disk as image req.ImageID in the
// pools (PoolImages of req.Host): see SnapshotTo.
func (d *Driver) Snapshot(ctx context.Context, req compute.SnapshotRequest) error {
	return d.SnapshotTo(ctx, req, d.PoolImages(req.Host))
}

// SnapshotTo stores the instance's root disk in store as image
// req.ImageID (nova/virt/xenapi/vmops.py, snapshot): a VDI.snapshot of the
// root (the guest keeps running), exported as a VHD stream into the store,
// then the snapshot destroyed. An image already stored is left as it is,
// so a repeated call finds the job done; snapshots an interrupted call
// left are destroyed first.
func (d *Driver) SnapshotTo(ctx context.Context, req compute.SnapshotRequest, store ImageStore) error {
	if err := checkImageID(req.ImageID); err != nil {
		return err
	}
	t, vm, err := d.guest(ctx, "Snapshot", req.Host, req.Instance)
	if err != nil {
		return err
	}
	if err := destroyImageSnapshots(ctx, t, req.ImageID); err != nil {
		return err
	}
	if ok, err := store.Has(ctx, req.ImageID); err != nil || ok {
		return err
	}
	disks, err := vmDisks(ctx, t.Client, vm)
	if err != nil {
		return withHost(t, err)
	}
	root, ok := diskAt(disks, deviceRoot)
	if !ok {
		return &NoDiskError{ComputeHost: t.Name, VDI: vm.Rec.UUID, Reason: "the VM has no root disk (userdevice 0)"}
	}
	snap, err := snapshotTagged(ctx, t.Client, root.VDI, imageOwner(req.ImageID), func(oc map[string]string) {
		oc[KeyRole], oc[KeyImageID] = RoleImageSnapshot, req.ImageID
	})
	if err != nil {
		return withHost(t, err)
	}
	err = storeExport(ctx, t, snap, req.ImageID, store)
	return errors.Join(err, destroyVDI(context.WithoutCancel(ctx), t.Client, snap))
}

// storeExport exports a VDI into the store.
func storeExport(ctx context.Context, t *target, vdi xenapi.VDIRef, id string, store ImageStore) error {
	stream, length, err := exportVHD(ctx, t, vdi)
	if err != nil {
		return err
	}
	defer stream.Close()
	return store.Put(ctx, id, stream, length)
}

// destroyImageSnapshots destroys the snapshots interrupted Snapshot calls
// of an image left in the pool.
func destroyImageSnapshots(ctx context.Context, t *target, id string) error {
	return withHostIf(t, discardSnapshots(ctx, t.Client, imageOwner(id), func(oc map[string]string) bool {
		return oc[KeyRole] == RoleImageSnapshot && oc[KeyImageID] == id
	}))
}

// imageOwner names image id's snapshot in KeySnapshotFor.
func imageOwner(id string) string { return "image:" + id }

// Spawn creates the instance's VM on req.Host from image req.ImageRef
// kept in the pools: see SpawnFrom.
func (d *Driver) Spawn(ctx context.Context, req compute.SpawnRequest) error {
	return d.SpawnFrom(ctx, req, d.PoolImages(req.Host))
}

// SpawnFrom creates the instance's VM on req.Host (nova/virt/xenapi/vmops.py,
// spawn): the image is taken from req.Host's SR when it is cached there
// (other_config image-id), else imported from store into that SR; the
// root disk is a copy-on-write clone of it (VDI.clone, as Nova clones its
// cached image) grown to the flavor's root_gb; the VM is created with the
// flavor, tagged nova_uuid, and started when req.PowerOn. A repeated call
// finds the VM (and the root disk it made) and finishes what is missing.
func (d *Driver) SpawnFrom(ctx context.Context, req compute.SpawnRequest, store ImageStore) error {
	switch {
	case req.Instance == nil:
		return &RequestError{Method: "Spawn", Field: "Instance"}
	case req.Flavor == nil:
		return &RequestError{Method: "Spawn", Field: "Flavor"}
	}
	if err := checkImageID(req.ImageRef); err != nil {
		return err
	}
	t, err := d.pool(ctx, req.Host)
	if err != nil {
		return err
	}
	vm, found, err := spawnedVM(ctx, t, req.Instance.UUID)
	if err != nil {
		return err
	}
	if !found {
		root, err := spawnRoot(ctx, t, req, store)
		if err != nil {
			return err
		}
		if vm, err = createSpawnVM(ctx, t, req, root); err != nil {
			return err
		}
	}
	if err := attachSpawnRoot(ctx, t, req.Instance.UUID, vm); err != nil {
		return err
	}
	if err := attachSpawnEphemeral(ctx, t, req, vm); err != nil {
		return err
	}
	if req.PowerOn {
		return withHostIf(t, startOn(ctx, t.Client, vm.Ref, t.Host))
	}
	return nil
}

// spawnedVM finds the VM claiming the instance in the host's pool.
func spawnedVM(ctx context.Context, t *target, instance string) (vmEntry, bool, error) {
	vm, err := findVM(ctx, t.Client, instance)
	if errors.Is(err, compute.ErrNotFound) {
		return vmEntry{}, false, nil
	}
	if err != nil {
		return vmEntry{}, false, withHost(t, err)
	}
	if !onHost(vm.Rec, t) {
		return vmEntry{}, false, withHost(t, fmt.Errorf("instance %s already has VM %s elsewhere in the pool",
			instance, vm.Rec.UUID))
	}
	return vm, true, nil
}

// spawnRoot returns the instance's root disk: one an earlier call cloned
// and tagged, else a new clone of the cached image, grown to root_gb.
func spawnRoot(ctx context.Context, t *target, req compute.SpawnRequest, store ImageStore) (xenapi.VDIRef, error) {
	c := t.Client
	if v, ok, err := spawnRootOf(ctx, t, req.Instance.UUID); err != nil || ok {
		return v.Ref, err
	}
	img, err := cachedImage(ctx, t, req.ImageRef, store)
	if err != nil {
		return "", err
	}
	clone, err := orphanClone(ctx, c, img)
	if err != nil {
		return "", withHost(t, err)
	}
	if clone == "" {
		if clone, err = c.VDI.Clone(ctx, img.Ref, map[string]string{}); err != nil {
			return "", withHost(t, fmt.Errorf("clone image VDI %s: %w", img.Rec.UUID, err))
		}
	}
	err = updateVDIOtherConfig(ctx, c, clone, func(oc map[string]string) {
		for _, k := range []string{KeyImageID, KeyComplete} {
			delete(oc, k)
		}
		oc[KeyRole], oc[KeySpawnOf] = RoleSpawnRoot, req.Instance.UUID
	})
	if err != nil {
		return "", withHost(t, err)
	}
	want := int64(req.Flavor.RootGB) << 30
	if size, err := c.VDI.GetVirtualSize(ctx, clone); err != nil {
		return "", withHost(t, fmt.Errorf("size of VDI %s: %w", clone, err))
	} else if want > size {
		if err := c.VDI.Resize(ctx, clone, want); err != nil {
			return "", withHost(t, fmt.Errorf("grow VDI %s to %d bytes: %w", clone, want, err))
		}
	}
	return clone, nil
}

// spawnRootOf finds the root disk Spawn made for the instance.
func spawnRootOf(ctx context.Context, t *target, instance string) (vdiEntry, bool, error) {
	recs, err := t.Client.VDI.GetAllRecordsWhere(ctx, fmt.Sprintf(`field "SR"="%s"`, t.SR))
	if err != nil {
		return vdiEntry{}, false, withHost(t, fmt.Errorf("list VDIs: %w", err))
	}
	for ref, rec := range recs {
		if rec.OtherConfig[KeySpawnOf] == instance && rec.OtherConfig[KeyRole] == RoleSpawnRoot {
			return vdiEntry{Ref: ref, Rec: rec}, true, nil
		}
	}
	return vdiEntry{}, false, nil
}

// cachedImage returns the image's complete VDI on the host's SR, importing
// it from the store when the SR has none.
func cachedImage(ctx context.Context, t *target, id string, store ImageStore) (vdiEntry, error) {
	img, err := findImageVDI(ctx, t, id)
	if err == nil && img.Rec.SR == t.SR && imageComplete(img) {
		return img, nil
	}
	if err != nil && !errors.Is(err, compute.ErrNotFound) {
		return vdiEntry{}, err
	}
	stream, length, err := store.Open(ctx, id)
	if err != nil {
		return vdiEntry{}, err
	}
	defer stream.Close()
	return importImage(ctx, t, id, stream, length)
}

// createSpawnVM creates the instance's VM with the flavor (memory static
// and dynamic at the flavor's size, vCPUs), PV-bootable through pygrub as
// Nova's default for images without a disk format hint was, tagged
// nova_uuid.
func createSpawnVM(ctx context.Context, t *target, req compute.SpawnRequest, root xenapi.VDIRef) (vmEntry, error) {
	mem := int64(req.Flavor.MemoryMB) << 20
	vcpus := int64(max(req.Flavor.VCPUs, 1))
	name := req.Instance.Name
	if name == "" {
		name = "instance-" + req.Instance.UUID
	}
	hostname := req.Instance.Hostname
	if hostname == "" {
		hostname = name
	}
	rec := xenapi.VMRecord{
		NameLabel: name, UserVersion: 1, Affinity: t.Host,
		MemoryStaticMin: 0, MemoryDynamicMin: mem, MemoryDynamicMax: mem, MemoryStaticMax: mem, MemoryTarget: mem,
		VCPUsMax: vcpus, VCPUsAtStartup: vcpus, PVBootloader: "pygrub",
		ActionsAfterShutdown: "destroy", ActionsAfterReboot: "restart", ActionsAfterCrash: "destroy",
		XenstoreData: map[string]string{xenstoreHostname: hostname},
		OtherConfig:  map[string]string{KeyNovaUUID: req.Instance.UUID},
	}
	ref, err := t.Client.VM.Create(ctx, rec)
	if err != nil {
		return vmEntry{}, withHost(t, fmt.Errorf("create the VM of instance %s: %w", req.Instance.UUID, err))
	}
	return vmEntry{Ref: ref, Rec: rec}, nil
}

// attachSpawnRoot attaches the root disk Spawn made at userdevice 0 unless
// the VM has one, then drops the disk's spawn tags.
func attachSpawnRoot(ctx context.Context, t *target, instance string, vm vmEntry) error {
	c := t.Client
	vbds, err := c.VM.GetVBDs(ctx, vm.Ref)
	if err != nil {
		return withHost(t, fmt.Errorf("VBDs of VM %s: %w", vm.Ref, err))
	}
	root, ok, err := spawnRootOf(ctx, t, instance)
	if err != nil || !ok {
		return err
	}
	if len(vbds) == 0 {
		_, err := c.VBD.Create(ctx, xenapi.VBDRecord{VM: vm.Ref, VDI: root.Ref, Userdevice: deviceRoot, Bootable: true,
			Mode: xenapi.VBDModeRW, Type: xenapi.VBDTypeDisk, Unpluggable: true})
		if err != nil {
			return withHost(t, fmt.Errorf("attach VDI %s to VM %s: %w", root.Rec.UUID, vm.Ref, err))
		}
	}
	return withHostIf(t, updateVDIOtherConfig(ctx, c, root.Ref, func(oc map[string]string) {
		delete(oc, KeyRole)
		delete(oc, KeySpawnOf)
	}))
}
