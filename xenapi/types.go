package xenapi

//go:generate go run ./internal/genapi -out .

// NullRef is the reference xapi uses for "no object".
const NullRef = "OpaqueRef:NULL"

// References to xapi objects. Each class has its own type so that a VDI
// reference cannot be passed where a VM is expected. References are valid
// only while the server runs; uuids are the stable names.
type (
	VMRef      string
	VDIRef     string
	VBDRef     string
	SRRef      string
	HostRef    string
	PoolRef    string
	TaskRef    string
	SessionRef string
	VIFRef     string
	PBDRef     string
)

// isNullRef reports whether r is OpaqueRef:NULL or empty (xapi uses both
// for "no object", e.g. VM.snapshot_of defaults to "").
func isNullRef(r string) bool { return r == "" || r == NullRef }

// IsNull reports whether r refers to no object (OpaqueRef:NULL or "").
func IsNull[R ~string](r R) bool { return isNullRef(string(r)) }

// IsNull reports whether the reference is OpaqueRef:NULL or empty.
func (r VMRef) IsNull() bool { return isNullRef(string(r)) }

// IsNull reports whether the reference is OpaqueRef:NULL or empty.
func (r VDIRef) IsNull() bool { return isNullRef(string(r)) }

// IsNull reports whether the reference is OpaqueRef:NULL or empty.
func (r VBDRef) IsNull() bool { return isNullRef(string(r)) }

// IsNull reports whether the reference is OpaqueRef:NULL or empty.
func (r SRRef) IsNull() bool { return isNullRef(string(r)) }

// IsNull reports whether the reference is OpaqueRef:NULL or empty.
func (r HostRef) IsNull() bool { return isNullRef(string(r)) }

// IsNull reports whether the reference is OpaqueRef:NULL or empty.
func (r TaskRef) IsNull() bool { return isNullRef(string(r)) }
