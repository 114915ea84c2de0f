package quota

import (
	"bytes"
	"context"
	"encoding/json"
	"math/rand"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/xenflow/xenflow/internal/oracle"
)

// TestUpsizeDeltaAgainstNova compares UpsizeDelta with Nova's own
// upsize_quota_delta (python3-nova) on random flavor pairs.
func TestUpsizeDeltaAgainstNova(t *testing.T) {
	const python = "/usr/bin/python3"
	if _, err := os.Stat(python); err != nil {
		oracle.Missing(t, "%s", "python3: "+err.Error())
	}
	probe := exec.Command(python, "-c", "import nova.compute.utils")
	if out, err := probe.CombinedOutput(); err != nil {
		oracle.Missing(t, "%s", "python3-nova: "+err.Error()+": "+string(out))
	}

	rng := rand.New(rand.NewSource(7))
	type novaFlavor struct {
		VCPUs    int64 `json:"vcpus"`
		MemoryMB int64 `json:"memory_mb"`
	}
	var pairs [][2]novaFlavor
	var flavors [][2]Flavor
	sizes := []int64{0, 1, 2, 4, 8, 16}
	mems := []int64{0, 512, 2048, 4096, 8192}
	for i := 0; i < 300; i++ {
		n := Flavor{VCPUs: sizes[rng.Intn(len(sizes))], MemoryMB: mems[rng.Intn(len(mems))]}
		o := Flavor{VCPUs: sizes[rng.Intn(len(sizes))], MemoryMB: mems[rng.Intn(len(mems))]}
		flavors = append(flavors, [2]Flavor{n, o})
		pairs = append(pairs, [2]novaFlavor{{n.VCPUs, n.MemoryMB}, {o.VCPUs, o.MemoryMB}})
	}
	in, err := json.Marshal(pairs)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, "testdata/nova_upsize.py")
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("nova oracle: %v\n%s", err, stderr.String())
	}
	var want []map[string]int64
	if err := json.Unmarshal(out, &want); err != nil {
		t.Fatalf("nova oracle output: %v\n%s", err, out)
	}
	if len(want) != len(flavors) {
		t.Fatalf("nova oracle gave %d answers for %d pairs", len(want), len(flavors))
	}
	for i, f := range flavors {
		got := UpsizeDelta(f[0], f[1])
		gotByName := map[string]int64{}
		for r, v := range got {
			gotByName[r.String()] = v
		}
		if len(gotByName) != len(want[i]) {
			t.Errorf("new %+v old %+v: got %v, nova %v", f[0], f[1], got, want[i])
			continue
		}
		for k, v := range want[i] {
			if gotByName[k] != v {
				t.Errorf("new %+v old %+v: got %v, nova %v", f[0], f[1], got, want[i])
				break
			}
		}
	}
}
