package exporter

import (
	"bytes"
	"maps"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vantage-probe/vantage/probe"
)

// Labels renders a target's label set once, at config load: target, type
// and the target's own labels, sorted, escaped. The observation series add
// the agent's region (RegionLabel) when written; the verdict series, the
// fleet's, carry none.
func Labels(target, typ string, own map[string]string) string {
	var b strings.Builder
	b.WriteString(`target="`)
	b.WriteString(escape(target))
	b.WriteString(`",type="`)
	b.WriteString(escape(typ))
	b.WriteByte('"')
	for _, k := range slices.Sorted(maps.Keys(own)) {
		b.WriteByte(',')
		b.WriteString(k)
		b.WriteString(`="`)
		b.WriteString(escape(own[k]))
		b.WriteByte('"')
	}
	return b.String()
}

// RegionLabel renders the agent's region as a label, once per agent.
func RegionLabel(region string) string {
	if region == "" {
		return ""
	}
	return `region="` + escape(region) + `"`
}

func escape(s string) string {
	if !strings.ContainsAny(s, "\\\"\n") {
		return s
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return r.Replace(s)
}

// Obs is one target's observation state on this agent, as the exporter
// writes it.
type Obs struct {
	Labels      string // from Labels (no region: WriteObservations adds it)
	Type        string
	Result      *probe.Result // latest; nil before the first probe
	Success     uint64
	Failure     uint64
	Failing     bool
	Consecutive int
}

// Verdict is one target's verdict as its leader exports it.
type Verdict struct {
	Labels      string // target, type and own labels (no region: the fleet's verdict)
	Up          bool
	Unknown     bool
	Failing     int
	Reporting   int
	Quorum      int
	DownSince   time.Time
	Incidents   uint64
	Flaps       uint64
	Maintenance bool
	// Thresholds the rules compare against, per target.
	Objective float64 // SLO objective
	CertDays  int     // certificate warning days; 0: none (not written)
	// Availability is the time-based availability over the SLO window,
	// from the incident records (what the API and the page show).
	Availability float64
}

func header(b *bytes.Buffer, name, typ string) {
	b.WriteString("# HELP ")
	b.WriteString(name)
	b.WriteByte(' ')
	b.WriteString(helpFor(name))
	b.WriteString("\n# TYPE ")
	b.WriteString(name)
	b.WriteByte(' ')
	b.WriteString(typ)
	b.WriteByte('\n')
}

func sample(b *bytes.Buffer, name, labels, region, extra string, v float64) {
	openSample(b, name, labels, region)
	if extra != "" {
		b.WriteByte(',')
		b.WriteString(extra)
	}
	closeSample(b, v)
}

// openSample writes a sample up to its labels' end, without the closing
// brace: callers may append more labels, each after a comma.
func openSample(b *bytes.Buffer, name, labels, region string) {
	b.WriteString(name)
	b.WriteByte('{')
	b.WriteString(labels)
	if region != "" {
		b.WriteByte(',')
		b.WriteString(region)
	}
}

// closeSample ends a sample that openSample began.
func closeSample(b *bytes.Buffer, v float64) {
	b.WriteString("} ")
	var num [32]byte
	b.Write(appendValue(num[:0], v))
	b.WriteByte('\n')
}

// escapeTo writes s as a label value would be escaped, without building a
// string: certificate subjects and names are the target's, not ours.
func escapeTo(b *bytes.Buffer, s string) {
	for {
		i := strings.IndexAny(s, "\\\"\n")
		if i < 0 {
			b.WriteString(s)
			return
		}
		b.WriteString(s[:i])
		switch s[i] {
		case '\\':
			b.WriteString(`\\`)
		case '"':
			b.WriteString(`\"`)
		default:
			b.WriteString(`\n`)
		}
		s = s[i+1:]
	}
}

// appendValue formats a sample value. Whole numbers (status codes,
// counters, 0/1, Unix seconds) are written as integers, as
// VictoriaMetrics/metrics writes its own: AppendInt costs a fraction of
// AppendFloat, and 1732000000 reads better than 1.732e+09.
// Prometheus parses both the same.
func appendValue(dst []byte, v float64) []byte {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return strconv.AppendInt(dst, int64(v), 10)
	}
	return strconv.AppendFloat(dst, v, 'g', -1, 64)
}

// family writes one metric family's samples, its HELP and TYPE lines
// before the first.
type family struct {
	b         *Buf
	name, typ string
	region    string // RegionLabel of the observations' agent; "" for verdicts
	started   bool
}

