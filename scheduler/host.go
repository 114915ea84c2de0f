package scheduler

import (
	"math"
	"strings"
)

// The allocation ratios of a compute node that reports none. CPU and disk
// are Nova's (Zed) initial_cpu_allocation_ratio and
// initial_disk_allocation_ratio. RAM is 1.0, not Nova's 1.5: xapi does
// not overcommit memory (VM.start on a host without the free memory fails
// with HOST_NOT_ENOUGH_FREE_MEMORY), so a larger ratio would place
// instances that cannot start.
const (
	DefaultCPUAllocationRatio  = 16.0
	DefaultRAMAllocationRatio  = 1.0
	DefaultDiskAllocationRatio = 1.0
)

// Aggregate is a host aggregate the host belongs to. Its metadata may hold
// availability_zone and per-aggregate weight multipliers
// (ram_weight_multiplier, ...).
type Aggregate struct {
	Name     string
	Metadata map[string]string
}

// HostState is what the scheduler knows about one compute node, with the
// fields of Nova's HostState that the filters and weighers read.
//
// FreeRAMMB and FreeDiskMB may be negative (an overcommitted host); the
// totals and counters may not. A zero allocation ratio means Nova's
// default (16.0 CPU, 1.0 RAM, 1.0 disk).
type HostState struct {
	Host             string
	Node             string // defaults to Host
	Cell             string // cell UUID or name
	AvailabilityZone string // an implicit aggregate with metadata availability_zone
	// Disabled: the compute service is disabled (Nova's service.disabled).
	// Down: the servicegroup does not see the service alive. The zero
	// value, neither, is a usable host: ComputeFilter removes a host only
	// when one of them is set.
	Disabled bool
	Down     bool

	TotalUsableRAMMB  int64
	FreeRAMMB         int64
	TotalUsableDiskGB int64
	FreeDiskMB        int64
	VCPUsTotal        int64
	VCPUsUsed         int64
	NumIOOps          int64
	NumInstances      int64
	FailedBuilds      int64

	RAMAllocationRatio  float64
	CPUAllocationRatio  float64
	DiskAllocationRatio float64

	HypervisorType    string
	HypervisorVersion int64 // Nova's integer form: 8002000 is 8.2.0
	// CPUArch is also what ComputeCapabilitiesFilter finds at
	// "capabilities:cpu_info:arch" (cpu_info is {"arch": CPUArch}).
	CPUArch string
	VMMode  string
	// SupportedInstances are the (architecture, hypervisor type, VM mode)
	// triples the host advertises. When nil, the single triple
	// (CPUArch, HypervisorType, VMMode) is used if any of them is set.
	SupportedInstances [][3]string

	Instances  []string // UUIDs of the instances on the host
	Aggregates []Aggregate
}

func (h *HostState) ramRatio() float64 {
	return ratioOr(h.RAMAllocationRatio, DefaultRAMAllocationRatio)
}
func (h *HostState) cpuRatio() float64 {
	return ratioOr(h.CPUAllocationRatio, DefaultCPUAllocationRatio)
}
func (h *HostState) diskRatio() float64 {
	return ratioOr(h.DiskAllocationRatio, DefaultDiskAllocationRatio)
}

func ratioOr(r, def float64) float64 {
	if r == 0 {
		return def
	}
	return r
}

// supportedInstances returns the triples the host advertises.
func (h *HostState) supportedInstances() [][3]string {
	if h.SupportedInstances != nil {
		return h.SupportedInstances
	}
	if h.CPUArch == "" && h.HypervisorType == "" && h.VMMode == "" {
		return nil
	}
	return [][3]string{{h.CPUArch, h.HypervisorType, h.VMMode}}
}

// availabilityZones returns the host's zones the way Nova's
// aggregate_metadata_get_by_host does: every comma-separated, stripped
// value of availability_zone over the host's aggregates (and the host's
// own AvailabilityZone), and whether any was found.
func (h *HostState) availabilityZones() ([]string, bool) {
	var zones []string
	found := false
	add := func(v string) {
		found = true
		for _, z := range strings.Split(v, ",") {
			z = pyStrip(z)
			dup := false
			for _, o := range zones {
				if o == z {
					dup = true
					break
				}
			}
			if !dup {
				zones = append(zones, z)
			}
		}
	}
	if h.AvailabilityZone != "" {
		add(h.AvailabilityZone)
	}
	for _, a := range h.Aggregates {
		if v, ok := a.Metadata["availability_zone"]; ok {
			add(v)
		}
	}
	return zones, found
}

