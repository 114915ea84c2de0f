package scheduler

import (
	"sync"
)

// Scheduler runs Nova's filter-and-weigh selection. It is safe for
// concurrent use when its random function is.
type Scheduler struct {
	p        *params
	filters  []Filter
	fkind    []filterKind // -1: a filter given with WithFilter
	fonce    []bool
	weighers []Weigher
	wkind    []weigherKind // -1: a weigher given with WithWeigher
	wbounds  []Bounds
	custom   bool // some filter or weigher is not built in
	intn     func(n int) int
	explain  bool
	pool     sync.Pool // *state
	// defaultOrder: the weighers are the built-ins, each once, in
	// AllWeighers order (a subset keeps that order), so weigh can sum them
	// in straight-line code.
	defaultOrder bool
}

// Option configures New.
type Option func(*options)

type options struct {
	filters  []Filter
	weighers []Weigher
	intn     func(int) int
	explain  bool
}

// WithFilter adds a filter of your own. If Config.EnabledFilters names it
// (by Name), it runs at that position; otherwise it runs after the
// configured filters.
func WithFilter(f Filter) Option { return func(o *options) { o.filters = append(o.filters, f) } }

// WithWeigher adds a weigher of your own, placed like WithFilter places
// filters.
func WithWeigher(w Weigher) Option { return func(o *options) { o.weighers = append(o.weighers, w) } }

// WithRand sets the random function used for host_subset_size: intn(n)
// returns a number in [0, n), like (*math/rand.Rand).Intn. Without it the
// best host is always chosen (index 0).
func WithRand(intn func(n int) int) Option { return func(o *options) { o.intn = intn } }

// WithExplain makes Select also return the full ranking of the first pick
// (Result.Weighed) and, per filter, the hosts it removed
// (Result.FilteredHosts and NoValidHostError.Hosts). It costs a full sort
// and some allocations per request.
func WithExplain() Option { return func(o *options) { o.explain = true } }

// New builds a scheduler from cfg. Unknown filter or weigher names are a
// *BadInputError naming the list entry.
func New(cfg Config, opts ...Option) (*Scheduler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	s := &Scheduler{p: newParams(cfg), intn: o.intn, explain: o.explain}
	used := make([]bool, len(o.filters))
	for i, name := range cfg.EnabledFilters {
		if k, ok := filterKinds[name]; ok {
			s.addFilter(&builtinFilter{kind: k, name: name, p: s.p}, k)
			continue
		}
		found := false
		for j, f := range o.filters {
			if f != nil && f.Name() == name {
				s.addFilter(f, -1)
				used[j] = true
				found = true
				break
			}
		}
		if !found {
			return nil, badInput("config.enabled_filters["+itoa(i)+"]", "unknown filter %q", name)
		}
	}
	for j, f := range o.filters {
		if f == nil {
			return nil, badInput("filters", "nil filter")
		}
		if !used[j] {
			s.addFilter(f, -1)
		}
	}
	wused := make([]bool, len(o.weighers))
	for i, name := range cfg.Weighers {
		if k, ok := weigherKinds[name]; ok {
			s.addWeigher(&builtinWeigher{kind: k, name: name, p: s.p}, k)
			continue
		}
		found := false
		for j, w := range o.weighers {
			if w != nil && w.Name() == name {
				s.addWeigher(w, -1)
				wused[j] = true
				found = true
				break
			}
		}
		if !found {
			return nil, badInput("config.weighers["+itoa(i)+"]", "unknown weigher %q", name)
		}
	}
	for j, w := range o.weighers {
		if w == nil {
			return nil, badInput("weighers", "nil weigher")
		}
		if !wused[j] {
			s.addWeigher(w, -1)
		}
	}
	s.defaultOrder = inDefaultOrder(s.wkind)
	return s, nil
}

// inDefaultOrder reports whether kinds are built-ins, each at most once,
// in the order of AllWeighers.
func inDefaultOrder(kinds []weigherKind) bool {
	pos := -1
	for _, k := range kinds {
		if k < 0 {
			return false
		}
		p := -1
		for i, name := range allWeighers {
			if weigherKinds[name] == k {
				p = i
			}
		}
		if p <= pos {
			return false
		}
		pos = p
	}
	return true
}

func (s *Scheduler) addFilter(f Filter, k filterKind) {
	s.filters = append(s.filters, f)
	s.fkind = append(s.fkind, k)
	once := false
	if k >= 0 {
		once = onceKinds[k]
	} else if of, ok := f.(OncePerRequestFilter); ok {
		once = of.RunFilterOncePerRequest()
	}
	s.fonce = append(s.fonce, once)
	if k < 0 {
		s.custom = true
	}
}

func (s *Scheduler) addWeigher(w Weigher, k weigherKind) {
	s.weighers = append(s.weighers, w)
	s.wkind = append(s.wkind, k)
	var b Bounds
	if bw, ok := w.(BoundedWeigher); ok {
		b = bw.Bounds()
	}
	s.wbounds = append(s.wbounds, b)
	if k < 0 {
		s.custom = true
	}
}

// Filters returns the names of the filters in the order they run.
func (s *Scheduler) Filters() []string {
	names := make([]string, len(s.filters))
	for i, f := range s.filters {
		names[i] = f.Name()
	}
	return names
}

// Weighers returns the names of the weighers in the order they apply.
func (s *Scheduler) Weighers() []string {
	names := make([]string, len(s.weighers))
	for i, w := range s.weighers {
		names[i] = w.Name()
	}
	return names
}
