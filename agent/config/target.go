package config

import (
	"fmt"
	"hash/fnv"
	"math"
	"net"
	"net/netip"
	"net/textproto"
	"net/url"
	"reflect"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/miekg/dns"

	"github.com/vantage-probe/vantage/probe"
	"github.com/vantage-probe/vantage/probe/dnsprobe"
	"github.com/vantage-probe/vantage/probe/grpcprobe"
	"github.com/vantage-probe/vantage/probe/httpprobe"
	"github.com/vantage-probe/vantage/probe/icmpprobe"
	"github.com/vantage-probe/vantage/probe/tcpprobe"
	"github.com/vantage-probe/vantage/probe/tlsprobe"
)

// Reserved label names: Vantage's own labels on every series, and the ones
// Prometheus attaches at scrape or uses for histograms.
var reservedLabels = []string{"target", "type", "region", "instance", "job", "phase", "result", "le", "alertname"}

var labelNameRe = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// Defaults of the protocol tables, each with why.
const (
	// DefaultCertDays is how many days before its certificate expires a
	// target that speaks TLS warns (cert_expiring) and raises the
	// VantageCertExpiringSoon ticket, unless a tls target sets its own
	// min_days_left: two weeks leave time to renew by hand when automation
	// fails.
	DefaultCertDays     = 14
	defaultMaxRedirects = 10      // browsers give up around 20; 10 catches loops fast
	defaultMaxBodyBytes = 1 << 20 // health pages are small; bounds memory per probe
	defaultReadLimit    = 4096    // a banner or a short reply; bounds memory per probe
)

