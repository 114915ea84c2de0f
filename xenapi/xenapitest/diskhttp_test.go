package xenapitest

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xenflow/xenflow/internal/oracle"
	"github.com/xenflow/xenflow/vhd"
)

// diskPool is a served pool with a session and a VM whose disk holds
// known data in blocks 0 and 2.
type diskPool struct {
	p    *Pool
	url  string // the master's base URL, without the trailing slash
	s    string // session
	vm   VMInfo
	data []byte // the disk's content
}

const diskSize = 8 << 20

func newDiskPool(t *testing.T, opts Options) *diskPool {
	t.Helper()
	p := newTestPool(t, opts)
	u, err := p.Serve("")
	if err != nil {
		t.Fatal(err)
	}
	d := &diskPool{p: p, url: strings.TrimSuffix(u, "/"), s: login(t, p)}
	d.vm, err = p.AddVM(VMSpec{Name: "disk", Disks: []int64{diskSize}})
	if err != nil {
		t.Fatal(err)
	}
	d.write(t, d.vm.VDIs[0], 4096, bytes.Repeat([]byte("block zero "), 100))
	d.write(t, d.vm.VDIs[0], 2*streamBlockSize+512, bytes.Repeat([]byte{0xA5}, 3*512))
	d.data = d.read(t, d.vm.VDIs[0])
	return d
}

func (d *diskPool) write(t *testing.T, vdi string, off int64, b []byte) {
	t.Helper()
	if err := d.p.WriteVDI(vdi, off, b); err != nil {
		t.Fatal(err)
	}
}

func (d *diskPool) read(t *testing.T, vdi string) []byte {
	t.Helper()
	b, err := d.p.ReadVDI(vdi)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// newVDI makes an empty VDI on host h's SR.
func (d *diskPool) newVDI(t *testing.T, h *Host, size int64) string {
	t.Helper()
	return mustCall(t, d.p, "VDI.create", d.s, map[string]any{
		"name_label": "target", "name_description": "", "SR": h.SR(), "virtual_size": strconv.FormatInt(size, 10),
		"type": "user", "sharable": false, "read_only": false, "other_config": map[string]any{},
	}).(string)
}

// diskURL builds a handler URL with the session and the given parameters.
func (d *diskPool) diskURL(path string, kv ...string) string {
	q := url.Values{"session_id": {d.s}}
	for i := 0; i+1 < len(kv); i += 2 {
		q.Set(kv[i], kv[i+1])
	}
	return d.url + path + "?" + q.Encode()
}

// get downloads an export and fails the test unless it answers 200.
func (d *diskPool) get(t *testing.T, u string) []byte {
	t.Helper()
	resp, err := http.Get(u)
	code, b := readResponse(t, resp, err)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", u, code, b)
	}
	return b
}

