package cluster

import (
	"time"

	"github.com/vantage-probe/vantage/cluster/shard"
)

// assignLoop recomputes the assignment off memberlist's goroutines,
// debounced so a burst of joins is one recomputation.
func (c *Cluster) assignLoop() {
	defer c.wg.Done()
	for {
		select {
		case <-c.stop:
			return
		case <-c.changed:
		}
		select {
		case <-c.stop:
			return
		case <-time.After(200 * time.Millisecond):
		}
		c.reassign()
	}
}

func (c *Cluster) reassign() {
	c.refreshMembers()
	now := c.now()
	c.mu.Lock()
	members := c.liveMembersLocked()
	regions := c.knownRegionsLocked()
	ts := make([]shard.Target, 0, len(c.targets))
	for _, t := range c.targets {
		ts = append(ts, shard.Target{Name: t.Name, Regions: effectiveRegions(t.Regions, regions)})
	}
	old := c.assign
	next := shard.Assign(ts, members, c.cfg.ReplicasPerRegion)
	// Forget former owners whose grace is over. policyLocked prunes only
	// the targets this agent leads, so without this every agent kept, for
	// every target, each agent that ever owned it: a leak with each restart
	// under a new name, 4 MB per agent after a cold start of 50 agents with
	// 10k targets (cluster/scale heap profile).
	for name, po := range c.prevOwners {
		for id, until := range po {
			if now.After(until) {
				delete(po, id)
			}
		}
		if len(po) == 0 {
			delete(c.prevOwners, name)
		}
	}
	// Make-before-break: former owners keep a vote for the grace period,
	// until the new owner has reported.
	if len(old.Targets()) > 0 {
		for _, t := range ts {
			for _, owners := range old.Owners(t.Name) {
				for _, id := range owners {
					if !next.IsOwner(t.Name, id) {
						po := c.prevOwners[t.Name]
						if po == nil {
							po = map[string]time.Time{}
							c.prevOwners[t.Name] = po
						}
						po[id] = now.Add(c.cfg.Grace)
					}
				}
			}
		}
	}
	c.assign = next
	mine := next.OwnedBy(c.cfg.AgentID)
	moved := len(mine) != len(c.mine)
	c.mine = mine
	c.m.assigned.Store(int64(len(mine)))
	c.mu.Unlock()
	if moved {
		c.log.Info("assignment changed", "targets", len(mine), "members", len(members))
	}
	c.local.Assigned(mine)
}

func effectiveRegions(want, known []string) []string {
	if len(want) > 0 {
		return want
	}
	return known
}

// leaderNodeLocked returns the member that leads target.
func (c *Cluster) leaderNodeLocked(target string) *memberInfo {
	id := shard.Leader(target, c.leaderCandidatesLocked(c.now()))
	if id == "" {
		return nil
	}
	return c.memberByAgentLocked(id)
}

// IsLeader reports whether this agent exports target's verdict.
func (c *Cluster) IsLeader(target string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return shard.Leader(target, c.leaderCandidatesLocked(c.now())) == c.cfg.AgentID
}

// leaderSilence is how long an agent may go unheard (no heartbeat) before
// the others stop counting it as a leader candidate: a leader cut off from
// the fleet must not hold verdicts until memberlist declares it dead.
func (c *Cluster) leaderSilence() time.Duration { return 3*c.cfg.HeartbeatEvery + 2*time.Second }

// leaderCandidatesLocked are the live members that may lead a verdict:
// ourselves, members heard from recently, and members that joined too
// recently to have sent a heartbeat. Every connected agent computes the
// same set; a partitioned one excludes the other side, and the other side
// excludes it.
func (c *Cluster) leaderCandidatesLocked(now time.Time) []shard.Member {
	silence := c.leaderSilence()
	out := make([]shard.Member, 0, len(c.members))
	for _, m := range c.members {
		if (m.State != "alive" && m.State != "suspect") || m.Proto != int(ProtocolVersion) {
			continue
		}
		if m.Self || now.Sub(c.heard[m.AgentID]) <= silence || now.Sub(m.Since) <= silence {
			out = append(out, shard.Member{ID: m.AgentID, Region: m.Region})
		}
	}
	return out
}