// buildTarget validates [[target]] number i of s and returns it with
// defaults applied, or nil when it is too broken to identify.
func (l *loader) buildTarget(s *source, i int, cfg *Config, d *defaultsFrom) *Target {
	ts := &s.schema.Target[i]
	name := ts.Name.or("")
	sc := scope{l: l, s: s, path: fmt.Sprintf("target[%d]", i), field: targetField(name, i)}
	t := &Target{Name: name, Pos: s.ix.at(sc.path)}

	switch {
	case !ts.Name.Set:
		sc.errf(ErrRequired, "", "name is required")
	case ts.Name.ok() && (name == "" || strings.TrimSpace(name) != name || strings.ContainsAny(name, "\r\n\t")):
		sc.errf(ErrInvalid, "name", "%q: must be non-empty, without surrounding spaces or control characters", name)
	}

	t.Type = ts.Type.or("")
	tables := map[string]bool{TypeHTTP: ts.HTTP != nil, TypeTLS: ts.TLS != nil, TypeDNS: ts.DNS != nil, TypeTCP: ts.TCP != nil,
		TypeICMP: ts.ICMP != nil, TypeGRPC: ts.GRPC != nil}
	if !validType(t.Type) {
		switch {
		case !ts.Type.Set:
			sc.errf(ErrRequired, "", "type is required: %s", typeList)
		case ts.Type.ok():
			sc.errf(ErrUnknownType, "type", "unknown type %q: want %s", t.Type, typeList)
		}
	}
	for _, k := range Types {
		if tables[k] && t.Type != k && t.Type != "" && validType(t.Type) {
			sc.errf(ErrConflict, k, "[target.%s] does not apply to type = %q", k, t.Type)
		}
	}

	// Schedule, inherited from [defaults].
	var intervalSet, timeoutSet bool
	t.Interval, intervalSet = sc.duration("interval", ts.Interval, d.Interval)
	if intervalSet && !intervalInRange(sc, t.Interval, ts.Interval.V) {
		t.Interval = d.Interval
	}
	t.Timeout, timeoutSet = sc.duration("timeout", ts.Timeout, 0)
	switch {
	case timeoutSet && t.Timeout <= 0:
		sc.errf(ErrInvalid, "timeout", "%q: must be above zero", ts.Timeout.V)
		t.Timeout = 0
	case timeoutSet:
	case d.timeoutSet:
		t.Timeout = d.Timeout
	default:
		t.Timeout = timeoutFor(t.Interval)
	}
	if t.Timeout > 0 && t.Timeout >= t.Interval {
		key, from := "timeout", ""
		if !timeoutSet {
			key, from = "interval", fmt.Sprintf(" (timeout from [defaults] at %s)", d.scope.pos("timeout"))
		}
		if !timeoutSet && !intervalSet {
			key = ""
		}
		sc.errf(ErrImpossible, key, "timeout %v must be below interval %v%s", t.Timeout, t.Interval, from)
	}
	t.Failures = sc.atLeast("failures", ts.Failures, 1, d.Failures)

	// Where and how it is judged.
	seen := map[string]bool{}
	for k, r := range ts.Regions.or(nil) {
		key := fmt.Sprintf("regions[%d]", k)
		switch {
		case !nameRe.MatchString(r):
			sc.errf(ErrInvalid, key, "%q: want letters, digits, '.', '_' or '-'", r)
		case seen[r]:
			sc.errf(ErrInvalid, key, "region %q listed twice", r)
		default:
			seen[r] = true
			t.Regions = append(t.Regions, r)
		}
	}
	if ts.MinRegions.ok() {
		t.MinRegions = sc.atLeast("min_regions", ts.MinRegions, 1, 0)
		if n := len(ts.Regions.or(nil)); n > 0 && t.MinRegions > n {
			sc.errf(ErrImpossible, "min_regions", "%d is more than the %d region(s) this target lists", t.MinRegions, n)
		}
	}
	t.SLOObjective = cfg.SLO.Objective
	if o := ts.SLOObjective; o.ok() {
		if o.V <= 0 || o.V >= 1 {
			sc.errf(ErrInvalid, "slo_objective", "%v: must be between 0 and 1, exclusive (0.999 is 99.9%%)", o.V)
		} else {
			t.SLOObjective = o.V
		}
	}
	if labels := ts.Labels.or(nil); len(labels) > 0 {
		t.Labels = make(map[string]string, len(labels))
		for _, k := range sortedKeys(labels) {
			switch {
			case !labelNameRe.MatchString(k):
				sc.errf(ErrLabel, "labels."+k, "%q is not a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*)", k)
			case strings.HasPrefix(k, "__"):
				sc.errf(ErrLabel, "labels."+k, "%q: names starting with __ are reserved to Prometheus", k)
			case slices.Contains(reservedLabels, k):
				sc.errf(ErrLabel, "labels."+k, "%q collides with a label Vantage or Prometheus sets (%s)", k, strings.Join(reservedLabels, ", "))
			default:
				t.Labels[k] = labels[k]
			}
		}
		t.Labels = interned(&l.labels, t.Labels)
	}

	// Network.
	var nt probe.Net
	switch v := ts.IPProtocol.or(""); v {
	case "", "auto":
	case "ip4":
		nt.IPProtocol = probe.IPv4
	case "ip6":
		nt.IPProtocol = probe.IPv6
	default:
		sc.errf(ErrInvalid, "ip_protocol", "%q: want ip4, ip6 or auto", v)
	}
	nt.SourceIP = cfg.Agent.SourceIP
	if v := ts.SourceIP.or(""); v != "" {
		ip, err := netip.ParseAddr(v)
		if err != nil {
			sc.errf(ErrInvalid, "source_ip", "%q: not an IP address", v)
		} else {
			nt.SourceIP = ip
			t.ownSourceIP = true
		}
	}
	if nt.SourceIP.IsValid() && nt.IPProtocol != probe.IPAuto && nt.SourceIP.Unmap().Is4() != (nt.IPProtocol == probe.IPv4) {
		sc.errf(ErrImpossible, "ip_protocol", "%q cannot be sent from source_ip %s", nt.IPProtocol, nt.SourceIP)
	}

	// The endpoint keys belong to one type each.
	if ts.URL.Set && t.Type != TypeHTTP && validType(t.Type) {
		sc.errf(ErrConflict, "url", "applies to http targets only (use address or [target.dns] server)")
	}
	if ts.Address.Set && (t.Type == TypeHTTP || t.Type == TypeDNS) {
		sc.errf(ErrConflict, "address", "applies to tls, tcp, icmp and grpc targets only")
	}

	switch t.Type {
	case TypeHTTP:
		o := sc.buildHTTP(ts, nt)
		t.url, o.URL = o.URL, ""
		t.http = interned(&l.http, o)
	case TypeTLS:
		t.TLS = sc.buildTLS(ts, nt)
	case TypeDNS:
		t.DNS = sc.buildDNS(ts, nt)
	case TypeTCP:
		t.TCP = sc.buildTCP(ts, nt)
	case TypeICMP:
		t.ICMP = sc.buildICMP(ts, nt, t.Timeout)
	case TypeGRPC:
		t.GRPC = sc.buildGRPC(ts, nt)
	}
	if name == "" {
		return nil
	}
	t.Fingerprint = t.fingerprint()
	return t
}

func validType(t string) bool { return slices.Contains(Types, t) }

// typeList names the types in errors.
const typeList = "http, tls, dns, tcp, icmp or grpc"

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// address validates a tls, tcp or grpc target's host:port.
func (sc scope) address(ts *targetSchema, nt probe.Net) string {
	if !ts.Address.Set {
		sc.errf(ErrRequired, "", "address (host:port) is required for a %s target", ts.Type.V)
		return ""
	}
	a := ts.Address.or("")
	if err := hostPort(a, false); err != nil {
		sc.errf(ErrInvalid, "address", "%v", err)
		return a
	}
	host, _, _ := net.SplitHostPort(a)
	sc.familyCheck("address", host, nt)
	return a
}