func (f *family) sample(labels, extra string, v float64) {
	f.start()
	sample(&f.b.Buffer, f.name, labels, f.region, extra, v)
}

func (f *family) start() {
	if !f.started {
		header(&f.b.Buffer, f.name, f.typ)
		f.started = true
	}
}

// certInfo writes blackbox_exporter's probe_ssl_last_chain_info sample for
// the leaf c: its fingerprint, issuer, subject and DNS names (comma
// separated), each escaped in place.
func (f *family) certInfo(labels string, c *probe.Cert) {
	f.start()
	b := &f.b.Buffer
	openSample(b, f.name, labels, f.region)
	b.WriteString(`,fingerprint_sha256="`)
	escapeTo(b, c.SHA256)
	b.WriteString(`",issuer="`)
	escapeTo(b, c.Issuer)
	b.WriteString(`",subject="`)
	escapeTo(b, c.Subject)
	b.WriteString(`",subjectalternative="`)
	for i, n := range c.DNSNames {
		if i > 0 {
			b.WriteByte(',')
		}
		escapeTo(b, n)
	}
	b.WriteByte('"')
	closeSample(b, 1)
}

func b2f(v bool) float64 {
	if v {
		return 1
	}
	return 0
}

// The phases each kind always writes, so that its series never come and
// go: blackbox_exporter's names where it has them.
var (
	httpPhases = labelled("phase", probe.PhaseResolve, probe.PhaseConnect, probe.PhaseTLS, probe.PhaseProcessing, probe.PhaseTransfer)
	icmpPhases = labelled("phase", probe.PhaseResolve, probe.PhaseSetup, probe.PhaseRTT)
	// blackbox_exporter's gRPC phases are resolve and check, its check
	// spanning what the prober times as connect, tls and check.
	grpcPhases = labelled("phase", probe.PhaseResolve, probe.PhaseConnect, probe.PhaseTLS, probe.PhaseCheck)
)

// servingStatuses are grpc.health.v1's serving statuses, in the enum's
// order: probe_grpc_healthcheck_response has a series for each, as in
// blackbox_exporter, 1 for the status of the last answer.
var servingStatuses = labelled("serving_status", "UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN")

// labelledValue is a label value with its label pair, key="value", made
// once: a scrape writes it for every target (building it per sample was
// 50,000 small allocations a scrape at 10,000 HTTP targets).
type labelledValue struct{ value, pair string }

func labelled(key string, values ...string) []labelledValue {
	out := make([]labelledValue, len(values))
	for i, v := range values {
		out[i] = labelledValue{v, key + `="` + escape(v) + `"`}
	}
	return out
}

