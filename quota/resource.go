package quota

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Resource is one quota resource. Its String form is the name Nova uses in
// its quota tables and API ("instances", "cores", "ram").
type Resource uint8

// The resources the ledger counts. Instances, Cores and RAM are Nova's
// compute quotas. DiskGB (root plus ephemeral gigabytes) is not a Nova
// compute quota; it is counted only when a caller asks for it.
const (
	Instances Resource = iota // "instances": number of servers
	Cores                     // "cores": vCPUs (flavor vcpus)
	RAM                       // "ram": megabytes of memory (flavor memory_mb)
	DiskGB                    // "disk_gb": root_gb + ephemeral_gb
)

// NumResources is the number of resources the ledger knows.
const NumResources = 4

// resourceNames returns Nova's names of the resources, indexed by Resource.
// It is a function, not a package variable, so that nothing can change it.
func resourceNames() [NumResources]string {
	return [NumResources]string{"instances", "cores", "ram", "disk_gb"}
}

// Resources returns every known resource in a fixed order.
func Resources() []Resource { return []Resource{Instances, Cores, RAM, DiskGB} }

// Valid reports whether r is a known resource.
func (r Resource) Valid() bool { return r < NumResources }

// String returns Nova's name of the resource, or "resource(N)" for an
// unknown one.
func (r Resource) String() string {
	if r.Valid() {
		return resourceNames()[r]
	}
	return fmt.Sprintf("resource(%d)", uint8(r))
}

// ParseResource returns the resource Nova calls name. An unknown name gives
// an error that wraps ErrUnknownResource.
func ParseResource(name string) (Resource, error) {
	for i, n := range resourceNames() {
		if n == name {
			return Resource(i), nil
		}
	}
	return 0, &InputError{Op: "parse resource", Field: "resource", Value: name, Err: ErrUnknownResource}
}

// MarshalText encodes the resource as its Nova name, so maps keyed by
// Resource encode as JSON objects keyed "cores", "ram", ...
func (r Resource) MarshalText() ([]byte, error) {
	if !r.Valid() {
		return nil, &InputError{Op: "marshal resource", Field: "resource", Value: r.String(), Err: ErrUnknownResource}
	}
	return []byte(resourceNames()[r]), nil
}

// UnmarshalText decodes a Nova resource name.
func (r *Resource) UnmarshalText(b []byte) error {
	v, err := ParseResource(string(b))
	if err != nil {
		return err
	}
	*r = v
	return nil
}

// Amounts holds one number per resource, indexed by Resource:
// a[quota.Cores] is the cores figure.
type Amounts [NumResources]int64

// Deltas returns the non-zero amounts as a Deltas map.
func (a Amounts) Deltas() Deltas {
	d := Deltas{}
	for r, v := range a {
		if v != 0 {
			d[Resource(r)] = v
		}
	}
	return d
}

// String names each amount, in resource order:
// "[instances=0 cores=2 ram=4096 disk_gb=0]". fmt uses it for Amounts
// fields too, so a printed Usage or Counters says which figure is which.
func (a Amounts) String() string {
	var b strings.Builder
	b.WriteByte('[')
	for r, v := range a {
		if r > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(Resource(r).String())
		b.WriteByte('=')
		b.WriteString(strconv.FormatInt(v, 10))
	}
	b.WriteByte(']')
	return b.String()
}

// IsZero reports whether every amount is zero.
func (a Amounts) IsZero() bool { return a == Amounts{} }

// Deltas maps resources to signed changes, as Nova's reserve(**deltas)
// does: a positive delta asks for more, a negative one gives back. Absent
// resources do not change.
type Deltas map[Resource]int64

// Amounts converts d to an Amounts array. An unknown resource gives an error
// wrapping ErrUnknownResource; a delta whose size exceeds MaxAmount gives one
// wrapping ErrInvalidDelta.
func (d Deltas) Amounts() (Amounts, error) {
	var a Amounts
	for r, v := range d {
		if !r.Valid() {
			return Amounts{}, &InputError{Op: "deltas", Field: "resource", Value: r.String(), Err: ErrUnknownResource}
		}
		if v > MaxAmount || v < -MaxAmount {
			return Amounts{}, &InputError{Op: "deltas", Field: r.String(), Value: fmt.Sprint(v), Err: ErrInvalidDelta}
		}
		a[r] = v
	}
	return a, nil
}

// String formats the deltas in resource order, e.g. "cores=+2 ram=-2048".
func (d Deltas) String() string {
	keys := make([]Resource, 0, len(d))
	for r := range d {
		keys = append(keys, r)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	var b strings.Builder
	for i, r := range keys {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%+d", r, d[r])
	}
	return b.String()
}

// MaxAmount bounds every delta, limit and usage figure the ledger accepts,
// so that sums of them cannot overflow an int64.
const MaxAmount int64 = 1 << 48

// Unlimited is the limit that never refuses, Nova's −1.
const Unlimited int64 = -1

// Limits maps resources to limits: Unlimited (−1) or a value ≥ 0.
type Limits map[Resource]int64

// NovaDefaultLimits returns Nova's default project quotas for the compute
// resources (quota_instances=10, quota_cores=20, quota_ram=51200) and leaves
// DiskGB unlimited.
func NovaDefaultLimits() Limits {
	return Limits{Instances: 10, Cores: 20, RAM: 51200, DiskGB: Unlimited}
}

// amounts validates l and merges it over base.
func (l Limits) amounts(op string, base Amounts) (Amounts, error) {
	for r, v := range l {
		if !r.Valid() {
			return Amounts{}, &InputError{Op: op, Field: "resource", Value: r.String(), Err: ErrUnknownResource}
		}
		if v < Unlimited || v > MaxAmount {
			return Amounts{}, &InputError{Op: op, Field: r.String(), Value: fmt.Sprint(v), Err: ErrInvalidLimit}
		}
		base[r] = v
	}
	return base, nil
}
