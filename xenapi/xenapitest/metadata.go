package xenapitest

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/xenflow/xenflow/xenapi/internal/xmlrpc"
)

// Paths of xapi's VM metadata handlers (Constants.export_metadata_uri,
// import_metadata_uri), served by every host's Handler:
//
//	GET /export_metadata?session_id=S&uuid=U|ref=R[&export_snapshots=false][&include_vhd_parents=true][&excluded_device_types=VIF,VBD][&task_id=T]
//	PUT /import_metadata?session_id=S[&restore=true][&force=true][&dry_run=true][&live=true][&vdi:<exported VDI uuid>=<VDI uuid here>…][&task_id=T]
//
// As in xapi (export.ml, metadata_handler; import.ml, metadata_handler),
// an export is a tar holding only ova.xml: an XML-RPC struct of the
// exporting xapi's version and the objects (the VM, its VBDs, VDIs, SRs,
// VIFs, networks, snapshots, suspend image and hosts) with refs rewritten
// to "Ref:0", "Ref:1", …. An import finds the SRs, hosts, networks and
// VDIs it names (a VDI by the vdi: map, else on its SR by location, else
// by other_config maps_to; it never makes one), makes the VMs, VBDs and
// VIFs with the pool's own create messages, and leaves a VM exported
// Suspended suspended on the suspend image found for it, ready for
// VM.resume_on. It answers 200 with the task-id header once
// authenticated; the task holds the outcome: the VMs made (a VM ref set)
// or the error, after which whatever the import made is destroyed again
// (unless force, as in xapi). Both take session_id from the query or a
// cookie, or HTTP basic auth (401 without), go in the call log as
// ExportMetadataAction and ImportMetadataAction, and take faults: a
// failure injected into an import strikes after its objects are made,
// so that the cleanup runs.
const (
	ExportMetadataPath = "/export_metadata"
	ImportMetadataPath = "/import_metadata"
)

// Names of the metadata handlers in the call log and for Fault.Method:
// xapi's HTTP action names (Datamodel.http_actions).
const (
	ExportMetadataAction = "get_export_metadata"
	ImportMetadataAction = "put_import_metadata"
)

// Error codes of the metadata handlers.
const (
	ErrImportErrorUnexpectedFile        = "IMPORT_ERROR_UNEXPECTED_FILE"
	ErrImportErrorFailedToFindObject    = "IMPORT_ERROR_FAILED_TO_FIND_OBJECT"
	ErrImportErrorAttachedDisksNotFound = "IMPORT_ERROR_ATTACHED_DISKS_NOT_FOUND"
	ErrImportIncompatibleVersion        = "IMPORT_INCOMPATIBLE_VERSION"
	ErrVDILocationMissing               = "VDI_LOCATION_MISSING"
	ErrVDIContentIDMissing              = "VDI_CONTENT_ID_MISSING"
	ErrVMToImportIsNotNewerVersion      = "VM_TO_IMPORT_IS_NOT_NEWER_VERSION"
)

const (
	ovaXMLName = "ova.xml" // Xapi_globs.ova_xml_filename
	exportVsn  = 2         // Xapi_globs.export_vsn
	// maxOVAXML bounds the ova.xml an import reads: the metadata of a VM
	// with its snapshots is tens of KiB.
	maxOVAXML = 4 << 20
	// maxImportDrain bounds what an import reads of the body after
	// ova.xml (the tar's end); the rest is left unread.
	maxImportDrain = 64 << 10
	// mapsToKey is Constants.storage_migrate_vdi_map_key (and _vif_).
	mapsToKey = "maps_to"
)

// --- GET /export_metadata ---

// exportFlags are the query flags of export.ml's metadata_handler.
type exportFlags struct {
	snapshots  bool // export_snapshots: the VM's snapshots and snapshot fields
	vhdParents bool // include_vhd_parents: the VDIs' vhd-parent chains
	skipVIFs   bool // excluded_device_types has VIF
	skipVBDs   bool // excluded_device_types has VBD
}

// serveExportMetadata answers GET /export_metadata as export.ml's
// metadata_handler does: credentials (401), a task, the VM (ref= or
// uuid=; an unknown one is HTTP 500 and a failed task), then 200 with a
// tar holding ova.xml and nothing else.
func (h *Host) serveExportMetadata(w http.ResponseWriter, r *http.Request) {
	op := &httpOp{h: h, w: w, r: r, q: r.URL.Query(), wire: ExportMetadataAction,
		realm: "VM.export_metadata", label: "VM.export_metadata"}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, op.realm+" needs GET", http.StatusMethodNotAllowed)
		return
	}
	args := "uuid=" + strconv.Quote(op.q.Get("uuid"))
	if ref, ok := op.q["ref"]; ok {
		args = "ref=" + strconv.Quote(ref[0])
	}
	seq, nth := h.p.logHTTP(h, op.wire, args)
	h.p.logResult(seq, op.withTask(func() error { return op.exportMetadata(nth) }))
}

// withTask runs fn as Xapi_http.with_context does: after the credentials
// (401 without them) and with the handler's task, which fn ends.
func (op *httpOp) withTask(fn func() error) error {
	if err := op.authenticate(); err != nil {
		return err
	}
	if op.tempSession {
		defer op.h.p.dropSession(op.session)
	}
	if err := op.startTask(); err != nil {
		op.fail(err)
		return err
	}
	return fn()
}