// noFollow is a client that hands redirects back to the caller.
var noFollow = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// put sends body with a Content-Length, following a 302 with the same PUT
// (http.Client would turn it into a GET), and returns the status and body.
func put(t *testing.T, u string, body []byte) (int, string) {
	t.Helper()
	for hops := 0; ; hops++ {
		req, err := http.NewRequest(http.MethodPut, u, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := noFollow.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound || hops > 2 {
			return resp.StatusCode, string(b)
		}
		u = resp.Header.Get("Location")
	}
}

// openStream opens a VHD stream saved to a file with package vhd.
func openStream(t *testing.T, b []byte) *vhd.Disk {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "s.vhd"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	disk, err := vhd.Open(vhd.DirFS(dir), "s.vhd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { disk.Close() })
	return disk
}

func readDisk(t *testing.T, r io.ReaderAt, size int64) []byte {
	t.Helper()
	b := make([]byte, size)
	if _, err := r.ReadAt(b, 0); err != nil && err != io.EOF {
		t.Fatal(err)
	}
	return b
}

// TestExportImportRoundTrip exports a disk in each format, checks what was
// sent, imports it onto a new VDI of another host and checks the content
// moved, byte for byte.
func TestExportImportRoundTrip(t *testing.T) {
	d := newDiskPool(t, Options{Hosts: 2})
	for _, tc := range []struct {
		format  string
		wantLen int64
	}{
		{"raw", diskSize},
		// Footer copy, header, BAT (4 entries, one sector), the two
		// written blocks with their bitmaps, the footer.
		{"vhd", 512 + 1024 + 512 + 2*(512+streamBlockSize) + 512},
	} {
		t.Run(tc.format, func(t *testing.T) {
			got := d.get(t, d.diskURL(ExportRawVDIPath, "vdi", d.vm.VDIs[0], "format", tc.format))
			if int64(len(got)) != tc.wantLen {
				t.Fatalf("export of %d bytes, want %d", len(got), tc.wantLen)
			}
			content := got
			if tc.format == "vhd" {
				disk := openStream(t, got)
				if disk.Type() != vhd.DiskDynamic || disk.Size() != diskSize || disk.AllocatedBlocks() != 2 {
					t.Fatalf("stream: type %s size %d blocks %d", disk.Type(), disk.Size(), disk.AllocatedBlocks())
				}
				content = readDisk(t, disk, diskSize)
			}
			if !bytes.Equal(content, d.data) {
				t.Fatal("exported content differs from the disk")
			}
			target := d.newVDI(t, d.p.Hosts()[1], diskSize)
			code, body := put(t, d.diskURL(ImportRawVDIPath, "vdi", target, "format", tc.format), got)
			if code != http.StatusOK {
				t.Fatalf("import: %d %s", code, body)
			}
			if !bytes.Equal(d.read(t, target), d.data) {
				t.Fatal("imported VDI differs from the source")
			}
		})
	}
}

// TestExportDelta checks that export with base sends a differencing VHD of
// exactly the blocks that differ, which applied onto a copy of the base
// gives the VDI; and that a base of another chain is refused.
func TestExportDelta(t *testing.T) {
	d := newDiskPool(t, Options{})
	vdi := d.vm.VDIs[0]
	snap := mustCall(t, d.p, "VDI.snapshot", d.s, vdi).(string)
	d.write(t, vdi, 3*streamBlockSize, []byte("new block after the snapshot"))
	d.write(t, vdi, 0, []byte("changed in block zero"))
	// A block written only on the snapshot's side must be sent too, so
	// that the base's change is undone.
	d.write(t, snap, 1*streamBlockSize, []byte("only in the snapshot"))
	want := d.read(t, vdi)

	delta := d.get(t, d.diskURL(ExportRawVDIPath, "vdi", vdi, "format", "vhd", "base", snap))
	disk := openStream(t, delta)
	h, _ := disk.Header()
	snapUUID, snapName := d.fileOf(t, snap)
	if disk.Type() != vhd.DiskDifferencing || h.ParentUUID != snapUUID || h.ParentName != snapName {
		t.Fatalf("delta: type %s parent %s %q, want differencing over %s %q", disk.Type(), h.ParentUUID, h.ParentName, snapUUID, snapName)
	}
	if n := disk.AllocatedBlocks(); n != 3 {
		t.Fatalf("delta holds %d blocks, want the 3 written on either side since the snapshot", n)
	}

	// The base's full export, then the delta, onto a new VDI.
	target := d.newVDI(t, d.p.Master(), diskSize)
	for _, body := range [][]byte{d.get(t, d.diskURL(ExportRawVDIPath, "vdi", snap, "format", "vhd")), delta} {
		if code, msg := put(t, d.diskURL(ImportRawVDIPath, "vdi", target, "format", "vhd"), body); code != http.StatusOK {
			t.Fatalf("import: %d %s", code, msg)
		}
	}
	if !bytes.Equal(d.read(t, target), want) {
		t.Fatal("base + delta differs from the VDI")
	}

	// A delta against itself is empty; against an unrelated VDI refused.
	self := openStream(t, d.get(t, d.diskURL(ExportRawVDIPath, "vdi", vdi, "format", "vhd", "base", vdi)))
	if self.AllocatedBlocks() != 0 {
		t.Fatalf("delta against itself holds %d blocks", self.AllocatedBlocks())
	}
	other, err := d.p.AddVM(VMSpec{Name: "other", Disks: []int64{diskSize}})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(d.diskURL(ExportRawVDIPath, "vdi", vdi, "format", "vhd", "base", other.VDIs[0]))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError || !strings.Contains(string(b), "Server_error(VDI_IO_ERROR") {
		t.Fatalf("unrelated base: %d %s", resp.StatusCode, b)
	}
}

// TestImportTouchesOnlyStreamSectors imports a VHD holding one sector onto
// a VDI with data: only that sector changes, as vhd-tool serve writes.
func TestImportTouchesOnlyStreamSectors(t *testing.T) {
	d := newDiskPool(t, Options{})
	dir := t.TempDir()
	src, err := vhd.Create(vhd.DirFS(dir), "one.vhd", diskSize, nil)
	if err != nil {
		t.Fatal(err)
	}
	sector := bytes.Repeat([]byte{0x5A}, 512)
	if _, err := src.WriteAt(sector, 4096+512); err != nil {
		t.Fatal(err)
	}
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	body, err := os.ReadFile(filepath.Join(dir, "one.vhd"))
	if err != nil {
		t.Fatal(err)
	}
	if code, msg := put(t, d.diskURL(ImportRawVDIPath, "vdi", d.vm.VDIs[0], "format", "vhd"), body); code != http.StatusOK {
		t.Fatalf("import: %d %s", code, msg)
	}
	want := append([]byte(nil), d.data...)
	copy(want[4096+512:], sector)
	if !bytes.Equal(d.read(t, d.vm.VDIs[0]), want) {
		t.Fatal("import changed more (or less) than the stream's sector")
	}
}

// TestDiskHTTPErrors checks every refusal and its HTTP status.
func TestDiskHTTPErrors(t *testing.T) {
	d := newDiskPool(t, Options{SRSize: 4 << 40})
	vdi := d.vm.VDIs[0]
	huge := d.newVDI(t, d.p.Master(), MaxVHDSize+streamBlockSize)
	other := login(t, d.p)
	mustCall(t, d.p, "session.logout", other)
	vhdBody := d.get(t, d.diskURL(ExportRawVDIPath, "vdi", vdi, "format", "vhd"))
	plain := func(path string, kv ...string) string {
		q := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			q.Set(kv[i], kv[i+1])
		}
		return d.url + path + "?" + q.Encode()
	}
	for _, tc := range []struct {
		name     string
		method   string
		url      string
		body     []byte
		chunked  bool
		auth     [2]string
		status   int
		wantBody string
	}{
		{name: "no credentials", method: "GET", url: plain(ExportRawVDIPath, "vdi", vdi), status: 401},
		{name: "logged out session", method: "GET", url: plain(ExportRawVDIPath, "vdi", vdi, "session_id", other), status: 401},
		{name: "wrong basic auth", method: "GET", url: plain(ExportRawVDIPath, "vdi", vdi), auth: [2]string{"root", "wrong"}, status: 401},
		{name: "basic auth", method: "GET", url: plain(ExportRawVDIPath, "vdi", vdi, "format", "vhd"), auth: [2]string{d.p.User(), d.p.Password()}, status: 200},
		{name: "vdi by uuid", method: "GET", url: d.diskURL(ExportRawVDIPath, "vdi", d.uuidOf(t, vdi), "format", "vhd"), status: 200},
		{name: "unknown vdi", method: "GET", url: d.diskURL(ExportRawVDIPath, "vdi", "OpaqueRef:nothing"), status: 500, wantBody: "Server_error(UUID_INVALID, [ VDI; OpaqueRef:nothing ])"},
		{name: "unknown base", method: "GET", url: d.diskURL(ExportRawVDIPath, "vdi", vdi, "format", "vhd", "base", "nope"), status: 500, wantBody: "UUID_INVALID"},
		{name: "unknown format", method: "GET", url: d.diskURL(ExportRawVDIPath, "vdi", vdi, "format", "qcow3"), status: 404},
		{name: "unknown import format", method: "PUT", url: d.diskURL(ImportRawVDIPath, "vdi", vdi, "format", "tar"), body: vhdBody, status: 404},
		{name: "export too large", method: "GET", url: d.diskURL(ExportRawVDIPath, "vdi", huge, "format", "vhd"), status: 500, wantBody: "Server_error(VDI_TOO_LARGE, [ " + huge + "; 2190433320960 ])"},
		{name: "import too large", method: "PUT", url: d.diskURL(ImportRawVDIPath, "vdi", huge, "format", "vhd"), body: vhdBody, status: 500, wantBody: "VDI_TOO_LARGE"},
		{name: "chunked vhd import", method: "PUT", url: d.diskURL(ImportRawVDIPath, "vdi", vdi, "format", "vhd"), body: vhdBody, chunked: true, status: 403},
		{name: "chunked raw import", method: "PUT", url: d.diskURL(ImportRawVDIPath, "vdi", vdi, "format", "raw"), body: d.data, chunked: true, status: 200},
		{name: "truncated vhd", method: "PUT", url: d.diskURL(ImportRawVDIPath, "vdi", vdi, "format", "vhd"), body: vhdBody[:3000], status: 500, wantBody: "VDI_IO_ERROR"},
		{name: "not a vhd", method: "PUT", url: d.diskURL(ImportRawVDIPath, "vdi", vdi, "format", "vhd"), body: d.data[:4096], status: 500, wantBody: "footer copy"},
		{name: "raw longer than the vdi", method: "PUT", url: d.diskURL(ImportRawVDIPath, "vdi", vdi), body: make([]byte, diskSize+1), status: 500, wantBody: "longer than the VDI"},
		{name: "export by PUT", method: "PUT", url: d.diskURL(ExportRawVDIPath, "vdi", vdi), status: 405},
		{name: "import by GET", method: "GET", url: d.diskURL(ImportRawVDIPath, "vdi", vdi), status: 405},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader
			if tc.body != nil {
				body = bytes.NewReader(tc.body)
				if tc.chunked {
					body = io.MultiReader(body) // hides the length: sent chunked
				}
			}
			req, err := http.NewRequest(tc.method, tc.url, body)
			if err != nil {
				t.Fatal(err)
			}
			if tc.auth[0] != "" {
				req.SetBasicAuth(tc.auth[0], tc.auth[1])
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status || !strings.Contains(string(b), tc.wantBody) {
				t.Fatalf("%d %s, want %d with %q", resp.StatusCode, b, tc.status, tc.wantBody)
			}
			if tc.status == 401 && resp.Header.Get("WWW-Authenticate") == "" {
				t.Fatal("401 without WWW-Authenticate")
			}
		})
	}
	// The refusals left the disk as it was (the chunked raw import wrote
	// the same bytes back).
	if !bytes.Equal(d.read(t, vdi), d.data) {
		t.Fatal("a refused request changed the disk")
	}
	for _, c := range d.p.Calls() {
		if strings.Contains(c.Args, d.s) {
			t.Fatalf("call log holds the session: %v", c)
		}
	}
}

