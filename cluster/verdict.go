package cluster

import (
	"slices"
	"time"

	"github.com/vantage-probe/vantage/cluster/quorum"
	"github.com/vantage-probe/vantage/internal/mono"
)

// The path of a verdict: the target's leader evaluates the observations
// (evaluate), which feeds the incident step (incident.go) and the
// suppression step (suppression.go), and records the outcome as the
// target's Verdict, which it gossips to every agent. Every agent keeps the
// fleet's verdicts in one table (targetRec.verdict, held.go): the API, the status page,
// /metrics and direct alerting all read that table, and nothing evaluates a
// quorum anywhere else.

// Verdict is the fleet's verdict on one target, as its leader evaluated it.
type Verdict struct {
	Target string
	Leader string // agent id of the leader that evaluated it
	quorum.Verdict
	Maintenance bool
	Incident    string // the open incident's ID; "" when none
	// since is when State last changed, on this agent's clock (Since);
	// updated is when this agent evaluated or received it (Updated).
	// Stamps of localClock: every target's verdict holds them.
	since, updated mono.Stamp

	boot, seq uint64 // the leader's order of its verdicts: (boot, seq)
}

// Since is when the verdict's State last changed, on this agent's clock.
func (v *Verdict) Since() time.Time { return localClock.Time(v.since) }

// Updated is when this agent evaluated or received the verdict.
func (v *Verdict) Updated() time.Time { return localClock.Time(v.updated) }

// sameAs reports whether v says what w says (order and times aside): a
// leader publishes a verdict only when this changes.
func (v *Verdict) sameAs(w *Verdict) bool {
	return w != nil && v.Leader == w.Leader && v.State == w.State && v.Reporting == w.Reporting &&
		v.Needed == w.Needed && v.Maintenance == w.Maintenance && v.Incident == w.Incident &&
		slices.Equal(v.Failing, w.Failing) && slices.Equal(v.Passing, w.Passing) &&
		slices.Equal(v.Stale, w.Stale) && slices.Equal(v.Isolated, w.Isolated)
}

// leaderState is what the leader of a target keeps on top of its verdict:
// the bookkeeping of the incident and suppression steps.
type leaderState struct {
	state     quorum.State
	since     mono.Stamp // when state last changed
	open      *Incident
	incidents uint64     // opened while this agent led
	flaps     uint64     // recoveries while this agent led
	upSince   mono.Stamp // the quorum sees it up since (the resolve hold)
	firstFail mono.Stamp // earliest failed observation of the current streak
	confirmAt mono.Stamp // earliest confirmation request of the streak
	seq       uint64     // of the last verdict published
	// suppr is the suppression step's streak: nil while no region fails
	// (most targets, most of the time), in the record every target led
	// holds.
	suppr *suppression
}

// resolveHold is how long the quorum must see a target up before its
// incident resolves: one interval, so every region has looked again.
func resolveHold(t TargetSpec) time.Duration {
	if t.Interval <= 0 {
		return 30 * time.Second
	}
	return t.Interval
}

// policyLocked builds the quorum policy of a target from the current
// assignment, former owners within their grace, and isolated regions.
func (c *Cluster) policyLocked(t TargetSpec, now time.Time) quorum.Policy {
	view := c.leaderViewLocked(now)
	regions := effectiveRegions(t.Regions, view.regions)
	isolated := make(map[string]bool, len(regions))
	for _, r := range regions {
		isolated[r] = view.isolated[r] // a region no member is in is not isolated
	}
	min := t.MinRegions
	if min <= 0 {
		min = c.cfg.MinRegions
	}
	return quorum.Policy{MinRegions: min, Regions: regions, Assignees: c.votersLocked(t.Name, now), Isolated: isolated}
}

// votersLocked maps region to the agents whose observations of target vote:
// its current assignees, and former ones within their grace.
func (c *Cluster) votersLocked(target string, now time.Time) map[string][]string {
	voters := make(map[string][]string, 4)
	for region, ids := range c.assign.Owners(target) {
		voters[region] = append(voters[region], ids...)
	}
	for _, o := range c.prevOwners[target] {
		if now.After(o.until) {
			continue
		}
		if m := c.memberByAgentLocked(o.id); m != nil {
			voters[m.Region] = append(voters[m.Region], o.id)
		}
	}
	return voters
}

