package scheduler

import (
	"slices"
	"strings"
)

// Selection is the host chosen for one instance, with its alternates
// (hosts of the same cell to try, in order, if the build there fails).
type Selection struct {
	Host   string
	Node   string
	Cell   string
	Index  int     // position of the host in the HostSet
	Weight float64 // the host's total weight when it was chosen
	// Alternates are at most MaxAttempts-1 other hosts of the same cell,
	// best first; none of them is selected for another instance.
	Alternates []HostNode
}

// WeighedHost is one host of a ranking.
type WeighedHost struct {
	Host   string
	Node   string
	Index  int
	Weight float64
}

// Result is the outcome of Select.
type Result struct {
	// Selections has one entry per instance, in request order.
	Selections []Selection
	// FilteredOut says how many hosts each filter removed over the whole
	// request, in the order the filters ran (filters that removed none
	// included).
	FilteredOut []FilterCount
	// Weighed is, with WithExplain, every host that passed the filters for
	// the first instance, best first, with its weight.
	Weighed []WeighedHost
	// FilteredHosts is, with WithExplain, the hosts each filter removed
	// (by host name; only filters that removed some host appear).
	FilteredHosts map[string][]string
}

// Per-host flags of one request. The six lowest bits are those the
// filters read; filterBuiltin turns them into failures with one table.
const (
	bitSame      uint16 = 1 << iota // holds a same_host instance
	bitDiff                         // holds a different_host instance
	bitGroupHost                    // is one of the server group's hosts
	bitTried                        // was tried already (RetryFilter)
	bitMoving                       // holds the instance being placed
	bitAntiFull                     // holds max_server_per_host group members
	bitIgnored
	bitForcedHost
	bitForcedNode
	bitConsumed
	bitRequested

	filterFlagBits = 6
)

// overlay is a host changed by consume_from_request during this request.
type overlay struct {
	hot   hostHot
	state HostState // for filters and weighers given by the caller
}

// state is the per-request scratch space, reused through a sync.Pool.
type state struct {
	flags   []uint16
	members []int32
	total   []float64
	ids     []int32
	next    []int32
	marked  []int32 // hosts whose flags or members are set
	moving  []int32 // hosts marked bitMoving for the current pick
	removed []int32 // explain: filter index + 1 that removed each host
	azOK    []int8  // per class: 0 unknown, 1 pass, 2 fail
	imgOK   []int8
	clsFail []uint64    // per class: AZ and image failures for this pick
	raw     [][]float64 // per custom weigher
	counts  []int
	over    map[int32]*overlay
	top     []int32
	pick    picker
}

func (s *Scheduler) getState(hs *HostSet) *state {
	st, _ := s.pool.Get().(*state)
	if st == nil {
		st = &state{}
	}
	n := len(hs.states)
	if cap(st.flags) < n {
		st.flags = make([]uint16, n)
		st.members = make([]int32, n)
		st.total = make([]float64, n)
		st.ids = make([]int32, 0, n)
		st.next = make([]int32, 0, n)
	}
	st.flags = st.flags[:n]
	st.members = st.members[:n]
	st.total = st.total[:n]
	if s.explain {
		if cap(st.removed) < n {
			st.removed = make([]int32, n)
		}
		st.removed = st.removed[:n]
		clear(st.removed)
	}
	nc := len(hs.classes)
	if cap(st.azOK) < nc {
		st.azOK = make([]int8, nc)
		st.imgOK = make([]int8, nc)
	}
	if cap(st.clsFail) < nc {
		st.clsFail = make([]uint64, nc)
	}
	st.azOK = st.azOK[:nc]
	st.imgOK = st.imgOK[:nc]
	st.clsFail = st.clsFail[:nc]
	clear(st.azOK)
	clear(st.imgOK)
	if cap(st.counts) < len(s.filters) {
		st.counts = make([]int, len(s.filters))
	}
	st.counts = st.counts[:len(s.filters)]
	clear(st.counts)
	st.pick.on = false
	return st
}

func (s *Scheduler) putState(st *state) {
	for _, id := range st.marked {
		st.flags[id] = 0
		st.members[id] = 0
	}
	st.marked = st.marked[:0]
	st.moving = st.moving[:0]
	st.over = nil
	s.pool.Put(st)
}

func (st *state) mark(id int32, bit uint16) {
	if st.flags[id] == 0 && st.members[id] == 0 {
		st.marked = append(st.marked, id)
	}
	st.flags[id] |= bit
}

func (st *state) addMember(id int32) {
	if st.flags[id] == 0 && st.members[id] == 0 {
		st.marked = append(st.marked, id)
	}
	st.members[id]++
}

