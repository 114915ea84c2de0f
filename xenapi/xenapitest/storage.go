package xenapitest

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strconv"
	"strings"
)

// diskInfo is what the SR code learns about one VHD file.
type diskInfo struct {
	virtualSize  int64
	physicalSize int64
	hidden       bool
	parent       string // parent file name in the same directory, "" for none
	depth        int    // disks in the chain from this one to the base
}

// maxChainDepth is the longest VHD chain blktap opens (and SM lets
// snapshots build): 30.
const maxChainDepth = 30

// diskStore is what the SR code needs from the VHD package: files named
// <uuid>.vhd in one directory.
type diskStore interface {
	// create makes a dynamic VHD of the given virtual size.
	create(name string, size int64) error
	// snapshot makes child, a differencing VHD whose parent is parent.
	snapshot(child, parent string) error
	// setHidden sets blktap's hidden flag.
	setHidden(name string, hidden bool) error
	// query describes a file.
	query(name string) (diskInfo, error)
	// resize grows a file's virtual size.
	resize(name string, size int64) error
	// writeAt writes into one file (the leaf of its chain).
	writeAt(name string, p []byte, off int64) error
	// readAt reads the virtual disk through the file's chain.
	readAt(name string, p []byte, off int64) error
	// rename moves a file within the directory.
	rename(from, to string) error
	// remove deletes a file.
	remove(name string) error
	// exists reports whether a file exists.
	exists(name string) bool
	// list returns the names of the *.vhd files.
	list() ([]string, error)
	// chainFiles returns the files of a chain, leaf first.
	chainFiles(name string) ([]string, error)
	// blocks reports which 2 MiB blocks one file (not its parents) holds.
	blocks(name string) (map[uint32]bool, error)
	// openChain opens a chain for reading, or for writing at its leaf.
	openChain(name string, writable bool) (diskChain, error)
	// identity returns what a differencing stream over name records of it.
	identity(name string) (*streamParent, error)
}

// diskChain is an open chain: reads through it, writes at its leaf.
type diskChain interface {
	vhdWriter
	io.Closer
}

// srState is an SR's storage: its directory and the host that can see it
// (for a shared SR, every host does; host is the master).
type srState struct {
	ref    string
	dir    string
	host   *Host
	shared bool
	disks  diskStore
}

const vhdRounding = 2 << 20 // SM rounds VHD virtual sizes up to 2 MiB

func roundVHDSize(n int64) int64 {
	if n <= 0 {
		return 0
	}
	return (n + vhdRounding - 1) / vhdRounding * vhdRounding
}

func vdiFile(vdi *object) string { return vdi.str("location") + ".vhd" }

// backendFailure is an SM error as xapi forwards it: SR_BACKEND_FAILURE_<n>
// with ["", reason, stderr].
func backendFailure(n int, reason, stderr string) *Failure {
	return fail(ErrSRBackendFailure+"_"+strconv.Itoa(n), "", reason, stderr)
}

// storageError turns a VHD or file error into an SM-style failure.
func storageError(op string, err error) *Failure {
	if errors.Is(err, fs.ErrNotExist) {
		return backendFailure(46, "The VDI is not available", fmt.Sprintf("%s: %v", op, err))
	}
	return fail(ErrSRBackendFailure, "1", "", fmt.Sprintf("%s: %v", op, err))
}

func (p *Pool) srOf(vdi *object) (*srState, *object, error) {
	srObj, err := p.get(classSR, vdi.str("SR"))
	if err != nil {
		return nil, nil, err
	}
	st := p.srs[srObj.ref]
	if st == nil {
		return nil, nil, fail(ErrInternalError, "SR has no storage: "+srObj.ref)
	}
	return st, srObj, nil
}

// refreshSR recomputes an SR's virtual_allocation and physical_utilisation.
func (p *Pool) refreshSR(srObj *object) {
	var virt, phys int64
	for _, ref := range srObj.set("VDIs") {
		if v, ok := p.objs[ref]; ok {
			virt += v.int("virtual_size")
			phys += v.int("physical_utilisation")
		}
	}
	srObj.f["virtual_allocation"] = virt
	srObj.f["physical_utilisation"] = phys
	p.touch(srObj)
}