// WriteObservations appends the observation families for obs, family by
// family (the text format wants a family's samples together), each series
// with region (RegionLabel of this agent's region). A family's HELP and
// TYPE are written with its first sample, so a family without samples is
// left out; b spills between samples.
func WriteObservations(b *Buf, region string, obs []Obs) {
	if len(obs) == 0 {
		return
	}
	each := func(name, typ string, write func(o *Obs, f *family)) {
		f := family{b: b, name: name, typ: typ, region: region}
		for i := range obs {
			write(&obs[i], &f)
			b.Spill()
		}
	}
	each("probe_success", "gauge", func(o *Obs, f *family) {
		if o.Result != nil {
			f.sample(o.Labels, "", b2f(o.Result.OK))
		}
	})
	each("probe_duration_seconds", "gauge", func(o *Obs, f *family) {
		if o.Result != nil {
			f.sample(o.Labels, "", o.Result.Duration.Seconds())
		}
	})
	// Resolving the target's host name (a DNS target's server), 0 for an
	// IP literal: every blackbox_exporter prober writes it.
	each("probe_dns_lookup_time_seconds", "gauge", func(o *Obs, f *family) {
		if r := o.Result; r != nil {
			f.sample(o.Labels, "", r.Phase(probe.PhaseResolve).Seconds())
		}
	})
	each("probe_ip_protocol", "gauge", func(o *Obs, f *family) {
		if ip, ok := remoteIP(o.Result); ok {
			version := 6.0
			if ip.Is4() {
				version = 4
			}
			f.sample(o.Labels, "", version)
		}
	})
	each("probe_ip_addr_hash", "gauge", func(o *Obs, f *family) {
		if ip, ok := remoteIP(o.Result); ok {
			f.sample(o.Labels, "", ipHash(ip))
		}
	})
	each("probe_failed_due_to_regex", "gauge", func(o *Obs, f *family) {
		if r := o.Result; r != nil && (o.Type == "http" || o.Type == "tcp" || o.Type == "tls") {
			f.sample(o.Labels, "", b2f(r.Reason == probe.ReasonBodyMismatch || r.Reason == probe.ReasonHeaderMismatch || r.Reason == probe.ReasonExpectMismatch))
		}
	})
	each("probe_http_status_code", "gauge", func(o *Obs, f *family) {
		if r := o.Result; r != nil && r.HTTP != nil {
			f.sample(o.Labels, "", float64(r.HTTP.StatusCode))
		}
	})
	each("probe_http_duration_seconds", "gauge", func(o *Obs, f *family) {
		if r := o.Result; r != nil && o.Type == "http" {
			for _, ph := range httpPhases {
				f.sample(o.Labels, ph.pair, r.Phase(ph.value).Seconds())
			}
		}
	})
	each("probe_http_version", "gauge", func(o *Obs, f *family) {
		if r := o.Result; r != nil && r.HTTP != nil {
			f.sample(o.Labels, "", r.HTTP.VersionNumber())
		}
	})
	each("probe_http_content_length", "gauge", func(o *Obs, f *family) {
		if r := o.Result; r != nil && r.HTTP != nil {
			f.sample(o.Labels, "", float64(r.HTTP.DeclaredLength))
		}
	})
	each("probe_http_uncompressed_body_length", "gauge", func(o *Obs, f *family) {
		if r := o.Result; r != nil && r.HTTP != nil {
			f.sample(o.Labels, "", float64(r.HTTP.ContentLength))
		}
	})
	each("probe_http_redirects", "gauge", func(o *Obs, f *family) {
		if r := o.Result; r != nil && r.HTTP != nil {
			f.sample(o.Labels, "", float64(r.HTTP.Redirects))
		}
	})
	each("probe_http_ssl", "gauge", func(o *Obs, f *family) {
		if r := o.Result; r != nil && r.HTTP != nil {
			f.sample(o.Labels, "", b2f(r.TLS != nil))
		}
	})
	each("probe_http_last_modified_timestamp_seconds", "gauge", func(o *Obs, f *family) {
		if r := o.Result; r != nil && r.HTTP != nil && !r.HTTP.LastModified.IsZero() {
			f.sample(o.Labels, "", float64(r.HTTP.LastModified.Unix()))
		}
	})
	each("probe_ssl_earliest_cert_expiry", "gauge", func(o *Obs, f *family) {
		if r := o.Result; r != nil && r.TLS != nil && !r.TLS.EarliestExpiry.IsZero() {
			f.sample(o.Labels, "", float64(r.TLS.EarliestExpiry.Unix()))
		}
	})
	each("probe_ssl_last_chain_expiry_timestamp_seconds", "gauge", func(o *Obs, f *family) {
		if r := o.Result; r != nil && r.TLS != nil && !r.TLS.LastChainExpiry.IsZero() {
			f.sample(o.Labels, "", float64(r.TLS.LastChainExpiry.Unix()))
		}
	})
	each("probe_tls_version_info", "gauge", func(o *Obs, f *family) {
		if r := o.Result; r != nil && r.TLS != nil && r.TLS.Version != "" {
			f.sample(o.Labels, `version="`+escape(r.TLS.Version)+`"`, 1)
		}
	})
	each("probe_ssl_last_chain_info", "gauge", func(o *Obs, f *family) {
		if r := o.Result; r != nil && r.TLS != nil && len(r.TLS.Chain) > 0 {
			f.certInfo(o.Labels, &r.TLS.Chain[0])
		}
	})
	// Only once an answer came: 0 would say NOERROR of a probe that timed
	// out.
	each("probe_dns_rcode", "gauge", func(o *Obs, f *family) {
		if r := o.Result; r != nil && r.DNS != nil && r.DNS.Rcode != "" {
			f.sample(o.Labels, "", float64(r.DNS.RcodeValue))
		}
	})
	each("probe_dns_answer_rrs", "gauge", func(o *Obs, f *family) {
		if r := o.Result; r != nil && r.DNS != nil {
			f.sample(o.Labels, "", float64(r.DNS.AnswerRRs))
		}
	})
	each("probe_dns_authority_rrs", "gauge", func(o *Obs, f *family) {
		if r := o.Result; r != nil && r.DNS != nil {
			f.sample(o.Labels, "", float64(r.DNS.AuthorityRRs))
		}
	})
	each("probe_dns_additional_rrs", "gauge", func(o *Obs, f *family) {
		if r := o.Result; r != nil && r.DNS != nil {
			f.sample(o.Labels, "", float64(r.DNS.AdditionalRRs))
		}
	})
	each("probe_dns_query_succeeded", "gauge", func(o *Obs, f *family) {
		if r := o.Result; r != nil && r.DNS != nil {
			f.sample(o.Labels, "", b2f(r.DNS.Rcode != ""))
		}
	})
	each("probe_dns_serial", "gauge", func(o *Obs, f *family) {
		if r := o.Result; r != nil && r.DNS != nil && r.DNS.SOA {
			f.sample(o.Labels, "", float64(r.DNS.Serial))
		}
	})
	each("probe_dns_duration_seconds", "gauge", func(o *Obs, f *family) {
		if r := o.Result; r != nil && o.Type == "dns" {
			for _, ph := range dnsPhases {
				if d, ok := phase(r, ph.name); ok || !ph.optional {
					f.sample(o.Labels, ph.label, d.Seconds())
				}
			}
		}
	})
	each("probe_tcp_duration_seconds", "gauge", func(o *Obs, f *family) {
		if r := o.Result; r != nil && (o.Type == "tcp" || o.Type == "tls") {
			for _, ph := range r.Phases {
				f.sample(o.Labels, `phase="`+escape(ph.Name)+`"`, ph.Duration.Seconds())
			}
		}
	})
	each("probe_icmp_duration_seconds", "gauge", func(o *Obs, f *family) {
		if r := o.Result; r != nil && o.Type == "icmp" {
			for _, ph := range icmpPhases {
				f.sample(o.Labels, ph.pair, r.Phase(ph.value).Seconds())
			}
		}
	})
	each("probe_icmp_reply_hop_limit", "gauge", func(o *Obs, f *family) {
		if r := o.Result; r != nil && r.ICMP != nil && r.ICMP.ReplyHopLimit >= 0 {
			f.sample(o.Labels, "", float64(r.ICMP.ReplyHopLimit))
		}
	})
	each("vantage_icmp_packets_sent", "gauge", func(o *Obs, f *family) {
		if r := o.Result; r != nil && r.ICMP != nil {
			f.sample(o.Labels, "", float64(r.ICMP.PacketsSent))
		}
	})
	each("vantage_icmp_packets_received", "gauge", func(o *Obs, f *family) {
		if r := o.Result; r != nil && r.ICMP != nil {
			f.sample(o.Labels, "", float64(r.ICMP.PacketsReceived))
		}
	})
	each("probe_grpc_duration_seconds", "gauge", func(o *Obs, f *family) {
		if r := o.Result; r != nil && o.Type == "grpc" {
			for _, ph := range grpcPhases {
				f.sample(o.Labels, ph.pair, r.Phase(ph.value).Seconds())
			}
		}
	})
	each("probe_grpc_healthcheck_response", "gauge", func(o *Obs, f *family) {
		if r := o.Result; r != nil && o.Type == "grpc" {
			current := ""
			if r.GRPC != nil {
				current = r.GRPC.ServingStatus
			}
			for _, st := range servingStatuses {
				f.sample(o.Labels, st.pair, b2f(st.value == current))
			}
		}
	})
	each("probe_grpc_status_code", "gauge", func(o *Obs, f *family) {
		if r := o.Result; r != nil && r.GRPC != nil {
			f.sample(o.Labels, "", float64(r.GRPC.StatusCode))
		}
	})
	each("probe_grpc_ssl", "gauge", func(o *Obs, f *family) {
		if r := o.Result; r != nil && r.GRPC != nil {
			f.sample(o.Labels, "", b2f(r.GRPC.TLS))
		}
	})
	each("vantage_probes_total", "counter", func(o *Obs, f *family) {
		if o.Success+o.Failure > 0 {
			f.sample(o.Labels, `result="success"`, float64(o.Success))
			f.sample(o.Labels, `result="failure"`, float64(o.Failure))
		}
	})
	each("vantage_probe_failing", "gauge", func(o *Obs, f *family) {
		if o.Result != nil {
			f.sample(o.Labels, "", b2f(o.Failing))
		}
	})
	each("vantage_probe_consecutive_failures", "gauge", func(o *Obs, f *family) {
		if o.Result != nil {
			f.sample(o.Labels, "", float64(o.Consecutive))
		}
	})
	each("vantage_probe_last_run_timestamp_seconds", "gauge", func(o *Obs, f *family) {
		if o.Result != nil {
			f.sample(o.Labels, "", float64(o.Result.At.UnixMilli())/1000)
		}
	})
}

