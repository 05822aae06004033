package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"regexp/syntax"
	"strconv"
	"strings"
	"time"

	"github.com/vantage-probe/vantage/internal/memlimit"
	"github.com/vantage-probe/vantage/probe"
)

// Defaults, each with why.
const (
	defaultRegion    = "default"        // a single-region install needs no [agent].region
	defaultListen    = "127.0.0.1:9115" // blackbox_exporter's port; loopback until the operator opens it
	defaultBind      = "0.0.0.0:7946"   // memberlist's customary port, reachable by peers
	defaultLabel     = "vantage"        // keeps two Vantage clusters on one network apart
	defaultInterval  = 30 * time.Second // one look per region every 30s: cheap for targets, fast enough to page
	defaultTimeout   = 10 * time.Second // generous for slow TLS handshakes across continents
	defaultRejoin    = 30 * time.Second // heals partitions longer than memberlist's dead-node reclaim time
	defaultMinRegion = 2                // one region's bad route is not an outage
	defaultObjective = 0.999
	defaultWindow    = 28 * 24 * time.Hour // four whole weeks: every weekday equally often
	minInterval      = time.Second         // below this, probes become load
	// maxInterval: a target looked at less than daily is not monitored
	// (its verdict would go stale between looks), and the bound keeps the
	// scheduler's next-run arithmetic far from overflow.
	maxInterval      = 24 * time.Hour
	defaultResend    = time.Minute      // Prometheus' resend delay: Alertmanager keeps an alert active for 4 of them
	defaultAMTimeout = 10 * time.Second // Prometheus' Alertmanager timeout
)

// scope is a table being validated: where its keys are and how errors name them.
type scope struct {
	l     *loader
	s     *source
	path  string // indexed path: target[3].http
	field string // display name: target["api"].http
}

func (sc scope) sub(key string) scope {
	return scope{l: sc.l, s: sc.s, path: joinPath(sc.path, key), field: joinPath(sc.field, key)}
}

func (sc scope) pos(key string) Pos { return sc.s.ix.at(keyJoin(sc.path, key)) }

// errf reports a problem with key; key "" is the table itself.
func (sc scope) errf(sentinel error, key, format string, args ...any) {
	sc.l.c.add(sentinel, sc.pos(key), keyJoin(sc.field, key), format, args...)
}

func keyJoin(prefix, key string) string {
	switch {
	case key == "":
		return prefix
	case prefix == "":
		return key
	}
	return prefix + "." + key
}

// duration parses an optional duration key; def when absent or bad.
func (sc scope) duration(key string, o opt[string], def time.Duration) (time.Duration, bool) {
	if !o.ok() {
		return def, false
	}
	d, err := ParseDuration(o.V)
	if err != nil {
		sc.errf(ErrDuration, key, "%v", err)
		return def, false
	}
	return d, true
}

// positive parses an optional duration that must be above zero.
func (sc scope) positive(key string, o opt[string]) time.Duration {
	d, ok := sc.duration(key, o, 0)
	if ok && d <= 0 {
		sc.errf(ErrInvalid, key, "%q: must be above zero", o.V)
		return 0
	}
	return d
}

// atLeast checks an optional integer against a lower bound; def when absent.
func (sc scope) atLeast(key string, o opt[int], lo, def int) int {
	if !o.ok() {
		return def
	}
	if o.V < lo {
		sc.errf(ErrInvalid, key, "%d: must be at least %d", o.V, lo)
		return def
	}
	return o.V
}

// file resolves a path relative to the directory of the file naming it.
// Configs read through an fs.FS keep relative paths as they are: there is
// no operating-system directory to anchor them to.
func (sc scope) file(o opt[string]) string {
	if !o.ok() || o.V == "" {
		return ""
	}
	if sc.l.fsys != nil || filepath.IsAbs(o.V) {
		return o.V
	}
	return filepath.Join(sc.s.dir, o.V)
}

// regex compiles an optional regex key.
func (sc scope) regex(key, re string) bool {
	if _, err := regexp.Compile(re); err != nil {
		sc.errf(ErrRegex, key, "invalid regex %q: %v", re, regexErr(err))
		return false
	}
	return true
}

