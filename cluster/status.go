package cluster

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/vantage-probe/vantage/cluster/quorum"
)

// RegionView is one region's latest word on a target.
type RegionView struct {
	Region   string        `json:"region"`
	Agent    string        `json:"agent"`
	OK       bool          `json:"ok"`
	Failing  bool          `json:"failing"`
	Reason   string        `json:"reason,omitempty"`
	Latency  time.Duration `json:"latency_ns"`
	Age      time.Duration `json:"age_ns"` // since we received it
	Fresh    bool          `json:"fresh"`
	Assignee bool          `json:"assignee"` // from a current assignee (it votes)
	Isolated bool          `json:"isolated,omitempty"`
	// CertExpiry is the earliest NotAfter of the certificates the target
	// presented to this region (TLS probes; zero otherwise).
	CertExpiry time.Time `json:"cert_expiry,omitzero"`
}

// TargetStatus is the fleet's view of one target as this agent sees it.
type TargetStatus struct {
	Name        string              `json:"name"`
	Leader      string              `json:"leader"`
	IsLeader    bool                `json:"-"`
	Verdict     string              `json:"verdict"` // up, down, unknown
	Reason      string              `json:"verdict_reason"`
	Needed      int                 `json:"quorum"`
	Failing     []string            `json:"regions_failing"`
	Reporting   int                 `json:"regions_reporting"`
	Stale       []string            `json:"regions_stale,omitempty"`
	Maintenance bool                `json:"maintenance"`
	Assignment  map[string][]string `json:"assignment"` // region -> agent ids
	Regions     []RegionView        `json:"results"`
	Open        *Incident           `json:"open_incident,omitempty"`
	Since       time.Time           `json:"verdict_since,omitzero"`
	Updated     time.Time           `json:"verdict_updated,omitzero"` // when this agent evaluated or received the verdict
	SLO         *SLOStatus          `json:"slo,omitempty"`
	// Category is what the target's state asks of a human (down, failing
	// below quorum, unknown, maintenance, up): the page's and the API's
	// one rule.
	Category Category `json:"category"`
	// Leader-only counters, for metrics.
	Incidents uint64    `json:"-"`
	Flaps     uint64    `json:"-"`
	DownSince time.Time `json:"-"`
}

// SLOStatus is a target's time-based SLO as this agent knows it: the share
// of the window the fleet's verdict had it up, from the incident records
// (every agent keeps the fleet's), so every agent gives the same figure and
// nothing accrues only when someone looks.
type SLOStatus struct {
	Objective       float64       `json:"objective"`
	Window          time.Duration `json:"window_ns"`
	Observed        time.Duration `json:"observed_ns"`      // of the window: since this agent knew the target
	Downtime        time.Duration `json:"downtime_ns"`      // incidents' spans within the window
	Availability    float64       `json:"availability"`     // 1 - downtime/observed
	BudgetRemaining float64       `json:"budget_remaining"` // 1 untouched, 0 spent, negative overspent
}

// Statuses returns every target's status, sorted by name. Every agent can
// answer for the whole fleet: the verdict is the one its leader published,
// the results per region come from the shared observation table.
func (c *Cluster) Statuses() []TargetStatus {
	c.mu.Lock()
	names := make([]string, 0, len(c.targets))
	for n := range c.targets {
		names = append(names, n)
	}
	c.mu.Unlock()
	slices.Sort(names)
	return c.StatusesOf(names)
}

// StatusesOf returns the status of each named target, in the order given,
// skipping unknown names: a page of a large fleet costs its own size, not
// the fleet's.
func (c *Cluster) StatusesOf(names []string) []TargetStatus {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	sc := c.statusContextLocked(now)
	out := make([]TargetStatus, 0, len(names))
	for _, name := range names {
		if rec := c.targets[name]; rec != nil {
			out = append(out, c.statusLocked(rec, sc, now))
		}
	}
	return out
}

// Status returns one target's status.
func (c *Cluster) Status(name string) (TargetStatus, bool) {
	st := c.StatusesOf([]string{name})
	if len(st) == 0 {
		return TargetStatus{}, false
	}
	return st[0], true
}