// familyCheck reports an IP literal that ip_protocol rules out.
func (sc scope) familyCheck(key, host string, nt probe.Net) {
	ip, err := netip.ParseAddr(strings.Trim(host, "[]"))
	if err != nil || nt.IPProtocol == probe.IPAuto {
		return
	}
	if ip.Unmap().Is4() != (nt.IPProtocol == probe.IPv4) {
		sc.errf(ErrImpossible, key, "%s is not an %s address (ip_protocol)", ip, nt.IPProtocol)
	}
}

// tlsClient builds the client TLS options of a protocol table.
func (sc scope) tlsClient(t *tlsClientSchema) probe.TLSOptions {
	o := probe.TLSOptions{
		CAFile:             sc.file(t.CAFile),
		CertFile:           sc.file(t.CertFile),
		KeyFile:            sc.file(t.KeyFile),
		ServerName:         t.ServerName.or(""),
		InsecureSkipVerify: t.InsecureSkipVerify.or(false),
	}
	if (o.CertFile == "") != (o.KeyFile == "") {
		key := "key_file" // the one that is set
		if o.CertFile != "" {
			key = "cert_file"
		}
		sc.errf(ErrConflict, key, "cert_file and key_file must be set together (client certificate)")
	}
	// Read them as the prober will, once the rest of the config is valid
	// (a key that does not apply is reported as such, not also as a
	// missing file): a missing or malformed file is a config error with
	// its line, not a refusal at start with none.
	if o.CAFile != "" {
		sc.l.afterValid(func() {
			if err := sc.l.checkFile(o.CAFile, checkCABundle); err != nil {
				sc.errf(ErrInvalid, "ca_file", "%v", err)
			}
		})
	}
	if o.CertFile != "" && o.KeyFile != "" {
		sc.l.afterValid(func() {
			if err := sc.l.checkFile(o.CertFile+"\x00"+o.KeyFile, checkKeyPair); err != nil {
				sc.errf(ErrInvalid, "cert_file", "%v", err)
			}
		})
	}
	return o
}

// tlsKeysSet lists the client TLS keys a table sets, for "does not apply" errors.
func tlsKeysSet(t *tlsClientSchema) []string {
	var keys []string
	for _, k := range []struct {
		name string
		set  bool
	}{
		{"ca_file", t.CAFile.Set}, {"cert_file", t.CertFile.Set}, {"key_file", t.KeyFile.Set},
		{"server_name", t.ServerName.Set}, {"insecure_skip_verify", t.InsecureSkipVerify.Set},
	} {
		if k.set {
			keys = append(keys, k.name)
		}
	}
	return keys
}

