package exporter

import (
	"bytes"
	"strconv"
	"strings"
	"time"

	"github.com/vantage-probe/vantage/probe"
)

// Labels renders a target's label set once, at config load: target, type,
// region and the target's own labels, sorted, escaped. Scrapes reuse it.
func Labels(target, typ, region string, own map[string]string) string {
	var b strings.Builder
	b.WriteString(`target="`)
	b.WriteString(escape(target))
	b.WriteString(`",type="`)
	b.WriteString(escape(typ))
	b.WriteByte('"')
	if region != "" {
		b.WriteString(`,region="`)
		b.WriteString(escape(region))
		b.WriteByte('"')
	}
	keys := make([]string, 0, len(own))
	for k := range own {
		keys = append(keys, k)
	}
	sortStrings(keys)
	for _, k := range keys {
		b.WriteByte(',')
		b.WriteString(k)
		b.WriteString(`="`)
		b.WriteString(escape(own[k]))
		b.WriteByte('"')
	}
	return b.String()
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
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
	Labels      string // from Labels
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

func sample(b *bytes.Buffer, name, labels, extra string, v float64) {
	b.WriteString(name)
	b.WriteByte('{')
	b.WriteString(labels)
	if extra != "" {
		b.WriteByte(',')
		b.WriteString(extra)
	}
	b.WriteString("} ")
	var num [32]byte
	b.Write(strconv.AppendFloat(num[:0], v, 'g', -1, 64))
	b.WriteByte('\n')
}

func b2f(v bool) float64 {
	if v {
		return 1
	}
	return 0
}

var httpPhases = []string{probe.PhaseResolve, probe.PhaseConnect, probe.PhaseTLS, probe.PhaseProcessing, probe.PhaseTransfer}

// WriteObservations appends the observation families for obs, family by
// family (the text format wants a family's samples together).
func WriteObservations(b *bytes.Buffer, obs []Obs) {
	if len(obs) == 0 {
		return
	}
	each := func(name, typ string, f func(o *Obs) bool) {
		start := b.Len()
		header(b, name, typ)
		afterHeader := b.Len()
		for i := range obs {
			f(&obs[i])
		}
		if b.Len() == afterHeader {
			b.Truncate(start) // no samples: no family
		}
	}
	each("probe_success", "gauge", func(o *Obs) bool {
		if o.Result != nil {
			sample(b, "probe_success", o.Labels, "", b2f(o.Result.OK))
		}
		return true
	})
	each("probe_duration_seconds", "gauge", func(o *Obs) bool {
		if o.Result != nil {
			sample(b, "probe_duration_seconds", o.Labels, "", o.Result.Duration.Seconds())
		}
		return true
	})
	each("probe_http_status_code", "gauge", func(o *Obs) bool {
		if r := o.Result; r != nil && r.HTTP != nil {
			sample(b, "probe_http_status_code", o.Labels, "", float64(r.HTTP.StatusCode))
		}
		return true
	})
	each("probe_http_duration_seconds", "gauge", func(o *Obs) bool {
		if r := o.Result; r != nil && o.Type == "http" {
			for _, ph := range httpPhases {
				sample(b, "probe_http_duration_seconds", o.Labels, `phase="`+ph+`"`, r.Phase(ph).Seconds())
			}
		}
		return true
	})
	each("probe_http_version", "gauge", func(o *Obs) bool {
		if r := o.Result; r != nil && r.HTTP != nil {
			sample(b, "probe_http_version", o.Labels, "", r.HTTP.VersionNumber())
		}
		return true
	})
	each("probe_http_content_length", "gauge", func(o *Obs) bool {
		if r := o.Result; r != nil && r.HTTP != nil {
			sample(b, "probe_http_content_length", o.Labels, "", float64(r.HTTP.ContentLength))
		}
		return true
	})
	each("probe_ssl_earliest_cert_expiry", "gauge", func(o *Obs) bool {
		if r := o.Result; r != nil && r.TLS != nil && !r.TLS.EarliestExpiry.IsZero() {
			sample(b, "probe_ssl_earliest_cert_expiry", o.Labels, "", float64(r.TLS.EarliestExpiry.Unix()))
		}
		return true
	})
	each("probe_ssl_last_chain_expiry_timestamp_seconds", "gauge", func(o *Obs) bool {
		if r := o.Result; r != nil && r.TLS != nil && !r.TLS.LastChainExpiry.IsZero() {
			sample(b, "probe_ssl_last_chain_expiry_timestamp_seconds", o.Labels, "", float64(r.TLS.LastChainExpiry.Unix()))
		}
		return true
	})
	each("probe_tls_version_info", "gauge", func(o *Obs) bool {
		if r := o.Result; r != nil && r.TLS != nil && r.TLS.Version != "" {
			sample(b, "probe_tls_version_info", o.Labels, `version="`+escape(r.TLS.Version)+`"`, 1)
		}
		return true
	})
	each("probe_dns_rcode", "gauge", func(o *Obs) bool {
		if r := o.Result; r != nil && r.DNS != nil {
			sample(b, "probe_dns_rcode", o.Labels, "", float64(r.DNS.RcodeValue))
		}
		return true
	})
	each("probe_dns_answer_rrs", "gauge", func(o *Obs) bool {
		if r := o.Result; r != nil && r.DNS != nil {
			sample(b, "probe_dns_answer_rrs", o.Labels, "", float64(r.DNS.AnswerRRs))
		}
		return true
	})
	each("probe_dns_authority_rrs", "gauge", func(o *Obs) bool {
		if r := o.Result; r != nil && r.DNS != nil {
			sample(b, "probe_dns_authority_rrs", o.Labels, "", float64(r.DNS.AuthorityRRs))
		}
		return true
	})
	each("probe_dns_additional_rrs", "gauge", func(o *Obs) bool {
		if r := o.Result; r != nil && r.DNS != nil {
			sample(b, "probe_dns_additional_rrs", o.Labels, "", float64(r.DNS.AdditionalRRs))
		}
		return true
	})
	each("probe_dns_duration_seconds", "gauge", func(o *Obs) bool {
		if r := o.Result; r != nil && o.Type == "dns" {
			for _, ph := range r.Phases {
				sample(b, "probe_dns_duration_seconds", o.Labels, `phase="`+escape(ph.Name)+`"`, ph.Duration.Seconds())
			}
		}
		return true
	})
	each("probe_tcp_duration_seconds", "gauge", func(o *Obs) bool {
		if r := o.Result; r != nil && (o.Type == "tcp" || o.Type == "tls") {
			for _, ph := range r.Phases {
				sample(b, "probe_tcp_duration_seconds", o.Labels, `phase="`+escape(ph.Name)+`"`, ph.Duration.Seconds())
			}
		}
		return true
	})
	each("vantage_probes_total", "counter", func(o *Obs) bool {
		if o.Success+o.Failure > 0 {
			sample(b, "vantage_probes_total", o.Labels, `result="success"`, float64(o.Success))
			sample(b, "vantage_probes_total", o.Labels, `result="failure"`, float64(o.Failure))
		}
		return true
	})
	each("vantage_probe_failing", "gauge", func(o *Obs) bool {
		if o.Result != nil {
			sample(b, "vantage_probe_failing", o.Labels, "", b2f(o.Failing))
		}
		return true
	})
	each("vantage_probe_consecutive_failures", "gauge", func(o *Obs) bool {
		if o.Result != nil {
			sample(b, "vantage_probe_consecutive_failures", o.Labels, "", float64(o.Consecutive))
		}
		return true
	})
	each("vantage_probe_last_run_timestamp_seconds", "gauge", func(o *Obs) bool {
		if o.Result != nil {
			sample(b, "vantage_probe_last_run_timestamp_seconds", o.Labels, "", float64(o.Result.At.UnixMilli())/1000)
		}
		return true
	})
}

// WriteVerdicts appends the verdict families for the targets this agent leads.
func WriteVerdicts(b *bytes.Buffer, vs []Verdict) {
	if len(vs) == 0 {
		return
	}
	fam := func(name, typ string, v func(x *Verdict) float64) {
		header(b, name, typ)
		for i := range vs {
			sample(b, name, vs[i].Labels, "", v(&vs[i]))
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
}