func (op *httpOp) exportMetadata(nth int) error {
	body, err := op.buildExport(nth)
	if err != nil {
		err = op.endTask(nil, err)
		op.w.Header().Set("Connection", "close")
		internalHTML(op.w, http.StatusInternalServerError, serverErrorText(err))
		return err
	}
	op.endTask(nil, nil)
	hd := op.w.Header()
	hd.Set("task-id", op.task.ref)
	hd.Set("Content-Type", "application/octet-stream")
	hd.Set("Content-Length", strconv.Itoa(len(body)))
	hd.Set("Content-Disposition", `attachment; filename="export.xva"`)
	op.w.WriteHeader(http.StatusOK)
	_, _ = op.w.Write(body)
	return nil
}

// endTask ends the handler's task: success with res (nil: no result),
// cancelled, or failed with err. It returns the error as the task reports it.
func (op *httpOp) endTask(res any, err error) error {
	p := op.h.p
	switch {
	case err == nil && res == nil:
		// No result at all: xapi leaves task.result "".
		p.finishTask(op.task, "", nil, "success")
		p.mu.Lock()
		if t, ok := p.objs[op.task.ref]; ok {
			t.f["result"] = ""
		}
		p.mu.Unlock()
	case err == nil:
		p.finishTask(op.task, res, nil, "success")
	case errors.Is(err, errTaskCancelled):
		err = fail(ErrTaskCancelled, op.task.ref)
		p.finishTask(op.task, nil, err, "cancelled")
	default:
		p.finishTask(op.task, nil, err, "failure")
	}
	return err
}

// buildExport runs the injected faults, reads the flags, finds the VM and
// returns the tar.
func (op *httpOp) buildExport(nth int) ([]byte, error) {
	if _, err := op.injected(nth); err != nil {
		return nil, err
	}
	flags, err := exportFlagsOf(op)
	if err != nil {
		return nil, err
	}
	p := op.h.p
	p.mu.Lock()
	defer p.mu.Unlock()
	vm, err := p.exportedVM(op)
	if err != nil {
		return nil, err
	}
	xml, err := p.metadataXML(vm, flags)
	if err != nil {
		return nil, err
	}
	return ovaTar(xml, p.now())
}

// exportFlagsOf reads export.ml's flags: bool_from_request (OCaml's
// bool_of_string: "true" or "false") and devicetypelist_from_request.
func exportFlagsOf(op *httpOp) (exportFlags, error) {
	f := exportFlags{snapshots: true}
	for _, b := range []struct {
		name string
		to   *bool
	}{{"export_snapshots", &f.snapshots}, {"include_vhd_parents", &f.vhdParents}} {
		v, ok := op.q[b.name]
		if !ok {
			continue
		}
		switch v[0] {
		case "true":
			*b.to = true
		case "false":
			*b.to = false
		default:
			return f, fail(ErrInternalError, fmt.Sprintf(`Invalid_argument("bool_of_string") in %s=%q`, b.name, v[0]))
		}
	}
	ex := op.q.Get("excluded_device_types")
	if ex == "" {
		return f, nil
	}
	for _, d := range strings.Split(ex, ",") {
		switch strings.ToLower(d) {
		case "vif":
			f.skipVIFs = true
		case "vbd":
			f.skipVBDs = true
		case "vgpu", "vtpm": // the pool has none
		default:
			return f, fail(ErrInternalError, fmt.Sprintf("Devicetype.of_string: Type '%s' not one of [vif; vbd; vgpu; vtpm]", strings.ToLower(d)))
		}
	}
	return f, nil
}

// exportedVM finds the VM as export.ml's vm_from_request does: ref=, else
// uuid=. The caller holds p.mu.
func (p *Pool) exportedVM(op *httpOp) (*object, error) {
	if v, ok := op.q["all"]; ok && v[0] == "true" {
		return nil, fail(ErrInternalError, "all=true (the metadata of every VM) is not simulated")
	}
	if ref, ok := op.q["ref"]; ok {
		return p.get(classVM, ref[0])
	}
	uuid, ok := op.q["uuid"]
	if !ok {
		return nil, fail(ErrInternalError, "Not_found: the request names neither ref nor uuid")
	}
	if o, ok := p.byUUID[classVM.name+"/"+uuid[0]]; ok {
		return o, nil
	}
	return nil, fail(ErrUUIDInvalid, classVM.name, uuid[0])
}

// exportTable maps the refs of the exported objects to their ids in the
// export, "Ref:0", "Ref:1", … in the order they were added (export.ml,
// update_table and make_id).
type exportTable map[string]string

// add gives a live object an id, once.
func (t exportTable) add(p *Pool, ref string) bool {
	if _, ok := t[ref]; ok {
		return false
	}
	if _, live := p.objs[ref]; !live {
		return false
	}
	t[ref] = "Ref:" + strconv.Itoa(len(t))
	return true
}

// lookup is export.ml's lookup: a ref's id, or OpaqueRef:NULL.
func (t exportTable) lookup(ref string) string {
	if id, ok := t[ref]; ok {
		return id
	}
	return nullRef
}

