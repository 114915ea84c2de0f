package xenapitest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Defaults used when an Options field is zero.
const (
	DefaultUser          = "root"
	DefaultPassword      = "xenroot"
	DefaultHostMemory    = 64 << 30 // bytes of RAM per host
	DefaultSRSize        = 1 << 40  // bytes of physical_size per local SR
	DefaultEventTimeout  = 24 * time.Hour
	APIVersionMajor      = 2
	APIVersionMinor      = 21
	ProductVersion       = "8.2.1"
	ProductBrand         = "XenServer"
	PlatformVersion      = "3.2.1"
	maxRequestBody       = 300 << 10 // xapi's http_limit_max_rpc_size
	controlDomainMemory  = 4 << 30
	controlDomainVCPUs   = 8
	defaultTaskRetention = 1000
)

// Options configures NewPool.
type Options struct {
	// Dir is the directory that holds every host's root directory. Empty
	// means a new temporary directory that Close removes.
	Dir string
	// Hosts is the number of hosts; the first is the pool master. 0 means 1.
	Hosts int
	// HostNames names the hosts (their name_label and the name of their
	// root directory). Missing names are "host1", "host2", ...
	HostNames []string
	// User and Password are the credentials login_with_password accepts.
	// Empty means DefaultUser and DefaultPassword.
	User, Password string
	// HostMemory is each host's RAM in bytes; starting a VM whose
	// memory_static_max does not fit fails with HOST_NOT_ENOUGH_FREE_MEMORY.
	HostMemory int64
	// SRSize is the physical_size of each host's local SR in bytes;
	// creating or growing VDIs past it fails with SR_FULL.
	SRSize int64
	// ResizeOnline makes VDI.resize_online behave like VDI.resize, as on
	// the newest xapi; by default it answers MESSAGE_REMOVED, as every
	// release from XenServer 7.3 on does.
	ResizeOnline bool
	// Clock gives the time for records and tasks; nil means time.Now.
	Clock func() time.Time
	// Rand is the source of UUIDs; nil means crypto/rand.
	Rand io.Reader
	// SharedSR adds an SR that every host sees (type "nfs", shared), as a
	// pool with shared storage has: a VM whose disks are on it starts on
	// any host, and its disks move with it without copying. It becomes the
	// pool's default_SR and suspend_image_SR. Its directory is
	// <Dir>/shared-storage/<sr-uuid>, reached from every host's root as
	// /var/run/sr-mount/<sr-uuid> through a symbolic link.
	SharedSR bool
	// HTTPTimeouts bound how long the HTTP endpoints wait for a client.
	HTTPTimeouts HTTPTimeouts
	// ExportContentLength makes /export_raw_vdi send a Content-Length.
	// xapi sends none (the body ends when the connection closes), and
	// neither does the pool by default.
	ExportContentLength bool
	// Logger receives a debug line per call; nil discards.
	Logger *slog.Logger
}

// Pool is a simulated XenServer pool. All methods are safe for concurrent
// use.
type Pool struct {
	opts    Options
	dir     string
	tempDir bool
	log     *slog.Logger

	mu         sync.Mutex
	objs       map[string]*object
	byClass    map[*class]map[string]*object
	byUUID     map[string]*object
	gen        uint64
	tombstones []tombstone
	notify     chan struct{}
	closed     bool
	done       chan struct{}

	methods  methodTable
	domid    int64
	hosts    []*Host
	poolObj  *object
	srs      map[string]*srState // SR ref -> state
	faults   []*faultRule
	counts   map[string]int
	calls    []CallRecord
	tasks    map[string]*taskState
	plugins  map[string]PluginFunc
	servers  []*http.Server
	network  string // the default network's ref
	sharedSR string // the shared SR's ref, "" without Options.SharedSR
	wg       sync.WaitGroup
	taskWait sync.WaitGroup
}

// Host is one host of the pool: its database object, its dom0 directory
// and its local SR.
type Host struct {
	p       *Pool
	index   int
	name    string
	ref     string
	uuid    string
	root    string
	srRef   string
	srUUID  string
	srPath  string
	address string // guarded by p.mu
}

