package xenapitest

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/xenflow/xenflow/xenapi/internal/xmlrpc"
)

// metaPool is a pool served by an httptest server, with a session.
type metaPool struct {
	p   *Pool
	url string
	s   string
}

func newMetaPool(t *testing.T, opts Options) *metaPool {
	t.Helper()
	p := newTestPool(t, opts)
	srv := httptest.NewServer(p.Handler())
	t.Cleanup(srv.Close)
	return &metaPool{p: p, url: srv.URL, s: login(t, p)}
}

// metaURL builds a handler URL with the session and the given parameters.
func (m *metaPool) metaURL(path string, kv ...string) string {
	q := url.Values{"session_id": {m.s}}
	for i := 0; i+1 < len(kv); i += 2 {
		q.Set(kv[i], kv[i+1])
	}
	return m.url + path + "?" + q.Encode()
}

// export GETs /export_metadata and returns the response and its body.
func (m *metaPool) export(t *testing.T, kv ...string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Get(m.metaURL(ExportMetadataPath, kv...))
	_, b := readResponse(t, resp, err)
	return resp, b
}

// mustExport exports and fails the test unless the answer is 200.
func (m *metaPool) mustExport(t *testing.T, kv ...string) []byte {
	t.Helper()
	resp, b := m.export(t, kv...)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("export %v: %d %s", kv, resp.StatusCode, b)
	}
	return b
}

// importMeta PUTs body into /import_metadata; it returns the status and
// the task's record.
func (m *metaPool) importMeta(t *testing.T, body []byte, kv ...string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, m.metaURL(ImportMetadataPath, kv...), bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	code, _ := readResponse(t, resp, err)
	task := resp.Header.Get("task-id")
	if task == "" {
		return code, nil
	}
	return code, waitTask(t, m.p, m.s, task)
}

// mustImport imports and returns the refs of the VMs made.
func (m *metaPool) mustImport(t *testing.T, body []byte, kv ...string) []string {
	t.Helper()
	code, task := m.importMeta(t, body, kv...)
	if code != http.StatusOK || task == nil || task["status"] != "success" {
		t.Fatalf("import %v: HTTP %d, task %v", kv, code, task)
	}
	return taskRefs(t, task)
}

// taskRefs decodes a task result that is a set of refs.
func taskRefs(t *testing.T, task map[string]any) []string {
	t.Helper()
	v, err := xmlrpc.DecodeValueString(task["result"].(string))
	if err != nil {
		t.Fatalf("task result %q: %v", task["result"], err)
	}
	refs := []string{}
	for _, r := range v.([]any) {
		refs = append(refs, r.(string))
	}
	return refs
}

// exported is an export's ova.xml, decoded.
type exported struct {
	version map[string]any
	objects []map[string]any // {class, id, snapshot}
}

// ofClass returns the snapshots of the objects of one class.
func (e exported) ofClass(cls string) []map[string]any {
	var out []map[string]any
	for _, o := range e.objects {
		if o["class"] == cls {
			out = append(out, o["snapshot"].(map[string]any))
		}
	}
	return out
}

// byID returns an object's snapshot and class by its id.
func (e exported) byID(id string) (map[string]any, string) {
	for _, o := range e.objects {
		if o["id"] == id {
			return o["snapshot"].(map[string]any), o["class"].(string)
		}
	}
	return nil, ""
}

// readExport checks the body is a tar of exactly ova.xml followed by the
// tar's end, and decodes ova.xml.
func readExport(t *testing.T, body []byte) exported {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(body))
	hdr, err := tr.Next()
	if err != nil {
		t.Fatalf("export is not a tar: %v", err)
	}
	if hdr.Name != "ova.xml" {
		t.Fatalf("first member %q, want ova.xml", hdr.Name)
	}
	xml, err := io.ReadAll(tr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Next(); err != io.EOF {
		t.Fatalf("after ova.xml: %v, want the end of the archive", err)
	}
	if want := 512 + (len(xml)+511)/512*512 + 1024; len(body) != want {
		t.Fatalf("tar of %d bytes, want %d (header, ova.xml, two zero blocks)", len(body), want)
	}
	v, err := xmlrpc.DecodeValueString(string(xml))
	if err != nil {
		t.Fatalf("ova.xml: %v", err)
	}
	top := v.(map[string]any)
	e := exported{version: top["version"].(map[string]any)}
	for _, o := range top["objects"].([]any) {
		e.objects = append(e.objects, o.(map[string]any))
	}
	return e
}