// regexErr keeps what is wrong from a regexp error; the message quotes the
// expression already.
func regexErr(err error) string {
	var se *syntax.Error
	if errors.As(err, &se) {
		if se.Expr != "" {
			return fmt.Sprintf("%s at `%s`", se.Code, se.Expr)
		}
		return string(se.Code)
	}
	return err.Error()
}

// hostPort validates host:port. Listening addresses may leave the host
// empty and use port 0; probe targets may not.
func hostPort(v string, listening bool) error {
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		return fmt.Errorf("%q: want host:port (%v)", v, strings.TrimPrefix(err.Error(), "address "+v+": "))
	}
	n, err := strconv.Atoi(port)
	lo := 1
	if listening {
		lo = 0
	}
	if err != nil || n < lo || n > 65535 {
		return fmt.Errorf("%q: port %q is not a number from %d to 65535", v, port, lo)
	}
	if host == "" && !listening {
		return fmt.Errorf("%q: host is empty", v)
	}
	if strings.ContainsAny(host, " /\t") {
		return fmt.Errorf("%q: %q is not a host name or IP address", v, host)
	}
	return nil
}

var nameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// build turns the decoded files into a Config, reporting every problem.
func (l *loader) build(srcs []*source) *Config {
	main := srcs[0]
	f := &main.schema
	cfg := &Config{}
	for _, s := range srcs {
		cfg.Files = append(cfg.Files, s.name)
	}
	root := scope{l: l, s: main}

	// [agent]
	const maxNodeLen, maxRegionLen = 253, 63
	sc := root.sub("agent")
	cfg.Agent.Node = f.Agent.Node.or("")
	if !f.Agent.Node.Set {
		h, err := l.hostname()
		if err != nil || h == "" {
			sc.errf(ErrRequired, "node", "not set and the host name is unknown (%v); set node", err)
		}
		cfg.Agent.Node = h
	} else if f.Agent.Node.ok() && (cfg.Agent.Node == "" || strings.ContainsAny(cfg.Agent.Node, " \t\r\n")) {
		sc.errf(ErrInvalid, "node", "%q: must be non-empty, without spaces", cfg.Agent.Node)
	}
	if len(cfg.Agent.Node) > maxNodeLen {
		// Gossip carries names in at most 255 bytes and node metadata in 512.
		sc.errf(ErrInvalid, "node", "%d bytes: at most %d (a DNS name's length)", len(cfg.Agent.Node), maxNodeLen)
	}
	cfg.Agent.Region = f.Agent.Region.or(defaultRegion)
	if f.Agent.Region.ok() && !nameRe.MatchString(cfg.Agent.Region) {
		sc.errf(ErrInvalid, "region", "%q: want letters, digits, '.', '_' or '-'", cfg.Agent.Region)
	} else if len(cfg.Agent.Region) > maxRegionLen {
		sc.errf(ErrInvalid, "region", "%q: at most %d bytes", cfg.Agent.Region, maxRegionLen)
	}
	cfg.Agent.Listen = f.Agent.Listen.or(defaultListen)
	if f.Agent.Listen.ok() {
		if err := hostPort(cfg.Agent.Listen, true); err != nil {
			sc.errf(ErrInvalid, "listen", "%v", err)
		}
	}
	if f.Agent.SourceIP.ok() && f.Agent.SourceIP.V != "" {
		ip, err := netip.ParseAddr(f.Agent.SourceIP.V)
		if err != nil {
			sc.errf(ErrInvalid, "source_ip", "%q: not an IP address", f.Agent.SourceIP.V)
		}
		cfg.Agent.SourceIP = ip
	}

	if o := f.Agent.MemoryLimit; o.ok() {
		n, err := memlimit.ParseSize(o.V)
		switch {
		case err != nil:
			sc.errf(ErrInvalid, "memory_limit", "%v", err)
		case n < memlimit.Min:
			sc.errf(ErrInvalid, "memory_limit", "%q: at least %s (the runtime and the agent's own structures need that before any target)",
				o.V, memlimit.FormatSize(memlimit.Min))
		default:
			cfg.Agent.MemoryLimit = n
		}
	}

	l.buildCluster(root.sub("cluster"), &f.Cluster, &cfg.Cluster)

	// [quorum]
	sc = root.sub("quorum")
	cfg.Quorum.MinRegions = sc.atLeast("min_regions", f.Quorum.MinRegions, 1, defaultMinRegion)
	cfg.Quorum.ConfirmOnFailure = f.Quorum.ConfirmOnFailure.or(true)
	cfg.Quorum.RecoverySuccesses = sc.atLeast("recovery_successes", f.Quorum.RecoverySuccesses, 1, 1)

	// [defaults]
	sc = root.sub("defaults")
	d := defaultsFrom{scope: sc}
	cfg.Defaults.Interval, d.intervalSet = sc.duration("interval", f.Defaults.Interval, defaultInterval)
	if d.intervalSet && !intervalInRange(sc, cfg.Defaults.Interval, f.Defaults.Interval.V) {
		cfg.Defaults.Interval, d.intervalSet = defaultInterval, false
	}
	cfg.Defaults.Timeout, d.timeoutSet = sc.duration("timeout", f.Defaults.Timeout, 0)
	switch {
	case d.timeoutSet && cfg.Defaults.Timeout <= 0:
		sc.errf(ErrInvalid, "timeout", "%q: must be above zero", f.Defaults.Timeout.V)
		d.timeoutSet = false
	case d.timeoutSet && d.intervalSet && cfg.Defaults.Timeout >= cfg.Defaults.Interval:
		sc.errf(ErrImpossible, "timeout", "%v must be below interval (%v)", cfg.Defaults.Timeout, cfg.Defaults.Interval)
		d.timeoutSet = false
	}
	if !d.timeoutSet {
		cfg.Defaults.Timeout = timeoutFor(cfg.Defaults.Interval)
	}
	cfg.Defaults.Failures = sc.atLeast("failures", f.Defaults.Failures, 1, 1)
	d.Defaults = cfg.Defaults

	// [exporter]
	cfg.Exporter.LatencyHistogram = f.Exporter.LatencyHistogram.or(false)
	sc = root.sub("exporter")
	cfg.Exporter.TLSCertFile = sc.file(f.Exporter.TLSCertFile)
	cfg.Exporter.TLSKeyFile = sc.file(f.Exporter.TLSKeyFile)
	cfg.Exporter.TLSClientCAFile = sc.file(f.Exporter.TLSClientCA)
	if (cfg.Exporter.TLSCertFile == "") != (cfg.Exporter.TLSKeyFile == "") {
		sc.errf(ErrConflict, "tls_cert_file", "tls_cert_file and tls_key_file must be set together")
	}
	if cfg.Exporter.TLSClientCAFile != "" && cfg.Exporter.TLSCertFile == "" {
		sc.errf(ErrConflict, "tls_client_ca_file", "client certificates need TLS: set tls_cert_file and tls_key_file")
	}
	for user, hash := range f.Exporter.BasicAuthUsers {
		if user == "" || strings.ContainsAny(user, ":") {
			sc.errf(ErrInvalid, "basic_auth_users", "user name %q: must be non-empty and contain no ':'", user)
			continue
		}
		if hash.bad {
			continue // reported as a type error
		}
		if !strings.HasPrefix(hash.V, "$2") {
			sc.errf(ErrInvalid, "basic_auth_users", "user %q: the value must be a bcrypt hash ($2y$...), never a password; make one with `htpasswd -nBC 10 %s`", user, user)
			continue
		}
		if cfg.Exporter.BasicAuthUsers == nil {
			cfg.Exporter.BasicAuthUsers = map[string]string{}
		}
		// The table's keys are decoded by toml itself, not through opt.
		cfg.Exporter.BasicAuthUsers[l.intern(user)] = hash.V
	}

	// [slo]
	sc = root.sub("slo")
	cfg.SLO.Objective = defaultObjective
	if o := f.SLO.Objective; o.ok() {
		if o.V <= 0 || o.V >= 1 {
			sc.errf(ErrInvalid, "objective", "%v: must be between 0 and 1, exclusive (0.999 is 99.9%%)", o.V)
		} else {
			cfg.SLO.Objective = o.V
		}
	}
	cfg.SLO.Window = defaultWindow
	if w := sc.positive("window", f.SLO.Window); w > 0 {
		cfg.SLO.Window = w
	}

	// [agent] state_dir, retention: after [slo], which retention covers.
	sc = root.sub("agent")
	cfg.Agent.StateDirPos = sc.pos("")
	if o := f.Agent.StateDir; o.ok() {
		cfg.Agent.StateDirPos = sc.pos("state_dir")
		switch {
		case o.V == "":
			sc.errf(ErrInvalid, "state_dir", "empty: leave it out for the default (/var/lib/vantage/<node>)")
		case strings.ContainsRune(o.V, 0):
			sc.errf(ErrInvalid, "state_dir", "%q: not a path", o.V)
		default:
			cfg.Agent.StateDir = sc.file(o)
		}
	}
	cfg.Agent.Retention = cfg.SLO.Window + RetentionMargin
	if r := sc.positive("retention", f.Agent.Retention); r > 0 {
		if r < cfg.SLO.Window {
			sc.errf(ErrImpossible, "retention", "%v is shorter than the SLO window (%v): the SLO figures need the whole window kept", r, cfg.SLO.Window)
		} else {
			cfg.Agent.Retention = r
		}
	}

	l.buildAlerting(root.sub("alerting"), &f.Alerting, &cfg.Alerting)
	cfg.Agent.ExternalURL = l.externalURL(root.sub("agent"), f.Agent.ExternalURL, cfg)

	// Targets, main file first.
	first := map[string]Pos{}
	for _, s := range srcs {
		for i := range s.schema.Target {
			t := l.buildTarget(s, i, cfg, &d)
			if t == nil {
				continue
			}
			if p, dup := first[t.Name]; dup {
				scope{l: l, s: s, path: fmt.Sprintf("target[%d]", i), field: targetField(t.Name, i)}.
					errf(ErrDuplicate, "name", "duplicate target name %q; first defined at %s", t.Name, p)
				continue
			}
			first[t.Name] = t.Pos
			cfg.Targets = append(cfg.Targets, t)
		}
	}

	// After the targets: push labels must not collide with theirs.
	l.buildPush(root.sub("exporter").sub("push"), f.Exporter.Push, &cfg.Exporter.Push, cfg.Targets)

	for _, s := range srcs {
		for i := range s.schema.Maintenance {
			if m, ok := l.buildMaintenance(s, i, cfg); ok {
				cfg.Maintenance = append(cfg.Maintenance, m)
			}
		}
	}
	cfg.index()
	return cfg
}

