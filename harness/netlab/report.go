package netlab

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// scenarioInfo names a scenario and says what it does.
type scenarioInfo struct{ name, title string }

// allScenarios in report order; "start" is always played first.
var allScenarios = []scenarioInfo{
	{"start", "six agents started at once, from cold"},
	{"outage", "outages every region sees (500), no other fault"},
	{"link-down", "a region's veth down: cut from everything; an outage meanwhile"},
	{"fleet-cut", "iptables: a region cut from the other regions, not the farm; an outage meanwhile"},
	{"target-cut", "iptables: a region cut from the farm, not the fleet; an outage meanwhile"},
	{"one-way-out", "iptables: what a region sends to the other regions is dropped; an outage meanwhile"},
	{"one-way-in", "iptables: what a region receives from the other regions is dropped; an outage meanwhile"},
	{"kill-restart", "an agent SIGKILLed, restarted with the same node name; an outage on a target it led"},
	{"stop-cont", "an agent SIGSTOPped, then SIGCONTinued; an outage on a target it led"},
	{"config-good", "config push with SIGHUP: a target added, one removed; an outage on the new one; then restored"},
	{"config-bad-syntax", "config push with SIGHUP: a TOML syntax error; then the good file restored"},
	{"config-bad-interval", "config push with SIGHUP: interval = \"100000d\"; then the good file restored"},
}

// ScenarioNames lists the scenarios Options.Scenarios may name.
func ScenarioNames() []string {
	var out []string
	for _, s := range allScenarios {
		if s.name != "start" {
			out = append(out, s.name)
		}
	}
	return out
}

func scenarioByName(name string) *scenarioInfo {
	for i := range allScenarios {
		if allScenarios[i].name == name && name != "start" {
			return &allScenarios[i]
		}
	}
	return nil
}

func scenarioTitle(name string) string {
	for _, s := range allScenarios {
		if s.name == name {
			return s.title
		}
	}
	return name
}

// Play is one play of a scenario.
type Play struct {
	Scenario string
	From, To time.Time
	// Target is the region or agent the fault hit ("" for none).
	Subject string
	// Recovered is how long after the fault ended every agent saw every
	// agent alive again; negative when that did not happen in time.
	Recovered time.Duration
}

// Row is one scenario's line in the report.
type Row struct {
	Scenario   string
	Runs       int
	Violations [numInvariants + 1]int // by invariant; index 0 unused
	Outages    int
	Detected   int
	MTTD       []time.Duration
	Recovery   []time.Duration // negative: not recovered in time
	Subjects   []string
}

// Report is the outcome of a run.
type Report struct {
	Regions         []string
	AgentsPerRegion int
	Targets         int
	Interval        time.Duration
	Timeout         time.Duration
	RejoinInterval  time.Duration
	Grace           time.Duration
	Took            time.Duration
	Dir             string

	Rows       []Row
	Violations []Violation
	Outages    []Outage
	Plays      []Play
	// Rounds is how many scrape rounds the monitor made; Gaps the (round,
	// target) pairs no agent exported a verdict for; FailedScrapes the
	// scrapes of a running agent's /metrics that failed.
	Rounds, Gaps, FailedScrapes int
	// Skewed is the (round, target) pairs #1 did not judge because the
	// exporters' scrapes completed over 250ms apart; Slow the /healthz
	// timeouts not counted (the harness stalled, or one round only);
	// Stalls the times the harness was not scheduled for 250ms or more.
	Skewed, Slow, Stalls int
	// Load is the host's 1-minute load average at the start and the end.
	Load [2]string
	// Judged is how many (target, region, interval) windows the
	// AssigneesOnly check judged, Probes the probes in them.
	Judged, Probes int
	Notes          []string
}

// OK reports whether no promise was broken.
func (r *Report) OK() bool { return len(r.Violations) == 0 }

// build fills Rows from Runs, Outages and Violations, attributing each
// violation to the scenario being played when it began.
func (r *Report) build() {
	for i := range r.Violations {
		v := &r.Violations[i]
		if v.Scenario != "" {
			continue
		}
		v.Scenario = "between scenarios"
		for _, run := range r.Plays {
			if !v.At.Before(run.From) && v.At.Before(run.To) {
				v.Scenario = run.Scenario
			}
		}
	}
	sort.SliceStable(r.Violations, func(i, j int) bool { return r.Violations[i].At.Before(r.Violations[j].At) })
	rows := map[string]*Row{}
	var order []string
	row := func(name string) *Row {
		if rows[name] == nil {
			rows[name] = &Row{Scenario: name}
			order = append(order, name)
		}
		return rows[name]
	}
	for _, run := range r.Plays {
		x := row(run.Scenario)
		x.Runs++
		if run.Recovered != 0 {
			x.Recovery = append(x.Recovery, run.Recovered)
		}
		if run.Subject != "" {
			x.Subjects = append(x.Subjects, run.Subject)
		}
	}
	for _, o := range r.Outages {
		x := row(o.Scenario)
		x.Outages++
		if o.Incident != "" {
			x.Detected++
			x.MTTD = append(x.MTTD, o.Detected)
		}
	}
	for _, v := range r.Violations {
		row(v.Scenario).Violations[v.Inv]++
	}
	r.Rows = r.Rows[:0]
	for _, n := range order {
		r.Rows = append(r.Rows, *rows[n])
	}
}

