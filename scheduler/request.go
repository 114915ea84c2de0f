package scheduler

import (
	"strings"
)

// Server group policies.
const (
	PolicyAffinity         = "affinity"
	PolicyAntiAffinity     = "anti-affinity"
	PolicySoftAffinity     = "soft-affinity"
	PolicySoftAntiAffinity = "soft-anti-affinity"
)

// MaxInstances bounds the instances of one request (a multi-create of
// more is refused as bad input rather than allocated).
const MaxInstances = 10000

// Flavor is the part of a flavor the scheduler reads.
type Flavor struct {
	MemoryMB    int64
	VCPUs       int64
	RootGB      int64
	EphemeralGB int64
	SwapMB      int64
	// ExtraSpecs are the flavor's extra specs; ComputeCapabilitiesFilter
	// reads the keys scoped "capabilities:" and the unscoped keys that
	// name a host attribute.
	ExtraSpecs map[string]string
}

// InstanceGroup is a server group: its policy, the hosts its members run
// on, its members' UUIDs and the anti-affinity rule max_server_per_host
// (0 means Nova's default, 1).
type InstanceGroup struct {
	Policy           string
	Hosts            []string
	Members          []string
	MaxServerPerHost int
}

// HostNode names one compute node.
type HostNode struct {
	Host string
	Node string
}

// Request is Nova's RequestSpec as far as scheduling reads it.
type Request struct {
	Flavor Flavor
	// NumInstances is how many instances to place (0 means 1, or
	// len(InstanceUUIDs) when that is set).
	NumInstances int
	// InstanceUUID is the instance being moved (resize, migrate): the
	// anti-affinity filter lets its current host pass.
	InstanceUUID string
	// InstanceUUIDs optionally name the instances of a multi-create; as in
	// Nova each becomes the request's instance_uuid for its pick and is
	// added to the chosen host's instances.
	InstanceUUIDs []string

	// ImageProperties holds the image's properties; the filter reads
	// hw_architecture, img_hv_type, hw_vm_mode and img_hv_requested_version.
	ImageProperties  map[string]string
	AvailabilityZone string
	IgnoreHosts      []string
	ForceHosts       []string
	ForceNodes       []string
	SameHost         []string // scheduler hint same_host (instance UUIDs)
	DifferentHost    []string // scheduler hint different_host
	InstanceGroup    *InstanceGroup

	// RequestedHost and RequestedNode narrow the hosts to a requested
	// destination (a cold migration to a named host).
	RequestedHost string
	RequestedNode string
	// RequestedCell is the preferred (source) cell of a move;
	// AllowCrossCellMove says whether other cells may be chosen.
	RequestedCell      string
	AllowCrossCellMove bool
	// TriedHosts are the nodes already tried (RetryFilter).
	TriedHosts []HostNode
}

func (r *Request) numInstances() int {
	if r.NumInstances > 0 {
		return r.NumInstances
	}
	if len(r.InstanceUUIDs) > 0 {
		return len(r.InstanceUUIDs)
	}
	return 1
}

// image is the canonical form of the image properties the
// ImagePropertiesFilter checks.
type image struct {
	arch, hvType, vmMode string
	version              []versionCond
	hasVersion           bool
}

func (im *image) active() bool { return im.arch != "" || im.hvType != "" || im.vmMode != "" }

// Validate checks the request; errors are *BadInputError naming the field
// as "request.<json name>".
func (r *Request) Validate() error {
	_, err := r.image("")
	if err != nil {
		return err
	}
	return r.validate()
}

func (r *Request) validate() error {
	for _, c := range []struct {
		name string
		v    int64
	}{
		{"request.flavor.memory_mb", r.Flavor.MemoryMB},
		{"request.flavor.vcpus", r.Flavor.VCPUs},
		{"request.flavor.root_gb", r.Flavor.RootGB},
		{"request.flavor.ephemeral_gb", r.Flavor.EphemeralGB},
		{"request.flavor.swap", r.Flavor.SwapMB},
	} {
		if c.v < 0 {
			return badInput(c.name, "negative value %d", c.v)
		}
		if c.v > 1<<40 {
			return badInput(c.name, "value %d too large", c.v)
		}
	}
	if r.NumInstances < 0 {
		return badInput("request.num_instances", "negative value %d", r.NumInstances)
	}
	if r.NumInstances > 0 && len(r.InstanceUUIDs) > 0 && r.NumInstances != len(r.InstanceUUIDs) {
		return badInput("request.num_instances", "%d does not match %d instance_uuids", r.NumInstances, len(r.InstanceUUIDs))
	}
	if n := r.numInstances(); n > MaxInstances {
		return badInput("request.num_instances", "too many instances (%d)", n)
	}
	if g := r.InstanceGroup; g != nil {
		switch g.Policy {
		case PolicyAffinity, PolicyAntiAffinity, PolicySoftAffinity, PolicySoftAntiAffinity:
		default:
			return badInput("request.instance_group.policy", "unknown policy %q", g.Policy)
		}
		if g.MaxServerPerHost < 0 {
			return badInput("request.instance_group.max_server_per_host", "negative value %d", g.MaxServerPerHost)
		}
	}
	return nil
}

// image canonicalizes the image properties like Nova's ImageMetaProps
// fields do, with defArch as image_properties_default_architecture.
func (r *Request) image(defArch string) (image, error) {
	var im image
	get := func(k string) (string, bool) {
		v, ok := r.ImageProperties[k]
		return v, ok
	}
	if v, ok := get("hw_architecture"); ok {
		a, valid := canonicalArch(v)
		if !valid {
			return im, badInput("request.image_properties.hw_architecture", "unknown architecture %q", v)
		}
		im.arch = a
	} else if defArch != "" {
		im.arch, _ = canonicalArch(defArch)
	}
	if v, ok := get("img_hv_type"); ok {
		h, valid := canonicalHVType(v)
		if !valid {
			return im, badInput("request.image_properties.img_hv_type", "unknown hypervisor type %q", v)
		}
		im.hvType = h
	}
	if v, ok := get("hw_vm_mode"); ok {
		m, valid := canonicalVMMode(v)
		if !valid {
			return im, badInput("request.image_properties.hw_vm_mode", "unknown VM mode %q", v)
		}
		im.vmMode = m
	}
	if v, ok := get("img_hv_requested_version"); ok {
		conds, valid := parseVersionPredicate(v)
		if !valid || strings.ContainsAny(v, "\n") {
			return im, badInput("request.image_properties.img_hv_requested_version", "%q is not a valid version predicate", v)
		}
		im.version = conds
		im.hasVersion = v != ""
	}
	return im, nil
}

// hintActive mirrors RequestSpec.get_scheduler_hint followed by Nova's
// truth test: a one-element list is unwrapped, so [""] is no hint.
func hintActive(h []string) bool {
	if len(h) == 0 {
		return false
	}
	if len(h) == 1 && h[0] == "" {
		return false
	}
	return true
}
