package schedjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"strings"

	"github.com/xenflow/xenflow/scheduler"
)

// MaxDocumentSize bounds the input document (64 MiB).
const MaxDocumentSize = 64 << 20

// Document is the input document. Hosts and Request are required; a
// missing Config takes the defaults of scheduler.DefaultConfig.
type Document struct {
	Config  *ConfigDoc  `json:"config,omitempty"`
	Hosts   []HostDoc   `json:"hosts"`
	Request *RequestDoc `json:"request,omitempty"`
}

// ConfigDoc holds Nova's option names; a missing option takes Nova's
// default.
type ConfigDoc struct {
	EnabledFilters                     []string `json:"enabled_filters,omitempty"`
	Weighers                           []string `json:"weighers,omitempty"`
	RAMWeightMultiplier                *float64 `json:"ram_weight_multiplier,omitempty"`
	DiskWeightMultiplier               *float64 `json:"disk_weight_multiplier,omitempty"`
	CPUWeightMultiplier                *float64 `json:"cpu_weight_multiplier,omitempty"`
	IoOpsWeightMultiplier              *float64 `json:"io_ops_weight_multiplier,omitempty"`
	BuildFailureWeightMultiplier       *float64 `json:"build_failure_weight_multiplier,omitempty"`
	CrossCellMoveWeightMultiplier      *float64 `json:"cross_cell_move_weight_multiplier,omitempty"`
	SoftAffinityWeightMultiplier       *float64 `json:"soft_affinity_weight_multiplier,omitempty"`
	SoftAntiAffinityWeightMultiplier   *float64 `json:"soft_anti_affinity_weight_multiplier,omitempty"`
	HostSubsetSize                     *int     `json:"host_subset_size,omitempty"`
	ShuffleBestSameWeighedHosts        *bool    `json:"shuffle_best_same_weighed_hosts,omitempty"`
	MaxAttempts                        *int     `json:"max_attempts,omitempty"`
	MaxIOOpsPerHost                    *int     `json:"max_io_ops_per_host,omitempty"`
	MaxInstancesPerHost                *int     `json:"max_instances_per_host,omitempty"`
	DefaultAvailabilityZone            *string  `json:"default_availability_zone,omitempty"`
	ImagePropertiesDefaultArchitecture *string  `json:"image_properties_default_architecture,omitempty"`
	Seed                               *int64   `json:"seed,omitempty"`
}

// AggregateDoc is a host aggregate.
type AggregateDoc struct {
	Name     string            `json:"name"`
	Metadata map[string]string `json:"metadata"`
}

// HostDoc is one host. The capacities (total_usable_ram_mb, free_ram_mb,
// total_usable_disk_gb, free_disk_mb, vcpus_total) are required; enabled
// and up default to true, the allocation ratios to scheduler.DefaultCPUAllocationRatio,
// DefaultRAMAllocationRatio and DefaultDiskAllocationRatio.
type HostDoc struct {
	Host                string         `json:"host"`
	Node                string         `json:"node,omitempty"`
	Cell                string         `json:"cell,omitempty"`
	AvailabilityZone    string         `json:"availability_zone,omitempty"`
	Enabled             *bool          `json:"enabled,omitempty"`
	Up                  *bool          `json:"up,omitempty"`
	TotalUsableRAMMB    *int64         `json:"total_usable_ram_mb,omitempty"`
	FreeRAMMB           *int64         `json:"free_ram_mb,omitempty"`
	TotalUsableDiskGB   *int64         `json:"total_usable_disk_gb,omitempty"`
	FreeDiskMB          *int64         `json:"free_disk_mb,omitempty"`
	VCPUsTotal          *int64         `json:"vcpus_total,omitempty"`
	VCPUsUsed           int64          `json:"vcpus_used,omitempty"`
	NumIOOps            int64          `json:"num_io_ops,omitempty"`
	NumInstances        int64          `json:"num_instances,omitempty"`
	FailedBuilds        int64          `json:"failed_builds,omitempty"`
	RAMAllocationRatio  *float64       `json:"ram_allocation_ratio,omitempty"`
	CPUAllocationRatio  *float64       `json:"cpu_allocation_ratio,omitempty"`
	DiskAllocationRatio *float64       `json:"disk_allocation_ratio,omitempty"`
	HypervisorType      string         `json:"hypervisor_type,omitempty"`
	HypervisorVersion   int64          `json:"hypervisor_version,omitempty"`
	CPUArch             string         `json:"cpu_arch,omitempty"`
	VMMode              string         `json:"vm_mode,omitempty"`
	SupportedInstances  [][3]string    `json:"supported_instances,omitempty"`
	Instances           []string       `json:"instances,omitempty"`
	Aggregates          []AggregateDoc `json:"aggregates,omitempty"`
}