func (sc scope) buildHTTP(ts *targetSchema, nt probe.Net) *httpprobe.Options {
	o := &httpprobe.Options{Net: nt, FollowRedirects: true, MaxRedirects: defaultMaxRedirects, MaxBodyBytes: defaultMaxBodyBytes}
	var u *url.URL
	switch {
	case !ts.URL.Set:
		sc.errf(ErrRequired, "", "url is required for an http target")
	case ts.URL.ok():
		o.URL = ts.URL.V
		var err error
		u, err = url.Parse(o.URL)
		switch {
		case err != nil:
			sc.errf(ErrInvalid, "url", "%q: %v", probe.RedactURL(o.URL), probe.RedactParseError(o.URL, err))
			u = nil
		case u.Scheme != "http" && u.Scheme != "https":
			sc.errf(ErrInvalid, "url", "%q: scheme must be http or https", probe.RedactURL(o.URL))
			u = nil
		case u.Hostname() == "":
			sc.errf(ErrInvalid, "url", "%q: no host", probe.RedactURL(o.URL))
			u = nil
		case checkPort(u) != nil:
			sc.errf(ErrInvalid, "url", "%q: %v", probe.RedactURL(o.URL), checkPort(u))
			u = nil
		default:
			sc.familyCheck("url", u.Hostname(), nt)
		}
	}
	h := ts.HTTP
	if h == nil {
		h = &httpSchema{}
	}
	hs := sc.sub("http")

	o.Method = h.Method.or("GET")
	if !httpprobe.IsToken(o.Method) {
		hs.errf(ErrInvalid, "method", "%q is not an HTTP method", o.Method)
	}
	if hdrs := h.Headers.or(nil); len(hdrs) > 0 {
		o.Headers = make(map[string]string, len(hdrs))
		for _, k := range sortedKeys(hdrs) {
			v := hdrs[k]
			switch {
			case !httpprobe.IsToken(k):
				hs.errf(ErrInvalid, "headers."+k, "%q is not a header name", k)
			case strings.ContainsAny(v, "\r\n"):
				hs.errf(ErrInvalid, "headers."+k, "value must not contain line breaks")
			default:
				o.Headers[k] = v
			}
		}
	}
	o.SecretHeaders = hs.secretHeaders(h, o.Headers)
	o.Body = h.Body.or("")
	for k, c := range h.ValidStatus.or(nil) {
		if c < 100 || c > 599 {
			hs.errf(ErrInvalid, fmt.Sprintf("valid_status[%d]", k), "%d is not an HTTP status code (100-599)", c)
		}
	}
	o.ValidStatus = h.ValidStatus.or(nil)

	if h.BodyRegex.ok() && hs.regex("body_regex", h.BodyRegex.V) {
		o.FailIfBodyNotMatches = append(o.FailIfBodyNotMatches, h.BodyRegex.V)
	}
	for k, re := range h.FailIfBodyNotMatches.or(nil) {
		if hs.regex(fmt.Sprintf("fail_if_body_not_matches[%d]", k), re) {
			o.FailIfBodyNotMatches = append(o.FailIfBodyNotMatches, re)
		}
	}
	for k, re := range h.FailIfBodyMatches.or(nil) {
		if hs.regex(fmt.Sprintf("fail_if_body_matches[%d]", k), re) {
			o.FailIfBodyMatches = append(o.FailIfBodyMatches, re)
		}
	}
	o.FailIfHeaderMatches = hs.headerMatches("fail_if_header_matches", h.FailIfHeaderMatches)
	o.FailIfHeaderNotMatches = hs.headerMatches("fail_if_header_not_matches", h.FailIfHeaderNotMatches)
	o.FailIfSSL, o.FailIfNotSSL = h.FailIfSSL.or(false), h.FailIfNotSSL.or(false)
	if o.FailIfSSL && o.FailIfNotSSL {
		hs.errf(ErrConflict, "fail_if_not_ssl", "fail_if_ssl and fail_if_not_ssl together fail every probe")
	}

	o.FollowRedirects = h.FollowRedirects.or(true)
	if h.MaxRedirects.ok() {
		if h.MaxRedirects.V < 1 {
			hs.errf(ErrInvalid, "max_redirects", "%d: must be at least 1 (to not follow redirects, set follow_redirects = false)", h.MaxRedirects.V)
		} else {
			o.MaxRedirects = h.MaxRedirects.V
		}
	}
	if h.MaxBodyBytes.ok() {
		if h.MaxBodyBytes.V < 1 {
			hs.errf(ErrInvalid, "max_body_bytes", "%d: must be at least 1", h.MaxBodyBytes.V)
		} else {
			o.MaxBodyBytes = h.MaxBodyBytes.V
		}
	}
	o.HTTPVersion = h.HTTPVersion.or("auto")
	switch o.HTTPVersion {
	case "auto", "1.1":
	case "2", "3":
		if u != nil && u.Scheme == "http" {
			why := "HTTP/3 runs over QUIC, which is always TLS"
			if o.HTTPVersion == "2" {
				why = "HTTP/2 is probed over TLS only (no h2c)"
			}
			hs.errf(ErrImpossible, "http_version", "%q needs an https url: %s", o.HTTPVersion, why)
		}
	default:
		hs.errf(ErrInvalid, "http_version", "%q: want auto, 1.1, 2 or 3", o.HTTPVersion)
	}

	// Credentials: read now, so a missing secret fails the load, not every probe.
	if ba := h.BasicAuth; ba != nil {
		bs := hs.sub("basic_auth")
		if !ba.Username.ok() || ba.Username.V == "" {
			if !ba.Username.Set || ba.Username.ok() {
				bs.errf(ErrRequired, "username", "username is required")
			}
		}
		o.BasicAuthUser = ba.Username.or("")
		switch {
		case ba.PasswordFile.Set && ba.PasswordEnv.Set:
			bs.errf(ErrConflict, "password_env", "set password_file or password_env, not both")
		case ba.PasswordFile.Set:
			o.BasicAuthPassword = bs.secretFile("password_file", ba.PasswordFile)
		case ba.PasswordEnv.Set:
			o.BasicAuthPassword = bs.secretEnv("password_env", ba.PasswordEnv)
		}
	}
	switch {
	case h.BearerTokenFile.Set && h.BearerTokenEnv.Set:
		hs.errf(ErrConflict, "bearer_token_env", "set bearer_token_file or bearer_token_env, not both")
	case h.BearerTokenFile.Set:
		o.BearerToken = hs.secretFile("bearer_token_file", h.BearerTokenFile)
	case h.BearerTokenEnv.Set:
		o.BearerToken = hs.secretEnv("bearer_token_env", h.BearerTokenEnv)
	}
	auth := 0
	userinfo := u != nil && u.User != nil
	authHeader := hasHeader(o.Headers, "Authorization") || hasHeader(h.HeadersFile.or(nil), "Authorization") || hasHeader(h.HeadersEnv.or(nil), "Authorization")
	for _, set := range []bool{h.BasicAuth != nil, h.BearerTokenFile.Set || h.BearerTokenEnv.Set, authHeader, userinfo} {
		if set {
			auth++
		}
	}
	if auth > 1 {
		hs.errf(ErrConflict, "", "basic_auth, bearer_token_*, an Authorization header and user:password@ in the url each set Authorization: choose one")
	}
	o.JSON = hs.jsonConditions(h.JSON)
	o.TLS = hs.tlsClient(&h.tlsClientSchema)
	return o
}

