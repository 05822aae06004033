package bench

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Goals of issue 3, checked by the report.
const (
	GoalRatioHTTP  = 1.00 // agent CPU per HTTP probe / bare client's
	GoalRatioTCP   = 1.00
	GoalRatioHTTPS = 1.05
	GoalRSS        = 64 << 20 // bytes, with 10k HTTPS targets configured and exported
	GoalLateP99    = 50 * time.Millisecond
	GoalScrape     = 100 * time.Millisecond
	GoalCores      = 1.0 // at 10k targets and 1,000 probes/s
	// GoalRatioBlackbox is issue 18's: agent CPU per ICMP and gRPC probe
	// at most blackbox_exporter's in the same run.
	GoalRatioBlackbox = 1.00
)

// Write prints the report: the CPU comparison, the agent's figures per
// scenario, the goals, and the conditions of the run. Values measured more
// than once are shown as min–max ranges. markdown selects tables for
// README.md; otherwise columns are aligned for a terminal.
func (rep *Report) Write(w io.Writer, markdown bool) {
	scen := rep.scenarios()
	cpu := table{header: []string{"scenario", "probe", "targets", "probes/s", "vantage µs/probe", "vantage GOGC=100 µs/probe",
		"bare client µs/probe", "blackbox_exporter µs/probe", "vantage ÷ bare", "vantage GOGC=100 ÷ bare", "blackbox ÷ vantage"}}
	for _, s := range scen {
		v, g, b, x := rep.get(s, DriverVantage), rep.get(s, DriverVantageGC100), rep.get(s, DriverBare), rep.get(s, DriverBlackbox)
		if len(v)+len(g)+len(b)+len(x) == 0 {
			continue
		}
		first := firstOf(v, g, b, x)
		cpu.add(s, first.Kind, fmt.Sprint(first.Targets), fmt.Sprintf("%.0f", first.Rate),
			rng(v, "%.1f", func(r Result) float64 { return us(r.PerProbe()) }),
			rng(g, "%.1f", func(r Result) float64 { return us(r.PerProbe()) }),
			rng(b, "%.1f", func(r Result) float64 { return us(r.PerProbe()) }),
			rng(x, "%.1f", func(r Result) float64 { return us(r.PerProbe()) }),
			ratios(v, b, "%.2f"), ratios(g, b, "%.2f"), ratios(x, v, "%.1f"))
	}
	agentT := table{header: []string{"scenario", "targets", "settings", "probes/s done", "cores", "RSS MB", "RSS/target KB",
		"live heap MB", "live/target KB", "lateness p50 ms", "p99 ms", "max ms", "scrape ms", "scrape MB",
		"skipped", "failed", "skipped at start", "failed at start", "load 1m"}}
	for _, row := range rep.agentRows() {
		s, v := row.scenario, row.results
		agentT.add(s, fmt.Sprintf("%d %s", v[0].Targets, v[0].Kind), distinct(v, Result.settings),
			rng(v, "%.0f", Result.Achieved),
			rng(v, "%.2f", Result.Cores),
			rng(v, "%.1f", func(r Result) float64 { return mb(r.ScrapedRSS) }),
			rng(v, "%.2f", func(r Result) float64 { return r.RSSPerTarget() / 1024 }),
			rng(v, "%.1f", func(r Result) float64 { return mb(r.LiveHeap) }),
			rng(v, "%.2f", func(r Result) float64 { return float64(r.LiveHeap) / 1024 / float64(r.Targets) }),
			rng(v, "%.2f", func(r Result) float64 { return ms(r.LateP50) }),
			rng(v, "%.2f", func(r Result) float64 { return ms(r.LateP99) }),
			rng(v, "%.0f", func(r Result) float64 { return ms(r.LateMax) }),
			rng(v, "%.1f", func(r Result) float64 { return ms(r.ScrapeMedian) }),
			rng(v, "%.1f", func(r Result) float64 { return float64(r.ScrapeBytes) / (1 << 20) }),
			rng(v, "%.0f", func(r Result) float64 { return float64(r.Skipped) }),
			rng(v, "%.0f", func(r Result) float64 { return float64(r.Failures) }),
			rng(v, "%.0f", func(r Result) float64 { return float64(r.WarmupSkipped) }),
			rng(v, "%.0f", func(r Result) float64 { return float64(r.WarmupFailures) }),
			rng(v, "%.2f", func(r Result) float64 { return r.LoadAvg[1] }))
	}

	heading := func(s string) {
		if markdown {
			fmt.Fprintf(w, "\n#### %s\n\n", s)
		} else {
			fmt.Fprintf(w, "\n%s\n\n", s)
		}
	}
	fmt.Fprintf(w, "Settings: %s\n", rep.settingsLine())
	heading("CPU per probe (agent process only; the farm runs in a child process)")
	cpu.write(w, markdown)
	heading("The agent")
	agentT.write(w, markdown)
	heading("Goals (issues 3, 18 and 21)")
	for _, g := range rep.goals() {
		fmt.Fprintf(w, "- %s\n", g)
	}
	heading("Conditions")
	fmt.Fprintf(w, "- %s, %d CPUs, GOMAXPROCS default, GOGC %d; %s; blackbox_exporter: %s\n", rep.GoVersion, rep.CPUs,
		rep.GOGC, rep.Started.UTC().Format(time.RFC3339), rep.Blackbox)
	lo, hi := rep.loadRange()
	fmt.Fprintf(w, "- 1-minute load average during the windows: %.2f–%.2f; elapsed %s\n", lo, hi, rep.Elapsed.Round(time.Second))
	fmt.Fprintf(w, "- each window %s after a warm-up of one interval (at least 5 s); lateness, skipped and failed over the window only;\n"+
		"  RSS after the window and the scrapes, per target over the RSS before the config was parsed; live heap after a full GC\n",
		rep.windows())
	var errs []string
	for _, r := range rep.Results {
		if r.Err != "" {
			errs = append(errs, fmt.Sprintf("%s %s: %s", r.Scenario, r.Driver, r.Err))
		}
	}
	if len(errs) > 0 {
		heading("Errors")
		for _, e := range errs {
			fmt.Fprintf(w, "- %s\n", e)
		}
	}
}

