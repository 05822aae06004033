package state

import (
	"cmp"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vantage-probe/vantage/cluster"
)

// ReportQuery is a report's period and targets.
type ReportQuery struct {
	From, To time.Time
	Target   string // a glob (path.Match) on target names; "" for all
}

// ReportInput is what a report is made of: an agent's state file, or a
// running agent's memory (its incidents and first sightings; no buckets).
type ReportInput struct {
	Source    string
	Now       time.Time
	Incidents []cluster.Incident
	Targets   map[string]TargetMeta
	SLO       map[string]Counts // summed over the period's buckets; nil when unknown
}

// Report is an SLO report over a period.
type Report struct {
	From      time.Time        `json:"from"`
	To        time.Time        `json:"to"`
	Generated time.Time        `json:"generated"`
	Source    string           `json:"source"`
	Targets   []TargetReport   `json:"targets"`
	Incidents []IncidentReport `json:"incidents"`
	Regions   []RegionReport   `json:"regions"`
}

// TargetReport is one target's figures over the period. Downtime is the
// time an incident was open (from the first failed probe anywhere to the
// resolution), within the observed part of the period (since the fleet
// first knew the target): the same rule as the live SLO figures.
type TargetReport struct {
	Target          string  `json:"target"`
	Objective       float64 `json:"objective"`
	ObservedSeconds float64 `json:"observed_seconds"`
	DowntimeSeconds float64 `json:"downtime_seconds"`
	Availability    float64 `json:"availability"`
	// BudgetUsed is the share of the period's error budget (1 - objective
	// of the observed time) the downtime spent; BudgetLeft = 1 - used,
	// negative when overspent.
	BudgetUsed float64 `json:"budget_used"`
	BudgetLeft float64 `json:"budget_left"`
	Incidents  int     `json:"incidents"`
	// The agent's accounting, in whole-hour buckets: time the fleet's
	// verdict was up, down, unknown (too few regions, maintenance) while
	// the agent ran; omitted when the source has none.
	UpSeconds      *float64 `json:"up_seconds,omitempty"`
	DownSeconds    *float64 `json:"down_seconds,omitempty"`
	UnknownSeconds *float64 `json:"unknown_seconds,omitempty"`
}

// IncidentReport is one incident of the period.
type IncidentReport struct {
	ID         string    `json:"id"`
	Target     string    `json:"target"`
	Started    time.Time `json:"started_at"`
	Detected   time.Time `json:"detected_at"`
	Resolved   time.Time `json:"resolved_at,omitzero"`
	Open       bool      `json:"open"`
	TTDSeconds float64   `json:"time_to_detect_seconds"`
	// TTRSeconds is from the first failed probe to the resolution; absent
	// while open.
	TTRSeconds *float64 `json:"time_to_recover_seconds,omitempty"`
	Regions    []string `json:"regions"`
	Reason     string   `json:"reason,omitempty"`
	Flaps      int      `json:"flaps"`
}

// RegionReport is how often a region was among the failing ones.
type RegionReport struct {
	Region          string  `json:"region"`
	Incidents       int     `json:"incidents"`        // it saw failing
	Quorum          int     `json:"quorum"`           // it was in the quorum that declared
	DowntimeSeconds float64 `json:"downtime_seconds"` // of those incidents, within the period
}

// Report reads the store's incidents, targets and buckets of q's period.
func (s *Store) Report(q ReportQuery, now time.Time) (*Report, error) {
	in := ReportInput{Source: s.path, Now: now}
	var err error
	if in.Incidents, err = s.Incidents(q.From, q.To); err != nil {
		return nil, err
	}
	if in.Targets, err = s.Targets(); err != nil {
		return nil, err
	}
	if in.SLO, err = s.SLO(q.From, q.To); err != nil {
		return nil, err
	}
	return BuildReport(in, q), nil
}