// WriteVerdicts appends the verdict families for the n targets this agent
// leads; at(i, v) fills v with the i-th. An accessor, not a slice: the
// caller's verdicts need no second copy per scrape (1 MB at 10k targets).
func WriteVerdicts(b *Buf, n int, at func(i int, v *Verdict)) {
	if n == 0 {
		return
	}
	var x Verdict
	fam := func(name, typ string, v func(x *Verdict) float64) {
		header(&b.Buffer, name, typ)
		for i := range n {
			at(i, &x)
			sample(&b.Buffer, name, x.Labels, "", "", v(&x))
			b.Spill()
		}
	}
	fam("vantage_target_up", "gauge", func(x *Verdict) float64 { return b2f(x.Up) })
	fam("vantage_target_verdict_unknown", "gauge", func(x *Verdict) float64 { return b2f(x.Unknown) })
	fam("vantage_target_regions_failing", "gauge", func(x *Verdict) float64 { return float64(x.Failing) })
	fam("vantage_target_regions_reporting", "gauge", func(x *Verdict) float64 { return float64(x.Reporting) })
	fam("vantage_target_quorum", "gauge", func(x *Verdict) float64 { return float64(x.Quorum) })
	fam("vantage_target_down_since_timestamp_seconds", "gauge", func(x *Verdict) float64 {
		if x.DownSince.IsZero() {
			return 0
		}
		return float64(x.DownSince.UnixMilli()) / 1000
	})
	fam("vantage_incidents_total", "counter", func(x *Verdict) float64 { return float64(x.Incidents) })
	fam("vantage_target_flaps_total", "counter", func(x *Verdict) float64 { return float64(x.Flaps) })
	fam("vantage_target_maintenance", "gauge", func(x *Verdict) float64 { return b2f(x.Maintenance) })
	fam("vantage_target_slo_objective", "gauge", func(x *Verdict) float64 { return x.Objective })
	fam("vantage_target_availability", "gauge", func(x *Verdict) float64 { return x.Availability })
	// Only targets shown a certificate: a family whose samples may be
	// missing writes its header with its first sample.
	f := family{b: b, name: "vantage_target_cert_min_days_left", typ: "gauge"}
	for i := range n {
		at(i, &x)
		if x.CertDays > 0 {
			f.sample(x.Labels, "", float64(x.CertDays))
		}
		b.Spill()
	}
}