// addVM is export.ml's update_table for one VM: the VM, its VIFs and
// their networks, its VBDs and their VDIs (and SRs), its snapshots, its
// suspend image, its metrics and its hosts. The caller holds p.mu.
func (p *Pool) addVM(t exportTable, vm *object, f exportFlags, snapshots bool) {
	if !t.add(p, vm.ref) {
		return
	}
	if !f.skipVIFs {
		for _, ref := range vm.set("VIFs") {
			if t.add(p, ref) {
				t.add(p, p.objs[ref].str("network"))
			}
		}
	}
	if !f.skipVBDs {
		for _, ref := range vm.set("VBDs") {
			if t.add(p, ref) && !p.objs[ref].bool("empty") {
				p.addVDI(t, p.objs[ref].str("VDI"), f)
			}
		}
	}
	if snapshots {
		for _, ref := range vm.set("snapshots") {
			if snap, ok := p.objs[ref]; ok {
				p.addVM(t, snap, f, false)
			}
		}
	}
	if vm.str("power_state") == "Suspended" {
		p.addVDI(t, vm.str("suspend_VDI"), f)
	}
	for _, name := range []string{"metrics", "guest_metrics", "resident_on", "affinity"} {
		t.add(p, vm.str(name))
	}
}

// addVDI adds a VDI and its SR and, with include_vhd_parents, its parents
// (sm_config vhd-parent). The caller holds p.mu.
func (p *Pool) addVDI(t exportTable, ref string, f exportFlags) {
	for t.add(p, ref) {
		vdi := p.objs[ref]
		t.add(p, vdi.str("SR"))
		parent := vdi.mapv("sm_config")["vhd-parent"]
		if !f.vhdParents || parent == "" {
			return
		}
		ref = ""
		if o, ok := p.byUUID[classVDI.name+"/"+parent]; ok {
			ref = o.ref
		}
	}
}

// metadataXML is export.ml's vm_metadata: the table, then every object in
// it as make_all orders them (hosts, VMs, VBDs, VIFs, networks, VDIs,
// SRs), as the XML-RPC value xapi writes to ova.xml. The caller holds
// p.mu.
func (p *Pool) metadataXML(vm *object, f exportFlags) ([]byte, error) {
	t := exportTable{}
	p.addVM(t, vm, f, f.snapshots)
	objects := []any{}
	for _, cls := range []*class{classHost, classVM, classVBD, classVIF, classNetwork, classVDI, classSR} {
		for _, o := range p.all(cls) {
			if id, ok := t[o.ref]; ok {
				objects = append(objects, map[string]any{"class": cls.name, "id": id, "snapshot": exportRecord(o, t, f.snapshots)})
			}
		}
	}
	s, err := xmlrpc.EncodeValueString(map[string]any{"version": p.exportVersion(), "objects": objects})
	if err != nil {
		return nil, fail(ErrInternalError, err.Error())
	}
	return []byte(s), nil
}

// exportRecord is make_vm, make_vbd, …: the object's record with every
// ref rewritten to its id (OpaqueRef:NULL, or dropped from a set, when it
// is not exported), and the fields xapi blanks blanked.
func exportRecord(o *object, t exportTable, snapshots bool) map[string]any {
	rec := o.record()
	for i := range o.cls.fields {
		fd := &o.cls.fields[i]
		switch fd.kind {
		case kString:
			if s := o.str(fd.name); refFields[fd.name] || strings.HasPrefix(s, "OpaqueRef:") {
				rec[fd.name] = t.lookup(s)
			}
		case kSet:
			out := []any{}
			for _, s := range o.set(fd.name) {
				if !strings.HasPrefix(s, "OpaqueRef:") {
					out = append(out, s)
				} else if id, ok := t[s]; ok {
					out = append(out, id)
				}
			}
			rec[fd.name] = out
		}
	}
	rec["current_operations"] = map[string]any{}
	rec["allowed_operations"] = []any{}
	for k, v := range exportBlanks(o.cls, snapshots) {
		rec[k] = v
	}
	return rec
}

// exportBlanks lists the fields make_vm, make_host, … set to empty values.
func exportBlanks(cls *class, snapshots bool) map[string]any {
	empty, none := []any{}, map[string]any{}
	switch cls {
	case classVM:
		m := map[string]any{"consoles": empty, "crash_dumps": empty, "blobs": none}
		if !snapshots {
			m["is_a_snapshot"], m["snapshot_of"], m["snapshots"] = false, nullRef, empty
			m["snapshot_time"], m["transportable_snapshot_id"], m["parent"] = neverTime, "", nullRef
		}
		return m
	case classVBD, classVIF:
		return map[string]any{"metrics": nullRef}
	case classVDI:
		return map[string]any{"crash_dumps": empty}
	case classSR:
		return map[string]any{"PBDs": empty}
	case classNetwork:
		return map[string]any{"PIFs": empty}
	case classHost:
		return map[string]any{"PIFs": empty, "PBDs": empty, "host_CPUs": empty, "license_params": none,
			"metrics": nullRef, "patches": empty, "crashdumps": empty, "logging": none,
			"supported_bootloaders": empty, "cpu_configuration": none, "other_config": none,
			"capabilities": empty, "software_version": none, "sched_policy": "", "tags": empty}
	}
	return nil
}

// exportVersion is importexport.ml's this_version, from the master's
// software_version. The caller holds p.mu.
func (p *Pool) exportVersion() map[string]any {
	sv := p.objs[p.hosts[0].ref].mapv("software_version")
	major, minor := xapiVersion(sv)
	return map[string]any{
		"hostname": sv["hostname"], "date": sv["date"], "product_version": sv["product_version"],
		"product_brand": sv["product_brand"], "build_number": sv["build_number"],
		"xapi_major": major, "xapi_minor": minor, "export_vsn": int64(exportVsn),
	}
}

