// Package config is Vantage's TOML schema: strict decoding, defaults,
// includes, and validation that reports every problem at once with its file,
// line and field. A *Config is immutable once Load returns it: reload builds
// a new one and the agent swaps.
package config

import (
	"net/netip"
	"strings"
	"time"

	"github.com/vantage-probe/vantage/probe"
	"github.com/vantage-probe/vantage/probe/dnsprobe"
	"github.com/vantage-probe/vantage/probe/grpcprobe"
	"github.com/vantage-probe/vantage/probe/httpprobe"
	"github.com/vantage-probe/vantage/probe/icmpprobe"
	"github.com/vantage-probe/vantage/probe/tcpprobe"
	"github.com/vantage-probe/vantage/probe/tlsprobe"
)

// Config is a validated configuration with every default applied.
type Config struct {
	Agent       Agent
	Cluster     Cluster
	Quorum      Quorum
	Defaults    Defaults
	Exporter    Exporter
	SLO         SLO
	Alerting    Alerting
	Targets     []*Target // in file order, main file first, then includes in glob order
	Maintenance []Maintenance
	// Files are the main file and every included file, for the reload watcher.
	Files []string

	// byName finds a target by name for Target: the positions of the
	// first nTargets in Targets, sorted by name (binary search), built by
	// index; nil in hand-built Configs. A map of names to targets took 43
	// B a target at 10k targets, this 4.
	byName   []int32
	nTargets int
}

// Agent is the [agent] table.
type Agent struct {
	Node     string     // default: hostname
	Region   string     // default: "default"
	Listen   string     // default: 127.0.0.1:9115
	SourceIP netip.Addr // zero: any
	// ExternalURL is where people reach this agent's HTTP server (no
	// trailing slash): alerts link to the status page through it.
	ExternalURL string
	// StateDir is where the agent keeps its state (incidents, SLO
	// accounting, history), relative paths resolved against the config
	// file; "" when the file sets none: `vantage agent` then uses
	// DefaultStateDir, a library or test agent keeps nothing.
	StateDir    string
	StateDirPos Pos
	// Retention is how long the state keeps resolved incidents and SLO
	// buckets: by default the SLO window plus RetentionMargin.
	Retention time.Duration
	// MemoryLimit is [agent] memory_limit in bytes; 0 when not set (the
	// agent then derives one: internal/memlimit).
	MemoryLimit int64
}

// Alerting is the [alerting] table. Alertmanagers empty: no direct alerting.
type Alerting struct {
	Alertmanagers  []string      // base URLs; every alert goes to each
	ResendInterval time.Duration // default 1m
	Timeout        time.Duration // default 10s
	ExternalLabels map[string]string
	TLS            probe.TLSOptions
	// Credentials, read at load from files or the environment.
	BasicAuthUser, BasicAuthPassword string
	BearerToken                      string
}

// Enabled reports whether the agent sends alerts itself.
func (a *Alerting) Enabled() bool { return len(a.Alertmanagers) > 0 }

// Cluster is the [cluster] table.
type Cluster struct {
	Bind              string   // default 0.0.0.0:7946
	Advertise         string   // default: memberlist picks
	Join              []string // seeds host:port
	SecretKeyFile     string   // base64 key file (16/24/32 bytes); reloaded on SIGHUP for rotation
	Label             string   // cluster label; default "vantage"
	Insecure          bool     // allow plaintext gossip on a non-loopback bind
	ReplicasPerRegion int      // default 1

	// Memberlist timings, defaults from the WAN profile (see cluster package).
	GossipInterval time.Duration
	ProbeInterval  time.Duration
	ProbeTimeout   time.Duration
	SuspicionMult  int
	TCPTimeout     time.Duration
	RejoinInterval time.Duration // re-join seeds periodically; default 30s

	// BindPos is where bind (or, when it is the default, [cluster]) is
	// written, for CheckStart's error; "command line" after -bind.
	BindPos Pos
}

// Quorum is the [quorum] table.
type Quorum struct {
	MinRegions        int  // default 2 (capped at the regions a target has)
	ConfirmOnFailure  bool // default true
	RecoverySuccesses int  // consecutive successes before a failing region votes up again; default 1
}

// Defaults is the [defaults] table; every target inherits it.
type Defaults struct {
	Interval time.Duration // default 30s
	Timeout  time.Duration // default 10s, or 4/5 of a shorter interval (always below interval)
	Failures int           // default 1
}

// Exporter is the [exporter] table.
type Exporter struct {
	LatencyHistogram bool
	TLSCertFile      string // HTTPS when set (with TLSKeyFile)
	TLSKeyFile       string
	TLSClientCAFile  string            // require client certificates signed by this CA
	BasicAuthUsers   map[string]string // user -> bcrypt hash
	Push             Push
}

// Push is [exporter.push]. URL empty: the agent does not push.
type Push struct {
	URL      string        // the import endpoint
	Interval time.Duration // default 15s
	// Labels are added to every pushed series: the operator's, and job
	// ("vantage" unless set). The agent adds instance (its node name), as
	// a scrape would, when it pushes.
	Labels map[string]string
	// Credentials, read at load from files or the environment.
	BasicAuthUser, BasicAuthPassword string
	BearerToken                      string
}

// Enabled reports whether the agent pushes its series.
func (p *Push) Enabled() bool { return p.URL != "" }

// SLO is the [slo] table.
type SLO struct {
	Objective float64       // default 0.999
	Window    time.Duration // default 28d
}

