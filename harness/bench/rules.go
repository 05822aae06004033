package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vantage-probe/vantage/agent/config"
	"github.com/vantage-probe/vantage/exporter"
	"github.com/vantage-probe/vantage/exporter/rules"
	"github.com/vantage-probe/vantage/internal/mono"
	"github.com/vantage-probe/vantage/internal/promtest"
	"github.com/vantage-probe/vantage/probe"
	"github.com/vantage-probe/vantage/probe/httpprobe"
)

// RulesOptions configure RulesEval: a real Prometheus evaluating the rules
// `vantage rules` writes, against the series of Targets targets exported by
// a fleet of Regions agents (each probing every target; each leading a
// share of them), written by the exporter's own writers.
type RulesOptions struct {
	Targets  int
	Regions  int           // default 3
	Teams    int           // distinct team labels; default 20
	Interval time.Duration // scrape and evaluation interval; default 15s
	Duration time.Duration // how long Prometheus evaluates; default 5m
	// Down targets are down by quorum the whole time (every region fails,
	// the leader's verdict is down): VantageTargetDown must fire for each.
	Down     int
	Progress io.Writer
}

// RulesResult is what Prometheus reported.
type RulesResult struct {
	Targets, Rules  int
	RuleFileBytes   int
	SeriesPerScrape int           // samples in one agent's /metrics
	Ready           time.Duration // Prometheus start, rules loaded, to ready
	// Group is, per rule group, the longest and the last evaluation
	// (prometheus_rule_group_last_duration_seconds, sampled every interval).
	GroupMax, GroupLast map[string]time.Duration
	EvalFailures        float64 // prometheus_rule_evaluation_failures_total: must be 0
	RSS                 float64 // Prometheus' resident memory at the end, bytes
	Firing              map[string]int
	Evaluations         int // evaluations of the targets group seen
}

