package xenapitest

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/xenflow/xenflow/vhd"
	"github.com/xenflow/xenflow/xenapi/internal/xmlrpc"
)

// FuzzHandler posts arbitrary bodies to the XML-RPC endpoint. The text
// SESSION in a body is replaced by a live session ref, so that calls get
// past the session check. Whatever the body, the pool must answer (HTTP
// 200 with a xapi envelope or a fault, or an HTTP error for a body that is
// not XML-RPC) and must not panic or hang.
func FuzzHandler(f *testing.F) {
	call := func(method string, params ...string) string {
		var b strings.Builder
		b.WriteString("<methodCall><methodName>" + method + "</methodName><params>")
		for _, p := range params {
			b.WriteString("<param>" + p + "</param>")
		}
		b.WriteString("</params></methodCall>")
		return b.String()
	}
	s := "<value>SESSION</value>"
	for _, seed := range []string{
		call("session.login_with_password", "<value>root</value>", "<value>xenroot</value>"),
		call("VM.get_all_records", s),
		call("VM.get_record", s, "<value><int>3</int></value>"),
		call("VM.create", s, "<value><struct><member><name>name_label</name><value>x</value></member></struct></value>"),
		call("VDI.create", s, "<value><struct><member><name>virtual_size</name><value><array><data/></array></value></member></struct></value>"),
		call("VBD.create", s, "<value><struct><member><name>VM</name><value><nil/></value></member></struct></value>"),
		call("event.from", s, "<value><array><data><value>*</value></data></array></value>", "<value></value>", "<value><double>0.01</double></value>"),
		call("event.from", s, "<value><array><data><value>vm/x</value></data></array></value>", "<value>9,9</value>", "<value><double>1e300</double></value>"),
		call("Async.VM.start", s, "<value>OpaqueRef:NULL</value>", "<value><boolean>0</boolean></value>", "<value><boolean>1</boolean></value>"),
		call("VM.set_memory_limits", s, "<value>x</value>", "<value>-1</value>", "<value>1</value>", "<value>2</value>", "<value>3</value>"),
		call("VM.get_all_records_where", s, `<value>field "name__label"="a" or not (true and false)</value>`),
		call("VM.get_all_records_where", s, `<value>field "x</value>`),
		call("task.cancel", s, "<value>OpaqueRef:NULL</value>"),
		call("SR.scan", s, "<value>OpaqueRef:NULL</value>"),
		call("VM_get_all", s),
		call("system.listMethods"),
		"<methodCall><methodName>",
		"",
	} {
		f.Add(seed)
	}
	p, err := NewPool(Options{Dir: f.TempDir(), Hosts: 2, SRSize: 256 << 20})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { p.Close() })
	if _, err := p.AddVM(VMSpec{Name: "fuzz", Disks: []int64{4 << 20}, Running: true}); err != nil {
		f.Fatal(err)
	}
	h := p.Handler()
	f.Fuzz(func(t *testing.T, body string) {
		sv, err := p.Call(context.Background(), "session.login_with_password", p.User(), p.Password())
		if err != nil {
			t.Fatal(err)
		}
		sess := sv.(string)
		defer p.Call(context.Background(), "session.logout", sess)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(strings.ReplaceAll(body, "SESSION", sess))).WithContext(ctx)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if ctx.Err() != nil {
			return // a call that waits (event.from) was cut off
		}
		if rec.Code != http.StatusOK {
			if rec.Code < 400 {
				t.Fatalf("HTTP %d", rec.Code)
			}
			return
		}
		v, err := xmlrpc.DecodeResponse(rec.Body)
		if err != nil {
			if _, ok := err.(*xmlrpc.Fault); ok {
				return
			}
			t.Fatalf("undecodable answer: %v", err)
		}
		env, ok := v.(map[string]any)
		if !ok || (env["Status"] != "Success" && env["Status"] != "Failure") {
			t.Fatalf("not an envelope: %v", v)
		}
		if env["Status"] == "Failure" {
			d, ok := env["ErrorDescription"].([]any)
			if !ok || len(d) == 0 {
				t.Fatalf("bad ErrorDescription: %v", env)
			}
		}
	})
}

// memDisk is a virtual disk in memory, for the stream parser.
type memDisk []byte

func (m memDisk) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > int64(len(m)) {
		return 0, io.EOF
	}
	return copy(p, m[off:]), nil
}

func (m memDisk) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > int64(len(m)) {
		return 0, errors.New("write outside the disk")
	}
	return copy(m[off:], p), nil
}

// smallStream builds a VHD stream of 4 KiB blocks (the pool sends 2 MiB
// ones, too big for a fuzzer's inputs): a 64 KiB disk whose block 1 holds
// data in its first 8 sectors only.
func smallStream(tb testing.TB) []byte {
	const size, bs = 64 << 10, 4096
	ft := vhd.Footer{Features: 2, FormatVersion: vhd.Version(1, 0), DataOffset: 512, CreatorApp: creatorCaml,
		OriginalSize: size, CurrentSize: size, Geometry: vhd.CHS(size), DiskType: vhd.DiskDynamic}
	copy(ft.Cookie[:], "conectix")
	h := vhd.Header{DataOffset: ^uint64(0), TableOffset: 1536, HeaderVersion: vhd.Version(1, 0), MaxTableEntries: size / bs, BlockSize: bs}
	copy(h.Cookie[:], "cxsparse")
	fb, _ := ft.MarshalBinary()
	hb, err := h.MarshalBinary()
	if err != nil {
		tb.Fatal(err)
	}
	out := append(append(append([]byte{}, fb...), hb...), bytes.Repeat([]byte{0xFF}, 512)...)
	binary.BigEndian.PutUint32(out[1536+4:], uint32(len(out)/512))
	bitmap := make([]byte, 512)
	bitmap[0] = 0xFF
	out = append(append(out, bitmap...), bytes.Repeat([]byte("data"), bs/4)...)
	return append(out, fb...)
}

// FuzzApplyVHDStream feeds arbitrary bytes to the VHD import parser: it
// must return (an error or not) without panicking, whatever the stream
// claims, and never write outside the disk.
func FuzzApplyVHDStream(f *testing.F) {
	const size = 64 << 10
	g := smallStream(f)
	for _, seed := range [][]byte{g, g[:2048], g[:len(g)-600], []byte("conectix"), nil} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		dst := make(memDisk, size)
		err := applyVHDStream(context.Background(), bytes.NewReader(b), dst, size, func(int64) error { return nil })
		if bytes.Equal(b, g) && (err != nil || !bytes.Equal(dst[4096:8192], bytes.Repeat([]byte("data"), 1024)) || !allZero(dst[:4096])) {
			t.Fatalf("the well-formed stream: %v", err)
		}
	})
}