// Target types.
const (
	TypeHTTP = "http"
	TypeTLS  = "tls"
	TypeDNS  = "dns"
	TypeTCP  = "tcp"
	TypeICMP = "icmp"
	TypeGRPC = "grpc"
)

// Types lists every target type, in the order summaries name them.
var Types = []string{TypeHTTP, TypeTLS, TypeDNS, TypeTCP, TypeICMP, TypeGRPC}

// Target is one [[target]] with defaults applied and its prober options
// built. Exactly one of HTTP(), TLS, DNS, TCP, ICMP, GRPC is non-nil,
// matching Type.
type Target struct {
	Name     string
	Type     string
	Interval time.Duration
	Timeout  time.Duration
	Failures int
	// Regions that probe this target; empty means every region.
	Regions []string
	// MinRegions overrides [quorum].min_regions for this target when > 0.
	MinRegions int
	// SLOObjective is the target's objective (its own or [slo].objective).
	SLOObjective float64
	// Labels are the target's own labels, exported on its series.
	// Read-only: targets with the same labels share one map.
	Labels map[string]string

	// http holds the HTTP options but the URL, read-only and shared by
	// the targets configured alike (a copy per target would be a large
	// share of a target's memory); url is the target's own. HTTP() joins
	// them.
	http *httpprobe.Options
	url  string
	TLS  *tlsprobe.Options
	DNS  *dnsprobe.Options
	TCP  *tcpprobe.Options
	ICMP *icmpprobe.Options
	GRPC *grpcprobe.Options

	// Pos is where the [[target]] table starts.
	Pos Pos
	// Fingerprint hashes everything that defines how the target is probed
	// (type, options, interval, timeout, labels): equal fingerprints across a
	// reload mean the target is unchanged and keeps its state and phase.
	Fingerprint uint64

	// ownSourceIP is set when the target has its own source_ip, which an
	// [agent].source_ip override must leave alone.
	ownSourceIP bool
}

// HTTP returns the target's HTTP options, URL included, as a copy the
// caller may change; nil when the target is not an HTTP target.
func (t *Target) HTTP() *httpprobe.Options {
	if t.http == nil {
		return nil
	}
	o := *t.http
	o.URL = t.url
	return &o
}

// SetHTTP makes t an HTTP target probed with o (for targets built in code;
// the loader shares the options of targets configured alike).
func (t *Target) SetHTTP(o httpprobe.Options) {
	t.url, o.URL = o.URL, ""
	t.http = &o
}

// CertWarnDays is how many days before the certificate it is shown
// expires the target warns: a tls target's min_days_left (0 disables),
// DefaultCertDays for other targets that speak TLS (https URLs, TCP and
// gRPC with tls, DNS over TLS, HTTPS or QUIC), 0 for targets that see no
// certificate.
func (t *Target) CertWarnDays() int {
	switch {
	case t.TLS != nil:
		return max(t.TLS.MinDaysLeft, 0)
	case t.http != nil:
		if len(t.url) >= 8 && strings.EqualFold(t.url[:8], "https://") {
			return DefaultCertDays
		}
	case t.TCP != nil:
		if t.TCP.UseTLS {
			return DefaultCertDays
		}
	case t.GRPC != nil:
		if t.GRPC.UseTLS {
			return DefaultCertDays
		}
	case t.DNS != nil:
		switch strings.ToLower(t.DNS.Transport) {
		case "tls", "https", "quic":
			return DefaultCertDays
		}
	}
	return 0
}

// Endpoint is what the target points at, for display: URL or address or
// "server query" (DNS) or "address service" (gRPC with a service name),
// URLs redacted (probe.RedactURL).
func (t *Target) Endpoint() string {
	switch {
	case t.http != nil:
		return probe.RedactURL(t.url)
	case t.TLS != nil:
		return t.TLS.Address
	case t.DNS != nil:
		return probe.RedactURL(t.DNS.Server) + " " + t.DNS.Query
	case t.TCP != nil:
		return t.TCP.Address
	case t.ICMP != nil:
		return t.ICMP.Address
	case t.GRPC != nil:
		if t.GRPC.Service != "" {
			return t.GRPC.Address + " " + t.GRPC.Service
		}
		return t.GRPC.Address
	}
	return ""
}

// Pos is a position in a config file. Line and Col are 1-based; 0 when TOML
// gives no position.
type Pos struct {
	File string
	// int32, not int: every target keeps its Pos, and two ints would
	// take a Target past the 208-byte size class.
	Line, Col int32
}

// Maintenance is one [[maintenance]] window: absolute (Start/End) or
// recurring (Weekdays + From/To time of day in Location).
type Maintenance struct {
	Targets []string // globs on target names (path.Match syntax)

	Start, End time.Time // absolute window; zero when recurring

	Weekdays []time.Weekday // recurring: days the window opens on; empty = every day
	From, To time.Duration  // recurring: offsets from local midnight; To < From wraps past midnight
	Location *time.Location // recurring: time zone; default UTC

	Pos Pos
}

// Overrides are command-line flags that win over the config file
// (vantage agent -node -region -listen -bind -join). Empty fields change
// nothing. Applied by (*Config).ApplyOverrides, which re-validates.
type Overrides struct {
	Node, Region, Listen, Bind string
	Join                       []string
	// SourceIP replaces [agent].source_ip for every target without its own
	// (the demo runs agents of three regions from distinct loopback IPs).
	SourceIP string
}
