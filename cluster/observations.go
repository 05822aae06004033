package cluster

import (
	"slices"
	"time"

	"github.com/vantage-probe/vantage/cluster/quorum"
)

// Report records this agent's own observation of a target. When its
// state changed (ok or failing), it gets a new sequence number, is gossiped
// and sent straight to the target's leader; on a new failure, the other
// regions are asked to confirm.
func (c *Cluster) Report(o Observation) {
	now := c.now()
	o.AgentID = c.cfg.AgentID
	o.Region = c.cfg.Region
	o.Boot = c.boot
	o.Isolated = c.isolated.Load()
	o.received = localClock.Stamp(now)
	o.measured = o.received

	c.mu.Lock()
	rec := c.targets[o.Target]
	if rec == nil {
		c.mu.Unlock()
		return
	}
	prev := rec.obs.get(o.AgentID)
	changed := prev == nil || prev.OK != o.OK || prev.Failing != o.Failing || prev.Isolated != o.Isolated ||
		!prev.CertExpiry.Truncate(time.Second).Equal(o.CertExpiry.Truncate(time.Second)) // a renewal (or a first look)
	newFailure := !o.OK && (prev == nil || prev.OK)
	if o.OK {
		delete(c.firstAsked, o.Target) // the streak is over
	} else if asked, ok := c.firstAsked[o.Target]; ok {
		o.ConfirmedFor = max(now.Sub(asked), time.Millisecond)
	}
	if changed {
		o.Seq = c.seq.Add(1)
	} else {
		o.Seq = prev.Seq
	}
	c.storeLocked(rec, &o)
	if changed {
		c.agentSeq[o.AgentID] = [2]uint64{o.Boot, o.Seq}
	}
	c.mu.Unlock()

	if changed {
		c.publish(&o)
	}
	if newFailure && c.cfg.ConfirmOnFailure {
		c.confirm.request(o.Target)
	}
}

// publish sends our observation o (new or changed) to the fleet: gossiped,
// and sent straight to every member (or only to the target's leader in
// fleets too large to fan out to), or in a targeted fleet only to the
// target's holders; then evaluated here in case we lead.
func (c *Cluster) publish(o *Observation) {
	msg := encodeResult(o)
	c.mu.Lock()
	targeted := c.targetedLocked()
	c.mu.Unlock()
	if targeted {
		c.sendTargeted(o.Target, msg) // holders.go
		c.evaluate(o.Target)
		return
	}
	c.broadcast("r/"+o.Target, msg)
	if c.memberCount() <= fanOutMax {
		c.fanOut(msg)
	} else {
		c.mu.Lock()
		var leader *memberInfo
		if l := c.leaderNodeLocked(o.Target); l != nil {
			cp := *l
			leader = &cp
		}
		c.mu.Unlock()
		if leader != nil && !leader.Self {
			if err := c.ml.SendToAddress(leader.addr, msg); err != nil {
				c.m.sendErrors.Inc()
			}
		}
	}
	c.evaluate(o.Target)
}

// confirmSent records that this agent asked the other regions to confirm
// its failure of target at at, and publishes its observation again with
// that (ConfirmedFor), so that the leader, whichever agent it is, dates
// the incident's confirmation request.
func (c *Cluster) confirmSent(target string, at time.Time) {
	now := c.now()
	c.mu.Lock()
	rec := c.targets[target]
	if rec == nil {
		c.mu.Unlock()
		return // no longer configured
	}
	first, ok := c.firstAsked[target]
	if !ok {
		first = at
		c.firstAsked[target] = at
	}
	own := rec.obs.get(c.cfg.AgentID)
	if own == nil || own.OK || ok {
		c.mu.Unlock()
		return
	}
	o := *own
	o.Seq = c.seq.Add(1)
	o.received = localClock.Stamp(now)
	o.ConfirmedFor = max(now.Sub(first), time.Millisecond)
	c.storeLocked(rec, &o)
	c.agentSeq[o.AgentID] = [2]uint64{o.Boot, o.Seq}
	c.mu.Unlock()
	c.publish(&o)
}

// storeLocked stores a copy of o in its target's record rec.
func (c *Cluster) storeLocked(rec *targetRec, o *Observation) {
	cp := *o
	rec.obs = rec.obs.set(&cp)
	if !rec.listed {
		rec.listed = true
		c.observed = append(c.observed, rec)
	}
}

