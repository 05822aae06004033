package config

import (
	"fmt"
	"math"
	"reflect"
	"time"
)

// This file is the config reference: every key a Vantage TOML file may hold,
// with its default. Durations are strings in Go syntax ("1m30s", "500ms")
// plus "d" (24h) and "w" (7d) units ("28d", "1w2d"). Relative file paths are
// relative to the directory of the file that names them.

// fileSchema is one TOML file.
type fileSchema struct {
	// include: globs of more files (path/filepath.Match syntax), relative to
	// this file, holding only [[target]] and [[maintenance]] tables, so that
	// teams own their own files. A glob without wildcards must name an
	// existing file; a glob with wildcards may match nothing. Only the main
	// file may include.
	Include     opt[[]string]       `toml:"include"`
	Agent       agentSchema         `toml:"agent"`
	Cluster     clusterSchema       `toml:"cluster"`
	Quorum      quorumSchema        `toml:"quorum"`
	Defaults    defaultsSchema      `toml:"defaults"`
	Exporter    exporterSchema      `toml:"exporter"`
	SLO         sloSchema           `toml:"slo"`
	Alerting    alertingSchema      `toml:"alerting"`
	Target      []targetSchema      `toml:"target"`
	Maintenance []maintenanceSchema `toml:"maintenance"`
}

// agentSchema is [agent]: this agent's identity.
type agentSchema struct {
	Node     opt[string] `toml:"node"`      // agent name, unique in the cluster; default: the host name
	Region   opt[string] `toml:"region"`    // region this agent probes from; default "default"
	Listen   opt[string] `toml:"listen"`    // host:port of the HTTP server (/metrics, API, status page); default 127.0.0.1:9115
	SourceIP opt[string] `toml:"source_ip"` // local IP address probes are sent from; default: any
	// external_url: the URL people reach this agent's status page at, for
	// links in alerts (generatorURL); default http(s)://<listen>, with the
	// host name when listen is a wildcard address.
	ExternalURL opt[string] `toml:"external_url"`
	// state_dir: where the agent keeps incidents, SLO accounting and
	// history across restarts; default /var/lib/vantage/<node> where
	// writable, else the user's state or cache directory.
	StateDir opt[string] `toml:"state_dir"`
	// retention: how long the state keeps resolved incidents and SLO
	// buckets; default the SLO window plus 7 days, at least the window.
	Retention opt[string] `toml:"retention"`
	// memory_limit: the agent's soft memory limit (the Go runtime's
	// GOMEMLIMIT), a size with a unit: "256MiB", "1GiB", "500MB"; at least
	// 16MiB. Default: 90% of the container's memory limit, at least 16MiB
	// under it, where there is one (a memory_limit below that is
	// honoured), else 13MiB + 3.75KiB per configured target, at least
	// 32MiB, which gives way when the collector cannot hold it.
	// GOMEMLIMIT in the environment wins.
	MemoryLimit opt[string] `toml:"memory_limit"`
}

// clusterSchema is [cluster]: gossip membership.
type clusterSchema struct {
	Bind              opt[string]   `toml:"bind"`                // host:port for gossip (TCP and UDP); default 0.0.0.0:7946
	Advertise         opt[string]   `toml:"advertise"`           // host:port peers reach this agent at; default: picked by memberlist
	Join              opt[[]string] `toml:"join"`                // seed agents, host:port
	SecretKeyFile     opt[string]   `toml:"secret_key_file"`     // file of base64 gossip keys (16, 24 or 32 bytes), one per line, first encrypts; `vantage keygen` makes one
	Label             opt[string]   `toml:"label"`               // cluster label; agents with another label cannot join; default "vantage"
	Insecure          opt[bool]     `toml:"insecure"`            // allow plaintext gossip on a non-loopback bind; default false
	ReplicasPerRegion opt[int]      `toml:"replicas_per_region"` // agents in each region that probe each target; default 1
	GossipInterval    opt[string]   `toml:"gossip_interval"`     // memberlist timings; defaults from the cluster package's tuned WAN profile
	ProbeInterval     opt[string]   `toml:"probe_interval"`      //   "
	ProbeTimeout      opt[string]   `toml:"probe_timeout"`       //   "  (below probe_interval)
	SuspicionMult     opt[int]      `toml:"suspicion_mult"`      //   "
	TCPTimeout        opt[string]   `toml:"tcp_timeout"`         //   "
	RejoinInterval    opt[string]   `toml:"rejoin_interval"`     // re-join the seeds this often, healing partitions; default 30s
}

