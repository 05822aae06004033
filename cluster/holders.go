package cluster

import (
	"slices"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/vantage-probe/vantage/cluster/shard"
)

// Targeted observations. Sent to every member, a fleet's observations make
// every agent hold and receive every region's result for every target: a
// cost per agent that grows with the fleet's targets whatever its size
// (300 MB and more at 100k targets in 5 regions). From cfg.TargetedFrom
// live members on, an observation goes only to its target's holders: the
// member that ranks first for it (the leader, shard.Leader) and the next
// cfg.Standbys, plus the leader as this agent sees it if that is another
// one. Each agent stores only the observations of the targets it holds,
// and its own: about T x R x (1+Standbys) / N + T x R / N of them. When a
// leader dies, its successor already holds fresh votes from every region.
//
// Freshness: a heartbeat vouches for an agent's observations by its latest
// sequence number, which a holder that receives only some of them never
// has. So every HeartbeatEvery each prober vouches to each holder apart:
// the count and hash of its fresh observations of the targets it owns that
// this holder holds (msgVouch). A holder whose own count matches refreshes
// them; one whose count differs (a result lost, a holder new to some
// targets) asks for them (msgResend) and the prober sends them by TCP
// (msgRepair, as a digest's answer). A change of holders (a join, a death,
// a candidacy) is followed at once by a round of vouches, so a new holder
// has its votes in a couple of round trips.
//
// Verdicts and incidents still go to every member: they are one per target
// (not per region), change rarely, and every agent's API and page show
// them. The digest of a push/pull then covers them only.

// targetedLocked reports whether observations go to their holders only.
func (c *Cluster) targetedLocked() bool { return c.liveAtLeastLocked(c.cfg.TargetedFrom) }

// liveAtLeastLocked reports whether the fleet has at least n live members
// (false for n <= 0: a threshold that is off).
func (c *Cluster) liveAtLeastLocked(n int) bool {
	if n <= 0 {
		return false
	}
	live := 0
	for _, m := range c.members {
		if m.State.Live() {
			live++
		}
	}
	return live >= n
}

// holderView is one look at who holds which target's observations.
type holderView struct {
	self string
	live []shard.Member
	rank shard.Ranking // live, keyed
	lead leaders
	k    int
}

func (c *Cluster) holderViewLocked(now time.Time) holderView {
	l := c.leaderViewLocked(now).l
	return holderView{self: c.cfg.AgentID, live: l.live, rank: l.liveRank, lead: l, k: 1 + c.cfg.Standbys}
}

// holders are the agent ids that hold target's observations.
func (h *holderView) holders(target string) []string {
	top := h.rank.Top(target, h.k)
	out := make([]string, 0, len(top)+1)
	for _, m := range top {
		out = append(out, m.ID)
	}
	if l := h.lead.leader(target); l != "" && !slices.Contains(out, l) {
		out = append(out, l)
	}
	return out
}

// holdsSelf reports whether this agent holds target's observations: one
// of its holders, or its leader in its own eyes.
func (h *holderView) holdsSelf(target string) bool {
	return slices.Contains(h.holders(target), h.self) || h.lead.mine(target)
}

// key identifies the view's membership and candidates: when it changes,
// holders change.
func (h *holderView) key() uint64 {
	ids := make([]string, 0, len(h.live)+len(h.lead.cands)+1)
	for _, m := range h.live {
		ids = append(ids, m.ID)
	}
	slices.Sort(ids)
	ids = append(ids, "|")
	n := len(ids)
	for _, m := range h.lead.rivals {
		ids = append(ids, m.ID)
	}
	slices.Sort(ids[n:])
	return hashStrings(ids)
}

// sendTargeted sends our observation's message to its target's holders.
func (c *Cluster) sendTargeted(target string, msg []byte) {
	c.mu.Lock()
	view := c.holderViewLocked(c.now())
	var addrs []memberlist.Address
	for _, id := range view.holders(target) {
		if id == c.cfg.AgentID {
			continue
		}
		if m := c.memberByAgentLocked(id); m != nil && !m.Self {
			addrs = append(addrs, m.addr)
		}
	}
	c.mu.Unlock()
	for _, a := range addrs {
		if err := c.ml.SendToAddress(a, msg); err != nil {
			c.m.sendErrors.Inc()
		}
	}
}