// newVDIObject records a VDI for a file that exists. The caller holds p.mu.
func (p *Pool) newVDIObject(srObj *object, uuid string, info diskInfo, fields map[string]any) *object {
	f := map[string]any{
		"uuid":                 uuid,
		"location":             uuid,
		"SR":                   srObj.ref,
		"virtual_size":         info.virtualSize,
		"physical_utilisation": info.physicalSize,
		"type":                 "user",
		"managed":              true,
		"on_boot":              "persist",
		"allowed_operations":   []string{"clone", "copy", "resize", "destroy", "snapshot", "forget"},
		"sm_config":            map[string]string{},
	}
	if info.parent != "" {
		f["sm_config"] = map[string]string{"vhd-parent": strings.TrimSuffix(info.parent, ".vhd")}
	}
	if info.hidden {
		f["name_label"] = "base copy"
		f["managed"] = false
		f["read_only"] = true
	}
	for k, v := range fields {
		f[k] = v
	}
	o := p.newObject(classVDI, f)
	srObj.addToSet("VDIs", o.ref)
	return o
}

// updateVDIFromDisk refreshes the fields a VDI takes from its file.
func (p *Pool) updateVDIFromDisk(vdi *object, info diskInfo) {
	vdi.f["virtual_size"] = info.virtualSize
	vdi.f["physical_utilisation"] = info.physicalSize
	sm := vdi.mapv("sm_config")
	if info.parent != "" {
		sm["vhd-parent"] = strings.TrimSuffix(info.parent, ".vhd")
	} else {
		delete(sm, "vhd-parent")
	}
	if info.hidden && vdi.bool("managed") {
		vdi.f["managed"] = false
		vdi.f["read_only"] = true
	}
	p.touch(vdi)
}

// attached reports whether any VBD of the VDI is currently attached.
func (p *Pool) attached(vdi *object) bool {
	for _, ref := range vdi.set("VBDs") {
		if vbd, ok := p.objs[ref]; ok && vbd.bool("currently_attached") {
			return true
		}
	}
	return false
}

// hasChildren reports whether another file of the SR names the VDI's
// file as its parent.
func (p *Pool) hasChildren(srObj *object, vdi *object) bool {
	for _, ref := range srObj.set("VDIs") {
		if o, ok := p.objs[ref]; ok && o != vdi && o.mapv("sm_config")["vhd-parent"] == vdi.str("location") {
			return true
		}
	}
	return false
}

// createVDI makes a VDI of size bytes (rounded up to 2 MiB) on an SR, with
// fields from a create record. The caller holds p.mu.
func (p *Pool) createVDI(srObj *object, size int64, f map[string]any) (*object, error) {
	st := p.srs[srObj.ref]
	rounded := roundVHDSize(size)
	if rounded <= 0 {
		return nil, fail(ErrInvalidValue, "virtual_size", strconv.FormatInt(size, 10))
	}
	if err := p.checkSRSpace(srObj, rounded); err != nil {
		return nil, err
	}
	uuid := p.newUUID()
	if err := st.disks.create(uuid+".vhd", rounded); err != nil {
		return nil, storageError("create", err)
	}
	info, err := st.disks.query(uuid + ".vhd")
	if err != nil {
		return nil, storageError("query", err)
	}
	sm := map[string]string{}
	if m, ok := f["sm_config"].(map[string]string); ok {
		sm = m
	}
	f["sm_config"] = sm
	vdi := p.newVDIObject(srObj, uuid, info, f)
	p.refreshSR(srObj)
	return vdi, nil
}

func (p *Pool) checkSRSpace(srObj *object, grow int64) error {
	size := srObj.int("physical_size")
	if grow > size-srObj.int("physical_utilisation") {
		return fail(ErrSRFull, strconv.FormatInt(grow, 10), strconv.FormatInt(size, 10))
	}
	return nil
}

