package cluster

import (
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vantage-probe/vantage/cluster/quorum"
)

// Incident is one quorum-confirmed outage of one target.
type Incident struct {
	ID         string    `json:"id"` // target + "@" + started unix ms: same on every agent
	Target     string    `json:"target"`
	StartedAt  time.Time `json:"started_at"`                    // first failed observation in any region
	ConfirmAt  time.Time `json:"confirm_requested_at,omitzero"` // first confirmation request sent (zero: none)
	QuorumAt   time.Time `json:"quorum_at"`                     // the leader saw enough regions failing
	DetectedAt time.Time `json:"detected_at"`                   // verdict exported (down)
	ResolvedAt time.Time `json:"resolved_at,omitzero"`          // verdict back up; zero while open
	Regions    []string  `json:"regions"`                       // regions that saw it failing at any time during it
	// QuorumRegions are the regions failing when the quorum was reached:
	// the ones that made it an incident.
	QuorumRegions []string `json:"quorum_regions"`
	Leader        string   `json:"leader"`           // agent that declared it
	Reason        string   `json:"reason,omitempty"` // a failing region's reason
	Flaps         int      `json:"flaps"`            // times it came back up and failed again before it resolved
	// AlertedAt is when a leader first sent the incident's alert to
	// Alertmanager (zero: never, e.g. no [alerting]): any later leader may
	// then send its end, and only then.
	AlertedAt time.Time `json:"alerted_at,omitzero"`
	// FirstFailures is when each region that failed during the incident
	// first saw the target fail (its failure streak's first failed probe,
	// dated by the leader's receipt time less the streak's age), and why:
	// the earliest known per region, oldest first.
	FirstFailures []RegionFailure `json:"first_failures,omitempty"`
	// LeaderChanges are the agents that took the incident over from the
	// one that declared it (Leader), each when it first did: the target's
	// leader died, left or lost the target to a newcomer.
	LeaderChanges []LeaderChange `json:"leader_changes,omitempty"`
}

// LeaderChange is an agent taking over an open incident.
type LeaderChange struct {
	Agent string    `json:"agent"`
	At    time.Time `json:"at"`
}

// mergeLeaders keeps each agent's earliest takeover, oldest first.
func mergeLeaders(a, b []LeaderChange) []LeaderChange {
	out := slices.Clone(a)
	for _, l := range b {
		i := slices.IndexFunc(out, func(m LeaderChange) bool { return m.Agent == l.Agent })
		switch {
		case i < 0:
			out = append(out, l)
		case l.At.Before(out[i].At):
			out[i] = l
		}
	}
	slices.SortFunc(out, func(x, y LeaderChange) int {
		if c := x.At.Compare(y.At); c != 0 {
			return c
		}
		return strings.Compare(x.Agent, y.Agent)
	})
	return out
}

// RegionFailure is one region's first failed probe of an incident.
type RegionFailure struct {
	Region string    `json:"region"`
	At     time.Time `json:"at"`
	Reason string    `json:"reason,omitempty"`
}

// regionFailuresLocked is each region's first failed probe of target's
// current streak, from the fresh results of the observation table.
func (c *Cluster) regionFailuresLocked(target string, now time.Time) []RegionFailure {
	var out []RegionFailure
	for _, o := range c.obsLocked(target) {
		if o.OK || o.Isolated || !c.freshLocked(o, now) {
			continue
		}
		out = mergeFailures(out, []RegionFailure{{Region: o.Region, At: o.Received().Add(-o.FailingFor), Reason: o.Reason}})
	}
	return out
}

// mergeFailures keeps each region's earliest failure, oldest first (then by
// region): merging in any order converges.
func mergeFailures(a, b []RegionFailure) []RegionFailure {
	out := slices.Clone(a)
	for _, f := range b {
		i := slices.IndexFunc(out, func(g RegionFailure) bool { return g.Region == f.Region })
		switch {
		case i < 0:
			out = append(out, f)
		case f.At.Before(out[i].At) || (f.At.Equal(out[i].At) && f.Reason < out[i].Reason):
			out[i] = f
		}
	}
	slices.SortFunc(out, func(x, y RegionFailure) int {
		if c := x.At.Compare(y.At); c != 0 {
			return c
		}
		return strings.Compare(x.Region, y.Region)
	})
	return out
}

// Open reports whether the incident is unresolved.
func (i *Incident) Open() bool { return i.ResolvedAt.IsZero() }

// TimeToDetect is DetectedAt - StartedAt.
func (i *Incident) TimeToDetect() time.Duration { return i.DetectedAt.Sub(i.StartedAt) }