// hasInstance reports whether uuid is on the host.
func (h *HostState) hasInstance(uuid string) bool {
	for _, u := range h.Instances {
		if u == uuid {
			return true
		}
	}
	return false
}

// hostHot holds the numbers the built-in filters and weighers read, packed
// so that one pass over 10,000 hosts stays in cache.
type hostHot struct {
	// Derived once per host state, with the very operations Nova's
	// filters and CPUWeigher perform, so the per-request pass only
	// compares.
	ramUsable  float64 // total×ratio − (total − free), RamFilter
	diskUsable float64 // the same in MB, DiskFilter
	cpuFree    float64 // vcpus_total × ratio − vcpus_used, CoreFilter and CPUWeigher

	freeRAM, totalRAM     int64
	freeDisk, totalDiskMB int64
	vcpusTotal            int64
	ioOps, numInstances   int64
	failedBuilds          int64
	cell                  int32 // index into HostSet.cells
	class                 int32 // index into HostSet.classes
	mult                  int32 // index into HostSet.mults, or -1
	disabled, down        bool
}

// newHot packs a host state.
func newHot(h *HostState, cell, class, mult int32) hostHot {
	hh := hostHot{
		freeRAM: h.FreeRAMMB, totalRAM: h.TotalUsableRAMMB,
		freeDisk: h.FreeDiskMB, totalDiskMB: h.TotalUsableDiskGB * 1024,
		vcpusTotal: h.VCPUsTotal,
		ioOps:      h.NumIOOps, numInstances: h.NumInstances, failedBuilds: h.FailedBuilds,
		cell: cell, class: class, mult: mult,
		disabled: h.Disabled, down: h.Down,
	}
	hh.derive(h)
	return hh
}

// derive recomputes the derived values from h (after a consume). The
// conversions to float64 round each product, as Python does, so that no
// platform fuses a multiply and a subtraction.
func (hh *hostHot) derive(h *HostState) {
	hh.ramUsable = float64(float64(h.TotalUsableRAMMB)*h.ramRatio()) - float64(h.TotalUsableRAMMB-h.FreeRAMMB)
	totalDiskMB := h.TotalUsableDiskGB * 1024
	hh.diskUsable = float64(float64(totalDiskMB)*h.diskRatio()) - float64(totalDiskMB-h.FreeDiskMB)
	hh.cpuFree = float64(float64(h.VCPUsTotal)*h.cpuRatio()) - float64(h.VCPUsUsed)
}

// hostClass groups hosts that look the same to AvailabilityZoneFilter and
// ImagePropertiesFilter, so those filters are evaluated once per class per
// request (the way Nomad caches feasibility per computed node class).
type hostClass struct {
	zones     []string
	hasZone   bool
	supported [][3]string
	hvVersion int64
	hvStrict  strictVersion // hvVersion as a StrictVersion
	hvOK      bool          // whether it is one
}

// multOverride holds a host's per-aggregate weight multipliers.
type multOverride struct {
	set uint16 // bit k set: v[k] overrides the configured multiplier k
	v   [numMultipliers]float64
}

// HostSet is a validated, indexed copy of the hosts, built once and shared
// by any number of Select calls (it is read-only for them). It plays the
// role of Nova's HostManager cache; Consume applies a placement to it.
type HostSet struct {
	states  []HostState
	hot     []hostHot
	cells   []string
	classes []hostClass
	mults   []multOverride

	byHostNode map[hostNode]int32
	byHost     map[string][]int32 // exact host name
	byLower    map[string][]int32 // lower-cased host name
	byNode     map[string][]int32
	byInstance map[string][]int32 // instance UUID -> hosts holding it
	cellIndex  map[string]int32
}

type hostNode struct{ host, node string }

// Len returns the number of hosts.
func (hs *HostSet) Len() int { return len(hs.states) }

// Host returns a copy of host i as the set holds it; its Instances and
// Aggregates slices are shared with the set and must not be modified.
func (hs *HostSet) Host(i int) HostState { return hs.states[i] }

