package scheduler

import (
	"math"
)

// Filter names (Nova's class names).
const (
	ComputeFilterName                 = "ComputeFilter"
	AvailabilityZoneFilterName        = "AvailabilityZoneFilter"
	RamFilterName                     = "RamFilter"
	CoreFilterName                    = "CoreFilter"
	DiskFilterName                    = "DiskFilter"
	ImagePropertiesFilterName         = "ImagePropertiesFilter"
	SameHostFilterName                = "SameHostFilter"
	DifferentHostFilterName           = "DifferentHostFilter"
	ServerGroupAffinityFilterName     = "ServerGroupAffinityFilter"
	ServerGroupAntiAffinityFilterName = "ServerGroupAntiAffinityFilter"
	IoOpsFilterName                   = "IoOpsFilter"
	NumInstancesFilterName            = "NumInstancesFilter"
	RetryFilterName                   = "RetryFilter"
	ComputeCapabilitiesFilterName     = "ComputeCapabilitiesFilter"
)

// Weigher names (Nova's class names).
const (
	RAMWeigherName                         = "RAMWeigher"
	DiskWeigherName                        = "DiskWeigher"
	CPUWeigherName                         = "CPUWeigher"
	IoOpsWeigherName                       = "IoOpsWeigher"
	BuildFailureWeigherName                = "BuildFailureWeigher"
	CrossCellWeigherName                   = "CrossCellWeigher"
	ServerGroupSoftAffinityWeigherName     = "ServerGroupSoftAffinityWeigher"
	ServerGroupSoftAntiAffinityWeigherName = "ServerGroupSoftAntiAffinityWeigher"
)

// AllFilters returns every built-in filter name.
func AllFilters() []string { return append([]string(nil), allFilters[:]...) }

var allFilters = [...]string{
	ComputeFilterName, AvailabilityZoneFilterName, RamFilterName, CoreFilterName, DiskFilterName,
	ImagePropertiesFilterName, SameHostFilterName, DifferentHostFilterName,
	ServerGroupAffinityFilterName, ServerGroupAntiAffinityFilterName,
	IoOpsFilterName, NumInstancesFilterName, RetryFilterName, ComputeCapabilitiesFilterName,
}

// AllWeighers returns every built-in weigher name, in the order Nova's
// all_weighers() loads them in Zed (PCIWeigher and MetricsWeigher, which
// weigh nothing this model carries, are left out).
func AllWeighers() []string { return append([]string(nil), allWeighers[:]...) }

var allWeighers = [...]string{
	CrossCellWeigherName, CPUWeigherName, BuildFailureWeigherName,
	ServerGroupSoftAffinityWeigherName, ServerGroupSoftAntiAffinityWeigherName,
	RAMWeigherName, DiskWeigherName, IoOpsWeigherName,
}

// The weight multipliers, indexed for per-host override tables.
const (
	multRAM = iota
	multDisk
	multCPU
	multIOOps
	multBuildFailure
	multCrossCell
	multSoftAffinity
	multSoftAntiAffinity
	numMultipliers
)

// multiplierKeys are Nova's option names, which are also the aggregate
// metadata keys that override them per host.
var multiplierKeys = [numMultipliers]string{
	"ram_weight_multiplier",
	"disk_weight_multiplier",
	"cpu_weight_multiplier",
	"io_ops_weight_multiplier",
	"build_failure_weight_multiplier",
	"cross_cell_move_weight_multiplier",
	"soft_affinity_weight_multiplier",
	"soft_anti_affinity_weight_multiplier",
}

// Config holds the [filter_scheduler] and [scheduler] options. Start from
// DefaultConfig, which has Nova's (Zed) defaults except for the filters
// (DefaultEnabledFilters).
type Config struct {
	// EnabledFilters are run in this order. Names are Nova's class names
	// or the Name of a filter given with WithFilter.
	EnabledFilters []string
	// Weighers are applied in this order (the order changes only the last
	// bits of the sums). Names as for EnabledFilters.
	Weighers []string

	RAMWeightMultiplier              float64
	DiskWeightMultiplier             float64
	CPUWeightMultiplier              float64
	IoOpsWeightMultiplier            float64
	BuildFailureWeightMultiplier     float64
	CrossCellMoveWeightMultiplier    float64
	SoftAffinityWeightMultiplier     float64 // must be >= 0
	SoftAntiAffinityWeightMultiplier float64 // must be >= 0

	HostSubsetSize int // >= 1
	// ShuffleBestSameWeighedHosts shuffles the hosts tied with the best
	// weight before the subset choice (needs WithRand; default false).
	ShuffleBestSameWeighedHosts bool
	MaxAttempts                 int // >= 1; alternates = MaxAttempts-1
	MaxIOOpsPerHost             int // >= 0
	MaxInstancesPerHost         int // >= 1

	DefaultAvailabilityZone            string // "nova"
	ImagePropertiesDefaultArchitecture string // "" (unset)
}