func (t methodTable) addStorage() {
	t.sessionCall("VDI.create", true, func(c *call, a *args) (any, error) {
		f, err := createFromRecord(classVDI, a.record(0))
		if err != nil {
			return nil, err
		}
		srObj, err := c.p.get(classSR, f["SR"].(string))
		if err != nil {
			return nil, err
		}
		size := f["virtual_size"].(int64)
		delete(f, "virtual_size")
		vdi, err := c.p.createVDI(srObj, size, f)
		if err != nil {
			return nil, err
		}
		return vdi.ref, nil
	}, "args")
	t.sessionCall("VDI.snapshot", true, func(c *call, a *args) (any, error) {
		return c.p.snapshotVDI(a.str(0), true)
	}, "vdi", "driver_params").withDefaults(1)
	t.sessionCall("VDI.clone", true, func(c *call, a *args) (any, error) {
		return c.p.snapshotVDI(a.str(0), false)
	}, "vdi", "driver_params").withDefaults(1)
	t.sessionCall("VDI.resize", true, func(c *call, a *args) (any, error) {
		return nil, c.p.resizeVDI(a.str(0), a.int(1), false)
	}, "vdi", "size")
	resizeOnline := t.sessionCall("VDI.resize_online", true, func(c *call, a *args) (any, error) {
		return nil, c.p.resizeVDI(a.str(0), a.int(1), true)
	}, "vdi", "size")
	resizeOnline.removed = true // cleared by NewPool when Options.ResizeOnline
	t.sessionCall("VDI.destroy", true, func(c *call, a *args) (any, error) {
		return nil, c.p.destroyVDI(a.str(0))
	}, "self")
	t.sessionCall("VDI.forget", true, func(c *call, a *args) (any, error) {
		vdi, err := c.p.get(classVDI, a.str(0))
		if err != nil {
			return nil, err
		}
		c.p.forgetVDI(vdi)
		return nil, nil
	}, "vdi")
	t.sessionCall("VDI.copy", true, func(c *call, a *args) (any, error) {
		// base_vdi only lets xapi copy less; a full copy is always made.
		into := ""
		if a.present(3) {
			into = a.str(3)
		}
		return c.p.copyVDI(a.str(0), a.str(1), into)
	}, "vdi", "sr", "base_vdi", "into_vdi").withDefaults(2)
	t.sessionCall("SR.scan", true, func(c *call, a *args) (any, error) {
		return nil, c.p.scanSR(a.str(0))
	}, "sr")
	t.sessionCall("SR.update", true, func(c *call, a *args) (any, error) {
		return nil, c.p.scanSR(a.str(0))
	}, "sr")
}

// snapshotVDI makes a VHD snapshot the way a file-based SR does: the
// VDI's file becomes a hidden, read-only base copy with a new uuid, the VDI
// keeps its uuid on a new empty leaf over it, and the snapshot is a second
// leaf over the same base copy.
func (p *Pool) snapshotVDI(ref string, isSnapshot bool) (string, error) {
	vdi, err := p.get(classVDI, ref)
	if err != nil {
		return "", err
	}
	if !vdi.bool("managed") {
		return "", fail(ErrVDINotManaged, ref)
	}
	st, srObj, err := p.srOf(vdi)
	if err != nil {
		return "", err
	}
	leaf := vdiFile(vdi)
	if info, err := st.disks.query(leaf); err != nil {
		return "", storageError("snapshot", err)
	} else if info.depth >= maxChainDepth {
		return "", backendFailure(109, "The snapshot chain is too long", "")
	}
	baseUUID := p.newUUID()
	snapUUID := p.newUUID()
	base := baseUUID + ".vhd"
	if err := st.disks.rename(leaf, base); err != nil {
		return "", storageError("snapshot", err)
	}
	undo := func() { _ = st.disks.rename(base, leaf) }
	if err := st.disks.setHidden(base, true); err != nil {
		undo()
		return "", storageError("snapshot", err)
	}
	if err := st.disks.snapshot(leaf, base); err != nil {
		_ = st.disks.setHidden(base, false)
		undo()
		return "", storageError("snapshot", err)
	}
	if err := st.disks.snapshot(snapUUID+".vhd", base); err != nil {
		_ = st.disks.remove(leaf)
		_ = st.disks.setHidden(base, false)
		undo()
		return "", storageError("snapshot", err)
	}
	baseInfo, err := st.disks.query(base)
	if err != nil {
		return "", storageError("snapshot", err)
	}
	p.newVDIObject(srObj, baseUUID, baseInfo, map[string]any{
		"type":             vdi.str("type"),
		"name_description": "",
	})
	leafInfo, err := st.disks.query(leaf)
	if err != nil {
		return "", storageError("snapshot", err)
	}
	p.updateVDIFromDisk(vdi, leafInfo)
	snapInfo, err := st.disks.query(snapUUID + ".vhd")
	if err != nil {
		return "", storageError("snapshot", err)
	}
	fields := copiedVDIFields(vdi)
	fields["tags"] = copyValue(vdi.f["tags"])
	fields["on_boot"] = vdi.str("on_boot")
	if isSnapshot {
		fields["is_a_snapshot"] = true
		fields["snapshot_of"] = vdi.ref
		fields["snapshot_time"] = p.now()
	}
	snap := p.newVDIObject(srObj, snapUUID, snapInfo, fields)
	if isSnapshot {
		vdi.addToSet("snapshots", snap.ref)
		p.touch(vdi)
	}
	p.refreshSR(srObj)
	return snap.ref, nil
}