// timeoutFor is the timeout of a target that sets none, here or in
// intervalInRange reports whether an interval is within [minInterval,
// maxInterval], naming the field when it is not.
func intervalInRange(sc scope, iv time.Duration, raw string) bool {
	switch {
	case iv < minInterval:
		sc.errf(ErrInvalid, "interval", "%q: must be at least %v", raw, minInterval)
	case iv > maxInterval:
		sc.errf(ErrInvalid, "interval", "%q: must be at most %v (a target looked at less than daily is not monitored)", raw, maxInterval)
	default:
		return true
	}
	return false
}

// [defaults]: 10s, or 4/5 of a shorter interval so a probe always ends
// before the next one starts.
func timeoutFor(interval time.Duration) time.Duration {
	return min(defaultTimeout, interval*4/5)
}

// defaultsFrom is [defaults] as targets inherit it, with where it was set.
type defaultsFrom struct {
	Defaults
	scope                   scope
	intervalSet, timeoutSet bool
}

func (l *loader) buildCluster(sc scope, in *clusterSchema, out *Cluster) {
	out.Bind = in.Bind.or(defaultBind)
	if in.Bind.ok() {
		if err := hostPort(out.Bind, true); err != nil {
			sc.errf(ErrInvalid, "bind", "%v", err)
		}
	}
	out.Advertise = in.Advertise.or("")
	if out.Advertise != "" {
		if err := hostPort(out.Advertise, false); err != nil {
			sc.errf(ErrInvalid, "advertise", "%v", err)
		}
	}
	for i, j := range in.Join.or(nil) {
		if err := hostPort(j, false); err != nil {
			sc.errf(ErrInvalid, fmt.Sprintf("join[%d]", i), "%v", err)
			continue
		}
		out.Join = append(out.Join, j)
	}
	if p := sc.file(in.SecretKeyFile); p != "" {
		out.SecretKeyFile = p
		if _, err := ReadGossipKeys(p); err != nil {
			sc.errf(ErrSecret, "secret_key_file", "%v", err)
		}
	}
	out.Label = in.Label.or(defaultLabel)
	out.Insecure = in.Insecure.or(false)
	out.BindPos = sc.pos("bind")
	if !in.Bind.Set {
		out.BindPos = sc.pos("") // the default bind: the table is where a key belongs
	}
	out.ReplicasPerRegion = sc.atLeast("replicas_per_region", in.ReplicasPerRegion, 1, 1)
	out.GossipInterval = sc.positive("gossip_interval", in.GossipInterval)
	out.ProbeInterval = sc.positive("probe_interval", in.ProbeInterval)
	out.ProbeTimeout = sc.positive("probe_timeout", in.ProbeTimeout)
	if out.ProbeTimeout > 0 && out.ProbeInterval > 0 && out.ProbeTimeout >= out.ProbeInterval {
		sc.errf(ErrImpossible, "probe_timeout", "%v must be below probe_interval (%v)", out.ProbeTimeout, out.ProbeInterval)
	}
	out.SuspicionMult = sc.atLeast("suspicion_mult", in.SuspicionMult, 1, 0)
	out.TCPTimeout = sc.positive("tcp_timeout", in.TCPTimeout)
	out.RejoinInterval = sc.positive("rejoin_interval", in.RejoinInterval)
	if out.RejoinInterval == 0 {
		out.RejoinInterval = defaultRejoin
	}
}