// checkRefs checks the export's ids are Ref:0, Ref:1, … and that every
// ref inside a snapshot is an id of the export or OpaqueRef:NULL.
func checkRefs(t *testing.T, e exported) {
	t.Helper()
	ids := map[string]bool{}
	for _, o := range e.objects {
		ids[o["id"].(string)] = true
	}
	for i := 0; i < len(ids); i++ {
		if !ids["Ref:"+strconv.Itoa(i)] {
			t.Fatalf("ids %v are not Ref:0 to Ref:%d", ids, len(ids)-1)
		}
	}
	var walk func(where string, v any)
	walk = func(where string, v any) {
		switch x := v.(type) {
		case string:
			if (strings.HasPrefix(x, "OpaqueRef:") && x != nullRef) || (strings.HasPrefix(x, "Ref:") && !ids[x]) {
				t.Errorf("%s = %q: not rewritten to an id of the export", where, x)
			}
		case []any:
			for _, e := range x {
				walk(where, e)
			}
		case map[string]any:
			for k, e := range x {
				walk(where+"."+k, e)
			}
		}
	}
	for _, o := range e.objects {
		walk(o["class"].(string)+" "+o["id"].(string), o["snapshot"])
	}
}

// classCounts counts an export's objects by class.
func classCounts(e exported) map[string]int {
	n := map[string]int{}
	for _, o := range e.objects {
		n[o["class"].(string)]++
	}
	return n
}

// suspendedVM makes a VM with two disks holding known data and a VIF on
// the default network, and suspends it.
func suspendedVM(t *testing.T, m *metaPool, name string) VMInfo {
	t.Helper()
	vm, err := m.p.AddVM(VMSpec{Name: name, Disks: []int64{4 << 20, 2 << 20}, Networks: []string{m.p.Network()}, Running: true, Memory: 16 << 20, VCPUs: 2})
	if err != nil {
		t.Fatal(err)
	}
	for i, vdi := range vm.VDIs {
		if err := m.p.WriteVDI(vdi, 4096, []byte(name+" disk "+string(rune('0'+i)))); err != nil {
			t.Fatal(err)
		}
	}
	mustCall(t, m.p, "VM.suspend", m.s, vm.Ref)
	return vm
}

func TestExportMetadata(t *testing.T) {
	m := newMetaPool(t, Options{})
	running, err := m.p.AddVM(VMSpec{Name: "running", Disks: []int64{1 << 20, 1 << 20}, Networks: []string{m.p.Network()}, Running: true})
	if err != nil {
		t.Fatal(err)
	}
	suspended := suspendedVM(t, m, "suspended")
	withSnap, err := m.p.AddVM(VMSpec{Name: "with-snapshot", Disks: []int64{1 << 20}})
	if err != nil {
		t.Fatal(err)
	}
	mustCall(t, m.p, "VM.snapshot", m.s, withSnap.Ref, "snap")
	tests := []struct {
		name   string
		query  []string
		counts map[string]int
		check  func(t *testing.T, e exported, vm map[string]any)
	}{
		{"running", []string{"uuid", running.UUID},
			map[string]int{"host": 1, "VM": 1, "VBD": 2, "VIF": 1, "network": 1, "VDI": 2, "SR": 1},
			func(t *testing.T, e exported, vm map[string]any) {
				if vm["power_state"] != "Running" {
					t.Errorf("power_state %v", vm["power_state"])
				}
				if h, cls := e.byID(vm["resident_on"].(string)); cls != "host" || h["uuid"] != m.p.Master().UUID() {
					t.Errorf("resident_on is %s %v, want the master", cls, h["uuid"])
				}
				for _, id := range vm["VBDs"].([]any) {
					vbd, cls := e.byID(id.(string))
					if cls != "VBD" || vbd["VM"] != "Ref:0" || vbd["metrics"] != nullRef {
						t.Errorf("VM.VBDs %v: %s %v", id, cls, vbd)
					}
					if vdi, cls := e.byID(vbd["VDI"].(string)); cls != "VDI" || len(vdi["crash_dumps"].([]any)) != 0 {
						t.Errorf("VBD.VDI is %s %v", cls, vdi)
					}
				}
			}},
		{"suspended", []string{"ref", suspended.Ref},
			map[string]int{"host": 1, "VM": 1, "VBD": 2, "VIF": 1, "network": 1, "VDI": 3, "SR": 1},
			func(t *testing.T, e exported, vm map[string]any) {
				vdi, cls := e.byID(vm["suspend_VDI"].(string))
				if vm["power_state"] != "Suspended" || cls != "VDI" || vdi["type"] != "suspend" {
					t.Errorf("power_state %v, suspend_VDI is %s %v", vm["power_state"], cls, vdi["type"])
				}
				if vm["resident_on"] != nullRef {
					t.Errorf("resident_on %v of a suspended VM", vm["resident_on"])
				}
				if h, cls := e.byID(vm["affinity"].(string)); cls != "host" || h["uuid"] != m.p.Master().UUID() {
					t.Errorf("affinity is %s %v", cls, h)
				}
			}},
		{"no VIFs", []string{"uuid", running.UUID, "excluded_device_types", "VIF"},
			map[string]int{"host": 1, "VM": 1, "VBD": 2, "VDI": 2, "SR": 1},
			func(t *testing.T, e exported, vm map[string]any) {
				if len(vm["VIFs"].([]any)) != 0 {
					t.Errorf("VIFs %v", vm["VIFs"])
				}
			}},
		{"no devices", []string{"uuid", running.UUID, "excluded_device_types", "vif,VBD"},
			map[string]int{"host": 1, "VM": 1}, nil},
		{"snapshots", []string{"uuid", withSnap.UUID},
			map[string]int{"host": 1, "VM": 2, "VBD": 2, "VDI": 2, "SR": 1},
			func(t *testing.T, e exported, vm map[string]any) {
				snaps := vm["snapshots"].([]any)
				if len(snaps) != 1 {
					t.Fatalf("snapshots %v", snaps)
				}
				s, cls := e.byID(snaps[0].(string))
				if cls != "VM" || s["is_a_snapshot"] != true || s["snapshot_of"] != "Ref:0" {
					t.Errorf("snapshot %s is_a_snapshot %v snapshot_of %v", cls, s["is_a_snapshot"], s["snapshot_of"])
				}
			}},
		{"snapshots left out", []string{"uuid", withSnap.UUID, "export_snapshots", "false"},
			map[string]int{"host": 1, "VM": 1, "VBD": 1, "VDI": 1, "SR": 1},
			func(t *testing.T, e exported, vm map[string]any) {
				if len(vm["snapshots"].([]any)) != 0 || vm["is_a_snapshot"] != false {
					t.Errorf("snapshots %v", vm["snapshots"])
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := m.export(t, tc.query...)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("HTTP %d %s", resp.StatusCode, body)
			}
			for k, want := range map[string]string{"Content-Type": "application/octet-stream",
				"Content-Disposition": `attachment; filename="export.xva"`, "Content-Length": strconv.Itoa(len(body))} {
				if got := resp.Header.Get(k); got != want {
					t.Errorf("%s: %q, want %q", k, got, want)
				}
			}
			task := waitTask(t, m.p, m.s, resp.Header.Get("task-id"))
			if task["status"] != "success" || task["result"] != "" || task["name_label"] != "VM.export_metadata" {
				t.Errorf("task %v %q %v", task["status"], task["result"], task["name_label"])
			}
			e := readExport(t, body)
			checkRefs(t, e)
			if got := classCounts(e); !reflect.DeepEqual(got, tc.counts) {
				t.Errorf("objects %v, want %v", got, tc.counts)
			}
			if e.version["product_brand"] != ProductBrand || e.version["xapi_major"] != int64(1) || e.version["export_vsn"] != int64(2) {
				t.Errorf("version %v", e.version)
			}
			vm, cls := e.byID("Ref:0")
			if cls != "VM" {
				t.Fatalf("Ref:0 is a %s", cls)
			}
			if len(vm["allowed_operations"].([]any)) != 0 || len(vm["current_operations"].(map[string]any)) != 0 {
				t.Errorf("operations %v %v", vm["allowed_operations"], vm["current_operations"])
			}
			for _, h := range e.ofClass("host") {
				if len(h["PBDs"].([]any)) != 0 || h["metrics"] != nullRef || len(h["software_version"].(map[string]any)) != 0 {
					t.Errorf("host not blanked: %v %v", h["PBDs"], h["metrics"])
				}
			}
			for _, sr := range e.ofClass("SR") {
				if len(sr["PBDs"].([]any)) != 0 {
					t.Errorf("SR PBDs %v", sr["PBDs"])
				}
			}
			if tc.check != nil {
				tc.check(t, e, vm)
			}
		})
	}
}

