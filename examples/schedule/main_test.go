package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xenflow/xenflow/scheduler/schedjson"
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
			name: "multipliers whose sum overflows",
			in:   `{"config":{"ram_weight_multiplier":1e308,"disk_weight_multiplier":1e308},"hosts":` + hostsJSON + `,"request":{"flavor":{"memory_mb":1}}}`,
			code: 2,
			want: []string{`config.weighers`, `not be finite`},
		},
		{
			name: "per-aggregate multipliers whose sum overflows",
			in: `{"hosts":[
 {"host":"a","total_usable_ram_mb":8192,"free_ram_mb":8192,"total_usable_disk_gb":100,"free_disk_mb":51200,"vcpus_total":8,"aggregates":[{"name":"x","metadata":{"ram_weight_multiplier":"1e308","disk_weight_multiplier":"1e308"}}]},
 {"host":"b","total_usable_ram_mb":8192,"free_ram_mb":1024,"total_usable_disk_gb":100,"free_disk_mb":1024,"vcpus_total":8}],
 "request":{"flavor":{"memory_mb":1}}}`,
			code: 2,
			want: []string{`weight of host \"a\"`, `+Inf`},
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
			code := run(nil, strings.NewReader(tt.in), &stdout, &stderr)
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

// TestFlags: -h prints the usage to stdout and exits 0 without reading
// stdin; bad flags and arguments exit 2 with the usage on stderr.
func TestFlags(t *testing.T) {
	tests := []struct {
		args        []string
		code        int
		stdout      string
		stderr      string
		emptyStdout bool
		emptyStderr bool
	}{
		{args: []string{"-h"}, code: 0, stdout: "usage: schedule", emptyStderr: true},
		{args: []string{"--help"}, code: 0, stdout: "-in FILE", emptyStderr: true},
		{args: []string{"-bogus"}, code: 2, stderr: "usage: schedule", emptyStdout: true},
		{args: []string{"extra"}, code: 2, stderr: `unexpected arguments ["extra"]`, emptyStdout: true},
		{args: []string{"-in", filepath.Join(t.TempDir(), "missing.json")}, code: 2, stderr: "missing.json", emptyStdout: true},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(tt.args, blockingReader{t}, &stdout, &stderr)
			if code != tt.code || !strings.Contains(stdout.String(), tt.stdout) || !strings.Contains(stderr.String(), tt.stderr) ||
				(tt.emptyStdout && stdout.Len() > 0) || (tt.emptyStderr && stderr.Len() > 0) {
				t.Fatalf("exit %d (want %d)\nstdout: %s\nstderr: %s", code, tt.code, stdout.String(), stderr.String())
			}
		})
	}
}

// blockingReader fails the test when read: stdin must not be touched.
type blockingReader struct{ t *testing.T }

func (b blockingReader) Read([]byte) (int, error) {
	b.t.Error("stdin was read")
	return 0, os.ErrClosed
}

// TestShippedExample runs testdata/request.json, the example the README
// and the package doc point at, from -in and from stdin, and compares the
// result with testdata/request.out.json.
func TestShippedExample(t *testing.T) {
	want, err := os.ReadFile(filepath.Join("testdata", "request.out.json"))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join("testdata", "request.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name  string
		args  []string
		stdin string
	}{
		{"-in", []string{"-in", filepath.Join("testdata", "request.json")}, ""},
		{"stdin", nil, string(doc)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(tt.args, strings.NewReader(tt.stdin), &stdout, &stderr); code != 0 {
				t.Fatalf("exit %d: %s%s", code, stdout.String(), stderr.String())
			}
			if stdout.String() != string(want) {
				t.Fatalf("output differs from testdata/request.out.json:\n%s", stdout.String())
			}
		})
	}
}

// TestDocTemplate: the input template in the package documentation is a
// valid document that schedules.
func TestDocTemplate(t *testing.T) {
	src, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	var tmpl strings.Builder
	in := false
	for _, line := range strings.Split(string(src), "\n") {
		switch {
		case strings.HasPrefix(line, "//\t{") && !in:
			in = true
		case in && !strings.HasPrefix(line, "//\t"):
			in = false
		}
		if in {
			tmpl.WriteString(strings.TrimPrefix(line, "//\t"))
			tmpl.WriteByte('\n')
		}
	}
	if tmpl.Len() == 0 {
		t.Fatal("no template found in doc.go")
	}
	var v map[string]any
	if err := json.Unmarshal([]byte(tmpl.String()), &v); err != nil {
		t.Fatalf("template is not JSON: %v\n%s", err, tmpl.String())
	}
	parsed, err := schedjson.Parse([]byte(tmpl.String()))
	if err != nil {
		t.Fatalf("template is not a valid document: %v", err)
	}
	out, err := schedjson.Run(parsed)
	if err != nil || out.Error != "" || len(out.Selected) != 1 {
		t.Fatalf("template does not schedule: %+v, %v", out, err)
	}
	for _, key := range []string{"config", "hosts", "request"} {
		if _, ok := v[key]; !ok {
			t.Errorf("template lacks %q", key)
		}
	}
}