// jsonOps are the comparison keys of a JSON condition, in the order errors
// list them.
var jsonOps = []httpprobe.JSONOp{httpprobe.JSONEquals, httpprobe.JSONNotEquals, httpprobe.JSONLessThan,
	httpprobe.JSONGreaterThan, httpprobe.JSONExists, httpprobe.JSONRegex}

// jsonConditions validates [target.http] json, each entry at its own
// position: a path, and exactly one comparison with a value of its type.
func (sc scope) jsonConditions(in []jsonCondSchema) []httpprobe.JSONCondition {
	var out []httpprobe.JSONCondition
	for k, c := range in {
		cs := sc.sub(fmt.Sprintf("json[%d]", k))
		ok := true
		switch {
		case !c.Path.Set:
			cs.errf(ErrRequired, "", "path is required (the value to check, like \"status\" or \"checks.db.latency_ms\")")
			ok = false
		case !c.Path.ok():
			ok = false // a type error, reported already
		default:
			if err := httpprobe.CheckJSONPath(c.Path.V); err != nil {
				cs.errf(ErrInvalid, "path", "%q: %v", c.Path.V, err)
				ok = false
			}
		}
		set := map[httpprobe.JSONOp]bool{
			httpprobe.JSONEquals: c.Equals.Set, httpprobe.JSONNotEquals: c.NotEquals.Set,
			httpprobe.JSONLessThan: c.LessThan.Set, httpprobe.JSONGreaterThan: c.GreaterThan.Set,
			httpprobe.JSONExists: c.Exists.Set, httpprobe.JSONRegex: c.Regex.Set,
		}
		var ops []httpprobe.JSONOp
		for _, op := range jsonOps {
			if set[op] {
				ops = append(ops, op)
			}
		}
		if len(ops) != 1 {
			if len(ops) == 0 {
				cs.errf(ErrRequired, "", "a comparison is required: equals, not_equals, less_than, greater_than, exists or regex")
			} else {
				cs.errf(ErrConflict, string(ops[1]), "one comparison per condition, not both %s and %s (add another condition)", ops[0], ops[1])
			}
			continue
		}
		cond := httpprobe.JSONCondition{Path: c.Path.V, Op: ops[0]}
		switch cond.Op {
		case httpprobe.JSONEquals, httpprobe.JSONNotEquals:
			v := c.Equals
			if cond.Op == httpprobe.JSONNotEquals {
				v = c.NotEquals
			}
			ok = ok && v.ok() && cs.finite(string(cond.Op), v.V.V)
			cond.Value = v.V.V
		case httpprobe.JSONLessThan, httpprobe.JSONGreaterThan:
			v := c.LessThan
			if cond.Op == httpprobe.JSONGreaterThan {
				v = c.GreaterThan
			}
			ok = ok && v.ok() && cs.finite(string(cond.Op), v.V)
			cond.Value = v.V
		case httpprobe.JSONExists:
			ok = ok && c.Exists.ok()
			cond.Value = c.Exists.V
		case httpprobe.JSONRegex:
			ok = ok && c.Regex.ok() && cs.regex("regex", c.Regex.V)
			cond.Value = c.Regex.V
		}
		if ok {
			out = append(out, cond)
		}
	}
	return out
}