// addMember counts one more group member on host id.
func (r *run) addMember(id int32) {
	r.st.addMember(id)
	if int64(r.st.members[id]) >= r.maxPerHost {
		r.st.mark(id, bitAntiFull)
	}
}

// run holds what one Select derives from the request.
type run struct {
	s   *Scheduler
	hs  *HostSet
	req *Request
	st  *state

	img         image
	imgActive   bool
	azActive    bool
	sameActive  bool
	diffActive  bool
	groupPolicy string
	affActive   bool // affinity with a non-empty host list
	triedActive bool
	badWeight   int32     // a host whose total weight is not finite, or -1
	caps        []capSpec // the extra specs ComputeCapabilitiesFilter checks
	maxPerHost  int64
	reqCell     int32 // -1 when no cross-cell weighing
	crossCell   bool
	memberSet   map[string]struct{}
	sameSet     map[string]struct{}
	diffSet     map[string]struct{}
	moving      string
	forced      bool
	anyConsumed bool
	bounds      bounds
	pickReq     Request // what custom plugins see
	pickGroup   InstanceGroup

	ignored, notForced int
}

// Select picks a host for each instance of req. A *NoValidHostError
// (errors.Is ErrNoValidHost) says which filter removed how many hosts; a
// *BadInputError names a request field that cannot be used; a
// *NonFiniteWeightError (errors.Is ErrNonFiniteWeight) says that weight
// multipliers made a host's weight infinite. hs is not
// modified: resources consumed between the picks of a multi-create live
// in this call only (apply them to hs with Consume).
func (s *Scheduler) Select(hs *HostSet, req *Request) (*Result, error) {
	if hs == nil || len(hs.states) == 0 {
		return nil, badInput("hosts", "no hosts")
	}
	if req == nil {
		return nil, badInput("request", "missing request")
	}
	if err := req.validate(); err != nil {
		return nil, err
	}
	im, err := req.image(s.p.defArch)
	if err != nil {
		return nil, err
	}
	st := s.getState(hs)
	defer s.putState(st)
	r := &run{s: s, hs: hs, req: req, st: st, img: im, badWeight: -1}
	r.prepare()

	numInst := req.numInstances()
	numAlts := s.p.cfg.MaxAttempts - 1
	res := &Result{Selections: make([]Selection, 0, numInst)}
	ids := r.candidates(st.ids[:0])
	if len(ids) == 0 {
		return nil, r.noValidHost(0, numInst)
	}
	fast := numInst == 1 && !s.explain && s.p.cfg.HostSubsetSize+numAlts <= 64 &&
		!(s.p.cfg.ShuffleBestSameWeighedHosts && s.intn != nil)
	var order []int32
	for k := 0; k < numInst; k++ {
		r.setMoving(k)
		ids = r.filter(ids, k, &r.bounds)
		if len(ids) == 0 {
			st.ids = ids
			return nil, r.noValidHost(k, numInst)
		}
		if fast {
			st.pick.reset(s.p.cfg.HostSubsetSize, numAlts+1, len(hs.cells))
		}
		r.weigh(ids, &r.bounds)
		if r.badWeight >= 0 {
			return nil, r.nonFinite()
		}
		var chosen int32
		if fast {
			chosen = r.chooseTop(ids)
		} else {
			r.sort(ids)
			if k == 0 && s.explain {
				res.Weighed = r.weighed(ids)
			}
			chosen = r.choose(ids)
		}
		h := &hs.states[chosen]
		res.Selections = append(res.Selections, Selection{
			Host: h.Host, Node: h.Node, Cell: h.Cell, Index: int(chosen), Weight: st.total[chosen],
		})
		if numInst > 1 { // nothing reads the consumption of a single pick
			r.consume(chosen, k)
		}
		order = ids
	}
	st.ids = ids
	if numAlts > 0 {
		if fast {
			r.fastAlternates(&res.Selections[0], ids, numAlts)
		} else {
			if numInst > 1 {
				// Nova filters, weighs and sorts once more after the last
				// pick so that the alternates see every consumption.
				r.setMoving(numInst - 1)
				order = r.filter(order, numInst-1, &r.bounds)
				if len(order) > 0 {
					r.weigh(order, &r.bounds)
					if r.badWeight >= 0 {
						return nil, r.nonFinite()
					}
					r.sort(order)
					r.choose(order)
				}
				st.ids = order
			}
			r.alternates(res.Selections, order, numAlts)
		}
	}
	res.FilteredOut = r.filteredOut()
	if s.explain {
		res.FilteredHosts = r.filteredHosts()
	}
	return res, nil
}