// agentRow is one agent driver's results in one scenario.
type agentRow struct {
	scenario string
	results  []Result
}

// agentRows are the agent's results by scenario: at its default settings,
// then at GOGC=100 where measured.
func (rep *Report) agentRows() []agentRow {
	var out []agentRow
	for _, s := range rep.scenarios() {
		for _, d := range []string{DriverVantage, DriverVantageGC100} {
			if v := rep.get(s, d); len(v) > 0 {
				out = append(out, agentRow{s, v})
			}
		}
	}
	return out
}

// settingsLine says the collector's settings each driver ran with, for the
// report's header: the agent's default settings by scenario (the memory
// limit may depend on its targets), the agent at GOGC=100, the bare client.
func (rep *Report) settingsLine() string {
	var parts []string
	byScenario := map[string][]string{}
	var order []string
	for _, s := range rep.scenarios() {
		v := rep.get(s, DriverVantage)
		if len(v) == 0 {
			continue
		}
		set := distinct(v, Result.settings)
		if _, ok := byScenario[set]; !ok {
			order = append(order, set)
		}
		byScenario[set] = append(byScenario[set], s)
	}
	for _, set := range order {
		parts = append(parts, fmt.Sprintf("vantage (default settings) %s: %s", strings.Join(byScenario[set], ", "), set))
	}
	for _, s := range rep.scenarios() {
		if g := rep.get(s, DriverVantageGC100); len(g) > 0 {
			parts = append(parts, "vantage GOGC=100: "+distinct(g, Result.settings))
			break
		}
	}
	parts = append(parts, "bare client: "+Result{GOGC: rep.GOGC, MemLimit: rep.MemLimit, MemSource: "env"}.settings())
	return strings.Join(parts, "; ")
}

// distinct joins the distinct values of f over rs with " / ".
func distinct(rs []Result, f func(Result) string) string {
	var out []string
	for _, r := range rs {
		if v := f(r); !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return strings.Join(out, " / ")
}

// goals states each goal of issues 3 and 18 the results can speak to, met
// or not, with the worst measured value.
func (rep *Report) goals() []string {
	var out []string
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "NOT met"
	}
	for _, s := range rep.scenarios() {
		v, b := rep.get(s, DriverVantage), rep.get(s, DriverBare)
		if len(v) == 0 || len(b) == 0 {
			continue
		}
		goal := map[string]float64{KindHTTP: GoalRatioHTTP, KindHTTPS: GoalRatioHTTPS, KindTCP: GoalRatioTCP}[v[0].Kind]
		if goal == 0 {
			continue
		}
		worst := 0.0
		for _, x := range pairs(v, b) {
			worst = max(worst, x)
		}
		out = append(out, fmt.Sprintf("%s: agent CPU per %s probe ≤ %.2f× the bare client: %s (worst %.2f×)",
			s, v[0].Kind, goal, verdict(worst <= goal), worst))
	}
	for _, s := range rep.scenarios() {
		v, x := rep.get(s, DriverVantage), rep.get(s, DriverBlackbox)
		if len(v) == 0 || len(x) == 0 || !slices.Contains([]string{KindICMP, KindGRPC, KindGRPCS}, v[0].Kind) {
			continue
		}
		worst := 0.0
		for _, r := range pairs(v, x) {
			worst = max(worst, r)
		}
		out = append(out, fmt.Sprintf("%s: agent CPU per %s probe ≤ %.2f× blackbox_exporter's: %s (worst %.2f×)",
			s, v[0].Kind, GoalRatioBlackbox, verdict(worst <= GoalRatioBlackbox), worst))
	}
	for _, s := range rep.scenarios() {
		v := rep.get(s, DriverVantage)
		if len(v) == 0 {
			if e := rep.firstErr(s, DriverVantage); e != nil && e.Targets >= 10000 {
				out = append(out, fmt.Sprintf("%s: not measured: %s", s, e.Err))
			}
			continue
		}
		if v[0].Targets < 10000 {
			continue
		}
		var rss uint64
		var p99, scr time.Duration
		var cores float64
		for _, r := range v {
			rss, p99, scr, cores = max(rss, r.ScrapedRSS), max(p99, r.LateP99), max(scr, r.ScrapeMedian), max(cores, r.Cores())
		}
		if v[0].Kind == KindHTTPS {
			out = append(out, fmt.Sprintf("%s: RSS < %d MB with %d HTTPS targets configured and exported: %s (worst %.1f MB)",
				s, GoalRSS>>20, v[0].Targets, verdict(rss < GoalRSS), mb(rss)))
		}
		out = append(out, fmt.Sprintf("%s: scrape < %v at %d targets: %s (worst median %.1f ms)",
			s, GoalScrape, v[0].Targets, verdict(scr < GoalScrape), ms(scr)))
		if v[0].Rate >= 1000 {
			out = append(out,
				fmt.Sprintf("%s: under one core at %.0f probes/s: %s (worst %.2f cores)", s, v[0].Rate, verdict(cores < GoalCores), cores),
				fmt.Sprintf("%s: lateness p99 < %v: %s (worst %.2f ms)", s, GoalLateP99, verdict(p99 < GoalLateP99), ms(p99)))
		}
	}
	if len(out) == 0 {
		out = append(out, "no scenario here speaks to a goal")
	}
	return out
}

