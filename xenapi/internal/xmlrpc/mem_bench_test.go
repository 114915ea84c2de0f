package xmlrpc

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
)

// memShape is a response body of about 1 MiB made of one kind of value.
type memShape struct {
	name string
	body []byte
}

// memShapes are the bodies BenchmarkDecodeMemory decodes: xapi's VM
// records, and the cheapest-to-send values that cost the decoder most.
func memShapes(tb testing.TB) []memShape {
	const size = 1 << 20
	array := func(elem string) []byte {
		return []byte(resp("<value><array><data>" + strings.Repeat(elem, size/len(elem)) + "</data></array></value>"))
	}
	var members strings.Builder
	for i := 0; members.Len() < size; i++ {
		fmt.Fprintf(&members, "<member><name>k%d</name><value/></member>", i)
	}
	return []memShape{
		{"vm-records", allRecordsResponse(tb, 100)},
		{"empty-values", array("<value/>")},
		{"empty-strings", array("<value></value>")},
		{"empty-structs", array("<value><struct></struct></value>")},
		{"empty-arrays", array("<value><array><data></data></array></value>")},
		{"short-strings", array("<value>x</value>")},
		{"ints", array("<value><int>123456</int></value>")},
		{"struct-members", []byte(resp("<value><struct>" + members.String() + "</struct></value>"))},
	}
}

// BenchmarkDecodeMemory reports, for each shape, the bytes allocated per
// body byte (alloc-B/body-B) and the heap the decoded value keeps per body
// byte (live-B/body-B): what one hostile answer of the size limit costs.
// Each shape's baseline in the same run, stdlib-tokens, is encoding/xml
// only tokenising the body, building no values.
func BenchmarkDecodeMemory(b *testing.B) {
	for _, s := range memShapes(b) {
		b.Run(s.name, func(b *testing.B) {
			d := &Decoder{}
			live := liveBytes(b, d, s.body) / float64(len(s.body))
			benchAllocPerByte(b, s.body, func() error {
				_, err := d.DecodeResponseBytes(s.body)
				return err
			})
			b.ReportMetric(live, "live-B/body-B")
		})
		b.Run(s.name+"/stdlib-tokens", func(b *testing.B) {
			benchAllocPerByte(b, s.body, func() error { return stdlibTokens(s.body) })
		})
	}
}

// benchAllocPerByte runs op b.N times and reports the bytes it allocated
// per byte of body.
func benchAllocPerByte(b *testing.B, body []byte, op func() error) {
	b.SetBytes(int64(len(body)))
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := op(); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	runtime.ReadMemStats(&m1)
	b.ReportMetric(float64(m1.TotalAlloc-m0.TotalAlloc)/float64(b.N)/float64(len(body)), "alloc-B/body-B")
}

// stdlibTokens tokenises body with encoding/xml.
func stdlibTokens(body []byte) error {
	d := xml.NewDecoder(bytes.NewReader(body))
	for {
		if _, err := d.RawToken(); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
	}
}

// liveBytes returns how much heap the value decoded from body keeps.
func liveBytes(b *testing.B, d *Decoder, body []byte) float64 {
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	v, err := d.DecodeResponseBytes(body)
	if err != nil {
		b.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&m1)
	runtime.KeepAlive(v)
	return float64(int64(m1.HeapAlloc) - int64(m0.HeapAlloc))
}