// evaluateAll evaluates the targets this agent leads, and those it held a
// leader's state for (evaluate drops it when it no longer leads), from one
// look at leadership: a member list per target per tick was most of an
// idle agent's CPU at 10k targets and 50 agents (harness/scale).
func (c *Cluster) evaluateAll() {
	c.mu.Lock()
	view := c.leaderViewLocked(c.now())
	lead := &view.l
	// Ranking every target over the members each second was O(T x N) per
	// agent: 2.4 cores for 100 agents x 20k targets in one process. Who
	// leads depends only on the rivals and the targets, so the records'
	// marks (targetRec.led) are kept until either changes.
	key := view.key
	if key != c.ledKey || !c.ledOK {
		// The targets led, and those that held a leader's state though
		// they are no longer led: evaluate drops it. Kept with the
		// marks: walking every target each second for the 1% this agent
		// leads was a tenth of 100 agents' CPU at 20k targets.
		names := make([]string, 0, c.nLeading+8)
		for n, r := range c.targets {
			r.led = lead.mine(n)
			if r.led || r.lead != nil {
				names = append(names, n)
			}
		}
		c.ledNames = names
		c.ledKey, c.ledOK = key, true
	}
	// A leader's state made since (evaluate ranking a target under a newer
	// view) comes with a new key, and so a new list. Read unlocked: a
	// remark makes a new slice and never writes this one.
	names := c.ledNames
	c.mu.Unlock()
	for _, n := range names {
		c.evaluate(n)
	}
}

// evaluate is one step of a target's verdict, if this agent leads it: the
// quorum over the fresh observations, then the incident and suppression
// steps, then the verdict record, published when it changed.
func (c *Cluster) evaluate(target string) {
	now := c.now()
	c.mu.Lock()
	rec := c.targets[target]
	if rec == nil || !c.leadsLocked(rec, c.leaderViewLocked(now)) {
		// Not (or no longer) ours: the leader's state goes, so the verdict
		// is exported and acted on by one agent. Incidents stay shared.
		if rec != nil && rec.lead != nil {
			rec.lead = nil
			c.nLeading--
		}
		c.mu.Unlock()
		return
	}
	t := rec.spec
	ls := c.leaderStateLocked(rec, now)
	v := quorum.Evaluate(c.observationsLocked(target), c.policyLocked(t, now), now)
	maint := c.cfg.InMaintenance(target, now)
	c.trackStreakLocked(rec, ls, now)
	if v.State != ls.state || ls.since == 0 {
		ls.state, ls.since = v.State, localClock.Stamp(now)
	}
	step := c.stepIncidentLocked(t, ls, &v, maint, now)
	step.events = append(step.events, c.stepSuppressionLocked(t, ls, &v, now)...)
	msg := c.recordVerdictLocked(rec, ls, v, maint, now)
	// Encoded under the lock: the incidents are the leader's own records,
	// which another evaluation may change as soon as it is released.
	type named struct {
		name string
		msg  []byte
	}
	incidents := make([]named, 0, len(step.changed))
	for _, in := range step.changed {
		incidents = append(incidents, named{"i/" + in.ID, encodeIncident(in)})
	}
	if len(step.changed) > 0 {
		c.incidentGen.Add(1)
	}
	c.mu.Unlock()

	for _, in := range incidents {
		c.gossip(in.name, in.msg)
	}
	if msg != nil {
		c.m.published.Inc()
		c.gossip("v/"+target, msg)
	}
	for _, ev := range step.events {
		c.log.Info(ev.Kind, "target", ev.Target, "failing_region", ev.Region, "detail", ev.Detail, "elapsed", ev.Elapsed)
		c.emit(ev)
	}
}

// leaderStateLocked returns the leader's state of target, making it when
// this agent has just become its leader: a new leader continues the open
// incident it learnt by gossip.
func (c *Cluster) leaderStateLocked(rec *targetRec, now time.Time) *leaderState {
	ls := rec.lead
	if ls == nil {
		ls = &leaderState{open: c.openIncidentLocked(rec.spec.Name)}
		if v := rec.verdict; v != nil && !v.since.IsZero() {
			// The state and its age as the previous leader published them.
			ls.state, ls.since = v.State(), v.since
		}
		rec.lead = ls
		c.nLeading++
	}
	return ls
}

