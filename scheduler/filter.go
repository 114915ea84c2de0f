package scheduler

import "math/bits"

// step is one filter to run for the current pick.
type step struct {
	kind filterKind // -1: custom
	idx  int        // index in Scheduler.filters
}

// filter runs the filters for pick k over ids, in place, and returns the
// survivors, with the weighers' bounds over them in b. Every filter is a
// pure per-host predicate, so running the chain host by host removes
// exactly the hosts Nova's filter-by-filter loop removes and charges each
// to the same filter: the first one, in the configured order, it fails.
func (r *run) filter(ids []int32, k int, b *bounds) []int32 {
	*b = bounds{}
	if r.forced {
		return ids // forced hosts and nodes skip the filters
	}
	s := r.s
	var stepsBuf [32]step
	steps := stepsBuf[:0]
	for i, kind := range s.fkind {
		if k > 0 && s.fonce[i] {
			continue
		}
		if kind >= 0 && !r.filterActive(kind) {
			continue // passes every host for this request
		}
		steps = append(steps, step{kind: kind, idx: i})
	}
	if len(steps) == 0 {
		return r.observeAll(ids, b)
	}
	if !s.custom && len(steps) <= 64 {
		return r.filterBuiltin(ids, steps, b)
	}
	return r.filterSteps(ids, steps, b)
}

// observeAll gathers the weighers' bounds when no filter runs.
func (r *run) observeAll(ids []int32, b *bounds) []int32 {
	used := r.usedWeighers()
	for _, id := range ids {
		r.observe(b, &used, r.hot(id), r.st.members[id])
	}
	return ids
}

// filterBuiltin evaluates the built-in filters without dispatch: each
// active filter sets its bit (its position among the steps) in a failure
// mask, and the lowest bit names the filter Nova would charge.
func (r *run) filterBuiltin(ids []int32, steps []step, b *bounds) []int32 {
	st := r.st
	var bit [numFilterKinds]uint64
	for i := len(steps) - 1; i >= 0; i-- { // first occurrence wins
		bit[steps[i].kind] = 1 << uint(i)
	}
	bCompute, bAZ, bRam, bCore, bDisk := bit[fCompute], bit[fAvailabilityZone], bit[fRam], bit[fCore], bit[fDisk]
	bImg, bSame, bDiff, bAff, bAnti := bit[fImageProperties], bit[fSameHost], bit[fDifferentHost], bit[fGroupAffinity], bit[fGroupAntiAffinity]
	bIO, bInst, bRetry, bCap := bit[fIoOps], bit[fNumInstances], bit[fRetry], bit[fCapabilities]
	f := &r.req.Flavor
	reqRAM, reqVCPUs, reqDisk := f.MemoryMB, f.VCPUs, requestedDiskMB(f)
	maxIO := int64(r.s.p.cfg.MaxIOOpsPerHost)
	maxInst := int64(r.s.p.cfg.MaxInstancesPerHost)
	flags, members := st.flags, st.members
	// The filters that depend only on the request's flags of a host, as
	// one table from the six flag bits to the failures they cause.
	var flagFail [1 << filterFlagBits]uint64
	for fl := range flagFail {
		f := uint16(fl)
		if f&bitSame == 0 {
			flagFail[fl] |= bSame
		}
		if f&bitDiff != 0 {
			flagFail[fl] |= bDiff
		}
		if f&bitGroupHost == 0 {
			flagFail[fl] |= bAff
		}
		if f&bitTried != 0 {
			flagFail[fl] |= bRetry
		}
		if f&bitMoving == 0 && f&bitAntiFull != 0 {
			flagFail[fl] |= bAnti
		}
	}
	// The filters that depend only on the host's class (zones, supported
	// instances, hypervisor version), once per class.
	clsFail := st.clsFail
	for c := range clsFail {
		var m uint64
		if bAZ != 0 && !r.azPass(int32(c)) {
			m |= bAZ
		}
		if bImg != 0 && !r.imgPass(int32(c)) {
			m |= bImg
		}
		clsFail[c] = m
	}
	used := r.usedWeighers()
	out := ids[:0]
	for _, id := range ids {
		h := r.hot(id)
		fl := flags[id]
		fail := flagFail[fl&(1<<filterFlagBits-1)] | clsFail[h.class]
		if bCompute != 0 && (h.disabled || h.down) {
			fail |= bCompute
		}
		if bRam != 0 && !h.ramPasses(reqRAM) {
			fail |= bRam
		}
		if bCore != 0 && !h.corePasses(reqVCPUs) {
			fail |= bCore
		}
		if bDisk != 0 && !h.diskPasses(reqDisk) {
			fail |= bDisk
		}
		if bIO != 0 && !(h.ioOps < maxIO) {
			fail |= bIO
		}
		if bInst != 0 && !(h.numInstances < maxInst) {
			fail |= bInst
		}
		// ComputeCapabilitiesFilter reads the full host state: run it only
		// when no filter before it has already failed the host.
		if bCap != 0 && fail&(bCap-1) == 0 && !capabilitiesPass(r.hostState(id), r.caps) {
			fail |= bCap
		}
		if fail != 0 {
			r.removed(id, steps[bits.TrailingZeros64(fail)].idx)
			continue
		}
		out = append(out, id)
		r.observe(b, &used, h, members[id])
	}
	return out
}