// RulesEval runs Prometheus with the generated rules against a synthetic
// fleet and reports the cost of evaluating them.
func RulesEval(ctx context.Context, o RulesOptions) (*RulesResult, error) {
	if o.Regions <= 0 {
		o.Regions = 3
	}
	if o.Teams <= 0 {
		o.Teams = 20
	}
	if o.Interval <= 0 {
		o.Interval = 15 * time.Second
	}
	if o.Duration <= 0 {
		o.Duration = 5 * time.Minute
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.Targets < 1 || o.Down > o.Targets {
		return nil, fmt.Errorf("rules bench: %d targets, %d down: want at least 1 target and no more down than targets", o.Targets, o.Down)
	}
	cfg := &config.Config{SLO: config.SLO{Objective: 0.999, Window: 28 * 24 * time.Hour}}
	for i := range o.Targets {
		t := &config.Target{Name: fmt.Sprintf("target-%05d", i), Type: config.TypeHTTP,
			Labels: map[string]string{"team": "team-" + strconv.Itoa(i%o.Teams)}}
		t.SetHTTP(httpprobe.Options{URL: "https://" + t.Name + ".example.com/healthz"})
		cfg.Targets = append(cfg.Targets, t)
	}
	yml, err := rules.Generate(cfg, rules.Options{})
	if err != nil {
		return nil, err
	}
	res := &RulesResult{Targets: o.Targets, RuleFileBytes: len(yml),
		Rules:    strings.Count(string(yml), "\n      - alert: ") + strings.Count(string(yml), "\n      - record: "),
		GroupMax: map[string]time.Duration{}, GroupLast: map[string]time.Duration{}, Firing: map[string]int{}}

	fl := newSynthFleet(cfg, o)
	defer fl.close()
	if err := fl.start(); err != nil {
		return nil, err
	}
	res.SeriesPerScrape = fl.samples()

	dir, err := os.MkdirTemp("", "vantage-rules-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	var targets []string
	for _, a := range fl.agents {
		targets = append(targets, "'"+a.addr+"'")
	}
	iv := o.Interval.String()
	promCfg := "global:\n  scrape_interval: " + iv + "\n  evaluation_interval: " + iv + "\n  scrape_timeout: " + iv +
		"\nrule_files:{{RULES}}scrape_configs:\n  - job_name: vantage\n    static_configs:\n      - targets: [" + strings.Join(targets, ", ") + "]\n"
	fmt.Fprintf(o.Progress, "rules bench: %d targets, %d rules (%d KB), %d regions, %d samples per agent scrape; Prometheus for %v\n",
		o.Targets, res.Rules, len(yml)>>10, o.Regions, res.SeriesPerScrape, o.Duration)
	t0 := time.Now()
	prom, err := promtest.Start(ctx, dir, promtest.Options{Config: promCfg, Rules: map[string][]byte{"vantage-rules.yml": yml}})
	if err != nil {
		return nil, err
	}
	defer prom.Close()
	res.Ready = time.Since(t0)

	end := time.Now().Add(o.Duration)
	for mono.Sleep(ctx, o.Interval) == nil && time.Now().Before(end) {
		groups, err := prom.OwnMetrics(ctx, "prometheus_rule_group_last_duration_seconds")
		if err != nil {
			return res, err
		}
		for _, g := range groups {
			name := g.Metric["rule_group"]
			name = name[strings.LastIndex(name, ";")+1:]
			d := time.Duration(g.Value * float64(time.Second))
			res.GroupLast[name] = d
			res.GroupMax[name] = max(res.GroupMax[name], d)
		}
		if ev, err := prom.OwnMetrics(ctx, "prometheus_rule_group_iterations_total"); err == nil {
			for _, e := range ev {
				if strings.HasSuffix(e.Metric["rule_group"], ";vantage.targets") {
					res.Evaluations = int(e.Value)
				}
			}
		}
		fmt.Fprintf(o.Progress, "  %3.0fs: %s\n", time.Since(t0).Seconds(), formatGroups(res.GroupLast))
	}
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	if v, err := prom.OwnMetrics(ctx, "prometheus_rule_evaluation_failures_total"); err == nil {
		for _, e := range v {
			res.EvalFailures += e.Value
		}
	}
	if rss, _, err := pidMemory(strconv.Itoa(prom.Pid())); err == nil {
		res.RSS = float64(rss)
	}
	if v, err := prom.Query(ctx, `count by(alertname) (ALERTS{alertstate="firing"})`); err == nil {
		for _, s := range v {
			res.Firing[s.Metric["alertname"]] = int(s.Value)
		}
	}
	return res, nil
}

func formatGroups(m map[string]time.Duration) string {
	names := slices.Sorted(func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	})
	parts := make([]string, 0, len(names))
	for _, n := range names {
		parts = append(parts, fmt.Sprintf("%s %.0f ms", n, float64(m[n])/float64(time.Millisecond)))
	}
	return strings.Join(parts, ", ")
}

// WriteText prints the result.
func (r *RulesResult) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Prometheus evaluating `vantage rules` for %d targets: %d rules, %d KB; ready %.1fs after start; %d samples per agent scrape\n",
		r.Targets, r.Rules, r.RuleFileBytes>>10, r.Ready.Seconds(), r.SeriesPerScrape)
	names := make([]string, 0, len(r.GroupMax))
	for n := range r.GroupMax {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(&b, "  group %-22s last %7.1f ms   max %7.1f ms\n", n, ms(r.GroupLast[n]), ms(r.GroupMax[n]))
	}
	fmt.Fprintf(&b, "  evaluation failures %.0f; Prometheus RSS %.0f MB; %d evaluations of vantage.targets; firing %v\n",
		r.EvalFailures, r.RSS/1e6, r.Evaluations, r.Firing)
	_, err := io.WriteString(w, b.String())
	return err
}

// synthFleet serves each region's agent's /metrics: every target's
// observations from that region, and the verdicts of the targets it leads
// (every Regions-th), through the exporter's writers, so the series are
// exactly what real agents export. Counters advance with time at one probe
// per interval per region.
type synthFleet struct {
	cfg    *config.Config
	o      RulesOptions
	began  time.Time
	agents []*synthAgent
}