// quorumSchema is [quorum]: when the fleet calls a target down.
type quorumSchema struct {
	MinRegions        opt[int]  `toml:"min_regions"`        // regions that must see a failure; default 2, capped at the regions probing a target
	ConfirmOnFailure  opt[bool] `toml:"confirm_on_failure"` // other regions re-probe a new failure at once; default true
	RecoverySuccesses opt[int]  `toml:"recovery_successes"` // consecutive successes before a failing region votes up again; default 1
}

// defaultsSchema is [defaults]: every [[target]] inherits these unless it
// sets its own.
type defaultsSchema struct {
	Interval opt[string] `toml:"interval"` // time between probes; at least 1s; default 30s
	Timeout  opt[string] `toml:"timeout"`  // per-probe deadline, below interval; default 10s, or 4/5 of the interval when that is shorter
	Failures opt[int]    `toml:"failures"` // consecutive failures before a region calls a target failing; default 1
}

// exporterSchema is [exporter].
type exporterSchema struct {
	LatencyHistogram opt[bool] `toml:"latency_histogram"` // vantage_probe_duration_seconds histogram per target; default false (series per target)
	// The exporter-toolkit web config, in TOML: TLS for every endpoint and
	// basic auth (bcrypt hashes) for all but /healthz and /readyz.
	TLSCertFile    opt[string]            `toml:"tls_cert_file"`      // PEM server certificate; with tls_key_file, the exporter serves HTTPS
	TLSKeyFile     opt[string]            `toml:"tls_key_file"`       // PEM private key
	TLSClientCA    opt[string]            `toml:"tls_client_ca_file"` // PEM CA: clients must present a certificate it signed (mTLS)
	BasicAuthUsers map[string]opt[string] `toml:"basic_auth_users"`   // user = bcrypt hash (htpasswd -nBC 10 USER); empty: no auth
	Push           *pushSchema            `toml:"push"`               // [exporter.push]
}

// pushSchema is [exporter.push]: the agent pushes the series of its
// /metrics to VictoriaMetrics (single-node, vminsert or vmagent), for agents
// nothing can scrape.
type pushSchema struct {
	URL             opt[string]            `toml:"url"`               // required: the import endpoint, e.g. http://vm:8428/api/v1/import/prometheus
	Interval        opt[string]            `toml:"interval"`          // time between pushes; at least 1s; default 15s
	Labels          opt[map[string]string] `toml:"labels"`            // added to every series; job defaults to "vantage", instance is the node name
	BasicAuth       *basicAuthSchema       `toml:"basic_auth"`        // { username, password_file | password_env }
	BearerTokenFile opt[string]            `toml:"bearer_token_file"` // file holding a bearer token
	BearerTokenEnv  opt[string]            `toml:"bearer_token_env"`  // environment variable holding a bearer token
	// Client TLS keys are refused: VictoriaMetrics/metrics pushes with Go's
	// default HTTP client (system roots, no client certificate).
	tlsClientSchema
}

// sloSchema is [slo].
type sloSchema struct {
	Objective opt[float64] `toml:"objective"` // success ratio objective, in (0,1); default 0.999
	Window    opt[string]  `toml:"window"`    // SLO window; default 28d
}

// alertingSchema is [alerting]: the leader of a target sends VantageTargetDown
// straight to Alertmanager (API v2) when the quorum calls the target down.
type alertingSchema struct {
	Alertmanagers   opt[[]string]          `toml:"alertmanagers"`     // Alertmanager base URLs (http://am-1:9093); every alert goes to each; empty: no direct alerting
	ResendInterval  opt[string]            `toml:"resend_interval"`   // re-send active alerts this often; default 1m
	Timeout         opt[string]            `toml:"timeout"`           // per request; default 10s
	ExternalLabels  opt[map[string]string] `toml:"external_labels"`   // added to every alert: set them to Prometheus' external_labels, so both paths raise one alert
	BasicAuth       *basicAuthSchema       `toml:"basic_auth"`        // { username, password_file | password_env }
	BearerTokenFile opt[string]            `toml:"bearer_token_file"` // file holding a bearer token
	BearerTokenEnv  opt[string]            `toml:"bearer_token_env"`  // environment variable holding a bearer token
	tlsClientSchema                        // ca_file, cert_file, key_file, server_name, insecure_skip_verify
}

