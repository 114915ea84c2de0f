package xenapi

// These tests document why the client does not use github.com/kolo/xmlrpc
// (the XML-RPC library first chosen for it). Each asserts a faulty
// behaviour of kolo/xmlrpc at the pinned version against xapi-style input,
// and the same input through this package's codec. If kolo/xmlrpc is fixed,
// the test fails: look again at using it.

import (
	"bytes"
	"encoding/xml"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	kolo "github.com/kolo/xmlrpc"

	"github.com/xenflow/xenflow/xenapi/internal/xmlrpc"
)

// xapiEnvelope is a response as xapi writes it: every string untyped.
const xapiEnvelope = `<?xml version="1.0"?><methodResponse><params><param><value><struct>` +
	`<member><name>Status</name><value>Success</value></member>` +
	`<member><name>Value</name><value>OpaqueRef:1b6e1f2c-0c5e-4a4b-9f6e-3d2c1b0a9f8e</value></member>` +
	`</struct></value></param></params></methodResponse>`

func TestKoloXMLRPCCannotDecodeUntypedIntoInterface(t *testing.T) {
	var anyV interface{}
	errAny := kolo.Response(xapiEnvelope).Unmarshal(&anyV)
	var m map[string]interface{}
	errMap := kolo.Response(xapiEnvelope).Unmarshal(&m)
	if errAny == nil || errMap == nil {
		t.Fatalf("kolo/xmlrpc now decodes untyped values into interface{} (%v, %v): reconsider using it", errAny, errMap)
	}
	t.Logf("kolo/xmlrpc: %v", errAny)

	v, err := xmlrpc.DecodeResponse(strings.NewReader(xapiEnvelope))
	if err != nil {
		t.Fatal(err)
	}
	if val, _, err := xmlrpc.SplitResult(v); err != nil || val != "OpaqueRef:1b6e1f2c-0c5e-4a4b-9f6e-3d2c1b0a9f8e" {
		t.Fatalf("codec: %v %v", val, err)
	}
}

// emptyValueRecord has an empty string (as xapi sends name_description "")
// in the middle of a struct, and in the middle of an array.
const emptyValueRecord = `<?xml version="1.0"?><methodResponse><params><param><value><struct>` +
	`<member><name>name_label</name><value>vm</value></member>` +
	`<member><name>name_description</name><value></value></member>` +
	`<member><name>PV_args</name><value/></member>` +
	`<member><name>power_state</name><value>Running</value></member>` +
	`</struct></value></param></params></methodResponse>`

const emptyValueArray = `<?xml version="1.0"?><methodResponse><params><param><value><array><data>` +
	`<value>x</value><value></value><value>z</value>` +
	`</data></array></value></param></params></methodResponse>`

func TestKoloXMLRPCMisdecodesEmptyValue(t *testing.T) {
	var rec map[string]string
	err := kolo.Response(emptyValueRecord).Unmarshal(&rec)
	_, hasPower := rec["power_state"]
	if err != nil || hasPower {
		t.Fatalf("kolo/xmlrpc no longer drops the members after an empty value (err %v, record %v): reconsider using it", err, rec)
	}
	t.Logf("kolo/xmlrpc decoded %d of 4 members and no error: %v", len(rec), rec)

	var arr []string
	err = kolo.Response(emptyValueArray).Unmarshal(&arr)
	if err != nil || len(arr) == 3 {
		t.Fatalf("kolo/xmlrpc no longer truncates arrays after an empty value (err %v, %q)", err, arr)
	}
	t.Logf("kolo/xmlrpc decoded the array as %q", arr)

	v, err := xmlrpc.DecodeResponse(strings.NewReader(emptyValueRecord))
	if err != nil {
		t.Fatal(err)
	}
	m := v.(map[string]any)
	if len(m) != 4 || m["power_state"] != "Running" || m["name_description"] != "" || m["PV_args"] != "" {
		t.Fatalf("codec: %v", m)
	}
	v, err = xmlrpc.DecodeResponse(strings.NewReader(emptyValueArray))
	if a := v.([]any); err != nil || len(a) != 3 || a[2] != "z" {
		t.Fatalf("codec: %v %v", v, err)
	}
}

// concurrencyProbe is an XML-RPC handler that records how many requests
// it holds at once. Each request waits until four have been in flight
// together (once that happened, all go: waiting for four still in flight
// would hold the last three for the whole window after the first left) or
// the window has passed.
type concurrencyProbe struct {
	window  time.Duration
	mu      sync.Mutex
	cond    *sync.Cond
	in, max int
}

func newConcurrencyProbe(window time.Duration) *concurrencyProbe {
	p := &concurrencyProbe{window: window}
	p.cond = sync.NewCond(&p.mu)
	return p
}