type synthAgent struct {
	region string
	index  int
	ln     net.Listener
	srv    *http.Server
	addr   string
	labels []string // each target's label set, by target
}

func newSynthFleet(cfg *config.Config, o RulesOptions) *synthFleet {
	return &synthFleet{cfg: cfg, o: o, began: time.Now()}
}

var synthRegions = []string{"eu-west", "us-east", "ap-south", "sa-east", "af-south", "me-central"}

func (f *synthFleet) start() error {
	for i := range f.o.Regions {
		region := fmt.Sprintf("region-%d", i)
		if i < len(synthRegions) {
			region = synthRegions[i]
		}
		a := &synthAgent{region: region, index: i}
		for _, t := range f.cfg.Targets {
			a.labels = append(a.labels, exporter.Labels(t.Name, t.Type, t.Labels))
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		a.ln, a.addr = ln, ln.Addr().String()
		a.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { f.write(w, a) }),
			ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = a.srv.Serve(ln) }()
		f.agents = append(f.agents, a)
	}
	return nil
}

func (f *synthFleet) close() {
	for _, a := range f.agents {
		_ = a.srv.Close()
	}
}

// samples counts the samples of one agent's scrape.
func (f *synthFleet) samples() int {
	var b exporter.Buf
	f.writeTo(&b, f.agents[0])
	n := 0
	for _, l := range strings.Split(b.String(), "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			n++
		}
	}
	return n
}

func (f *synthFleet) write(w io.Writer, a *synthAgent) {
	var b exporter.Buf
	f.writeTo(&b, a)
	_, _ = w.Write(b.Bytes())
}

func (f *synthFleet) writeTo(b *exporter.Buf, a *synthAgent) {
	now := time.Now()
	probes := uint64(now.Sub(f.began)/f.o.Interval) + 1
	expiry := now.Add(60 * 24 * time.Hour).Truncate(time.Hour)
	ok := probe.Result{OK: true, At: now, Duration: 42 * time.Millisecond, HTTP: &probe.HTTPFacts{StatusCode: 200, Version: "2"},
		TLS: &probe.TLSFacts{Version: "TLS 1.3", EarliestExpiry: expiry, LastChainExpiry: expiry}}
	bad := probe.Result{OK: false, Reason: probe.ReasonStatusMismatch, At: now, Duration: 12 * time.Millisecond,
		HTTP: &probe.HTTPFacts{StatusCode: 503, Version: "2"}, TLS: ok.TLS}
	for _, p := range []string{probe.PhaseResolve, probe.PhaseConnect, probe.PhaseTLS, probe.PhaseProcessing, probe.PhaseTransfer} {
		ok.AddPhase(p, 5*time.Millisecond)
		bad.AddPhase(p, 2*time.Millisecond)
	}
	obs := make([]exporter.Obs, len(f.cfg.Targets))
	for i := range f.cfg.Targets {
		o := exporter.Obs{Labels: a.labels[i], Type: config.TypeHTTP, Result: &ok, Success: probes}
		if i < f.o.Down {
			o.Result, o.Success, o.Failure, o.Failing, o.Consecutive = &bad, 0, probes, true, int(probes)
		}
		obs[i] = o
	}
	exporter.WriteObservations(b, exporter.RegionLabel(a.region), obs)
	var led []int
	for i := a.index; i < len(f.cfg.Targets); i += f.o.Regions {
		led = append(led, i)
	}
	exporter.WriteVerdicts(b, len(led), func(j int, x *exporter.Verdict) {
		i := led[j]
		*x = exporter.Verdict{Labels: a.labels[i], Up: true, Reporting: f.o.Regions, Quorum: 2, Objective: 0.999,
			CertDays: config.DefaultCertDays}
		if i < f.o.Down {
			x.Up, x.Failing, x.DownSince, x.Incidents = false, f.o.Regions, f.began, 1
		}
	})
	fmt.Fprintf(b, "vantage_region_isolated{region=%q} 0\nvantage_alerting_healthy 0\n", a.region)
}
