package main

import (
	"strings"
	"testing"
)

// TestCrossCell moves the instance from cell1's pool to cell2's with the
// Conductor: the summary names both cells and the cell the instance ends
// in, and the root disk's content is checked where the VM runs.
func TestCrossCell(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "cross-cell resize: cell cell1 -> cell2 (host1 -> host3); confirmed, instance now in cell2 on host3"},
		{[]string{"-revert"}, "cross-cell resize: cell cell1 -> cell2 (host1 -> host3); reverted, instance now in cell1 on host1"},
		{[]string{"-migrate", "-no-confirm"}, "cross-cell migrate: cell cell1 -> cell2 (host1 -> host3); verify_resize, instance now in cell2 on host3"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			out, err := runJob(t, append([]string{"-cross-cell", "-disk-mib", "8"}, tc.args...)...)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out, tc.want) || strings.Count(out, "as before the move") != 2 {
				t.Fatalf("output lacks %q or the two disk checks:\n%s", tc.want, out)
			}
		})
	}
}
