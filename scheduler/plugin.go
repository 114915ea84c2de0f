package scheduler

// Filter decides whether one host can take the instance. It is Nova's
// BaseHostFilter.host_passes; a Filter must not keep state between calls
// and must not modify the host or the request.
type Filter interface {
	// Name is the name used in Config.EnabledFilters and in reports.
	Name() string
	// HostPasses reports whether host h passes for request r. For the
	// second and later instances of a multi-create, h shows the resources
	// consumed by the earlier picks, r.InstanceUUID is the instance being
	// placed and r.InstanceGroup.Hosts includes the hosts chosen so far.
	HostPasses(h *HostState, r *Request) bool
}

// OncePerRequestFilter is implemented by filters whose answer cannot change
// between the instances of one request (Nova's
// run_filter_once_per_request): they run for the first instance only.
type OncePerRequestFilter interface {
	Filter
	RunFilterOncePerRequest() bool
}

// Weigher scores hosts. It is Nova's BaseHostWeigher: raw weights are
// clamped to the optional bounds, normalised to [0, 1] over the hosts
// being weighed (all equal: 0), multiplied by Multiplier and summed over
// the weighers; the highest total wins.
type Weigher interface {
	// Name is the name used in Config.Weighers.
	Name() string
	// Weigh returns the raw weight of host h for request r.
	Weigh(h *HostState, r *Request) float64
	// Multiplier returns the multiplier for host h (the configured one or
	// a per-aggregate override). It must be finite.
	Multiplier(h *HostState) float64
}

// Bounds are a weigher's minval/maxval: raw weights are clamped to them
// and normalisation uses them instead of the observed minimum/maximum.
type Bounds struct {
	Min, Max       float64
	HasMin, HasMax bool
}

// BoundedWeigher is a Weigher with Nova's minval and/or maxval.
type BoundedWeigher interface {
	Weigher
	Bounds() Bounds
}