var columns = []string{"runs", "#1 one exporter", "#2 assignees only", "#3 no false incident", "#4 outage detected",
	"#5 healthy", "outages", "detected", "MTTD p50", "MTTD max", "recovered in"}

func (row Row) cells() []string {
	c := []string{fmt.Sprint(row.Runs)}
	for i := 1; i <= numInvariants; i++ {
		c = append(c, fmt.Sprint(row.Violations[i]))
	}
	if row.Outages == 0 {
		c = append(c, "-", "-", "-", "-")
	} else {
		c = append(c, fmt.Sprint(row.Outages), fmt.Sprint(row.Detected))
		if len(row.MTTD) == 0 {
			c = append(c, "-", "-")
		} else {
			d := slices.Clone(row.MTTD)
			slices.Sort(d)
			c = append(c, secs(d[(len(d)-1)/2]), secs(d[len(d)-1]))
		}
	}
	var rec []string
	for _, d := range row.Recovery {
		if d < 0 {
			rec = append(rec, "no")
		} else {
			rec = append(rec, secs(d))
		}
	}
	if len(rec) == 0 {
		rec = []string{"-"}
	}
	return append(c, strings.Join(rec, ","))
}

func secs(d time.Duration) string { return fmt.Sprintf("%.1fs", d.Seconds()) }

func (r *Report) header() string {
	return fmt.Sprintf("%d agents (%d regions x %d, each a `vantage agent` process in its region's network namespace), %d HTTP targets; "+
		"interval %v, timeout %v, quorum 2, replicas_per_region 1; memberlist timings at their defaults, rejoin_interval %v; "+
		"grace for #2 %v; took %s",
		len(r.Regions)*r.AgentsPerRegion, len(r.Regions), r.AgentsPerRegion, r.Targets, r.Interval, r.Timeout, r.RejoinInterval,
		r.Grace, r.Took.Round(time.Second))
}

func (r *Report) figures() string {
	rate := 0.0
	if r.Judged > 0 {
		rate = float64(r.Probes) / float64(r.Judged)
	}
	return fmt.Sprintf("%d scrape rounds (every agent, once a second); %d (round, target) pairs without a verdict exporter; %d failed scrapes of a running agent; "+
		"%d (round, target) pairs with two exporters not judged by #1 (their scrapes over %v apart); %d /healthz timeouts not counted by #5 (one round only, or the harness itself stalled); "+
		"the harness stalled %d times (host load average %s at the start, %s at the end, on 2 cores shared with other work). "+
		"#2 judged %d (target, region, interval) windows: %.2f probes per window (want 1).",
		r.Rounds, r.Gaps, r.FailedScrapes, r.Skewed, maxSkew, r.Slow, r.Stalls, r.Load[0], r.Load[1], r.Judged, rate)
}

const legend = "#1: at most one vantage_target_up series per target in each scrape round. " +
	"#2: after the grace, each (target, region) probed by its assignee only, once per interval, per the farm's per-source counts; no probe of a removed target. " +
	"#3: no incident that no all-region outage explains (nor a second one for one outage). " +
	"#4: every all-region outage opens an incident. " +
	"#5: /healthz 200 from every running agent, no agent exits by itself, a bad config keeps the last good one (reload reported failed, targets still probed). " +
	"MTTD: the farm's flip to the incident's detected_at. Recovered in: from the end of the scenario's faults (the fault and its outage) until every agent runs and sees all agents alive, and every target has one verdict exporter."

// WriteText prints the report for a terminal.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Vantage fault lab with real processes: %s\n\n", r.header())
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "scenario\t%s\t\n", strings.Join(columns, "\t"))
	for _, row := range r.Rows {
		fmt.Fprintf(tw, "%s\t%s\t\n", row.Scenario, strings.Join(row.cells(), "\t"))
	}
	_ = tw.Flush()
	fmt.Fprintf(&b, "\n%s\n\n%s\n", legend, r.figures())
	r.writeDetails(&b, "  ")
	fmt.Fprintf(&b, "\nAgent logs, configs and violations.log: %s\n", r.Dir)
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteMarkdown prints the report as markdown, ready for the README.
func (r *Report) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Fault lab with real processes (`make lab-netns`): %s.\n\n", r.header())
	fmt.Fprintf(&b, "| scenario | %s |\n|---|%s\n", strings.Join(columns, " | "), strings.Repeat("---:|", len(columns)))
	for _, row := range r.Rows {
		fmt.Fprintf(&b, "| %s (`%s`) | %s |\n", scenarioTitle(row.Scenario), row.Scenario, strings.Join(row.cells(), " | "))
	}
	fmt.Fprintf(&b, "\n%s\n\n%s\n", legend, r.figures())
	r.writeDetails(&b, "- ")
	_, err := io.WriteString(w, b.String())
	return err
}

func (r *Report) writeDetails(b *strings.Builder, bullet string) {
	if len(r.Violations) > 0 {
		fmt.Fprintf(b, "\nViolations (%d):\n", len(r.Violations))
		for _, v := range r.Violations {
			fmt.Fprintf(b, "%s%s\n", bullet, v)
		}
	} else {
		b.WriteString("\nNo violations.\n")
	}
	if len(r.Notes) > 0 {
		b.WriteString("\nNotes:\n")
		for _, n := range r.Notes {
			fmt.Fprintf(b, "%s%s\n", bullet, n)
		}
	}
}