// xapiVersion reads software_version's "xapi" ("1.249") as major, minor.
func xapiVersion(sv map[string]string) (int64, int64) {
	maj, min, _ := strings.Cut(sv["xapi"], ".")
	a, _ := strconv.ParseInt(maj, 10, 64)
	b, _ := strconv.ParseInt(min, 10, 64)
	return a, b
}

// ovaTar is export.ml's export_metadata body: one tar member, ova.xml,
// and the tar's end.
func ovaTar(xml []byte, now time.Time) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: ovaXMLName, Mode: 0o644, Size: int64(len(xml)), ModTime: now, Format: tar.FormatUSTAR}
	if err := tw.WriteHeader(hdr); err != nil {
		return nil, fail(ErrInternalError, err.Error())
	}
	if _, err := tw.Write(xml); err != nil {
		return nil, fail(ErrInternalError, err.Error())
	}
	if err := tw.Close(); err != nil {
		return nil, fail(ErrInternalError, err.Error())
	}
	return buf.Bytes(), nil
}

// --- PUT /import_metadata ---

// importConfig is import.ml's config for a Metadata_import: the query
// flags ("true" means true, find_query_flag) and the VDI map
// (read_map_params "vdi").
type importConfig struct {
	restore, force, dryRun, live, checkCPU bool
	vdiMap                                 map[string]string // exported VDI uuid -> uuid of a VDI here
}

func importConfigOf(op *httpOp) importConfig {
	flag := func(k string) bool { return op.q.Get(k) == "true" }
	c := importConfig{restore: flag("restore"), force: flag("force"), dryRun: flag("dry_run"),
		live: flag("live"), checkCPU: flag("check_cpu"), vdiMap: map[string]string{}}
	for k, v := range op.q {
		if from, ok := strings.CutPrefix(k, "vdi:"); ok && from != "" {
			c.vdiMap[from] = v[0]
		}
	}
	return c
}

func (c importConfig) String() string {
	return fmt.Sprintf("restore=%t, force=%t, dry_run=%t, live=%t, vdi_map={%d keys}", c.restore, c.force, c.dryRun, c.live, len(c.vdiMap))
}

// serveImportMetadata answers PUT /import_metadata as import.ml's
// metadata_handler does: credentials (401), a task, then 200 with the
// task-id header; the outcome (the VM refs made, or the error) is only in
// the task. xapi answers before it reads the body, the pool after.
func (h *Host) serveImportMetadata(w http.ResponseWriter, r *http.Request) {
	op := &httpOp{h: h, w: w, r: r, q: r.URL.Query(), wire: ImportMetadataAction,
		realm: "VM.metadata_import", label: "VM.metadata_import"}
	if r.Method != http.MethodPut {
		w.Header().Set("Allow", http.MethodPut)
		http.Error(w, op.realm+" needs PUT", http.StatusMethodNotAllowed)
		return
	}
	cfg := importConfigOf(op)
	seq, nth := h.p.logHTTP(h, op.wire, cfg.String())
	h.p.logResult(seq, op.withTask(func() error { return op.importMetadata(cfg, nth) }))
}

func (op *httpOp) importMetadata(cfg importConfig, nth int) error {
	p := op.h.p
	_ = http.NewResponseController(op.w).SetReadDeadline(time.Now().Add(p.opts.HTTPTimeouts.Body))
	refs, err := op.runImport(cfg, nth)
	err = op.endTask(refs, err)
	hd := op.w.Header()
	hd.Set("task-id", op.task.ref)
	hd.Set("Content-Type", "application/octet-stream")
	hd.Set("Content-Length", "0")
	op.w.WriteHeader(http.StatusOK)
	return err
}

// runImport reads ova.xml and imports it. An injected fault's delay comes
// first; its failure strikes once the objects are made, so that the
// import's cleanup runs.
func (op *httpOp) runImport(cfg importConfig, nth int) ([]any, error) {
	_, injected := op.injected(nth)
	if errors.Is(injected, errTaskCancelled) || (injected != nil && op.r.Context().Err() != nil) {
		return nil, injected
	}
	xml, err := readOVAXML(op.r.Body)
	if err != nil {
		return nil, err
	}
	hdr, err := parseMetadata(xml)
	if err != nil {
		return nil, err
	}
	p := op.h.p
	p.mu.Lock()
	defer p.mu.Unlock()
	st := &importState{p: p, cfg: cfg, task: op.task.ref, export: hdr.objects, table: map[string]string{}}
	return st.run(hdr, injected)
}

// readOVAXML is import.ml's with_open_archive: the first member of the
// tar (gzipped or not) must be ova.xml. What follows it is read up to
// maxImportDrain and dropped.
func readOVAXML(body io.Reader) ([]byte, error) {
	br := bufio.NewReader(body)
	var r io.Reader = br
	if magic, _ := br.Peek(2); bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return nil, fail(ErrInternalError, "the body is not a tar archive: gzip: "+err.Error())
		}
		r = gz
	}
	tr := tar.NewReader(r)
	hdr, err := tr.Next()
	if err != nil {
		return nil, fail(ErrInternalError, "the body is not a tar archive: "+err.Error())
	}
	if hdr.Name != ovaXMLName {
		return nil, fail(ErrImportErrorUnexpectedFile, ovaXMLName, hdr.Name)
	}
	if hdr.Size > maxOVAXML {
		return nil, fail(ErrInternalError, fmt.Sprintf("ova.xml of %d bytes is more than the %d bytes the pool reads", hdr.Size, maxOVAXML))
	}
	xml := make([]byte, hdr.Size)
	if n, err := io.ReadFull(tr, xml); err != nil {
		return nil, fail(ErrInternalError, fmt.Sprintf("ova.xml ends after %d of its %d bytes: %v", n, hdr.Size, err))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(r, maxImportDrain))
	return xml, nil
}

