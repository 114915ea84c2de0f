package xenapi

import (
	"archive/tar"
	"bytes"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func tarOf(t *testing.T, members ...[2]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, m := range members {
		if err := tw.WriteHeader(&tar.Header{Name: m[0], Mode: 0o644, Size: int64(len(m[1]))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(m[1])); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestMetadataRoundTrip: what Encode writes, readMetadataTar and
// ParseMetadata read back unchanged, through the XVA Import sends.
func TestMetadataRoundTrip(t *testing.T) {
	md := &Metadata{
		Version: map[string]any{"hostname": "host1", "xapi_major": "1", "export_vsn": "2"},
		Objects: []*MetadataObject{
			{Class: "VM", ID: "Ref:0", Snapshot: map[string]any{"uuid": "u", "is_a_snapshot": false, "VBDs": []any{"Ref:1"},
				"other_config": map[string]any{"nova_uuid": "i"}, "HVM_shadow_multiplier": 1.5, "name_label": "a <b> & c"}},
			{Class: "VBD", ID: "Ref:1", Snapshot: map[string]any{"VM": "Ref:0", "VDI": "OpaqueRef:NULL", "empty": true}},
		},
	}
	xva, err := md.xva()
	if err != nil {
		t.Fatal(err)
	}
	xml, err := readMetadataTar(bytes.NewReader(xva))
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseMetadata(xml)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(md, got); d != "" {
		t.Fatalf("round trip (-want +got):\n%s", d)
	}
	if vm := got.Object("Ref:0"); vm.Str("uuid") != "u" || len(vm.Refs("VBDs")) != 1 || len(got.Class("VBD")) != 1 {
		t.Fatalf("accessors: %+v", vm)
	}
	got.Remove("Ref:1")
	if got.Object("Ref:1") != nil || len(got.Objects) != 1 {
		t.Fatalf("Remove left %d objects", len(got.Objects))
	}
}

// TestMetadataBad: an export that is not a metadata XVA is a
// *MetadataError naming what is wrong.
func TestMetadataBad(t *testing.T) {
	obj := func(inner string) string {
		return "<value><struct><member><name>objects</name><value><array><data>" + inner +
			"</data></array></value></member></struct></value>"
	}
	tests := []struct {
		name  string
		body  []byte
		field string
	}{
		{"not a tar", []byte("<html>500</html>"), "tar"},
		{"empty", nil, "tar"},
		{"another first member", tarOf(t, [2]string{"Ref:1/00000000", "x"}), "tar"},
		{"not XML-RPC", tarOf(t, [2]string{MetadataFile, "<value><struct>"}), MetadataFile},
		{"not a struct", tarOf(t, [2]string{MetadataFile, "<value>x</value>"}), MetadataFile},
		{"no objects", tarOf(t, [2]string{MetadataFile, "<value><struct></struct></value>"}), "objects"},
		{"object not a struct", tarOf(t, [2]string{MetadataFile, obj("<value>x</value>")}), "objects[0]"},
		{"no class", tarOf(t, [2]string{MetadataFile, obj("<value><struct><member><name>id</name><value>Ref:0</value></member></struct></value>")}), "objects[0].class"},
		{"no snapshot", tarOf(t, [2]string{MetadataFile, obj("<value><struct><member><name>class</name><value>VM</value></member>" +
			"<member><name>id</name><value>Ref:0</value></member></struct></value>")}), "objects[0].snapshot"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			xml, err := readMetadataTar(bytes.NewReader(tc.body))
			if err == nil {
				_, err = ParseMetadata(xml)
			}
			var me *MetadataError
			if !errors.As(err, &me) || me.Field != tc.field {
				t.Fatalf("got %v, want a MetadataError on %s", err, tc.field)
			}
		})
	}
}

func TestImportedVMs(t *testing.T) {
	tests := []struct {
		in   any
		want []VMRef
		ok   bool
	}{
		{[]any{"OpaqueRef:a", "OpaqueRef:b"}, []VMRef{"OpaqueRef:a", "OpaqueRef:b"}, true},
		{"", nil, true},
		{[]any{}, []VMRef{}, true},
		{"OpaqueRef:a", nil, false},
		{[]any{int64(1)}, nil, false},
	}
	for _, tc := range tests {
		got, err := importedVMs(tc.in)
		if (err == nil) != tc.ok || tc.ok && !cmp.Equal(got, tc.want) {
			t.Errorf("importedVMs(%v) = %v, %v", tc.in, got, err)
		}
	}
}
