package exporter

import (
	"bytes"
	"maps"
	"math"
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
	b.WriteString(name)
	b.WriteByte('{')
	b.WriteString(labels)
	if region != "" {
		b.WriteByte(',')
		b.WriteString(region)
	}
	if extra != "" {
		b.WriteByte(',')
		b.WriteString(extra)
	}
	b.WriteString("} ")
	var num [32]byte
	b.Write(appendValue(num[:0], v))
	b.WriteByte('\n')
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
	if !f.started {
		header(&f.b.Buffer, f.name, f.typ)
		f.started = true
	}
	sample(&f.b.Buffer, f.name, labels, f.region, extra, v)
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
	httpPhases = []string{probe.PhaseResolve, probe.PhaseConnect, probe.PhaseTLS, probe.PhaseProcessing, probe.PhaseTransfer}
	icmpPhases = []string{probe.PhaseResolve, probe.PhaseSetup, probe.PhaseRTT}
	// blackbox_exporter's gRPC phases are resolve and check, its check
	// spanning what the prober times as connect, tls and check.
	grpcPhases = []string{probe.PhaseResolve, probe.PhaseConnect, probe.PhaseTLS, probe.PhaseCheck}
)

// servingStatuses are grpc.health.v1's serving statuses, in the enum's
// order: probe_grpc_healthcheck_response has a series for each, as in
// blackbox_exporter, 1 for the status of the last answer.
var servingStatuses = []string{"UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"}

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
	each("probe_http_status_code", "gauge", func(o *Obs, f *family) {
		if r := o.Result; r != nil && r.HTTP != nil {
			f.sample(o.Labels, "", float64(r.HTTP.StatusCode))
		}
	})
	each("probe_http_duration_seconds", "gauge", func(o *Obs, f *family) {
		if r := o.Result; r != nil && o.Type == "http" {
			for _, ph := range httpPhases {
				f.sample(o.Labels, `phase="`+ph+`"`, r.Phase(ph).Seconds())
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
			f.sample(o.Labels, "", float64(r.HTTP.ContentLength))
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
	each("probe_dns_rcode", "gauge", func(o *Obs, f *family) {
		if r := o.Result; r != nil && r.DNS != nil {
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
	each("probe_dns_duration_seconds", "gauge", func(o *Obs, f *family) {
		if r := o.Result; r != nil && o.Type == "dns" {
			for _, ph := range r.Phases {
				f.sample(o.Labels, `phase="`+escape(ph.Name)+`"`, ph.Duration.Seconds())
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
				f.sample(o.Labels, `phase="`+ph+`"`, r.Phase(ph).Seconds())
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
				f.sample(o.Labels, `phase="`+ph+`"`, r.Phase(ph).Seconds())
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
				f.sample(o.Labels, `serving_status="`+st+`"`, b2f(st == current))
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
