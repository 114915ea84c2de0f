package xmlrpc

import (
	"bytes"
	"errors"
	"testing"
)

// The seed corpora live in testdata/fuzz/<FuzzName>/.

// checkDecodeErr fails unless err is nil, a *Fault or a *DecodeError.
func checkDecodeErr(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	var de *DecodeError
	var f *Fault
	if !errors.As(err, &de) && !errors.As(err, &f) {
		t.Fatalf("untyped error %T: %v", err, err)
	}
}

// reencodeStable checks that encoding a decoded value reaches a fixed
// point: the first encoding may normalise (characters XML cannot carry are
// dropped, so keys may reorder or merge), after that encode(decode(e)) == e.
func reencodeStable(t *testing.T, v Value) {
	t.Helper()
	round := func(v Value) ([]byte, Value) {
		e, err := AppendResponse(nil, v)
		if err != nil {
			t.Fatalf("encoding a decoded value: %v", err)
		}
		// The size limit fits e exactly; the value limit, by default one
		// per 32 bytes of it, must not: e may hold an empty value in 15.
		v2, err := (&Decoder{MaxBodySize: int64(len(e)) + 1, MaxValues: len(e)}).DecodeResponseBytes(e)
		if err != nil {
			t.Fatalf("decoding our own encoding: %v\n%s", err, e)
		}
		return e, v2
	}
	_, v2 := round(v)
	e2, v3 := round(v2)
	e3, _ := round(v3)
	if !bytes.Equal(e2, e3) {
		t.Fatalf("encoding not stable:\n%s\n%s", e2, e3)
	}
}

func FuzzDecodeResponse(f *testing.F) {
	f.Add([]byte(resp(`<value><struct><member><name>Status</name><value>Success</value></member><member><name>Value</name><value></value></member></struct></value>`)))
	d := &Decoder{MaxBodySize: 1 << 20, MaxDepth: 32}
	f.Fuzz(func(t *testing.T, body []byte) {
		v, err := d.DecodeResponseBytes(body)
		checkDecodeErr(t, err)
		if err == nil {
			reencodeStable(t, v)
			_, _, _ = SplitResult(v)
		}
	})
}

func FuzzDecodeCall(f *testing.F) {
	f.Add([]byte(`<methodCall><methodName>VM.get_record</methodName><params><param><value>s</value></param></params></methodCall>`))
	d := &Decoder{MaxBodySize: 1 << 20, MaxDepth: 32}
	f.Fuzz(func(t *testing.T, body []byte) {
		m, params, err := d.DecodeCallBytes(body)
		checkDecodeErr(t, err)
		if err == nil {
			b, err := AppendCall(nil, m, params)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := d.DecodeCallBytes(b); err != nil {
				t.Fatalf("decoding our own call: %v\n%s", err, b)
			}
		}
	})
}

func FuzzDecodeValueString(f *testing.F) {
	f.Add("<value>OpaqueRef:1</value>")
	d := &Decoder{MaxBodySize: 1 << 20, MaxDepth: 32}
	f.Fuzz(func(t *testing.T, s string) {
		_, err := d.DecodeValueString(s)
		checkDecodeErr(t, err)
	})
}
