package lab

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vantage-probe/vantage/cluster"
)

// Report is the outcome of a lab run.
type Report struct {
	Interval, Timeout time.Duration
	Regions           []string
	AgentsPerRegion   int
	MinRegions        int
	Confirm           bool
	Gossip            string
	Seed              uint64
	Took              time.Duration

	Rows  []Row
	Goals []Goal
	// Paging is what reached Alertmanager, per scenario; empty when the
	// lab ran without one.
	Paging []PageRow
	// Recoveries and Isolations are the partition's and the crash's
	// membership facts; Notes explain in words what the table cannot.
	Recoveries []Recovery
	Isolations []Isolation
	// Stalls are the times the lab's process was not scheduled for 250ms or
	// more; incidents that stalls of StallMin or more explain are counted
	// per row in Stalled, not False.
	Stalls   []Stall
	StallMin time.Duration
	Notes    []string

	// Confirmations are the fleet's vantage_confirmations_total by result
	// over the scenarios (after warm-up). ConfirmWindows is the number of
	// failing-target cooldown windows they played, ConfirmBudget the most
	// requests the cluster's bound allows for them.
	Confirmations  map[string]float64
	ConfirmWindows int
	ConfirmBudget  int
	// Probe traffic seen by the farm: probes per interval on a healthy
	// control target and on a target in an all-region outage.
	ProbesHealthy, ProbesOutage float64
	// The agents' own counters over the scenarios (incidents opened,
	// failures suppressed), against what the lab saw (incident records,
	// "suppressed" events): a check on the lab's accounting.
	CounterIncidents, CounterSuppressed float64
	SeenIncidents, SeenSuppressed       int
}

// Goal is one of the goals, measured.
type Goal struct {
	Name string
	Want string
	Got  string
	Met  bool
}

// OK reports whether the fleet raised no false incident and missed no
// outage, and, with Alertmanager, paged every outage once and nothing else.
func (r *Report) OK() bool {
	f, m := r.totals()
	ok := f == 0 && m == 0
	for _, row := range r.Paging {
		ok = ok && row.FalsePages == 0
		if row.Scenario != Flapping {
			ok = ok && row.Paged == row.Outages
			for _, n := range row.Firing {
				ok = ok && n == 1
			}
		}
	}
	return ok
}

func (r *Report) stalled() int {
	n := 0
	for _, row := range r.Rows {
		n += row.Stalled
	}
	return n
}

func (r *Report) totals() (falseIncidents, missed int) {
	for _, row := range r.Rows {
		falseIncidents += row.False
		missed += row.Missed
	}
	return
}

// Row returns the row of scenario s.
func (r *Report) Row(s Scenario) (Row, bool) {
	for _, row := range r.Rows {
		if row.Scenario == s {
			return row, true
		}
	}
	return Row{}, false
}

