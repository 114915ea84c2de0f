package xmlrpc

import (
	"bytes"
	"errors"
	"io"
	"math"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func resp(value string) string {
	return `<?xml version="1.0"?>` + "\n<methodResponse><params><param>" + value + "</param></params></methodResponse>\n"
}

func TestDecodeResponseValues(t *testing.T) {
	tests := []struct {
		name  string
		value string
		want  Value
	}{
		{"untyped string", `<value>OpaqueRef:abc</value>`, "OpaqueRef:abc"},
		{"untyped keeps spaces", `<value>  a b </value>`, "  a b "},
		{"empty value", `<value></value>`, ""},
		{"self-closing value", `<value/>`, ""},
		{"self-closing value with space", `<value />`, ""},
		{"typed string", `<value><string>x</string></value>`, "x"},
		{"empty string element", `<value><string></string></value>`, ""},
		{"self-closing string", `<value><string/></value>`, ""},
		{"entities", `<value>a&lt;b&gt;c&amp;d&quot;e&apos;f&#65;&#x42;</value>`, `a<b>c&d"e'fAB`},
		{"cdata", `<value><![CDATA[<x>]]>y</value>`, "<x>y"},
		{"int", `<value><int>-42</int></value>`, int64(-42)},
		{"i4", `<value><i4> 7 </i4></value>`, int64(7)},
		{"i8 beyond int32", `<value><i8>8589934592</i8></value>`, int64(8589934592)},
		{"ex:i8", `<value><ex:i8>9223372036854775807</ex:i8></value>`, int64(math.MaxInt64)},
		{"boolean 1", `<value><boolean>1</boolean></value>`, true},
		{"boolean 0", `<value><boolean>0</boolean></value>`, false},
		{"double", `<value><double>0.25</double></value>`, 0.25},
		{"double nan-free exponent", `<value><double>1e+300</double></value>`, 1e300},
		{"dateTime Z", `<value><dateTime.iso8601>20250319T04:16:24Z</dateTime.iso8601></value>`, time.Date(2025, 3, 19, 4, 16, 24, 0, time.UTC)},
		{"dateTime no zone is UTC", `<value><dateTime.iso8601>19700101T00:00:00</dateTime.iso8601></value>`, time.Unix(0, 0).UTC()},
		{"base64", `<value><base64>aGVs
bG8=</base64></value>`, []byte("hello")},
		{"nil", `<value><nil/></value>`, nil},
		{"ex:nil", `<value><ex:nil/></value>`, nil},
		{"empty struct", `<value><struct></struct></value>`, Struct{}},
		{"self-closing struct", `<value><struct/></value>`, Struct{}},
		{"empty array", `<value><array><data></data></array></value>`, Array{}},
		{"self-closing data", `<value><array><data/></array></value>`, Array{}},
		{
			"struct with empty values keeps every member",
			`<value><struct>
			  <member><name>a</name><value>1</value></member>
			  <member><name>b</name><value></value></member>
			  <member><name>c</name><value/></member>
			  <member><name>d</name><value>3</value></member>
			</struct></value>`,
			Struct{"a": "1", "b": "", "c": "", "d": "3"},
		},
		{
			"array with empty values keeps every element",
			`<value><array><data><value>x</value><value></value><value/><value>z</value></data></array></value>`,
			Array{"x", "", "", "z"},
		},
		{
			"duplicate struct keys: last wins",
			`<value><struct><member><name>restrict_vtpm</name><value>false</value></member><member><name>restrict_vtpm</name><value>true</value></member></struct></value>`,
			Struct{"restrict_vtpm": "true"},
		},
		{
			"nested",
			`<value><struct><member><name>Status</name><value>Success</value></member><member><name>Value</name><value><array><data><value><struct><member><name>k</name><value><i4>1</i4></value></member></struct></value></data></array></value></member></struct></value>`,
			Struct{"Status": "Success", "Value": Array{Struct{"k": int64(1)}}},
		},
		{"comment between elements", `<!-- c --><value>x</value>`, "x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeResponse(strings.NewReader(resp(tt.value)))
			if err != nil {
				t.Fatalf("DecodeResponse: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeResponseVoidAndFault(t *testing.T) {
	v, err := DecodeResponse(strings.NewReader(`<methodResponse><params/></methodResponse>`))
	if err != nil || v != nil {
		t.Fatalf("void response: %v, %v", v, err)
	}
	v, err = DecodeResponse(strings.NewReader(`<methodResponse><params></params></methodResponse>`))
	if err != nil || v != nil {
		t.Fatalf("empty params: %v, %v", v, err)
	}
	var buf bytes.Buffer
	if err := EncodeFault(&buf, 42, "bad <thing>"); err != nil {
		t.Fatal(err)
	}
	_, err = DecodeResponse(&buf)
	var f *Fault
	if !errors.As(err, &f) || f.Code != 42 || f.String != "bad <thing>" {
		t.Fatalf("fault: got %v", err)
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		cause  error
		offset int64
		line   int
	}{
		{"empty body", ``, io.ErrUnexpectedEOF, 0, 1},
		{"not xml", `HTTP 500 <html>`, ErrSyntax, 0, 1},
		{"html error page", "<html><body>500</body></html>", ErrSyntax, 0, 1},
		{"truncated in value", `<methodResponse><params><param><value>abc`, io.ErrUnexpectedEOF, 41, 1},
		{"truncated in end tag", `<methodResponse><params><param><value>abc</val`, io.ErrUnexpectedEOF, 46, 1},
		{"truncated struct", "<methodResponse><params><param><value><struct>\n<member><name>a</name>", io.ErrUnexpectedEOF, 69, 2},
		{"wrong end tag", `<methodResponse><params><param><value>x</value></params>`, ErrSyntax, 47, 1},
		{"bad int", "<methodResponse><params><param>\n<value><int>12x</int></value></param></params></methodResponse>", ErrSyntax, 39, 2},
		{"int overflow", `<methodResponse><params><param><value><int>99999999999999999999</int></value></param></params></methodResponse>`, ErrSyntax, 38, 1},
		{"bad boolean", `<methodResponse><params><param><value><boolean>2</boolean></value></param></params></methodResponse>`, ErrSyntax, 38, 1},
		{"bad date", `<methodResponse><params><param><value><dateTime.iso8601>yesterday</dateTime.iso8601></value></param></params></methodResponse>`, ErrSyntax, 38, 1},
		{"bad base64", `<methodResponse><params><param><value><base64>!!</base64></value></param></params></methodResponse>`, ErrSyntax, 38, 1},
		{"unknown type", `<methodResponse><params><param><value><bignum>1</bignum></value></param></params></methodResponse>`, ErrSyntax, 38, 1},
		{"text before typed", `<methodResponse><params><param><value>x<int>1</int></value></param></params></methodResponse>`, ErrSyntax, 39, 1},
		{"bad entity", `<methodResponse><params><param><value>a&bogus;</value></param></params></methodResponse>`, ErrSyntax, 39, 1},
		{"bad char ref", `<methodResponse><params><param><value>&#xD800;</value></param></params></methodResponse>`, ErrSyntax, 38, 1},
		{"doctype", `<!DOCTYPE x [<!ENTITY a "b">]><methodResponse/>`, ErrSyntax, 0, 1},
		{"trailing garbage", `<methodResponse><params/></methodResponse>junk`, ErrSyntax, 42, 1},
		{"member without value", `<methodResponse><params><param><value><struct><member><name>a</name></member></struct></value></param></params></methodResponse>`, ErrSyntax, 68, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := DecodeResponse(strings.NewReader(tt.body))
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("got %v, %v; want a *DecodeError", v, err)
			}
			if !errors.Is(err, tt.cause) {
				t.Errorf("cause = %v, want %v (%v)", de.Err, tt.cause, err)
			}
			if de.Offset != tt.offset || de.Line != tt.line {
				t.Errorf("at offset %d line %d, want %d line %d (%v)", de.Offset, de.Line, tt.offset, tt.line, err)
			}
		})
	}
}

func TestDecodeLimits(t *testing.T) {
	deep := strings.Repeat("<value><array><data>", 10) + "<value>x</value>" + strings.Repeat("</data></array></value>", 10)
	d := &Decoder{MaxDepth: 9}
	_, err := d.DecodeResponse(strings.NewReader(resp(deep)))
	if !errors.Is(err, ErrTooDeep) {
		t.Fatalf("depth 10 with MaxDepth 9: got %v, want ErrTooDeep", err)
	}
	d.MaxDepth = 10
	if _, err := d.DecodeResponse(strings.NewReader(resp(deep))); err != nil {
		t.Fatalf("depth 10 with MaxDepth 10: %v", err)
	}

	body := resp(`<value>` + strings.Repeat("a", 1000) + `</value>`)
	d = &Decoder{MaxBodySize: int64(len(body) - 1)}
	_, err = d.DecodeResponse(strings.NewReader(body))
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("got %v, want ErrTooLarge", err)
	}
	d.MaxBodySize = int64(len(body))
	if _, err := d.DecodeResponse(strings.NewReader(body)); err != nil {
		t.Fatalf("body at the limit: %v", err)
	}
	// An endless reader is cut at the limit, not read forever.
	d.MaxBodySize = 1 << 20
	_, err = d.DecodeResponse(endless{})
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("endless body: got %v, want ErrTooLarge", err)
	}
}

type endless struct{}

func (endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'a'
	}
	return len(p), nil
}