// FlavorDoc is the request's flavor.
type FlavorDoc struct {
	MemoryMB    int64 `json:"memory_mb"`
	VCPUs       int64 `json:"vcpus"`
	RootGB      int64 `json:"root_gb"`
	EphemeralGB int64 `json:"ephemeral_gb"`
	Swap        int64 `json:"swap"`
	// ExtraSpecs are the flavor's extra specs (ComputeCapabilitiesFilter
	// reads "capabilities:<attribute>" keys).
	ExtraSpecs map[string]string `json:"extra_specs,omitempty"`
}

// Hint is a scheduler hint value: a string or a list of strings.
type Hint []string

// UnmarshalJSON accepts "uuid" as well as ["uuid", ...].
func (h *Hint) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*h = Hint{s}
		return nil
	}
	var l []string
	if err := json.Unmarshal(b, &l); err != nil {
		return err
	}
	*h = l
	return nil
}

// HintsDoc are the scheduler hints the filters read.
type HintsDoc struct {
	SameHost      Hint `json:"same_host,omitempty"`
	DifferentHost Hint `json:"different_host,omitempty"`
}

// GroupDoc is the request's server group.
type GroupDoc struct {
	Policy           string   `json:"policy"`
	Hosts            []string `json:"hosts,omitempty"`
	Members          []string `json:"members,omitempty"`
	MaxServerPerHost int      `json:"max_server_per_host,omitempty"`
}

// HostNodeDoc names a node; it also reads ["host", "node"].
type HostNodeDoc struct {
	Host string `json:"host"`
	Node string `json:"node"`
}

// UnmarshalJSON accepts {"host":..,"node":..} and ["host","node"].
func (h *HostNodeDoc) UnmarshalJSON(b []byte) error {
	var pair []string
	if err := json.Unmarshal(b, &pair); err == nil {
		if len(pair) != 2 {
			return fmt.Errorf("want [host, node], got %d strings", len(pair))
		}
		h.Host, h.Node = pair[0], pair[1]
		return nil
	}
	type plain HostNodeDoc
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	*h = HostNodeDoc(p)
	return nil
}

// RequestDoc is the request spec.
type RequestDoc struct {
	Flavor             FlavorDoc         `json:"flavor"`
	NumInstances       int               `json:"num_instances,omitempty"`
	InstanceUUID       string            `json:"instance_uuid,omitempty"`
	InstanceUUIDs      []string          `json:"instance_uuids,omitempty"`
	ImageProperties    map[string]string `json:"image_properties,omitempty"`
	AvailabilityZone   string            `json:"availability_zone,omitempty"`
	IgnoreHosts        []string          `json:"ignore_hosts,omitempty"`
	ForceHosts         []string          `json:"force_hosts,omitempty"`
	ForceNodes         []string          `json:"force_nodes,omitempty"`
	SchedulerHints     *HintsDoc         `json:"scheduler_hints,omitempty"`
	InstanceGroup      *GroupDoc         `json:"instance_group,omitempty"`
	RequestedHost      string            `json:"requested_host,omitempty"`
	RequestedNode      string            `json:"requested_node,omitempty"`
	RequestedCell      string            `json:"requested_cell,omitempty"`
	AllowCrossCellMove bool              `json:"allow_cross_cell_move,omitempty"`
	TriedHosts         []HostNodeDoc     `json:"tried_hosts,omitempty"`
}

