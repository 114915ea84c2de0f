package xenserver

import (
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"time"

	"github.com/xenflow/xenflow/dom0"
	"github.com/xenflow/xenflow/xenapi"
)

// Transport names.
const (
	// TransportXAPI moves disks through xapi's own HTTP handlers
	// (/export_raw_vdi, /import_raw_vdi), relayed by the controller.
	TransportXAPI = "xapi"
	// TransportDom0 moves VHD chains between control domains over SSH,
	// Nova's layout for file-based SRs.
	TransportDom0 = "dom0"
	// TransportShared is what DiskInfo.Transport says when source and
	// destination see the same SR and no bytes moved.
	TransportShared = "shared"
)

// Password is a secret that never prints: String, GoString, MarshalText
// and slog all give "[redacted]". Convert it with string() only where the
// secret is sent.
type Password string

const redacted = "[redacted]"

// String returns "[redacted]".
func (Password) String() string { return redacted }

// GoString returns "[redacted]", so %#v does not print the secret either.
func (Password) GoString() string { return redacted }

// MarshalText returns "[redacted]", so encoders do not write the secret.
func (Password) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// LogValue returns "[redacted]" for log/slog.
func (Password) LogValue() slog.Value { return slog.StringValue(redacted) }

// PoolEndpoint is how the driver reaches one pool's xapi: any host's URL
// (the client follows HOST_IS_SLAVE to the master), the TLS policy and the
// credentials.
type PoolEndpoint struct {
	// URL is e.g. "https://10.0.0.1".
	URL string
	// RootCAs verifies the pool's certificates instead of the system
	// roots.
	RootCAs *x509.CertPool
	// PinnedFingerprints accepts hosts whose certificate has one of these
	// SHA-256 fingerprints (xapi's self-signed certificates).
	PinnedFingerprints []string
	// User and Password log in with session.login_with_password.
	User     string
	Password Password
	// HTTPClient, when set, sends every request (its transport then
	// decides the TLS policy).
	HTTPClient *http.Client
	// ClientOptions are passed on to xenapi.NewClient after the ones the
	// fields above give (e.g. xenapi.WithTaskPollInterval).
	ClientOptions []xenapi.Option
}

// HostEntry places a compute host in a pool.
type HostEntry struct {
	// Pool names an entry of Inventory.Pools.
	Pool string
	// XenServerHost is the XenServer host's uuid or name_label.
	XenServerHost string
	// SR is the uuid or name_label of the SR that holds instance disks.
	SR string
	// Transport moves disks from this host: TransportXAPI (the default
	// when empty) or TransportDom0.
	Transport string
	// Dom0 is the host's control domain, for the dom0 transport; nil when
	// the host has none.
	Dom0 dom0.Host
}

// Inventory maps compute hosts to pools. Hosts of one pool share an
// endpoint (and one session); a host that is its own pool has an endpoint
// of its own.
type Inventory struct {
	// Pools maps a pool name to its endpoint.
	Pools map[string]PoolEndpoint
	// Hosts maps a compute host name (Nova's instance.host) to its place.
	Hosts map[string]HostEntry
}

// TransferConfig bounds disk transfers.
type TransferConfig struct {
	// MaxPerHost caps the disk transfers running at once from or to one
	// compute host; more wait their turn. 0 means 2.
	MaxPerHost int
	// BandwidthLimit caps each transfer at this many bytes per second; 0
	// means no limit.
	BandwidthLimit int64
	// Verify exports each destination disk back after a move and checks
	// its SHA-256 against what was sent.
	Verify bool
	// BufferSize is the relay's copy buffer; 0 means 1 MiB.
	BufferSize int
}

// MigrateConfig tunes resize up with minimum downtime.
type MigrateConfig struct {
	// PreCopyThreshold: while the data written since the last snapshot
	// exceeds it, another snapshot's delta is sent with the guest
	// running. 0 means 64 MiB.
	PreCopyThreshold int64
	// MaxPreCopyRounds bounds those extra rounds; 0 means 3, negative
	// means none.
	MaxPreCopyRounds int
	// ShutdownTimeout is how long a clean shutdown may take before a
	// hard one when the request gives none; 0 means 60 s.
	ShutdownTimeout time.Duration
}

// Config configures New.
type Config struct {
	Inventory Inventory
	Transfer  TransferConfig
	Migrate   MigrateConfig
	// Transports adds or replaces disk transports by name.
	Transports map[string]Transport
	// Originator names the driver to xapi (sessions are counted per
	// originator); empty means "xenflow".
	Originator string
	// Logger receives the driver's log; nil discards. Secrets are never
	// logged.
	Logger *slog.Logger
	// Clock gives the time for downtime measurements; nil means time.Now.
	Clock func() time.Time
}

// validate checks the inventory's shape; hosts and SRs are resolved
// against the pools at first use.
func (c *Config) validate() error {
	if len(c.Inventory.Hosts) == 0 {
		return &ConfigError{Field: "Inventory.Hosts", Reason: "empty"}
	}
	for _, name := range sortedKeys(c.Inventory.Pools) {
		p := c.Inventory.Pools[name]
		if p.URL == "" {
			return &ConfigError{Field: "Inventory.Pools[" + name + "].URL", Reason: "empty"}
		}
	}
	for _, name := range sortedKeys(c.Inventory.Hosts) {
		h := c.Inventory.Hosts[name]
		field := "Inventory.Hosts[" + name + "]"
		if name == "" {
			return &ConfigError{Field: field, Reason: "empty compute host name"}
		}
		if _, ok := c.Inventory.Pools[h.Pool]; !ok {
			return &ConfigError{Field: field + ".Pool", Reason: fmt.Sprintf("no pool %q in Inventory.Pools", h.Pool)}
		}
		if h.XenServerHost == "" {
			return &ConfigError{Field: field + ".XenServerHost", Reason: "empty"}
		}
		if h.SR == "" {
			return &ConfigError{Field: field + ".SR", Reason: "empty"}
		}
		switch h.Transport {
		case "", TransportXAPI, TransportDom0:
		default:
			if _, ok := c.Transports[h.Transport]; !ok {
				return &ConfigError{Field: field + ".Transport", Reason: fmt.Sprintf("unknown transport %q", h.Transport)}
			}
		}
	}
	if c.Transfer.MaxPerHost < 0 || c.Transfer.BandwidthLimit < 0 || c.Transfer.BufferSize < 0 {
		return &ConfigError{Field: "Transfer", Reason: "negative limit"}
	}
	return nil
}

// withDefaults fills the zero values.
func (c Config) withDefaults() Config {
	if c.Originator == "" {
		c.Originator = "xenflow"
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.Transfer.MaxPerHost == 0 {
		c.Transfer.MaxPerHost = 2
	}
	if c.Transfer.BufferSize == 0 {
		c.Transfer.BufferSize = 1 << 20
	}
	if c.Migrate.PreCopyThreshold == 0 {
		c.Migrate.PreCopyThreshold = 64 << 20
	}
	if c.Migrate.MaxPreCopyRounds == 0 {
		c.Migrate.MaxPreCopyRounds = 3
	}
	if c.Migrate.ShutdownTimeout == 0 {
		c.Migrate.ShutdownTimeout = time.Minute
	}
	return c
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
