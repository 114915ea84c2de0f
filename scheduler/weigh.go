package scheduler

// wstep is one weigher contributing to this request's totals.
type wstep struct {
	kind   weigherKind // -1: custom
	idx    int         // index in Scheduler.weighers
	lo     float64
	rng    float64
	custom int // index into state.raw for custom weighers
}

// weigh sets st.total[id] for every id: Nova's BaseWeightHandler with
// min-max normalisation, in weigher order, so the sums are bit for bit
// those Nova computes. Weighers whose normalised weights are all 0 (equal
// raw weights, or a cross-cell or server-group weigher with nothing to
// weigh) are skipped: they add exactly 0.
func (r *run) weigh(ids []int32) {
	s, st, hs := r.s, r.st, r.hs
	total := st.total
	for _, id := range ids {
		total[id] = 0
	}
	if len(ids) <= 1 || len(s.weighers) == 0 {
		return
	}
	// Which built-in kinds have something to weigh.
	var used [numWeigherKinds]bool
	nCustom := 0
	for i, k := range s.wkind {
		if k < 0 {
			nCustom++
			continue
		}
		switch k {
		case wCrossCell:
			if !r.crossCell {
				continue
			}
		case wSoftAffinity:
			if r.groupPolicy != PolicySoftAffinity || len(r.memberSet) == 0 {
				continue
			}
		case wSoftAntiAffinity:
			if r.groupPolicy != PolicySoftAntiAffinity || len(r.memberSet) == 0 {
				continue
			}
		}
		_ = i
		used[k] = true
	}
	// Pass 1: minimum and maximum of the (clamped) raw weights.
	var lo, hi [numWeigherKinds]float64
	first := true
	hot, members := hs.hot, st.members
	for _, id := range ids {
		h := &hot[id]
		if st.flags[id]&bitConsumed != 0 {
			h = &st.over[id].hot
		}
		var raw [numWeigherKinds]float64
		r.raws(h, members[id], &raw)
		if first {
			lo, hi = raw, raw
			first = false
			continue
		}
		for k := weigherKind(0); k < numWeigherKinds; k++ {
			v := raw[k]
			if v < lo[k] {
				lo[k] = v
			}
			if v > hi[k] {
				hi[k] = v
			}
		}
	}
	var stepsBuf [16]wstep
	steps := stepsBuf[:0]
	if nCustom > 0 {
		if len(st.raw) < nCustom {
			st.raw = make([][]float64, nCustom)
		}
	}
	ci := 0
	for i, k := range s.wkind {
		if k < 0 {
			l, h := r.customRaw(i, ci, ids)
			if l != h {
				steps = append(steps, wstep{kind: -1, idx: i, lo: l, rng: h - l, custom: ci})
			}
			ci++
			continue
		}
		if !used[k] {
			continue
		}
		l, h := lo[k], hi[k]
		if hasMinZero[k] {
			l = 0
		}
		if l == h {
			continue
		}
		steps = append(steps, wstep{kind: k, idx: i, lo: l, rng: h - l})
	}
	if len(steps) == 0 {
		return
	}
	mult := &s.p.mult
	// Pass 2: total += multiplier × normalised weight, weigher by weigher.
	for p, id := range ids {
		h := &hot[id]
		if st.flags[id]&bitConsumed != 0 {
			h = &st.over[id].hot
		}
		var raw [numWeigherKinds]float64
		r.raws(h, members[id], &raw)
		var ov *multOverride
		if h.mult >= 0 {
			ov = &hs.mults[h.mult]
		}
		t := 0.0
		for i := range steps {
			sp := &steps[i]
			if sp.kind < 0 {
				w := s.weighers[sp.idx]
				m := w.Multiplier(r.hostState(id))
				t += float64(m * ((st.raw[sp.custom][p] - sp.lo) / sp.rng))
				continue
			}
			mk := weigherMult[sp.kind]
			m := mult[mk]
			if ov != nil && ov.set&(1<<mk) != 0 {
				m = ov.v[mk]
			}
			if sp.kind == wBuildFailure {
				m = -1 * m
			}
			t += float64(m * ((raw[sp.kind] - sp.lo) / sp.rng))
		}
		total[id] = t
	}
}

// raws computes every built-in raw weight of a host, clamped to minval.
func (r *run) raws(h *hostHot, members int32, raw *[numWeigherKinds]float64) {
	raw[wRAM] = float64(h.freeRAM)
	raw[wDisk] = float64(h.freeDisk)
	raw[wCPU] = float64(h.vcpusTotal)*h.cpuRatio - float64(h.vcpusUsed)
	raw[wIoOps] = float64(h.ioOps)
	for k := wRAM; k <= wIoOps; k++ {
		if raw[k] < 0 {
			raw[k] = 0
		}
	}
	raw[wBuildFailure] = float64(h.failedBuilds)
	if r.crossCell {
		if h.cell == r.reqCell {
			raw[wCrossCell] = 1
		} else {
			raw[wCrossCell] = -1
		}
	}
	raw[wSoftAffinity] = float64(members)
	raw[wSoftAntiAffinity] = -1 * float64(members)
}

// customRaw fills state.raw[ci] with the clamped raw weights of custom
// weigher i and returns the normalisation bounds.
func (r *run) customRaw(i, ci int, ids []int32) (lo, hi float64) {
	st := r.st
	if cap(st.raw[ci]) < len(ids) {
		st.raw[ci] = make([]float64, len(ids))
	}
	raw := st.raw[ci][:len(ids)]
	st.raw[ci] = raw
	w := r.s.weighers[i]
	b := r.s.wbounds[i]
	req := r.pluginReq()
	for p, id := range ids {
		v := w.Weigh(r.hostState(id), req)
		if b.HasMin && v < b.Min {
			v = b.Min
		}
		if b.HasMax && v > b.Max {
			v = b.Max
		}
		raw[p] = v
		if p == 0 || v < lo {
			lo = v
		}
		if p == 0 || v > hi {
			hi = v
		}
	}
	if b.HasMin {
		lo = b.Min
	}
	if b.HasMax {
		hi = b.Max
	}
	return lo, hi
}