// metaObject is one object of an export: import.ml's obj.
type metaObject struct {
	cls, id string
	snap    map[string]any
}

// metaHeader is import.ml's header: the exporter's xapi version and the
// objects.
type metaHeader struct {
	major, minor int64
	objects      []*metaObject
}

// parseMetadata decodes ova.xml (header_of_rpc).
func parseMetadata(xml []byte) (*metaHeader, error) {
	bad := func(what string) error { return fail(ErrInternalError, "ova.xml: "+what) }
	v, err := (&xmlrpc.Decoder{MaxBodySize: maxOVAXML}).DecodeValueString(string(xml))
	if err != nil {
		return nil, bad(err.Error())
	}
	top, _ := v.(map[string]any)
	version, _ := top["version"].(map[string]any)
	objects, okObjects := top["objects"].([]any)
	if version == nil || !okObjects {
		return nil, bad("not a struct of version and objects")
	}
	h := &metaHeader{}
	var okMajor, okMinor bool
	h.major, okMajor = toInt(version["xapi_major"])
	h.minor, okMinor = toInt(version["xapi_minor"])
	if !okMajor || !okMinor || version["xapi_major"] == nil || version["xapi_minor"] == nil {
		return nil, bad("version has no xapi_major and xapi_minor")
	}
	for i, o := range objects {
		m, _ := o.(map[string]any)
		cls, _ := m["class"].(string)
		id, _ := m["id"].(string)
		snap, _ := m["snapshot"].(map[string]any)
		if cls == "" || id == "" || snap == nil {
			return nil, bad(fmt.Sprintf("object %d is not a struct of class, id and snapshot", i))
		}
		h.objects = append(h.objects, &metaObject{cls: cls, id: id, snap: snap})
	}
	return h, nil
}

// importState is import.ml's state: the export, the table of export id
// to ref here, the VMs made, and the cleanup stack.
type importState struct {
	p       *Pool
	cfg     importConfig
	task    string
	export  []*metaObject
	table   map[string]string
	created []string // the VMs made, in order
	cleanup []func() // undoes what the import made, run last first
}

// run is import.ml's metadata_handler after the archive is open:
// assert_compatible, handle_all, update_snapshot_and_parent_links and
// complete_import. On any failure, everything the import made is
// destroyed again (unless force, as xapi does). The caller holds p.mu.
func (st *importState) run(hdr *metaHeader, injected error) ([]any, error) {
	res, err := st.handleAll(hdr, injected)
	if err != nil && !st.cfg.force {
		for i := len(st.cleanup) - 1; i >= 0; i-- {
			st.cleanup[i]()
		}
	}
	return res, err
}

func (st *importState) handleAll(hdr *metaHeader, injected error) ([]any, error) {
	major, minor := xapiVersion(st.p.objs[st.p.hosts[0].ref].mapv("software_version"))
	if hdr.major > major || (hdr.major == major && hdr.minor > minor) {
		return nil, fail(ErrImportIncompatibleVersion)
	}
	handlers := []struct {
		cls    string
		handle func(*metaObject) error
	}{
		{"host", st.host}, {"SR", st.sr}, {"VDI", st.vdi}, {"VM", st.vm},
		{"network", st.network}, {"VBD", st.vbd}, {"VIF", st.vif},
	}
	for _, h := range handlers {
		for _, x := range hdr.objects {
			if x.cls != h.cls {
				continue
			}
			if err := h.handle(x); err != nil {
				return nil, err
			}
		}
	}
	if st.cfg.dryRun {
		return []any{}, injected
	}
	if err := st.linkSnapshots(); err != nil {
		return nil, err
	}
	if injected != nil {
		return nil, injected
	}
	return st.result(), nil
}

// result is complete_import's task result: the VMs made that are not
// snapshots, or all of them when only snapshots were imported.
func (st *importState) result() []any {
	all, vms := []any{}, []any{}
	for _, ref := range st.created {
		vm, live := st.p.objs[ref]
		if !live {
			continue // replaced by a later VM of the same uuid
		}
		all = append(all, ref)
		if !vm.bool("is_a_snapshot") {
			vms = append(vms, ref)
		}
	}
	if len(vms) == 0 {
		return all
	}
	return vms
}

// lookup is import.ml's lookup: the ref here of an export id.
func (st *importState) lookup(id string) (string, error) {
	if ref, ok := st.table[id]; ok {
		return ref, nil
	}
	return "", fail(ErrImportErrorFailedToFindObject, id)
}

// find is import.ml's find_in_export: an object's snapshot by id.
func (st *importState) find(id string) (map[string]any, error) {
	for _, x := range st.export {
		if x.id == id {
			return x.snap, nil
		}
	}
	return nil, fail(ErrImportErrorFailedToFindObject, id)
}

// dummy records an object a dry run would have made (Ref.make ()).
func (st *importState) dummy(id string) {
	st.table[id] = "OpaqueRef:" + st.p.newUUID()
}

// byUUID returns the object of class cls with the uuid an exported
// record names, or nil.
func (st *importState) byUUID(cls *class, snap map[string]any) *object {
	return st.p.byUUID[cls.name+"/"+wireString(snap["uuid"])]
}