// prepare resolves the request against the host indexes once.
func (r *run) prepare() {
	req, hs, st := r.req, r.hs, r.st
	r.imgActive = r.img.active()
	r.caps = capSpecs(req.Flavor.ExtraSpecs)
	r.azActive = req.AvailabilityZone != ""
	r.reqCell = -1
	if req.RequestedCell != "" && req.AllowCrossCellMove {
		r.crossCell = true
		if c, ok := hs.cellIndex[req.RequestedCell]; ok {
			r.reqCell = c
		}
	}
	if hintActive(req.SameHost) {
		r.sameActive = true
		r.sameSet = make(map[string]struct{}, len(req.SameHost))
		for _, u := range req.SameHost {
			r.sameSet[u] = struct{}{}
			for _, id := range hs.byInstance[u] {
				st.mark(id, bitSame)
			}
		}
	}
	if hintActive(req.DifferentHost) {
		r.diffActive = true
		r.diffSet = make(map[string]struct{}, len(req.DifferentHost))
		for _, u := range req.DifferentHost {
			r.diffSet[u] = struct{}{}
			for _, id := range hs.byInstance[u] {
				st.mark(id, bitDiff)
			}
		}
	}
	if g := req.InstanceGroup; g != nil {
		r.groupPolicy = g.Policy
		r.maxPerHost = maxServerPerHost(g)
		for _, gh := range g.Hosts {
			for _, id := range hs.byHost[gh] {
				st.mark(id, bitGroupHost)
			}
		}
		r.affActive = len(g.Hosts) > 0
		if len(g.Members) > 0 {
			r.memberSet = make(map[string]struct{}, len(g.Members))
			for _, m := range g.Members {
				if _, dup := r.memberSet[m]; dup {
					continue
				}
				r.memberSet[m] = struct{}{}
				for _, id := range hs.byInstance[m] {
					r.addMember(id)
				}
			}
		}
	}
	for _, t := range req.TriedHosts {
		r.triedActive = true
		if id, ok := hs.byHostNode[hostNode{t.Host, t.Node}]; ok {
			st.mark(id, bitTried)
		}
	}
	if r.s.custom {
		r.pickReq = *req
		if g := req.InstanceGroup; g != nil {
			r.pickGroup = *g
			r.pickGroup.Hosts = append([]string(nil), g.Hosts...)
			r.pickReq.InstanceGroup = &r.pickGroup
		}
	}
}

// candidates applies the requested destination, ignore_hosts and
// force_hosts/force_nodes (nova.scheduler.host_manager.get_filtered_hosts).
func (r *run) candidates(ids []int32) []int32 {
	req, hs, st := r.req, r.hs, r.st
	n := int32(len(hs.states))
	restrict := false
	if req.RequestedHost != "" {
		restrict = true
		for _, id := range hs.byHost[req.RequestedHost] {
			if req.RequestedNode == "" || hs.states[id].Node == req.RequestedNode {
				st.mark(id, bitRequested)
			}
		}
	}
	for _, ig := range req.IgnoreHosts {
		for _, id := range hs.byLower[strings.ToLower(ig)] {
			st.mark(id, bitIgnored)
		}
	}
	for _, f := range req.ForceHosts {
		for _, id := range hs.byLower[strings.ToLower(f)] {
			st.mark(id, bitForcedHost)
		}
	}
	for _, f := range req.ForceNodes {
		for _, id := range hs.byNode[f] {
			st.mark(id, bitForcedNode)
		}
	}
	fh, fn := len(req.ForceHosts) > 0, len(req.ForceNodes) > 0
	r.forced = fh || fn
	if !restrict && len(req.IgnoreHosts) == 0 && !r.forced {
		for id := int32(0); id < n; id++ {
			ids = append(ids, id)
		}
		return ids
	}
	afterIgnore := 0
	for id := int32(0); id < n; id++ {
		f := st.flags[id]
		if restrict && f&bitRequested == 0 {
			r.notForced++
			continue
		}
		if f&bitIgnored != 0 {
			r.ignored++
			continue
		}
		afterIgnore++
		if (fh && f&bitForcedHost == 0) || (fn && f&bitForcedNode == 0) {
			r.notForced++
			continue
		}
		ids = append(ids, id)
	}
	return ids
}