// fileOf returns the footer UUID and the file name of a VDI's VHD.
func (d *diskPool) fileOf(t *testing.T, vdi string) (vhd.UUID, string) {
	t.Helper()
	file, err := d.p.VDIPath(vdi)
	if err != nil {
		t.Fatal(err)
	}
	disk, err := vhd.Open(vhd.DirFS(filepath.Dir(file)), filepath.Base(file))
	if err != nil {
		t.Fatal(err)
	}
	defer disk.Close()
	return disk.UUID(), filepath.Base(file)
}

func (d *diskPool) uuidOf(t *testing.T, ref string) string {
	t.Helper()
	return recField(t, d.p, ref, "uuid").(string)
}

// TestDiskHTTPTask follows a transfer in the task named by task_id, and
// cancels one.
func TestDiskHTTPTask(t *testing.T) {
	d := newDiskPool(t, Options{})
	vdi := d.vm.VDIs[0]
	t.Run("success", func(t *testing.T) {
		task := mustCall(t, d.p, "task.create", d.s, "export", "").(string)
		d.get(t, d.diskURL(ExportRawVDIPath, "vdi", vdi, "format", "vhd", "task_id", task))
		rec := mustCall(t, d.p, "task.get_record", d.s, task).(map[string]any)
		if rec["status"] != "success" || rec["progress"] != 1.0 {
			t.Fatalf("task %v", rec)
		}
	})
	t.Run("failure", func(t *testing.T) {
		task := mustCall(t, d.p, "task.create", d.s, "import", "").(string)
		code, _ := put(t, d.diskURL(ImportRawVDIPath, "vdi", vdi, "format", "vhd", "task_id", task), []byte("short"))
		rec := mustCall(t, d.p, "task.get_record", d.s, task).(map[string]any)
		if code != 500 || rec["status"] != "failure" || rec["error_info"].([]any)[0] != ErrVDIIOError {
			t.Fatalf("%d, task %v", code, rec)
		}
	})
	t.Run("cancelled before", func(t *testing.T) {
		task := mustCall(t, d.p, "task.create", d.s, "export", "").(string)
		mustCall(t, d.p, "task.cancel", d.s, task)
		resp, err := http.Get(d.diskURL(ExportRawVDIPath, "vdi", vdi, "task_id", task))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		rec := mustCall(t, d.p, "task.get_record", d.s, task).(map[string]any)
		if resp.StatusCode != 500 || rec["status"] != "cancelled" || rec["error_info"].([]any)[0] != ErrTaskCancelled {
			t.Fatalf("%d, task %v", resp.StatusCode, rec)
		}
	})
	t.Run("cancelled during", func(t *testing.T) {
		// The request waits in the injected delay until the cancel.
		d.p.InjectFault(Fault{Method: ImportRawVDIAction, Delay: time.Minute})
		defer d.p.ClearFaults()
		task := mustCall(t, d.p, "task.create", d.s, "import", "").(string)
		before := d.p.CallCount(ImportRawVDIAction)
		go func() {
			for d.p.CallCount(ImportRawVDIAction) == before {
				time.Sleep(time.Millisecond)
			}
			_, _ = d.p.Call(context.Background(), "task.cancel", d.s, task)
		}()
		code, _ := put(t, d.diskURL(ImportRawVDIPath, "vdi", vdi, "task_id", task), bytes.Repeat([]byte{1}, diskSize))
		rec := mustCall(t, d.p, "task.get_record", d.s, task).(map[string]any)
		if code != 500 || rec["status"] != "cancelled" {
			t.Fatalf("%d, task %v", code, rec)
		}
		if !bytes.Equal(d.read(t, vdi), d.data) {
			t.Fatal("a cancelled import wrote")
		}
	})
	t.Run("fault", func(t *testing.T) {
		d.p.FailNth(ExportRawVDIAction, d.p.CallCount(ExportRawVDIAction)+1, ErrVDIIOError, "Device I/O errors")
		defer d.p.ClearFaults()
		resp, err := http.Get(d.diskURL(ExportRawVDIPath, "vdi", vdi))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		calls := d.p.Calls()
		last := calls[len(calls)-1]
		if resp.StatusCode != 500 || last.Method != ExportRawVDIAction || last.Error != ErrVDIIOError {
			t.Fatalf("%d, last call %v", resp.StatusCode, last)
		}
	})
}

