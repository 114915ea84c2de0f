package xenserver

import (
	"fmt"
	"testing"

	"github.com/xenflow/xenflow/compute"
)

// TestEphemeralSizes: Nova's split of ephemeral_gb into disks
// (vm_utils.py, get_ephemeral_disk_sizes).
func TestEphemeralSizes(t *testing.T) {
	for _, tc := range []struct {
		total int
		want  []int
	}{
		{0, nil},
		{1, []int{1}},
		{2000, []int{2000}},
		{2001, []int{2000, 1}},
		{3000, []int{2000, 1000}},
		{1024, []int{1024}},
		{2048, []int{1024, 1024}},
		{4096, []int{1024, 1024, 1024, 1024}},
		{5000, []int{2000, 2000, 1000}},
	} {
		if got := ephemeralSizes(tc.total); fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("ephemeralSizes(%d) = %v, want %v", tc.total, got, tc.want)
		}
	}
}

// TestFinishGrowsEveryDisk: FinishMigration grows the root disk to the
// new flavor's root_gb and the ephemeral disks to its ephemeral_gb, split
// as Nova splits it; a disk already larger than its share stays as it is;
// the guest's data survives.
func TestFinishGrowsEveryDisk(t *testing.T) {
	const gib = int64(1) << 30
	for _, tc := range []struct {
		name        string
		ephemeralGB int
		disks       []int64
		want        []int64 // virtual sizes after the finish, root first
	}{
		{"no ephemeral_gb", 0, []int64{8 << 20, 4 << 20}, []int64{2 * gib, 4 << 20}},
		{"one ephemeral disk", 3, []int64{8 << 20, 4 << 20}, []int64{2 * gib, 3 * gib}},
		{"two ephemeral disks, one share", 1, []int64{8 << 20, 4 << 20, 4 << 20}, []int64{2 * gib, gib, 4 << 20}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, standalone, envOptions{})
			old := &compute.Flavor{ID: "small", MemoryMB: 256, VCPUs: 1, RootGB: 1}
			g := e.addGuest("compute1", guestSpec{running: true, flavor: old, disks: tc.disks})
			newFlavor := &compute.Flavor{ID: "large", MemoryMB: 512, VCPUs: 2, RootGB: 2, EphemeralGB: tc.ephemeralGB}
			r := &resizeRun{e: e, g: g, dest: "compute2", mig: newMigration(g, "compute2", newFlavor)}
			r.migrate(t)
			r.finish(t, true)
			for i, d := range r.info.Disks {
				checkRootSize(t, e, "compute2", d.VDI, tc.want[i])
				e.checkDisk("compute2", d.VDI, g.disks[i])
			}
		})
	}
}
