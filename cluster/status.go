package cluster

import (
	"slices"
	"sort"
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
	// Leader-only counters, for metrics.
	Incidents uint64    `json:"-"`
	Flaps     uint64    `json:"-"`
	DownSince time.Time `json:"-"`
}

// Statuses returns every target's status, sorted by name. Every agent can
// answer for the whole fleet: verdicts are recomputed from the shared table;
// only the leader's count for metrics (IsLeader).
func (c *Cluster) Statuses() []TargetStatus {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	lead := c.leadersLocked(now)
	out := make([]TargetStatus, 0, len(c.targets))
	for name, t := range c.targets {
		out = append(out, c.statusLocked(name, t, &lead, now))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Status returns one target's status.
func (c *Cluster) Status(name string) (TargetStatus, bool) {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.targets[name]
	if !ok {
		return TargetStatus{}, false
	}
	lead := c.leadersLocked(now)
	return c.statusLocked(name, t, &lead, now), true
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
}

// LeaderVerdicts returns the verdicts this agent holds as leader, sorted by
// name, for /metrics: the verdicts the leader last evaluated (every
// EvalEvery and on news) and acts on, so that the metrics agree with the
// incidents. Re-evaluating every target per scrape, with the per-region
// views Statuses builds for the API, cost 22 MB of garbage and most of a
// scrape's time at 10k targets.
//
// Leadership is checked again at the read, not only at the last
// evaluation: an agent that stopped leading a target a moment ago (a
// newcomer took it) must not export it until its next tick.
func (c *Cluster) LeaderVerdicts() []LeaderVerdict {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	lead := c.leadersLocked(now)
	out := make([]LeaderVerdict, 0, len(c.verdicts))
	for name, vs := range c.verdicts {
		if _, ok := c.targets[name]; !ok || !lead.mine(name) {
			continue
		}
		v := LeaderVerdict{
			Name:        name,
			Down:        vs.v.State == quorum.Down,
			Unknown:     vs.v.State == quorum.Unknown,
			Maintenance: vs.maintenance,
			Failing:     len(vs.v.Failing),
			Reporting:   vs.v.Reporting,
			Needed:      vs.v.Needed,
			Incidents:   vs.incidents,
			Flaps:       vs.flaps,
		}
		if vs.open != nil {
			v.DownSince = vs.open.StartedAt
		}
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b LeaderVerdict) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func (c *Cluster) statusLocked(name string, t TargetSpec, lead *leaders, now time.Time) TargetStatus {
	pol := c.policyLocked(t, now)
	v := quorum.Evaluate(c.observationsLocked(name), pol, now)
	st := TargetStatus{
		Name:        name,
		Leader:      lead.leader(name),
		IsLeader:    lead.mine(name),
		Verdict:     v.State.String(),
		Reason:      v.Reason(),
		Needed:      v.Needed,
		Failing:     v.Failing,
		Reporting:   v.Reporting,
		Stale:       v.Stale,
		Maintenance: c.cfg.InMaintenance(name, now),
		Assignment:  c.assign.Owners(name),
	}
	voters := map[string]bool{}
	for _, ids := range pol.Assignees {
		for _, id := range ids {
			voters[id] = true
		}
	}
	best := map[string]RegionView{}
	for _, o := range c.table[name] {
		rv := RegionView{Region: o.Region, Agent: o.AgentID, OK: o.OK, Failing: o.Failing, Reason: o.Reason,
			Latency: o.Latency, Age: now.Sub(o.Received), Fresh: c.freshLocked(o, now),
			Assignee: voters[o.AgentID], Isolated: o.Isolated}
		cur, ok := best[o.Region]
		// Prefer a voting, fresh, then most recent observation per region.
		if !ok || rank(rv) > rank(cur) || (rank(rv) == rank(cur) && rv.Age < cur.Age) {
			best[o.Region] = rv
		}
	}
	for _, r := range pol.Regions {
		if rv, ok := best[r]; ok {
			st.Regions = append(st.Regions, rv)
		} else {
			st.Regions = append(st.Regions, RegionView{Region: r})
		}
	}
	if vs := c.verdicts[name]; vs != nil {
		st.Since = c.timeOf(vs.since)
		st.Incidents = vs.incidents
		st.Flaps = vs.flaps
		if vs.open != nil {
			cp := *vs.open
			st.Open = &cp
			st.DownSince = vs.open.StartedAt
		}
	} else {
		for i := len(c.incidents) - 1; i >= 0; i-- {
			if in := c.incidents[i]; in.Target == name && in.Open() {
				cp := *in
				st.Open = &cp
				break
			}
		}
	}
	return st
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
	if len(c.verdicts) == 0 {
		return nil
	}
	lead := c.leadersLocked(now)
	latest := make(map[string]*Incident)
	for _, in := range c.incidents {
		if _, led := c.verdicts[in.Target]; !led {
			continue
		}
		if cur := latest[in.Target]; cur == nil || !in.StartedAt.Before(cur.StartedAt) {
			latest[in.Target] = in
		}
	}
	out := make([]LedIncident, 0, len(latest))
	for name, vs := range c.verdicts {
		if !lead.mine(name) {
			continue // no longer ours: the new leader sends it
		}
		in := vs.open
		if in == nil {
			in = latest[name]
		}
		if in == nil || (!in.Open() && now.Sub(in.ResolvedAt) > resolvedWithin) {
			continue
		}
		li := LedIncident{Incident: *in, Maintenance: vs.maintenance, Failing: append([]string(nil), vs.v.Failing...),
			Reporting: vs.v.Reporting, Needed: vs.v.Needed}
		li.Incident.Regions = append([]string(nil), in.Regions...)
		out = append(out, li)
	}
	slices.SortFunc(out, func(a, b LedIncident) int { return strings.Compare(a.Incident.Target, b.Incident.Target) })
	return out
}