// NewHostSet validates hosts and builds the indexes the scheduler uses. The
// hosts are copied; the order is kept (it breaks ties between equal
// weights, as in Nova). Errors are *BadInputError naming the field.
func NewHostSet(hosts []HostState) (*HostSet, error) {
	if len(hosts) == 0 {
		return nil, badInput("hosts", "no hosts")
	}
	if len(hosts) > math.MaxInt32 {
		return nil, badInput("hosts", "too many hosts")
	}
	hs := &HostSet{
		states:     make([]HostState, len(hosts)),
		hot:        make([]hostHot, len(hosts)),
		byHostNode: make(map[hostNode]int32, len(hosts)),
		byHost:     make(map[string][]int32, len(hosts)),
		byLower:    make(map[string][]int32, len(hosts)),
		byNode:     make(map[string][]int32, len(hosts)),
		byInstance: make(map[string][]int32),
		cellIndex:  make(map[string]int32),
	}
	classIndex := make(map[string]int32)
	var kb strings.Builder
	for i := range hosts {
		h := hosts[i]
		if err := validateHost(i, &h); err != nil {
			return nil, err
		}
		if h.Node == "" {
			h.Node = h.Host
		}
		key := hostNode{h.Host, h.Node}
		if j, dup := hs.byHostNode[key]; dup {
			return nil, badInput(field("hosts", i, "host"), "duplicate host %q node %q (also hosts[%d])", h.Host, h.Node, j)
		}
		id := int32(i)
		hs.byHostNode[key] = id
		hs.byHost[h.Host] = append(hs.byHost[h.Host], id)
		lower := strings.ToLower(h.Host)
		hs.byLower[lower] = append(hs.byLower[lower], id)
		hs.byNode[h.Node] = append(hs.byNode[h.Node], id)
		for _, u := range h.Instances {
			hs.byInstance[u] = appendUnique(hs.byInstance[u], id)
		}
		cell, ok := hs.cellIndex[h.Cell]
		if !ok {
			cell = int32(len(hs.cells))
			hs.cells = append(hs.cells, h.Cell)
			hs.cellIndex[h.Cell] = cell
		}
		zones, hasZone := h.availabilityZones()
		sup := h.supportedInstances()
		kb.Reset()
		if hasZone {
			kb.WriteByte(1)
		}
		for _, z := range zones {
			kb.WriteString(z)
			kb.WriteByte(0)
		}
		kb.WriteByte(1)
		for _, t := range sup {
			kb.WriteString(t[0])
			kb.WriteByte(0)
			kb.WriteString(t[1])
			kb.WriteByte(0)
			kb.WriteString(t[2])
			kb.WriteByte(0)
		}
		kb.WriteByte(1)
		writeInt(&kb, h.HypervisorVersion)
		cls, ok := classIndex[kb.String()]
		if !ok {
			cls = int32(len(hs.classes))
			sv, ok := parseStrictVersion(versionString(h.HypervisorVersion))
			hs.classes = append(hs.classes, hostClass{zones: zones, hasZone: hasZone, supported: sup,
				hvVersion: h.HypervisorVersion, hvStrict: sv, hvOK: ok})
			classIndex[kb.String()] = cls
		}
		mult := int32(-1)
		if ov, ok, err := aggregateMultipliers(i, &h); err != nil {
			return nil, err
		} else if ok {
			mult = int32(len(hs.mults))
			hs.mults = append(hs.mults, ov)
		}
		hs.states[i] = h
		hs.hot[i] = newHot(&hs.states[i], cell, cls, mult)
	}
	return hs, nil
}

func appendUnique(s []int32, id int32) []int32 {
	for _, v := range s {
		if v == id {
			return s
		}
	}
	return append(s, id)
}

func writeInt(b *strings.Builder, v int64) {
	var buf [20]byte
	n := len(buf)
	neg := v < 0
	u := uint64(v)
	if neg {
		u = uint64(-v)
	}
	for {
		n--
		buf[n] = byte('0' + u%10)
		u /= 10
		if u == 0 {
			break
		}
	}
	if neg {
		n--
		buf[n] = '-'
	}
	b.Write(buf[n:])
}

func field(list string, i int, name string) string {
	var b strings.Builder
	b.WriteString(list)
	b.WriteByte('[')
	writeInt(&b, int64(i))
	b.WriteString("].")
	b.WriteString(name)
	return b.String()
}

