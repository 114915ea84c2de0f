package xenapi

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/xenflow/xenflow/xenapi/internal/xmlrpc"
)

// Paths of xapi's VM metadata handlers (Constants.export_metadata_uri and
// import_metadata_uri).
const (
	ExportMetadataPath = "/export_metadata"
	ImportMetadataPath = "/import_metadata"
)

// MetadataFile is the one member of a metadata-only XVA
// (Xapi_globs.ova_xml_filename).
const MetadataFile = "ova.xml"

// MaxMetadataSize bounds the ova.xml ExportMetadata reads. A VM's
// metadata is a few tens of KiB.
const MaxMetadataSize = 16 << 20

// Metadata is a VM's metadata as xapi's /export_metadata gives it and
// /import_metadata takes it (export.ml, vm_metadata; import.ml,
// header_of_rpc): the objects the VM refers to, each a record in wire form
// whose refs are ids of other objects of the same Metadata ("Ref:0", …)
// or OpaqueRef:NULL.
type Metadata struct {
	// Version is the exporting host's version struct (hostname,
	// product_version, xapi_major, …), kept as exported.
	Version map[string]any
	// Objects are the exported objects, in the exporter's order.
	Objects []*MetadataObject
}

// MetadataObject is one exported object.
type MetadataObject struct {
	// Class is xapi's class name: "VM", "VBD", "VDI", "SR", "VIF",
	// "network", "host", …
	Class string
	// ID is the object's id within the export.
	ID string
	// Snapshot is the object's record in wire form: strings (refs, enums
	// and ints as decimal strings), bools, float64, time.Time,
	// map[string]any and []any.
	Snapshot map[string]any
}

// Str returns a string field of the record ("" when absent or not a
// string).
func (o *MetadataObject) Str(field string) string {
	s, _ := o.Snapshot[field].(string)
	return s
}