func (r *run) removed(id int32, filterIdx int) {
	r.st.counts[filterIdx]++
	if r.s.explain {
		r.st.removed[id] = int32(filterIdx + 1)
	}
}

// filterSteps is the general loop, used when filters given by the caller
// take part.
func (r *run) filterSteps(ids []int32, steps []step, b *bounds) []int32 {
	s, st := r.s, r.st
	f := &r.req.Flavor
	reqDisk := requestedDiskMB(f)
	maxIO := int64(s.p.cfg.MaxIOOpsPerHost)
	maxInst := int64(s.p.cfg.MaxInstancesPerHost)
	flags, members := st.flags, st.members
	used := r.usedWeighers()
	out := ids[:0]
hosts:
	for _, id := range ids {
		h := r.hot(id)
		fl := flags[id]
		for _, sp := range steps {
			var pass bool
			switch sp.kind {
			case fCompute:
				pass = !h.disabled && !h.down
			case fAvailabilityZone:
				pass = r.azPass(h.class)
			case fRam:
				pass = h.ramPasses(f.MemoryMB)
			case fCore:
				pass = h.corePasses(f.VCPUs)
			case fDisk:
				pass = h.diskPasses(reqDisk)
			case fImageProperties:
				pass = r.imgPass(h.class)
			case fSameHost:
				pass = fl&bitSame != 0
			case fDifferentHost:
				pass = fl&bitDiff == 0
			case fGroupAffinity:
				pass = fl&bitGroupHost != 0
			case fGroupAntiAffinity:
				pass = fl&bitMoving != 0 || fl&bitAntiFull == 0
			case fIoOps:
				pass = h.ioOps < maxIO
			case fNumInstances:
				pass = h.numInstances < maxInst
			case fRetry:
				pass = fl&bitTried == 0
			case fCapabilities:
				pass = capabilitiesPass(r.hostState(id), r.caps)
			default:
				pass = s.filters[sp.idx].HostPasses(r.hostState(id), r.pluginReq())
			}
			if !pass {
				r.removed(id, sp.idx)
				continue hosts
			}
		}
		out = append(out, id)
		r.observe(b, &used, h, members[id])
	}
	return out
}

func (r *run) pluginReq() *Request {
	return &r.pickReq
}

// filterActive reports whether a built-in filter can remove any host for
// this request; inactive filters pass every host, as in Nova.
func (r *run) filterActive(k filterKind) bool {
	switch k {
	case fAvailabilityZone:
		return r.azActive
	case fImageProperties:
		return r.imgActive
	case fSameHost:
		return r.sameActive
	case fDifferentHost:
		return r.diffActive
	case fGroupAffinity:
		return r.groupPolicy == PolicyAffinity && r.affActive
	case fGroupAntiAffinity:
		return r.groupPolicy == PolicyAntiAffinity
	case fRetry:
		return r.triedActive
	case fCapabilities:
		return len(r.caps) > 0
	}
	return true
}

func (r *run) azPass(class int32) bool {
	c := r.st.azOK[class]
	if c == 0 {
		c = r.azClass(class)
	}
	return c == 1
}

// azClass evaluates AvailabilityZoneFilter once for a host class.
func (r *run) azClass(class int32) int8 {
	hc := &r.hs.classes[class]
	c := int8(2)
	if azPasses(r.req.AvailabilityZone, hc.zones, hc.hasZone, r.s.p.cfg.DefaultAvailabilityZone) {
		c = 1
	}
	r.st.azOK[class] = c
	return c
}

func (r *run) imgPass(class int32) bool {
	c := r.st.imgOK[class]
	if c == 0 {
		c = r.imgClass(class)
	}
	return c == 1
}

// imgClass evaluates ImagePropertiesFilter once for a host class.
func (r *run) imgClass(class int32) int8 {
	hc := &r.hs.classes[class]
	c := int8(2)
	if imagePasses(&r.img, hc.supported, hc.hvVersion, hc.hvStrict, hc.hvOK) {
		c = 1
	}
	r.st.imgOK[class] = c
	return c
}

// ramPasses is the legacy RamFilter on the derived values.
func (h *hostHot) ramPasses(req int64) bool {
	return h.totalRAM >= req && h.ramUsable >= float64(req)
}

// corePasses is the legacy CoreFilter on the derived values.
func (h *hostHot) corePasses(req int64) bool {
	if h.vcpusTotal == 0 {
		return true
	}
	// The ratio is positive, so the limit vcpus_total × ratio is positive
	// here and Nova's "no overcommit against itself" check applies.
	if req > h.vcpusTotal {
		return false
	}
	return !(h.cpuFree < float64(req))
}

// diskPasses is the legacy DiskFilter on the derived values.
func (h *hostHot) diskPasses(req int64) bool {
	return h.totalDiskMB >= req && h.diskUsable >= float64(req)
}
