package page

import (
	"cmp"
	"html/template"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vantage-probe/vantage/cluster"
	"github.com/vantage-probe/vantage/exporter"
)

// The view model: everything the template shows, computed in Go so the
// template only places strings (fast, and the logic is testable).

type pageData struct {
	Title   string
	CSS     template.CSS
	Refresh int // seconds; 0: no auto-refresh
	Icon    template.URL
	NowText string
	NowISO  string
	Self    selfData
	Sum     summary
	Regions []string
	Rows    []row
	Open    []incidentRow
	Recent  []incidentRow
	// RecentHidden counts resolved incidents beyond maxRecent.
	RecentHidden int
	Members      []regionMembers
	MemberCount  int
}

type selfData struct {
	Node          string
	AgentID       string
	Region        string
	Version       string
	Uptime        string
	Isolated      bool
	ConfigOK      bool
	ConfigFile    string
	ConfigError   string
	LastReload    string
	TargetsProbed int
	// Failing are the Alertmanagers the agent cannot deliver its alerts
	// to; Paging says how many take them.
	AMFailing []amFailure
	AMTotal   int
	AMOK      int
	// Push is the [exporter.push] item of the header; nil without push.
	Push *pushItem
}

// pushItem says whether the agent's series reach the push URL: "ok 3s
// ago", or "failing" with the error as the tooltip.
type pushItem struct {
	Text, Title string
	Bad         bool
}

func makePushItem(p *exporter.PushView, now time.Time) *pushItem {
	if p == nil {
		return nil
	}
	it := &pushItem{Title: p.URL + " every " + p.Interval}
	switch {
	case p.OK:
		it.Text = "ok " + human(now.Sub(p.LastSuccess)) + " ago"
	case p.LastErrorAt.IsZero():
		it.Text = "starting"
	default:
		it.Bad = true
		it.Text = "failing"
		if !p.LastSuccess.IsZero() {
			it.Text += ", last ok " + human(now.Sub(p.LastSuccess)) + " ago"
		}
		it.Title = p.LastError
	}
	return it
}

type amFailure struct {
	URL, Error, Since string
	Pending           int
}

type summary struct {
	Total, Down, Suppressed, Unknown, Maintenance, Up int
	// Class is the fleet's worst state, for the header accent and icon.
	Class    string
	Headline string
}

// Target categories, in the order rows are listed: what needs a human first.
const (
	catDown = iota
	catSuppressed
	catUnknown
	catMaint
	catUp
)

var catClass = [...]string{"down", "supp", "unknown", "maint", "up"}

type row struct {
	cat        int
	Name       string
	Type       string
	Endpoint   string
	Class      string
	Verdict    string // UP, DOWN, UNKNOWN, MAINT
	Detail     string // e.g. "2/3 failing, quorum 2"
	Since      string // e.g. "for 12m"
	Why        string // the quorum's full reason, as a tooltip
	Leader     string
	LeaderSelf bool
	Cells      []cell
	Spark      spark
	SLO        *sloData
}

type cell struct {
	Region string // shown in the cell itself only on phones, where the grid collapses into cards
	Class  string // up, fail, pend, nodata, maint, na
	Sym    string // a text symbol, so state is not told by colour alone
	Text   string
	Title  string
}

type spark struct {
	Line  string // SVG path of latency over OK probes
	Fails string // SVG path of one vertical mark per failed probe
	Label string
}

type sloData struct {
	Avail     string
	Budget    string
	Class     string // ok, low, out
	BarWidth  int    // of sloBarWidth
	Objective string
	Title     string
}

type incidentRow struct {
	Target      string
	Started     string
	StartedISO  string
	Detected    string
	DetectedISO string
	TTD         string
	Duration    string
	Ongoing     bool
	Regions     string
	Reason      string
	Flaps       int
}

type regionMembers struct {
	Region                     string
	Alive, Suspect, Dead, Left int
	Isolated                   bool
	Members                    []memberData
}

type memberData struct {
	Name          string
	State         string // its name, for the CSS class
	state         cluster.MemberState
	Sym           string
	Title         string
	Isolated      bool
	Self          bool
	ConfigDiffers bool
}