// TestDiskHTTPRedirect asks the master for a VDI on another host's local
// SR: it answers 302 to that host, which serves it.
func TestDiskHTTPRedirect(t *testing.T) {
	d := newDiskPool(t, Options{Hosts: 2})
	h2 := d.p.Hosts()[1]
	vm, err := d.p.AddVM(VMSpec{Name: "on2", Host: h2.Name(), Disks: []int64{diskSize}})
	if err != nil {
		t.Fatal(err)
	}
	d.write(t, vm.VDIs[0], 0, []byte("on host 2"))
	want := d.read(t, vm.VDIs[0])
	for _, path := range []string{ExportRawVDIPath, ImportRawVDIPath} {
		u := d.diskURL(path, "vdi", vm.VDIs[0])
		method := http.MethodGet
		if path == ImportRawVDIPath {
			method = http.MethodPut
		}
		req, _ := http.NewRequest(method, u, bytes.NewReader(want))
		resp, err := noFollow.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc := resp.Header.Get("Location")
		if resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, "http://"+h2.Address()+path+"?") {
			t.Fatalf("%s: %d Location %q", path, resp.StatusCode, loc)
		}
	}
	// http.Client follows a GET's redirect.
	if !bytes.Equal(d.get(t, d.diskURL(ExportRawVDIPath, "vdi", vm.VDIs[0])), want) {
		t.Fatal("redirected export differs")
	}
}

