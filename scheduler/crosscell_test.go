package scheduler_test

import (
	"fmt"
	"testing"

	"github.com/xenflow/xenflow/scheduler"
)

// crossCellHosts are two hosts in each of cells c1 and c2; c2-h2 has the
// most free RAM, c1-h2 is in an aggregate that overrides the cross-cell
// multiplier with agg.
func crossCellHosts(agg string) []scheduler.HostState {
	var hs []scheduler.HostState
	for _, cell := range []string{"c1", "c2"} {
		for i := 1; i <= 2; i++ {
			h := scheduler.HostState{Host: fmt.Sprintf("%s-h%d", cell, i), Cell: cell, TotalUsableRAMMB: 65536,
				FreeRAMMB: int64(16384 * i), TotalUsableDiskGB: 1000, FreeDiskMB: 1 << 20, VCPUsTotal: 32}
			if cell == "c2" {
				h.FreeRAMMB += 8192
			}
			if h.Host == "c1-h2" && agg != "" {
				h.Aggregates = []scheduler.Aggregate{{Name: "drain", Metadata: map[string]string{
					"cross_cell_move_weight_multiplier": agg}}}
			}
			hs = append(hs, h)
		}
	}
	return hs
}

// TestCrossCellWeigher checks Nova's CrossCellWeigher
// (nova/scheduler/weights/cross_cell.py) with the RAM weigher: by default
// (multiplier 1e6) a host of the source cell wins over a host of another
// cell with more free RAM; a negative multiplier prefers other cells; an
// aggregate's cross_cell_move_weight_multiplier overrides it for its
// hosts; without AllowCrossCellMove it weighs nothing. Alternates are in
// the selected host's cell.
func TestCrossCellWeigher(t *testing.T) {
	neg := -1e6
	cases := []struct {
		name  string
		mult  *float64
		agg   string
		allow bool
		want  string
	}{
		{"default prefers the source cell", nil, "", true, "c1-h2"},
		{"negative multiplier prefers other cells", &neg, "", true, "c2-h2"},
		{"aggregate drains the source cell", nil, "-1000000", true, "c1-h1"},
		{"no cross-cell move: RAM decides", nil, "", false, "c2-h2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := scheduler.DefaultConfig()
			cfg.Weighers = []string{scheduler.RAMWeigherName, scheduler.CrossCellWeigherName}
			if tc.mult != nil {
				cfg.CrossCellMoveWeightMultiplier = *tc.mult
			}
			s, err := scheduler.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			hs, err := scheduler.NewHostSet(crossCellHosts(tc.agg))
			if err != nil {
				t.Fatal(err)
			}
			res, err := s.Select(hs, &scheduler.Request{Flavor: scheduler.Flavor{MemoryMB: 1024, VCPUs: 1, RootGB: 1},
				RequestedCell: "c1", AllowCrossCellMove: tc.allow})
			if err != nil {
				t.Fatal(err)
			}
			sel := res.Selections[0]
			if sel.Host != tc.want {
				t.Fatalf("selected %s, want %s", sel.Host, tc.want)
			}
			cells := map[string]string{"c1-h1": "c1", "c1-h2": "c1", "c2-h1": "c2", "c2-h2": "c2"}
			for _, a := range sel.Alternates {
				if cells[a.Host] != sel.Cell {
					t.Fatalf("alternate %s not in the selected cell %s", a.Host, sel.Cell)
				}
			}
			if len(sel.Alternates) == 0 {
				t.Fatal("no alternate")
			}
		})
	}
}