// vouch is a prober's word to one holder: these are my fresh observations
// of the targets I own that you hold.
type vouch struct {
	AgentID string
	Node    string // the prober's node name: where to ask for them
	Boot    uint64
	Count   uint32
	Sum     uint32 // the sum of their entryHash
}

// ownFreshForLocked is this agent's fresh observations of the targets it
// owns, and of those it lost while its vote lasts, grouped by the holders
// (other than itself) they go to; only holder's when only is set.
func (c *Cluster) ownFreshForLocked(view *holderView, now time.Time, only string) map[string][]*Observation {
	out := map[string][]*Observation{}
	// The targets this agent owned until a reassignment, while its
	// vote lasts: a holder new since (the newcomer that took the target
	// over and leads it) has no other way to get the vote it counts
	// until the new owner's first probe (harness/scale: 13 of 10,000
	// votes missing at the leaders 10 s after a join of 100 agents).
	for name, until := range c.lostVotes {
		if now.After(until) || c.assign.IsOwner(name, c.cfg.AgentID) {
			delete(c.lostVotes, name) // over, or ours again (then in c.mine)
			continue
		}
		o := c.targets[name].ownFresh(c.cfg.AgentID, now)
		if o == nil {
			continue
		}
		for _, id := range view.holders(name) {
			if id != c.cfg.AgentID && (only == "" || id == only) {
				out[id] = append(out[id], o)
			}
		}
	}
	for id, recs := range c.vouchPlanLocked(view) {
		if only != "" && id != only {
			continue
		}
		for _, rec := range recs {
			if o := rec.ownFresh(c.cfg.AgentID, now); o != nil {
				out[id] = append(out[id], o)
			}
		}
	}
	return out
}

// ownFresh is agent self's own observation in rec if fresh, else nil (also
// for a nil rec: a target no longer configured).
func (rec *targetRec) ownFresh(self string, now time.Time) *Observation {
	if rec == nil {
		return nil
	}
	if o := rec.obs.get(self); o != nil && now.Sub(o.Received()) <= freshFor(o) {
		return o
	}
	return nil
}

// vouchPlan is, by holder, the records of the targets this agent owns that
// the holder holds (holderView.holders). Vouches and resends read it
// instead of ranking the members for every owned target each time: a
// resend asked by one holder ranked them all, a quarter of the CPU of 100
// agents x 20k targets while a cold start settled. Records, not names: at
// 100k targets finding each name in the table again was a quarter more.
type vouchPlan struct {
	holdKey, mineGen uint64
	byHolder         map[string][]*targetRec
}

// vouchPlanLocked returns the plan for our assignment (mineGen) and the
// holders as refreshHolders last saw them (holdKey, as c.held): built anew
// when either changed, or the targets did (setTargetsLocked drops it).
// Before refreshHolders has keyed a view, it is built from view and not
// kept.
func (c *Cluster) vouchPlanLocked(view *holderView) map[string][]*targetRec {
	p := &c.plan
	if c.holdKey != 0 && p.byHolder != nil && p.holdKey == c.holdKey && p.mineGen == c.mineGen {
		return p.byHolder
	}
	by := map[string][]*targetRec{}
	for _, name := range c.mine {
		rec := c.targets[name]
		if rec == nil {
			continue
		}
		for _, id := range view.holders(name) {
			if id != c.cfg.AgentID {
				by[id] = append(by[id], rec)
			}
		}
	}
	if c.holdKey != 0 {
		*p = vouchPlan{holdKey: c.holdKey, mineGen: c.mineGen, byHolder: by}
	}
	return by
}

// sendVouches vouches to every holder of our targets for what it holds.
func (c *Cluster) sendVouches() {
	now := c.now()
	c.mu.Lock()
	if !c.targetedLocked() {
		c.mu.Unlock()
		return
	}
	view := c.holderViewLocked(now)
	type send struct {
		addr memberlist.Address
		msg  []byte
	}
	var sends []send
	for id, obs := range c.ownFreshForLocked(&view, now, "") {
		m := c.memberByAgentLocked(id)
		if m == nil || m.Self {
			continue
		}
		v := vouch{AgentID: c.cfg.AgentID, Node: c.cfg.NodeName, Boot: c.boot, Count: uint32(len(obs))}
		for _, o := range obs {
			v.Sum += entryHash(1, o.Target, o.AgentID, o.Boot, o.Seq)
		}
		sends = append(sends, send{m.addr, encodeVouch(&v)})
	}
	c.mu.Unlock()
	for _, s := range sends {
		if err := c.ml.SendToAddress(s.addr, s.msg); err != nil {
			c.m.sendErrors.Inc()
		}
	}
}