// targetSchema is one [[target]].
type targetSchema struct {
	// name comes first: converting the values (loader.leaves) reaches it
	// before the keys whose type errors name the target by it.
	Name         opt[string]            `toml:"name"`          // required, unique; the `target` label
	Type         opt[string]            `toml:"type"`          // required: http | tls | dns | tcp | icmp | grpc
	URL          opt[string]            `toml:"url"`           // http: required, http:// or https://
	Address      opt[string]            `toml:"address"`       // tls, tcp, grpc: required, host:port; icmp: required, host or IP (no port)
	Interval     opt[string]            `toml:"interval"`      // default [defaults].interval
	Timeout      opt[string]            `toml:"timeout"`       // default [defaults].timeout
	Failures     opt[int]               `toml:"failures"`      // default [defaults].failures
	Regions      opt[[]string]          `toml:"regions"`       // regions that probe this target; empty: every region
	Labels       opt[map[string]string] `toml:"labels"`        // extra labels on the target's series; Prometheus label names, not reserved ones
	MinRegions   opt[int]               `toml:"min_regions"`   // overrides [quorum].min_regions; at most the number of regions listed
	SLOObjective opt[float64]           `toml:"slo_objective"` // overrides [slo].objective, in (0,1)
	IPProtocol   opt[string]            `toml:"ip_protocol"`   // ip4 | ip6 | auto (default: either, resolver order)
	SourceIP     opt[string]            `toml:"source_ip"`     // overrides [agent].source_ip

	HTTP *httpSchema `toml:"http"` // [target.http], only for type http
	TLS  *tlsSchema  `toml:"tls"`  // [target.tls], only for type tls
	DNS  *dnsSchema  `toml:"dns"`  // [target.dns], only for type dns
	TCP  *tcpSchema  `toml:"tcp"`  // [target.tcp], only for type tcp
	ICMP *icmpSchema `toml:"icmp"` // [target.icmp], only for type icmp
	GRPC *grpcSchema `toml:"grpc"` // [target.grpc], only for type grpc
}

// tlsClientSchema are the client TLS keys of [target.http], [target.tls],
// [target.dns], [target.tcp] and [target.grpc].
type tlsClientSchema struct {
	CAFile             opt[string] `toml:"ca_file"`              // PEM bundle that replaces the system roots
	CertFile           opt[string] `toml:"cert_file"`            // client certificate (mTLS), with key_file
	KeyFile            opt[string] `toml:"key_file"`             // client key (mTLS), with cert_file
	ServerName         opt[string] `toml:"server_name"`          // SNI and verification name; default: the target's host
	InsecureSkipVerify opt[bool]   `toml:"insecure_skip_verify"` // do not verify the chain (expiry is still reported); default false
}