// BuildReport computes the report of q from in.
func BuildReport(in ReportInput, q ReportQuery) *Report {
	to := q.To
	if to.IsZero() || to.After(in.Now) {
		to = in.Now
	}
	r := &Report{From: q.From, To: q.To, Generated: in.Now, Source: in.Source,
		Targets: []TargetReport{}, Incidents: []IncidentReport{}, Regions: []RegionReport{}}
	match := func(name string) bool {
		if q.Target == "" {
			return true
		}
		ok, _ := path.Match(q.Target, name)
		return ok
	}
	// overlap of [a, b) with [lo, hi)
	overlap := func(a, b, lo, hi time.Time) time.Duration {
		if a.Before(lo) {
			a = lo
		}
		if b.After(hi) {
			b = hi
		}
		return max(b.Sub(a), 0)
	}
	names := map[string]bool{}
	for name := range in.Targets {
		names[name] = true
	}
	byTarget := map[string][]cluster.Incident{}
	for _, inc := range in.Incidents {
		end := inc.ResolvedAt
		if end.IsZero() {
			end = in.Now
		}
		if !match(inc.Target) || !inc.StartedAt.Before(to) || end.Before(q.From) {
			continue
		}
		names[inc.Target] = true
		byTarget[inc.Target] = append(byTarget[inc.Target], inc)
	}
	regions := map[string]*RegionReport{}
	for name := range names {
		if !match(name) {
			continue
		}
		m := in.Targets[name]
		from := q.From
		if m.FirstSeen.After(from) {
			from = m.FirstSeen
		}
		tr := TargetReport{Target: name, Objective: m.Objective, Availability: 1, BudgetLeft: 1}
		observed := max(to.Sub(from), 0)
		var down time.Duration
		for _, inc := range byTarget[name] {
			end := inc.ResolvedAt
			if end.IsZero() {
				end = in.Now
			}
			d := overlap(inc.StartedAt, end, from, to)
			down += d
			tr.Incidents++
			ir := IncidentReport{ID: inc.ID, Target: inc.Target, Started: inc.StartedAt, Detected: inc.DetectedAt,
				Resolved: inc.ResolvedAt, Open: inc.Open(), TTDSeconds: inc.TimeToDetect().Seconds(),
				Regions: slices.Clone(inc.Regions), Reason: inc.Reason, Flaps: inc.Flaps}
			if !inc.Open() {
				s := inc.ResolvedAt.Sub(inc.StartedAt).Seconds()
				ir.TTRSeconds = &s
			}
			if ir.Regions == nil {
				ir.Regions = []string{}
			}
			r.Incidents = append(r.Incidents, ir)
			for _, reg := range inc.Regions {
				rr := regions[reg]
				if rr == nil {
					rr = &RegionReport{Region: reg}
					regions[reg] = rr
				}
				rr.Incidents++
				rr.DowntimeSeconds += overlap(inc.StartedAt, end, q.From, to).Seconds()
				if slices.Contains(inc.QuorumRegions, reg) {
					rr.Quorum++
				}
			}
		}
		down = min(down, observed)
		tr.ObservedSeconds, tr.DowntimeSeconds = observed.Seconds(), down.Seconds()
		if observed > 0 {
			tr.Availability = 1 - float64(down)/float64(observed)
		}
		if budget := 1 - tr.Objective; tr.Objective > 0 && budget > 0 {
			tr.BudgetUsed = (1 - tr.Availability) / budget
			tr.BudgetLeft = 1 - tr.BudgetUsed
		}
		if c, ok := in.SLO[name]; ok {
			up, dn, unk := c.Up.Seconds(), c.Down.Seconds(), c.Unknown.Seconds()
			tr.UpSeconds, tr.DownSeconds, tr.UnknownSeconds = &up, &dn, &unk
		}
		r.Targets = append(r.Targets, tr)
	}
	slices.SortFunc(r.Targets, func(a, b TargetReport) int {
		return cmp.Or(cmp.Compare(a.Availability, b.Availability), strings.Compare(a.Target, b.Target))
	})
	slices.SortFunc(r.Incidents, func(a, b IncidentReport) int { return a.Started.Compare(b.Started) })
	for _, rr := range regions {
		r.Regions = append(r.Regions, *rr)
	}
	slices.SortFunc(r.Regions, func(a, b RegionReport) int {
		return cmp.Or(b.Incidents-a.Incidents, cmp.Compare(b.DowntimeSeconds, a.DowntimeSeconds), strings.Compare(a.Region, b.Region))
	})
	return r
}

// WriteJSON writes r as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	return e.Encode(r)
}