// DefaultEnabledFilters returns the default enabled_filters: Nova's
// defaults from before Placement (Ocata) with CoreFilter after DiskFilter.
// Nova Zed's shorter list leaves RAM, disk and vCPUs to Placement, which
// a standalone scheduler does not have; see the package documentation.
func DefaultEnabledFilters() []string { return append([]string(nil), defaultEnabledFilters[:]...) }

var defaultEnabledFilters = [...]string{
	RetryFilterName, AvailabilityZoneFilterName, RamFilterName, DiskFilterName, CoreFilterName,
	ComputeFilterName, ComputeCapabilitiesFilterName, ImagePropertiesFilterName,
	ServerGroupAntiAffinityFilterName, ServerGroupAffinityFilterName,
}

// DefaultConfig returns Nova's defaults, with DefaultEnabledFilters.
func DefaultConfig() Config {
	return Config{
		EnabledFilters:                     DefaultEnabledFilters(),
		Weighers:                           AllWeighers(),
		RAMWeightMultiplier:                1.0,
		DiskWeightMultiplier:               1.0,
		CPUWeightMultiplier:                1.0,
		IoOpsWeightMultiplier:              -1.0,
		BuildFailureWeightMultiplier:       1000000.0,
		CrossCellMoveWeightMultiplier:      1000000.0,
		SoftAffinityWeightMultiplier:       1.0,
		SoftAntiAffinityWeightMultiplier:   1.0,
		HostSubsetSize:                     1,
		MaxAttempts:                        3,
		MaxIOOpsPerHost:                    8,
		MaxInstancesPerHost:                50,
		DefaultAvailabilityZone:            "nova",
		ImagePropertiesDefaultArchitecture: "",
	}
}

func (c *Config) multipliers() [numMultipliers]float64 {
	return [numMultipliers]float64{
		c.RAMWeightMultiplier, c.DiskWeightMultiplier, c.CPUWeightMultiplier, c.IoOpsWeightMultiplier,
		c.BuildFailureWeightMultiplier, c.CrossCellMoveWeightMultiplier,
		c.SoftAffinityWeightMultiplier, c.SoftAntiAffinityWeightMultiplier,
	}
}

// Validate checks the options; errors are *BadInputError naming the option
// as "config.<nova option name>".
func (c *Config) Validate() error {
	m := c.multipliers()
	for k, v := range m {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return badInput("config."+multiplierKeys[k], "multiplier %v is not finite", v)
		}
	}
	// Normalised weights lie in [0, 1], so a host's total is at most the
	// sum of the enabled weighers' |multiplier|: when that sum overflows,
	// totals can be infinite and no ranking means anything.
	sum := 0.0
	for _, name := range c.Weighers {
		if k, ok := weigherKinds[name]; ok {
			sum += math.Abs(m[weigherMult[k]])
		}
	}
	if math.IsInf(sum, 0) {
		return badInput("config.weighers", "the multipliers of the enabled weighers add up to more than %g: weights would not be finite", math.MaxFloat64)
	}
	if c.SoftAffinityWeightMultiplier < 0 {
		return badInput("config.soft_affinity_weight_multiplier", "must be >= 0, got %v", c.SoftAffinityWeightMultiplier)
	}
	if c.SoftAntiAffinityWeightMultiplier < 0 {
		return badInput("config.soft_anti_affinity_weight_multiplier", "must be >= 0, got %v", c.SoftAntiAffinityWeightMultiplier)
	}
	if c.HostSubsetSize < 1 {
		return badInput("config.host_subset_size", "must be >= 1, got %d", c.HostSubsetSize)
	}
	if c.MaxAttempts < 1 {
		return badInput("config.max_attempts", "must be >= 1, got %d", c.MaxAttempts)
	}
	if c.MaxIOOpsPerHost < 0 {
		return badInput("config.max_io_ops_per_host", "must be >= 0, got %d", c.MaxIOOpsPerHost)
	}
	if c.MaxInstancesPerHost < 1 {
		return badInput("config.max_instances_per_host", "must be >= 1, got %d", c.MaxInstancesPerHost)
	}
	if a := c.ImagePropertiesDefaultArchitecture; a != "" {
		if _, ok := canonicalArch(a); !ok {
			return badInput("config.image_properties_default_architecture", "unknown architecture %q", a)
		}
	}
	return nil
}