// httpSchema is [target.http].
type httpSchema struct {
	Method                 opt[string]            `toml:"method"`                     // default GET
	Headers                opt[map[string]string] `toml:"headers"`                    // request headers; "Host" sets the request host
	HeadersFile            opt[map[string]string] `toml:"headers_file"`               // secret request headers: name -> file holding the value (read at load, trimmed)
	HeadersEnv             opt[map[string]string] `toml:"headers_env"`                // secret request headers: name -> environment variable holding the value
	Body                   opt[string]            `toml:"body"`                       // request body
	ValidStatus            opt[[]int]             `toml:"valid_status"`               // accepted status codes; default: any 2xx
	BodyRegex              opt[string]            `toml:"body_regex"`                 // shorthand for one fail_if_body_not_matches entry
	FailIfBodyMatches      opt[[]string]          `toml:"fail_if_body_matches"`       // fail when any regex matches the body
	FailIfBodyNotMatches   opt[[]string]          `toml:"fail_if_body_not_matches"`   // fail unless every regex matches the body
	FailIfHeaderMatches    []headerMatchSchema    `toml:"fail_if_header_matches"`     // fail when a header matches
	FailIfHeaderNotMatches []headerMatchSchema    `toml:"fail_if_header_not_matches"` // fail when a header does not match
	FailIfSSL              opt[bool]              `toml:"fail_if_ssl"`                // fail when the final response came over TLS
	FailIfNotSSL           opt[bool]              `toml:"fail_if_not_ssl"`            // fail when the final response did not come over TLS
	FollowRedirects        opt[bool]              `toml:"follow_redirects"`           // default true
	MaxRedirects           opt[int]               `toml:"max_redirects"`              // at least 1; default 10
	MaxBodyBytes           opt[int64]             `toml:"max_body_bytes"`             // larger bodies fail with body_too_large; default 1048576
	HTTPVersion            opt[string]            `toml:"http_version"`               // auto (ALPN: 2 or 1.1) | 1.1 | 2 | 3 (QUIC); 2 and 3 need https
	BasicAuth              *basicAuthSchema       `toml:"basic_auth"`                 // { username, password_file | password_env }
	BearerTokenFile        opt[string]            `toml:"bearer_token_file"`          // file holding a bearer token (read at load, trimmed)
	BearerTokenEnv         opt[string]            `toml:"bearer_token_env"`           // environment variable holding a bearer token
	// json: conditions on the body decoded as JSON, all of which must hold:
	// json = [{ path = "status", equals = "UP" }, { path = "checks.db.latency_ms", less_than = 300 }].
	JSON []jsonCondSchema `toml:"json"`
	tlsClientSchema
}

// jsonCondSchema is one entry of [target.http] json: a path into the
// body and exactly one comparison.
type jsonCondSchema struct {
	// path: object keys separated by dots, array indexes in brackets
	// (checks.db.status, items[0].id); a key holding '.', '[' or ']' is
	// quoted in brackets (labels["app.kubernetes.io/name"]). Required.
	Path        opt[string]  `toml:"path"`
	Equals      opt[scalar]  `toml:"equals"`       // the value equals this string, number or boolean (types must agree: "5" is not 5)
	NotEquals   opt[scalar]  `toml:"not_equals"`   // the value is anything but this
	LessThan    opt[float64] `toml:"less_than"`    // the value is a number below this
	GreaterThan opt[float64] `toml:"greater_than"` // the value is a number above this
	Exists      opt[bool]    `toml:"exists"`       // true: the path leads to a value (null included); false: it does not
	Regex       opt[string]  `toml:"regex"`        // the value (a string, or a number's or boolean's text) matches this regex
}

// headerMatchSchema is one entry of fail_if_header_[not_]matches.
type headerMatchSchema struct {
	Header       opt[string] `toml:"header"`        // required: response header name
	Regex        opt[string] `toml:"regex"`         // required: regex on the header's values
	AllowMissing opt[bool]   `toml:"allow_missing"` // a missing header passes; default false
}

// basicAuthSchema is basic_auth = { ... }. The password is read at load
// and goes only into the prober: never into errors, labels or results.
type basicAuthSchema struct {
	Username     opt[string] `toml:"username"`      // required
	PasswordFile opt[string] `toml:"password_file"` // file holding the password (trimmed)
	PasswordEnv  opt[string] `toml:"password_env"`  // environment variable holding the password
}

// tlsSchema is [target.tls].
type tlsSchema struct {
	// min_days_left: warn (cert_expiring, and the VantageCertExpiringSoon
	// ticket) when the chain expires in fewer days; the target stays up
	// while the handshake and verification succeed. 0: only check
	// that the chain is valid now. Default 14.
	MinDaysLeft opt[int] `toml:"min_days_left"`
	tlsClientSchema
}