// report evaluates the ground truth against what the fleet concluded.
func (l *lab) report(before, after map[string]float64) *Report {
	o := l.opts
	l.mu.Lock()
	episodes := append([]Episode(nil), l.episodes...)
	notes := append([]string(nil), l.notes...)
	recoveries := append([]Recovery(nil), l.recoveries...)
	isolations := append([]Isolation(nil), l.isolations...)
	stalls := append([]Stall(nil), l.stalls...)
	l.mu.Unlock()
	owner := map[string]Scenario{}
	for s, names := range l.groups {
		for _, n := range names {
			owner[n] = s
		}
	}
	grace := o.Timeout + 2*time.Second
	truth := Truth{Episodes: episodes, Owner: owner, Grace: grace, Stalls: stalls, StallMin: o.Timeout / 2, Timeout: o.Timeout}
	evs := l.fleet.allEvents()
	plain := make([]cluster.Event, 0, len(evs))
	for _, e := range evs {
		plain = append(plain, e.Event)
	}
	rows := Evaluate(truth, l.fleet.allIncidents(), plain)

	rep := &Report{Interval: o.Interval, Timeout: o.Timeout, Regions: o.Regions, AgentsPerRegion: o.AgentsPerRegion,
		MinRegions: o.MinRegions, Confirm: !o.NoConfirm, Gossip: o.Gossip, Seed: o.Seed, Took: time.Since(l.start),
		Rows: rows, Recoveries: recoveries, Isolations: isolations, Stalls: stalls, StallMin: truth.StallMin,
		Notes: notes, Confirmations: map[string]float64{}}

	for k, v := range after {
		d := v - before[k]
		switch {
		case strings.HasPrefix(k, `vantage_confirmations_total{result="`):
			res := strings.TrimSuffix(strings.TrimPrefix(k, `vantage_confirmations_total{result="`), `"}`)
			rep.Confirmations[res] += d
		case k == "vantage_cluster_incidents_opened_total":
			rep.CounterIncidents += d
		case strings.HasPrefix(k, "vantage_suppressed_failures_total"):
			rep.CounterSuppressed += d
		case k == "vantage_leadership_doubted_total" && d > 0:
			rep.Notes = append(rep.Notes, fmt.Sprintf("leadership: agents were doubted by a peer (and led nothing meanwhile) %.0f times", d))
		}
	}
	for _, in := range l.fleet.allIncidents() {
		if !in.DetectedAt.Before(l.scenariosStart) {
			rep.SeenIncidents++
		}
	}
	for _, e := range evs {
		if e.Kind == "suppressed" && !e.At.Before(l.scenariosStart) {
			rep.SeenSuppressed++
		}
	}
	n := len(o.Regions)
	for _, e := range episodes {
		if e.Requesters == 0 {
			continue
		}
		windows := int(e.End.Sub(e.Start)/confirmCooldown) + 1
		targets := 1
		if e.Target == "" {
			targets = len(l.targets)
		}
		rep.ConfirmWindows += windows * targets
		rep.ConfirmBudget += windows * e.Requesters * (n - 1)
	}
	rep.probeTraffic(l, episodes)
	if l.pager != nil {
		rep.Paging = l.evaluatePaging(episodes)
	}
	rep.Goals = append(rep.goals(), rep.pagingGoals()...)
	rep.Goals = append(rep.Goals, l.numberGoals(truth)...)
	rep.Notes = append(rep.Notes, rep.membershipNotes()...)
	rep.Notes = append(rep.Notes, rep.rowNotes(l.start)...)
	for _, row := range rep.Paging {
		if row.FalsePages > 0 {
			rep.Notes = append(rep.Notes, fmt.Sprintf("%s: alerts in Alertmanager no outage explains, for %v", row.Scenario, row.FalseTargets))
		}
	}
	if l.pager != nil && l.pager.err != nil {
		rep.Notes = append(rep.Notes, "polling Alertmanager failed at least once: "+l.pager.err.Error())
	}
	return rep
}

// probeTraffic counts the farm's requests per target per interval.
func (r *Report) probeTraffic(l *lab, episodes []Episode) {
	iv := l.opts.Interval
	perInterval := func(name string, from, to time.Time) (float64, bool) {
		if to.Sub(from) < iv {
			return 0, false
		}
		return float64(len(l.farm.Hits(name, from, to))) / (float64(to.Sub(from)) / float64(iv)), true
	}
	var sum float64
	var k int
	for _, name := range l.groups[NoFault] {
		if v, ok := perInterval(name, l.start.Add(2*iv), time.Now()); ok {
			sum, k = sum+v, k+1
		}
	}
	if k > 0 {
		r.ProbesHealthy = sum / float64(k)
	}
	sum, k = 0, 0
	for _, e := range episodes {
		if e.Scenario == AllRegions && e.Target != "" {
			if v, ok := perInterval(e.Target, e.Start, e.End); ok {
				sum, k = sum+v, k+1
			}
		}
	}
	if k > 0 {
		r.ProbesOutage = sum / float64(k)
	}
}