func (p *Pool) resizeVDI(ref string, size int64, online bool) error {
	vdi, err := p.get(classVDI, ref)
	if err != nil {
		return err
	}
	if !vdi.bool("managed") {
		return fail(ErrVDINotManaged, ref)
	}
	if !online && p.attached(vdi) {
		return fail(ErrVDIInUse, ref, "resize")
	}
	st, srObj, err := p.srOf(vdi)
	if err != nil {
		return err
	}
	cur := vdi.int("virtual_size")
	size = roundVHDSize(size)
	if size < cur {
		return backendFailure(79, "VDI Invalid size [opterr=shrinking not allowed]", "")
	}
	if size == cur {
		return nil
	}
	if err := p.checkSRSpace(srObj, size-cur); err != nil {
		return err
	}
	if err := st.disks.resize(vdiFile(vdi), size); err != nil {
		return storageError("resize", err)
	}
	info, err := st.disks.query(vdiFile(vdi))
	if err != nil {
		return storageError("resize", err)
	}
	p.updateVDIFromDisk(vdi, info)
	p.refreshSR(srObj)
	return nil
}

func (p *Pool) destroyVDI(ref string) error {
	vdi, err := p.get(classVDI, ref)
	if err != nil {
		return err
	}
	if p.attached(vdi) {
		return fail(ErrVDIInUse, ref, "destroy")
	}
	st, srObj, err := p.srOf(vdi)
	if err != nil {
		return err
	}
	if p.hasChildren(srObj, vdi) {
		// Other files depend on this one: like SM, keep the data as a
		// hidden base copy instead of deleting it.
		if err := st.disks.setHidden(vdiFile(vdi), true); err != nil {
			return storageError("destroy", err)
		}
		p.destroyVBDsOf(vdi)
		vdi.f["managed"] = false
		vdi.f["read_only"] = true
		vdi.f["name_label"] = "base copy"
		p.touch(vdi)
		return nil
	}
	if err := st.disks.remove(vdiFile(vdi)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return storageError("destroy", err)
	}
	p.forgetVDI(vdi)
	p.refreshSR(srObj)
	return nil
}

// destroyVBDsOf removes the VBDs that refer to a VDI.
func (p *Pool) destroyVBDsOf(vdi *object) {
	for _, ref := range vdi.set("VBDs") {
		if vbd, ok := p.objs[ref]; ok {
			p.removeVBD(vbd)
		}
	}
}

// forgetVDI removes a VDI's record (not its file), and the records that
// point at it.
func (p *Pool) forgetVDI(vdi *object) {
	p.destroyVBDsOf(vdi)
	if srObj, ok := p.objs[vdi.str("SR")]; ok {
		srObj.removeFromSet("VDIs", vdi.ref)
		p.touch(srObj)
	}
	if of, ok := p.objs[vdi.str("snapshot_of")]; ok {
		of.removeFromSet("snapshots", vdi.ref)
		p.touch(of)
	}
	p.deleteObject(vdi)
}

// copyVDI copies a VDI's whole content into a new VDI of sr, or into an
// existing VDI into.
func (p *Pool) copyVDI(ref, srRef, into string) (string, error) {
	vdi, err := p.get(classVDI, ref)
	if err != nil {
		return "", err
	}
	src, _, err := p.srOf(vdi)
	if err != nil {
		return "", err
	}
	dstSR, err := p.get(classSR, srRef)
	if err != nil {
		return "", err
	}
	dst := p.srs[dstSR.ref]
	size := vdi.int("virtual_size")
	var target *object
	if into != "" && into != nullRef {
		if target, err = p.get(classVDI, into); err != nil {
			return "", err
		}
		if target.int("virtual_size") < size {
			return "", backendFailure(79, "VDI Invalid size [opterr=destination VDI is smaller than the source]", "")
		}
		if dst, dstSR, err = p.srOf(target); err != nil {
			return "", err
		}
	} else {
		if err := p.checkSRSpace(dstSR, size); err != nil {
			return "", err
		}
		uuid := p.newUUID()
		if err := dst.disks.create(uuid+".vhd", size); err != nil {
			return "", storageError("copy", err)
		}
		info, err := dst.disks.query(uuid + ".vhd")
		if err != nil {
			return "", storageError("copy", err)
		}
		target = p.newVDIObject(dstSR, uuid, info, copiedVDIFields(vdi))
	}
	buf := make([]byte, 2<<20)
	zero := make([]byte, len(buf))
	for off := int64(0); off < size; off += int64(len(buf)) {
		n := int64(len(buf))
		if size-off < n {
			n = size - off
		}
		chunk := buf[:n]
		if err := src.disks.readAt(vdiFile(vdi), chunk, off); err != nil {
			return "", storageError("copy", err)
		}
		if string(chunk) == string(zero[:n]) {
			continue // leave unallocated: reads as zeros
		}
		if err := dst.disks.writeAt(vdiFile(target), chunk, off); err != nil {
			return "", storageError("copy", err)
		}
	}
	info, err := dst.disks.query(vdiFile(target))
	if err != nil {
		return "", storageError("copy", err)
	}
	p.updateVDIFromDisk(target, info)
	p.refreshSR(dstSR)
	return target.ref, nil
}