func validateHost(i int, h *HostState) error {
	if h.Host == "" {
		return badInput(field("hosts", i, "host"), "missing host name")
	}
	for _, c := range []struct {
		name string
		v    int64
	}{
		{"total_usable_ram_mb", h.TotalUsableRAMMB},
		{"total_usable_disk_gb", h.TotalUsableDiskGB},
		{"vcpus_total", h.VCPUsTotal},
		{"vcpus_used", h.VCPUsUsed},
		{"num_io_ops", h.NumIOOps},
		{"num_instances", h.NumInstances},
		{"failed_builds", h.FailedBuilds},
		{"hypervisor_version", h.HypervisorVersion},
	} {
		if c.v < 0 {
			return badInput(field("hosts", i, c.name), "negative value %d", c.v)
		}
		// Keep every count exactly representable as a float64, as Nova's
		// arithmetic assumes.
		if c.v > 1<<50 {
			return badInput(field("hosts", i, c.name), "value %d too large", c.v)
		}
	}
	for _, c := range []struct {
		name string
		v    int64
	}{{"free_ram_mb", h.FreeRAMMB}, {"free_disk_mb", h.FreeDiskMB}} {
		if c.v > 1<<50 || c.v < -(1<<50) {
			return badInput(field("hosts", i, c.name), "value %d out of range", c.v)
		}
	}
	for _, c := range []struct {
		name string
		v    float64
	}{
		{"ram_allocation_ratio", h.RAMAllocationRatio},
		{"cpu_allocation_ratio", h.CPUAllocationRatio},
		{"disk_allocation_ratio", h.DiskAllocationRatio},
	} {
		if math.IsNaN(c.v) || math.IsInf(c.v, 0) || c.v < 0 {
			return badInput(field("hosts", i, c.name), "allocation ratio %v is not a finite non-negative number", c.v)
		}
	}
	for j, u := range h.Instances {
		if u == "" {
			return badInput(field("hosts", i, "instances["+itoa(j)+"]"), "empty instance UUID")
		}
	}
	return nil
}

func itoa(v int) string {
	var b strings.Builder
	writeInt(&b, int64(v))
	return b.String()
}

// aggregateMultipliers reads the per-aggregate weight multipliers of host
// h the way nova.scheduler.utils.get_weight_multiplier does: the set of
// values of the key over the host's aggregates, each cast to float, the
// minimum wins; a value that does not parse makes Nova fall back to the
// configured multiplier (so no override is recorded). NaN and infinite
// values are rejected.
func aggregateMultipliers(i int, h *HostState) (multOverride, bool, error) {
	var ov multOverride
	any := false
	for k := 0; k < numMultipliers; k++ {
		key := multiplierKeys[k]
		best, n, bad := 0.0, 0, false
		for j, a := range h.Aggregates {
			s, ok := a.Metadata[key]
			if !ok {
				continue
			}
			v, ok := pyFloat(s)
			if !ok {
				bad = true
				continue
			}
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return ov, false, badInput(field("hosts", i, "aggregates["+itoa(j)+"].metadata."+key), "multiplier %q is not finite", s)
			}
			if n == 0 || v < best {
				best = v
			}
			n++
		}
		if n > 0 && !bad {
			ov.set |= 1 << k
			ov.v[k] = best
			any = true
		}
	}
	return ov, any, nil
}

// Consume applies one placement of req on host i the way Nova's
// HostState.consume_from_request does (free RAM and disk, vCPUs used,
// instance count and I/O operations), and records instanceUUID (if not
// empty) on the host. Select never changes a HostSet; call Consume to
// keep it current between refreshes, as Nova's host manager keeps its
// cache. Consume must not run concurrently with Select on the same set.
func (hs *HostSet) Consume(i int, req *Request, instanceUUID string) error {
	if i < 0 || i >= len(hs.states) {
		return badInput("index", "host index %d out of range [0, %d)", i, len(hs.states))
	}
	if req == nil {
		return badInput("request", "missing request")
	}
	if err := req.validate(); err != nil {
		return err
	}
	h := &hs.states[i]
	consumeState(h, &req.Flavor)
	hot := &hs.hot[i]
	*hot = newHot(h, hot.cell, hot.class, hot.mult)
	if instanceUUID != "" && !h.hasInstance(instanceUUID) {
		h.Instances = append(h.Instances[:len(h.Instances):len(h.Instances)], instanceUUID)
		hs.byInstance[instanceUUID] = appendUnique(hs.byInstance[instanceUUID], int32(i))
	}
	return nil
}

// consumeState is consume_from_request on a HostState.
func consumeState(h *HostState, f *Flavor) {
	h.FreeRAMMB -= f.MemoryMB
	h.FreeDiskMB -= (f.RootGB + f.EphemeralGB) * 1024
	h.VCPUsUsed += f.VCPUs
	h.NumInstances++
	h.NumIOOps++
}