// receiveVouch keeps a prober's latest vouch for checkVouches: checking
// one costs a pass over the table, so the vouches of a second share one.
func (c *Cluster) receiveVouch(v vouch) {
	if v.AgentID == c.cfg.AgentID {
		return
	}
	c.mu.Lock()
	c.vouches[v.AgentID] = v
	c.mu.Unlock()
}

// checkVouches compares each pending vouch with what this agent holds of
// its prober: equal, those observations are fresh again; different, it
// asks the prober for them.
func (c *Cluster) checkVouches() {
	now := c.now()
	c.mu.Lock()
	if len(c.vouches) == 0 {
		c.mu.Unlock()
		return
	}
	pending := c.vouches
	c.vouches = make(map[string]vouch, len(pending))
	if !c.targetedLocked() {
		c.mu.Unlock()
		return // heartbeats vouch (observations.go)
	}
	view := c.holderViewLocked(now)
	type tally struct {
		count, sum uint32
		held       []*Observation
	}
	tallies := make(map[string]*tally, len(pending))
	for id := range pending {
		tallies[id] = &tally{}
	}
	kept := c.observed[:0]
	for _, rec := range c.observed {
		if len(rec.obs) == 0 { // dropped by refreshHolders
			rec.listed = false
			continue
		}
		kept = append(kept, rec)
		name := rec.spec.Name
		for _, o := range rec.obs {
			v, ok := pending[o.AgentID]
			if !ok || o.Boot != v.Boot || !c.votesLocked(name, o.AgentID, now) || !c.holdsLocked(&view, name) {
				continue
			}
			t := tallies[o.AgentID]
			t.count++
			t.sum += entryHash(1, o.Target, o.AgentID, o.Boot, o.Seq)
			t.held = append(t.held, o)
		}
	}
	clear(c.observed[len(kept):])
	c.observed = kept
	type asked struct {
		addr memberlist.Address
		msg  []byte
	}
	var ask []asked
	for id, v := range pending {
		t := tallies[id]
		if t.count == v.Count && t.sum == v.Sum {
			at := localClock.Stamp(now)
			for _, o := range t.held {
				o.received = at
			}
			continue
		}
		if m := c.members[v.Node]; m != nil && !m.Self {
			// What we hold of the prober, by bucket: it sends back the
			// buckets that differ, not all it has for us.
			held := tableView{obs: t.held}
			r := resend{Node: c.cfg.NodeName, Buckets: held.buckets(resendBuckets(int(max(t.count, v.Count))))}
			ask = append(ask, asked{m.addr, encodeResend(r)})
		}
	}
	c.mu.Unlock()
	for _, a := range ask {
		c.m.resendsAsked.Inc()
		if err := c.ml.SendToAddress(a.addr, a.msg); err != nil {
			c.m.sendErrors.Inc()
		}
	}
}

// resend is a holder's request for a prober's observations (msgResend):
// where to send them, and the holder's sums of what it holds of the
// prober by bucket of target (tableView.buckets), so that the prober sends
// only the buckets that differ. A vouch and a changed result cross often
// (a prober with 10k targets changes one every second or so at 1% a
// minute), and every such vouch used to bring back all the prober held for
// the holder: 3,000 observations, 78 KB/s a prober at 10 agents x 20k.
type resend struct {
	Node    string
	Buckets []uint32 // nil: send everything (an agent that predates buckets)
}

// missing is what of obs (our fresh observations for the holder) the
// holder's sums show it lacks or holds in another version.
func (r resend) missing(obs []*Observation) []*Observation {
	if len(r.Buckets) == 0 {
		return obs
	}
	ours := tableView{obs: obs}
	return ours.differing(ours.buckets(len(r.Buckets)), r.Buckets).obs
}

