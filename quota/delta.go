package quota

// Flavor is the part of a Nova flavor the quota arithmetic reads. Callers
// copy these fields from their own flavor type; the package does not depend
// on any model package.
type Flavor struct {
	VCPUs       int64 // Nova's vcpus, counted as "cores"
	MemoryMB    int64 // Nova's memory_mb, counted as "ram"
	RootGB      int64 // Nova's root_gb, counted in "disk_gb" when asked
	EphemeralGB int64 // Nova's ephemeral_gb, counted in "disk_gb" when asked
}

// DeltaOption changes which resources the delta and charge helpers count.
type DeltaOption func(*deltaConfig)

type deltaConfig struct{ disk bool }

// WithDisk makes the helpers count DiskGB (root_gb + ephemeral_gb) as well as
// cores and RAM. Nova never counted disk; the option exists for deployments
// whose storage is the scarce resource.
func WithDisk() DeltaOption { return func(c *deltaConfig) { c.disk = true } }

func deltaOptions(opts []DeltaOption) deltaConfig {
	var c deltaConfig
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	return c
}

// flavorBound bounds each flavor field before any arithmetic, so that sums
// and differences of fields cannot overflow int64. It is far above
// MaxAmount: a clamped value still makes a delta or charge that the ledger
// refuses with ErrInvalidDelta instead of one that wrapped around.
const flavorBound = 1 << 60

func clampFlavorField(v int64) int64 {
	switch {
	case v > flavorBound:
		return flavorBound
	case v < -flavorBound:
		return -flavorBound
	}
	return v
}

// amounts returns what one instance of flavor f costs.
func (f Flavor) amounts(c deltaConfig) Amounts {
	a := Amounts{Instances: 1, Cores: clampFlavorField(f.VCPUs), RAM: clampFlavorField(f.MemoryMB)}
	if c.disk {
		a[DiskGB] = clampFlavorField(f.RootGB) + clampFlavorField(f.EphemeralGB)
	}
	return a
}

// ResizeQuotaDelta is Nova's resize_quota_delta(new, old, sense, compare):
// for each resource r (cores from vcpus, ram from memory_mb, and disk_gb with
// WithDisk) it computes d = sense × (new[r] − old[r]) and keeps d only when
// compare × d > 0. Only the signs of sense and compare matter; a zero sense
// or compare gives no deltas. The instance count never changes in a resize,
// so Instances never appears.
//
// The three named helpers below are the only combinations Nova used.
func ResizeQuotaDelta(newFlavor, oldFlavor Flavor, sense, compare int, opts ...DeltaOption) Deltas {
	c := deltaOptions(opts)
	n, o := newFlavor.amounts(c), oldFlavor.amounts(c)
	s, k := sign(sense), sign(compare)
	d := Deltas{}
	for r := Cores; r < NumResources; r++ {
		if r == DiskGB && !c.disk {
			continue
		}
		v := s * (n[r] - o[r])
		if k*v > 0 {
			d[r] = v
		}
	}
	return d
}

func sign(v int) int64 {
	switch {
	case v > 0:
		return 1
	case v < 0:
		return -1
	}
	return 0
}

// UpsizeDelta is Nova's upsize_quota_delta: the positive new − old for every
// resource that grows. It is reserved when a resize is requested and
// committed when the destination finishes the resize (finish_resize), so that
// an instance waiting in VERIFY_RESIZE is charged max(old, new).
// A cold migration keeps the flavor, so its upsize delta is empty: it
// reserves nothing.
func UpsizeDelta(newFlavor, oldFlavor Flavor, opts ...DeltaOption) Deltas {
	return ResizeQuotaDelta(newFlavor, oldFlavor, +1, +1, opts...)
}

// DownsizeDelta is Nova's downsize_quota_delta: the negative new − old for
// every resource that shrinks. It is reserved when a resize is confirmed and
// committed when the source has cleaned up, leaving the instance charged its
// new size.
func DownsizeDelta(newFlavor, oldFlavor Flavor, opts ...DeltaOption) Deltas {
	return ResizeQuotaDelta(newFlavor, oldFlavor, +1, -1, opts...)
}

// ReverseUpsizeDelta is Nova's reverse_upsize_quota_delta: the negative
// old − new for every resource that grew. It is reserved when a resize is
// reverted and committed when the source has finished the revert, leaving the
// instance charged its old size. Reverting a downsize needs no delta: the
// larger old size was never released.
func ReverseUpsizeDelta(newFlavor, oldFlavor Flavor, opts ...DeltaOption) Deltas {
	return ResizeQuotaDelta(newFlavor, oldFlavor, -1, -1, opts...)
}

// Charge is what instances cost one user of a project: the input of
// Ledger.Reconcile, which recounts usage from the instances that exist.
type Charge struct {
	User   string
	Amount Amounts
}

// InstanceCharge is the charge of one instance of flavor f owned by user:
// one instance, its vCPUs as cores, its memory as RAM (and its disk with
// WithDisk).
func InstanceCharge(user string, f Flavor, opts ...DeltaOption) Charge {
	return Charge{User: user, Amount: f.amounts(deltaOptions(opts))}
}

// ResizeCharge is the charge of an instance whose resize has reached the
// destination (resize_finish, VERIFY_RESIZE, or a confirm or revert still in
// progress): each resource at max(old, new), because the upsize delta was
// committed at finish_resize and nothing was released yet. Before
// finish_resize the instance is charged InstanceCharge(old); after a confirm
// InstanceCharge(new); after a revert InstanceCharge(old).
func ResizeCharge(user string, oldFlavor, newFlavor Flavor, opts ...DeltaOption) Charge {
	c := deltaOptions(opts)
	o, n := oldFlavor.amounts(c), newFlavor.amounts(c)
	for r := range o {
		if n[r] > o[r] {
			o[r] = n[r]
		}
	}
	return Charge{User: user, Amount: o}
}