// incidentStep is what one evaluation did to a target's incidents.
type incidentStep struct {
	events  []Event
	changed []*Incident // to gossip
}

// stepIncidentLocked advances target t's incident by verdict v: open one
// when the quorum calls the target down (not in maintenance, and only
// once the agent holds a peer's state: a fresh agent must not open
// incidents from half a picture); count a flap when it goes down again
// before the resolve hold ends (a flapping target makes one incident, not
// ten); record regions that join; resolve it once the quorum has seen the
// target up for a whole hold (its end is when it came back, not when the
// hold ended).
func (c *Cluster) stepIncidentLocked(t TargetSpec, ls *leaderState, v *quorum.Verdict, maint bool, now time.Time) incidentStep {
	var step incidentStep
	if ls.open == nil {
		// Another agent that led this target a moment ago (membership views
		// differ briefly during churn) may already have opened it.
		ls.open = c.openIncidentLocked(t.Name)
	}
	var takenOver *Incident
	if in := ls.open; in != nil && in.Leader != c.cfg.AgentID &&
		!slices.ContainsFunc(in.LeaderChanges, func(l LeaderChange) bool { return l.Agent == c.cfg.AgentID }) {
		// We continue an incident another agent declared.
		in.LeaderChanges = mergeLeaders(in.LeaderChanges, []LeaderChange{{Agent: c.cfg.AgentID, At: now}})
		takenOver = in
	}
	switch {
	case v.State == quorum.Down && ls.open == nil && !maint && c.synced.Load():
		started := localClock.Time(ls.firstFail)
		if started.IsZero() {
			started = now
		}
		in := &Incident{
			ID:            t.Name + "@" + strconv.FormatInt(started.UnixMilli(), 10),
			Target:        t.Name,
			StartedAt:     started,
			ConfirmAt:     localClock.Time(ls.confirmAt),
			QuorumAt:      now,
			DetectedAt:    c.now(),
			Regions:       slices.Clone(v.Failing),
			QuorumRegions: slices.Clone(v.Failing),
			Leader:        c.cfg.AgentID,
			Reason:        c.failingReasonLocked(t.Name),
			FirstFailures: c.regionFailuresLocked(t.Name, now),
		}
		if !in.ConfirmAt.IsZero() && in.ConfirmAt.Before(in.StartedAt) {
			// Asked a moment after the first failure, but the two
			// instants come from different messages' receipt times:
			// the order is known, the estimate is clamped to it.
			in.ConfirmAt = in.StartedAt
		}
		ls.open, ls.upSince = in, 0
		ls.incidents++
		c.addIncidentLocked(in)
		c.m.incidents.Inc()
		c.m.detection.Update(in.TimeToDetect().Seconds())
		step.changed = append(step.changed, in)
		step.events = append(step.events, Event{At: now, Kind: "incident_open", Target: t.Name,
			Detail: v.Reason(), Elapsed: in.TimeToDetect(), Reason: in.Reason})
	case v.State == quorum.Down && ls.open != nil:
		changed := false
		if ls.upSince != 0 {
			ls.upSince = 0
			ls.open.Flaps++
			changed = true
		}
		if merged := mergeRegions(ls.open.Regions, v.Failing); len(merged) != len(ls.open.Regions) {
			ls.open.Regions = merged
			changed = true
		}
		// A region that joins the failure: its first failed probe. (Not
		// on a flap: that is the same incident's later streak.)
		if ff := mergeFailures(ls.open.FirstFailures, c.regionFailuresLocked(t.Name, now)); len(ff) != len(ls.open.FirstFailures) {
			ls.open.FirstFailures = ff
			changed = true
		}
		if ls.open.ConfirmAt.IsZero() && ls.confirmAt != 0 {
			ls.open.ConfirmAt = localClock.Time(ls.confirmAt)
			if ls.open.ConfirmAt.Before(ls.open.StartedAt) {
				ls.open.ConfirmAt = ls.open.StartedAt
			}
			changed = true
		}
		if changed {
			step.changed = append(step.changed, ls.open)
		}
	case v.State == quorum.Up && ls.open != nil && ls.upSince == 0:
		ls.upSince = localClock.Stamp(now)
	case v.State == quorum.Up && ls.open != nil && now.Sub(localClock.Time(ls.upSince)) >= resolveHold(t):
		ls.open.ResolvedAt = localClock.Time(ls.upSince)
		ls.upSince = 0
		step.changed = append(step.changed, ls.open)
		step.events = append(step.events, Event{At: now, Kind: "incident_resolved", Target: t.Name,
			Detail: v.Reason(), Elapsed: ls.open.ResolvedAt.Sub(ls.open.StartedAt)})
		ls.open = nil
		ls.flaps++
		c.foldResolvedLocked(t.Name)
	}
	if takenOver != nil && !slices.Contains(step.changed, takenOver) {
		step.changed = append(step.changed, takenOver)
	}
	return step
}