// TestVHDStreamHead checks the stream's metadata field by field against
// the format: checksums, offsets and the BAT.
func TestVHDStreamHead(t *testing.T) {
	s := &vhdStream{size: 5 * streamBlockSize, blocks: []uint32{1, 4}, now: time.Unix(1e9, 0)}
	var out bytes.Buffer
	zero := bytes.NewReader(make([]byte, s.size))
	if err := s.writeTo(&out, zero, func(int64) error { return nil }); err != nil {
		t.Fatal(err)
	}
	b := out.Bytes()
	if int64(len(b)) != s.Len() {
		t.Fatalf("wrote %d bytes, Len says %d", len(b), s.Len())
	}
	var head, tail vhd.Footer
	if err := head.UnmarshalBinary(b[:512]); err != nil {
		t.Fatal(err)
	}
	if err := tail.UnmarshalBinary(b[len(b)-512:]); err != nil {
		t.Fatal(err)
	}
	if head != tail || head.CreatorApp.String() != "caml" || head.CurrentSize != uint64(s.size) {
		t.Fatalf("footers %+v / %+v", head, tail)
	}
	var h vhd.Header
	if err := h.UnmarshalBinary(b[512:1536]); err != nil {
		t.Fatal(err)
	}
	for i, want := range []uint32{unusedBAT, 4, unusedBAT, unusedBAT, 4 + (512+streamBlockSize)/512} {
		if got := binary.BigEndian.Uint32(b[1536+4*i:]); got != want {
			t.Errorf("BAT[%d] = %#x, want %#x", i, got, want)
		}
	}
	if fmt.Sprint(h.MaxTableEntries, h.BlockSize, h.TableOffset) != "5 2097152 1536" {
		t.Fatalf("header %+v", h)
	}
}

