package page

import (
	"cmp"
	"html/template"
	"math"
	"net/url"
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
	// Shown says which part of the fleet the grid lists: a filter, and
	// the rows beyond the page's bound.
	Shown  shown
	Open   []incidentRow
	Recent []incidentRow
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

// shown describes the grid's slice of the fleet.
type shown struct {
	Filter   string // "target web", "state down": what the URL asked for; "" for everything
	From, To int    // 1-based range of the rows listed, of Matching
	Matching int    // targets the filter selects
	// More is how many matching targets follow the listed ones; NextURL
	// and APIURL show them on the page and as JSON.
	More            int
	NextURL, APIURL string
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
	// Cert is the earliest certificate's days left over the regions
	// ("cert 9d"); CertClass colours it (ok, warn under min_days_left,
	// err expired); "" when the target showed no certificate.
	Cert, CertClass, CertTitle string
	Spark                      spark
	SLO                        *sloData
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
	ID          string
	Link        string // the incident's record: api/v1/incidents/ID (vantage incident ID prints its timeline)
	Started     string
	StartedISO  string
	Detected    string
	DetectedISO string
	TTD         string
	Duration    string
	Ongoing     bool
	Regions     string // failing when the quorum was reached
	Also        string // failing at another time during the incident
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

func build(src exporter.Source, opts Options, now time.Time, q exporter.TargetQuery) *pageData {
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
	members := src.Members()
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

	p := src.Targets(q)
	d.Regions = regionsOf(p.Views, members)
	d.Rows = make([]row, 0, len(p.Views))
	for i := range p.Views {
		d.Rows = append(d.Rows, makeRow(&p.Views[i], d.Regions, self.AgentID, now))
	}
	d.Sum = summarize(p.Counts)
	d.Icon = icons[d.Sum.Class]
	d.Shown = describeShown(q, p, len(d.Rows))

	d.Open, d.Recent, d.RecentHidden = incidents(src.Incidents(), now)
	d.MemberCount = len(members)
	d.Members = groupMembers(members, self.AgentID)
	return d
}

// regionsOf is the sorted union of the regions of the listed targets'
// results and of the fleet's members: the grid's columns stay the same
// whichever page of targets is listed.
func regionsOf(ts []exporter.TargetView, ms []cluster.Member) []string {
	var out []string
	add := func(r string) {
		if r != "" && !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	for i := range ts {
		for _, rv := range ts[i].Regions {
			add(rv.Region)
		}
	}
	for _, m := range ms {
		if m.State != cluster.Left {
			add(m.Region)
		}
	}
	slices.Sort(out)
	return out
}

// describeShown says what the grid lists of the fleet, and where the rest is.
func describeShown(q exporter.TargetQuery, p exporter.TargetPage, listed int) shown {
	sh := shown{Matching: p.Total}
	var filter []string
	v := url.Values{}
	if q.Name != "" {
		filter = append(filter, "target "+q.Name)
		v.Set("name", q.Name)
	}
	if len(q.Categories) > 0 {
		names := make([]string, len(q.Categories))
		for i, c := range q.Categories {
			names[i] = c.String()
		}
		filter = append(filter, "state "+strings.Join(names, ", "))
		v.Set("state", strings.Join(names, ","))
	}
	sh.Filter = strings.Join(filter, ", ")
	if listed > 0 {
		sh.From, sh.To = q.Offset+1, q.Offset+listed
	}
	if more := p.Total - q.Offset - listed; more > 0 {
		sh.More = more
		v.Set("offset", strconv.Itoa(q.Offset+listed))
		sh.NextURL = "?" + v.Encode()
		sh.APIURL = "api/v1/targets?" + v.Encode()
	}
	return sh
}

func summarize(counts [cluster.NumCategories]int) summary {
	s := summary{
		Down: counts[cluster.CatDown], Suppressed: counts[cluster.CatFailing], Unknown: counts[cluster.CatUnknown],
		Maintenance: counts[cluster.CatMaintenance], Up: counts[cluster.CatUp],
	}
	for _, n := range counts {
		s.Total += n
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
	switch t.Category {
	case cluster.CatMaintenance:
		r.cat, r.Verdict = catMaint, "MAINT"
		r.Detail = "in maintenance, " + underlying(t, total, failing)
	case cluster.CatDown:
		r.cat, r.Verdict = catDown, "DOWN"
		r.Detail = frac(failing, total) + " failing, quorum " + strconv.Itoa(t.Needed)
	case cluster.CatFailing:
		r.cat, r.Verdict = catSuppressed, "UP"
		r.Detail = frac(max(failing, 1), total) + " failing, quorum " + strconv.Itoa(t.Needed)
	case cluster.CatUp:
		r.cat, r.Verdict = catUp, "UP"
		r.Detail = frac(t.Reporting, total) + " reporting"
	default:
		r.cat, r.Verdict = catUnknown, "UNKNOWN"
		if t.Verdict == "" || t.Leader == "" {
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
	r.Cert, r.CertClass, r.CertTitle = certDays(t, now)
	r.Spark = sparkline(t.History)
	if t.SLO != nil {
		r.SLO = makeSLO(t.SLO)
	}
	return r
}

// certDays describes the earliest certificate expiry any region saw.
func certDays(t *exporter.TargetView, now time.Time) (text, class, title string) {
	var exp time.Time
	var region string
	for _, rv := range t.Regions {
		if !rv.CertExpiry.IsZero() && (exp.IsZero() || rv.CertExpiry.Before(exp)) {
			exp, region = rv.CertExpiry, rv.Region
		}
	}
	if exp.IsZero() {
		return "", "", ""
	}
	left := exp.Sub(now)
	days := int(math.Floor(left.Hours() / 24))
	title = "earliest certificate expires " + exp.UTC().Format("2006-01-02 15:04 UTC") + " (seen from " + region + ")"
	if t.CertWarnDays > 0 {
		title += "; warns under " + count(t.CertWarnDays, "day", "days")
	}
	switch {
	case left <= 0:
		return "cert expired", "err", title
	case t.CertWarnDays > 0 && days < t.CertWarnDays:
		return "cert " + strconv.Itoa(days) + "d", "warn", title
	}
	return "cert " + strconv.Itoa(days) + "d", "ok", title
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
		// The regions whose failures made the quorum, apart from any that
		// failed at some other time during the incident.
		quorum := in.QuorumRegions
		if len(quorum) == 0 {
			quorum = in.Regions // a record from an agent that predates QuorumRegions
		}
		var also []string
		for _, r := range in.Regions {
			if !slices.Contains(quorum, r) {
				also = append(also, r)
			}
		}
		ir := incidentRow{
			Target:      in.Target,
			ID:          in.ID,
			Link:        "api/v1/incidents/" + url.PathEscape(in.ID),
			Started:     clock(in.StartedAt, now),
			StartedISO:  iso(in.StartedAt),
			Detected:    clock(in.DetectedAt, now),
			DetectedISO: iso(in.DetectedAt),
			TTD:         "–",
			Regions:     strings.Join(quorum, ", "),
			Also:        strings.Join(also, ", "),
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