// maxIncidents bounds the incident history each agent keeps.
const maxIncidents = 1000

func (c *Cluster) addIncidentLocked(in *Incident) {
	c.incidentGen.Add(1)
	c.incidents = append(c.incidents, in)
	if len(c.incidents) > maxIncidents {
		c.incidents = append([]*Incident(nil), c.incidents[len(c.incidents)-maxIncidents:]...)
	}
}

func (c *Cluster) openIncidentLocked(target string) *Incident {
	for i := len(c.incidents) - 1; i >= 0; i-- {
		if in := c.incidents[i]; in.Target == target && in.Open() {
			return in
		}
	}
	return nil
}

// mergeIncident folds a gossiped incident record into ours: a new leader
// continues it, and every agent can show it. Two agents that both believed
// they led the target during churn may open one each; the open incident with
// the smaller ID wins everywhere, so the fleet converges on one.
func (c *Cluster) mergeIncident(in *Incident) {
	if in.ID == "" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if in.Open() {
		if mine := c.openIncidentLocked(in.Target); mine != nil && mine.ID != in.ID {
			if in.ID > mine.ID {
				return // ours wins; the other side will drop theirs
			}
			c.dropIncidentLocked(mine.ID)
			cp := *in
			c.addIncidentLocked(&cp)
			if ls := c.leadingLocked(in.Target); ls != nil && ls.open == mine {
				ls.open = &cp
			}
			return
		}
	}
	for _, have := range c.incidents {
		if have.ID == in.ID {
			resolved := have.ResolvedAt
			have.merge(in)
			c.incidentGen.Add(1)
			if !have.ResolvedAt.Equal(resolved) {
				c.foldResolvedLocked(in.Target)
			}
			return
		}
	}
	cp := *in
	c.addIncidentLocked(&cp)
	sort.SliceStable(c.incidents, func(i, j int) bool { return c.incidents[i].StartedAt.Before(c.incidents[j].StartedAt) })
	if !cp.Open() {
		c.foldResolvedLocked(in.Target)
	}
}

// foldResolvedLocked folds target's resolved incidents that overlap in time
// into one: they are one outage, declared by two leaders that could not
// hear each other (a region cut off one way still leads until it is told
// it is doubted, and nobody hears the incident it opens meanwhile). The
// smaller ID (the earlier start) stands for both everywhere, as for open
// ones, with the other's facts and the later resolution; every agent folds
// the same pair the same way, so the fleet converges on one record. It
// runs only when one of target's incidents resolved or arrived resolved: a
// push/pull merges every incident again, mostly to no change.
func (c *Cluster) foldResolvedLocked(target string) {
	var resolved []*Incident // target's: usually one or two
	for _, in := range c.incidents {
		if in.Target == target && !in.Open() {
			resolved = append(resolved, in)
		}
	}
	for i := 0; i < len(resolved); i++ {
		for j := i + 1; j < len(resolved); j++ {
			a, b := resolved[i], resolved[j]
			if a.StartedAt.After(b.ResolvedAt) || b.StartedAt.After(a.ResolvedAt) {
				continue
			}
			keep, drop := a, b
			if b.ID < a.ID {
				keep, drop = b, a
			}
			keep.merge(drop) // the later resolution, both records' facts
			c.dropIncidentLocked(drop.ID)
			// Folding may widen keep: compare it with the others again.
			resolved[i] = keep
			resolved = slices.Delete(resolved, j, j+1)
			j = i
		}
	}
}

// MarkAlerted records that incident id's alert went to Alertmanager at at
// (the first time only) and tells the fleet, so that whichever agent leads
// the target when it resolves sends the end.
func (c *Cluster) MarkAlerted(id string, at time.Time) {
	c.mu.Lock()
	var msg []byte
	for _, in := range c.incidents {
		if in.ID == id && in.AlertedAt.IsZero() {
			in.AlertedAt = at
			c.incidentGen.Add(1)
			msg = encodeIncident(in)
			break
		}
	}
	c.mu.Unlock()
	if msg != nil {
		c.gossip("i/"+id, msg)
	}
}