// Refs returns a set-of-refs field of the record.
func (o *MetadataObject) Refs(field string) []string {
	list, _ := o.Snapshot[field].([]any)
	out := make([]string, 0, len(list))
	for _, v := range list {
		if s, ok := v.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// Object returns the object with an id, or nil.
func (m *Metadata) Object(id string) *MetadataObject {
	for _, o := range m.Objects {
		if o.ID == id {
			return o
		}
	}
	return nil
}

// Class returns the objects of a class, in order.
func (m *Metadata) Class(class string) []*MetadataObject {
	var out []*MetadataObject
	for _, o := range m.Objects {
		if o.Class == class {
			out = append(out, o)
		}
	}
	return out
}

// Remove drops the objects with these ids.
func (m *Metadata) Remove(ids ...string) {
	drop := make(map[string]bool, len(ids))
	for _, id := range ids {
		drop[id] = true
	}
	kept := m.Objects[:0]
	for _, o := range m.Objects {
		if !drop[o.ID] {
			kept = append(kept, o)
		}
	}
	m.Objects = kept
}

// MetadataError is an export whose content is not a metadata XVA: Field
// names what was wrong ("tar", "ova.xml", "objects[3].class", …).
type MetadataError struct {
	Field  string
	Reason string
	Err    error
}

// Error implements error.
func (e *MetadataError) Error() string {
	s := "xenapi: VM metadata: " + e.Field + ": " + e.Reason
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the cause.
func (e *MetadataError) Unwrap() error { return e.Err }

// ExportMetadataRequest names the VM whose metadata /export_metadata
// gives.
type ExportMetadataRequest struct {
	// VM is the VM's uuid.
	VM string
	// ExportSnapshots also exports the VM's snapshots (xapi's default is
	// true; the request says it either way).
	ExportSnapshots bool
	// ExcludedDeviceTypes leaves devices out, e.g. "VIF" (xapi 24.x and
	// later; older hosts ignore it).
	ExcludedDeviceTypes []string
	// Host is a pool member to ask, "" for the master.
	Host string
}

// ExportMetadata GETs a VM's metadata from /export_metadata (export.ml,
// metadata_handler): a tar whose one member is ova.xml. A VM that is
// suspended comes with its suspend image among its VDIs (preserve_power_state).
// A body that is not such a tar is a *MetadataError.
func (c *Client) ExportMetadata(ctx context.Context, req ExportMetadataRequest) (*Metadata, error) {
	if req.VM == "" {
		return nil, fmt.Errorf("%w: %s: no VM", ErrBadHTTPRequest, ExportMetadataPath)
	}
	q := url.Values{"uuid": {req.VM}, "export_snapshots": {strconv.FormatBool(req.ExportSnapshots)}}
	if len(req.ExcludedDeviceTypes) > 0 {
		q.Set("excluded_device_types", strings.Join(req.ExcludedDeviceTypes, ","))
	}
	resp, err := c.DoHTTP(ctx, HTTPRequest{Method: http.MethodGet, Path: ExportMetadataPath, Query: q, Host: req.Host})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	xml, err := readMetadataTar(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("xenapi: export metadata of VM %s: %w", req.VM, err)
	}
	md, err := ParseMetadata(xml)
	if err != nil {
		return nil, fmt.Errorf("xenapi: export metadata of VM %s: %w", req.VM, err)
	}
	return md, nil
}

// readMetadataTar reads the ova.xml a metadata XVA starts with.
func readMetadataTar(r io.Reader) ([]byte, error) {
	tr := tar.NewReader(r)
	hdr, err := tr.Next()
	if err != nil {
		return nil, &MetadataError{Field: "tar", Reason: "no first member", Err: err}
	}
	if hdr.Name != MetadataFile {
		return nil, &MetadataError{Field: "tar", Reason: fmt.Sprintf("the first member is %q, not %s", hdr.Name, MetadataFile)}
	}
	if hdr.Size > MaxMetadataSize {
		return nil, &MetadataError{Field: MetadataFile, Reason: fmt.Sprintf("%d bytes, more than %d", hdr.Size, MaxMetadataSize)}
	}
	xml, err := io.ReadAll(tr)
	if err != nil {
		return nil, &MetadataError{Field: MetadataFile, Reason: "short", Err: err}
	}
	return xml, nil
}

// ParseMetadata decodes an ova.xml: an XML-RPC struct {version, objects:
// [{class, id, snapshot}]}.
func ParseMetadata(xml []byte) (*Metadata, error) {
	v, err := (&xmlrpc.Decoder{MaxBodySize: MaxMetadataSize}).DecodeValueString(string(xml))
	if err != nil {
		return nil, &MetadataError{Field: MetadataFile, Reason: "not an XML-RPC value", Err: err}
	}
	top, ok := v.(map[string]any)
	if !ok {
		return nil, &MetadataError{Field: MetadataFile, Reason: "a " + xmlrpc.TypeName(v) + ", not a struct"}
	}
	md := &Metadata{}
	md.Version, _ = top["version"].(map[string]any)
	list, ok := top["objects"].([]any)
	if !ok {
		return nil, &MetadataError{Field: "objects", Reason: "missing or not an array"}
	}
	for i, item := range list {
		o, err := parseMetadataObject(item)
		if err != nil {
			return nil, &MetadataError{Field: fmt.Sprintf("objects[%d]%s", i, err.Error()), Reason: "missing or of the wrong type"}
		}
		md.Objects = append(md.Objects, o)
	}
	return md, nil
}

// errField carries the name of a bad field of an object.
type errField string

func (e errField) Error() string { return string(e) }

func parseMetadataObject(v any) (*MetadataObject, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errField("")
	}
	o := &MetadataObject{}
	if o.Class, ok = m["class"].(string); !ok || o.Class == "" {
		return nil, errField(".class")
	}
	if o.ID, ok = m["id"].(string); !ok || o.ID == "" {
		return nil, errField(".id")
	}
	if o.Snapshot, ok = m["snapshot"].(map[string]any); !ok {
		return nil, errField(".snapshot")
	}
	return o, nil
}

// Encode writes the Metadata as an ova.xml.
func (m *Metadata) Encode() ([]byte, error) {
	objs := make([]any, len(m.Objects))
	for i, o := range m.Objects {
		objs[i] = map[string]any{"class": o.Class, "id": o.ID, "snapshot": o.Snapshot}
	}
	version := m.Version
	if version == nil {
		version = map[string]any{}
	}
	s, err := xmlrpc.EncodeValueString(map[string]any{"version": version, "objects": objs})
	if err != nil {
		return nil, &MetadataError{Field: MetadataFile, Reason: "cannot encode", Err: err}
	}
	return []byte(s), nil
}

// xva returns the Metadata as a metadata-only XVA: a tar of ova.xml.
func (m *Metadata) xva() ([]byte, error) {
	xml, err := m.Encode()
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: MetadataFile, Mode: 0o644, Size: int64(len(xml)), Format: tar.FormatUSTAR}); err != nil {
		return nil, err
	}
	if _, err := tw.Write(xml); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// ImportMetadataRequest says how /import_metadata imports.
type ImportMetadataRequest struct {
	// Restore keeps the exported uuids and MACs (import.ml, full_restore);
	// without it the VM gets a fresh uuid and its VIFs fresh MACs.
	Restore bool
	// Force goes on past VDIs it cannot find.
	Force bool
	// DryRun checks and creates nothing.
	DryRun bool
	// VDIMap maps the uuid of a VDI in the export to the uuid of the VDI
	// of this pool the import attaches in its place.
	VDIMap map[string]string
	// Host is a pool member to send to, "" for the master.
	Host string
}

// ImportMetadata PUTs md into /import_metadata (import.ml,
// metadata_handler) and returns the VMs it created. The import runs under
// a task of its own, as xapi reports its outcome only there; xapi removes
// what a failed import created. A cancelled ctx cancels the task.
func (c *Client) ImportMetadata(ctx context.Context, md *Metadata, req ImportMetadataRequest) ([]VMRef, error) {
	body, err := md.xva()
	if err != nil {
		return nil, err
	}
	task, err := c.Task.Create(ctx, "xenflow: import VM metadata", "import_metadata")
	if err != nil {
		return nil, fmt.Errorf("xenapi: create the metadata import's task: %w", err)
	}
	q := url.Values{"task_id": {string(task)}, "restore": {strconv.FormatBool(req.Restore)},
		"force": {strconv.FormatBool(req.Force)}, "dry_run": {strconv.FormatBool(req.DryRun)}}
	keys := make([]string, 0, len(req.VDIMap))
	for k := range req.VDIMap {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		q.Set("vdi:"+k, req.VDIMap[k])
	}
	resp, err := c.DoHTTP(ctx, HTTPRequest{Method: http.MethodPut, Path: ImportMetadataPath, Query: q,
		Body: bytes.NewReader(body), ContentLength: int64(len(body)), Host: req.Host})
	if err != nil {
		// The handler never took the task (or failed it): cancel and drop it.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		_ = c.Task.Cancel(cctx, task)
		cancel()
		c.destroyTask(ctx, task)
		return nil, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	res, err := c.WaitTask(ctx, task, nil)
	if err != nil {
		return nil, fmt.Errorf("xenapi: import VM metadata: %w", err)
	}
	return importedVMs(res.Value)
}

// importedVMs reads the task result of an import: a set of VM refs.
func importedVMs(v any) ([]VMRef, error) {
	if s, ok := v.(string); ok && s == "" {
		return nil, nil
	}
	list, ok := v.([]any)
	if !ok {
		return nil, errors.New("xenapi: import VM metadata: the task's result is a " + xmlrpc.TypeName(v) + ", not a set of VM refs")
	}
	out := make([]VMRef, 0, len(list))
	for _, x := range list {
		s, ok := x.(string)
		if !ok {
			return nil, errors.New("xenapi: import VM metadata: the task's result holds a " + xmlrpc.TypeName(x) + ", not a VM ref")
		}
		out = append(out, VMRef(s))
	}
	return out, nil
}