// goals are the goals: for interval I, timeout T and R regions,
// time to detect from the true start p95 <= I/R + T + 2s (14s for 30s, 2s,
// 3 regions: the fleet looks every I/R, a confirmation takes at most T),
// first failed observation to verdict p95 < T + 2s, no false incident, no
// missed outage, and confirmation traffic within the cluster's bound.
func (r *Report) goals() []Goal {
	var gs []Goal
	if row, ok := r.Row(AllRegions); ok && len(row.MTTD) > 0 {
		want := r.Interval/time.Duration(len(r.Regions)) + r.Timeout + 2*time.Second
		p := Percentile(row.MTTD, 95)
		gs = append(gs, Goal{Name: "MTTD p95 from the true start (all-regions)", Want: "<= " + secs(want), Got: secs(p), Met: p <= want})
		want = r.Timeout + 2*time.Second
		p = Percentile(row.Verdict, 95)
		gs = append(gs, Goal{Name: "first failed observation -> verdict p95 (all-regions)", Want: "< " + secs(want), Got: secs(p), Met: p < want})
	}
	f, m := r.totals()
	got := fmt.Sprint(f)
	if st := r.stalled(); st > 0 {
		got += fmt.Sprintf(" (and %d during host stalls, not counted)", st)
	}
	gs = append(gs, Goal{Name: "false incidents", Want: "0", Got: got, Met: f == 0})
	gs = append(gs, Goal{Name: "missed outages", Want: "0", Got: fmt.Sprint(m), Met: m == 0})
	if r.ConfirmWindows > 0 {
		req := r.Confirmations["requested"]
		per := req / float64(r.ConfirmWindows)
		bound := len(r.Regions) * (len(r.Regions) - 1)
		gs = append(gs, Goal{Name: "confirmations requested per failing target per 10s cooldown",
			Want: fmt.Sprintf("<= %d (regions x (regions-1)); total <= %d", bound, r.ConfirmBudget),
			Got:  fmt.Sprintf("%.2f; total %.0f", per, req), Met: per <= float64(bound) && req <= float64(r.ConfirmBudget)})
	}
	return gs
}

// hostNote says how often the host stalled the lab's process.
func (r *Report) hostNote() string {
	var longest time.Duration
	big := 0
	for _, s := range r.Stalls {
		longest = max(longest, s.Length)
		if s.Length >= r.StallMin {
			big++
		}
	}
	if len(r.Stalls) == 0 {
		return "host: the lab's process was never stalled for 250ms or more"
	}
	return fmt.Sprintf("host: the lab's process (every agent and the farm) stalled %d times for 250ms or more, %d of them for %v or more (half the timeout), the longest %v",
		len(r.Stalls), big, r.StallMin, longest.Round(10*time.Millisecond))
}

// membershipNotes says how the partition and the crash went for membership.
func (r *Report) membershipNotes() []string {
	var out []string
	for _, iso := range r.Isolations {
		if iso.Flagged >= 0 {
			out = append(out, fmt.Sprintf("partition of %s: every agent there flagged its region isolated %.1fs after the cut", iso.Region, iso.Flagged.Seconds()))
		} else {
			out = append(out, fmt.Sprintf("partition of %s: its agents never all flagged the region isolated", iso.Region))
		}
		if len(iso.Wrong) > 0 {
			out = append(out, fmt.Sprintf("partition of %s: agents outside it flagged themselves isolated: %v", iso.Region, iso.Wrong))
		}
	}
	for _, rc := range r.Recoveries {
		what := "healing"
		if rc.Scenario == AgentKill {
			what = "its restart at a new address"
		}
		if rc.OK {
			out = append(out, fmt.Sprintf("%s: every agent saw every agent alive again %.1fs after %s (%s)", rc.Scenario, rc.After.Seconds(), what, rc.Who))
		} else {
			out = append(out, fmt.Sprintf("%s: NOT every agent saw every agent alive within %.0fs of %s (%s)", rc.Scenario, rc.After.Seconds(), what, rc.Who))
		}
	}
	return out
}