func wireString(v any) string {
	s, _ := v.(string)
	return s
}

func wireBool(v any) bool {
	b, _ := toBool(v)
	return b
}

func wireMap(v any) map[string]string {
	m, ok := toMap(v)
	if !ok {
		return map[string]string{}
	}
	return m
}

// host is import.ml's Host handler: the host with the exported uuid, or
// NULL.
func (st *importState) host(x *metaObject) error {
	st.table[x.id] = nullRef
	if o := st.byUUID(classHost, x.snap); o != nil {
		st.table[x.id] = o.ref
	}
	return nil
}

// sr is import.ml's SR handler for a metadata import: the SR with the
// exported uuid; none is no error (its VDIs may still be found).
func (st *importState) sr(x *metaObject) error {
	if o := st.byUUID(classSR, x.snap); o != nil {
		st.table[x.id] = o.ref
	}
	return nil
}

// vdi is import.ml's VDI handler for a metadata import: a VDI is found,
// never made. One of an ISO SR not found is ejected; another not found
// fails the import unless force (or a live dry run) lets it be skipped.
func (st *importState) vdi(x *metaObject) error {
	srID := wireString(x.snap["SR"])
	srSnap, err := st.find(srID)
	if err != nil {
		return err
	}
	location := wireString(x.snap["location"])
	if wireString(srSnap["content_type"]) == "iso" {
		if ref := st.isoVDI(location); ref != "" {
			st.table[x.id] = ref
		}
		return nil
	}
	if ref := st.mappedVDI(x.snap, srID); ref != "" {
		st.table[x.id] = ref
		return nil
	}
	switch sr, srFound := st.table[srID]; {
	case st.cfg.force:
		return nil
	case st.cfg.dryRun && st.cfg.live:
		st.dummy(x.id) // a live migration's mirror will make it
		return nil
	case srFound:
		return fail(ErrVDILocationMissing, sr, location)
	default:
		return fail(ErrVDIContentIDMissing)
	}
}

// mappedVDI finds an exported VDI here (VDI.precheck): by the VDI map,
// else on its SR by location, else by other_config maps_to.
func (st *importState) mappedVDI(snap map[string]any, srID string) string {
	p := st.p
	if dest, ok := st.cfg.vdiMap[wireString(snap["uuid"])]; ok {
		if o, ok := p.byUUID[classVDI.name+"/"+dest]; ok {
			return o.ref
		}
	}
	if sr, ok := st.table[srID]; ok {
		location := wireString(snap["location"])
		for _, o := range p.all(classVDI) {
			if o.str("SR") == sr && o.str("location") == location {
				return o.ref
			}
		}
	}
	if to := wireMap(snap["other_config"])[mapsToKey]; to != "" {
		if o, ok := p.objs[to]; ok && o.cls == classVDI {
			return to
		}
	}
	return ""
}

// isoVDI finds a VDI of an ISO SR with this location.
func (st *importState) isoVDI(location string) string {
	for _, o := range st.p.all(classVDI) {
		sr, ok := st.p.objs[o.str("SR")]
		if ok && sr.str("content_type") == "iso" && sr.str("type") != "udev" && o.str("location") == location {
			return o.ref
		}
	}
	return ""
}

// network is import.ml's Net handler: the network with the exported
// name_label, else with its bridge, else a new one.
func (st *importState) network(x *metaObject) error {
	p := st.p
	label, bridge := wireString(x.snap["name_label"]), wireString(x.snap["bridge"])
	for _, match := range []func(*object) bool{
		func(o *object) bool { return o.str("name_label") == label },
		func(o *object) bool { return o.str("bridge") == bridge },
	} {
		for _, o := range p.all(classNetwork) {
			if match(o) {
				st.table[x.id] = o.ref
				return nil
			}
		}
	}
	if st.cfg.dryRun {
		st.dummy(x.id)
		return nil
	}
	rec := copyRecord(x.snap)
	oc := wireMap(rec["other_config"])
	oc["import_task"] = st.task
	rec["other_config"] = oc
	ref, err := st.create("network.create", rec)
	if err != nil {
		return err
	}
	st.table[x.id] = ref
	return nil
}

// create makes an object through the pool's own create message, so its
// checks apply, and pushes its removal on the cleanup stack.
func (st *importState) create(method string, rec map[string]any) (string, error) {
	p := st.p
	m := p.methods[method]
	a := &args{m: m, v: []any{rec}}
	res, err := m.fn(&call{p: p, ctx: context.Background(), host: p.hosts[0]}, a)
	if err == nil {
		err = a.err
	}
	if err != nil {
		return "", err
	}
	ref := res.(string)
	st.cleanup = append(st.cleanup, func() { p.removeImported(ref) })
	return ref, nil
}

// removeImported destroys an object an import made, leaving alone the
// VDIs it found (a VM's suspend image among them). The caller holds p.mu.
func (p *Pool) removeImported(ref string) {
	o, ok := p.objs[ref]
	if !ok {
		return
	}
	switch o.cls {
	case classVM:
		o.f["power_state"], o.f["suspend_VDI"] = "Halted", nullRef
		p.destroyVM(o)
	case classVBD:
		p.removeVBD(o)
	case classVIF:
		p.removeVIF(o)
	default:
		p.deleteObject(o)
	}
}

// setUUID gives an object the uuid it had in the export (a restore).
func (p *Pool) setUUID(o *object, uuid string) {
	delete(p.byUUID, o.cls.name+"/"+o.str("uuid"))
	o.f["uuid"] = uuid
	p.byUUID[o.cls.name+"/"+uuid] = o
	p.touch(o)
}