// dnsPhases are the phases probe_dns_duration_seconds always writes, under
// blackbox_exporter's names (its request is the query's round trip), so
// that its DNS dashboards read Vantage's; tls only where there is one
// (DoT, DoH, DoQ).
var dnsPhases = [...]struct {
	name, label string
	optional    bool
}{
	{probe.PhaseResolve, `phase="resolve"`, false},
	{probe.PhaseConnect, `phase="connect"`, false},
	{probe.PhaseTLS, `phase="tls"`, true},
	{probe.PhaseRoundTrip, `phase="request"`, false},
}

// phase is r's phase called name, and whether r has it.
func phase(r *probe.Result, name string) (time.Duration, bool) {
	for _, p := range r.Phases {
		if p.Name == name {
			return p.Duration, true
		}
	}
	return 0, false
}

// remoteIP is the address r connected to, from its RemoteAddr (ip:port, or
// a bare IP for ICMP); false before one was chosen.
func remoteIP(r *probe.Result) (netip.Addr, bool) {
	if r == nil || r.RemoteAddr == "" {
		return netip.Addr{}, false
	}
	s := r.RemoteAddr
	// Parsed without a failed attempt: a failed parse allocates its error.
	if i := strings.IndexByte(s, ':'); s[0] == '[' || (i >= 0 && i == strings.LastIndexByte(s, ':')) {
		ap, err := netip.ParseAddrPort(s)
		return ap.Addr().Unmap(), err == nil
	}
	a, err := netip.ParseAddr(s)
	return a.Unmap(), err == nil
}

// ipHash is blackbox_exporter's probe_ip_addr_hash: FNV-1a (32 bits) over
// the address's 4 (IPv4) or 16 bytes, so that both exporters give one
// address the same value.
func ipHash(ip netip.Addr) float64 {
	h := uint32(2166136261)
	add := func(b []byte) {
		for _, c := range b {
			h ^= uint32(c)
			h *= 16777619
		}
	}
	if ip.Is4() {
		b := ip.As4()
		add(b[:])
	} else {
		b := ip.As16()
		add(b[:])
	}
	return float64(h)
}