// receive stores a remote observation if it is newer than what we have.
func (c *Cluster) receive(o *Observation) {
	if o.AgentID == c.cfg.AgentID || o.Target == "" {
		return
	}
	now := c.now()
	o.received = localClock.Stamp(now)
	c.mu.Lock()
	rec := c.targets[o.Target]
	if rec == nil || !c.heldLocked(o.Target, now) {
		c.mu.Unlock()
		return
	}
	o.Target = rec.spec.Name // one copy of the name, the config's
	if prev := rec.obs.get(o.AgentID); prev != nil && !o.newer(prev) {
		var later *Observation
		if prev.Boot == o.Boot && prev.Seq == o.Seq {
			// The same news again: still fresh. Its ages stay anchored
			// where they were (a rebroadcast carries them as of its first
			// send), and a copy that knows more (push/pull's later
			// fields) fills in what the first one lacked.
			d := time.Duration(o.received - prev.received)
			if prev.FailingFor > 0 {
				prev.FailingFor += d
			}
			if prev.ConfirmedFor > 0 {
				prev.ConfirmedFor += d
			} else {
				prev.ConfirmedFor = o.ConfirmedFor
			}
			if prev.CertExpiry.IsZero() {
				prev.CertExpiry = o.CertExpiry
			}
			// A later measurement of the unchanged result (a push/pull
			// copy dates its latency): the prober's latest latency. A
			// relayed copy of the measurement we have dates it a little
			// later (ages travel in whole milliseconds, transit uncounted);
			// the prober's next one is about an interval later.
			if !o.measured.IsZero() && (prev.measured.IsZero() || time.Duration(o.measured-prev.measured) > prev.Interval/2) {
				prev.Latency, prev.measured = o.Latency, o.measured
				cp := *prev
				later = &cp
			}
			prev.received = o.received
		}
		c.mu.Unlock()
		if later != nil {
			c.remoteResult(later)
		}
		return
	}
	if o.measured.IsZero() {
		o.measured = o.received // a new result: its probe has just run
	}
	c.storeLocked(rec, o)
	if cur := c.agentSeq[o.AgentID]; o.Boot > cur[0] || (o.Boot == cur[0] && o.Seq > cur[1]) {
		c.agentSeq[o.AgentID] = [2]uint64{o.Boot, o.Seq}
	}
	c.mu.Unlock()
	c.m.results.Inc()
	c.remoteResult(o)
	c.evaluate(o.Target)
}

// remoteResult hands a remote observation that brought news (a new
// result, or a later latency of an unchanged one) to Config.OnRemoteResult.
func (c *Cluster) remoteResult(o *Observation) {
	if f := c.cfg.OnRemoteResult; f != nil {
		f(*o)
	}
}

// Measured is when o's latency was measured, by the local clock (zero for
// an observation that did not come through the cluster).
func (o *Observation) Measured() time.Time { return localClock.Time(o.measured) }

// Received is when this agent received o (or made it, its own), by the
// local clock; zero for an observation that did not come through the
// cluster.
func (o *Observation) Received() time.Time { return localClock.Time(o.received) }

// heartbeat refreshes the receipt time of an agent's observations when our
// view of it is complete (we have its latest sequence number).
func (c *Cluster) heartbeat(h *Heartbeat) {
	if h.AgentID == c.cfg.AgentID {
		return
	}
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	// Who may lead changes with a heartbeat that brings a peer back from
	// silence, or changes its settled state, doubts or isolation: only
	// those invalidate the leader view (its TTL sees a peer fall silent).
	// Invalidating it on every heartbeat recomputed it 20 times a second
	// in a fleet of 100 (12% of its CPU).
	prev, wasSettled := c.heard[h.AgentID], c.peerSettled[h.AgentID]
	d := c.doubts[h.AgentID]
	changed := now.Sub(prev) > c.leaderSilence() || wasSettled != h.Settled ||
		d.overflow != h.DoubtsOverflow || !slices.Equal(d.hashes, h.Doubts)
	c.heard[h.AgentID] = now
	c.peerSettled[h.AgentID] = h.Settled
	c.doubts[h.AgentID] = doubtSet{hashes: h.Doubts, overflow: h.DoubtsOverflow}
	for _, m := range c.members {
		if m.AgentID == h.AgentID {
			changed = changed || m.Isolated != h.Isolated
			m.Isolated = h.Isolated
			m.Targets = int(h.Targets)
		}
	}
	if changed {
		c.viewGen.Add(1)
	}
	if c.targetedLocked() {
		return // each prober vouches to each holder apart (holders.go)
	}
	cur, ok := c.agentSeq[h.AgentID]
	if !ok || cur[0] != h.Boot || cur[1] < h.Seq {
		c.m.heartbeatGaps.Inc()
		return
	}
	at := localClock.Stamp(now)
	for _, rec := range c.targets {
		if o := rec.obs.get(h.AgentID); o != nil && o.Boot == h.Boot {
			o.received = at
			o.Isolated = h.Isolated
		}
	}
}

// observations are one target's latest observation per agent: a handful
// (one per region probing it, a few more during hand-overs), so a slice
// searched in order, not a map (a map per target costs hundreds of bytes
// for what is usually one entry).
type observations []*Observation

// get returns agent's observation, or nil.
func (os observations) get(agent string) *Observation {
	for _, o := range os {
		if o.AgentID == agent {
			return o
		}
	}
	return nil
}

// set replaces agent o.AgentID's observation with o, or adds it.
func (os observations) set(o *Observation) observations {
	for i, p := range os {
		if p.AgentID == o.AgentID {
			os[i] = o
			return os
		}
	}
	return append(os, o)
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
	return now.Sub(o.Received()) <= freshFor(o)
}

func (c *Cluster) observationsLocked(target string) []quorum.Observation {
	byAgent := c.obsLocked(target)
	out := make([]quorum.Observation, 0, len(byAgent))
	for _, o := range byAgent {
		out = append(out, quorum.Observation{
			Region: o.Region, AgentID: o.AgentID, Boot: o.Boot, Seq: o.Seq,
			Failing: o.Failing, Received: o.Received(), Interval: o.Interval, Timeout: o.Timeout,
		})
	}
	return out
}
