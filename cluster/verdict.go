package cluster

import (
	"slices"
	"strconv"
	"time"

	"github.com/vantage-probe/vantage/cluster/quorum"
)

// verdictState is the leader's memory of one target's verdict.
type verdictState struct {
	v           quorum.Verdict
	since       stamp // when State last changed
	open        *Incident
	incidents   uint64 // opened while this agent led
	flaps       uint64
	lastSuppr   map[string]bool      // region -> counted as suppressed in this streak
	supprSince  map[string]time.Time // region -> failing below quorum since
	upSince     stamp                // verdict up since (for the resolve hold)
	maintenance bool
	firstFail   stamp // earliest failed observation in the current streak
	confirmAt   stamp
}

// stamp is a time on this agent's clock as the time since the cluster was
// made (monotonic), 0 for none: 8 bytes where a time.Time is 24, in state
// held per target (a verdict has four).
type stamp time.Duration

func (c *Cluster) stampOf(t time.Time) stamp {
	if t.IsZero() {
		return 0
	}
	if d := t.Sub(c.started); d != 0 {
		return stamp(d) // before the start (a peer's older failure) is negative
	}
	return 1
}

func (c *Cluster) timeOf(s stamp) time.Time {
	if s == 0 {
		return time.Time{}
	}
	return c.started.Add(time.Duration(s))
}

// resolveHold is how long the quorum must see a target up before its
// incident resolves: one interval, so every region has looked again.
func resolveHold(t TargetSpec) time.Duration {
	if t.Interval <= 0 {
		return 30 * time.Second
	}
	return t.Interval
}

// suppressAfter is how long a failure must stay below quorum to count as
// suppressed: a probe timeout for the confirmations, plus gossip slack.
func suppressAfter(t TargetSpec) time.Duration {
	return t.Timeout + 2*time.Second
}

// policyLocked builds the quorum policy of a target from the current
// assignment, former owners within their grace, and isolated regions.
func (c *Cluster) policyLocked(t TargetSpec, now time.Time) quorum.Policy {
	regions := effectiveRegions(t.Regions, c.knownRegionsLocked())
	assignees := make(map[string][]string, len(regions))
	for region, ids := range c.assign.Owners(t.Name) {
		assignees[region] = append(assignees[region], ids...)
	}
	if po := c.prevOwners[t.Name]; po != nil {
		for id, until := range po {
			if now.After(until) {
				delete(po, id)
				continue
			}
			if m := c.memberByAgentLocked(id); m != nil {
				assignees[m.Region] = append(assignees[m.Region], id)
			}
		}
	}
	isolated := map[string]bool{}
	for _, r := range regions {
		isolated[r] = c.regionIsolatedLocked(r)
	}
	min := t.MinRegions
	if min <= 0 {
		min = c.cfg.MinRegions
	}
	return quorum.Policy{MinRegions: min, Regions: regions, Assignees: assignees, Isolated: isolated}
}

func (c *Cluster) evaluateAll() {
	// Only targets we lead need evaluating, and those we held a verdict for
	// (evaluate drops it when we no longer lead). Deciding that here from one
	// snapshot of the members, rather than in evaluate per target, saves a
	// member list per target per tick: at 10k targets and 50 agents that was
	// most of an idle agent's CPU (cluster/scale).
	c.mu.Lock()
	lead := c.leadersLocked(c.now())
	names := make([]string, 0, len(c.targets)/max(1, len(lead.cands))+len(c.verdicts))
	for n := range c.targets {
		if c.verdicts[n] != nil || lead.mine(n) {
			names = append(names, n)
		}
	}
	c.mu.Unlock()
	for _, n := range names {
		c.evaluate(n)
	}
}