// secretHeaders reads headers_file and headers_env: each value from its
// file or environment variable, now, so that a missing secret fails the
// load. Errors name the header and the file or variable, never the value;
// a header set twice (inline and secret, or in both tables) is a conflict.
func (hs scope) secretHeaders(h *httpSchema, inline map[string]string) map[string]string {
	var out map[string]string
	from := map[string]string{} // canonical name -> the table that set it
	for _, src := range []struct {
		table string
		m     map[string]string
		env   bool
	}{{"headers_file", h.HeadersFile.or(nil), false}, {"headers_env", h.HeadersEnv.or(nil), true}} {
		for _, k := range sortedKeys(src.m) {
			key := src.table + "." + k
			ck := textproto.CanonicalMIMEHeaderKey(k)
			switch {
			case !httpprobe.IsToken(k):
				hs.errf(ErrInvalid, key, "%q is not a header name", k)
				continue
			case ck == "Host":
				hs.errf(ErrInvalid, key, "Host is not a secret: set it in headers")
				continue
			case hasHeader(inline, k):
				hs.errf(ErrConflict, key, "%q is also set in headers: set each header once", k)
				continue
			case from[ck] != "":
				hs.errf(ErrConflict, key, "%q is also set in %s: set each header once", k, from[ck])
				continue
			}
			from[ck] = src.table
			ref := opt[string]{V: src.m[k], Set: true}
			var v, where string
			if src.env {
				v, where = hs.secretEnv(key, ref), fmt.Sprintf("environment variable %q", ref.V)
			} else {
				v, where = hs.secretFile(key, ref), fmt.Sprintf("%q", hs.file(ref))
			}
			if strings.ContainsFunc(v, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }) {
				hs.errf(ErrSecret, key, "%s holds a line break or control character, which a header value cannot", where)
				continue
			}
			if v != "" {
				if out == nil {
					out = map[string]string{}
				}
				out[k] = v
			}
		}
	}
	return out
}

// finite reports a float that is NaN or infinite (TOML has nan and inf),
// which no JSON number can be compared with.
func (sc scope) finite(key string, v any) bool {
	if f, isFloat := v.(float64); isFloat && (math.IsNaN(f) || math.IsInf(f, 0)) {
		sc.errf(ErrInvalid, key, "%v: want a finite number", f)
		return false
	}
	return true
}

func hasHeader(h map[string]string, name string) bool {
	for k := range h {
		if strings.EqualFold(k, name) {
			return true
		}
	}
	return false
}

func (sc scope) headerMatches(key string, in []headerMatchSchema) []httpprobe.HeaderMatch {
	var out []httpprobe.HeaderMatch
	for k, m := range in {
		ms := sc.sub(fmt.Sprintf("%s[%d]", key, k))
		ok := true
		if !m.Header.Set {
			ms.errf(ErrRequired, "", "header is required")
			ok = false
		} else if m.Header.ok() && !httpprobe.IsToken(m.Header.V) {
			ms.errf(ErrInvalid, "header", "%q is not a header name", m.Header.V)
			ok = false
		}
		if !m.Regex.Set {
			ms.errf(ErrRequired, "", "regex is required")
			ok = false
		} else if m.Regex.ok() && !ms.regex("regex", m.Regex.V) {
			ok = false
		}
		if ok && m.Header.ok() && m.Regex.ok() {
			out = append(out, httpprobe.HeaderMatch{Header: m.Header.V, Regex: m.Regex.V, AllowMissing: m.AllowMissing.or(false)})
		}
	}
	return out
}

func (sc scope) buildTLS(ts *targetSchema, nt probe.Net) *tlsprobe.Options {
	o := &tlsprobe.Options{Net: nt, Address: sc.address(ts, nt)}
	t := ts.TLS
	if t == nil {
		t = &tlsSchema{}
	}
	s := sc.sub("tls")
	o.MinDaysLeft = s.atLeast("min_days_left", t.MinDaysLeft, 0, DefaultCertDays)
	o.TLS = s.tlsClient(&t.tlsClientSchema)
	return o
}