// vmDisks returns a VM's VDIs by userdevice and its suspend image.
func vmDisks(t *testing.T, p *Pool, vm string) (map[string]string, string) {
	t.Helper()
	disks := map[string]string{}
	for _, vbd := range recField(t, p, vm, "VBDs").([]any) {
		disks[recField(t, p, vbd.(string), "userdevice").(string)] = recField(t, p, vbd.(string), "VDI").(string)
	}
	return disks, recField(t, p, vm, "suspend_VDI").(string)
}

// copyDisks copies a VM's disks and suspend image from one pool into
// another (or the same) pool's master SR, and returns the VDI map
// parameters ("vdi:<uuid>", "<uuid of the copy>", …) and the copies by
// the uuid of their original.
func copyDisks(t *testing.T, from, to *metaPool, vm string) ([]string, map[string]string) {
	t.Helper()
	disks, suspend := vmDisks(t, from.p, vm)
	vdis := []string{suspend}
	for _, v := range disks {
		vdis = append(vdis, v)
	}
	var kv []string
	copies := map[string]string{}
	for _, vdi := range vdis {
		var dst string
		if from == to {
			dst = mustCall(t, from.p, "VDI.copy", from.s, vdi, from.p.Master().SR()).(string)
		} else {
			data, err := from.p.ReadVDI(vdi)
			if err != nil {
				t.Fatal(err)
			}
			rec, _ := from.p.Record(vdi)
			dst = mustCall(t, to.p, "VDI.create", to.s, map[string]any{
				"name_label": "copy", "name_description": "", "SR": to.p.Master().SR(), "virtual_size": rec["virtual_size"],
				"type": rec["type"], "sharable": false, "read_only": false, "other_config": map[string]any{},
			}).(string)
			if err := to.p.WriteVDI(dst, 0, data); err != nil {
				t.Fatal(err)
			}
		}
		uuid := recField(t, from.p, vdi, "uuid").(string)
		copies[uuid] = dst
		kv = append(kv, "vdi:"+uuid, recField(t, to.p, dst, "uuid").(string))
	}
	return kv, copies
}

