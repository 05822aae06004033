// Package rules generates the Prometheus alerting and recording rules for a
// Vantage configuration (`vantage rules`): a target-down alert on the quorum
// verdict, multi-window multi-burn-rate SLO alerts on vantage_probes_total,
// certificate expiry, and alerts on the fleet itself (agents, regions,
// isolation, config reloads). docs/alerts.md is the runbook each alert's
// runbook_url points at.
//
// The number of rules does not grow with the number of targets: every
// alert aggregates by target, the target's labels ride on the series the
// agents export, and per-target thresholds (SLO objective, certificate
// warning days) are series too (vantage_target_slo_objective,
// vantage_target_cert_min_days_left) that the rules compare against. The
// config is read only for the label names to keep on alerts and the SLO
// window. Prometheus evaluates each rule as one query per interval, so a
// rule per target (40,000 rules at 10,000 targets) took most of an
// evaluation interval before a single series existed.
package rules

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
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
}

// Alert names, also the headings of docs/alerts.md.
const (
	AlertTargetDown     = "VantageTargetDown"
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
	SeverityPage = "page"
	sevTicket    = "ticket"
)

// Defaults of the [slo] table, for a Config built without the loader.
const (
	defaultWindow = 28 * 24 * time.Hour
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

// Windows of the error ratio. The short ones are sums over the recorded 5m
// rates, evaluated every interval; the long ones (and the SLO window) are
// sums of 4-minute increases recorded every 4 minutes, so a 28-day window
// reads 10,080 points per target per evaluation, not 161,280. Four minutes,
// not five: an instant query looks back 5 minutes for a sample, so a
// recording every 4 always has one.
var (
	shortWindows = []time.Duration{5 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour, 6 * time.Hour}
	longWindows  = []time.Duration{24 * time.Hour, 72 * time.Hour}
	longInterval = 4 * time.Minute
)

// Recorded series.
const (
	recFailures     = "vantage:probe_failures:rate5m"
	recProbes       = "vantage:probes:rate5m"
	recFailuresLong = "vantage:probe_failures:increase4m"
	recProbesLong   = "vantage:probes:increase4m"
	recBudgetRatio  = "vantage:target_error_budget:ratio" // 1 - objective
	recTargetUp     = "vantage:target_up:min"
	recBudget       = "vantage:slo_error_budget_remaining:ratio"
)

func recErrorRatio(w time.Duration) string { return "vantage:probe_error_ratio:rate" + promDuration(w) }

func recAvailability(w time.Duration) string {
	return "vantage:slo_availability:ratio_rate" + promDuration(w)
}

var labelNameRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// reservedLabels are own label names that never become alert labels by
// aggregation: runbook becomes the runbook_url annotation; the others are
// Vantage's own or Prometheus'.
var reservedLabels = map[string]bool{
	"runbook": true, "alertname": true, "target": true, "type": true, "region": true, "instance": true, "job": true,
}

type gen struct {
	opts   Options
	job    string // the job matcher, job=~"..."
	window time.Duration
	by     string // the labels alerts keep: target, type and the targets' own label names
}

// Generate returns a Prometheus rule file (YAML) for cfg. It reports every
// problem it finds (an invalid label name, a bad Job regex) at once.
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
	var errs []error
	if _, err := regexp.Compile("^(?:" + opts.Job + ")$"); err != nil {
		errs = append(errs, fmt.Errorf("rules: job regex %q: %w", opts.Job, err))
	}
	if strings.Contains(opts.Job, "`") {
		// Annotation templates carry the selector in a raw string.
		errs = append(errs, fmt.Errorf("rules: job regex %q: a backquote is not supported", opts.Job))
	}
	for _, t := range cfg.Targets {
		for _, k := range slices.Sorted(maps.Keys(t.Labels)) {
			if !labelNameRE.MatchString(k) || strings.HasPrefix(k, "__") {
				errs = append(errs, fmt.Errorf("rules: target %q: label name %q: not a valid Prometheus label name", t.Name, k))
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	g := &gen{opts: opts, job: "job=~" + strconv.Quote(opts.Job), window: cfg.SLO.Window,
		by: strings.Join(append([]string{"target", "type"}, LabelNames(cfg)...), ", ")}
	if g.window <= 0 {
		g.window = defaultWindow
	}
	var b bytes.Buffer
	writeFile(&b, []string{
		"Prometheus rules for Vantage, generated by `vantage rules` from the agents' config.",
		"The rules do not grow with the number of targets: regenerate them only when the",
		"label names targets use, or the [slo] window, change.",
		"Runbooks: " + opts.RunbookBase + " (see docs/alerts.md).",
	}, []group{g.targetGroup(), g.sloGroup(), g.sloLongGroup(), g.certGroup(), g.fleetGroup()})
	return b.Bytes(), nil
}

// LabelNames are the own label names of cfg's targets that alerts keep
// (every one but runbook), sorted: the rules aggregate by them, and the
// agent's direct alerts carry exactly them.
func LabelNames(cfg *config.Config) []string {
	seen := map[string]bool{}
	for _, t := range cfg.Targets {
		for k := range t.Labels {
			if !reservedLabels[k] && labelNameRE.MatchString(k) && !strings.HasPrefix(k, "__") {
				seen[k] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TargetDownLabels are the labels of t's VantageTargetDown alert: exactly
// those the generated rule's alert carries (before Prometheus adds its
// external labels), so that Alertmanager merges the agent's direct alert
// and the rule's into one: alertname, target, type, the target's own
// labels but runbook, and severity (its own, else page).
func TargetDownLabels(t *config.Target) map[string]string {
	out := make(map[string]string, len(t.Labels)+4)
	for k, v := range t.Labels {
		if !reservedLabels[k] && v != "" {
			out[k] = v
		}
	}
	out["alertname"] = AlertTargetDown
	out["target"] = t.Name
	out["type"] = t.Type
	if out["severity"] == "" {
		out["severity"] = SeverityPage
	}
	return out
}

// RunbookURL is where t's alert links: its runbook label, else the
// runbook in docs/alerts.md.
func RunbookURL(t *config.Target, base, alert string) string {
	if r := t.Labels["runbook"]; r != "" {
		return r
	}
	if base == "" {
		base = DefaultRunbookBase
	}
	return base + strings.ToLower(alert)
}

// sel is a selector of metric with the job matcher and more matchers.
func (g *gen) sel(metric string, matchers ...string) string {
	return metric + "{" + strings.Join(append([]string{g.job}, matchers...), ",") + "}"
}

// notInMaintenance ends every target alert: a target in a maintenance window
// keeps being probed, but nobody should be woken for it.
func (g *gen) notInMaintenance() string {
	return "unless on(target) (max by(target) (" + g.sel("vantage_target_maintenance") + ") == 1)"
}

// defaultSeverity wraps an alert expression so that a target without a
// severity label gets sev (label_replace sets it where it is empty).
func defaultSeverity(expr []string, sev string) []string {
	out := append([]string{"label_replace("}, expr...)
	return append(out, `, "severity", "`+sev+`", "severity", "")`)
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

// runbook is the runbook_url annotation of a target alert: the target's
// runbook label (read from its verdict series while the annotation
// renders), else the alert's section of docs/alerts.md.
func (g *gen) runbook(alert string) string {
	def := tmplText(g.opts.RunbookBase + strings.ToLower(alert))
	sel := strings.ReplaceAll(g.job, "%", "%%")
	return "{{ with printf `max by(runbook) (vantage_target_up{" + sel + ",target=%q})` $labels.target | query }}" +
		"{{ with . | first | label \"runbook\" }}{{ . }}{{ else }}" + def + "{{ end }}{{ else }}" + def + "{{ end }}"
}

// fleetRunbook is the runbook_url of an alert about the fleet itself.
func (g *gen) fleetRunbook(alert string) kv {
	return kv{"runbook_url", tmplText(g.opts.RunbookBase + strings.ToLower(alert))}
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

func (g *gen) targetGroup() group {
	failing := g.tqSel("max by(target)", "vantage_target_regions_failing", "", "?")
	reporting := g.tqSel("max by(target)", "vantage_target_regions_reporting", "", "?")
	quorum := g.tqSel("max by(target)", "vantage_target_quorum", "", "?")
	since := g.tqSel("max by(target)", "vantage_target_down_since_timestamp_seconds", " | humanizeTimestamp", "unknown")
	return group{name: "vantage.targets", comment: []string{
		"The fleet's verdict on each target, exported by the target's leader agent. Leadership",
		"moves between agents (and scrape jobs), so series are aggregated by target: min for up,",
		"so that during a hand-over one leader still saying up cannot hide the other saying down.",
		"VantageTargetDown has no `for`: the verdict is already debounced (consecutive failures",
		"per region, then min_regions regions agreeing), so waiting longer only delays the page.",
		"Agents with [alerting] send VantageTargetDown to Alertmanager themselves, seconds sooner,",
		"with the same labels; this rule is the backstop and leaves out the verdicts of leaders",
		"whose own delivery works (vantage_alerting_healthy 1), so the two paths never disagree",
		"on when an outage ends.",
	}, rules: []rule{
		{record: recTargetUp, expr: []string{"min by(target) (" + g.sel("vantage_target_up") + ")"}},
		{record: recBudgetRatio, expr: []string{"1 - max by(target) (" + g.sel("vantage_target_slo_objective") + ")"}},
		{
			alert: AlertTargetDown,
			expr: append(defaultSeverity([]string{
				"min by(" + g.by + ") (",
				g.sel("vantage_target_up"),
				"unless on(instance, job) (" + g.sel("vantage_alerting_healthy") + " == 1)",
				") == 0",
			}, SeverityPage), g.notInMaintenance()),
			annotations: []kv{
				{"summary", "{{ $labels.target }} is down: failing in " + failing + " of " + reporting + " regions"},
				{"description", "Vantage's quorum calls the {{ $labels.type }} target {{ $labels.target }} down: " + failing + " of " + reporting +
					" reporting regions see it fail and " + quorum + " must agree. Down since " + since +
					". Each region's latest result and reason: the status page (/) or /api/v1/targets of any agent."},
				{"runbook_url", g.runbook(AlertTargetDown)},
			},
		},
		{
			alert: alertVerdictUnknown,
			expr: []string{
				"max by(" + g.by + ") (" + g.sel("vantage_target_verdict_unknown") + ") == 1",
				g.notInMaintenance(),
			},
			forDur: 5 * time.Minute,
			labels: []kv{{"severity", sevTicket}},
			annotations: []kv{
				{"summary", "{{ $labels.target }}: too few regions report to tell whether it is up"},
				{"description", "Too few regions have fresh results for the {{ $labels.type }} target {{ $labels.target }} to decide: " + reporting +
					", where " + quorum + " are needed, so an outage would go unnoticed. Agents or whole regions are" +
					" probably missing: see VantageAgentMissing and VantageRegionMissing."},
				{"runbook_url", g.runbook(alertVerdictUnknown)},
			},
		},
	}}
}

func fmtFloat(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// sli is the SLI's sum over every region that probes a target, by target and
// its labels: failures seen by an agent that marked its region isolated,
// and a target's probes during maintenance, are left out, as the verdict
// leaves them out.
func (g *gen) sli(inner string) []string {
	notIsolated := "unless on(instance, job) (" + g.sel("vantage_region_isolated") + " == 1)"
	return []string{"sum by(" + g.by + ") (" + inner + " " + notIsolated + ")", g.notInMaintenance()}
}

func (g *gen) sloGroup() group {
	gr := group{name: "vantage.slo", comment: []string{
		"SLI: the share of probes that failed, over every region that probes a target. The",
		"windows up to 6h are sums of the recorded 5m rates (ratios of sums, so each window weighs",
		"every probe once); a window covers at most the time since these rules were loaded.",
		"VantageErrorBudgetFastBurn is the SRE workbook's fast pair (14.4x over 1h and 5m, 6x over",
		"6h and 30m) against each target's objective (vantage_target_slo_objective). It pages for",
		"failures the quorum did not call an outage (errors in one region at a time, a share of",
		"requests failing): an outage pages once, as VantageTargetDown, so burn from it is left",
		"out while the target is down and for the short window after (Alertmanager's inhibit",
		"rule from `vantage rules -alertmanager` covers the moments between two evaluations).",
	}}
	gr.rules = append(gr.rules,
		rule{record: recFailures, expr: g.sli("rate(" + g.sel("vantage_probes_total", `result="failure"`) + "[5m])")},
		rule{record: recProbes, expr: g.sli("rate(" + g.sel("vantage_probes_total") + "[5m])")},
	)
	for _, win := range shortWindows {
		r := rule{record: recErrorRatio(win)}
		if win == 5*time.Minute {
			r.expr = []string{recFailures + " / " + recProbes}
		} else {
			d := promDuration(win)
			r.expr = []string{"sum_over_time(" + recFailures + "[" + d + "]) / sum_over_time(" + recProbes + "[" + d + "])"}
		}
		gr.rules = append(gr.rules, r)
	}
	gr.rules = append(gr.rules, g.burnAlert(true))
	return gr
}

func (g *gen) sloLongGroup() group {
	w := promDuration(g.window)
	gr := group{name: "vantage.slo.long", interval: longInterval, comment: []string{
		"The long windows and the SLO window, from increases recorded every 4 minutes (cheap to",
		"sum over days). VantageErrorBudgetSlowBurn is the workbook's slow pair (3x over 1d and",
		"2h, 1x over 3d and 6h): a ticket. The error budget left is 1 - (1 - availability) /",
		"(1 - objective) over the [slo] window.",
	}}
	gr.rules = append(gr.rules,
		rule{record: recFailuresLong, expr: g.sli("increase(" + g.sel("vantage_probes_total", `result="failure"`) + "[4m])")},
		rule{record: recProbesLong, expr: g.sli("increase(" + g.sel("vantage_probes_total") + "[4m])")},
	)
	for _, win := range longWindows {
		d := promDuration(win)
		gr.rules = append(gr.rules, rule{record: recErrorRatio(win),
			expr: []string{"sum_over_time(" + recFailuresLong + "[" + d + "]) / sum_over_time(" + recProbesLong + "[" + d + "])"}})
	}
	gr.rules = append(gr.rules,
		rule{record: recAvailability(g.window), expr: []string{
			"1 - (sum_over_time(" + recFailuresLong + "[" + w + "]) / sum_over_time(" + recProbesLong + "[" + w + "]))",
		}},
		rule{record: recBudget, expr: []string{
			"1 - (1 - " + recAvailability(g.window) + ") / on(target) group_left() " + recBudgetRatio,
		}},
		g.burnAlert(false),
	)
	return gr
}

// burnAlert is the fast (paging) or slow (ticket) burn alert of every target.
func (g *gen) burnAlert(fast bool) rule {
	alert, burns, speed := alertSlowBurn, slowBurns, "slowly"
	if fast {
		alert, burns, speed = alertFastBurn, fastBurns, "fast"
	}
	var expr []string
	for i, b := range burns {
		thr := " > on(target) group_left() (" + fmtFloat(b.factor) + " * " + recBudgetRatio + ")"
		open := "or ("
		if i == 0 {
			open = "(("
		}
		expr = append(expr, open+recErrorRatio(b.long)+thr, "and "+recErrorRatio(b.short)+thr)
		if fast {
			// The outage that paged as VantageTargetDown is not burn to
			// page about again: not while the target is down, nor for the
			// short window after, which it keeps above the threshold.
			expr = append(expr, "unless on(target) (min_over_time("+recTargetUp+"["+promDuration(b.short)+"]) == 0)")
		}
		expr[len(expr)-1] += ")"
	}
	expr[len(expr)-1] += ")"
	var labels []kv
	if fast {
		expr = defaultSeverity(expr, SeverityPage)
	} else {
		labels = []kv{{"severity", sevTicket}}
	}
	expr = append(expr, g.notInMaintenance())

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
	objective := g.tqSel("max by(target)", "vantage_target_slo_objective", " | humanizePercentage", "its")
	var forDur time.Duration
	if fast {
		// A minute, so that at an outage's start VantageTargetDown (which
		// has no `for`, and comes straight from the fleet) is always first:
		// the burn of the outage is then left out by the expression above
		// and held back by Alertmanager's inhibit rule. The short window
		// already keeps a brief blip from firing it.
		forDur = time.Minute
	}
	return rule{
		alert:  alert,
		expr:   expr,
		forDur: forDur,
		labels: labels,
		annotations: []kv{
			{"summary", "{{ $labels.target }} is burning its error budget " + speed},
			{"description", "{{ $value | humanizePercentage }} of the probes of the {{ $labels.type }} target {{ $labels.target }} failed over the last " +
				promDuration(burns[0].long) + " or " + promDuration(slowest.long) + ", more than its " + objective +
				" objective allows (" + strings.Join(pairs, " or ") + " the budget): " + lasts +
				". Error budget left: " + budget + "."},
			{"runbook_url", g.runbook(alert)},
		},
	}
}

func (g *gen) certGroup() group {
	at := g.tqSel("min by(target)", "probe_ssl_earliest_cert_expiry", " | humanizeTimestamp", "unknown")
	days := g.tqSel("max by(target)", "vantage_target_cert_min_days_left", "", "?")
	return group{name: "vantage.certificates", comment: []string{
		"The earliest-expiring certificate any region was shown (min over regions: a load",
		"balancer may serve an old certificate from some of its nodes only), against each target's",
		"warning days (vantage_target_cert_min_days_left: a tls target's min_days_left, 14 for",
		"other targets that speak TLS). A ticket: the target stays up while its certificate is",
		"valid. `for` rides out a region that briefly sees another certificate during a rollout.",
	}, rules: []rule{{
		alert: alertCert,
		expr: []string{
			"(min by(" + g.by + ") (" + g.sel("probe_ssl_earliest_cert_expiry") + ") - time())",
			"< on(target) group_left() (86400 * max by(target) (" + g.sel("vantage_target_cert_min_days_left") + "))",
			g.notInMaintenance(),
		},
		forDur: 10 * time.Minute,
		labels: []kv{{"severity", sevTicket}},
		annotations: []kv{
			{"summary", "{{ $labels.target }}: TLS certificate {{ if ge $value 0.0 }}expires in {{ $value | humanizeDuration }}{{ else }}has expired{{ end }}"},
			{"description", "The certificate chain the {{ $labels.type }} target {{ $labels.target }} presents has its earliest expiry at " + at +
				", within its " + days + " days of warning. Renew the certificate and deploy the new chain everywhere; the alert" +
				" resolves once every region has seen it."},
			{"runbook_url", g.runbook(alertCert)},
		},
	}}}
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

func (g *gen) fleetGroup() group {
	rb := g.fleetRunbook
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
			labels: []kv{{"severity", SeverityPage}},
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