// Input is a decoded, defaulted document.
type Input struct {
	Config  scheduler.Config
	Seed    int64
	Hosts   []scheduler.HostState
	Request scheduler.Request
}

// Parse decodes and checks one input document. Unknown keys are refused
// (a misspelt option must not silently take its default). Errors are
// *scheduler.BadInputError naming the field, or a JSON syntax error.
func Parse(data []byte) (*Input, error) {
	if len(data) > MaxDocumentSize {
		return nil, &scheduler.BadInputError{Field: "document", Reason: "larger than 64 MiB"}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var doc Document
	if err := dec.Decode(&doc); err != nil {
		return nil, &scheduler.BadInputError{Field: "document", Reason: err.Error()}
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, &scheduler.BadInputError{Field: "document", Reason: "more than one JSON value"}
	}
	return doc.Input()
}

// Input converts the document, applying Nova's defaults.
func (doc *Document) Input() (*Input, error) {
	in := &Input{Config: scheduler.DefaultConfig()}
	if c := doc.Config; c != nil {
		cfg := &in.Config
		if c.EnabledFilters != nil {
			cfg.EnabledFilters = c.EnabledFilters
		}
		if c.Weighers != nil {
			cfg.Weighers = c.Weighers
		}
		setF := func(dst *float64, v *float64) {
			if v != nil {
				*dst = *v
			}
		}
		setF(&cfg.RAMWeightMultiplier, c.RAMWeightMultiplier)
		setF(&cfg.DiskWeightMultiplier, c.DiskWeightMultiplier)
		setF(&cfg.CPUWeightMultiplier, c.CPUWeightMultiplier)
		setF(&cfg.IoOpsWeightMultiplier, c.IoOpsWeightMultiplier)
		setF(&cfg.BuildFailureWeightMultiplier, c.BuildFailureWeightMultiplier)
		setF(&cfg.CrossCellMoveWeightMultiplier, c.CrossCellMoveWeightMultiplier)
		setF(&cfg.SoftAffinityWeightMultiplier, c.SoftAffinityWeightMultiplier)
		setF(&cfg.SoftAntiAffinityWeightMultiplier, c.SoftAntiAffinityWeightMultiplier)
		setI := func(dst *int, v *int) {
			if v != nil {
				*dst = *v
			}
		}
		setI(&cfg.HostSubsetSize, c.HostSubsetSize)
		if c.ShuffleBestSameWeighedHosts != nil {
			cfg.ShuffleBestSameWeighedHosts = *c.ShuffleBestSameWeighedHosts
		}
		setI(&cfg.MaxAttempts, c.MaxAttempts)
		setI(&cfg.MaxIOOpsPerHost, c.MaxIOOpsPerHost)
		setI(&cfg.MaxInstancesPerHost, c.MaxInstancesPerHost)
		if c.DefaultAvailabilityZone != nil {
			cfg.DefaultAvailabilityZone = *c.DefaultAvailabilityZone
		}
		if c.ImagePropertiesDefaultArchitecture != nil {
			cfg.ImagePropertiesDefaultArchitecture = *c.ImagePropertiesDefaultArchitecture
		}
		if c.Seed != nil {
			in.Seed = *c.Seed
		}
	}
	if err := in.Config.Validate(); err != nil {
		return nil, err
	}
	if len(doc.Hosts) == 0 {
		return nil, &scheduler.BadInputError{Field: "hosts", Reason: "no hosts"}
	}
	in.Hosts = make([]scheduler.HostState, len(doc.Hosts))
	for i := range doc.Hosts {
		h, err := doc.Hosts[i].state(i)
		if err != nil {
			return nil, err
		}
		in.Hosts[i] = h
	}
	if doc.Request == nil {
		// Without a request there is nothing to place: scheduling an
		// empty flavor would answer a selection nobody asked for.
		return nil, &scheduler.BadInputError{Field: "request", Reason: "missing request"}
	}
	in.Request = doc.Request.request()
	if err := in.Request.Validate(); err != nil {
		return nil, err
	}
	return in, nil
}

func (h *HostDoc) state(i int) (scheduler.HostState, error) {
	f := func(name string) string { return fmt.Sprintf("hosts[%d].%s", i, name) }
	need := func(name string, v *int64) (int64, error) {
		if v == nil {
			return 0, &scheduler.BadInputError{Field: f(name), Reason: "missing capacity"}
		}
		return *v, nil
	}
	var s scheduler.HostState
	var err error
	if s.TotalUsableRAMMB, err = need("total_usable_ram_mb", h.TotalUsableRAMMB); err != nil {
		return s, err
	}
	if s.FreeRAMMB, err = need("free_ram_mb", h.FreeRAMMB); err != nil {
		return s, err
	}
	if s.TotalUsableDiskGB, err = need("total_usable_disk_gb", h.TotalUsableDiskGB); err != nil {
		return s, err
	}
	if s.FreeDiskMB, err = need("free_disk_mb", h.FreeDiskMB); err != nil {
		return s, err
	}
	if s.VCPUsTotal, err = need("vcpus_total", h.VCPUsTotal); err != nil {
		return s, err
	}
	s.Host, s.Node, s.Cell, s.AvailabilityZone = h.Host, h.Node, h.Cell, h.AvailabilityZone
	s.Disabled, s.Down = h.Enabled != nil && !*h.Enabled, h.Up != nil && !*h.Up
	s.VCPUsUsed, s.NumIOOps, s.NumInstances, s.FailedBuilds = h.VCPUsUsed, h.NumIOOps, h.NumInstances, h.FailedBuilds
	for _, r := range []struct {
		name string
		dst  *float64
		v    *float64
	}{
		{"ram_allocation_ratio", &s.RAMAllocationRatio, h.RAMAllocationRatio},
		{"cpu_allocation_ratio", &s.CPUAllocationRatio, h.CPUAllocationRatio},
		{"disk_allocation_ratio", &s.DiskAllocationRatio, h.DiskAllocationRatio},
	} {
		if r.v == nil {
			continue
		}
		if *r.v == 0 {
			return s, &scheduler.BadInputError{Field: f(r.name), Reason: "allocation ratio 0 (leave it out for the default)"}
		}
		*r.dst = *r.v
	}
	s.HypervisorType, s.HypervisorVersion, s.CPUArch, s.VMMode = h.HypervisorType, h.HypervisorVersion, h.CPUArch, h.VMMode
	s.SupportedInstances = h.SupportedInstances
	s.Instances = h.Instances
	for _, a := range h.Aggregates {
		s.Aggregates = append(s.Aggregates, scheduler.Aggregate{Name: a.Name, Metadata: a.Metadata})
	}
	return s, nil
}

func (r *RequestDoc) request() scheduler.Request {
	q := scheduler.Request{
		Flavor: scheduler.Flavor{
			MemoryMB: r.Flavor.MemoryMB, VCPUs: r.Flavor.VCPUs, RootGB: r.Flavor.RootGB,
			EphemeralGB: r.Flavor.EphemeralGB, SwapMB: r.Flavor.Swap, ExtraSpecs: r.Flavor.ExtraSpecs,
		},
		NumInstances:       r.NumInstances,
		InstanceUUID:       r.InstanceUUID,
		InstanceUUIDs:      r.InstanceUUIDs,
		ImageProperties:    r.ImageProperties,
		AvailabilityZone:   r.AvailabilityZone,
		IgnoreHosts:        r.IgnoreHosts,
		ForceHosts:         r.ForceHosts,
		ForceNodes:         r.ForceNodes,
		RequestedHost:      r.RequestedHost,
		RequestedNode:      r.RequestedNode,
		RequestedCell:      r.RequestedCell,
		AllowCrossCellMove: r.AllowCrossCellMove,
	}
	if h := r.SchedulerHints; h != nil {
		q.SameHost, q.DifferentHost = h.SameHost, h.DifferentHost
	}
	if g := r.InstanceGroup; g != nil {
		q.InstanceGroup = &scheduler.InstanceGroup{Policy: g.Policy, Hosts: g.Hosts, Members: g.Members, MaxServerPerHost: g.MaxServerPerHost}
	}
	for _, t := range r.TriedHosts {
		q.TriedHosts = append(q.TriedHosts, scheduler.HostNode{Host: t.Host, Node: t.Node})
	}
	return q
}

// HostWeight is a host and its weight in the output.
type HostWeight struct {
	Host   string  `json:"host"`
	Node   string  `json:"node"`
	Weight float64 `json:"weight"`
}

// HostRef names a host in the output.
type HostRef struct {
	Host string `json:"host"`
	Node string `json:"node"`
}

// Output is the result document. On no valid host only Error and
// FilteredOut are set.
type Output struct {
	Weighed     []HostWeight        `json:"weighed,omitempty"`
	Selected    []HostWeight        `json:"selected,omitempty"`
	Alternates  [][]HostRef         `json:"alternates,omitempty"`
	FilteredOut map[string][]string `json:"filtered_out"`
	Error       string              `json:"error,omitempty"`
}

// Run schedules the input. A no-valid-host outcome is returned as an
// Output with Error set and a nil error; other failures (bad input) are
// returned as errors. The random choice among host_subset_size hosts uses
// config.seed unless opts give WithRand.
func Run(in *Input, opts ...scheduler.Option) (*Output, error) {
	hs, err := scheduler.NewHostSet(in.Hosts)
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewSource(in.Seed))
	all := append([]scheduler.Option{scheduler.WithRand(rng.Intn), scheduler.WithExplain()}, opts...)
	s, err := scheduler.New(in.Config, all...)
	if err != nil {
		return nil, err
	}
	res, err := s.Select(hs, &in.Request)
	var nvh *scheduler.NoValidHostError
	if errors.As(err, &nvh) {
		return &Output{Error: nvh.Error(), FilteredOut: nonNil(nvh.Hosts)}, nil
	}
	if err != nil {
		return nil, err
	}
	out := &Output{FilteredOut: nonNil(res.FilteredHosts)}
	out.Weighed = make([]HostWeight, len(res.Weighed))
	for i, w := range res.Weighed {
		out.Weighed[i] = HostWeight{Host: w.Host, Node: w.Node, Weight: w.Weight}
	}
	out.Alternates = make([][]HostRef, len(res.Selections))
	for i, sel := range res.Selections {
		out.Selected = append(out.Selected, HostWeight{Host: sel.Host, Node: sel.Node, Weight: sel.Weight})
		alts := make([]HostRef, len(sel.Alternates))
		for j, a := range sel.Alternates {
			alts[j] = HostRef{Host: a.Host, Node: a.Node}
		}
		out.Alternates[i] = alts
	}
	return out, nil
}

func nonNil(m map[string][]string) map[string][]string {
	if m == nil {
		return map[string][]string{}
	}
	return m
}

// Encode writes out as indented JSON.
func Encode(w io.Writer, out any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// ErrorDocument is the output for bad input.
func ErrorDocument(err error) map[string]any {
	return map[string]any{"error": strings.TrimSpace(err.Error()), "filtered_out": map[string][]string{}}
}
