package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

const hostsJSON = `[
 {"host":"a","cell":"c1","total_usable_ram_mb":8192,"free_ram_mb":2048,"total_usable_disk_gb":100,"free_disk_mb":51200,"vcpus_total":8},
 {"host":"b","cell":"c1","total_usable_ram_mb":8192,"free_ram_mb":8192,"total_usable_disk_gb":100,"free_disk_mb":51200,"vcpus_total":8},
 {"host":"c","cell":"c1","enabled":false,"total_usable_ram_mb":8192,"free_ram_mb":8192,"total_usable_disk_gb":100,"free_disk_mb":51200,"vcpus_total":8}
]`

func TestRun(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		code     int
		want     []string // substrings of stdout
		selected []string
	}{
		{
			name:     "defaults",
			in:       `{"hosts":` + hostsJSON + `,"request":{"flavor":{"memory_mb":1024,"vcpus":1,"root_gb":10}}}`,
			code:     0,
			want:     []string{`"filtered_out": {`, `"ComputeFilter": [`},
			selected: []string{"b"},
		},
		{
			name: "two instances, RAM consumed between picks",
			in: `{"config":{"weighers":["RAMWeigher"]},"hosts":[
 {"host":"a","total_usable_ram_mb":8192,"free_ram_mb":6000,"total_usable_disk_gb":100,"free_disk_mb":51200,"vcpus_total":8},
 {"host":"b","total_usable_ram_mb":8192,"free_ram_mb":8000,"total_usable_disk_gb":100,"free_disk_mb":51200,"vcpus_total":8}],
 "request":{"flavor":{"memory_mb":4000},"num_instances":2}}`,
			code:     0,
			selected: []string{"b", "a"},
		},
		{
			name: "no valid host",
			in:   `{"config":{"enabled_filters":["ComputeFilter","RamFilter"]},"hosts":` + hostsJSON + `,"request":{"flavor":{"memory_mb":65536}}}`,
			code: 1,
			want: []string{`"error": "no valid host was found`, `"RamFilter": [`},
		},
		{
			name: "unknown filter",
			in:   `{"config":{"enabled_filters":["ComputeFilter","FancyFilter"]},"hosts":` + hostsJSON + `,"request":{"flavor":{"memory_mb":1}}}`,
			code: 2,
			want: []string{`config.enabled_filters[1]`, `unknown filter`},
		},
		{
			name: "unknown weigher",
			in:   `{"config":{"weighers":["MetricsWeigher"]},"hosts":` + hostsJSON + `,"request":{"flavor":{"memory_mb":1}}}`,
			code: 2,
			want: []string{`unknown weigher`},
		},
		{
			name: "missing capacity",
			in:   `{"hosts":[{"host":"a","free_ram_mb":1,"total_usable_disk_gb":1,"free_disk_mb":1,"vcpus_total":1}]}`,
			code: 2,
			want: []string{`hosts[0].total_usable_ram_mb`},
		},
		{
			name: "NaN cannot be written in JSON, a huge multiplier can",
			in:   `{"config":{"ram_weight_multiplier":1e400},"hosts":` + hostsJSON + `}`,
			code: 2,
			want: []string{`"error"`},
		},
		{
			name: "no request",
			in:   `{"hosts":` + hostsJSON + `}`,
			code: 2,
			want: []string{`request: missing request`},
		},
		{
			name: "zero hosts",
			in:   `{"hosts":[]}`,
			code: 2,
			want: []string{`hosts: no hosts`},
		},
		{
			name: "duplicate host",
			in:   `{"hosts":[` + strings.Repeat(`{"host":"a","total_usable_ram_mb":1,"free_ram_mb":1,"total_usable_disk_gb":1,"free_disk_mb":1,"vcpus_total":1},`, 2) + `{"host":"b","total_usable_ram_mb":1,"free_ram_mb":1,"total_usable_disk_gb":1,"free_disk_mb":1,"vcpus_total":1}],"request":{"flavor":{"memory_mb":1}}}`,
			code: 2,
			want: []string{`hosts[1].host`, `duplicate`},
		},
		{
			name: "unknown policy",
			in:   `{"hosts":` + hostsJSON + `,"request":{"instance_group":{"policy":"nearby"}}}`,
			code: 2,
			want: []string{`request.instance_group.policy`},
		},
		{
			name: "misspelt option",
			in:   `{"config":{"ram_weight_multiplyer":2},"hosts":` + hostsJSON + `}`,
			code: 2,
			want: []string{`unknown field`},
		},
		{
			name: "not JSON",
			in:   `{"hosts":`,
			code: 2,
			want: []string{`"error"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(strings.NewReader(tt.in), &stdout, &stderr)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, stdout.String(), stderr.String())
			}
			var doc map[string]any
			if err := json.Unmarshal(stdout.Bytes(), &doc); err != nil {
				t.Fatalf("stdout is not one JSON document: %v\n%s", err, stdout.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(stdout.String(), w) {
					t.Errorf("stdout lacks %q:\n%s", w, stdout.String())
				}
			}
			if tt.selected != nil {
				var out struct {
					Selected []struct{ Host string } `json:"selected"`
				}
				if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, s := range out.Selected {
					got = append(got, s.Host)
				}
				if strings.Join(got, ",") != strings.Join(tt.selected, ",") {
					t.Fatalf("selected %v, want %v", got, tt.selected)
				}
			}
		})
	}
}