// rowNotes explains what the table cannot: reasons, early or missing
// resolutions, and each false incident.
func (r *Report) rowNotes(start time.Time) []string {
	var out []string
	for _, row := range r.Rows {
		if len(row.Reasons) > 0 && row.Scenario != AllRegions {
			out = append(out, fmt.Sprintf("%s: incident reasons %s", row.Scenario, reasons(row.Reasons)))
		}
		if len(row.MTTR) > 0 {
			out = append(out, fmt.Sprintf("%s: MTTR p95 %s, max %s", row.Scenario, secs(Percentile(row.MTTR, 95)), secs(Max(row.MTTR))))
		}
		if row.Scenario == OneRegion && row.Runs > 0 {
			out = append(out, fmt.Sprintf("%s: suppressed (below quorum) in %d of %d runs", row.Scenario, row.SuppressedRuns, row.Runs))
		}
		for _, in := range row.UnresolvedIncidents {
			crashed := ""
			for _, rc := range r.Recoveries {
				if rc.Scenario == AgentKill && rc.Who == in.Leader {
					crashed = " (the agent the lab crashed)"
				}
			}
			out = append(out, fmt.Sprintf("%s: incident %s on %s still open at the end, though its target recovered: detected at +%.1fs by %s%s, regions %v",
				row.Scenario, in.ID, in.Target, in.DetectedAt.Sub(start).Seconds(), in.Leader, crashed, in.Regions))
		}
		if row.EarlyResolved > 0 {
			out = append(out, fmt.Sprintf("%s: %d incidents have a resolved_at before the fault ended (the quorum saw the target up for a whole resolve hold while it was still failing)", row.Scenario, row.EarlyResolved))
		}
		for _, in := range row.StalledIncidents {
			out = append(out, fmt.Sprintf("%s: incident %s on %s during a host stall (every region froze at once; not counted false): detected at +%.1fs, regions %v, reason %q",
				row.Scenario, in.ID, in.Target, in.DetectedAt.Sub(start).Seconds(), in.Regions, in.Reason))
		}
		for i, in := range row.FalseIncidents {
			if i == 10 {
				out = append(out, fmt.Sprintf("%s: ... %d more false incidents", row.Scenario, len(row.FalseIncidents)-i))
				break
			}
			out = append(out, fmt.Sprintf("%s: FALSE incident %s on %s: detected at +%.1fs, started +%.1fs, regions %v, leader %s, reason %q",
				row.Scenario, in.ID, in.Target, in.DetectedAt.Sub(start).Seconds(), in.StartedAt.Sub(start).Seconds(),
				in.Regions, in.Leader, in.Reason))
		}
	}
	return out
}

func reasons(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		name := k
		if name == "" {
			name = "(none)"
		}
		parts = append(parts, fmt.Sprintf("%s x%d", name, m[k]))
	}
	return strings.Join(parts, ", ")
}

// secs formats d in seconds with one decimal; "-" for a missing value.
func secs(d time.Duration) string {
	if d < 0 {
		return "-"
	}
	return fmt.Sprintf("%.1fs", d.Seconds())
}

var columns = []string{"runs", "detected", "missed", "false", "suppressed",
	"MTTD p50", "MTTD p95", "MTTD max", "fail->verdict p95", "MTTR p50"}

func (row Row) cells() []string {
	dash := func(n int, show bool) string {
		if !show {
			return "-"
		}
		return fmt.Sprint(n)
	}
	return []string{
		fmt.Sprint(row.Runs),
		dash(row.Detected, row.MayDetect > 0),
		dash(row.Missed, row.MustDetect > 0),
		fmt.Sprint(row.False),
		fmt.Sprint(row.Suppressed),
		secs(Percentile(row.MTTD, 50)),
		secs(Percentile(row.MTTD, 95)),
		secs(Max(row.MTTD)),
		secs(Percentile(row.Verdict, 95)),
		secs(Percentile(row.MTTR, 50)),
	}
}

func (r *Report) header() string {
	confirm := "on"
	if !r.Confirm {
		confirm = "off"
	}
	return fmt.Sprintf("%d agents in %d regions (%s), interval %v, timeout %v, quorum %d, confirm_on_failure %s, gossip %s, seed %d; took %v",
		r.AgentsPerRegion*len(r.Regions), len(r.Regions), strings.Join(r.Regions, ", "), r.Interval, r.Timeout,
		r.MinRegions, confirm, r.Gossip, r.Seed, r.Took.Round(time.Second))
}

func (r *Report) confirmLine() string {
	c := r.Confirmations
	return fmt.Sprintf("confirmations: %.0f requested (%.0f confirmed, %.0f refuted, %.0f busy, %.0f timed out, %.0f rate-limited, %.0f served) over %d failing-target cooldown windows",
		c["requested"], c["confirmed"], c["refuted"], c["busy"], c["timeout"], c["rate_limited"], c["served"], r.ConfirmWindows)
}

func (r *Report) countersLine() string {
	return fmt.Sprintf("cross-check: the agents' counters say %.0f incidents opened and %.0f failures suppressed; the lab saw %d incident records and %d suppressed events",
		r.CounterIncidents, r.CounterSuppressed, r.SeenIncidents, r.SeenSuppressed)
}