// NewPool builds a pool: hosts, each with a control domain (dom0) and a
// local "ext" SR whose directory is Host.SRPath, and the pool object whose
// master is the first host and whose default_SR is the master's SR.
func NewPool(opts Options) (*Pool, error) {
	if opts.Hosts <= 0 {
		opts.Hosts = 1
	}
	if opts.Hosts > 64 {
		return nil, fmt.Errorf("xenapitest: %d hosts is more than the 64 a pool may have", opts.Hosts)
	}
	if opts.User == "" {
		opts.User = DefaultUser
	}
	if opts.Password == "" {
		opts.Password = DefaultPassword
	}
	if opts.HostMemory <= 0 {
		opts.HostMemory = DefaultHostMemory
	}
	if opts.SRSize <= 0 {
		opts.SRSize = DefaultSRSize
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.Rand == nil {
		opts.Rand = rand.Reader
	}
	opts.HTTPTimeouts = opts.HTTPTimeouts.orDefault()
	p := &Pool{
		opts:    opts,
		dir:     opts.Dir,
		log:     opts.Logger,
		objs:    map[string]*object{},
		byClass: map[*class]map[string]*object{},
		byUUID:  map[string]*object{},
		notify:  make(chan struct{}),
		done:    make(chan struct{}),
		srs:     map[string]*srState{},
		counts:  map[string]int{},
		tasks:   map[string]*taskState{},
		plugins: map[string]PluginFunc{},
	}
	if p.log == nil {
		p.log = slog.New(discardHandler{})
	}
	p.methods = p.buildMethods()
	if p.dir == "" {
		d, err := os.MkdirTemp("", "xenapitest-")
		if err != nil {
			return nil, fmt.Errorf("xenapitest: make pool directory: %w", err)
		}
		p.dir, p.tempDir = d, true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := 0; i < opts.Hosts; i++ {
		name := fmt.Sprintf("host%d", i+1)
		if i < len(opts.HostNames) && opts.HostNames[i] != "" {
			name = opts.HostNames[i]
		}
		if name != filepath.Base(name) || name == "." || name == ".." {
			if p.tempDir {
				_ = os.RemoveAll(p.dir)
			}
			return nil, fmt.Errorf("xenapitest: host name %q cannot name a directory", name)
		}
		if err := p.addHost(i, name); err != nil {
			if p.tempDir {
				_ = os.RemoveAll(p.dir)
			}
			return nil, err
		}
	}
	master := p.hosts[0]
	p.network = p.addNetwork(DefaultNetworkName, "xenbr0").ref
	defaultSR := master.srRef
	if opts.SharedSR {
		if err := p.addSharedSR(); err != nil {
			if p.tempDir {
				_ = os.RemoveAll(p.dir)
			}
			return nil, err
		}
		defaultSR = p.sharedSR
	}
	p.poolObj = p.newObject(classPool, map[string]any{
		"name_label":       "",
		"master":           master.ref,
		"default_SR":       defaultSR,
		"suspend_image_SR": defaultSR,
		"crash_dump_SR":    master.srRef,
		"restrictions":     map[string]string{"restrict_pool_size": "false"},
	})
	return p, nil
}

func (p *Pool) addHost(i int, name string) error {
	h := &Host{p: p, index: i, name: name, root: filepath.Join(p.dir, name), address: fmt.Sprintf("192.0.2.%d", i+1)}
	h.srUUID = p.newUUID()
	h.srPath = filepath.Join(h.root, "var", "run", "sr-mount", h.srUUID)
	if err := os.MkdirAll(h.srPath, 0o755); err != nil {
		return fmt.Errorf("xenapitest: make SR directory of %s: %w", name, err)
	}
	now := p.now()
	ho := p.newObject(classHost, map[string]any{
		"name_label":                        name,
		"name_description":                  "Default install",
		"API_version_major":                 int64(APIVersionMajor),
		"API_version_minor":                 int64(APIVersionMinor),
		"API_version_vendor":                "XenSource",
		"API_version_vendor_implementation": map[string]string{},
		"enabled":                           true,
		"software_version": map[string]string{
			"product_version":  ProductVersion,
			"product_brand":    ProductBrand,
			"platform_version": PlatformVersion,
			"platform_name":    "XCP",
			"xapi":             "1.249",
			"xen":              "4.13.5",
			"hostname":         name,
		},
		"capabilities":          []string{"xen-3.0-x86_64", "hvm-3.0-x86_64"},
		"sched_policy":          "credit",
		"supported_bootloaders": []string{"pygrub", "eliloader"},
		"hostname":              name,
		"address":               h.address,
		"cpu_info":              map[string]string{"cpu_count": "8", "socket_count": "1", "vendor": "GenuineIntel"},
		"license_params":        map[string]string{},
		"memory_overhead":       int64(0),
		"other_config":          map[string]string{"agent_start_time": fmt.Sprint(now.Unix())},
	})
	h.ref = ho.ref
	h.uuid = ho.str("uuid")
	sr := p.newObject(classSR, map[string]any{
		"uuid":             h.srUUID,
		"name_label":       "Local storage",
		"name_description": "",
		"allowed_operations": []string{
			"vdi_create", "vdi_destroy", "vdi_resize", "vdi_clone", "vdi_snapshot", "scan", "forget",
		},
		"physical_size": p.opts.SRSize,
		"type":          "ext",
		"content_type":  "user",
		"sm_config":     map[string]string{"devserial": "scsi-xenflow"},
	})
	h.srRef = sr.ref
	pbd := p.newObject(classPBD, map[string]any{
		"host":               h.ref,
		"SR":                 sr.ref,
		"device_config":      map[string]string{"device": "/dev/sda3"},
		"currently_attached": true,
	})
	sr.addToSet("PBDs", pbd.ref)
	ho.addToSet("PBDs", pbd.ref)
	ho.f["suspend_image_sr"] = sr.ref
	ho.f["crash_dump_sr"] = sr.ref
	dom0 := p.newObject(classVM, map[string]any{
		"name_label":             "Control domain on host: " + name,
		"name_description":       "The domain which manages physical devices and manages other domains",
		"power_state":            "Running",
		"is_control_domain":      true,
		"resident_on":            h.ref,
		"domid":                  int64(0),
		"memory_static_max":      int64(controlDomainMemory),
		"memory_dynamic_max":     int64(controlDomainMemory),
		"memory_dynamic_min":     int64(controlDomainMemory),
		"memory_static_min":      int64(controlDomainMemory),
		"memory_target":          int64(controlDomainMemory),
		"VCPUs_max":              int64(controlDomainVCPUs),
		"VCPUs_at_startup":       int64(controlDomainVCPUs),
		"actions_after_shutdown": "destroy",
		"actions_after_reboot":   "restart",
		"actions_after_crash":    "restart",
		"HVM_shadow_multiplier":  1.0,
		"domain_type":            "pv",
		"user_version":           int64(1),
		"domarch":                "x64",
	})
	ho.f["control_domain"] = dom0.ref
	ho.addToSet("resident_VMs", dom0.ref)
	p.addHostMetrics(ho)
	p.srs[sr.ref] = &srState{ref: sr.ref, dir: h.srPath, host: h, disks: newDiskStore(h.srPath, p.opts.Rand, p.opts.Clock)}
	p.hosts = append(p.hosts, h)
	return nil
}

// addSharedSR makes the SR every host sees. The caller holds p.mu.
func (p *Pool) addSharedSR() error {
	uuid := p.newUUID()
	dir := filepath.Join(p.dir, "shared-storage", uuid)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("xenapitest: make shared SR directory: %w", err)
	}
	sr := p.newObject(classSR, map[string]any{
		"uuid":             uuid,
		"name_label":       "Shared storage",
		"name_description": "NFS SR [192.0.2.100:/export]",
		"allowed_operations": []string{
			"vdi_create", "vdi_destroy", "vdi_resize", "vdi_clone", "vdi_snapshot", "scan", "forget",
		},
		"physical_size": p.opts.SRSize,
		"type":          "nfs",
		"content_type":  "user",
		"shared":        true,
	})
	for _, h := range p.hosts {
		link := filepath.Join(h.root, "var", "run", "sr-mount", uuid)
		if err := os.Symlink(dir, link); err != nil {
			return fmt.Errorf("xenapitest: link shared SR into %s: %w", h.name, err)
		}
		pbd := p.newObject(classPBD, map[string]any{
			"host":               h.ref,
			"SR":                 sr.ref,
			"device_config":      map[string]string{"server": "192.0.2.100", "serverpath": "/export"},
			"currently_attached": true,
		})
		sr.addToSet("PBDs", pbd.ref)
		if ho, ok := p.objs[h.ref]; ok {
			ho.addToSet("PBDs", pbd.ref)
		}
	}
	p.srs[sr.ref] = &srState{ref: sr.ref, dir: dir, host: p.hosts[0], shared: true, disks: newDiskStore(dir, p.opts.Rand, p.opts.Clock)}
	p.sharedSR = sr.ref
	return nil
}

// SharedSR returns the ref of the SR every host sees (Options.SharedSR),
// or "" when the pool has none.
func (p *Pool) SharedSR() string { return p.sharedSR }

// SharedSRPath returns the shared SR's directory on this machine, or "".
func (p *Pool) SharedSRPath() string {
	if st := p.srs[p.sharedSR]; st != nil {
		return st.dir
	}
	return ""
}

// Close stops the servers Serve started, waits for running tasks, and
// removes the pool's directory if NewPool made it. Blocked event.from
// calls return.
func (p *Pool) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	close(p.done)
	servers := p.servers
	p.servers = nil
	p.mu.Unlock()
	var errs []error
	for _, s := range servers {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := s.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
		cancel()
	}
	p.wg.Wait()
	p.taskWait.Wait()
	if p.tempDir {
		if err := os.RemoveAll(p.dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Dir returns the directory holding every host's root directory.
func (p *Pool) Dir() string { return p.dir }

// User returns the user name login_with_password accepts.
func (p *Pool) User() string { return p.opts.User }

// Password returns the password login_with_password accepts.
func (p *Pool) Password() string { return p.opts.Password }

// Hosts returns the hosts, master first.
func (p *Pool) Hosts() []*Host { return append([]*Host(nil), p.hosts...) }

// Master returns the pool master.
func (p *Pool) Master() *Host { return p.hosts[0] }

// Ref returns the pool object's ref.
func (p *Pool) Ref() string { return p.poolObj.ref }

// Name returns the host's name_label, which is also its directory's name.
func (h *Host) Name() string { return h.name }

// Ref returns the host's ref.
func (h *Host) Ref() string { return h.ref }

// UUID returns the host's uuid.
func (h *Host) UUID() string { return h.uuid }

// IsMaster reports whether the host is the pool master.
func (h *Host) IsMaster() bool { return h.index == 0 }

// Root returns the host's root directory, which stands for its dom0
// filesystem: a dom0 handle rooted here sees /var/run/sr-mount/<sr-uuid>/
// as on a real host.
func (h *Host) Root() string { return h.root }

// SR returns the ref of the host's local SR.
func (h *Host) SR() string { return h.srRef }

// SRUUID returns the uuid of the host's local SR.
func (h *Host) SRUUID() string { return h.srUUID }

// SRPath returns the directory of the host's local SR,
// <Root>/var/run/sr-mount/<sr-uuid>. VDI <uuid> is the file <uuid>.vhd in it.
func (h *Host) SRPath() string { return h.srPath }

// SRPathInDom0 returns the SR directory as dom0 names it:
// /var/run/sr-mount/<sr-uuid>.
func (h *Host) SRPathInDom0() string { return "/var/run/sr-mount/" + h.srUUID }

// Address returns host.address: what HOST_IS_SLAVE reports for the
// master, and what a client should connect to ("http://" + address).
func (h *Host) Address() string {
	h.p.mu.Lock()
	defer h.p.mu.Unlock()
	return h.address
}

// SetAddress sets host.address, for example to the host:port of an
// httptest server serving h.Handler().
func (h *Host) SetAddress(addr string) {
	h.p.mu.Lock()
	defer h.p.mu.Unlock()
	h.address = addr
	if o, ok := h.p.objs[h.ref]; ok {
		o.f["address"] = addr
		h.p.touch(o)
	}
}

// Serve starts an HTTP server on 127.0.0.1 for every host: the master on
// masterAddr ("" or "127.0.0.1:0" for any free port), the others on free
// ports. Each host's address becomes its listener's host:port. It returns
// the master's URL. Close stops the servers.
func (p *Pool) Serve(masterAddr string) (string, error) {
	if masterAddr == "" {
		masterAddr = "127.0.0.1:0"
	}
	var url string
	for i, h := range p.hosts {
		addr := "127.0.0.1:0"
		if i == 0 {
			addr = masterAddr
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return "", fmt.Errorf("xenapitest: listen for %s: %w", h.name, err)
		}
		to := p.opts.HTTPTimeouts
		srv := &http.Server{Handler: h.Handler(), ReadHeaderTimeout: to.ReadHeader, IdleTimeout: to.Idle}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			ln.Close()
			return "", errors.New("xenapitest: pool is closed")
		}
		p.servers = append(p.servers, srv)
		p.mu.Unlock()
		h.SetAddress(ln.Addr().String())
		if i == 0 {
			url = "http://" + ln.Addr().String() + "/"
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			_ = srv.Serve(ln)
		}()
	}
	return url, nil
}

// now returns the pool clock's time in UTC, to the second, as xapi stores
// datetimes.
func (p *Pool) now() time.Time { return p.opts.Clock().UTC().Truncate(time.Second) }

// newUUID returns a random version-4 UUID from the pool's source. The
// caller holds p.mu, which also serialises reads from opts.Rand.
func (p *Pool) newUUID() string {
	var b [16]byte
	if _, err := io.ReadFull(p.opts.Rand, b[:]); err != nil {
		// A failing source is a test bug; fall back to crypto/rand so
		// that refs stay unique.
		_, _ = rand.Read(b[:])
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

type discardHandler struct{}

func (discardHandler) Enabled(context.Context, slog.Level) bool  { return false }
func (discardHandler) Handle(context.Context, slog.Record) error { return nil }
func (d discardHandler) WithAttrs([]slog.Attr) slog.Handler      { return d }
func (d discardHandler) WithGroup(string) slog.Handler           { return d }
