package scheduler

// filterKind numbers the built-in filters.
type filterKind int8

const (
	fCompute filterKind = iota
	fAvailabilityZone
	fRam
	fCore
	fDisk
	fImageProperties
	fSameHost
	fDifferentHost
	fGroupAffinity
	fGroupAntiAffinity
	fIoOps
	fNumInstances
	fRetry
	fCapabilities
	numFilterKinds
)

var filterKinds = map[string]filterKind{
	ComputeFilterName:                 fCompute,
	AvailabilityZoneFilterName:        fAvailabilityZone,
	RamFilterName:                     fRam,
	CoreFilterName:                    fCore,
	DiskFilterName:                    fDisk,
	ImagePropertiesFilterName:         fImageProperties,
	SameHostFilterName:                fSameHost,
	DifferentHostFilterName:           fDifferentHost,
	ServerGroupAffinityFilterName:     fGroupAffinity,
	ServerGroupAntiAffinityFilterName: fGroupAntiAffinity,
	IoOpsFilterName:                   fIoOps,
	NumInstancesFilterName:            fNumInstances,
	RetryFilterName:                   fRetry,
	ComputeCapabilitiesFilterName:     fCapabilities,
}

// onceKinds are Nova's run_filter_once_per_request filters.
var onceKinds = [numFilterKinds]bool{
	fCompute: true, fAvailabilityZone: true, fImageProperties: true,
	fSameHost: true, fDifferentHost: true, fCapabilities: true,
}

type weigherKind int8

const (
	wRAM weigherKind = iota
	wDisk
	wCPU
	wIoOps
	wBuildFailure
	wCrossCell
	wSoftAffinity
	wSoftAntiAffinity
	numWeigherKinds
)

var weigherKinds = map[string]weigherKind{
	RAMWeigherName:                         wRAM,
	DiskWeigherName:                        wDisk,
	CPUWeigherName:                         wCPU,
	IoOpsWeigherName:                       wIoOps,
	BuildFailureWeigherName:                wBuildFailure,
	CrossCellWeigherName:                   wCrossCell,
	ServerGroupSoftAffinityWeigherName:     wSoftAffinity,
	ServerGroupSoftAntiAffinityWeigherName: wSoftAntiAffinity,
}

// weigherMult maps a weigher to its multiplier slot (they coincide).
var weigherMult = [numWeigherKinds]int{
	wRAM: multRAM, wDisk: multDisk, wCPU: multCPU, wIoOps: multIOOps,
	wBuildFailure: multBuildFailure, wCrossCell: multCrossCell,
	wSoftAffinity: multSoftAffinity, wSoftAntiAffinity: multSoftAntiAffinity,
}

// hasMinZero: the weighers with minval = 0 in Nova.
var hasMinZero = [numWeigherKinds]bool{wRAM: true, wDisk: true, wCPU: true, wIoOps: true}

// params are the configuration values the built-ins read.
type params struct {
	cfg     Config
	mult    [numMultipliers]float64
	defArch string
}

