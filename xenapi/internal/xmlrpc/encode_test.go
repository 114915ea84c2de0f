package xmlrpc

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

type vmRef string
type vmOp string

func TestEncodeCallExact(t *testing.T) {
	var buf bytes.Buffer
	err := EncodeCall(&buf, "VM.set_memory_static_max", []Value{"OpaqueRef:s", vmRef("OpaqueRef:vm"), "8589934592"})
	if err != nil {
		t.Fatal(err)
	}
	want := `<?xml version="1.0"?>
<methodCall><methodName>VM.set_memory_static_max</methodName><params><param><value>OpaqueRef:s</value></param><param><value>OpaqueRef:vm</value></param><param><value>8589934592</value></param></params></methodCall>
`
	if buf.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", buf.String(), want)
	}
}

func TestEncodeValues(t *testing.T) {
	tests := []struct {
		name string
		in   Value
		want string
	}{
		{"string escaped", `a<b>&"c'`, `<value>a&lt;b&gt;&amp;&quot;c'</value>`},
		{"empty string", "", `<value></value>`},
		{"control characters dropped, CR kept as reference", "a\x01b\tc\nd\re", "<value>ab\tc\nd&#13;e</value>"},
		{"invalid utf-8 replaced", "a\xffb", "<value>a\uFFFDb</value>"},
		{"nil", nil, `<value><nil/></value>`},
		{"bools", Array{true, false}, `<value><array><data><value><boolean>1</boolean></value><value><boolean>0</boolean></value></data></array></value>`},
		{"ints", Array{int64(-1), 2, int32(3), uint16(4)}, `<value><array><data><value><int>-1</int></value><value><int>2</int></value><value><int>3</int></value><value><int>4</int></value></data></array></value>`},
		{"double", 0.1, `<value><double>0.1</double></value>`},
		{"nan and inf", Array{math.NaN(), math.Inf(1), math.Inf(-1)}, `<value><array><data><value><double>nan</double></value><value><double>inf</double></value><value><double>-inf</double></value></data></array></value>`},
		{"time in UTC", time.Date(2025, 3, 19, 5, 16, 24, 0, time.FixedZone("", 3600)), `<value><dateTime.iso8601>20250319T04:16:24Z</dateTime.iso8601></value>`},
		{"base64", []byte("hi"), `<value><base64>aGk=</base64></value>`},
		{"struct sorted", Struct{"b": "2", "a": "1"}, `<value><struct><member><name>a</name><value>1</value></member><member><name>b</name><value>2</value></member></struct></value>`},
		{"map[string]string", map[string]string{"k": "v"}, `<value><struct><member><name>k</name><value>v</value></member></struct></value>`},
		{"map keyed by a named string type", map[vmOp]string{"start": ""}, `<value><struct><member><name>start</name><value></value></member></struct></value>`},
		{"slice of named strings", []vmRef{"OpaqueRef:a"}, `<value><array><data><value>OpaqueRef:a</value></data></array></value>`},
		{"[]string", []string{"x", ""}, `<value><array><data><value>x</value><value></value></data></array></value>`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := EncodeValueString(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestEncodeErrors(t *testing.T) {
	for _, v := range []Value{make(chan int), map[int]string{1: "x"}, struct{}{}, uint64(math.MaxUint64), Struct{"a": Array{func() {}}}} {
		_, err := EncodeValueString(v)
		var ee *EncodeError
		if !errors.As(err, &ee) {
			t.Errorf("%T: got %v, want *EncodeError", v, err)
		}
	}
	// A cycle stops at the depth limit instead of overflowing the stack.
	a := Array{nil}
	a[0] = a
	if _, err := EncodeValueString(a); err == nil {
		t.Error("cyclic value encoded")
	}
}

func TestRoundTrip(t *testing.T) {
	in := Struct{
		"Status": "Success",
		"Value": Struct{
			"OpaqueRef:1": Struct{
				"name_label":        "vm <1> & \"friends\"",
				"name_description":  "",
				"memory_static_max": "8589934592",
				"VCPUs_max":         int64(4),
				"is_a_template":     false,
				"VBDs":              Array{"OpaqueRef:a", "", "OpaqueRef:b"},
				"other_config":      Struct{"": "", "k": "v"},
				"last_boot":         time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC),
				"progress":          0.5,
				"blob":              []byte{0, 1, 2},
				"nothing":           nil,
			},
		},
	}
	var buf bytes.Buffer
	if err := EncodeResponse(&buf, in); err != nil {
		t.Fatal(err)
	}
	got, err := DecodeResponse(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(in, got); diff != "" {
		t.Fatalf("round trip (-in +out):\n%s", diff)
	}

	buf.Reset()
	if err := EncodeCall(&buf, "VM.add_to_other_config", []Value{"s", "OpaqueRef:1", "k", ""}); err != nil {
		t.Fatal(err)
	}
	m, params, err := DecodeCall(&buf)
	if err != nil || m != "VM.add_to_other_config" || !cmp.Equal(params, []Value{"s", "OpaqueRef:1", "k", ""}) {
		t.Fatalf("call round trip: %q %v %v", m, params, err)
	}
}

func TestEnvelope(t *testing.T) {
	var buf bytes.Buffer
	if err := EncodeFailure(&buf, "HANDLE_INVALID", "VM", "OpaqueRef:x"); err != nil {
		t.Fatal(err)
	}
	v, err := DecodeResponse(&buf)
	if err != nil {
		t.Fatal(err)
	}
	val, failure, err := SplitResult(v)
	if err != nil || val != nil || !cmp.Equal(failure, []string{"HANDLE_INVALID", "VM", "OpaqueRef:x"}) {
		t.Fatalf("SplitResult = %v %v %v", val, failure, err)
	}
	buf.Reset()
	if err := EncodeSuccess(&buf, Array{"OpaqueRef:a"}); err != nil {
		t.Fatal(err)
	}
	v, _ = DecodeResponse(&buf)
	val, failure, err = SplitResult(v)
	if err != nil || failure != nil || !cmp.Equal(val, Value(Array{"OpaqueRef:a"})) {
		t.Fatalf("SplitResult = %v %v %v", val, failure, err)
	}
	// Non-string elements in ErrorDescription are formatted, not dropped.
	_, failure, _ = SplitResult(Struct{"Status": "Failure", "ErrorDescription": Array{"X", int64(3), nil}})
	if !cmp.Equal(failure, []string{"X", "3", ""}) {
		t.Fatalf("got %q", failure)
	}
	for _, bad := range []Value{
		"Success",
		Struct{},
		Struct{"Status": "Maybe"},
		Struct{"Status": "Failure"},
		Struct{"Status": "Failure", "ErrorDescription": Array{}},
		Struct{"Status": "Failure", "ErrorDescription": "HANDLE_INVALID"},
	} {
		if _, _, err := SplitResult(bad); !errors.Is(err, ErrBadEnvelope) {
			t.Errorf("SplitResult(%v) = %v, want ErrBadEnvelope", bad, err)
		}
	}
}

func TestEncodeCallLargeIsSingleWrite(t *testing.T) {
	w := &countingWriter{}
	big := strings.Repeat("x", 1<<16)
	if err := EncodeCall(w, "m", []Value{big}); err != nil {
		t.Fatal(err)
	}
	if w.writes != 1 {
		t.Fatalf("%d writes, want 1", w.writes)
	}
}

type countingWriter struct{ writes int }

func (w *countingWriter) Write(p []byte) (int, error) { w.writes++; return len(p), nil }