// scanSR makes the SR's VDIs match its files: unknown files become VDIs
// (hidden ones as unmanaged base copies), VDIs whose file is gone are
// forgotten, and sizes and parents are refreshed.
func (p *Pool) scanSR(ref string) error {
	srObj, err := p.get(classSR, ref)
	if err != nil {
		return err
	}
	st := p.srs[srObj.ref]
	names, err := st.disks.list()
	if err != nil {
		return backendFailure(40, "The SR scan failed", err.Error())
	}
	onDisk := map[string]bool{}
	for _, n := range names {
		onDisk[n] = true
	}
	known := map[string]*object{}
	for _, r := range srObj.set("VDIs") {
		if v, ok := p.objs[r]; ok {
			known[vdiFile(v)] = v
		}
	}
	for name, v := range known {
		if !onDisk[name] {
			p.forgetVDI(v)
		}
	}
	for _, name := range names {
		uuid := strings.TrimSuffix(name, ".vhd")
		if !looksLikeUUID(uuid) {
			continue
		}
		info, err := st.disks.query(name)
		if err != nil {
			p.log.Debug("scan skips an unreadable VHD", "sr", srObj.str("uuid"), "file", name, "err", err)
			continue
		}
		if v, ok := known[name]; ok {
			p.updateVDIFromDisk(v, info)
			continue
		}
		if _, taken := p.byUUID[classVDI.name+"/"+uuid]; taken {
			continue
		}
		p.newVDIObject(srObj, uuid, info, nil)
	}
	p.refreshSR(srObj)
	return nil
}

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

// CollectGarbage does the part of SM's storage garbage collector that
// deletes orphans: hidden base copies (unmanaged VDIs) that no other file
// of their SR names as its parent any more are removed, file and record,
// repeatedly, so a chain whose leaves are all gone disappears. It does not
// coalesce chains. It returns how many VDIs it removed. Real SRs do this
// some time after a VDI.destroy; tests call it when they want that state.
func (p *Pool) CollectGarbage() (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	removed := 0
	for {
		n := 0
		for _, st := range p.srs {
			srObj, ok := p.objs[st.ref]
			if !ok {
				continue
			}
			for _, ref := range srObj.set("VDIs") {
				vdi, ok := p.objs[ref]
				if !ok || vdi.bool("managed") || len(vdi.set("VBDs")) > 0 || p.hasChildren(srObj, vdi) {
					continue
				}
				info, err := st.disks.query(vdiFile(vdi))
				if err != nil || !info.hidden {
					continue
				}
				if err := st.disks.remove(vdiFile(vdi)); err != nil {
					return removed, storageError("garbage collection", err)
				}
				p.forgetVDI(vdi)
				n++
			}
			if n > 0 {
				p.refreshSR(srObj)
			}
		}
		removed += n
		if n == 0 {
			return removed, nil
		}
	}
}

// copiedVDIFields returns the fields a VDI made from vdi (by VDI.copy, clone
// or snapshot) takes from it.
func copiedVDIFields(vdi *object) map[string]any {
	return map[string]any{
		"name_label":       vdi.str("name_label"),
		"name_description": vdi.str("name_description"),
		"type":             vdi.str("type"),
		"sharable":         vdi.bool("sharable"),
		"read_only":        vdi.bool("read_only"),
		"other_config":     copyValue(vdi.f["other_config"]),
		"xenstore_data":    copyValue(vdi.f["xenstore_data"]),
	}
}