func (p *concurrencyProbe) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	p.mu.Lock()
	p.in++
	if p.in > p.max {
		p.max = p.in
	}
	p.cond.Broadcast()
	deadline := time.Now().Add(p.window)
	timer := time.AfterFunc(p.window, func() { p.mu.Lock(); p.cond.Broadcast(); p.mu.Unlock() })
	for p.max < 4 && time.Now().Before(deadline) {
		p.cond.Wait()
	}
	timer.Stop()
	p.in--
	p.mu.Unlock()
	w.Header().Set("Content-Type", "text/xml")
	_, _ = io.WriteString(w, `<?xml version="1.0"?><methodResponse><params><param><value><string>ok</string></value></param></params></methodResponse>`)
}

func TestKoloXMLRPCSerialisesCalls(t *testing.T) {
	// kolo: each call waits out the window alone (4 x 300 ms).
	probe := newConcurrencyProbe(300 * time.Millisecond)
	srv := httptest.NewServer(probe)
	defer srv.Close()
	kc, err := kolo.NewClient(srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var s string
			if err := kc.Call("VM.get_all", nil, &s); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if probe.max != 1 {
		t.Fatalf("kolo/xmlrpc ran %d calls at once: reconsider using its client", probe.max)
	}

	// The same four calls through our client's transport run together.
	// Ours: the four meet well within the window and go at once; the long
	// window only matters on a very slow machine.
	probe2 := newConcurrencyProbe(10 * time.Second)
	srv2 := httptest.NewServer(probe2)
	defer srv2.Close()
	c, _ := NewClient(srv2.URL)
	c.session = "OpaqueRef:probe" // no login: the probe answers anything
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// The probe's answer is not a xapi envelope; only the
			// concurrency matters here.
			_, _ = c.rpc(bg(), "VM.get_all", []any{"OpaqueRef:probe"})
		}()
	}
	wg.Wait()
	if probe2.max != 4 {
		t.Fatalf("our client ran %d calls at once, want 4", probe2.max)
	}
}

func TestKoloXMLRPCDoesNotEscapeMemberNames(t *testing.T) {
	args := map[string]string{"a&b<c>": "x"}
	body, err := kolo.EncodeMethodCall("VM.set_other_config", "OpaqueRef:s", args)
	if err != nil {
		t.Fatal(err)
	}
	if wellFormed(body) {
		t.Fatalf("kolo/xmlrpc now escapes member names: reconsider using its encoder\n%s", body)
	}
	ours, err := xmlrpc.AppendCall(nil, "VM.set_other_config", []any{"OpaqueRef:s", args})
	if err != nil || !wellFormed(ours) {
		t.Fatalf("codec output not well-formed: %v\n%s", err, ours)
	}
}

func TestKoloXMLRPCEncodesTimeWithoutZone(t *testing.T) {
	// 05:16:24 at +01:00 is 04:16:24 UTC; xapi reads a zoneless time as UTC.
	at := time.Date(2025, 3, 19, 5, 16, 24, 0, time.FixedZone("CET", 3600))
	body, err := kolo.EncodeMethodCall("m", at)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(body, []byte("20250319T05:16:24<")) {
		t.Fatalf("kolo/xmlrpc now encodes times with a zone or in UTC: %s", body)
	}
	ours, _ := xmlrpc.EncodeValueString(at)
	if !strings.Contains(ours, "20250319T04:16:24Z") {
		t.Fatalf("codec: %s", ours)
	}
}

func TestKoloXMLRPCEncodesNilParamAsEmptyParam(t *testing.T) {
	body, err := kolo.EncodeMethodCall("m", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(body, []byte("<param></param>")) {
		t.Fatalf("kolo/xmlrpc now encodes a nil parameter as a value: %s", body)
	}
	ours, _ := xmlrpc.AppendCall(nil, "m", []any{nil})
	if !bytes.Contains(ours, []byte("<param><value><nil/></value></param>")) {
		t.Fatalf("codec: %s", ours)
	}
}

func wellFormed(b []byte) bool {
	d := xml.NewDecoder(bytes.NewReader(b))
	for {
		_, err := d.Token()
		if err == io.EOF {
			return true
		}
		if err != nil {
			return false
		}
	}
}

// xapi sends ints untyped (memory_static_max, VCPUs_max, virtual_size...).
func TestKoloXMLRPCCannotDecodeUntypedIntoInt64(t *testing.T) {
	const body = `<?xml version="1.0"?><methodResponse><params><param><value><struct>` +
		`<member><name>VCPUs_max</name><value>4</value></member>` +
		`<member><name>memory_static_max</name><value>8589934592</value></member>` +
		`</struct></value></param></params></methodResponse>`
	var rec struct {
		VCPUsMax        int64 `xmlrpc:"VCPUs_max"`
		MemoryStaticMax int64 `xmlrpc:"memory_static_max"`
	}
	err := kolo.Response(body).Unmarshal(&rec)
	if err == nil {
		t.Fatalf("kolo/xmlrpc now decodes untyped ints into int64 (%+v): reconsider using it", rec)
	}
	t.Logf("kolo/xmlrpc: %v", err)

	v, err := xmlrpc.DecodeResponse(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	ours, err := decodeRecord[VMRecord](v, nil, "VM.get_record")
	if err != nil || ours.VCPUsMax != 4 || ours.MemoryStaticMax != 8589934592 {
		t.Fatalf("client: %+v %v", ours, err)
	}
}
