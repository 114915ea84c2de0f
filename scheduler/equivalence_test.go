package scheduler_test

import (
	"errors"
	"fmt"
	"math"
	"math/rand"
	"testing"

	"github.com/xenflow/xenflow/scheduler"
	"github.com/xenflow/xenflow/scheduler/schedjson"
)

// opaqueFilter hides a built-in filter's type, so the scheduler runs it
// through the Filter interface like a filter of the caller's.
type opaqueFilter struct{ f scheduler.Filter }

func (o opaqueFilter) Name() string { return "X" + o.f.Name() }
func (o opaqueFilter) HostPasses(h *scheduler.HostState, r *scheduler.Request) bool {
	return o.f.HostPasses(h, r)
}
func (o opaqueFilter) RunFilterOncePerRequest() bool {
	return o.f.(scheduler.OncePerRequestFilter).RunFilterOncePerRequest()
}

type opaqueWeigher struct{ w scheduler.Weigher }

func (o opaqueWeigher) Name() string { return "X" + o.w.Name() }
func (o opaqueWeigher) Weigh(h *scheduler.HostState, r *scheduler.Request) float64 {
	return o.w.Weigh(h, r)
}
func (o opaqueWeigher) Multiplier(h *scheduler.HostState) float64 { return o.w.Multiplier(h) }
func (o opaqueWeigher) Bounds() scheduler.Bounds {
	return o.w.(scheduler.BoundedWeigher).Bounds()
}

// TestPathsAgree checks, on random documents using every filter, that the
// three ways of evaluating a request agree exactly: the explain path
// (full sorts), the fast path (top-N without sorting) and the plugin path
// (every built-in called through the public Filter and Weigher
// interfaces on HostState, as a caller's plugins are).
func TestPathsAgree(t *testing.T) {
	g := gen{r: rand.New(rand.NewSource(7))}
	for i := 0; i < 600; i++ {
		doc := g.document(1 + g.r.Intn(40))
		in, err := doc.Input()
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		hs, err := scheduler.NewHostSet(in.Hosts)
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		seq := func() func(int) int {
			r := rand.New(rand.NewSource(int64(i)))
			return r.Intn
		}
		explain, err := scheduler.New(in.Config, scheduler.WithRand(seq()), scheduler.WithExplain())
		if err != nil {
			t.Fatal(err)
		}
		fast, err := scheduler.New(in.Config, scheduler.WithRand(seq()))
		if err != nil {
			t.Fatal(err)
		}
		pcfg := in.Config
		pcfg.EnabledFilters, pcfg.Weighers = nil, nil
		var opts []scheduler.Option
		for _, name := range in.Config.EnabledFilters {
			f, err := scheduler.NewFilter(name, in.Config)
			if err != nil {
				t.Fatal(err)
			}
			opts = append(opts, scheduler.WithFilter(opaqueFilter{f}))
		}
		for _, name := range in.Config.Weighers {
			w, err := scheduler.NewWeigher(name, in.Config)
			if err != nil {
				t.Fatal(err)
			}
			opts = append(opts, scheduler.WithWeigher(opaqueWeigher{w}))
		}
		plugin, err := scheduler.New(pcfg, append(opts, scheduler.WithRand(seq()), scheduler.WithExplain())...)
		if err != nil {
			t.Fatal(err)
		}
		a, errA := explain.Select(hs, &in.Request)
		b, errB := fast.Select(hs, &in.Request)
		c, errC := plugin.Select(hs, &in.Request)
		if errors.Is(errA, scheduler.ErrNoValidHost) {
			if !errors.Is(errB, scheduler.ErrNoValidHost) || !errors.Is(errC, scheduler.ErrNoValidHost) {
				t.Fatalf("case %d: explain says no valid host, fast %v, plugin %v", i, errB, errC)
			}
			var ea, ec *scheduler.NoValidHostError
			errors.As(errA, &ea)
			errors.As(errC, &ec)
			sameCounts(t, i, ea.FilteredOut, ec.FilteredOut)
			continue
		}
		if errA != nil || errB != nil || errC != nil {
			t.Fatalf("case %d: %v / %v / %v", i, errA, errB, errC)
		}
		sameSelections(t, i, "fast", a.Selections, b.Selections)
		sameSelections(t, i, "plugin", a.Selections, c.Selections)
		sameCounts(t, i, a.FilteredOut, b.FilteredOut)
		sameCounts(t, i, a.FilteredOut, c.FilteredOut)
		if len(a.Weighed) != len(c.Weighed) {
			t.Fatalf("case %d: weighed %d vs plugin %d", i, len(a.Weighed), len(c.Weighed))
		}
		for j := range a.Weighed {
			if a.Weighed[j] != c.Weighed[j] {
				t.Fatalf("case %d: weighed[%d] %+v vs plugin %+v", i, j, a.Weighed[j], c.Weighed[j])
			}
		}
	}
}

func sameSelections(t *testing.T, i int, what string, a, b []scheduler.Selection) {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("case %d: %s: %d selections vs %d", i, what, len(b), len(a))
	}
	for j := range a {
		x, y := a[j], b[j]
		if x.Index != y.Index || x.Weight != y.Weight || len(x.Alternates) != len(y.Alternates) {
			t.Fatalf("case %d: %s: selection %d: %+v vs %+v", i, what, j, y, x)
		}
		for k := range x.Alternates {
			if x.Alternates[k] != y.Alternates[k] {
				t.Fatalf("case %d: %s: alternates of %d differ: %+v vs %+v", i, what, j, y.Alternates, x.Alternates)
			}
		}
	}
}

func sameCounts(t *testing.T, i int, a, b []scheduler.FilterCount) {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("case %d: %d filters vs %d", i, len(a), len(b))
	}
	for j := range a {
		if a[j].Removed != b[j].Removed {
			t.Fatalf("case %d: %s removed %d vs %s %d", i, a[j].Filter, a[j].Removed, b[j].Filter, b[j].Removed)
		}
	}
}

var _ = math.Abs
var _ = schedjson.Parse

// TestFastPathManyCells covers the fast path with many cells and ties,
// and its fallback when there are more cells than it follows inline or
// more alternates than it keeps.
func TestFastPathManyCells(t *testing.T) {
	for _, cells := range []int{20, 40} {
		testFastPathCells(t, cells)
	}
}

func testFastPathCells(t *testing.T, cells int) {
	r := rand.New(rand.NewSource(3))
	var hosts []scheduler.HostState
	for i := 0; i < 300; i++ {
		h := host(fmt.Sprintf("h%d", i), fmt.Sprintf("cell%d", r.Intn(cells)), int64(r.Intn(8)*1024))
		hosts = append(hosts, h)
	}
	hs, err := scheduler.NewHostSet(hosts)
	if err != nil {
		t.Fatal(err)
	}
	for _, alts := range []int{1, 3, 20} {
		for _, subset := range []int{1, 5} {
			cfg := scheduler.DefaultConfig()
			cfg.MaxAttempts, cfg.HostSubsetSize = alts, subset
			mk := func(opts ...scheduler.Option) *scheduler.Result {
				s, err := scheduler.New(cfg, append(opts, scheduler.WithRand(rand.New(rand.NewSource(9)).Intn))...)
				if err != nil {
					t.Fatal(err)
				}
				res, err := s.Select(hs, &scheduler.Request{Flavor: scheduler.Flavor{MemoryMB: 512}})
				if err != nil {
					t.Fatal(err)
				}
				return res
			}
			sameSelections(t, alts*10+subset, "fast", mk(scheduler.WithExplain()).Selections, mk().Selections)
		}
	}
}