// TestDiskHTTPQemuImg checks the handlers against qemu-img: what the pool
// exports, qemu-img reads as the disk's bytes; a dynamic VHD qemu-img
// writes, the pool imports.
func TestDiskHTTPQemuImg(t *testing.T) {
	qemu, err := exec.LookPath("qemu-img")
	if err != nil {
		oracle.Missing(t, "qemu-img (Debian package qemu-utils): %v", err)
	}
	d := newDiskPool(t, Options{})
	dir := t.TempDir()
	run := func(args ...string) []byte {
		t.Helper()
		out, err := exec.Command(qemu, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("qemu-img %q: %v\n%s", args, err, out)
		}
		return out
	}
	// vhd-tool writes creator "caml", which qemu before 10.0 sizes by CHS
	// unless told to trust current_size.
	exported := filepath.Join(dir, "export.vhd")
	if err := os.WriteFile(exported, d.get(t, d.diskURL(ExportRawVDIPath, "vdi", d.vm.VDIs[0], "format", "vhd")), 0o600); err != nil {
		t.Fatal(err)
	}
	opts := "driver=vpc,force_size_calc=current_size,file.filename=" + exported
	var info struct {
		Format      string `json:"format"`
		VirtualSize int64  `json:"virtual-size"`
	}
	if err := json.Unmarshal(run("info", "--output=json", "--image-opts", opts), &info); err != nil {
		t.Fatal(err)
	}
	if info.Format != "vpc" || info.VirtualSize != diskSize {
		t.Fatalf("qemu-img info: %+v", info)
	}
	raw := filepath.Join(dir, "export.raw")
	run("convert", "--image-opts", opts, "-O", "raw", raw)
	if got, err := os.ReadFile(raw); err != nil || !bytes.Equal(got, d.data) {
		t.Fatalf("qemu-img reads other bytes than the disk holds (%v)", err)
	}

	// qemu-img writes a dynamic VHD (its size rounded up to a CHS size);
	// the pool imports it.
	src := filepath.Join(dir, "src.raw")
	want := bytes.Repeat([]byte("qemu wrote this "), diskSize/16)
	clear(want[streamBlockSize : 3*streamBlockSize]) // a hole qemu leaves unallocated
	if err := os.WriteFile(src, want, 0o600); err != nil {
		t.Fatal(err)
	}
	qvhd := filepath.Join(dir, "qemu.vhd")
	run("convert", "-f", "raw", "-O", "vpc", "-o", "subformat=dynamic", src, qvhd)
	body, err := os.ReadFile(qvhd)
	if err != nil {
		t.Fatal(err)
	}
	target := d.newVDI(t, d.p.Master(), diskSize)
	if code, msg := put(t, d.diskURL(ImportRawVDIPath, "vdi", target, "format", "vhd"), body); code != http.StatusOK {
		t.Fatalf("import: %d %s", code, msg)
	}
	if !bytes.Equal(d.read(t, target), want) {
		t.Fatal("the imported VDI differs from what qemu-img wrote")
	}
}