type failingReader struct{ err error }

func (r failingReader) Read([]byte) (int, error) { return 0, r.err }

func TestDecodeReadError(t *testing.T) {
	boom := errors.New("connection reset")
	_, err := DecodeResponse(io.MultiReader(strings.NewReader("<methodResp"), failingReader{boom}))
	var de *DecodeError
	if !errors.As(err, &de) || !errors.Is(err, boom) || de.Offset != 11 {
		t.Fatalf("got %v, want a DecodeError at 11 wrapping the read error", err)
	}
}

// TestReadBodyDoesNotTrustSizeHint: a peer that announces a body of
// 200 MiB (a Content-Length) and sends a few bytes must not cost 200 MiB.
func TestReadBodyDoesNotTrustSizeHint(t *testing.T) {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	b, err := (&Decoder{}).ReadBody(strings.NewReader("<methodResponse>"), 200<<20)
	runtime.ReadMemStats(&after)
	if err != nil || string(b) != "<methodResponse>" {
		t.Fatalf("%q %v", b, err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 32<<20 { // far below 200 MiB; other tests may allocate meanwhile
		t.Fatalf("reading 16 bytes announced as 200 MiB allocated %d bytes", got)
	}
	// An honest hint still reads the whole body.
	big := strings.Repeat("x", 3*maxPresize)
	b, err = (&Decoder{}).ReadBody(strings.NewReader(big), int64(len(big)))
	if err != nil || len(b) != len(big) {
		t.Fatalf("%d bytes, %v", len(b), err)
	}
}

func TestDecodeCall(t *testing.T) {
	body := `<?xml version='1.0'?>
<methodCall>
<methodName>VM.get_record</methodName>
<params>
<param>
<value><string>OpaqueRef:s</string></value>
</param>
<param>
<value>OpaqueRef:vm</value>
</param>
</params>
</methodCall>
`
	m, params, err := DecodeCall(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if m != "VM.get_record" || !cmp.Equal(params, []Value{"OpaqueRef:s", "OpaqueRef:vm"}) {
		t.Fatalf("got %q %v", m, params)
	}
	for _, b := range []string{
		`<methodCall><methodName>pool.get_all</methodName></methodCall>`,
		`<methodCall><methodName>pool.get_all</methodName><params/></methodCall>`,
		`<methodCall><methodName>pool.get_all</methodName><params></params></methodCall>`,
	} {
		m, params, err := DecodeCall(strings.NewReader(b))
		if err != nil || m != "pool.get_all" || params == nil || len(params) != 0 {
			t.Errorf("%s: got %q %v %v", b, m, params, err)
		}
	}
	for _, name := range []string{"", " ", "\x00", "VM get", "VM.<x>"} {
		body := "<methodCall><methodName>" + strings.ReplaceAll(strings.ReplaceAll(name, "<", "&lt;"), ">", "&gt;") + "</methodName></methodCall>"
		if _, _, err := DecodeCall(strings.NewReader(body)); !errors.Is(err, ErrSyntax) {
			t.Errorf("method name %q: %v", name, err)
		}
		if err := EncodeCall(io.Discard, name, nil); err == nil {
			t.Errorf("EncodeCall accepted method name %q", name)
		}
	}
}

func TestDecodeValueString(t *testing.T) {
	tests := []struct {
		in   string
		want Value
	}{
		{"<value>OpaqueRef:123</value>", "OpaqueRef:123"},
		{"", ""},
		{"  ", ""},
		{"<value/>", ""},
		{"<value><array><data><value>a</value></data></array></value>", Array{"a"}},
	}
	for _, tt := range tests {
		got, err := DecodeValueString(tt.in)
		if err != nil || !cmp.Equal(got, tt.want) {
			t.Errorf("DecodeValueString(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	if _, err := DecodeValueString("<value>x</value><value>y</value>"); !errors.Is(err, ErrSyntax) {
		t.Errorf("two values: %v", err)
	}
	if _, err := DecodeValueString("OpaqueRef:123"); !errors.Is(err, ErrSyntax) {
		t.Errorf("bare text: %v", err)
	}
}

func TestParseDateTime(t *testing.T) {
	plus1 := time.FixedZone("", 3600)
	tests := []struct {
		in   string
		want time.Time
	}{
		{"20250319T04:16:24Z", time.Date(2025, 3, 19, 4, 16, 24, 0, time.UTC)},
		{"20250319T04:16:24", time.Date(2025, 3, 19, 4, 16, 24, 0, time.UTC)},
		{"20250319T05:16:24+01:00", time.Date(2025, 3, 19, 5, 16, 24, 0, plus1)},
		{"20250319T05:16:24+0100", time.Date(2025, 3, 19, 5, 16, 24, 0, plus1)},
		{"2025-03-19T04:16:24Z", time.Date(2025, 3, 19, 4, 16, 24, 0, time.UTC)},
		{"20250319T04:16:24.5Z", time.Date(2025, 3, 19, 4, 16, 24, 5e8, time.UTC)},
	}
	for _, tt := range tests {
		got, err := ParseDateTime(tt.in)
		if err != nil || !got.Equal(tt.want) {
			t.Errorf("ParseDateTime(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}
