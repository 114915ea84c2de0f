package statemachine

import (
	"strings"
	"testing"
)

// TestXenflowRows: the move, confirm and revert tables carry xenflow's
// rows (named "xenflow.*", noted as xenflow's), the other tables none, and
// each row fires from its state to its target.
func TestXenflowRows(t *testing.T) {
	want := map[FlowName]int{FlowResize: 8, FlowMigrate: 8, FlowResizeDown: 8, FlowConfirm: 1, FlowAutoConfirm: 1,
		FlowRevert: 1}
	for _, f := range Flows() {
		n := 0
		for _, row := range f.Transitions {
			if !strings.HasPrefix(string(row.Event), "xenflow.") {
				continue
			}
			n++
			if !strings.HasPrefix(row.Note, "xenflow: ") {
				t.Errorf("%s: row %s --%s--> %s is not noted as xenflow's", f.Name, row.From, row.Event, row.To)
			}
			got, err := f.Machine().Fire(row.From, row.Event, Facts{})
			if err != nil || got.To != row.To {
				t.Errorf("%s: %s --%s--> %v, %v; want %s", f.Name, row.From, row.Event, got.To, err, row.To)
			}
		}
		if n != want[f.Name] {
			t.Errorf("%s: %d xenflow rows, want %d", f.Name, n, want[f.Name])
		}
	}
}