// TestDiskHTTPVhdiinfo reads the exported streams with libvhdi's
// vhdiinfo: a full export is a dynamic disk of the VDI's size, a delta a
// differencing disk naming the base's file and UUID as its parent.
func TestDiskHTTPVhdiinfo(t *testing.T) {
	bin, err := exec.LookPath("vhdiinfo")
	if err != nil {
		oracle.Missing(t, "vhdiinfo (Debian package libvhdi-utils): %v", err)
	}
	d := newDiskPool(t, Options{})
	vdi := d.vm.VDIs[0]
	snap := mustCall(t, d.p, "VDI.snapshot", d.s, vdi).(string)
	d.write(t, vdi, 0, []byte("after the snapshot"))
	snapUUID, snapFile := d.fileOf(t, snap)
	for _, tc := range []struct {
		name, base string
		want       []string
	}{
		{"full", "", []string{"Disk type\t\t: Dynamic", "(8388608 bytes)"}},
		{"delta", snap, []string{"Disk type\t\t: Differential", "(8388608 bytes)", "Parent identifier\t: " + snapUUID.String(), "Parent filename\t\t: " + snapFile}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kv := []string{"vdi", vdi, "format", "vhd"}
			if tc.base != "" {
				kv = append(kv, "base", tc.base)
			}
			file := filepath.Join(t.TempDir(), "export.vhd")
			if err := os.WriteFile(file, d.get(t, d.diskURL(ExportRawVDIPath, kv...)), 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(bin, file).CombinedOutput()
			if err != nil {
				t.Fatalf("vhdiinfo: %v\n%s", err, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("vhdiinfo does not say %q:\n%s", w, out)
				}
			}
		})
	}
}

