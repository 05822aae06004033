// Package rules generates the Prometheus alerting and recording rules for a
// Vantage configuration (`vantage rules`): a target-down alert on the quorum
// verdict, multi-window multi-burn-rate SLO alerts on vantage_probes_total,
// certificate expiry, and alerts on the fleet itself (agents, regions,
// isolation, config reloads). docs/alerts.md is the runbook each alert's
// runbook_url points at.
//
// Target alerts are generated one rule per target rather than one rule for
// all: each needs values only the config knows (its SLO objective, its
// min_days_left, its labels for routing even when no series carries them,
// its runbook), and a target's alert must not depend on which labels the
// agent that happens to lead it exported.
package rules

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vantage-probe/vantage/agent/config"
)

// DefaultRunbookBase is where runbook_url points when a target has no
// `runbook` label: docs/alerts.md in the repository; the lowercased alert
// name is its heading's anchor.
const DefaultRunbookBase = "https://github.com/vantage-probe/vantage/blob/main/docs/alerts.md#"

// DefaultJob matches the usual scrape job names: "vantage", or one job per
// region such as "vantage-eu-west".
const DefaultJob = "vantage.*"

// DefaultCertDays is how many days before expiry the certificate of a target
// that speaks TLS but has no min_days_left (https URLs, TCP with tls, DNS over
// TLS, HTTPS or QUIC) raises VantageCertExpiringSoon: two weeks leaves time to
// renew by hand when automation fails.
const DefaultCertDays = 14

// Options tune the generated rules.
type Options struct {
	// RunbookBase is prefixed to the lowercased alert name to form
	// runbook_url when a target has no `runbook` label, and for the fleet
	// alerts. Default DefaultRunbookBase.
	RunbookBase string
	// Job is a regular expression (RE2, anchored by Prometheus) on the `job`
	// label of the Vantage agents' scrape jobs. Every selector carries it,
	// so probe_* series of a blackbox_exporter in the same Prometheus are
	// never mistaken for ours. Default DefaultJob.
	Job string
	// CertDays: see DefaultCertDays (0 = default, negative = no certificate
	// alert for targets without min_days_left).
	CertDays int
}

// Alert names, also the headings of docs/alerts.md.
const (
	alertTargetDown     = "VantageTargetDown"
	alertVerdictUnknown = "VantageVerdictUnknown"
	alertFastBurn       = "VantageErrorBudgetFastBurn"
	alertSlowBurn       = "VantageErrorBudgetSlowBurn"
	alertCert           = "VantageCertExpiringSoon"
	alertAgentMissing   = "VantageAgentMissing"
	alertRegionMissing  = "VantageRegionMissing"
	alertRegionIsolated = "VantageRegionIsolated"
	alertConfigReload   = "VantageConfigReloadFailed"
)

// Severities. Outages page; problems that leave days to act open a ticket.
const (
	sevPage   = "page"
	sevTicket = "ticket"
)

// Defaults of the [slo] table, for a Config built without the loader.
const (
	defaultObjective = 0.999
	defaultWindow    = 28 * 24 * time.Hour
)

// burn is one window pair of the SRE workbook's multi-window multi-burn-rate
// alert (chapter 5, "Alerting on SLOs"): the long window makes the
// alert significant, the short one makes it resolve soon after the burning
// stops.
type burn struct {
	long, short time.Duration
	factor      float64
}

var (
	fastBurns = []burn{{time.Hour, 5 * time.Minute, 14.4}, {6 * time.Hour, 30 * time.Minute, 6}}
	slowBurns = []burn{{24 * time.Hour, 2 * time.Hour, 3}, {72 * time.Hour, 6 * time.Hour, 1}}
)

// errorRatioWindows are the windows the burn alerts read, all recorded.
var errorRatioWindows = []time.Duration{
	5 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour, 6 * time.Hour, 24 * time.Hour, 72 * time.Hour,
}

// Recorded series.
const (
	recFailures = "vantage:probe_failures:rate5m"
	recProbes   = "vantage:probes:rate5m"
	recBudget   = "vantage:slo_error_budget_remaining:ratio"
)

func recErrorRatio(w time.Duration) string { return "vantage:probe_error_ratio:rate" + promDuration(w) }

func recAvailability(w time.Duration) string {
	return "vantage:slo_availability:ratio_rate" + promDuration(w)
}

var labelNameRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// Own labels never copied onto an alert: runbook becomes runbook_url;
// severity is chosen per alert; the others are set by the rule itself.
var reservedLabels = map[string]bool{
	"runbook": true, "severity": true, "alertname": true, "target": true, "type": true, "region": true,
}

type gen struct {
	opts   Options
	job    string // the job matcher, job=~"..."
	window time.Duration
	defObj float64
}

// Generate returns a Prometheus rule file (YAML) for cfg's targets. It
// reports every problem it finds (an objective outside (0, 1), an invalid
// label name, a bad Job regex) at once.
func Generate(cfg *config.Config, opts Options) ([]byte, error) {
	if cfg == nil {
		return nil, errors.New("rules: nil config")
	}
	if opts.RunbookBase == "" {
		opts.RunbookBase = DefaultRunbookBase
	}
	if opts.Job == "" {
		opts.Job = DefaultJob
	}
	if opts.CertDays == 0 {
		opts.CertDays = DefaultCertDays
	}
	var errs []error
	if _, err := regexp.Compile("^(?:" + opts.Job + ")$"); err != nil {
		errs = append(errs, fmt.Errorf("rules: job regex %q: %w", opts.Job, err))
	}
	if strings.Contains(opts.Job, "`") {
		// Annotation templates carry the selector in a raw string.
		errs = append(errs, fmt.Errorf("rules: job regex %q: a backquote is not supported", opts.Job))
	}
	g := &gen{opts: opts, job: "job=~" + strconv.Quote(opts.Job), window: cfg.SLO.Window, defObj: cfg.SLO.Objective}
	if g.window <= 0 {
		g.window = defaultWindow
	}
	if g.defObj == 0 {
		g.defObj = defaultObjective
	}
	if !validObjective(g.defObj) {
		errs = append(errs, fmt.Errorf("rules: slo.objective %v: must be between 0 and 1, exclusive", g.defObj))
	}
	for _, t := range cfg.Targets {
		if o := t.SLOObjective; o != 0 && !validObjective(o) {
			errs = append(errs, fmt.Errorf("rules: target %q: slo objective %v: must be between 0 and 1, exclusive", t.Name, o))
		}
		for _, k := range sortedKeys(t.Labels) {
			if !labelNameRE.MatchString(k) || strings.HasPrefix(k, "__") {
				errs = append(errs, fmt.Errorf("rules: target %q: label name %q: not a valid Prometheus label name", t.Name, k))
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	var b bytes.Buffer
	writeFile(&b, []string{
		"Prometheus rules for Vantage, generated by `vantage rules` from the agents' config.",
		"Regenerate after changing targets, their labels, SLO objectives or min_days_left.",
		"Runbooks: " + opts.RunbookBase + " (see docs/alerts.md).",
	}, []group{g.targetGroup(cfg), g.sloGroup(cfg), g.certGroup(cfg), g.fleetGroup()})
	return b.Bytes(), nil
}

// validObjective: an objective of 1 leaves no error budget to divide by
// (and NaN fails both comparisons).
func validObjective(o float64) bool { return o > 0 && o < 1 }

// sel is a selector of metric with the job matcher and more matchers.
func (g *gen) sel(metric string, matchers ...string) string {
	return metric + "{" + strings.Join(append([]string{g.job}, matchers...), ",") + "}"
}

func targetMatcher(name string) string { return "target=" + strconv.Quote(name) }

// notInMaintenance ends every target alert: a target in a maintenance window
// keeps being probed, but nobody should be woken for it.
func (g *gen) notInMaintenance(name string) string {
	return "unless on(target) (max by(target) (" + g.sel("vantage_target_maintenance", targetMatcher(name)) + ") == 1)"
}

// tq is a template snippet that queries Prometheus for one value about the
// alert's target while the annotation is rendered: queryFmt has a %q where
// the target name goes.
func tq(queryFmt, pipe, fallback string) string {
	return "{{ with printf `" + queryFmt + "` $labels.target | query }}{{ . | first | value" + pipe +
		" }}{{ else }}" + fallback + "{{ end }}"
}

// tqSel is tq for agg (metric{job, target}).
func (g *gen) tqSel(agg, metric, pipe, fallback string) string {
	// The job regex lands in a printf format: escape its verbs.
	sel := strings.ReplaceAll(g.job, "%", "%%")
	return tq(agg+" ("+metric+"{"+sel+",target=%q})", pipe, fallback)
}

// tmplText makes literal text from the config safe in a label or annotation,
// both of which Prometheus expands as Go templates: text that contains an
// action delimiter becomes a template string constant.
func tmplText(s string) string {
	if !strings.Contains(s, "{{") && !strings.Contains(s, "}}") {
		return s
	}
	return "{{ " + strconv.Quote(s) + " }}"
}

// targetLabels are the labels of a target's alerts: its own labels (for
// routing by team and the like), its type, and severity: the target's own
// `severity` label for alerts that mean users are hurting now (down, fast
// burn), def otherwise. Problems with days to act (slow burn, certificate,
// unknown verdict) stay tickets even on a paging target: nobody should be
// woken for a certificate that expires in two weeks.
func targetLabels(t *config.Target, def string, ownSeverity bool) []kv {
	sev := def
	if s := t.Labels["severity"]; ownSeverity && s != "" {
		sev = s
	}
	out := []kv{{"severity", tmplText(sev)}}
	for _, k := range sortedKeys(t.Labels) {
		if !reservedLabels[k] {
			out = append(out, kv{k, tmplText(t.Labels[k])})
		}
	}
	out = append(out, kv{"type", tmplText(t.Type)})
	slices.SortFunc(out, func(a, b kv) int { return strings.Compare(a.k, b.k) })
	return out
}

func (g *gen) runbook(t *config.Target, alert string) string {
	if t != nil && t.Labels["runbook"] != "" {
		return tmplText(t.Labels["runbook"])
	}
	return tmplText(g.opts.RunbookBase + strings.ToLower(alert))
}

// describe names a target for a description: its type and endpoint.
func describe(t *config.Target) string {
	s := tmplText(t.Type) + " target {{ $labels.target }}"
	if e := t.Endpoint(); e != "" {
		s += " (" + tmplText(e) + ")"
	}
	return s
}

func (g *gen) targetGroup(cfg *config.Config) group {
	gr := group{name: "vantage.targets", comment: []string{
		"The fleet's verdict on each target, exported by the target's leader agent. Leadership",
		"moves between agents (and scrape jobs), so series are aggregated by target: min for up,",
		"so that during a hand-over one leader still saying up cannot hide the other saying down.",
		"VantageTargetDown has no `for`: the verdict is already debounced (consecutive failures",
		"per region, then min_regions regions agreeing), so waiting longer only delays the page.",
	}}
	for _, t := range cfg.Targets {
		tm := targetMatcher(t.Name)
		failing := g.tqSel("max by(target)", "vantage_target_regions_failing", "", "?")
		reporting := g.tqSel("max by(target)", "vantage_target_regions_reporting", "", "?")
		quorum := g.tqSel("max by(target)", "vantage_target_quorum", "", "?")
		since := g.tqSel("max by(target)", "vantage_target_down_since_timestamp_seconds", " | humanizeTimestamp", "unknown")
		gr.rules = append(gr.rules, rule{
			alert: alertTargetDown,
			expr: []string{
				"min by(target) (" + g.sel("vantage_target_up", tm) + ") == 0",
				g.notInMaintenance(t.Name),
			},
			labels: targetLabels(t, sevPage, true),
			annotations: []kv{
				{"summary", "{{ $labels.target }} is down: failing in " + failing + " of " + reporting + " regions"},
				{"description", "Vantage's quorum calls the " + describe(t) + " down: " + failing + " of " + reporting +
					" reporting regions see it fail and " + quorum + " must agree. Down since " + since +
					". Each region's latest result and reason: the status page (/) or /api/v1/targets of any agent."},
				{"runbook_url", g.runbook(t, alertTargetDown)},
			},
		})
	}
	for _, t := range cfg.Targets {
		tm := targetMatcher(t.Name)
		reporting := g.tqSel("max by(target)", "vantage_target_regions_reporting", "", "?")
		quorum := g.tqSel("max by(target)", "vantage_target_quorum", "", "?")
		gr.rules = append(gr.rules, rule{
			alert: alertVerdictUnknown,
			expr: []string{
				"max by(target) (" + g.sel("vantage_target_verdict_unknown", tm) + ") == 1",
				g.notInMaintenance(t.Name),
			},
			forDur: 5 * time.Minute,
			labels: targetLabels(t, sevTicket, false),
			annotations: []kv{
				{"summary", "{{ $labels.target }}: too few regions report to tell whether it is up"},
				{"description", "Too few regions have fresh results for the " + describe(t) + " to decide: " + reporting +
					", where " + quorum + " are needed, so an outage would go unnoticed. Agents or whole regions are" +
					" probably missing: see VantageAgentMissing and VantageRegionMissing."},
				{"runbook_url", g.runbook(t, alertVerdictUnknown)},
			},
		})
	}
	return gr
}

func (g *gen) objective(t *config.Target) float64 {
	if t.SLOObjective != 0 {
		return t.SLOObjective
	}
	return g.defObj
}

func fmtFloat(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// fmtPercent renders 0.999 as "99.9%", without float noise.
func fmtPercent(f float64) string { return strconv.FormatFloat(f*100, 'f', -1, 32) + "%" }

func (g *gen) sloGroup(cfg *config.Config) group {
	w := promDuration(g.window)
	gr := group{name: "vantage.slo", comment: []string{
		"SLI: the share of probes that failed, over every region that probes a target. Failures",
		"seen by an agent that marked its region isolated, and a target's probes during maintenance,",
		"are left out, as the verdict leaves them out. The longer windows are built from the",
		"recorded 5m rates (ratios of sums, so each window weighs every probe once), which is",
		"cheap, but also means a window covers at most the time since these rules were loaded.",
		"Burn alerts: the SRE workbook's multi-window, multi-burn-rate alerts (fast 14.4x over 1h",
		"and 5m or 6x over 6h and 30m; slow 3x over 1d and 2h or 1x over 3d and 6h).",
	}}
	notIsolated := "unless on(instance, job) (" + g.sel("vantage_region_isolated") + " == 1)"
	notMaint := "unless on(target) (max by(target) (" + g.sel("vantage_target_maintenance") + ") == 1)"
	gr.rules = append(gr.rules,
		rule{record: recFailures, expr: []string{
			"sum by(target) (rate(" + g.sel("vantage_probes_total", `result="failure"`) + "[5m]) " + notIsolated + ")",
			notMaint,
		}},
		rule{record: recProbes, expr: []string{
			"sum by(target) (rate(" + g.sel("vantage_probes_total") + "[5m]) " + notIsolated + ")",
			notMaint,
		}},
	)
	for _, win := range errorRatioWindows {
		r := rule{record: recErrorRatio(win)}
		if win == 5*time.Minute {
			r.expr = []string{recFailures + " / " + recProbes}
		} else {
			d := promDuration(win)
			r.expr = []string{"sum_over_time(" + recFailures + "[" + d + "]) / sum_over_time(" + recProbes + "[" + d + "])"}
		}
		gr.rules = append(gr.rules, r)
	}
	gr.rules = append(gr.rules, rule{record: recAvailability(g.window), expr: []string{
		"1 - (sum_over_time(" + recFailures + "[" + w + "]) / sum_over_time(" + recProbes + "[" + w + "]))",
	}})

	// Budget remaining needs each target's objective: one rule per distinct
	// objective, its targets in one regex.
	byObj := map[float64][]string{}
	var objs []float64
	for _, t := range cfg.Targets {
		o := g.objective(t)
		if byObj[o] == nil {
			objs = append(objs, o)
		}
		byObj[o] = append(byObj[o], t.Name)
	}
	slices.Sort(objs)
	for _, o := range objs {
		gr.rules = append(gr.rules, rule{
			record: recBudget,
			expr: []string{"1 - (1 - " + recAvailability(g.window) + "{" + targetsMatcher(byObj[o]) + "})",
				"/ (1 - " + fmtFloat(o) + ")"},
			labels: []kv{{"slo_objective", fmtFloat(o)}},
		})
	}

	for _, t := range cfg.Targets {
		gr.rules = append(gr.rules, g.burnAlert(t, true))
	}
	for _, t := range cfg.Targets {
		gr.rules = append(gr.rules, g.burnAlert(t, false))
	}
	return gr
}

// targetsMatcher matches exactly the named targets.
func targetsMatcher(names []string) string {
	if len(names) == 1 {
		return targetMatcher(names[0])
	}
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = regexp.QuoteMeta(n)
	}
	return "target=~" + strconv.Quote(strings.Join(q, "|"))
}

// burnAlert is one target's fast (paging) or slow (ticket) burn alert.
func (g *gen) burnAlert(t *config.Target, fast bool) rule {
	alert, burns, sev, speed := alertSlowBurn, slowBurns, sevTicket, "slowly"
	if fast {
		alert, burns, sev, speed = alertFastBurn, fastBurns, sevPage, "fast"
	}
	o := g.objective(t)
	tm := "{" + targetMatcher(t.Name) + "}"
	var expr []string
	for i, b := range burns {
		thr := " > (" + fmtFloat(b.factor) + " * (1 - " + fmtFloat(o) + "))"
		open := "or ("
		if i == 0 {
			open = "(("
		}
		expr = append(expr, open+recErrorRatio(b.long)+tm+thr, "and "+recErrorRatio(b.short)+tm+thr+")")
	}
	expr[len(expr)-1] += ")"
	expr = append(expr, g.notInMaintenance(t.Name))

	var pairs []string
	for _, b := range burns {
		pairs = append(pairs, fmtFloat(b.factor)+"x over "+promDuration(b.long))
	}
	slowest := burns[len(burns)-1]
	lasts := "the " + promDuration(g.window) + " error budget lasts under " + humanDuration(time.Duration(float64(g.window)/slowest.factor)) + " at that rate"
	if slowest.factor <= 1 {
		lasts = "the " + promDuration(g.window) + " error budget runs out before the window ends at that rate"
	}
	budget := tq(recBudget+"{target=%q}", " | humanizePercentage", "unknown")
	return rule{
		alert: alert,
		expr:  expr,
		// No `for`: the short window already keeps a brief blip from firing
		// it and makes it resolve soon after the burning stops.
		labels: targetLabels(t, sev, fast),
		annotations: []kv{
			{"summary", "{{ $labels.target }} is burning its error budget " + speed},
			{"description", "{{ $value | humanizePercentage }} of the probes of the " + describe(t) + " failed over the last " +
				promDuration(burns[0].long) + " or " + promDuration(slowest.long) + ", against the " + fmtPercent(1-o) +
				" its " + fmtPercent(o) + " objective allows (" + strings.Join(pairs, " or ") + "): " + lasts +
				". Error budget left: " + budget + "."},
			{"runbook_url", g.runbook(t, alert)},
		},
	}
}

// humanDuration renders d as days, hours and minutes ("4d 16h").
func humanDuration(d time.Duration) string {
	d = d.Round(time.Minute)
	var parts []string
	if n := d / (24 * time.Hour); n > 0 {
		parts = append(parts, strconv.Itoa(int(n))+"d")
		d -= n * 24 * time.Hour
	}
	if n := d / time.Hour; n > 0 {
		parts = append(parts, strconv.Itoa(int(n))+"h")
		d -= n * time.Hour
	}
	if n := d / time.Minute; n > 0 || len(parts) == 0 {
		parts = append(parts, strconv.Itoa(int(n))+"m")
	}
	return strings.Join(parts, " ")
}

// certDays is the expiry threshold of t in days, 0 for none: a TLS target's
// min_days_left (0 there means the user wants validity checked only), or
// CertDays for other targets that are shown a certificate.
func (g *gen) certDays(t *config.Target) int {
	if t.TLS != nil {
		return max(t.TLS.MinDaysLeft, 0)
	}
	if speaksTLS(t) {
		return max(g.opts.CertDays, 0)
	}
	return 0
}

func speaksTLS(t *config.Target) bool {
	switch {
	case t.HTTP() != nil:
		u := t.HTTP().URL
		return len(u) >= 8 && strings.EqualFold(u[:8], "https://")
	case t.TCP != nil:
		return t.TCP.UseTLS
	case t.DNS != nil:
		switch strings.ToLower(t.DNS.Transport) {
		case "tls", "https", "quic":
			return true
		}
	}
	return false
}

func (g *gen) certGroup(cfg *config.Config) group {
	gr := group{name: "vantage.certificates", comment: []string{
		"The earliest-expiring certificate any region was shown (min over regions: a load",
		"balancer may serve an old certificate from some of its nodes only). `for` rides out a",
		"region that briefly sees a different certificate during a rollout.",
	}}
	for _, t := range cfg.Targets {
		days := g.certDays(t)
		if days == 0 {
			continue
		}
		why := "its min_days_left of " + strconv.Itoa(days) + " days"
		if t.TLS == nil {
			why = "the " + strconv.Itoa(days) + " days Vantage warns ahead for targets without min_days_left"
		}
		at := g.tqSel("min by(target)", "probe_ssl_earliest_cert_expiry", " | humanizeTimestamp", "unknown")
		gr.rules = append(gr.rules, rule{
			alert: alertCert,
			expr: []string{
				"(min by(target) (" + g.sel("probe_ssl_earliest_cert_expiry", targetMatcher(t.Name)) + ") - time())",
				"< " + strconv.Itoa(days) + " * 86400",
				g.notInMaintenance(t.Name),
			},
			forDur: 10 * time.Minute,
			labels: targetLabels(t, sevTicket, false),
			annotations: []kv{
				{"summary", "{{ $labels.target }}: TLS certificate {{ if ge $value 0.0 }}expires in {{ $value | humanizeDuration }}{{ else }}has expired{{ end }}"},
				{"description", "The certificate chain the " + describe(t) + " presents has its earliest expiry at " + at +
					", within " + why + ". Renew the certificate and deploy the new chain everywhere; the alert" +
					" resolves once every region has seen it."},
				{"runbook_url", g.runbook(t, alertCert)},
			},
		})
	}
	return gr
}

func (g *gen) fleetGroup() group {
	rb := func(a string) kv { return kv{"runbook_url", g.runbook(nil, a)} }
	return group{name: "vantage.fleet", comment: []string{
		"The agents themselves. vantage_region_isolated and vantage_config_last_reload_successful",
		"carry only the scrape's instance and job labels, so those alerts are per agent.",
	}, rules: []rule{
		{
			alert:  alertAgentMissing,
			expr:   []string{"up{" + g.job + "} == 0"},
			forDur: 2 * time.Minute,
			labels: []kv{{"severity", sevTicket}},
			annotations: []kv{
				{"summary", "Vantage agent {{ $labels.instance }} is down or unreachable"},
				{"description", "Prometheus has not been able to scrape {{ $labels.instance }} (job {{ $labels.job }}) for 2 minutes." +
					" Its targets move to the other agents of its region; if it was the region's only agent, the region's" +
					" votes are missing and quorums get harder to reach."},
				rb(alertAgentMissing),
			},
		},
		{
			comment: []string{
				"A region is missing when no agent sees a live member in it and one of its members is",
				"dead; a region whose agents all left on purpose (decommissioned) stays quiet. max over",
				"agents: during a partition, the region's own agents still see themselves alive.",
			},
			alert: alertRegionMissing,
			expr: []string{
				"max by(region) (" + g.sel("vantage_cluster_members", `state="dead"`) + ") > 0",
				"and on(region) (max by(region) (sum without(state) (" + g.sel("vantage_cluster_members", `state=~"alive|suspect"`) + ")) == 0)",
			},
			forDur: 2 * time.Minute,
			labels: []kv{{"severity", sevPage}},
			annotations: []kv{
				{"summary", "Vantage region {{ $labels.region }} has no live agent"},
				{"description", "No agent sees a live member in region {{ $labels.region }} ({{ $value }} dead)." +
					" Nothing probes from there: targets only it probes have no results, and quorums that need it cannot be reached."},
				rb(alertRegionMissing),
			},
		},
		{
			alert:  alertRegionIsolated,
			expr:   []string{g.sel("vantage_region_isolated") + " == 1"},
			forDur: time.Minute,
			labels: []kv{{"severity", sevTicket}},
			annotations: []kv{
				{"summary", "Vantage agent {{ $labels.instance }} believes its region {{ $labels.region }} is cut off"},
				{"description", "{{ $labels.instance }} sees most of its targets fail while other regions see them up, so it" +
					" has marked its region isolated and its failures no longer count toward any verdict. Check the network" +
					" path out of its region (egress, DNS, firewall, upstream provider)."},
				rb(alertRegionIsolated),
			},
		},
		{
			alert:  alertConfigReload,
			expr:   []string{g.sel("vantage_config_last_reload_successful") + " == 0"},
			forDur: 5 * time.Minute,
			labels: []kv{{"severity", sevTicket}},
			annotations: []kv{
				{"summary", "Vantage agent {{ $labels.instance }} could not load its configuration"},
				{"description", "The last config reload on {{ $labels.instance }} failed; it keeps running the last good" +
					" configuration, which may differ from the other agents'. `vantage check-config FILE` shows each" +
					" problem with its position; so does the agent's log."},
				rb(alertConfigReload),
			},
		},
	}}
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