func (r *Report) trafficLine() string {
	return fmt.Sprintf("probe traffic at the farm: %.1f probes per interval on a healthy target, %.1f on a target in an all-region outage",
		r.ProbesHealthy, r.ProbesOutage)
}

// WriteText prints the report as an aligned table with goals and notes.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Vantage fault lab: %s\n\n", r.header())
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "scenario\t%s\t\n", strings.Join(columns, "\t"))
	for _, row := range r.Rows {
		fmt.Fprintf(tw, "%s\t%s\t\n", row.Scenario, strings.Join(row.cells(), "\t"))
	}
	_ = tw.Flush()
	if len(r.Paging) > 0 {
		b.WriteString("\nPaging (a real Alertmanager; the agents send their alerts to it directly):\n")
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(tw, "scenario\t%s\t\n", strings.Join(pageColumns, "\t"))
		for _, row := range r.Paging {
			fmt.Fprintf(tw, "%s\t%s\t\n", row.Scenario, strings.Join(row.cells(), "\t"))
		}
		_ = tw.Flush()
	}
	b.WriteString("\nMTTD: detected_at - the farm's flip (true start); fail->verdict: detected_at - first failed observation;\n" +
		"MTTR: resolved_at (when the quorum saw it up; the incident closes a resolve hold later) - the farm's repair;\n" +
		"false: incidents no fault explains, or a second one for one fault.\n\nGoals:\n")
	for _, g := range r.Goals {
		mark := "ok  "
		if !g.Met {
			mark = "MISS"
		}
		fmt.Fprintf(&b, "  %s %s: %s (want %s)\n", mark, g.Name, g.Got, g.Want)
	}
	fmt.Fprintf(&b, "\n%s\n%s\n%s\n%s\n", r.confirmLine(), r.trafficLine(), r.countersLine(), r.hostNote())
	if len(r.Notes) > 0 {
		b.WriteString("\nNotes:\n")
		for _, n := range r.Notes {
			fmt.Fprintf(&b, "  - %s\n", n)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteMarkdown prints the report as markdown, ready for the README.
func (r *Report) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Fault lab (`make lab`): %s.\n\n", r.header())
	fmt.Fprintf(&b, "| scenario | %s |\n|---|%s\n", strings.Join(columns, " | "), strings.Repeat("---:|", len(columns)))
	for _, row := range r.Rows {
		fmt.Fprintf(&b, "| %s (`%s`) | %s |\n", row.Scenario.Title(), row.Scenario, strings.Join(row.cells(), " | "))
	}
	b.WriteString("\nMTTD is measured from the moment the farm flipped (the true start) to the incident's `detected_at`; " +
		"fail->verdict from the first failed observation (`started_at`) to `detected_at`; MTTR from the farm's repair to `resolved_at` " +
		"(when the quorum saw the target up again; the incident closes one resolve hold, an interval, later). " +
		"A false incident is one no fault explains, or a second incident for one fault.\n\n")
	if len(r.Paging) > 0 {
		fmt.Fprintf(&b, "Paging: the agents send their alerts straight to a real Alertmanager (0.25); fault->alert is from the farm's flip to the alert first seen active in Alertmanager's API (polled every 100 ms); notifications are what its webhook receiver got (group_wait 0s, group_interval 2s).\n\n")
		fmt.Fprintf(&b, "| scenario | %s |\n|---|%s\n", strings.Join(pageColumns, " | "), strings.Repeat("---:|", len(pageColumns)))
		for _, row := range r.Paging {
			fmt.Fprintf(&b, "| %s (`%s`) | %s |\n", row.Scenario.Title(), row.Scenario, strings.Join(row.cells(), " | "))
		}
		b.WriteString("\n")
	}
	b.WriteString("| goal | want | measured | |\n|---|---|---|---|\n")
	for _, g := range r.Goals {
		mark := "met"
		if !g.Met {
			mark = "**missed**"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", g.Name, g.Want, g.Got, mark)
	}
	fmt.Fprintf(&b, "\n- %s\n- %s\n- %s\n- %s\n", r.confirmLine(), r.trafficLine(), r.countersLine(), r.hostNote())
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "- %s\n", n)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
