package quota

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestResizeDeltas(t *testing.T) {
	small := Flavor{VCPUs: 2, MemoryMB: 4096, RootGB: 20, EphemeralGB: 0}
	wide := Flavor{VCPUs: 4, MemoryMB: 2048, RootGB: 40, EphemeralGB: 10}
	big := Flavor{VCPUs: 8, MemoryMB: 8192, RootGB: 80}
	tests := []struct {
		name     string
		newF     Flavor
		oldF     Flavor
		opts     []DeltaOption
		upsize   Deltas
		downsize Deltas
		reverse  Deltas
	}{
		{
			// The reference's worked example.
			name: "2vcpu-4096 to 4vcpu-2048",
			newF: wide, oldF: small,
			upsize:   Deltas{Cores: 2},
			downsize: Deltas{RAM: -2048},
			reverse:  Deltas{Cores: -2},
		},
		{
			name: "pure upsize",
			newF: big, oldF: small,
			upsize:   Deltas{Cores: 6, RAM: 4096},
			downsize: Deltas{},
			reverse:  Deltas{Cores: -6, RAM: -4096},
		},
		{
			name: "pure downsize",
			newF: small, oldF: big,
			upsize:   Deltas{},
			downsize: Deltas{Cores: -6, RAM: -4096},
			reverse:  Deltas{},
		},
		{
			name: "cold migrate reserves nothing",
			newF: wide, oldF: wide,
			upsize: Deltas{}, downsize: Deltas{}, reverse: Deltas{},
		},
		{
			name: "disk counted on request",
			newF: wide, oldF: small, opts: []DeltaOption{WithDisk()},
			upsize:   Deltas{Cores: 2, DiskGB: 30},
			downsize: Deltas{RAM: -2048},
			reverse:  Deltas{Cores: -2, DiskGB: -30},
		},
		{
			name: "disk shrinks",
			newF: Flavor{VCPUs: 2, MemoryMB: 4096, RootGB: 10}, oldF: small, opts: []DeltaOption{WithDisk()},
			upsize:   Deltas{},
			downsize: Deltas{DiskGB: -10},
			reverse:  Deltas{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.upsize, UpsizeDelta(tc.newF, tc.oldF, tc.opts...)); diff != "" {
				t.Errorf("UpsizeDelta (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.downsize, DownsizeDelta(tc.newF, tc.oldF, tc.opts...)); diff != "" {
				t.Errorf("DownsizeDelta (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.reverse, ReverseUpsizeDelta(tc.newF, tc.oldF, tc.opts...)); diff != "" {
				t.Errorf("ReverseUpsizeDelta (-want +got):\n%s", diff)
			}
			// Only the signs of sense and compare matter.
			if diff := cmp.Diff(tc.upsize, ResizeQuotaDelta(tc.newF, tc.oldF, 7, 3, tc.opts...)); diff != "" {
				t.Errorf("ResizeQuotaDelta(7, 3) (-want +got):\n%s", diff)
			}
			if got := ResizeQuotaDelta(tc.newF, tc.oldF, 0, 1, tc.opts...); len(got) != 0 {
				t.Errorf("ResizeQuotaDelta with sense 0 = %v, want none", got)
			}
		})
	}
}

// TestChargeAfterEachPath checks the net effect of Nova's resize quota steps
// (nova/compute/utils.py upsize_quota_delta, downsize_quota_delta,
// reverse_upsize_quota_delta): an
// instance is charged max(old, new) between finish_resize and
// confirm/revert, new after a confirm and old after a revert, for random
// flavors.
func TestChargeAfterEachPath(t *testing.T) {
	fl := []Flavor{
		{VCPUs: 1, MemoryMB: 512, RootGB: 1},
		{VCPUs: 2, MemoryMB: 4096, RootGB: 20},
		{VCPUs: 4, MemoryMB: 2048, RootGB: 40, EphemeralGB: 10},
		{VCPUs: 8, MemoryMB: 16384, RootGB: 80},
		{VCPUs: 2, MemoryMB: 4096, RootGB: 20},
	}
	add := func(a Amounts, d Deltas) Amounts {
		for r, v := range d {
			a[r] += v
		}
		return a
	}
	for _, oldF := range fl {
		for _, newF := range fl {
			for _, opts := range [][]DeltaOption{nil, {WithDisk()}} {
				base := InstanceCharge("u", oldF, opts...).Amount
				verify := add(base, UpsizeDelta(newF, oldF, opts...))
				if want := ResizeCharge("u", oldF, newF, opts...).Amount; verify != want {
					t.Errorf("%v→%v: VERIFY_RESIZE charge %v, want max %v", oldF, newF, verify, want)
				}
				if got, want := add(verify, DownsizeDelta(newF, oldF, opts...)), InstanceCharge("u", newF, opts...).Amount; got != want {
					t.Errorf("%v→%v: after confirm %v, want new %v", oldF, newF, got, want)
				}
				if got := add(verify, ReverseUpsizeDelta(newF, oldF, opts...)); got != base {
					t.Errorf("%v→%v: after revert %v, want old %v", oldF, newF, got, base)
				}
			}
		}
	}
}

func TestResourceNames(t *testing.T) {
	for _, r := range Resources() {
		got, err := ParseResource(r.String())
		if err != nil || got != r {
			t.Errorf("ParseResource(%q) = %v, %v", r.String(), got, err)
		}
		b, err := r.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var back Resource
		if err := back.UnmarshalText(b); err != nil || back != r {
			t.Errorf("text round trip of %v: %v, %v", r, back, err)
		}
	}
	want := []string{"instances", "cores", "ram", "disk_gb"}
	for i, r := range Resources() {
		if r.String() != want[i] {
			t.Errorf("resource %d is %q, want %q", i, r, want[i])
		}
	}
	if _, err := ParseResource("floating_ips"); !errorsIs(err, ErrUnknownResource) {
		t.Errorf("ParseResource(floating_ips) error = %v, want ErrUnknownResource", err)
	}
	if _, err := Resource(9).MarshalText(); !errorsIs(err, ErrUnknownResource) {
		t.Errorf("MarshalText(9) error = %v", err)
	}
	if got := (Deltas{RAM: -2048, Cores: 2}).String(); got != "cores=+2 ram=-2048" {
		t.Errorf("Deltas.String = %q", got)
	}
}
