package statemachine

import (
	"os"
	"path/filepath"
	"sort"
	"testing"
)

// TestDocsUpToDate regenerates the state diagrams in memory and fails when
// the committed files under docs/statediagrams differ, or when a file there
// is not generated any more.
func TestDocsUpToDate(t *testing.T) {
	dir := filepath.Join("..", "docs", "statediagrams")
	want := RenderDocs()
	names := make([]string, 0, len(want))
	for n := range want {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		got, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			t.Errorf("%s: %v (run: go run ./examples/statediagram -o docs/statediagrams)", n, err)
			continue
		}
		if string(got) != want[n] {
			t.Errorf("%s is out of date with the flow tables (run: go run ./examples/statediagram -o docs/statediagrams)", n)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if _, ok := want[e.Name()]; !ok {
			t.Errorf("%s in %s is not generated from any flow; remove it", e.Name(), dir)
		}
	}
}

func TestFlowMachinesBuild(t *testing.T) {
	for _, f := range Flows() {
		if f.Machine() == nil || len(f.Machine().Transitions()) != len(f.Transitions) {
			t.Errorf("flow %s: its machine is not its table", f.Name)
		}
	}
}
