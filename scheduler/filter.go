package scheduler

// step is one filter to run for the current pick.
type step struct {
	kind filterKind // -1: custom
	idx  int        // index in Scheduler.filters
}

// filter runs the filters for pick k over ids, in place, and returns the
// survivors. Every filter is a pure per-host predicate, so running the
// chain host by host removes exactly the hosts Nova's filter-by-filter
// loop removes, and charges each to the same filter; the loop stops early
// because a host stops at its first failing filter.
func (r *run) filter(ids []int32, k int) []int32 {
	if r.forced {
		return ids // forced hosts and nodes skip the filters
	}
	s, st, hs := r.s, r.st, r.hs
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
		return ids
	}
	req := &r.req.Flavor
	reqDisk := requestedDiskMB(req)
	maxIO := int64(s.p.cfg.MaxIOOpsPerHost)
	maxInst := int64(s.p.cfg.MaxInstancesPerHost)
	flags, members := st.flags, st.members
	hot := hs.hot
	out := ids[:0]
hosts:
	for _, id := range ids {
		h := &hot[id]
		fl := flags[id]
		if fl&bitConsumed != 0 {
			h = &st.over[id].hot
		}
		for _, sp := range steps {
			var pass bool
			switch sp.kind {
			case fCompute:
				pass = h.enabled && h.up
			case fAvailabilityZone:
				pass = r.azPass(h.class)
			case fRam:
				pass = ramPasses(h.totalRAM, h.freeRAM, h.ramRatio, req.MemoryMB)
			case fCore:
				pass = corePasses(h.vcpusTotal, h.vcpusUsed, h.cpuRatio, req.VCPUs)
			case fDisk:
				pass = diskPasses(h.totalDiskGB, h.freeDisk, h.diskRatio, reqDisk)
			case fImageProperties:
				pass = r.imgPass(h.class)
			case fSameHost:
				pass = fl&bitSame != 0
			case fDifferentHost:
				pass = fl&bitDiff == 0
			case fGroupAffinity:
				pass = fl&bitGroupHost != 0
			case fGroupAntiAffinity:
				pass = fl&bitMoving != 0 || int64(members[id]) < r.maxPerHost
			case fIoOps:
				pass = h.ioOps < maxIO
			case fNumInstances:
				pass = h.numInstances < maxInst
			case fRetry:
				pass = fl&bitTried == 0
			default:
				pass = s.filters[sp.idx].HostPasses(r.hostState(id), r.pluginReq())
			}
			if !pass {
				st.counts[sp.idx]++
				if s.explain {
					st.removed[id] = int32(sp.idx + 1)
				}
				continue hosts
			}
		}
		out = append(out, id)
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
	}
	return true
}

func (r *run) azPass(class int32) bool {
	c := r.st.azOK[class]
	if c == 0 {
		hc := &r.hs.classes[class]
		c = 2
		if azPasses(r.req.AvailabilityZone, hc.zones, hc.hasZone, r.s.p.cfg.DefaultAvailabilityZone) {
			c = 1
		}
		r.st.azOK[class] = c
	}
	return c == 1
}

func (r *run) imgPass(class int32) bool {
	c := r.st.imgOK[class]
	if c == 0 {
		hc := &r.hs.classes[class]
		c = 2
		if imagePasses(&r.img, hc.supported, hc.hvVersion) {
			c = 1
		}
		r.st.imgOK[class] = c
	}
	return c == 1
}