// trackStreakLocked keeps the current failure streak's first failed
// observation (the earliest among fresh failing or failed observations, on
// our clock) and first confirmation request: an incident's started_at and
// confirm_requested_at.
func (c *Cluster) trackStreakLocked(rec *targetRec, ls *leaderState, now time.Time) {
	var first, confirm time.Time
	for _, o := range rec.obs {
		if o.OK || !c.freshLocked(o, now) {
			continue
		}
		if start := o.Received().Add(-o.FailingFor); first.IsZero() || start.Before(first) {
			first = start
		}
		if o.ConfirmedFor > 0 {
			if at := o.Received().Add(-o.ConfirmedFor); confirm.IsZero() || at.Before(confirm) {
				confirm = at
			}
		}
	}
	if first.IsZero() {
		ls.firstFail, ls.confirmAt = 0, 0
		ls.suppr = nil // the streak is over
		return
	}
	if f := localClock.Stamp(first); ls.firstFail == 0 || f < ls.firstFail {
		ls.firstFail = f
	}
	if cf := localClock.Stamp(confirm); cf != 0 && (ls.confirmAt == 0 || cf < ls.confirmAt) {
		ls.confirmAt = cf
	}
}

// recordVerdictLocked stores the leader's verdict in the fleet table and
// returns its encoding when it changed, to be gossiped; nil otherwise.
func (c *Cluster) recordVerdictLocked(tr *targetRec, ls *leaderState, v quorum.Verdict, maint bool, now time.Time) []byte {
	rec := &Verdict{Target: tr.spec.Name, Leader: c.cfg.AgentID, Verdict: v, Maintenance: maint,
		since: ls.since, updated: localClock.Stamp(now), boot: c.boot}
	if ls.open != nil {
		rec.Incident = ls.open.ID
	}
	cur := tr.verdict
	if cur.sameAs(rec) && cur.boot == c.boot {
		cur.updated = rec.updated
		return nil
	}
	ls.seq = c.verdictSeq.Add(1)
	rec.seq = ls.seq
	tr.verdict = c.regionSets.hold(rec)
	return encodeVerdict(rec, now)
}

// receiveVerdict folds a verdict another agent published into the fleet
// table. From the agent already on record, a newer one replaces it; from
// another agent (leadership moved), it replaces the record when its sender
// is the leader as this agent sees it, or the recorded one no longer is a
// leader candidate. Our own leadership is not overridden: while we lead the
// target, our evaluation is its verdict.
func (c *Cluster) receiveVerdict(v *Verdict) {
	if v.Leader == c.cfg.AgentID {
		return
	}
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	rec := c.targets[v.Target]
	if rec == nil || rec.lead != nil {
		return
	}
	cur := rec.verdict
	switch {
	case cur == nil:
	case cur.leader == v.Leader:
		if v.boot < cur.boot || (v.boot == cur.boot && v.seq <= cur.seq) {
			return
		}
	default:
		lead := c.leaderViewLocked(now).l
		if lead.leader(v.Target) != v.Leader && c.candidateLocked(cur.leader, lead) {
			return
		}
	}
	v.updated = localClock.Stamp(now)
	rec.verdict = c.regionSets.hold(v)
}

// candidateLocked reports whether agent id is among lead's candidates.
func (c *Cluster) candidateLocked(id string, lead leaders) bool {
	for _, m := range lead.cands {
		if m.ID == id {
			return true
		}
	}
	return false
}

// VerdictOf is the fleet's verdict on target as this agent knows it; false
// when none has reached it yet (a target just added, an agent just started).
func (c *Cluster) VerdictOf(target string) (Verdict, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.targets[target]
	if r == nil || r.verdict == nil {
		return Verdict{}, false
	}
	return *r.verdict.full(r.spec.Name), true
}

func (c *Cluster) failingReasonLocked(target string) string {
	for _, o := range c.obsLocked(target) {
		if o.Failing && o.Reason != "" {
			return o.Reason
		}
	}
	return ""
}
