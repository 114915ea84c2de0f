package scheduler

import "math"

// wstep is one weigher contributing to this request's totals.
type wstep struct {
	kind   weigherKind // -1: custom
	idx    int         // index in Scheduler.weighers
	lo     float64
	rng    float64
	custom int // index into state.raw for custom weighers
}

// bounds tracks the minimum and maximum raw weight of each built-in
// weigher over the hosts being weighed.
type bounds struct {
	lo, hi [numWeigherKinds]float64
	n      int
}

// usedWeighers returns which built-in weighers have something to weigh:
// a cross-cell weigher outside a cross-cell move, or a server-group
// weigher without a group of its policy, gives every host 0, so all its
// normalised weights are 0 (Nova's "all equal").
func (r *run) usedWeighers() (used [numWeigherKinds]bool) {
	for _, k := range r.s.wkind {
		if k < 0 {
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
		used[k] = true
	}
	return used
}

// observe adds one host to the bounds of the used built-in weighers
// (straight-line code: it runs once per host per request).
func (r *run) observe(b *bounds, used *[numWeigherKinds]bool, h *hostHot, members int32) {
	if b.n == 0 {
		for k := range b.lo {
			b.lo[k], b.hi[k] = math.Inf(1), math.Inf(-1)
		}
		// The weighers with minval 0 normalise from 0 and clamp at 0: only
		// their maximum matters, and starting it at 0 is the clamp.
		b.lo[wRAM], b.lo[wDisk], b.lo[wCPU], b.lo[wIoOps] = 0, 0, 0, 0
		b.hi[wRAM], b.hi[wDisk], b.hi[wCPU], b.hi[wIoOps] = 0, 0, 0, 0
	}
	b.n++
	if used[wRAM] {
		if v := float64(h.freeRAM); v > b.hi[wRAM] {
			b.hi[wRAM] = v
		}
	}
	if used[wDisk] {
		if v := float64(h.freeDisk); v > b.hi[wDisk] {
			b.hi[wDisk] = v
		}
	}
	if used[wCPU] {
		if v := h.cpuFree; v > b.hi[wCPU] {
			b.hi[wCPU] = v
		}
	}
	if used[wIoOps] {
		if v := float64(h.ioOps); v > b.hi[wIoOps] {
			b.hi[wIoOps] = v
		}
	}
	if used[wBuildFailure] {
		v := float64(h.failedBuilds)
		if v < b.lo[wBuildFailure] {
			b.lo[wBuildFailure] = v
		}
		if v > b.hi[wBuildFailure] {
			b.hi[wBuildFailure] = v
		}
	}
	if used[wCrossCell] {
		v := -1.0
		if h.cell == r.reqCell {
			v = 1
		}
		if v < b.lo[wCrossCell] {
			b.lo[wCrossCell] = v
		}
		if v > b.hi[wCrossCell] {
			b.hi[wCrossCell] = v
		}
	}
	if used[wSoftAffinity] {
		v := float64(members)
		if v < b.lo[wSoftAffinity] {
			b.lo[wSoftAffinity] = v
		}
		if v > b.hi[wSoftAffinity] {
			b.hi[wSoftAffinity] = v
		}
	}
	if used[wSoftAntiAffinity] {
		v := -1 * float64(members)
		if v < b.lo[wSoftAntiAffinity] {
			b.lo[wSoftAntiAffinity] = v
		}
		if v > b.hi[wSoftAntiAffinity] {
			b.hi[wSoftAntiAffinity] = v
		}
	}
}

func (r *run) hot(id int32) *hostHot {
	if r.anyConsumed && r.st.flags[id]&bitConsumed != 0 {
		return &r.st.over[id].hot
	}
	return &r.hs.hot[id]
}

// weigh sets st.total[id] for every id: Nova's BaseWeightHandler with
// min-max normalisation, in weigher order, so the sums are bit for bit
// those Nova computes. Weighers whose normalised weights are all 0 (equal
// raw weights, or nothing to weigh) are skipped: they would add exactly 0.
// b holds the bounds when the filter pass already gathered them.
func (r *run) weigh(ids []int32, b *bounds) {
	s, st, hs := r.s, r.st, r.hs
	total := st.total
	for _, id := range ids {
		total[id] = 0
	}
	if len(ids) <= 1 || len(s.weighers) == 0 {
		return
	}
	used := r.usedWeighers()
	if b == nil || b.n != len(ids) {
		b = &bounds{}
		for _, id := range ids {
			r.observe(b, &used, r.hot(id), st.members[id])
		}
	}
	var stepsBuf [16]wstep
	steps := stepsBuf[:0]
	nCustom := 0
	for _, k := range s.wkind {
		if k < 0 {
			nCustom++
		}
	}
	if len(st.raw) < nCustom {
		st.raw = make([][]float64, nCustom)
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
		l, h := b.lo[k], b.hi[k]
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
	// Per built-in kind: the normalisation, and whether it contributes.
	var on [numWeigherKinds]bool
	var lo, rng [numWeigherKinds]float64
	for _, sp := range steps {
		if sp.kind >= 0 {
			on[sp.kind], lo[sp.kind], rng[sp.kind] = true, sp.lo, sp.rng
		}
	}
	defaultOrder := s.defaultOrder
	mult := s.p.mult
	mult[multBuildFailure] = -1 * mult[multBuildFailure]
	members := st.members
	pk := &st.pick
	pick := pk.on
	// total += multiplier × normalised weight, weigher by weigher, in the
	// configured order (the order of the additions decides the last bit).
	for p, id := range ids {
		h := r.hot(id)
		m := &mult
		var hm [numMultipliers]float64
		if h.mult >= 0 {
			ov := &hs.mults[h.mult]
			hm = mult
			for k := 0; k < numMultipliers; k++ {
				if ov.set&(1<<k) != 0 {
					hm[k] = ov.v[k]
				}
			}
			hm[multBuildFailure] = -1 * ov.v[multBuildFailure]
			if ov.set&(1<<multBuildFailure) == 0 {
				hm[multBuildFailure] = mult[multBuildFailure]
			}
			m = &hm
		}
		var cRAM, cDisk, cCPU, cIO, cBF, cX, cSA, cSAA float64
		if on[wRAM] {
			v := float64(h.freeRAM)
			if v < 0 {
				v = 0
			}
			cRAM = float64(m[multRAM] * ((v - lo[wRAM]) / rng[wRAM]))
		}
		if on[wDisk] {
			v := float64(h.freeDisk)
			if v < 0 {
				v = 0
			}
			cDisk = float64(m[multDisk] * ((v - lo[wDisk]) / rng[wDisk]))
		}
		if on[wCPU] {
			v := h.cpuFree
			if v < 0 {
				v = 0
			}
			cCPU = float64(m[multCPU] * ((v - lo[wCPU]) / rng[wCPU]))
		}
		if on[wIoOps] {
			cIO = float64(m[multIOOps] * ((float64(h.ioOps) - lo[wIoOps]) / rng[wIoOps]))
		}
		if on[wBuildFailure] {
			cBF = float64(m[multBuildFailure] * ((float64(h.failedBuilds) - lo[wBuildFailure]) / rng[wBuildFailure]))
		}
		if on[wCrossCell] {
			v := -1.0
			if h.cell == r.reqCell {
				v = 1
			}
			cX = float64(m[multCrossCell] * ((v - lo[wCrossCell]) / rng[wCrossCell]))
		}
		if on[wSoftAffinity] {
			v := float64(members[id])
			cSA = float64(m[multSoftAffinity] * ((v - lo[wSoftAffinity]) / rng[wSoftAffinity]))
		}
		if on[wSoftAntiAffinity] {
			v := -1 * float64(members[id])
			cSAA = float64(m[multSoftAntiAffinity] * ((v - lo[wSoftAntiAffinity]) / rng[wSoftAntiAffinity]))
		}
		t := 0.0
		if defaultOrder {
			// Nova's all_weighers() order. A weigher that contributes
			// nothing adds +0.0, which never changes a sum that starts at
			// +0.0, so the result is bit for bit the configured sum.
			t += cX
			t += cCPU
			t += cBF
			t += cSA
			t += cSAA
			t += cRAM
			t += cDisk
			t += cIO
		} else {
			c := [numWeigherKinds]float64{wRAM: cRAM, wDisk: cDisk, wCPU: cCPU, wIoOps: cIO,
				wBuildFailure: cBF, wCrossCell: cX, wSoftAffinity: cSA, wSoftAntiAffinity: cSAA}
			for i := range steps {
				sp := &steps[i]
				if sp.kind >= 0 {
					t += c[sp.kind]
					continue
				}
				wm := s.weighers[sp.idx].Multiplier(r.hostState(id))
				t += float64(wm * ((st.raw[sp.custom][p] - sp.lo) / sp.rng))
			}
		}
		total[id] = t
		if t-t != 0 && r.badWeight < 0 { // ±Inf or NaN
			r.badWeight = id
		}
		if pick {
			if c := h.cell; t > pk.gTail || t > pk.cTail[c] {
				pk.offer(id, t, c)
			}
		}
	}
	pk.fed = pick
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
