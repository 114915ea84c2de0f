package quota

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// TestUsagePrintsNames: usage printed with fmt names each resource instead
// of showing bare arrays such as InUse:[0 2 4096 0].
func TestUsagePrintsNames(t *testing.T) {
	ctx := context.Background()
	l := newTestLedger(t, newFakeClock())
	id, err := l.Reserve(ctx, "p", "u", Deltas{Cores: 2, RAM: 4096})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Commit(ctx, id); err != nil {
		t.Fatal(err)
	}
	u := mustUsage(t, l, "p")
	tests := []struct {
		name string
		got  string
		want string
	}{
		{"%v usage", fmt.Sprintf("%v", u), "[instances=0 cores=2 ram=4096 disk_gb=0]"},
		{"%+v usage", fmt.Sprintf("%+v", u), "InUse:[instances=0 cores=2 ram=4096 disk_gb=0]"},
		{"%+v limits", fmt.Sprintf("%+v", u.Total), "Limit:[instances=10 cores=20 ram=51200 disk_gb=-1]"},
		{"%s amounts", fmt.Sprintf("%s", Amounts{DiskGB: 7}), "[instances=0 cores=0 ram=0 disk_gb=7]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(tt.got, tt.want) {
				t.Fatalf("%s lacks %q", tt.got, tt.want)
			}
			if strings.Contains(tt.got, "[0 2 4096 0]") {
				t.Fatalf("%s prints a bare array", tt.got)
			}
		})
	}
}