func (sc scope) buildDNS(ts *targetSchema, nt probe.Net) *dnsprobe.Options {
	o := &dnsprobe.Options{Net: nt, Recursion: true}
	s := sc.sub("dns")
	d := ts.DNS
	if d == nil {
		sc.errf(ErrRequired, "", "a dns target needs a [target.dns] table with server and query")
		return o
	}
	o.Transport = d.Transport.or("udp")
	switch o.Transport {
	case "udp", "tcp", "tls", "https", "quic":
	default:
		s.errf(ErrInvalid, "transport", "%q: want udp, tcp, tls, https or quic", o.Transport)
	}
	if !d.Server.Set {
		s.errf(ErrRequired, "", "server is required")
	} else if d.Server.ok() {
		o.Server = d.Server.V
		if host, err := checkDNSServer(o.Server, o.Transport); err != nil {
			s.errf(ErrInvalid, "server", "%v", err)
		} else {
			s.familyCheck("server", host, nt)
		}
	}
	if !d.Query.Set {
		s.errf(ErrRequired, "", "query is required")
	} else if d.Query.ok() {
		o.Query = d.Query.V
		if _, ok := dns.IsDomainName(o.Query); !ok || o.Query == "" {
			s.errf(ErrInvalid, "query", "%q is not a domain name", o.Query)
		}
	}
	o.Record = strings.ToUpper(d.Record.or("A"))
	if t, ok := dns.StringToType[o.Record]; !ok || t == dns.TypeNone {
		s.errf(ErrInvalid, "record", "unknown record type %q", d.Record.V)
	}
	o.ValidRcodes = []string{"NOERROR"}
	if d.ValidRcodes.ok() {
		o.ValidRcodes = nil
		for k, rc := range d.ValidRcodes.V {
			up := strings.ToUpper(rc)
			if _, ok := dns.StringToRcode[up]; !ok {
				s.errf(ErrInvalid, fmt.Sprintf("valid_rcodes[%d]", k), "unknown rcode %q (NOERROR, NXDOMAIN, SERVFAIL, REFUSED, ...)", rc)
				continue
			}
			o.ValidRcodes = append(o.ValidRcodes, up)
		}
		if len(d.ValidRcodes.V) == 0 {
			s.errf(ErrInvalid, "valid_rcodes", "empty: no answer could pass (leave it out for NOERROR)")
		}
	}
	if d.AnswerRegex.ok() && d.AnswerRegex.V != "" && s.regex("answer_regex", d.AnswerRegex.V) {
		o.AnswerRegex = d.AnswerRegex.V
	}
	if d.FailIfAnswerMatches.ok() && d.FailIfAnswerMatches.V != "" && s.regex("fail_if_answer_matches", d.FailIfAnswerMatches.V) {
		o.FailIfAnswerMatches = d.FailIfAnswerMatches.V
	}
	o.MinAnswers = s.atLeast("min_answers", d.MinAnswers, 0, 0)
	o.Recursion = d.Recursion.or(true)
	if d.UDPSize.ok() {
		if v := d.UDPSize.V; v != 0 && (v < 512 || v > 65535) {
			s.errf(ErrInvalid, "udp_size", "%d: want 512 to 65535 (or 0 for no EDNS0)", v)
		} else {
			o.UDPSize = uint16(v)
		}
	}
	if o.Transport == "udp" || o.Transport == "tcp" {
		for _, k := range tlsKeysSet(&d.tlsClientSchema) {
			s.errf(ErrConflict, k, "applies only to transports tls, https and quic, not %q", o.Transport)
		}
	}
	o.TLS = s.tlsClient(&d.tlsClientSchema)
	return o
}

// checkDNSServer mirrors dnsprobe's server syntax: host[:port], or an
// https:// URL for DoH. It returns the host.
func checkDNSServer(server, transport string) (string, error) {
	if server == "" {
		return "", fmt.Errorf("server is empty")
	}
	if strings.Contains(server, "://") {
		shown := probe.RedactURL(server)
		if transport != "https" {
			return "", fmt.Errorf("%q: a URL needs transport \"https\"; use host:port", shown)
		}
		u, err := url.Parse(server)
		switch {
		case err != nil:
			return "", fmt.Errorf("%q: %v", shown, probe.RedactParseError(server, err))
		case u.Scheme != "https":
			return "", fmt.Errorf("%q: DoH needs an https:// URL", shown)
		case u.Hostname() == "":
			return "", fmt.Errorf("%q: no host", shown)
		}
		return u.Hostname(), nil
	}
	if host, port, err := net.SplitHostPort(server); err == nil {
		if err := hostPort(server, false); err != nil {
			return "", err
		}
		_ = port
		return host, nil
	}
	// No port: the transport's default one.
	host := strings.TrimSuffix(strings.TrimPrefix(server, "["), "]")
	if _, err := netip.ParseAddr(host); err != nil && (strings.Contains(host, ":") || strings.ContainsAny(host, " /")) {
		return "", fmt.Errorf("%q: want host or host:port", server)
	}
	return host, nil
}

func (sc scope) buildTCP(ts *targetSchema, nt probe.Net) *tcpprobe.Options {
	o := &tcpprobe.Options{Net: nt, Address: sc.address(ts, nt), ReadLimit: defaultReadLimit}
	t := ts.TCP
	if t == nil {
		t = &tcpSchema{}
	}
	s := sc.sub("tcp")
	o.UseTLS = t.TLS.or(false)
	o.Send = t.Send.or("")
	if t.Expect.ok() && t.Expect.V != "" && s.regex("expect", t.Expect.V) {
		o.Expect = t.Expect.V
	}
	o.ReadLimit = s.atLeast("read_limit", t.ReadLimit, 1, defaultReadLimit)
	if !o.UseTLS {
		for _, k := range tlsKeysSet(&t.tlsClientSchema) {
			s.errf(ErrConflict, k, "applies only with tls = true")
		}
	}
	o.TLS = s.tlsClient(&t.tlsClientSchema)
	return o
}