// Category is what a target's state asks of a human. Lists show them in
// Rank order, problems first; the zero value is unknown.
type Category uint8

const (
	CatUnknown     Category = iota // no verdict, or too few regions reporting
	CatDown                        // the quorum says down
	CatFailing                     // up, but a region fails below quorum
	CatMaintenance                 // in a maintenance window
	CatUp
	NumCategories = iota
)

var categoryNames = [NumCategories]string{"unknown", "down", "failing", "maintenance", "up"}

// categoryRank orders lists: what needs a human first.
var categoryRank = [NumCategories]int{CatDown: 0, CatFailing: 1, CatUnknown: 2, CatMaintenance: 3, CatUp: 4}

// Rank is the category's place in lists, 0 first.
func (k Category) Rank() int {
	if int(k) < len(categoryRank) {
		return categoryRank[k]
	}
	return categoryRank[CatUnknown]
}

func (k Category) String() string {
	if int(k) < len(categoryNames) {
		return categoryNames[k]
	}
	return "unknown"
}

// MarshalText writes the category's name (JSON: "down", not 0).
func (k Category) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText reads a category's name.
func (k *Category) UnmarshalText(b []byte) error {
	c, ok := ParseCategory(string(b))
	if !ok {
		return fmt.Errorf("unknown target category %q (want one of %s)", b, strings.Join(categoryNames[:], ", "))
	}
	*k = c
	return nil
}

// ParseCategory is String's inverse.
func ParseCategory(s string) (Category, bool) {
	i := slices.Index(categoryNames[:], s)
	return Category(max(i, 0)), i >= 0
}

// categorize is the one rule behind the page's rows, the API's state
// filter and their counts. freshFailing: some region's fresh, non-isolated
// result is failing (a vote or not).
func categorize(maint bool, state quorum.State, known bool, failingVotes int, freshFailing bool) Category {
	switch {
	case maint:
		return CatMaintenance
	case !known:
		return CatUnknown
	case state == quorum.Down:
		return CatDown
	case state == quorum.Up && (failingVotes > 0 || freshFailing):
		return CatFailing
	case state == quorum.Up:
		return CatUp
	}
	return CatUnknown
}

// Brief is a target's name and category: what a list needs to order and
// count the whole fleet, in a few dozen bytes.
type Brief struct {
	Name     string
	Category Category
}