// TestDiskHTTPCutAfter cuts transfers short with Fault.CutAfter: the
// export's body ends at exactly that many bytes (close-delimited, so only
// the task tells; with a Content-Length the client sees the short body),
// the import stops there and fails.
func TestDiskHTTPCutAfter(t *testing.T) {
	for _, withLength := range []bool{false, true} {
		t.Run(fmt.Sprintf("ExportContentLength=%v", withLength), func(t *testing.T) {
			d := newDiskPool(t, Options{ExportContentLength: withLength})
			vdi := d.vm.VDIs[0]
			d.p.InjectFault(Fault{Method: ExportRawVDIAction, CutAfter: 5000})
			task := mustCall(t, d.p, "task.create", d.s, "export", "").(string)
			resp, err := http.Get(d.diskURL(ExportRawVDIPath, "vdi", vdi, "format", "vhd", "task_id", task))
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if len(body) != 5000 || (err != nil) != withLength {
				t.Fatalf("export: %d bytes, error %v", len(body), err)
			}
			rec := mustCall(t, d.p, "task.get_record", d.s, task).(map[string]any)
			if rec["status"] != "failure" || rec["error_info"].([]any)[0] != ErrVDIIOError {
				t.Fatalf("export task %v", rec)
			}

			d.p.ClearFaults()
			stream := d.get(t, d.diskURL(ExportRawVDIPath, "vdi", vdi, "format", "vhd"))
			d.p.InjectFault(Fault{Method: ImportRawVDIAction, CutAfter: 3000, Code: "HOST_OFFLINE", Params: []string{"x"}})
			target := d.newVDI(t, d.p.Master(), diskSize)
			code, msg := put(t, d.diskURL(ImportRawVDIPath, "vdi", target, "format", "vhd"), stream)
			if code != 500 || !strings.Contains(msg, "Server_error(HOST_OFFLINE, [ x ])") {
				t.Fatalf("import: %d %s", code, msg)
			}
		})
	}
}

// BenchmarkDiskHTTP measures the disk handlers' throughput on loopback for
// a 64 MiB disk whose every block holds data, against reading the same
// VDI's content in process (the baseline: the VHD code's own cost).
//
//	go test -run - -bench DiskHTTP -benchtime 5x ./xenapi/xenapitest/
func BenchmarkDiskHTTP(b *testing.B) {
	const size = 64 << 20
	p, err := NewPool(Options{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.Close() })
	u, err := p.Serve("")
	if err != nil {
		b.Fatal(err)
	}
	s, err := p.Call(context.Background(), "session.login_with_password", p.User(), p.Password())
	if err != nil {
		b.Fatal(err)
	}
	vm, err := p.AddVM(VMSpec{Name: "bench", Disks: []int64{size}})
	if err != nil {
		b.Fatal(err)
	}
	data := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	if err := p.WriteVDI(vm.VDIs[0], 0, data); err != nil {
		b.Fatal(err)
	}
	export := fmt.Sprintf("%sexport_raw_vdi?session_id=%s&vdi=%s&format=vhd", u, s, vm.VDIs[0])
	import_ := fmt.Sprintf("%simport_raw_vdi?session_id=%s&vdi=%s&format=vhd", u, s, vm.VDIs[0])
	var stream []byte
	b.Run("read-baseline", func(b *testing.B) {
		b.SetBytes(size)
		buf := make([]byte, streamBlockSize)
		for i := 0; i < b.N; i++ {
			for off := int64(0); off < size; off += streamBlockSize {
				if err := p.ReadVDIAt(vm.VDIs[0], buf, off); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("export", func(b *testing.B) {
		b.SetBytes(size)
		for i := 0; i < b.N; i++ {
			resp, err := http.Get(export)
			if err != nil {
				b.Fatal(err)
			}
			var sink io.Writer = io.Discard
			var buf bytes.Buffer
			if stream == nil {
				buf.Grow(size + 1<<20)
				sink = &buf
			}
			_, err = io.Copy(sink, resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != 200 {
				b.Fatal(resp.Status, err)
			}
			if stream == nil {
				stream = buf.Bytes()
			}
		}
	})
	b.Run("import", func(b *testing.B) {
		b.SetBytes(size)
		for i := 0; i < b.N; i++ {
			req, _ := http.NewRequest(http.MethodPut, import_, bytes.NewReader(stream))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Fatal(resp.Status)
			}
		}
	})
}