// maxRecent bounds the resolved incidents listed: the API has them all.
const maxRecent = 20

func build(src exporter.Source, opts Options, now time.Time) *pageData {
	now = now.UTC()
	d := &pageData{
		Title:   opts.Title,
		NowText: now.Format("2006-01-02 15:04:05 UTC"),
		NowISO:  now.Format(time.RFC3339),
	}
	if opts.Refresh > 0 {
		d.Refresh = max(1, int(opts.Refresh.Round(time.Second)/time.Second))
	}
	self := src.Self()
	d.Self = selfData{
		Node: self.Node, AgentID: self.AgentID, Region: self.Region, Version: self.Version,
		Isolated: self.Isolated, ConfigOK: self.ConfigOK, ConfigFile: self.ConfigFile,
		ConfigError: self.ConfigError, TargetsProbed: self.TargetsProbed,
	}
	if !self.Started.IsZero() {
		d.Self.Uptime = human(now.Sub(self.Started))
	}
	if !self.LastReload.IsZero() {
		d.Self.LastReload = clock(self.LastReload, now)
	}
	d.Self.Push = makePushItem(self.Push, now)
	d.Self.AMTotal = len(self.Alertmanagers)
	for _, am := range self.Alertmanagers {
		if am.OK {
			d.Self.AMOK++
			continue
		}
		f := amFailure{URL: am.URL, Error: am.LastError, Pending: am.Pending}
		if !am.LastErrorAt.IsZero() {
			f.Since = clock(am.LastErrorAt, now)
		}
		d.Self.AMFailing = append(d.Self.AMFailing, f)
	}

	targets := src.Targets()
	d.Regions = regionsOf(targets)
	d.Rows = make([]row, 0, len(targets))
	for i := range targets {
		d.Rows = append(d.Rows, makeRow(&targets[i], d.Regions, self.AgentID, now))
	}
	slices.SortFunc(d.Rows, func(a, b row) int {
		if c := cmp.Compare(a.cat, b.cat); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	d.Sum = summarize(d.Rows)
	d.Icon = icons[d.Sum.Class]

	d.Open, d.Recent, d.RecentHidden = incidents(src.Incidents(), now)
	members := src.Members()
	d.MemberCount = len(members)
	d.Members = groupMembers(members, self.AgentID)
	return d
}

// regionsOf is the sorted union of the regions of all targets' results.
func regionsOf(ts []exporter.TargetView) []string {
	var out []string
	for i := range ts {
		for _, rv := range ts[i].Regions {
			if rv.Region != "" && !slices.Contains(out, rv.Region) {
				out = append(out, rv.Region)
			}
		}
	}
	slices.Sort(out)
	return out
}

func summarize(rows []row) summary {
	s := summary{Total: len(rows)}
	for i := range rows {
		switch rows[i].cat {
		case catDown:
			s.Down++
		case catSuppressed:
			s.Suppressed++
		case catUnknown:
			s.Unknown++
		case catMaint:
			s.Maintenance++
		case catUp:
			s.Up++
		}
	}
	switch {
	case s.Total == 0:
		s.Class, s.Headline = "unknown", "No targets configured"
	case s.Down > 0:
		s.Class, s.Headline = "down", count(s.Down, "target", "targets")+" down"
	case s.Unknown > 0:
		s.Class, s.Headline = "unknown", count(s.Unknown, "target", "targets")+" unknown"
	case s.Suppressed > 0:
		s.Class, s.Headline = "supp", "Up, "+count(s.Suppressed, "target", "targets")+" failing below quorum"
	case s.Maintenance > 0:
		s.Class, s.Headline = "up", "All targets up or in maintenance"
	default:
		s.Class, s.Headline = "up", "All targets up"
	}
	return s
}

func makeRow(t *exporter.TargetView, regions []string, selfID string, now time.Time) row {
	r := row{
		Name: t.Name, Type: strings.ToUpper(t.Type), Endpoint: t.Endpoint,
		Leader: t.Leader, LeaderSelf: t.IsLeader || (t.Leader != "" && t.Leader == selfID),
		Why: t.Reason,
	}
	total, failing := len(t.Regions), len(t.Failing)
	suppressed := failing > 0
	for _, rv := range t.Regions {
		if rv.Failing && rv.Fresh && !rv.Isolated {
			suppressed = true
		}
	}
	switch {
	case t.Maintenance:
		r.cat, r.Verdict = catMaint, "MAINT"
		r.Detail = "in maintenance, " + underlying(t, total, failing)
	case t.Verdict == "down":
		r.cat, r.Verdict = catDown, "DOWN"
		r.Detail = frac(failing, total) + " failing, quorum " + strconv.Itoa(t.Needed)
	case t.Verdict == "up" && suppressed:
		r.cat, r.Verdict = catSuppressed, "UP"
		r.Detail = frac(failing, total) + " failing, quorum " + strconv.Itoa(t.Needed)
	case t.Verdict == "up":
		r.cat, r.Verdict = catUp, "UP"
		r.Detail = frac(t.Reporting, total) + " reporting"
	default:
		r.cat, r.Verdict = catUnknown, "UNKNOWN"
		if t.Verdict == "" {
			r.Detail = "no verdict yet"
		} else {
			r.Detail = count(t.Reporting, "region", "regions") + " reporting, quorum " + strconv.Itoa(t.Needed)
		}
	}
	r.Class = catClass[r.cat]
	switch {
	case t.Open != nil && !t.Open.StartedAt.IsZero():
		r.Since = "for " + human(now.Sub(t.Open.StartedAt))
	case !t.Since.IsZero():
		r.Since = "for " + human(now.Sub(t.Since))
	}
	if r.Why == "" {
		r.Why = r.Detail
	}

	r.Cells = make([]cell, len(regions))
	for i, region := range regions {
		r.Cells[i] = cell{Class: "na", Sym: "", Text: "–", Title: region + ": not probed from this region"}
		for _, rv := range t.Regions {
			if rv.Region == region {
				r.Cells[i] = makeCell(rv, t.Maintenance)
				break
			}
		}
		r.Cells[i].Region = region
	}
	r.Spark = sparkline(t.History)
	if t.SLO != nil {
		r.SLO = makeSLO(t.SLO)
	}
	return r
}

// underlying describes a maintenance target's verdict, which opens no
// incident but is still worth seeing (is it back yet?).
func underlying(t *exporter.TargetView, total, failing int) string {
	switch {
	case t.Verdict == "down" || failing > 0:
		return frac(failing, total) + " failing"
	case t.Verdict == "up":
		return "up"
	}
	return count(t.Reporting, "region", "regions") + " reporting"
}

func makeCell(rv cluster.RegionView, maint bool) cell {
	var c cell
	var b strings.Builder
	b.Grow(96)
	b.WriteString(rv.Region)
	b.WriteString(": ")
	switch {
	case rv.Agent == "":
		c = cell{Class: "nodata", Sym: "○", Text: "no data"}
		b.WriteString("no result yet")
		c.Title = b.String()
		return c
	case rv.Isolated:
		c = cell{Class: "nodata", Sym: "○", Text: "isolated"}
		b.WriteString("agent isolated, no vote; last ")
		b.WriteString(outcome(rv))
	case !rv.Fresh:
		c = cell{Class: "nodata", Sym: "○", Text: "stale " + human(rv.Age)}
		b.WriteString("stale, no vote; last ")
		b.WriteString(outcome(rv))
	case rv.Failing:
		c = cell{Class: "fail", Sym: "✕", Text: reasonText(rv.Reason, "failing")}
		b.WriteString("failing")
		if rv.Reason != "" {
			b.WriteString(" (" + rv.Reason + ")")
		}
	case !rv.OK:
		// Failed its last probe but below the failure threshold: the
		// region still votes up. Worth a glance, not a page.
		c = cell{Class: "pend", Sym: "!", Text: reasonText(rv.Reason, "failed once")}
		b.WriteString("last probe failed")
		if rv.Reason != "" {
			b.WriteString(" (" + rv.Reason + ")")
		}
		b.WriteString(", below the failure threshold: votes up")
	default:
		c = cell{Class: "up", Sym: "✓", Text: latency(rv.Latency)}
		b.WriteString("up")
	}
	b.WriteString(" · ")
	b.WriteString(latency(rv.Latency))
	b.WriteString(" · agent ")
	b.WriteString(rv.Agent)
	b.WriteString(" · ")
	b.WriteString(human(rv.Age))
	b.WriteString(" ago")
	if !rv.Assignee {
		b.WriteString(" · not a current assignee: no vote")
	}
	if maint {
		c.Class, c.Sym = "maint", "⚙"
		b.WriteString(" · in maintenance: opens no incident")
	}
	c.Title = b.String()
	return c
}

func outcome(rv cluster.RegionView) string {
	switch {
	case rv.Failing:
		return reasonText(rv.Reason, "failing")
	case !rv.OK:
		return reasonText(rv.Reason, "failed")
	}
	return "up"
}

func reasonText(reason, fallback string) string {
	if reason == "" {
		return fallback
	}
	return reason
}

func makeSLO(s *cluster.SLOStatus) *sloData {
	out := &sloData{
		Avail:     percent(s.Availability),
		Objective: percent(s.Objective),
	}
	rem := s.BudgetRemaining
	switch {
	case rem < 0:
		out.Class, out.Budget = "out", percent(-rem)+" overspent"
	case rem < 0.25:
		out.Class, out.Budget = "low", percent(rem)+" left"
	default:
		out.Class, out.Budget = "ok", percent(rem)+" left"
	}
	out.BarWidth = int(min(max(rem, 0), 1)*sloBarWidth + 0.5)
	out.Title = "objective " + out.Objective + " over " + human(s.Window) + "; down " + human(s.Downtime)
	if s.Observed < s.Window {
		out.Title += " of the " + human(s.Observed) + " observed"
	}
	return out
}

const sloBarWidth = 48

func incidents(ins []cluster.Incident, now time.Time) (open, recent []incidentRow, hidden int) {
	ins = slices.Clone(ins)
	// Newest first, whatever order the source keeps.
	slices.SortStableFunc(ins, func(a, b cluster.Incident) int { return b.StartedAt.Compare(a.StartedAt) })
	for i := range ins {
		in := &ins[i]
		if !in.Open() && len(recent) >= maxRecent {
			hidden++
			continue
		}
		ir := incidentRow{
			Target:      in.Target,
			Started:     clock(in.StartedAt, now),
			StartedISO:  iso(in.StartedAt),
			Detected:    clock(in.DetectedAt, now),
			DetectedISO: iso(in.DetectedAt),
			TTD:         "–",
			Regions:     strings.Join(in.Regions, ", "),
			Reason:      in.Reason,
			Flaps:       in.Flaps,
		}
		if !in.DetectedAt.IsZero() && !in.StartedAt.IsZero() {
			ir.TTD = human(in.TimeToDetect())
		}
		if in.Open() {
			ir.Ongoing = true
			ir.Duration = "ongoing " + human(now.Sub(in.StartedAt))
			open = append(open, ir)
			continue
		}
		ir.Duration = human(in.ResolvedAt.Sub(in.StartedAt))
		recent = append(recent, ir)
	}
	return open, recent, hidden
}

func groupMembers(ms []cluster.Member, selfID string) []regionMembers {
	ms = slices.Clone(ms)
	slices.SortFunc(ms, func(a, b cluster.Member) int {
		if c := strings.Compare(a.Region, b.Region); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	var out []regionMembers
	for _, m := range ms {
		if len(out) == 0 || out[len(out)-1].Region != m.Region {
			out = append(out, regionMembers{Region: m.Region})
		}
		g := &out[len(out)-1]
		md := memberData{Name: m.Name, State: m.State.String(), state: m.State, Isolated: m.Isolated,
			Self: m.Self || (selfID != "" && m.AgentID == selfID), ConfigDiffers: !m.SameConf && !m.Self}
		switch m.State {
		case cluster.Alive:
			g.Alive++
			md.Sym = "●"
		case cluster.Suspect:
			g.Suspect++
			md.Sym = "◐"
		case cluster.Dead:
			g.Dead++
			md.Sym = "✕"
		case cluster.Left:
			g.Left++
			md.Sym = "○"
		default:
			md.Sym = "?"
		}
		if m.Isolated {
			g.Isolated = true
		}
		var b strings.Builder
		b.WriteString(m.Name + ": " + m.State.String())
		if m.Addr != "" {
			b.WriteString(" · " + m.Addr)
		}
		if m.Version != "" {
			b.WriteString(" · " + m.Version)
		}
		b.WriteString(" · probes " + strconv.Itoa(m.Targets) + " targets")
		if md.ConfigDiffers {
			b.WriteString(" · target set differs from ours")
		}
		md.Title = b.String()
		g.Members = append(g.Members, md)
	}
	for i := range out {
		slices.SortStableFunc(out[i].Members, func(a, b memberData) int {
			return cmp.Compare(a.state, b.state) // alive, suspect, dead, left
		})
	}
	return out
}

// icons are the favicon per fleet state: a coloured dot, so a pinned tab
// says "down" without being looked at. data: URLs are allowed by the CSP.
var icons = map[string]template.URL{
	"down":    dot("%23d1242f"),
	"supp":    dot("%23bf8700"),
	"unknown": dot("%238c959f"),
	"up":      dot("%231a7f37"),
}

func dot(fill string) template.URL {
	return template.URL("data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'%3E%3Ccircle cx='8' cy='8' r='7' fill='" + fill + "'/%3E%3C/svg%3E")
}

// Formatting helpers.

func count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

func frac(a, b int) string { return strconv.Itoa(a) + "/" + strconv.Itoa(b) }

// human is a compact duration for ages: 850ms, 12s, 4m12s, 2h03m, 3d4h.
func human(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Second:
		return strconv.Itoa(int(d/time.Millisecond)) + "ms"
	case d < time.Minute:
		return strconv.Itoa(int(d/time.Second)) + "s"
	case d < time.Hour:
		m, s := int(d/time.Minute), int(d%time.Minute/time.Second)
		if s == 0 {
			return strconv.Itoa(m) + "m"
		}
		return strconv.Itoa(m) + "m" + strconv.Itoa(s) + "s"
	case d < 24*time.Hour:
		h, m := int(d/time.Hour), int(d%time.Hour/time.Minute)
		return strconv.Itoa(h) + "h" + pad2(m) + "m"
	}
	days, h := int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour)
	return strconv.Itoa(days) + "d" + strconv.Itoa(h) + "h"
}

func pad2(n int) string {
	if n < 10 {
		return "0" + strconv.Itoa(n)
	}
	return strconv.Itoa(n)
}

// latency is a probe time with two or three significant digits.
func latency(d time.Duration) string {
	switch {
	case d <= 0:
		return "0 ms"
	case d < 10*time.Millisecond:
		return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 1, 64) + " ms"
	case d < time.Second:
		return strconv.Itoa(int(d/time.Millisecond)) + " ms"
	}
	return strconv.FormatFloat(d.Seconds(), 'f', 2, 64) + " s"
}

// clock shows a time of day in UTC, with the date when it is not today.
func clock(t, now time.Time) string {
	if t.IsZero() {
		return "–"
	}
	t = t.UTC()
	switch {
	case t.YearDay() == now.YearDay() && t.Year() == now.Year():
		return t.Format("15:04:05")
	case t.Year() == now.Year():
		return t.Format("Jan 2 15:04")
	}
	return t.Format("2006-01-02 15:04")
}

func iso(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// percent formats a fraction with up to three decimals: 99.95%, 100%. It
// rounds down, so an availability of 99.9996% never reads as 100%.
func percent(f float64) string {
	s := strconv.FormatFloat(math.Floor(f*100_000+1e-6)/1000, 'f', 3, 64)
	s = strings.TrimRight(s, "0")
	s = strings.TrimSuffix(s, ".")
	return s + "%"
}