// dnsSchema is [target.dns].
type dnsSchema struct {
	Server              opt[string]   `toml:"server"`                 // required: host[:port], or an https:// URL for transport https
	Transport           opt[string]   `toml:"transport"`              // udp (default) | tcp | tls (DoT) | https (DoH) | quic (DoQ)
	Query               opt[string]   `toml:"query"`                  // required: the name asked
	Record              opt[string]   `toml:"record"`                 // record type; default A
	ValidRcodes         opt[[]string] `toml:"valid_rcodes"`           // default ["NOERROR"]
	AnswerRegex         opt[string]   `toml:"answer_regex"`           // must match at least one answer RR (presentation format)
	FailIfAnswerMatches opt[string]   `toml:"fail_if_answer_matches"` // must match no answer RR
	MinAnswers          opt[int]      `toml:"min_answers"`            // fail with fewer answer RRs; default 0
	Recursion           opt[bool]     `toml:"recursion"`              // set the RD flag; default true
	UDPSize             opt[int]      `toml:"udp_size"`               // EDNS0 buffer size, 512-65535; default 0 (no EDNS0)
	tlsClientSchema                   // only for transports tls, https and quic
}

// tcpSchema is [target.tcp].
type tcpSchema struct {
	TLS             opt[bool]   `toml:"tls"`        // TLS after connect; default false
	Send            opt[string] `toml:"send"`       // written after connect; TOML escapes ("\r\n") work
	Expect          opt[string] `toml:"expect"`     // regex that must match what is read back
	ReadLimit       opt[int]    `toml:"read_limit"` // bytes read at most while waiting for expect; default 4096
	tlsClientSchema             // only with tls = true
}

// icmpSchema is [target.icmp]: echo requests (ping) to address.
type icmpSchema struct {
	Packets        opt[int]    `toml:"packets"`         // echo requests per probe, 1-100; default 1
	MinReplies     opt[int]    `toml:"min_replies"`     // replies a probe needs to succeed, at most packets; default 1
	PacketInterval opt[string] `toml:"packet_interval"` // between the requests of one probe; default 25ms
	PayloadSize    opt[int]    `toml:"payload_size"`    // bytes of data after the ICMP header, 1-65507; default 56 (ping's)
	DontFragment   opt[bool]   `toml:"dont_fragment"`   // set the IPv4 DF bit (Linux only); default false
}

// grpcSchema is [target.grpc]: grpc.health.v1.Health/Check at address.
type grpcSchema struct {
	Service         opt[string] `toml:"service"` // the service asked about; default "": the server as a whole
	TLS             opt[bool]   `toml:"tls"`     // connect with TLS; default false (plaintext)
	tlsClientSchema             // only with tls = true
}

// maintenanceSchema is one [[maintenance]]: absolute (start, end) or
// recurring (weekdays, from, to, timezone). Targets in a window keep being
// probed but open no incident.
type maintenanceSchema struct {
	Targets opt[[]string] `toml:"targets"` // required: globs on target names (path.Match syntax); each must match a target
	// start, end: TOML datetimes; without an offset they are in timezone.
	Start opt[time.Time] `toml:"start"`
	End   opt[time.Time] `toml:"end"`
	// weekdays: days the window opens on ("mon".."sun" or full names);
	// default every day. A window that wraps past midnight belongs to the
	// day it opens on.
	Weekdays opt[[]string] `toml:"weekdays"`
	From     opt[string]   `toml:"from"` // "HH:MM" local wall-clock time the window opens
	To       opt[string]   `toml:"to"`   // "HH:MM" (or "24:00"); before from: wraps past midnight
	// timezone: IANA name ("Europe/Berlin") from the system time zone
	// database (or $ZONEINFO); default UTC.
	Timezone opt[string] `toml:"timezone"`
}

// opt is a leaf value that remembers whether it was set, so defaults can
// tell "absent" from "false" or "0". It accepts any TOML type: toml hands
// it the decoded value, which the loader converts after the decode (see
// loader.leaves), recording a mismatch instead of failing, so type errors
// are reported with every other problem, each at its own line.
type opt[T any] struct {
	V   T
	Set bool
	bad bool // raw does not fit T
	raw any  // the TOML value as decoded
}

// UnmarshalTOML implements toml.Unmarshaler. It only keeps the value:
// converting it interns its strings through the loader (see convert),
// which toml gives no way to reach from here.
func (o *opt[T]) UnmarshalTOML(data any) error {
	o.Set, o.raw = true, data
	return nil
}

// convert sets V from the decoded value, its strings interned by l.
func (o *opt[T]) convert(l *loader) {
	if o.Set {
		var ok bool
		o.V, ok = convert[T](o.raw, l)
		o.bad = !ok
	}
}

// ok reports whether the value was set and has the right type.
func (o opt[T]) ok() bool { return o.Set && !o.bad }

