package dom0

import (
	"errors"
	"testing"

	"github.com/xenflow/xenflow/vhd"
)

func TestNames(t *testing.T) {
	u := mustUUID("0F8E4B1C-1111-4A4A-8B8B-000000000001")
	if p, err := SRPath(u); err != nil || p != "/var/run/sr-mount/0f8e4b1c-1111-4a4a-8b8b-000000000001" {
		t.Errorf("SRPath: %q %v", p, err)
	}
	if p, err := VDIPath(u, u); err != nil || p != "/var/run/sr-mount/0f8e4b1c-1111-4a4a-8b8b-000000000001/0f8e4b1c-1111-4a4a-8b8b-000000000001.vhd" {
		t.Errorf("VDIPath: %q %v", p, err)
	}
	if _, err := SRPath(vhd.UUID{}); !errors.Is(err, ErrBadName) {
		t.Errorf("null SR: %v", err)
	}
	if _, err := VDIPath(u, vhd.UUID{}); !errors.Is(err, ErrBadName) {
		t.Errorf("null VDI: %v", err)
	}
	for _, l := range []struct {
		l    ChainLabel
		want string
	}{
		{ChainLabel{Instance: u}, "instance0f8e4b1c-1111-4a4a-8b8b-000000000001"},
		{ChainLabel{Instance: u, Ephemeral: 2}, "instance0f8e4b1c-1111-4a4a-8b8b-000000000001_ephemeral_2"},
	} {
		if got := l.l.String(); got != l.want {
			t.Errorf("label %q, want %q", got, l.want)
		}
	}
}

func TestCheckBaseName(t *testing.T) {
	for _, ok := range []string{"0.vhd", "a b", ".x.part", "..."} {
		if err := CheckBaseName(ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"", ".", "..", "a/b", "/etc", "a\x00b", "a\nb", string(make([]byte, 300))} {
		if err := CheckBaseName(bad); !errors.Is(err, ErrBadName) {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestPaths(t *testing.T) {
	for _, tc := range []struct{ in, host, run string }{
		{"/var/run/x", "/var/run/x", "./var/run/x"},
		{"var/run/x", "/var/run/x", "./var/run/x"},
		{"/../../etc/passwd", "/etc/passwd", "./etc/passwd"},
		{"/a/./b//c/", "/a/b/c", "./a/b/c"},
		{"/", "/", "."},
		{"", "/", "."},
	} {
		if got := hostPath(tc.in); got != tc.host {
			t.Errorf("hostPath(%q) = %q, want %q", tc.in, got, tc.host)
		}
		if got := RunPath(tc.in); got != tc.run {
			t.Errorf("RunPath(%q) = %q, want %q", tc.in, got, tc.run)
		}
	}
	for _, bad := range []string{"", "/", "x", "/a/../b", "/a//b", "/a/", "/a\x00"} {
		if err := checkAbs(bad); !errors.Is(err, ErrBadName) {
			t.Errorf("checkAbs(%q) accepted", bad)
		}
	}
	if got := PartName("/images/instance1/0.vhd"); got != "/images/instance1/.0.vhd.part" {
		t.Errorf("PartName: %q", got)
	}
}