// setMoving marks the hosts holding the instance being placed by pick k
// (RequestSpec.instance_uuid).
func (r *run) setMoving(k int) {
	st := r.st
	for _, id := range st.moving {
		st.flags[id] &^= bitMoving
	}
	st.moving = st.moving[:0]
	if len(r.req.InstanceUUIDs) > k && r.req.InstanceUUIDs[k] != "" {
		r.moving = r.req.InstanceUUIDs[k]
	} else if k == 0 {
		r.moving = r.req.InstanceUUID
	}
	if r.moving == "" {
		return
	}
	for _, id := range r.hs.byInstance[r.moving] {
		st.mark(id, bitMoving)
		st.moving = append(st.moving, id)
	}
	for id, ov := range st.over {
		if st.flags[id]&bitMoving == 0 && ov.state.hasInstance(r.moving) {
			st.mark(id, bitMoving)
			st.moving = append(st.moving, id)
		}
	}
	if r.s.custom {
		r.pickReq.InstanceUUID = r.moving
	}
}

func (r *run) hostState(id int32) *HostState {
	if r.st.flags[id]&bitConsumed != 0 {
		return &r.st.over[id].state
	}
	return &r.hs.states[id]
}

// consume is HostState.consume_from_request plus what
// _consume_selected_host does for server groups.
func (r *run) consume(id int32, k int) {
	st, hs, req := r.st, r.hs, r.req
	if st.over == nil {
		st.over = make(map[int32]*overlay)
	}
	ov := st.over[id]
	if ov == nil {
		ov = &overlay{hot: hs.hot[id], state: hs.states[id]}
		ov.state.Instances = append([]string(nil), ov.state.Instances...)
		st.over[id] = ov
		st.mark(id, bitConsumed)
		r.anyConsumed = true
	}
	consumeState(&ov.state, &req.Flavor)
	ov.hot = newHot(&ov.state, ov.hot.cell, ov.hot.class, ov.hot.mult)
	if g := req.InstanceGroup; g != nil {
		host := hs.states[id].Host
		r.affActive = true
		for _, hid := range hs.byHost[host] {
			st.mark(hid, bitGroupHost)
		}
		if r.s.custom {
			r.pickGroup.Hosts = append(r.pickGroup.Hosts, host)
		}
		var uuid string
		if len(req.InstanceUUIDs) > k {
			uuid = req.InstanceUUIDs[k]
		}
		if uuid != "" && !ov.state.hasInstance(uuid) {
			ov.state.Instances = append(ov.state.Instances, uuid)
			if _, ok := r.memberSet[uuid]; ok {
				r.addMember(id)
			}
			if _, ok := r.sameSet[uuid]; ok {
				st.mark(id, bitSame)
			}
			if _, ok := r.diffSet[uuid]; ok {
				st.mark(id, bitDiff)
			}
		}
	}
}

func (r *run) nonFinite() error {
	h := &r.hs.states[r.badWeight]
	return &NonFiniteWeightError{Host: h.Host, Node: h.Node, Weight: r.st.total[r.badWeight]}
}

func (r *run) noValidHost(k, numInst int) error {
	e := &NoValidHostError{
		Instance:    k,
		Requested:   numInst,
		Candidates:  len(r.hs.states),
		Ignored:     r.ignored,
		NotForced:   r.notForced,
		FilteredOut: r.filteredOut(),
	}
	if r.s.explain {
		e.Hosts = r.filteredHosts()
	}
	return e
}

func (r *run) filteredOut() []FilterCount {
	out := make([]FilterCount, len(r.s.filters))
	for i, f := range r.s.filters {
		out[i] = FilterCount{Filter: f.Name(), Removed: r.st.counts[i]}
	}
	return out
}

func (r *run) filteredHosts() map[string][]string {
	m := make(map[string][]string)
	for id, fi := range r.st.removed {
		if fi == 0 {
			continue
		}
		name := r.s.filters[fi-1].Name()
		m[name] = append(m[name], r.hs.states[id].Host)
	}
	return m
}

func (r *run) weighed(ids []int32) []WeighedHost {
	out := make([]WeighedHost, len(ids))
	for i, id := range ids {
		h := &r.hs.states[id]
		out[i] = WeighedHost{Host: h.Host, Node: h.Node, Index: int(id), Weight: r.st.total[id]}
	}
	return out
}

// sort orders ids by weight, highest first, keeping the current order of
// equal weights (Python's sorted is stable).
func (r *run) sort(ids []int32) {
	total := r.st.total
	slices.SortStableFunc(ids, func(a, b int32) int {
		ta, tb := total[a], total[b]
		switch {
		case ta > tb:
			return -1
		case ta < tb:
			return 1
		}
		return 0
	})
}