// CheckStart reports what the agent refuses at start beyond what Load
// checks: plaintext gossip on an address others can reach. The agent and
// check-config both call it, so they refuse the same configs with the
// same words. It is not part of Load because it is a policy on where a
// file is deployed, not on the file: tests, the demo and libraries load
// configs with the default bind and never gossip off loopback.
func (c *Config) CheckStart() error {
	var errs Errors
	if err := CheckGossipSecurity(&c.Cluster); err != nil {
		errs = append(errs, Error{Pos: c.Cluster.BindPos, Field: "cluster.bind", Msg: err.Error(), Err: ErrInvalid})
	}
	if c.Agent.StateDir != "" {
		if err := CheckStateDir(c.Agent.StateDir); err != nil {
			errs = append(errs, Error{Pos: c.Agent.StateDirPos, Field: "agent.state_dir", Msg: err.Error(), Err: ErrInvalid})
		}
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// CheckGossipSecurity refuses plaintext gossip on an address others can
// reach: without a key, gossip is readable and forgeable by anyone on the
// network.
func CheckGossipSecurity(c *Cluster) error {
	if c.SecretKeyFile != "" || c.Insecure || isLoopbackBind(c.Bind) {
		return nil
	}
	return fmt.Errorf("%q is not a loopback address and no gossip key is configured: "+
		"gossip would be readable and forgeable by anyone on the network; "+
		"make a key with `vantage keygen > /etc/vantage/gossip.key` and set [cluster] secret_key_file, "+
		"or, on a trusted network only, [cluster] insecure = true", c.Bind)
}

func isLoopbackBind(bind string) bool {
	host, _, err := net.SplitHostPort(bind)
	if err != nil {
		host = bind
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// ReadGossipKeys reads a gossip key file: one base64 key per line ('#'
// comments), the first encrypts, all decrypt (key rotation). Errors name
// the file and line, never a key. Load checks the file with it; the agent
// reads the keys with it, at start and on reload.
func ReadGossipKeys(p string) ([][]byte, error) {
	if p == "" {
		return nil, nil
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("%q: %w", p, unwrapPath(err))
	}
	var keys [][]byte
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, err := base64.StdEncoding.DecodeString(line)
		if err != nil {
			return nil, fmt.Errorf("%q line %d: not base64 (make a key with `vantage keygen`)", p, i+1)
		}
		if l := len(k); l != 16 && l != 24 && l != 32 {
			return nil, fmt.Errorf("%q line %d: key is %d bytes, want 16, 24 or 32 (make one with `vantage keygen`)", p, i+1, l)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%q: no key in file (make one with `vantage keygen`)", p)
	}
	return keys, nil
}

// unwrapPath drops the path os errors repeat, since messages quote it already.
func unwrapPath(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

// readSecret reads a secret file (trimmed) or environment variable.
// Errors name the file or variable, never the value.
func (sc scope) secretFile(key string, o opt[string]) string {
	p := sc.file(o)
	if !o.ok() {
		return ""
	}
	if p == "" {
		sc.errf(ErrSecret, key, "empty file name")
		return ""
	}
	b, err := os.ReadFile(p)
	if err != nil {
		sc.errf(ErrSecret, key, "%q: %v", p, unwrapPath(err))
		return ""
	}
	v := strings.TrimSpace(string(b))
	if v == "" {
		sc.errf(ErrSecret, key, "%q is empty", p)
	}
	return v
}

func (sc scope) secretEnv(key string, o opt[string]) string {
	if !o.ok() {
		return ""
	}
	v, found := sc.l.lookupEnv(o.V)
	switch {
	case o.V == "":
		sc.errf(ErrSecret, key, "empty variable name")
	case !found:
		sc.errf(ErrSecret, key, "environment variable %q is not set", o.V)
	case strings.TrimSpace(v) == "":
		sc.errf(ErrSecret, key, "environment variable %q is empty", o.V)
	}
	return strings.TrimSpace(v)
}

// buildAlerting validates [alerting].
func (l *loader) buildAlerting(sc scope, in *alertingSchema, out *Alerting) {
	seen := map[string]bool{}
	for i, raw := range in.Alertmanagers.or(nil) {
		key := fmt.Sprintf("alertmanagers[%d]", i)
		u, err := url.Parse(raw)
		switch {
		case err != nil:
			sc.errf(ErrInvalid, key, "%q: %v", probe.RedactURL(raw), probe.RedactParseError(raw, err))
		case u.Scheme != "http" && u.Scheme != "https":
			sc.errf(ErrInvalid, key, "%q: scheme must be http or https", probe.RedactURL(raw))
		case u.Host == "":
			sc.errf(ErrInvalid, key, "%q: no host", probe.RedactURL(raw))
		case u.User != nil:
			sc.errf(ErrSecret, key, "%q: credentials in the URL would show in logs and on the status page; use basic_auth with password_file", probe.RedactURL(raw))
		case u.RawQuery != "" || u.Fragment != "":
			sc.errf(ErrInvalid, key, "%q: want a base URL without query or fragment (the agent posts to <url>/api/v2/alerts)", probe.RedactURL(raw))
		case seen[strings.TrimRight(raw, "/")]:
			sc.errf(ErrDuplicate, key, "%q is listed twice: every alert would go to it twice", probe.RedactURL(raw))
		default:
			if err := checkPort(u); err != nil {
				sc.errf(ErrInvalid, key, "%q: %v", probe.RedactURL(raw), err)
				continue
			}
			seen[strings.TrimRight(raw, "/")] = true
			out.Alertmanagers = append(out.Alertmanagers, strings.TrimRight(raw, "/"))
		}
	}
	out.ResendInterval = sc.positive("resend_interval", in.ResendInterval)
	if out.ResendInterval == 0 {
		out.ResendInterval = defaultResend
	}
	out.Timeout = sc.positive("timeout", in.Timeout)
	if out.Timeout == 0 {
		out.Timeout = defaultAMTimeout
	}
	for k, v := range in.ExternalLabels.or(nil) {
		switch {
		case !labelNameRe.MatchString(k) || strings.HasPrefix(k, "__"):
			sc.errf(ErrLabel, "external_labels."+k, "%q: not a valid Prometheus label name", k)
		case k == "alertname" || k == "target" || k == "severity":
			sc.errf(ErrLabel, "external_labels."+k, "%q is set by the alert itself", k)
		case v == "":
			sc.errf(ErrLabel, "external_labels."+k, "empty value: Prometheus drops empty labels, so the two alert paths would differ")
		default:
			if out.ExternalLabels == nil {
				out.ExternalLabels = map[string]string{}
			}
			out.ExternalLabels[k] = v
		}
	}
	out.BasicAuthUser, out.BasicAuthPassword, out.BearerToken = sc.clientAuth(in.BasicAuth, in.BearerTokenFile, in.BearerTokenEnv)
	out.TLS = sc.tlsClient(&in.tlsClientSchema)
	if !out.Enabled() {
		keys := tlsKeysSet(&in.tlsClientSchema)
		if in.BasicAuth != nil {
			keys = append(keys, "basic_auth")
		}
		if in.BearerTokenFile.Set || in.BearerTokenEnv.Set {
			keys = append(keys, "bearer_token_*")
		}
		if len(keys) > 0 && !in.Alertmanagers.Set {
			sc.errf(ErrConflict, "", "%s set but no alertmanagers: nothing would use them", strings.Join(keys, ", "))
		}
	}
}

// clientAuth reads the credentials of a table the agent sends requests
// with ([alerting], [exporter.push]): basic_auth = { username,
// password_file | password_env }, or bearer_token_file | bearer_token_env.
func (sc scope) clientAuth(ba *basicAuthSchema, tokenFile, tokenEnv opt[string]) (user, password, token string) {
	if ba != nil {
		bs := sc.sub("basic_auth")
		if !ba.Username.ok() || ba.Username.V == "" {
			bs.errf(ErrRequired, "username", "username is required")
		}
		user = ba.Username.or("")
		switch {
		case ba.PasswordFile.Set && ba.PasswordEnv.Set:
			bs.errf(ErrConflict, "password_env", "set password_file or password_env, not both")
		case ba.PasswordFile.Set:
			password = bs.secretFile("password_file", ba.PasswordFile)
		case ba.PasswordEnv.Set:
			password = bs.secretEnv("password_env", ba.PasswordEnv)
		}
	}
	switch {
	case tokenFile.Set && tokenEnv.Set:
		sc.errf(ErrConflict, "bearer_token_env", "set bearer_token_file or bearer_token_env, not both")
	case tokenFile.Set:
		token = sc.secretFile("bearer_token_file", tokenFile)
	case tokenEnv.Set:
		token = sc.secretEnv("bearer_token_env", tokenEnv)
	}
	if ba != nil && (tokenFile.Set || tokenEnv.Set) {
		sc.errf(ErrConflict, "", "basic_auth and bearer_token_* each set Authorization: choose one")
	}
	return user, password, token
}

// checkPort refuses a URL port outside 1-65535 (url.Parse accepts any digits).
func checkPort(u *url.URL) error {
	p := u.Port()
	if p == "" {
		return nil
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port %q: want 1-65535", p)
	}
	return nil
}

// externalURL is [agent].external_url, or one made from listen: the
// host name stands in for a wildcard address, which nobody can browse to.
func (l *loader) externalURL(sc scope, o opt[string], cfg *Config) string {
	if o.ok() && o.V != "" {
		u, err := url.Parse(o.V)
		switch {
		case err != nil:
			sc.errf(ErrInvalid, "external_url", "%q: %v", probe.RedactURL(o.V), probe.RedactParseError(o.V, err))
		case u.Scheme != "http" && u.Scheme != "https":
			sc.errf(ErrInvalid, "external_url", "%q: scheme must be http or https", probe.RedactURL(o.V))
		case u.Host == "":
			sc.errf(ErrInvalid, "external_url", "%q: no host", probe.RedactURL(o.V))
		default:
			return strings.TrimRight(o.V, "/")
		}
		return ""
	}
	scheme := "http"
	if cfg.Exporter.TLSCertFile != "" {
		scheme = "https"
	}
	host, port, err := net.SplitHostPort(cfg.Agent.Listen)
	if err != nil {
		return ""
	}
	if ip, err := netip.ParseAddr(host); host == "" || (err == nil && ip.IsUnspecified()) {
		if h, err := l.hostname(); err == nil && h != "" {
			host = h
		} else {
			host = "localhost"
		}
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}