func (c *Cluster) dropIncidentLocked(id string) {
	c.incidentGen.Add(1)
	if len(c.dropped) < maxIncidents { // nobody takes them without a state directory
		c.dropped = append(c.dropped, id)
	}
	out := c.incidents[:0]
	for _, in := range c.incidents {
		if in.ID != id {
			out = append(out, in)
		}
	}
	c.incidents = out
}

// merge takes what in knows that have does not: the resolution, the
// earliest confirmation and alert, flaps and regions. Records of one
// incident only ever gain facts, so merging in any order converges.
func (have *Incident) merge(in *Incident) {
	// The later resolution: a record folded from two (foldResolvedLocked)
	// ends when the later one did; one leader's record resolves once.
	if !in.ResolvedAt.IsZero() && (have.ResolvedAt.IsZero() || in.ResolvedAt.After(have.ResolvedAt)) {
		have.ResolvedAt = in.ResolvedAt
	}
	have.AlertedAt = earliest(have.AlertedAt, in.AlertedAt)
	have.ConfirmAt = earliest(have.ConfirmAt, in.ConfirmAt)
	have.Flaps = max(have.Flaps, in.Flaps)
	have.Regions = mergeRegions(have.Regions, in.Regions)
	have.FirstFailures = mergeFailures(have.FirstFailures, in.FirstFailures)
	have.LeaderChanges = mergeLeaders(have.LeaderChanges, in.LeaderChanges)
	if len(have.QuorumRegions) == 0 {
		have.QuorumRegions = slices.Clone(in.QuorumRegions)
	}
}

// earliest of two instants, the zero one meaning none.
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

// Incidents returns the incidents this agent knows, newest first.
func (c *Cluster) Incidents() []Incident {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Incident, 0, len(c.incidents))
	for i := len(c.incidents) - 1; i >= 0; i-- {
		in := *c.incidents[i]
		in.Regions = slices.Clone(in.Regions)
		in.QuorumRegions = slices.Clone(in.QuorumRegions)
		in.FirstFailures = slices.Clone(in.FirstFailures)
		in.LeaderChanges = slices.Clone(in.LeaderChanges)
		out = append(out, in)
	}
	return out
}

func mergeRegions(a, b []string) []string {
	out := append(slices.Clone(a), b...)
	slices.Sort(out)
	return slices.Compact(out)
}

// restoreLocked folds an agent's kept state in, before anything runs: the
// incidents as if a peer had gossiped them (an open one is found by the
// next leader of its target and continues), and each configured target's
// first sighting.
func (c *Cluster) restoreLocked(r *Restore) {
	if r == nil {
		return
	}
	ins := slices.Clone(r.Incidents)
	sort.SliceStable(ins, func(i, j int) bool { return ins[i].StartedAt.Before(ins[j].StartedAt) })
	if len(ins) > maxIncidents {
		ins = ins[len(ins)-maxIncidents:]
	}
	open := map[string]*Incident{}
	for i := range ins {
		in := &ins[i]
		if in.ID == "" {
			continue
		}
		in.Regions, in.QuorumRegions = slices.Clone(in.Regions), slices.Clone(in.QuorumRegions)
		in.FirstFailures = slices.Clone(in.FirstFailures)
		if in.Open() {
			// Two open records of one target (a churn the fleet had not
			// settled): the smaller ID wins, as in mergeIncident.
			if o := open[in.Target]; o != nil {
				if o.ID < in.ID {
					continue
				}
				c.dropIncidentLocked(o.ID)
			}
			open[in.Target] = in
		}
		c.addIncidentLocked(in)
	}
	for name, rec := range c.targets {
		if at, ok := r.FirstSeen[name]; ok && !at.IsZero() {
			rec.firstSeen = at.UnixNano()
		}
	}
}

// IncidentGen changes whenever the incidents do; see Incidents.
func (c *Cluster) IncidentGen() uint64 { return c.incidentGen.Load() }

// TakeDropped returns (and forgets) the IDs of incidents dropped since
// the last call: duplicates of one outage the fleet gave up.
func (c *Cluster) TakeDropped() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.dropped
	c.dropped = nil
	return out
}

// FirstSeen returns when this agent first knew each target (restored
// from its state across restarts): the start of the target's SLO figures.
func (c *Cluster) FirstSeen() map[string]time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]time.Time, len(c.targets))
	for k, r := range c.targets {
		out[k] = time.Unix(0, r.firstSeen)
	}
	return out
}