// checkImported checks a VM made by an import: Suspended on the copies,
// its VIF on the default network; then resumes it on the master.
func checkImported(t *testing.T, from, to *metaPool, orig VMInfo, vm string, copies map[string]string) {
	t.Helper()
	rec, _ := to.p.Record(vm)
	origDisks, origSuspend := vmDisks(t, from.p, orig.Ref)
	disks, suspend := vmDisks(t, to.p, vm)
	if rec["power_state"] != "Suspended" || suspend != copies[recField(t, from.p, origSuspend, "uuid").(string)] {
		t.Fatalf("power_state %v suspend_VDI %v, want Suspended on the copy", rec["power_state"], suspend)
	}
	for dev, vdi := range origDisks {
		if want := copies[recField(t, from.p, vdi, "uuid").(string)]; disks[dev] != want {
			t.Errorf("userdevice %s on %s, want the copy %s", dev, disks[dev], want)
		}
	}
	if len(disks) != len(origDisks) {
		t.Errorf("disks %v, want %d", disks, len(origDisks))
	}
	vifs := rec["VIFs"].([]any)
	if len(vifs) != 1 || recField(t, to.p, vifs[0].(string), "network") != to.p.Network() {
		t.Fatalf("VIFs %v, want one on the default network", vifs)
	}
	if rec["resident_on"] != nullRef || rec["memory_static_max"] != strconv.Itoa(16<<20) || rec["VCPUs_at_startup"] != "2" {
		t.Errorf("resident_on %v memory %v VCPUs %v", rec["resident_on"], rec["memory_static_max"], rec["VCPUs_at_startup"])
	}
	mustCall(t, to.p, "VM.resume_on", to.s, vm, to.p.Master().Ref(), false, false)
	if st := recField(t, to.p, vm, "power_state"); st != "Running" {
		t.Fatalf("after resume_on: %v", st)
	}
	got := make([]byte, len("guest disk 0"))
	if err := to.p.ReadVDIAt(disks["0"], got, 4096); err != nil || string(got) != "guest disk 0" {
		t.Errorf("disk 0 holds %q (%v)", got, err)
	}
}

func TestImportMetadataSamePool(t *testing.T) {
	m := newMetaPool(t, Options{})
	orig := suspendedVM(t, m, "guest")
	kv, copies := copyDisks(t, m, m, orig.Ref)
	body := m.mustExport(t, "uuid", orig.UUID)
	refs := m.mustImport(t, body, kv...)
	if len(refs) != 1 || refs[0] == orig.Ref {
		t.Fatalf("import made %v", refs)
	}
	vm := refs[0]
	rec, _ := m.p.Record(vm)
	if rec["uuid"] == orig.UUID || rec["name_label"] != "guest" {
		t.Errorf("uuid %v name %v: want a fresh uuid, the same name", rec["uuid"], rec["name_label"])
	}
	if oc := rec["other_config"].(map[string]any); oc["mac_seed"] == nil || oc["import_task"] == nil {
		t.Errorf("other_config %v: want a fresh mac_seed and import_task", oc)
	}
	origMAC := recField(t, m.p, orig.VIFs[0], "MAC")
	if mac := recField(t, m.p, rec["VIFs"].([]any)[0].(string), "MAC"); mac == origMAC || mac == "" {
		t.Errorf("MAC %v, want a new one (the original's is %v)", mac, origMAC)
	}
	checkImported(t, m, m, orig, vm, copies)
	if st := recField(t, m.p, orig.Ref, "power_state"); st != "Suspended" {
		t.Errorf("the original is %v", st)
	}
	if _, err := m.p.ReadVDI(recField(t, m.p, orig.Ref, "suspend_VDI").(string)); err != nil {
		t.Errorf("the original's suspend image: %v", err)
	}
}

func TestImportMetadataTwoPools(t *testing.T) {
	src, dst := newMetaPool(t, Options{}), newMetaPool(t, Options{HostNames: []string{"other"}})
	orig := suspendedVM(t, src, "guest")
	kv, copies := copyDisks(t, src, dst, orig.Ref)
	body := src.mustExport(t, "uuid", orig.UUID)
	refs := dst.mustImport(t, body, append(kv, "restore", "true")...)
	if len(refs) != 1 {
		t.Fatalf("import made %v", refs)
	}
	vm := refs[0]
	rec, _ := dst.p.Record(vm)
	if rec["uuid"] != orig.UUID || rec["affinity"] != nullRef || rec["version"] != "1" {
		t.Errorf("uuid %v affinity %v version %v: want the exported uuid, no host, version 1", rec["uuid"], rec["affinity"], rec["version"])
	}
	vif := rec["VIFs"].([]any)[0].(string)
	if mac, want := recField(t, dst.p, vif, "MAC"), recField(t, src.p, orig.VIFs[0], "MAC"); mac != want {
		t.Errorf("MAC %v, want the exported %v", mac, want)
	}
	if u, want := recField(t, dst.p, vif, "uuid"), recField(t, src.p, orig.VIFs[0], "uuid"); u != want {
		t.Errorf("VIF uuid %v, want the exported %v", u, want)
	}
	checkImported(t, src, dst, orig, vm, copies)
}