// or returns the value when set and well-typed, otherwise def.
func (o opt[T]) or(def T) T {
	if o.ok() {
		return o.V
	}
	return def
}

func (o opt[T]) typeProblem() (want, got string, bad bool) {
	if !o.bad {
		return typeName[T](), "", false
	}
	got = describe(o.raw)
	if i, isInt := o.raw.(int64); isInt && typeName[T]() == "an integer" {
		got = fmt.Sprintf("integer %d, which is out of range", i)
	}
	return typeName[T](), got, true
}

// scalar is a TOML string, integer (int64), float (float64) or boolean,
// for keys that take any of them (a JSON condition's equals).
type scalar struct{ V any }

// leaf is implemented by opt, so that one walk of the decoded schema
// converts every value and finds every type error (see loader.leaves).
type leaf interface {
	convert(l *loader)
	typeProblem() (want, got string, bad bool)
}

// convert turns a decoded TOML value into T. Every string it returns, map
// keys included, is interned by l (see loader.intern): toml hands out
// slices of the file's whole text, which a Config kept for months would
// otherwise keep alive.
func convert[T any](data any, l *loader) (T, bool) {
	var zero T
	var out any
	ok := true
	switch any(zero).(type) {
	case string:
		var s string
		s, ok = data.(string)
		out = l.intern(s)
	case bool:
		out, ok = data.(bool)
	case int:
		var i int64
		i, ok = data.(int64)
		ok = ok && i >= math.MinInt32 && i <= math.MaxInt32
		out = int(i)
	case int64:
		out, ok = data.(int64)
	case float64:
		switch v := data.(type) {
		case float64:
			out = v
		case int64:
			out = float64(v)
		default:
			ok = false
		}
	case []string:
		arr, isArr := data.([]any)
		s := make([]string, 0, len(arr))
		for _, e := range arr {
			v, isStr := e.(string)
			ok = ok && isStr
			s = append(s, l.intern(v))
		}
		out, ok = s, ok && isArr
	case []int:
		arr, isArr := data.([]any)
		s := make([]int, 0, len(arr))
		for _, e := range arr {
			v, isInt := e.(int64)
			ok = ok && isInt && v >= math.MinInt32 && v <= math.MaxInt32
			s = append(s, int(v))
		}
		out, ok = s, ok && isArr
	case map[string]string:
		m, isMap := data.(map[string]any)
		s := make(map[string]string, len(m))
		for k, e := range m {
			v, isStr := e.(string)
			ok = ok && isStr
			s[l.intern(k)] = l.intern(v)
		}
		out, ok = s, ok && isMap
	case time.Time:
		out, ok = data.(time.Time)
	case scalar:
		switch v := data.(type) {
		case string:
			out = scalar{l.intern(v)}
		case int64, float64, bool:
			out = scalar{v}
		default:
			ok = false
		}
	default:
		panic(fmt.Sprintf("config: opt of unsupported type %T", zero))
	}
	if !ok {
		return zero, false
	}
	return out.(T), true
}

func typeName[T any]() string {
	var zero T
	switch any(zero).(type) {
	case string:
		return "a string"
	case bool:
		return "a boolean (true or false)"
	case int:
		return "an integer"
	case int64:
		return "an integer"
	case float64:
		return "a number"
	case []string:
		return "an array of strings"
	case []int:
		return "an array of integers"
	case map[string]string:
		return "a table of strings"
	case time.Time:
		return "a TOML datetime (2026-12-01T02:00:00Z)"
	case scalar:
		return "a string, number or boolean"
	}
	return reflect.TypeFor[T]().String()
}

// describe names a decoded TOML value for a type error.
func describe(data any) string {
	switch v := data.(type) {
	case string:
		return fmt.Sprintf("string %q", v)
	case int64:
		return fmt.Sprintf("integer %d", v)
	case float64:
		return fmt.Sprintf("float %v", v)
	case bool:
		return fmt.Sprintf("boolean %v", v)
	case time.Time:
		return fmt.Sprintf("datetime %s", v.Format(time.RFC3339))
	case []any:
		return "an array"
	case map[string]any:
		return "a table"
	}
	return fmt.Sprintf("%T", data)
}