func (rep *Report) scenarios() []string {
	var out []string
	for _, r := range rep.Results {
		if !slices.Contains(out, r.Scenario) {
			out = append(out, r.Scenario)
		}
	}
	return out
}

// get returns the measured (error-free) results of a scenario's driver.
func (rep *Report) get(scenario, driver string) []Result {
	var out []Result
	for _, r := range rep.Results {
		if r.Scenario == scenario && r.Driver == driver && r.Err == "" {
			out = append(out, r)
		}
	}
	return out
}

// firstErr is the first failed result of a scenario's driver, or nil.
func (rep *Report) firstErr(scenario, driver string) *Result {
	for i, r := range rep.Results {
		if r.Scenario == scenario && r.Driver == driver && r.Err != "" {
			return &rep.Results[i]
		}
	}
	return nil
}

func (rep *Report) loadRange() (lo, hi float64) {
	lo = -1
	for _, r := range rep.Results {
		for _, l := range r.LoadAvg {
			if l < 0 || (l == 0 && r.Window == 0) {
				continue
			}
			if lo < 0 || l < lo {
				lo = l
			}
			hi = max(hi, l)
		}
	}
	return max(lo, 0), hi
}

func (rep *Report) windows() string {
	var ws []string
	for _, r := range rep.Results {
		if r.Window > 0 {
			if w := r.Window.Round(time.Second).String(); !slices.Contains(ws, w) {
				ws = append(ws, w)
			}
		}
	}
	if len(ws) == 0 {
		return "(none)"
	}
	return strings.Join(ws, ", ")
}

func firstOf(rs ...[]Result) Result {
	for _, r := range rs {
		if len(r) > 0 {
			return r[0]
		}
	}
	return Result{}
}

// rng formats f over rs: one value, or "min–max"; "–" when rs is empty.
func rng(rs []Result, format string, f func(Result) float64) string {
	if len(rs) == 0 {
		return "–"
	}
	lo, hi := f(rs[0]), f(rs[0])
	for _, r := range rs[1:] {
		lo, hi = min(lo, f(r)), max(hi, f(r))
	}
	a, b := fmt.Sprintf(format, lo), fmt.Sprintf(format, hi)
	if a == b {
		return a
	}
	return a + "–" + b
}

// pairs is num/den CPU per probe for each run both measured.
func pairs(num, den []Result) []float64 {
	var out []float64
	for _, n := range num {
		for _, d := range den {
			if n.Run == d.Run && d.PerProbe() > 0 {
				out = append(out, float64(n.PerProbe())/float64(d.PerProbe()))
			}
		}
	}
	return out
}

func ratios(num, den []Result, format string) string {
	p := pairs(num, den)
	if len(p) == 0 {
		return "–"
	}
	lo, hi := slices.Min(p), slices.Max(p)
	a, b := fmt.Sprintf(format, lo), fmt.Sprintf(format, hi)
	if a == b {
		return a + "×"
	}
	return a + "–" + b + "×"
}

type table struct {
	header []string
	rows   [][]string
}

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

func (t *table) write(w io.Writer, markdown bool) {
	if markdown {
		fmt.Fprintf(w, "| %s |\n|%s\n", strings.Join(t.header, " | "), strings.Repeat(" --- |", len(t.header)))
		for _, r := range t.rows {
			fmt.Fprintf(w, "| %s |\n", strings.Join(r, " | "))
		}
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(t.header, "\t"))
	for _, r := range t.rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	_ = tw.Flush()
}