// NewFilter returns the built-in filter called name, configured by cfg
// (max_io_ops_per_host, default_availability_zone, ...). Its HostPasses
// works on any HostState; a Scheduler evaluates built-ins on a packed copy
// of the hosts instead, with the same result.
func NewFilter(name string, cfg Config) (Filter, error) {
	k, ok := filterKinds[name]
	if !ok {
		return nil, badInput("config.enabled_filters", "unknown filter %q", name)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &builtinFilter{kind: k, name: name, p: newParams(cfg)}, nil
}

// NewWeigher returns the built-in weigher called name, configured by cfg.
func NewWeigher(name string, cfg Config) (Weigher, error) {
	k, ok := weigherKinds[name]
	if !ok {
		return nil, badInput("config.weighers", "unknown weigher %q", name)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &builtinWeigher{kind: k, name: name, p: newParams(cfg)}, nil
}

func newParams(cfg Config) *params {
	p := &params{cfg: cfg, mult: cfg.multipliers()}
	if cfg.ImagePropertiesDefaultArchitecture != "" {
		p.defArch, _ = canonicalArch(cfg.ImagePropertiesDefaultArchitecture)
	}
	return p
}

type builtinFilter struct {
	kind filterKind
	name string
	p    *params
}

func (f *builtinFilter) Name() string { return f.name }

// RunFilterOncePerRequest is Nova's run_filter_once_per_request.
func (f *builtinFilter) RunFilterOncePerRequest() bool { return onceKinds[f.kind] }

// HostPasses applies Nova's rule for the filter to h.
func (f *builtinFilter) HostPasses(h *HostState, r *Request) bool {
	switch f.kind {
	case fCompute:
		return !h.Disabled && !h.Down
	case fAvailabilityZone:
		if r.AvailabilityZone == "" {
			return true
		}
		zones, found := h.availabilityZones()
		return azPasses(r.AvailabilityZone, zones, found, f.p.cfg.DefaultAvailabilityZone)
	case fRam:
		return ramPasses(h.TotalUsableRAMMB, h.FreeRAMMB, h.ramRatio(), r.Flavor.MemoryMB)
	case fCore:
		return corePasses(h.VCPUsTotal, h.VCPUsUsed, h.cpuRatio(), r.Flavor.VCPUs)
	case fDisk:
		return diskPasses(h.TotalUsableDiskGB, h.FreeDiskMB, h.diskRatio(), requestedDiskMB(&r.Flavor))
	case fImageProperties:
		im, err := r.image(f.p.defArch)
		if err != nil {
			return false
		}
		if !im.active() {
			return true
		}
		sv, ok := parseStrictVersion(versionString(h.HypervisorVersion))
		return imagePasses(&im, h.supportedInstances(), h.HypervisorVersion, sv, ok)
	case fSameHost:
		if !hintActive(r.SameHost) {
			return true
		}
		return overlaps(h.Instances, r.SameHost)
	case fDifferentHost:
		if !hintActive(r.DifferentHost) {
			return true
		}
		return !overlaps(h.Instances, r.DifferentHost)
	case fGroupAffinity:
		g := r.InstanceGroup
		if g == nil || g.Policy != PolicyAffinity || len(g.Hosts) == 0 {
			return true
		}
		for _, gh := range g.Hosts {
			if gh == h.Host {
				return true
			}
		}
		return false
	case fGroupAntiAffinity:
		g := r.InstanceGroup
		if g == nil || g.Policy != PolicyAntiAffinity {
			return true
		}
		if r.InstanceUUID != "" && h.hasInstance(r.InstanceUUID) {
			return true
		}
		return membersOn(h, g.Members) < maxServerPerHost(g)
	case fIoOps:
		return h.NumIOOps < int64(f.p.cfg.MaxIOOpsPerHost)
	case fNumInstances:
		return h.NumInstances < int64(f.p.cfg.MaxInstancesPerHost)
	case fCapabilities:
		return capabilitiesPass(h, capSpecs(r.Flavor.ExtraSpecs))
	case fRetry:
		for _, t := range r.TriedHosts {
			if t.Host == h.Host && t.Node == h.Node {
				return false
			}
		}
		return true
	}
	return true
}

func maxServerPerHost(g *InstanceGroup) int64 {
	if g.MaxServerPerHost > 0 {
		return int64(g.MaxServerPerHost)
	}
	return 1
}

// membersOn counts the distinct group members among the host's instances.
func membersOn(h *HostState, members []string) int64 {
	var n int64
	for i, u := range h.Instances {
		dup := false
		for _, v := range h.Instances[:i] {
			if v == u {
				dup = true
				break
			}
		}
		if dup {
			continue
		}
		for _, m := range members {
			if m == u {
				n++
				break
			}
		}
	}
	return n
}

func overlaps(a, b []string) bool {
	for _, x := range a {
		for _, y := range b {
			if x == y {
				return true
			}
		}
	}
	return false
}

func azPasses(want string, zones []string, found bool, def string) bool {
	if !found {
		return want == def
	}
	for _, z := range zones {
		if z == want {
			return true
		}
	}
	return false
}

// ramPasses is the legacy RamFilter.
func ramPasses(total, free int64, ratio float64, req int64) bool {
	if !(total >= req) {
		return false
	}
	limit := float64(float64(total) * ratio)
	used := total - free
	usable := limit - float64(used)
	return usable >= float64(req)
}

// corePasses is the legacy CoreFilter (Stein).
func corePasses(total, used int64, ratio float64, req int64) bool {
	if total == 0 {
		return true // "VCPUs not set; assuming CPU collection broken"
	}
	limit := float64(float64(total) * ratio)
	if limit > 0 && req > total {
		return false
	}
	free := limit - float64(used)
	return !(free < float64(req))
}

func requestedDiskMB(f *Flavor) int64 { return 1024*(f.RootGB+f.EphemeralGB) + f.SwapMB }

// diskPasses is the legacy DiskFilter.
func diskPasses(totalGB, freeMB int64, ratio float64, req int64) bool {
	totalMB := totalGB * 1024
	if totalMB < req {
		return false
	}
	limit := float64(float64(totalMB) * ratio)
	used := totalMB - freeMB
	usable := limit - float64(used)
	return usable >= float64(req)
}

// imagePasses is ImagePropertiesFilter._instance_supported.
func imagePasses(im *image, supported [][3]string, hv int64, sv strictVersion, svOK bool) bool {
	if len(supported) == 0 {
		return false
	}
	for _, t := range supported {
		if !inTriple(im.arch, t) || !inTriple(im.hvType, t) || !inTriple(im.vmMode, t) {
			continue
		}
		if hv == 0 || !im.hasVersion {
			return true
		}
		// A hypervisor version that is not a StrictVersion makes Nova
		// raise; here the host does not pass.
		if svOK && satisfiesStrict(im.version, sv) {
			return true
		}
	}
	return false
}

func inTriple(v string, t [3]string) bool {
	return v == "" || v == t[0] || v == t[1] || v == t[2]
}

type builtinWeigher struct {
	kind weigherKind
	name string
	p    *params
}

func (w *builtinWeigher) Name() string { return w.name }

// Bounds returns minval 0 for the RAM, disk, CPU and I/O weighers.
func (w *builtinWeigher) Bounds() Bounds {
	return Bounds{HasMin: hasMinZero[w.kind]}
}

// Weigh returns Nova's raw weight.
func (w *builtinWeigher) Weigh(h *HostState, r *Request) float64 {
	switch w.kind {
	case wRAM:
		return float64(h.FreeRAMMB)
	case wDisk:
		return float64(h.FreeDiskMB)
	case wCPU:
		return float64(float64(h.VCPUsTotal)*h.cpuRatio()) - float64(h.VCPUsUsed)
	case wIoOps:
		return float64(h.NumIOOps)
	case wBuildFailure:
		return float64(h.FailedBuilds)
	case wCrossCell:
		if r.RequestedCell != "" && r.AllowCrossCellMove {
			if h.Cell == r.RequestedCell {
				return 1
			}
			return -1
		}
		return 0
	case wSoftAffinity, wSoftAntiAffinity:
		g := r.InstanceGroup
		if g == nil {
			return 0
		}
		if (w.kind == wSoftAffinity && g.Policy != PolicySoftAffinity) ||
			(w.kind == wSoftAntiAffinity && g.Policy != PolicySoftAntiAffinity) {
			return 0
		}
		n := float64(membersOn(h, g.Members))
		if w.kind == wSoftAntiAffinity {
			return -1 * n
		}
		return n
	}
	return 0
}

// Multiplier returns the configured multiplier, or the smallest
// per-aggregate override; BuildFailureWeigher's is negated as in Nova.
func (w *builtinWeigher) Multiplier(h *HostState) float64 {
	k := weigherMult[w.kind]
	m := w.p.mult[k]
	if ov, ok, err := aggregateMultipliers(0, h); err == nil && ok && ov.set&(1<<k) != 0 {
		m = ov.v[k]
	}
	if w.kind == wBuildFailure {
		return -1 * m
	}
	return m
}
