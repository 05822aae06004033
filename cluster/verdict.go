package cluster

import (
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/vantage-probe/vantage/cluster/quorum"
	"github.com/vantage-probe/vantage/cluster/shard"
)

// maxIncidents bounds the incident history each agent keeps.
const maxIncidents = 1000

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

// fresh: received within two intervals plus a timeout (plus a little slack
// for gossip), judged by local receipt time only.
func freshFor(o *Observation) time.Duration {
	iv := o.Interval
	if iv <= 0 {
		iv = 30 * time.Second
	}
	return 2*iv + o.Timeout + 2*time.Second
}

func (c *Cluster) freshLocked(o *Observation, now time.Time) bool {
	return now.Sub(o.Received) <= freshFor(o)
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

func (c *Cluster) memberByAgentLocked(id string) *memberInfo {
	for _, m := range c.members {
		if m.AgentID == id {
			return m
		}
	}
	return nil
}

// regionIsolatedLocked: a region is isolated when every live member of it
// says so.
func (c *Cluster) regionIsolatedLocked(region string) bool {
	n, iso := 0, 0
	for _, m := range c.members {
		if m.Region != region || (m.State != "alive" && m.State != "suspect") {
			continue
		}
		n++
		isolated := m.Isolated
		if m.Self {
			isolated = c.isolated.Load()
		}
		if isolated {
			iso++
		}
	}
	return n > 0 && iso == n
}

func (c *Cluster) observationsLocked(target string) []quorum.Observation {
	byAgent := c.table[target]
	out := make([]quorum.Observation, 0, len(byAgent))
	for _, o := range byAgent {
		out = append(out, quorum.Observation{
			Region: o.Region, AgentID: o.AgentID, Boot: o.Boot, Seq: o.Seq,
			Failing: o.Failing, Received: o.Received, Interval: o.Interval, Timeout: o.Timeout,
		})
	}
	return out
}

func (c *Cluster) evaluateAll() {
	// Only targets we lead need evaluating, and those we held a verdict for
	// (evaluate drops it when we no longer lead). Deciding that here from one
	// snapshot of the members, rather than in evaluate per target, saves a
	// member list per target per tick: at 10k targets and 50 agents that was
	// most of an idle agent's CPU (cluster/scale).
	c.mu.Lock()
	live := c.leaderCandidatesLocked(c.now())
	names := make([]string, 0, len(c.targets)/max(1, len(live))+len(c.verdicts))
	for n := range c.targets {
		if c.verdicts[n] != nil || shard.Leader(n, live) == c.cfg.AgentID {
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
	if !ok || shard.Leader(target, c.leaderCandidatesLocked(now)) != c.cfg.AgentID {
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

func mergeRegions(a, b []string) []string {
	seen := map[string]bool{}
	out := []string{}
	for _, s := range append(append([]string{}, a...), b...) {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}

func (c *Cluster) addIncidentLocked(in *Incident) {
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
			if vs := c.verdicts[in.Target]; vs != nil && vs.open == mine {
				vs.open = &cp
			}
			return
		}
	}
	for _, have := range c.incidents {
		if have.ID == in.ID {
			if have.ResolvedAt.IsZero() && !in.ResolvedAt.IsZero() {
				have.ResolvedAt = in.ResolvedAt
			}
			if !in.AlertedAt.IsZero() && (have.AlertedAt.IsZero() || in.AlertedAt.Before(have.AlertedAt)) {
				have.AlertedAt = in.AlertedAt
			}
			have.Regions = mergeRegions(have.Regions, in.Regions)
			return
		}
	}
	cp := *in
	c.addIncidentLocked(&cp)
	sort.SliceStable(c.incidents, func(i, j int) bool { return c.incidents[i].StartedAt.Before(c.incidents[j].StartedAt) })
}

// checkIsolation decides whether this agent's own region looks cut off: most
// of its failing targets are seen up by other regions, or it sees none of
// the other regions' members alive.
func (c *Cluster) checkIsolation() {
	now := c.now()
	c.mu.Lock()
	myFailing, othersUp, total := 0, 0, 0
	for _, name := range c.mine {
		byAgent := c.table[name]
		mine := byAgent.get(c.cfg.AgentID)
		if mine == nil {
			continue
		}
		total++
		if !mine.Failing {
			continue
		}
		myFailing++
		up, failing := 0, 0
		for _, o := range byAgent {
			if o.Region == c.cfg.Region || !c.freshLocked(o, now) {
				continue
			}
			if o.Failing {
				failing++
			} else {
				up++
			}
		}
		if up > 0 && failing == 0 {
			othersUp++
		}
	}
	otherRegions, otherAlive := map[string]bool{}, 0
	for _, m := range c.members {
		if m.Region == c.cfg.Region || m.State == "left" {
			continue
		}
		otherRegions[m.Region] = true
		if m.State == "alive" || m.State == "suspect" {
			otherAlive++
		}
	}
	c.mu.Unlock()
	// Silence: no heartbeat from any agent of any other region for a while
	// (memberlist takes much longer to declare them all dead, and stretches
	// its timeouts when it is itself the unhealthy one).
	heardOther := false
	c.mu.Lock()
	for _, m := range c.members {
		if m.Region != c.cfg.Region && now.Sub(c.heard[m.AgentID]) <= c.leaderSilence() {
			heardOther = true
		}
	}
	c.mu.Unlock()
	silent := len(otherRegions) > 0 && !heardOther && time.Since(c.started) > 2*c.leaderSilence()
	iso := quorum.IsIsolated(myFailing, othersUp, total) || (len(otherRegions) > 0 && otherAlive == 0) || silent
	if was := c.isolated.Swap(iso); was != iso {
		if iso {
			c.log.Warn("this region looks isolated: its failures will not count", "failing", myFailing, "seen_up_elsewhere", othersUp, "targets", total)
		} else {
			c.log.Info("region no longer isolated")
		}
		c.emit(Event{At: now, Kind: "isolated", Region: c.cfg.Region, Node: c.cfg.NodeName, Detail: strconv.FormatBool(iso)})
		c.sendHeartbeat()
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
			msg = encodeIncident(in)
			break
		}
	}
	c.mu.Unlock()
	if msg != nil {
		c.broadcast("i/"+id, msg)
		c.fanOut(msg)
	}
}

func (c *Cluster) dropIncidentLocked(id string) {
	out := c.incidents[:0]
	for _, in := range c.incidents {
		if in.ID != id {
			out = append(out, in)
		}
	}
	c.incidents = out
}