// poolObjects returns the records of every VM, VBD, VIF, VDI, network and
// SR of a pool, for before/after comparisons.
func poolObjects(t *testing.T, m *metaPool) map[string]any {
	t.Helper()
	out := map[string]any{}
	for _, cls := range []string{"VM", "VBD", "VIF", "VDI", "network", "SR"} {
		out[cls] = mustCall(t, m.p, cls+".get_all_records", m.s)
	}
	return out
}

// tarOf makes a tar of the given members.
func tarOf(t *testing.T, members ...string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for i := 0; i+1 < len(members); i += 2 {
		if err := tw.WriteHeader(&tar.Header{Name: members[i], Mode: 0o644, Size: int64(len(members[i+1]))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(members[i+1])); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// rewriteExport decodes an export's ova.xml, lets edit change each
// object's snapshot, and makes the tar again.
func rewriteExport(t *testing.T, body []byte, edit func(cls string, snap map[string]any)) []byte {
	t.Helper()
	e := readExport(t, body)
	objects := []any{}
	for _, o := range e.objects {
		edit(o["class"].(string), o["snapshot"].(map[string]any))
		objects = append(objects, o)
	}
	xml, err := xmlrpc.EncodeValueString(map[string]any{"version": e.version, "objects": objects})
	if err != nil {
		t.Fatal(err)
	}
	return tarOf(t, "ova.xml", xml)
}

// errorInfo returns a failed task's error_info.
func errorInfo(task map[string]any) []string {
	out := []string{}
	for _, e := range task["error_info"].([]any) {
		out = append(out, e.(string))
	}
	return out
}

func TestImportMetadataErrors(t *testing.T) {
	src, dst := newMetaPool(t, Options{}), newMetaPool(t, Options{})
	orig := suspendedVM(t, src, "guest")
	running, err := src.p.AddVM(VMSpec{Name: "running", Disks: []int64{1 << 20}, Running: true})
	if err != nil {
		t.Fatal(err)
	}
	kv, _ := copyDisks(t, src, dst, orig.Ref)
	body := src.mustExport(t, "uuid", orig.UUID)
	tests := []struct {
		name   string
		into   *metaPool
		body   func() []byte
		query  []string
		before func()
		status string   // the task's, "" for no task
		want   []string // its error_info (a prefix of the last element is enough)
		refs   int      // VMs made on success
	}{
		{name: "unmapped VDIs", into: dst, body: func() []byte { return body }, status: "failure",
			want: []string{ErrVDIContentIDMissing}},
		{name: "first member not ova.xml", into: dst, body: func() []byte { return tarOf(t, "Ref:1/00000000", "x", "ova.xml", "y") },
			status: "failure", want: []string{ErrImportErrorUnexpectedFile, "ova.xml", "Ref:1/00000000"}},
		{name: "not a tar", into: dst, body: func() []byte { return []byte("this is no tar archive") },
			status: "failure", want: []string{ErrInternalError, "the body is not a tar archive"}},
		{name: "empty body", into: dst, body: func() []byte { return nil },
			status: "failure", want: []string{ErrInternalError, "the body is not a tar archive"}},
		{name: "ova.xml not XML-RPC", into: dst, body: func() []byte { return tarOf(t, "ova.xml", "<value><struct>") },
			status: "failure", want: []string{ErrInternalError, "ova.xml: "}},
		{name: "ova.xml without version", into: dst, body: func() []byte { return tarOf(t, "ova.xml", "<value><struct></struct></value>") },
			status: "failure", want: []string{ErrInternalError, "ova.xml: not a struct of version and objects"}},
		{name: "restore onto a running VM", into: src, body: func() []byte { return src.mustExport(t, "uuid", running.UUID) },
			query: []string{"restore", "true"}, status: "failure", want: []string{ErrVMBadPowerState, running.Ref, "halted", "running"}},
		{name: "injected fault", into: dst, body: func() []byte { return body }, query: kv,
			before: func() {
				dst.p.FailNth(ImportMetadataAction, dst.p.CallCount(ImportMetadataAction)+1, ErrInternalError, "injected")
			},
			status: "failure", want: []string{ErrInternalError, "injected"}},
		{name: "VIF refused after the network, VM and VBDs were made", into: dst, query: append([]string{"restore", "true"}, kv...),
			body: func() []byte {
				return rewriteExport(t, body, func(cls string, snap map[string]any) {
					switch cls {
					case "VIF":
						snap["MAC"] = "not-a-mac"
					case "network":
						snap["name_label"], snap["bridge"] = "nowhere", "xenbr9"
					}
				})
			},
			status: "failure", want: []string{ErrMACInvalid, "not-a-mac"}},
		{name: "VM refused by VM.create", into: dst, query: kv,
			body: func() []byte {
				return rewriteExport(t, body, func(cls string, snap map[string]any) {
					if cls == "VM" {
						snap["memory_static_min"] = strconv.Itoa(1 << 40)
					}
				})
			},
			status: "failure", want: []string{ErrMemoryConstraintViolation}},
		{name: "dry run", into: dst, body: func() []byte { return body }, query: append([]string{"dry_run", "true"}, kv...),
			status: "success"},
		{name: "dry run of unmapped VDIs", into: dst, body: func() []byte { return body }, query: []string{"dry_run", "true"},
			status: "failure", want: []string{ErrVDIContentIDMissing}},
		{name: "no credentials", into: dst, body: func() []byte { return body }, query: []string{"session_id", ""}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := poolObjects(t, tc.into)
			if tc.before != nil {
				tc.before()
			}
			q := tc.query
			u := tc.into.metaURL(ImportMetadataPath, q...)
			if tc.status == "" {
				u = tc.into.url + ImportMetadataPath
			}
			req, err := http.NewRequest(http.MethodPut, u, bytes.NewReader(tc.body()))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			code, _ := readResponse(t, resp, err)
			taskRef := resp.Header.Get("task-id")
			switch {
			case tc.status == "" && (code != http.StatusUnauthorized || taskRef != ""):
				t.Fatalf("HTTP %d task %q, want 401 and no task", code, taskRef)
			case tc.status != "" && (code != http.StatusOK || taskRef == ""):
				t.Fatalf("HTTP %d task %q, want 200 and a task", code, taskRef)
			}
			if tc.status != "" {
				task := waitTask(t, tc.into.p, tc.into.s, taskRef)
				if task["status"] != tc.status {
					t.Fatalf("task %v %v, want %s", task["status"], task["error_info"], tc.status)
				}
				if tc.status == "success" && len(taskRefs(t, task)) != tc.refs {
					t.Errorf("result %v, want %d VMs", task["result"], tc.refs)
				}
				if got := errorInfo(task); tc.status == "failure" && !errorInfoMatches(got, tc.want) {
					t.Errorf("error_info %q, want %q", got, tc.want)
				}
			}
			if after := poolObjects(t, tc.into); !reflect.DeepEqual(before, after) {
				t.Errorf("the pool changed:\nbefore %v\nafter  %v", before, after)
			}
		})
	}
}

// errorInfoMatches compares error_info with want; the last element of
// want may be a prefix.
func errorInfoMatches(got, want []string) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range want {
		if got[i] != want[i] && !(i == len(want)-1 && strings.HasPrefix(got[i], want[i])) {
			return false
		}
	}
	return true
}

func TestExportMetadataErrors(t *testing.T) {
	m := newMetaPool(t, Options{})
	vm, err := m.p.AddVM(VMSpec{Name: "guest", Disks: []int64{1 << 20}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		query  []string
		before func()
		code   int
		want   []string // the task's error_info; nil for no task
	}{
		{"unknown uuid", []string{"uuid", "not-a-vm"}, nil, http.StatusInternalServerError, []string{ErrUUIDInvalid, "VM", "not-a-vm"}},
		{"unknown ref", []string{"ref", "OpaqueRef:nothing"}, nil, http.StatusInternalServerError, []string{ErrHandleInvalid, "VM", "OpaqueRef:nothing"}},
		{"no VM named", nil, nil, http.StatusInternalServerError, []string{ErrInternalError, "Not_found"}},
		{"all", []string{"all", "true"}, nil, http.StatusInternalServerError, []string{ErrInternalError, "all=true"}},
		{"bad flag", []string{"uuid", vm.UUID, "export_snapshots", "yes"}, nil, http.StatusInternalServerError, []string{ErrInternalError, "Invalid_argument"}},
		{"bad device type", []string{"uuid", vm.UUID, "excluded_device_types", "VIF,disk"}, nil, http.StatusInternalServerError, []string{ErrInternalError, "Devicetype.of_string"}},
		{"injected fault", []string{"uuid", vm.UUID}, func() {
			m.p.FailNth(ExportMetadataAction, m.p.CallCount(ExportMetadataAction)+1, "SR_BACKEND_FAILURE", "injected")
		}, http.StatusInternalServerError, []string{"SR_BACKEND_FAILURE", "injected"}},
		{"no credentials", []string{"session_id", ""}, nil, http.StatusUnauthorized, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.before != nil {
				tc.before()
			}
			u := m.metaURL(ExportMetadataPath, tc.query...)
			if tc.want == nil {
				u = m.url + ExportMetadataPath + "?uuid=" + vm.UUID
			}
			resp, err := http.Get(u)
			code, body := readResponse(t, resp, err)
			if code != tc.code {
				t.Fatalf("HTTP %d %s, want %d", code, body, tc.code)
			}
			if tc.want == nil {
				if resp.Header.Get("WWW-Authenticate") == "" {
					t.Errorf("401 without WWW-Authenticate")
				}
				return
			}
			if !strings.Contains(string(body), "Server_error("+tc.want[0]) {
				t.Errorf("body %s does not name %s", body, tc.want[0])
			}
			tasks := mustCall(t, m.p, "task.get_all_records_where", m.s, `field "name_label" = "VM.export_metadata"`).(map[string]any)
			var newest map[string]any
			for _, r := range tasks {
				rec := r.(map[string]any)
				if rec["status"] == "failure" && errorInfoMatches(errorInfo(rec), tc.want) {
					newest = rec
				}
			}
			if newest == nil {
				t.Errorf("no failed task with error_info %q among %v", tc.want, tasks)
			}
		})
	}
	calls := m.p.Calls()
	if last := calls[len(calls)-1]; last.Method != ExportMetadataAction || last.Args != `uuid="`+vm.UUID+`"` || last.Error != ErrSessionAuthenticationFailed {
		t.Errorf("call log ends with %v", last)
	}
}

// FuzzImportMetadata imports arbitrary ova.xml documents into one pool,
// as a dry run and for real, with and without restore and force. Whatever
// the document, the import must not panic, and a failed import that is
// not forced must leave no VM behind.
func FuzzImportMetadata(f *testing.F) {
	p, err := NewPool(Options{Dir: f.TempDir()})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = p.Close() })
	guest, err := p.AddVM(VMSpec{Name: "guest", Disks: []int64{1 << 20}, Networks: []string{p.Network()}, Running: true, Memory: 16 << 20})
	if err != nil {
		f.Fatal(err)
	}
	snapped, err := p.AddVM(VMSpec{Name: "snapped", Disks: []int64{1 << 20}, Networks: []string{p.Network()}})
	if err != nil {
		f.Fatal(err)
	}
	for _, c := range [][]any{{"VM.suspend", guest.Ref}, {"VM.snapshot", snapped.Ref, "snap"}} {
		if _, err := p.internal(c[0].(string), c[1:]...); err != nil {
			f.Fatal(err)
		}
	}
	for _, ref := range []string{guest.Ref, snapped.Ref} {
		p.mu.Lock()
		xml, err := p.metadataXML(p.objs[ref], exportFlags{snapshots: true})
		p.mu.Unlock()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(xml), byte(0))
		f.Add(string(xml), byte(7))
	}
	f.Add(`<value><struct><member><name>version</name><value><struct><member><name>xapi_major</name><value><int>1</int></value></member>`+
		`<member><name>xapi_minor</name><value>1</value></member></struct></value></member><member><name>objects</name><value><array><data>`+
		`<value><struct><member><name>class</name><value>VM</value></member><member><name>id</name><value>Ref:0</value></member>`+
		`<member><name>snapshot</name><value><struct><member><name>memory_static_max</name><value><array><data/></array></value></member></struct></value></member>`+
		`</struct></value></data></array></value></member></struct></value>`, byte(3))
	f.Fuzz(func(t *testing.T, xml string, flags byte) {
		hdr, err := parseMetadata([]byte(xml))
		if err != nil {
			return
		}
		cfg := importConfig{dryRun: flags&1 != 0, restore: flags&2 != 0, force: flags&4 != 0, vdiMap: map[string]string{}}
		p.mu.Lock()
		defer p.mu.Unlock()
		vms := len(p.all(classVM))
		st := &importState{p: p, cfg: cfg, task: nullRef, export: hdr.objects, table: map[string]string{}}
		refs, err := st.run(hdr, nil)
		if err != nil && !cfg.force && !cfg.restore && len(p.all(classVM)) != vms {
			t.Fatalf("a failed import left %d VMs where there were %d", len(p.all(classVM)), vms)
		}
		if err == nil && cfg.dryRun && len(refs) != 0 {
			t.Fatalf("a dry run made %v", refs)
		}
	})
}