func copyRecord(snap map[string]any) map[string]any {
	rec := make(map[string]any, len(snap))
	for k, v := range snap {
		rec[k] = v
	}
	return rec
}

// vm is import.ml's VM handler. With restore, a VM of the exported uuid
// is replaced when it is halted and older (else VM_BAD_POWER_STATE, or
// VM_TO_IMPORT_IS_NOT_NEWER_VERSION; force skips a running one and
// replaces a newer one). As in xapi, a replaced VM stays destroyed if the
// import then fails.
func (st *importState) vm(x *metaObject) error {
	p := st.p
	rec := copyRecord(x.snap)
	if d := wireString(rec["domain_type"]); d == "" || d == "unspecified" {
		rec["domain_type"] = "pv"
		if wireString(rec["HVM_boot_policy"]) != "" {
			rec["domain_type"] = "hvm"
		}
	}
	var replace *object
	if old := st.byUUID(classVM, rec); st.cfg.restore && old != nil {
		if ps := old.str("power_state"); ps != "Halted" {
			if st.cfg.force {
				return nil
			}
			return fail(ErrVMBadPowerState, old.ref, "halted", strings.ToLower(ps))
		}
		version, _ := toInt(rec["version"])
		if old.int("version") >= version && !st.cfg.force {
			return fail(ErrVMToImportIsNotNewerVersion, old.ref, strconv.FormatInt(old.int("version"), 10), strconv.FormatInt(version, 10))
		}
		replace = old
	} else if !st.cfg.force {
		oc := wireMap(rec["other_config"])
		delete(oc, "default_template")
		rec["other_config"], rec["is_default_template"] = oc, false
	}
	if err := st.checkLive(rec); err != nil {
		return err
	}
	if st.cfg.dryRun {
		st.dummy(x.id)
		return nil
	}
	if replace != nil {
		p.destroyVM(replace)
	}
	return st.createVM(x.id, rec)
}

// checkLive is assert_can_live_import: a live import of a running VM
// needs its memory free on the master.
func (st *importState) checkLive(rec map[string]any) error {
	ps := wireString(rec["power_state"])
	if !st.cfg.live || (ps != "Running" && ps != "Paused") {
		return nil
	}
	need, _ := toInt(rec["memory_static_max"])
	if free := st.p.hostFreeMemory(st.p.objs[st.p.hosts[0].ref]); need > free {
		return fail(ErrHostNotEnoughFreeMemory, strconv.FormatInt(need, 10), strconv.FormatInt(free, 10))
	}
	return nil
}

// vmImportFields are the VM fields import.ml's do_import sets beside
// VM.create_from_record (the pool's VM.create takes only its constructor
// fields).
var vmImportFields = []string{"last_booted_record", "last_boot_CPU_flags", "is_control_domain",
	"is_a_snapshot", "snapshot_info", "snapshot_of", "snapshot_time", "transportable_snapshot_id",
	"parent", "bios_strings", "generation_id", "hardware_platform_version", "has_vendor_device",
	"NVRAM", "reference_label", "domarch"}

// createVM is do_import: the VM made Halted by the pool's VM.create,
// then given what VM.create does not take, and made Suspended on its
// suspend image when it was exported so.
func (st *importState) createVM(id string, rec map[string]any) error {
	p := st.p
	ref, err := st.create("VM.create", st.vmCreateRecord(rec))
	if err != nil {
		return err
	}
	vm := p.objs[ref]
	st.setVMFields(vm, rec)
	if wireString(rec["power_state"]) == "Suspended" {
		vdi, err := st.lookup(wireString(rec["suspend_VDI"]))
		if err != nil && !st.cfg.force {
			return err
		}
		if err == nil {
			vm.f["power_state"], vm.f["suspend_VDI"] = "Suspended", vdi
		}
	}
	p.touch(vm)
	st.table[id] = ref
	st.created = append(st.created, ref)
	return nil
}

// vmCreateRecord is the record do_import gives VM.create_from_record:
// the exported one with a fresh mac_seed (unless a restore), the
// import_task, no affinity yet, and pre-Boston restart priorities made
// "restart" with an order.
func (st *importState) vmCreateRecord(rec map[string]any) map[string]any {
	oc := wireMap(rec["other_config"])
	delete(oc, "grant_api_access")
	if !st.cfg.restore {
		oc["mac_seed"] = st.p.newUUID()
	}
	oc["import_task"] = st.task
	create := copyRecord(rec)
	create["other_config"], create["affinity"] = oc, nullRef
	create["suspend_SR"] = st.optional(wireString(rec["suspend_SR"]))
	if prio := wireString(rec["ha_restart_priority"]); len(prio) == 1 && prio >= "0" && prio <= "3" {
		create["ha_restart_priority"], create["order"] = "restart", prio
	}
	return create
}