// evaluate recomputes one target's verdict if this agent leads it, and
// opens or resolves its incident.
func (c *Cluster) evaluate(target string) {
	now := c.now()
	var events []Event
	var bcast []*Incident
	c.mu.Lock()
	t, ok := c.targets[target]
	if lead := c.leadersLocked(now); !ok || !lead.mine(target) {
		if vs := c.verdicts[target]; vs != nil && ok {
			// No longer the leader: forget the local verdict so the metric
			// is exported by exactly one agent. Incidents stay shared.
			delete(c.verdicts, target)
		}
		c.mu.Unlock()
		return
	}
	vs := c.verdicts[target]
	if vs == nil {
		vs = &verdictState{since: c.stampOf(now)}
		// A new leader continues an open incident it learnt by gossip.
		for i := len(c.incidents) - 1; i >= 0; i-- {
			if in := c.incidents[i]; in.Target == target && in.Open() {
				vs.open = in
				break
			}
		}
		c.verdicts[target] = vs
	}
	v := quorum.Evaluate(c.observationsLocked(target), c.policyLocked(t, now), now)
	vs.maintenance = c.cfg.InMaintenance(target, now)

	// The current failure streak: earliest first-failure among fresh
	// failing or failed observations, on our clock.
	first := time.Time{}
	for _, o := range c.table[target] {
		if o.OK || !c.freshLocked(o, now) {
			continue
		}
		start := o.Received.Add(-o.FailingFor)
		if first.IsZero() || start.Before(first) {
			first = start
		}
	}
	if first.IsZero() {
		vs.firstFail = 0
		// nil, not empty maps: most targets are up most of the time, and
		// this runs every tick for every target led.
		vs.lastSuppr, vs.supprSince = nil, nil
	} else if f := c.stampOf(first); vs.firstFail == 0 || f < vs.firstFail {
		vs.firstFail = f
	}

	if v.State != vs.v.State {
		vs.since = c.stampOf(now)
	}
	prev := vs.v.State
	vs.v = v

	if vs.open == nil {
		// Another agent that led this target a moment ago (membership views
		// differ briefly during churn) may already have opened it.
		vs.open = c.openIncidentLocked(target)
	}
	switch {
	case v.State == quorum.Down && vs.open == nil && !vs.maintenance && c.synced.Load():
		started := c.timeOf(vs.firstFail)
		if started.IsZero() {
			started = now
		}
		in := &Incident{
			ID:         target + "@" + strconv.FormatInt(started.UnixMilli(), 10),
			Target:     target,
			StartedAt:  started,
			ConfirmAt:  c.timeOf(vs.confirmAt),
			QuorumAt:   now,
			DetectedAt: c.now(),
			Regions:    append([]string(nil), v.Failing...),
			Leader:     c.cfg.AgentID,
			Reason:     c.failingReasonLocked(target),
		}
		if in.ConfirmAt.Before(in.StartedAt) {
			in.ConfirmAt = time.Time{}
		}
		vs.open = in
		vs.incidents++
		c.addIncidentLocked(in)
		c.m.incidents.Inc()
		c.m.detection.Update(in.TimeToDetect().Seconds())
		bcast = append(bcast, in)
		events = append(events, Event{At: now, Kind: "incident_open", Target: target,
			Detail: v.Reason(), Elapsed: in.TimeToDetect()})
	case v.State == quorum.Down && vs.open != nil:
		if vs.upSince != 0 {
			// Down again within the resolve hold: the same incident goes
			// on (a flapping target opens one incident, not ten).
			vs.upSince = 0
			vs.open.Flaps++
			bcast = append(bcast, vs.open)
		}
		// Regions joining an open incident are recorded.
		if merged := mergeRegions(vs.open.Regions, v.Failing); len(merged) != len(vs.open.Regions) {
			vs.open.Regions = merged
			bcast = append(bcast, vs.open)
		}
	case v.State == quorum.Up && vs.open != nil && vs.upSince == 0:
		vs.upSince = c.stampOf(now)
	case v.State == quorum.Up && vs.open != nil && now.Sub(c.timeOf(vs.upSince)) >= resolveHold(t):
		// Resolved once the quorum has seen it up for a whole hold: the
		// incident's end is when it came back, not when the hold ended.
		vs.open.ResolvedAt = c.timeOf(vs.upSince)
		vs.upSince = 0
		bcast = append(bcast, vs.open)
		events = append(events, Event{At: now, Kind: "incident_resolved", Target: target,
			Detail: v.Reason(), Elapsed: vs.open.ResolvedAt.Sub(vs.open.StartedAt)})
		vs.open = nil
		vs.flaps++
	}
	// Failures that stay below quorum for longer than a confirmation takes
	// are suppressed, counted once per region and streak. (The first region
	// to see an all-region outage is below quorum only until the others
	// confirm: that is detection, not suppression.)
	for _, r := range v.Failing {
		if _, ok := vs.supprSince[r]; !ok {
			if vs.supprSince == nil {
				vs.supprSince = map[string]time.Time{}
			}
			vs.supprSince[r] = now
		}
	}
	for r := range vs.supprSince {
		if !slices.Contains(v.Failing, r) {
			delete(vs.supprSince, r)
		}
	}
	if v.State != quorum.Down && vs.open == nil {
		for _, r := range v.Failing {
			if now.Sub(vs.supprSince[r]) < suppressAfter(t) {
				continue
			}
			if !vs.lastSuppr[r] {
				if vs.lastSuppr == nil {
					vs.lastSuppr = map[string]bool{}
				}
				vs.lastSuppr[r] = true
				c.m.suppressedFor(r).Inc()
				events = append(events, Event{At: now, Kind: "suppressed", Target: target, Region: r, Detail: v.Reason()})
			}
		}
	}
	_ = prev
	c.mu.Unlock()

	for _, in := range bcast {
		msg := encodeIncident(in)
		c.broadcast("i/"+in.ID, msg)
		c.fanOut(msg)
	}
	for _, ev := range events {
		c.log.Info(ev.Kind, "target", ev.Target, "failing_region", ev.Region, "detail", ev.Detail, "elapsed", ev.Elapsed)
		c.emit(ev)
	}
}

func (c *Cluster) failingReasonLocked(target string) string {
	for _, o := range c.table[target] {
		if o.Failing && o.Reason != "" {
			return o.Reason
		}
	}
	return ""
}