// Moving a suspended VM as xapi's VM.migrate_send does: its disks and
// suspend image are copied (here with VDI.copy), its metadata is
// exported with GET /export_metadata and imported with PUT
// /import_metadata and a VDI map onto the copies, which makes a
// Suspended VM that VM.resume_on runs.
func ExamplePool_Handler_metadata() {
	pool, err := NewPool(Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	srv := httptest.NewServer(pool.Handler())
	defer srv.Close()
	ctx := context.Background()
	s, err := pool.Call(ctx, "session.login_with_password", pool.User(), pool.Password())
	if err != nil {
		log.Fatal(err)
	}
	vm, err := pool.AddVM(VMSpec{Name: "instance-1", Disks: []int64{4 << 20}, Memory: 16 << 20, Running: true})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := pool.Call(ctx, "VM.suspend", s, vm.Ref); err != nil {
		log.Fatal(err)
	}
	suspendVDI, _ := pool.Call(ctx, "VM.get_suspend_VDI", s, vm.Ref)
	q := url.Values{"session_id": {s.(string)}}
	for _, vdi := range []string{vm.VDIs[0], suspendVDI.(string)} {
		cp, err := pool.Call(ctx, "VDI.copy", s, vdi, pool.Master().SR())
		if err != nil {
			log.Fatal(err)
		}
		from, _ := pool.Call(ctx, "VDI.get_uuid", s, vdi)
		to, _ := pool.Call(ctx, "VDI.get_uuid", s, cp)
		q.Set("vdi:"+from.(string), to.(string))
	}

	resp, err := http.Get(srv.URL + ExportMetadataPath + "?session_id=" + url.QueryEscape(s.(string)) + "&uuid=" + vm.UUID)
	if err != nil {
		log.Fatal(err)
	}
	export, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("export:", resp.Status, resp.Header.Get("Content-Type"))

	req, err := http.NewRequest(http.MethodPut, srv.URL+ImportMetadataPath+"?"+q.Encode(), bytes.NewReader(export))
	if err != nil {
		log.Fatal(err)
	}
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	task, _ := pool.Call(ctx, "task.get_record", s, resp.Header.Get("task-id"))
	result, _ := xmlrpc.DecodeValueString(task.(map[string]any)["result"].(string))
	imported := result.([]any)[0].(string)
	state, _ := pool.Call(ctx, "VM.get_power_state", s, imported)
	fmt.Println("import:", resp.Status, task.(map[string]any)["status"], state)

	if _, err := pool.Call(ctx, "VM.resume_on", s, imported, pool.Master().Ref(), false, false); err != nil {
		log.Fatal(err)
	}
	state, _ = pool.Call(ctx, "VM.get_power_state", s, imported)
	fmt.Println("after VM.resume_on:", state)
	// Output:
	// export: 200 OK application/octet-stream
	// import: 200 OK success Suspended
	// after VM.resume_on: Running
}

// TestImportMetadataRestore restores a halted VM over itself in its own
// pool: its VDIs are found on their SR by location, an import that is no
// newer is refused unless forced, a forced one replaces the VM, and a VDI
// whose file is gone is VDI_LOCATION_MISSING.
func TestImportMetadataRestore(t *testing.T) {
	m := newMetaPool(t, Options{})
	orig, err := m.p.AddVM(VMSpec{Name: "halted", Disks: []int64{1 << 20, 1 << 20}, Networks: []string{m.p.Network()}})
	if err != nil {
		t.Fatal(err)
	}
	body := m.mustExport(t, "uuid", orig.UUID)
	mac := recField(t, m.p, orig.VIFs[0], "MAC")
	steps := []struct {
		name  string
		query []string
		want  []string // error_info; nil for success
	}{
		{"no newer", []string{"restore", "true"}, []string{ErrVMToImportIsNotNewerVersion, orig.Ref, "0", "0"}},
		{"forced", []string{"restore", "true", "force", "true"}, nil},
	}
	for _, step := range steps {
		code, task := m.importMeta(t, body, step.query...)
		if code != http.StatusOK {
			t.Fatalf("%s: HTTP %d", step.name, code)
		}
		if step.want != nil {
			if got := errorInfo(task); task["status"] != "failure" || !errorInfoMatches(got, step.want) {
				t.Fatalf("%s: task %v %q, want %q", step.name, task["status"], got, step.want)
			}
			continue
		}
		refs := taskRefs(t, task)
		if task["status"] != "success" || len(refs) != 1 || refs[0] == orig.Ref {
			t.Fatalf("%s: task %v made %v", step.name, task["status"], refs)
		}
		rec, _ := m.p.Record(refs[0])
		if rec["uuid"] != orig.UUID || rec["version"] != "1" || rec["power_state"] != "Halted" {
			t.Errorf("%s: uuid %v version %v power_state %v", step.name, rec["uuid"], rec["version"], rec["power_state"])
		}
		if _, err := m.p.Record(orig.Ref); err == nil {
			t.Errorf("%s: the replaced VM %s is still there", step.name, orig.Ref)
		}
		disks, _ := vmDisks(t, m.p, refs[0])
		if disks["0"] != orig.VDIs[0] || disks["1"] != orig.VDIs[1] {
			t.Errorf("%s: disks %v, want the VM's own VDIs %v found by location", step.name, disks, orig.VDIs)
		}
		if got := recField(t, m.p, rec["VIFs"].([]any)[0].(string), "MAC"); got != mac {
			t.Errorf("%s: MAC %v, want %v", step.name, got, mac)
		}
	}
	location := recField(t, m.p, orig.VDIs[1], "location").(string)
	path, err := m.p.VDIPath(orig.VDIs[1])
	if err != nil {
		t.Fatal(err)
	}
	if err := removeFile(path); err != nil {
		t.Fatal(err)
	}
	mustCall(t, m.p, "SR.scan", m.s, m.p.Master().SR())
	code, task := m.importMeta(t, body)
	if want := []string{ErrVDILocationMissing, m.p.Master().SR(), location}; code != http.StatusOK || !errorInfoMatches(errorInfo(task), want) {
		t.Errorf("with a VDI gone: HTTP %d, task %v %q, want %q", code, task["status"], errorInfo(task), want)
	}
}