// setVMFields sets what do_import sets after VM.create: the exported
// uuid on a restore, vmImportFields, the version (bumped by a restore,
// else 0), a fresh generation_id, no appliance, no resident_on, the
// affinity host if it was found.
func (st *importState) setVMFields(vm *object, rec map[string]any) {
	p := st.p
	if st.cfg.restore {
		p.setUUID(vm, wireString(rec["uuid"]))
	}
	for _, name := range vmImportFields {
		if v, ok := convertField(classVM.index[name], rec[name]); ok && rec[name] != nil {
			vm.f[name] = v
		}
	}
	vm.f["version"] = int64(0)
	if st.cfg.restore {
		version, _ := toInt(rec["version"])
		vm.f["version"] = version + 1
	}
	if !st.cfg.live && !wireBool(rec["is_a_template"]) && vm.str("generation_id") != "" {
		vm.f["generation_id"] = p.freshGenID()
	}
	vm.f["appliance"], vm.f["resident_on"] = nullRef, nullRef
	vm.f["affinity"] = st.optional(wireString(rec["affinity"]))
}

// optional is a lookup that gives NULL for an object not imported.
func (st *importState) optional(id string) string {
	if ref, ok := st.table[id]; ok {
		return ref
	}
	return nullRef
}

// freshGenID is Xapi_vm_helpers.fresh_genid: two random 63-bit numbers.
// The caller holds p.mu.
func (p *Pool) freshGenID() string {
	u := strings.ReplaceAll(p.newUUID(), "-", "")
	a, _ := strconv.ParseUint(u[:16], 16, 64)
	b, _ := strconv.ParseUint(u[16:], 16, 64)
	return fmt.Sprintf("%d:%d", a>>1, b>>1)
}

// linkSnapshots is update_snapshot_and_parent_links: an imported
// snapshot's snapshot_of and a VM's parent name the imported VMs.
func (st *importState) linkSnapshots() error {
	p := st.p
	for _, ref := range st.created {
		vm, live := p.objs[ref]
		if !live {
			continue
		}
		if of := vm.str("snapshot_of"); vm.bool("is_a_snapshot") && of != nullRef && of != "" {
			target, err := st.lookup(of)
			if err != nil {
				return err
			}
			vm.f["snapshot_of"] = target
			if o, ok := p.objs[target]; ok && o.cls == classVM {
				o.addToSet("snapshots", ref)
				p.touch(o)
			}
		}
		vm.f["parent"] = st.optional(vm.str("parent"))
		p.touch(vm)
	}
	return nil
}

// vbd is import.ml's VBD handler: on the imported VM and the VDI found
// for it. A CD whose VDI was not found becomes empty; a disk whose VDI
// was not found is left out, unless it was attached
// (IMPORT_ERROR_ATTACHED_DISKS_NOT_FOUND).
func (st *importState) vbd(x *metaObject) error {
	if o := st.byUUID(classVBD, x.snap); st.cfg.restore && o != nil {
		st.table[x.id] = o.ref
		return nil
	}
	vmID := wireString(x.snap["VM"])
	vm, err := st.lookup(vmID)
	if err != nil {
		return err
	}
	origVM, err := st.find(vmID)
	if err != nil {
		return err
	}
	vdi, found := st.table[wireString(x.snap["VDI"])]
	typ, attached := wireString(x.snap["type"]), wireBool(x.snap["currently_attached"])
	cd := typ == "CD" || typ == "Floppy"
	if attached && !found {
		eject := wireString(origVM["domain_type"]) == "hvm" ||
			(st.cfg.dryRun && st.cfg.live && wireString(origVM["power_state"]) != "Suspended")
		if !(typ == "CD" && eject) {
			return fail(ErrImportErrorAttachedDisksNotFound)
		}
	}
	rec := copyRecord(x.snap)
	rec["VM"], rec["VDI"] = vm, vdi
	switch {
	case !found && cd:
		rec["VDI"], rec["empty"] = nullRef, true
	case !found:
		return nil
	}
	if st.cfg.dryRun {
		st.dummy(x.id)
		return nil
	}
	delete(rec, "device")
	ref, err := st.create("VBD.create", rec)
	if err != nil {
		return err
	}
	st.restored(ref, x.snap, attached)
	st.table[x.id] = ref
	return nil
}

// restored gives a VBD or VIF made by the import its exported uuid (a
// restore) and, on a VM that is not halted, its currently_attached.
func (st *importState) restored(ref string, snap map[string]any, attached bool) {
	p := st.p
	o := p.objs[ref]
	if st.cfg.restore {
		p.setUUID(o, wireString(snap["uuid"]))
	}
	if vm, ok := p.objs[o.str("VM")]; ok && vm.str("power_state") != "Halted" {
		o.f["currently_attached"] = attached
		p.touch(o)
	}
}

// vif is import.ml's VIF handler: on the imported VM and network (or the
// network other_config maps_to names), with the exported MAC on a
// restore, else a new one.
func (st *importState) vif(x *metaObject) error {
	if o := st.byUUID(classVIF, x.snap); st.cfg.restore && o != nil {
		st.table[x.id] = o.ref
		return nil
	}
	vm, err := st.lookup(wireString(x.snap["VM"]))
	if err != nil {
		return err
	}
	oc := wireMap(x.snap["other_config"])
	network, ok := oc[mapsToKey]
	if !ok {
		if network, err = st.lookup(wireString(x.snap["network"])); err != nil {
			return err
		}
	}
	delete(oc, mapsToKey)
	if st.cfg.dryRun {
		st.dummy(x.id)
		return nil
	}
	rec := copyRecord(x.snap)
	rec["VM"], rec["network"], rec["other_config"] = vm, network, oc
	if !st.cfg.restore {
		rec["MAC"] = ""
	}
	ref, err := st.create("VIF.create", rec)
	if err != nil {
		return err
	}
	st.restored(ref, x.snap, wireBool(x.snap["currently_attached"]))
	st.table[x.id] = ref
	return nil
}
