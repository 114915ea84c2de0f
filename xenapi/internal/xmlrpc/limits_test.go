package xmlrpc

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDecodeValueLimit(t *testing.T) {
	repeat := func(elem string, n int) string { return strings.Repeat(elem, n) }
	array := func(n int) string { // n values: the array and n-1 elements
		return "<value><array><data>" + repeat("<value/>", n-1) + "</data></array></value>"
	}
	members := func(n int) string { // n values: the struct and n-1 members
		var b strings.Builder
		for i := 1; i < n; i++ {
			fmt.Fprintf(&b, "<member><name>m%d</name><value></value></member>", i)
		}
		return "<value><struct>" + b.String() + "</struct></value>"
	}
	nested := func(n int) string { // n values: n-1 arrays around an empty struct
		return repeat("<value><array><data>", n-1) + "<value><struct/></value>" + repeat("</data></array></value>", n-1)
	}
	for _, tt := range []struct {
		name  string
		value func(n int) string
	}{
		{"flat array", array},
		{"struct members", members},
		{"nested", nested},
	} {
		t.Run(tt.name, func(t *testing.T) {
			const limit = 41
			d := &Decoder{MaxValues: limit}
			if _, err := d.DecodeResponseBytes([]byte(resp(tt.value(limit)))); err != nil {
				t.Fatalf("%d values with MaxValues %d: %v", limit, limit, err)
			}
			_, err := d.DecodeResponseBytes([]byte(resp(tt.value(limit + 2))))
			var de *DecodeError
			if !errors.Is(err, ErrTooLarge) || !errors.As(err, &de) || !strings.Contains(de.What, "values") {
				t.Fatalf("%d values with MaxValues %d: %v", limit+2, limit, err)
			}
		})
	}
}

// TestDefaultValueLimitFollowsBodySize: without MaxValues, a body may hold
// one value per 32 bytes of MaxBodySize, whatever its own size.
func TestDefaultValueLimitFollowsBodySize(t *testing.T) {
	d := &Decoder{MaxBodySize: 64 << 10}
	many := resp("<value><array><data>" + strings.Repeat("<value/>", 3000) + "</data></array></value>")
	if len(many) > 64<<10 {
		t.Fatal("body over the size limit")
	}
	if _, err := d.DecodeResponseBytes([]byte(many)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("3001 values in a 64 KiB limit: %v", err)
	}
	few := resp("<value><array><data>" + strings.Repeat("<value/>", 2000) + "</data></array></value>")
	if _, err := d.DecodeResponseBytes([]byte(few)); err != nil {
		t.Fatalf("2001 values in a 64 KiB limit: %v", err)
	}
	if got := (&Decoder{}).maxValues(); got != DefaultMaxValues {
		t.Fatalf("zero Decoder allows %d values, want %d", got, DefaultMaxValues)
	}
}

// TestDefaultLimitsHoldTenThousandVMs: VM.get_all_records of 10,000 VMs,
// measured on 100 and scaled, fits the zero Decoder's limits with room to
// spare (BenchmarkDecodeAllRecords10000 decodes the real thing).
func TestDefaultLimitsHoldTenThousandVMs(t *testing.T) {
	body := allRecordsResponse(t, 100)
	p := (&Decoder{}).newParser(body)
	if _, err := p.response(); err != nil {
		t.Fatal(err)
	}
	size, values := int64(len(body))*100, p.values*100
	if size*5/4 > DefaultMaxBodySize || values*5/4 > DefaultMaxValues {
		t.Fatalf("10,000 VMs: %d bytes and %d values; limits %d and %d leave less than 25%% to spare",
			size, values, DefaultMaxBodySize, DefaultMaxValues)
	}
	t.Logf("10,000 VMs: about %d MB and %d values", size/1e6, values)
}

// TestContainersAcrossChunks decodes arrays and structs larger than a
// stack chunk, nested in each other, and compares with what was encoded.
func TestContainersAcrossChunks(t *testing.T) {
	inner := func(n int) Array {
		a := make(Array, n)
		for i := range a {
			a[i] = fmt.Sprint("e", i)
		}
		return a
	}
	s := Struct{}
	for i := 0; i < chunkLen+7; i++ {
		s[fmt.Sprint("k", i)] = Struct{"a": inner(i % 5), "b": "", "c": Array{}, "d": Struct{}}
	}
	want := Array{inner(chunkLen * 2), s, inner(3), Array{s, inner(chunkLen + 1)}, Struct{}, Array{}}
	body, err := AppendResponse(nil, want)
	if err != nil {
		t.Fatal(err)
	}
	got, err := (&Decoder{}).DecodeResponseBytes(body)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Value(want), got); diff != "" {
		t.Fatalf("decoded value differs (-want +got):\n%s", diff)
	}
}