// maxResendBuckets keeps a resend request in one packet (1 KB of sums).
const maxResendBuckets = 256

// resendBuckets is the bucket count for entries held: about eight a bucket,
// from 16 to maxResendBuckets.
func resendBuckets(entries int) int {
	n := 16
	for n < maxResendBuckets && n*8 < entries {
		n *= 2
	}
	return n
}

// queueResend hands a holder's request to syncLoop: the answer is a TCP
// send, which must not hold up the message loop.
func (c *Cluster) queueResend(r resend) {
	select {
	case c.resends <- r:
	default:
		c.m.inboxDrops.Inc() // the holder asks again at our next vouch
	}
}

// resendTo sends the holder that asked our fresh observations of the
// targets it holds: those in the buckets where its sums and ours differ, or
// all of them when it sent no sums.
func (c *Cluster) resendTo(r resend) {
	now := c.now()
	c.mu.Lock()
	m := c.members[r.Node]
	if m == nil || m.Self || !c.targetedLocked() {
		c.mu.Unlock()
		return
	}
	to := &memberlist.Node{Name: r.Node, Addr: m.ip, Port: m.port}
	view := c.holderViewLocked(now)
	obs := c.ownFreshForLocked(&view, now, m.AgentID)[m.AgentID]
	obs = r.missing(obs)
	var msg []byte
	if len(obs) > 0 {
		msg = encodeStateAs(msgRepair, obs, nil, nil, now)
	}
	c.mu.Unlock()
	if msg == nil {
		return
	}
	c.m.digestEntries.Add(len(obs))
	if err := c.ml.SendReliable(to, msg); err != nil {
		c.m.sendErrors.Inc()
	}
}

// refreshHolders, on every evaluation tick: when holders changed (a join,
// a death, a candidacy), drop the observations this agent no longer holds
// and vouch at once, so that new holders ask for theirs now rather than
// at the next heartbeat.
func (c *Cluster) refreshHolders() {
	now := c.now()
	c.mu.Lock()
	if !c.targetedLocked() {
		c.holdKey = 0
		clear(c.held)
		c.mu.Unlock()
		return
	}
	view := c.holderViewLocked(now)
	key := view.key()
	if key == c.holdKey {
		c.mu.Unlock()
		return
	}
	c.holdKey = key
	clear(c.held)
	// The records holding observations only (c.observed): at 100k
	// targets walking them all on each change of view was a fifth of a
	// settling fleet's CPU.
	for _, rec := range c.observed {
		byAgent := rec.obs
		if len(byAgent) == 0 || c.holdsLocked(&view, rec.spec.Name) {
			continue
		}
		kept := byAgent[:0]
		for _, o := range byAgent {
			if o.AgentID == c.cfg.AgentID {
				kept = append(kept, o)
			}
		}
		clear(byAgent[len(kept):]) // no pointer kept alive past the slice's length
		if len(kept) == 0 {
			rec.obs = nil
		} else {
			rec.obs = kept
		}
	}
	c.mu.Unlock()
	c.sendVouches()
}

// heldLocked reports whether a remote observation of target is ours to
// store: every one is below TargetedFrom, those of the targets we hold
// above it.
func (c *Cluster) heldLocked(target string, now time.Time) bool {
	if !c.targetedLocked() {
		return true
	}
	view := c.holderViewLocked(now)
	return c.holdsLocked(&view, target)
}

// holdsLocked is view.holdsSelf(target), remembered until holders change
// (refreshHolders): a leader checks its holders' vouches every second over
// every target it holds, and ranking the members each time cost more than
// the rest of an idle agent.
func (c *Cluster) holdsLocked(view *holderView, target string) bool {
	h, ok := c.held[target]
	if !ok {
		h = view.holdsSelf(target)
		c.held[target] = h
	}
	return h
}

// votesLocked: agent id's observations of target vote here, as an owner or
// a former owner within its grace (votersLocked, without building the map).
func (c *Cluster) votesLocked(target, id string, now time.Time) bool {
	if c.assign.IsOwner(target, id) {
		return true
	}
	until, ok := c.prevOwners[target].until(id)
	return ok && !now.After(until)
}