// Briefs returns every target's brief, problems first, then by name.
func (c *Cluster) Briefs() []Brief {
	now := c.now()
	c.mu.Lock()
	out := make([]Brief, 0, len(c.targets))
	for name, rec := range c.targets {
		out = append(out, Brief{Name: name, Category: c.categoryLocked(rec, now)})
	}
	c.mu.Unlock()
	slices.SortFunc(out, func(a, b Brief) int {
		if a.Category != b.Category {
			return a.Category.Rank() - b.Category.Rank()
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out
}

func (c *Cluster) categoryLocked(rec *targetRec, now time.Time) Category {
	v := rec.verdict
	if v == nil {
		return categorize(c.cfg.InMaintenance != nil && c.cfg.InMaintenance(rec.spec.Name, now), quorum.Unknown, false, 0, false)
	}
	return categorize(v.maint, v.State(), true, len(v.lists.failing), c.freshFailingLocked(rec, now))
}

func (c *Cluster) freshFailingLocked(rec *targetRec, now time.Time) bool {
	for _, o := range rec.obs {
		if o.Failing && !o.Isolated && c.freshLocked(o, now) {
			return true
		}
	}
	return false
}

// LeaderVerdict is one verdict this agent exports as the target's leader:
// what /metrics needs, in a tenth of a TargetStatus.
type LeaderVerdict struct {
	Name        string
	Down        bool
	Unknown     bool
	Maintenance bool
	Failing     int // regions voting failing
	Reporting   int // regions with a fresh vote
	Needed      int // effective quorum
	Incidents   uint64
	Flaps       uint64
	DownSince   time.Time // start of the open incident; zero when none
	SLO         SLOStatus
}

// LeaderVerdicts returns the verdicts this agent holds as leader, sorted by
// name, for /metrics: the verdicts the leader last evaluated (every
// EvalEvery and on news) and acts on, so that the metrics agree with the
// incidents. Leadership is checked again at the read, not only at the last
// evaluation: an agent that stopped leading a target a moment ago (a
// newcomer took it) must not export it until its next tick.
func (c *Cluster) LeaderVerdicts() []LeaderVerdict {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	lead := c.leaderViewLocked(now).l
	byTarget := c.incidentsByTargetLocked()
	out := make([]LeaderVerdict, 0, c.nLeading)
	for name, rec := range c.targets {
		ls, v := rec.lead, rec.verdict
		if ls == nil || v == nil || v.leader != c.cfg.AgentID || !lead.mine(name) {
			continue
		}
		lv := LeaderVerdict{
			Name:        name,
			Down:        v.State() == quorum.Down,
			Unknown:     v.State() == quorum.Unknown,
			Maintenance: v.maint,
			Failing:     len(v.lists.failing),
			Reporting:   len(v.lists.failing) + len(v.lists.passing),
			Needed:      int(v.needed),
			Incidents:   ls.incidents,
			Flaps:       ls.flaps,
			SLO:         c.sloLocked(rec, byTarget[name], now),
		}
		if ls.open != nil {
			lv.DownSince = ls.open.StartedAt
		}
		out = append(out, lv)
	}
	slices.SortFunc(out, func(a, b LeaderVerdict) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// statusContext is what every target's status reads, computed once per
// call: per target it made a page of a 50k-target fleet quadratic.
type statusContext struct {
	lead     leaders
	regions  []string
	byTarget map[string][]*Incident
}

func (c *Cluster) statusContextLocked(now time.Time) *statusContext {
	return &statusContext{lead: c.leaderViewLocked(now).l, regions: c.knownRegionsLocked(), byTarget: c.incidentsByTargetLocked()}
}

func (c *Cluster) statusLocked(rec *targetRec, sc *statusContext, now time.Time) TargetStatus {
	t, name := rec.spec, rec.spec.Name
	lead := &sc.lead
	st := TargetStatus{
		Name:       name,
		Leader:     lead.leader(name),
		IsLeader:   lead.mine(name),
		Verdict:    quorum.Unknown.String(),
		Reason:     "no verdict from the target's leader yet",
		Assignment: c.assign.Owners(name),
	}
	if rec.verdict != nil {
		v := rec.verdict.full(rec.spec.Name)
		st.Leader = v.Leader
		st.Verdict = v.State.String()
		st.Reason = v.Reason()
		st.Needed, st.Failing, st.Reporting, st.Stale = v.Needed, v.Failing, v.Reporting, v.Stale
		st.Maintenance = v.Maintenance
		st.Since = v.Since()
		st.Updated = v.Updated()
	}
	voters := map[string]bool{}
	for _, ids := range c.votersLocked(name, now) {
		for _, id := range ids {
			voters[id] = true
		}
	}
	best := map[string]RegionView{}
	for _, o := range rec.obs {
		rv := RegionView{Region: o.Region, Agent: o.AgentID, OK: o.OK, Failing: o.Failing, Reason: o.Reason,
			Latency: o.Latency, Age: now.Sub(o.Received()), Fresh: c.freshLocked(o, now),
			Assignee: voters[o.AgentID], Isolated: o.Isolated, CertExpiry: o.CertExpiry}
		cur, ok := best[o.Region]
		// Prefer a voting, fresh, then most recent observation per region.
		if !ok || rank(rv) > rank(cur) || (rank(rv) == rank(cur) && rv.Age < cur.Age) {
			best[o.Region] = rv
		}
	}
	for _, r := range effectiveRegions(t.Regions, sc.regions) {
		if rv, ok := best[r]; ok {
			st.Regions = append(st.Regions, rv)
		} else {
			st.Regions = append(st.Regions, RegionView{Region: r})
		}
	}
	ins := sc.byTarget[name]
	if ls := rec.lead; ls != nil && st.IsLeader {
		st.Incidents, st.Flaps = ls.incidents, ls.flaps
	}
	for i := len(ins) - 1; i >= 0; i-- {
		if ins[i].Open() {
			cp := *ins[i]
			st.Open = &cp
			st.DownSince = cp.StartedAt
			break
		}
	}
	if st.Failing == nil {
		st.Failing = []string{} // JSON: [], not null
	}
	slo := c.sloLocked(rec, ins, now)
	st.SLO = &slo
	st.Category = c.categoryLocked(rec, now)
	return st
}

// incidentsByTargetLocked groups the incident records by target, oldest
// first.
func (c *Cluster) incidentsByTargetLocked() map[string][]*Incident {
	out := make(map[string][]*Incident)
	for _, in := range c.incidents {
		out[in.Target] = append(out[in.Target], in)
	}
	return out
}

// sloLocked computes target t's SLO over the window from its incidents:
// downtime is the part of each incident (first failed probe to resolution,
// an open one to now) within the window and within what this agent has
// observed; availability is 1 - downtime / observed.
func (c *Cluster) sloLocked(rec *targetRec, ins []*Incident, now time.Time) SLOStatus {
	s := SLOStatus{Objective: rec.spec.SLOObjective, Window: c.cfg.SLOWindow}
	if s.Objective <= 0 {
		s.Objective = c.cfg.SLOObjective
	}
	from := now.Add(-s.Window)
	if seen := time.Unix(0, rec.firstSeen); seen.After(from) {
		from = seen
	}
	s.Observed = max(now.Sub(from), 0)
	for _, in := range ins {
		start, end := in.StartedAt, in.ResolvedAt
		if end.IsZero() {
			end = now
		}
		if start.Before(from) {
			start = from
		}
		if end.After(start) {
			s.Downtime += end.Sub(start)
		}
	}
	s.Downtime = min(s.Downtime, s.Observed)
	s.Availability = 1
	if s.Observed > 0 {
		s.Availability = 1 - float64(s.Downtime)/float64(s.Observed)
	}
	s.BudgetRemaining = 1
	if budget := 1 - s.Objective; budget > 0 {
		s.BudgetRemaining = 1 - (1-s.Availability)/budget
	}
	return s
}

func rank(rv RegionView) int {
	r := 0
	if rv.Assignee {
		r += 2
	}
	if rv.Fresh {
		r++
	}
	return r
}

// AssignedCount is how many targets this agent probes.
func (c *Cluster) AssignedCount() int { return int(c.m.assigned.Load()) }

// LedIncident is the latest incident of a target this agent leads, with
// the verdict as the leader holds it now: what the agent's direct alerts
// are made of.
type LedIncident struct {
	Incident    Incident
	Maintenance bool
	Failing     []string // regions voting failing now
	Reporting   int
	Needed      int
}

// LedIncidents returns, for each target this agent leads, its open
// incident, or its latest one if that resolved within resolvedWithin (so a
// resolution is re-sent for a while, as Prometheus does), sorted by target.
func (c *Cluster) LedIncidents(resolvedWithin time.Duration) []LedIncident {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.nLeading == 0 {
		return nil
	}
	lead := c.leaderViewLocked(now).l
	byTarget := c.incidentsByTargetLocked()
	out := make([]LedIncident, 0, 4)
	for name, rec := range c.targets {
		ls := rec.lead
		if ls == nil || !lead.mine(name) {
			continue // not ours, or no longer: the new leader sends it
		}
		in := ls.open
		if ins := byTarget[name]; in == nil && len(ins) > 0 {
			in = ins[len(ins)-1]
		}
		if in == nil || (!in.Open() && now.Sub(in.ResolvedAt) > resolvedWithin) {
			continue
		}
		li := LedIncident{Incident: *in}
		li.Incident.Regions = slices.Clone(in.Regions)
		li.Incident.QuorumRegions = slices.Clone(in.QuorumRegions)
		if rec.verdict != nil {
			v := rec.verdict.full(rec.spec.Name)
			li.Maintenance, li.Failing, li.Reporting, li.Needed = v.Maintenance, slices.Clone(v.Failing), v.Reporting, v.Needed
		}
		out = append(out, li)
	}
	slices.SortFunc(out, func(a, b LedIncident) int { return strings.Compare(a.Incident.Target, b.Incident.Target) })
	return out
}