func (sc scope) buildICMP(ts *targetSchema, nt probe.Net, timeout time.Duration) *icmpprobe.Options {
	o := &icmpprobe.Options{Net: nt, Packets: 1, MinReplies: 1, PacketInterval: icmpprobe.DefaultPacketInterval,
		PayloadSize: icmpprobe.DefaultPayloadSize}
	switch {
	case !ts.Address.Set:
		sc.errf(ErrRequired, "", "address (a host name or IP address) is required for an icmp target")
	case ts.Address.ok():
		o.Address = ts.Address.V
		host := strings.TrimSuffix(strings.TrimPrefix(o.Address, "["), "]")
		ip, err := netip.ParseAddr(host)
		switch {
		case host == "":
			sc.errf(ErrInvalid, "address", "%q: want a host name or IP address", o.Address)
		case err != nil && (strings.Contains(host, ":") || strings.ContainsAny(host, " /\t")):
			sc.errf(ErrInvalid, "address", "%q: want a host name or IP address, without a port (ICMP has none)", o.Address)
		case err == nil && nt.SourceIP.IsValid() && ip.Unmap().Is4() != nt.SourceIP.Unmap().Is4():
			sc.errf(ErrImpossible, "address", "%s cannot be pinged from source_ip %s: not the same address family", ip, nt.SourceIP)
		case err == nil:
			sc.familyCheck("address", host, nt)
		}
	}
	c := ts.ICMP
	if c == nil {
		c = &icmpSchema{}
	}
	s := sc.sub("icmp")
	if c.Packets.ok() {
		if v := c.Packets.V; v < 1 || v > icmpprobe.MaxPackets {
			s.errf(ErrInvalid, "packets", "%d: want 1 to %d", v, icmpprobe.MaxPackets)
		} else {
			o.Packets = v
		}
	}
	if c.MinReplies.ok() {
		switch v := c.MinReplies.V; {
		case v < 1:
			s.errf(ErrInvalid, "min_replies", "%d: must be at least 1", v)
		case v > o.Packets:
			s.errf(ErrImpossible, "min_replies", "%d is more than the %d packet(s) sent (packets)", v, o.Packets)
		default:
			o.MinReplies = v
		}
	}
	if d := s.positive("packet_interval", c.PacketInterval); d > 0 {
		o.PacketInterval = d
	}
	if c.PayloadSize.ok() {
		if v := c.PayloadSize.V; v < 1 || v > icmpprobe.MaxPayloadSize {
			s.errf(ErrInvalid, "payload_size", "%d: want 1 to %d bytes", v, icmpprobe.MaxPayloadSize)
		} else {
			o.PayloadSize = v
		}
	}
	o.DontFragment = c.DontFragment.or(false)
	if o.DontFragment && runtime.GOOS != "linux" {
		s.errf(ErrInvalid, "dont_fragment", "supported on Linux only")
	}
	// The last request must leave its reply time before the deadline.
	if span := time.Duration(o.Packets-1) * o.PacketInterval; timeout > 0 && span >= timeout {
		s.errf(ErrImpossible, "packets", "%d packets %v apart take %v to send: not below timeout %v", o.Packets, o.PacketInterval, span, timeout)
	}
	return o
}

func (sc scope) buildGRPC(ts *targetSchema, nt probe.Net) *grpcprobe.Options {
	o := &grpcprobe.Options{Net: nt, Address: sc.address(ts, nt)}
	g := ts.GRPC
	if g == nil {
		g = &grpcSchema{}
	}
	s := sc.sub("grpc")
	o.Service = g.Service.or("")
	if strings.ContainsFunc(o.Service, unicode.IsControl) {
		s.errf(ErrInvalid, "service", "%q: must not contain control characters", o.Service)
	}
	o.UseTLS = g.TLS.or(false)
	if !o.UseTLS {
		for _, k := range tlsKeysSet(&g.tlsClientSchema) {
			s.errf(ErrConflict, k, "applies only with tls = true")
		}
	}
	o.TLS = s.tlsClient(&g.tlsClientSchema)
	return o
}

// interned returns the value in tab equal to v (by content: a hash of it,
// confirmed with reflect.DeepEqual), v itself the first time. What the
// loader interns (label maps, HTTP options) is read-only once built.
func interned[T any](tab *map[uint64][]T, v T) T {
	h := fnv.New64a()
	e := fpEncoder{h: h}
	e.value("", reflect.ValueOf(v))
	key := h.Sum64()
	for _, in := range (*tab)[key] {
		if reflect.DeepEqual(in, v) {
			return in
		}
	}
	if *tab == nil {
		*tab = map[uint64][]T{}
	}
	(*tab)[key] = append((*tab)[key], v)
	return v
}
