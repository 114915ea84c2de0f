package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestGeneratedFilesUpToDate fails when the committed api_gen.go or
// enums_gen.go differ from what the tables generate: run go generate.
func TestGeneratedFilesUpToDate(t *testing.T) {
	files, err := generate()
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join("..", "..", name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is out of date: run go generate ./xenapi", name)
		}
	}
}

func TestGoNames(t *testing.T) {
	tests := map[string]string{
		"get_VBDs": "GetVBDs", "set_VCPUs_at_startup": "SetVCPUsAtStartup", "get_by_uuid": "GetByUUID",
		"get_API_version_major": "GetAPIVersionMajor", "get_SR": "GetSR", "resize_online": "ResizeOnline",
		"pv_in_pvh": "PVInPVH", "cbt_metadata": "CBTMetadata",
	}
	for in, want := range tests {
		if got := goName(in); got != want {
			t.Errorf("goName(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{"vdi": "vdi", "base_vdi": "baseVDI", "ignore_vdis": "ignoreVDIs", "type": "type_", "static_min": "staticMin"} {
		if got := argName(in); got != want {
			t.Errorf("argName(%q) = %q, want %q", in, got, want)
		}
	}
}