// WriteCSV writes one row per target: the figures a spreadsheet sums.
func (r *Report) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"target", "objective", "availability", "downtime_seconds", "observed_seconds",
		"budget_used", "budget_left", "incidents", "up_seconds", "down_seconds", "unknown_seconds"})
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	opt := func(v *float64) string {
		if v == nil {
			return ""
		}
		return strconv.FormatFloat(*v, 'f', 0, 64)
	}
	for _, t := range r.Targets {
		_ = cw.Write([]string{t.Target, f(t.Objective), strconv.FormatFloat(t.Availability, 'f', 6, 64),
			strconv.FormatFloat(t.DowntimeSeconds, 'f', 1, 64), strconv.FormatFloat(t.ObservedSeconds, 'f', 0, 64),
			strconv.FormatFloat(t.BudgetUsed, 'f', 4, 64), strconv.FormatFloat(t.BudgetLeft, 'f', 4, 64),
			strconv.Itoa(t.Incidents), opt(t.UpSeconds), opt(t.DownSeconds), opt(t.UnknownSeconds)})
	}
	cw.Flush()
	return cw.Error()
}

const dayFmt = "2006-01-02 15:04 MST"

// WriteMarkdown writes r for a person to paste into a review.
func (r *Report) WriteMarkdown(w io.Writer) error {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	to := r.To
	if to.IsZero() {
		to = r.Generated
	}
	p("## SLO report, %s to %s\n\n", r.From.UTC().Format(dayFmt), to.UTC().Format(dayFmt))
	p("Availability is the share of the observed time (since the fleet first probed the target) without an open incident, "+
		"an incident lasting from its first failed probe in any region to its resolution. "+
		"The error budget is 1 - objective of the observed time. Source: %s, %s.\n\n", r.Source, r.Generated.UTC().Format(dayFmt))
	p("| target | objective | availability | downtime | error budget used | budget left | incidents |\n")
	p("|---|---:|---:|---:|---:|---:|---:|\n")
	for _, t := range r.Targets {
		p("| %s | %s | %s | %s | %.1f%% | %.1f%% | %d |\n", mdEscape(t.Target), pct(t.Objective), pct(t.Availability),
			Human(time.Duration(t.DowntimeSeconds*float64(time.Second))), 100*t.BudgetUsed, 100*t.BudgetLeft, t.Incidents)
	}
	if len(r.Targets) == 0 {
		p("| (no targets) | | | | | | |\n")
	}
	p("\n### Incidents (%d)\n\n", len(r.Incidents))
	if len(r.Incidents) > 0 {
		p("| started (UTC) | target | time to detect | time to recover | regions failing | reason | incident |\n")
		p("|---|---|---:|---:|---|---|---|\n")
		for _, in := range r.Incidents {
			ttr := "open"
			if in.TTRSeconds != nil {
				ttr = Human(time.Duration(*in.TTRSeconds * float64(time.Second)))
			}
			reason := in.Reason
			if in.Flaps > 0 {
				reason += fmt.Sprintf(" (%d flaps)", in.Flaps)
			}
			p("| %s | %s | %s | %s | %s | %s | `%s` |\n", in.Started.UTC().Format("2006-01-02 15:04:05"), mdEscape(in.Target),
				Human(time.Duration(in.TTDSeconds*float64(time.Second))), ttr, strings.Join(in.Regions, ", "), mdEscape(reason), in.ID)
		}
	}
	if len(r.Regions) > 0 {
		p("\n### Regions, most often failing first\n\n")
		p("| region | incidents it saw failing | in the quorum | downtime of those incidents |\n")
		p("|---|---:|---:|---:|\n")
		for _, rr := range r.Regions {
			p("| %s | %d | %d | %s |\n", rr.Region, rr.Incidents, rr.Quorum, Human(time.Duration(rr.DowntimeSeconds*float64(time.Second))))
		}
	}
	return nil
}

func pct(v float64) string {
	s := strconv.FormatFloat(100*v, 'f', 3, 64)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s + "%"
}

func mdEscape(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

// Human is d rounded for a person: 12ms, 13.3s, 4m12s, 2h03m, 3d04h.
func Human(d time.Duration) string {
	switch {
	case d < time.Second:
		return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
	case d < time.Minute:
		return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + "s"
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%02dh", int(d.Hours())/24, int(d.Hours())%24)
}