// choose is the host_subset_size random choice: the chosen host moves to
// the front, the others keep their order.
func (r *run) choose(ids []int32) int32 {
	if r.s.p.cfg.ShuffleBestSameWeighedHosts && r.s.intn != nil && len(ids) > 1 {
		// shuffle_best_same_weighed_hosts: the hosts tied with the best
		// weight are shuffled (Python's random.shuffle) before the subset
		// is taken.
		total := r.st.total
		best := 1
		for best < len(ids) && total[ids[best]] == total[ids[0]] {
			best++
		}
		for i := best - 1; i >= 1; i-- {
			j := r.s.intn(i + 1)
			if j < 0 || j > i {
				j = i
			}
			ids[i], ids[j] = ids[j], ids[i]
		}
	}
	n := r.s.p.cfg.HostSubsetSize
	if n > len(ids) {
		n = len(ids)
	}
	i := 0
	if n > 1 && r.s.intn != nil {
		i = r.s.intn(n)
		if i < 0 || i >= n {
			i = 0
		}
	}
	chosen := ids[i]
	copy(ids[1:i+1], ids[:i])
	ids[0] = chosen
	return chosen
}

// better orders hosts by weight, then by position in the current list.
func better(total []float64, a int32, pa int, b int32, pb int) bool {
	ta, tb := total[a], total[b]
	if ta != tb {
		return ta > tb
	}
	return pa < pb
}

// chooseTop is choose for the first pick without sorting every host: the
// host_subset_size best are kept in a small buffer.
func (r *run) chooseTop(ids []int32) int32 {
	n := r.s.p.cfg.HostSubsetSize
	if n > len(ids) {
		n = len(ids)
	}
	var top []int32
	if pk := &r.st.pick; pk.on && pk.fed {
		top = pk.gID[:pk.gN]
	} else {
		top = topN(r.st.total, ids, n, -1, -1, r.hs, r.st.top[:0])
		r.st.top = top
	}
	i := 0
	if n > 1 && r.s.intn != nil {
		i = r.s.intn(n)
		if i < 0 || i >= n {
			i = 0
		}
	}
	return top[i]
}

// topN returns the n best of ids (by weight, then position), optionally
// only those of cell wantCell and not skip.
func topN(total []float64, ids []int32, n int, wantCell int32, skip int32, hs *HostSet, buf []int32) []int32 {
	var pos [64]int
	buf = buf[:0]
	for p, id := range ids {
		if id == skip || (wantCell >= 0 && hs.hot[id].cell != wantCell) {
			continue
		}
		if len(buf) == n && !better(total, id, p, buf[n-1], pos[n-1]) {
			continue
		}
		if len(buf) < n {
			buf = append(buf, id)
		}
		j := len(buf) - 1
		for j > 0 && better(total, id, p, buf[j-1], pos[j-1]) {
			buf[j] = buf[j-1]
			pos[j] = pos[j-1]
			j--
		}
		buf[j] = id
		pos[j] = p
	}
	return buf
}

func (r *run) fastAlternates(sel *Selection, ids []int32, numAlts int) {
	chosen := int32(sel.Index)
	var alts []int32
	if pk := &r.st.pick; pk.on && pk.fed {
		c := r.hs.hot[chosen].cell
		alts = r.st.top[:0]
		for _, id := range pk.cID[c][:pk.cN[c]] {
			if id != chosen && len(alts) < numAlts {
				alts = append(alts, id)
			}
		}
	} else {
		alts = topN(r.st.total, ids, numAlts, r.hs.hot[chosen].cell, chosen, r.hs, r.st.top[:0])
	}
	r.st.top = alts
	if len(alts) == 0 {
		return
	}
	sel.Alternates = make([]HostNode, len(alts))
	for i, id := range alts {
		h := &r.hs.states[id]
		sel.Alternates[i] = HostNode{Host: h.Host, Node: h.Node}
	}
}

// alternates is _get_alternate_hosts: for each selection, up to numAlts
// hosts of order in the same cell that were not selected.
func (r *run) alternates(sels []Selection, order []int32, numAlts int) {
	selected := make(map[int32]bool, len(sels))
	for _, s := range sels {
		selected[int32(s.Index)] = true
	}
	for si := range sels {
		cell := r.hs.hot[sels[si].Index].cell
		for _, id := range order {
			if len(sels[si].Alternates) >= numAlts {
				break
			}
			if r.hs.hot[id].cell != cell || selected[id] {
				continue
			}
			h := &r.hs.states[id]
			sels[si].Alternates = append(sels[si].Alternates, HostNode{Host: h.Host, Node: h.Node})
		}
	}
}
