package cluster

import (
	"slices"
	"time"

	"github.com/vantage-probe/vantage/cluster/shard"
)

// assignLoop recomputes the assignment off memberlist's goroutines,
// debounced so a burst of joins is one recomputation.
func (c *Cluster) assignLoop() {
	defer c.wg.Done()
	var took time.Duration
	for {
		select {
		case <-c.stop:
			return
		case <-c.changed:
		}
		// Changes come in storms (a fleet starting, a region rejoining):
		// wait at least 200 ms and twice what the last reassignment took
		// (at most 5 s), so that an expensive one (O(targets x members))
		// is redone for a batch of changes, not for each. A fleet of 100
		// agents x 20k targets starting in one process spent 75% of its
		// CPU reassigning and never converged.
		wait := min(max(200*time.Millisecond, 2*took), 5*time.Second)
		select {
		case <-c.stop:
			return
		case <-time.After(wait):
		}
		start := time.Now()
		c.reassign()
		took = time.Since(start)
	}
}

func (c *Cluster) reassign() {
	now := c.now()
	c.mu.Lock()
	members := c.liveMembersLocked()
	regions := c.knownRegionsLocked()
	for _, r := range regions {
		// Exported at 0 from the start: a dashboard's "suppressed by
		// region" and an increase() over it see every region, not only
		// those that have suppressed something.
		c.m.suppressedFor(r)
	}
	c.pruneFormerOwnersLocked(now)
	// memberlist reports every refuted suspicion and every update as a
	// change: with the live members, the regions and the targets as they
	// were, the assignment is what it was. A 50-agent fleet of 100k
	// targets settling on a loaded machine spent a sixth of its CPU
	// recomputing the same assignment.
	key := assignmentKey(members, regions)
	if c.assignKeyOK && key == c.assignKey {
		c.mu.Unlock()
		return
	}
	c.assignKey, c.assignKeyOK = key, true
	ts := make([]shard.Target, 0, len(c.targets))
	// In the last assignment's order (sorted) when the targets are the
	// same, so that Assign need not sort them again.
	if prev := c.assign.Targets(); len(prev) == len(c.targets) {
		for _, name := range prev {
			rec := c.targets[name]
			if rec == nil {
				ts = ts[:0]
				break
			}
			ts = append(ts, shard.Target{Name: name, Regions: effectiveRegions(rec.spec.Regions, regions)})
		}
	}
	if len(ts) == 0 {
		for _, rec := range c.targets {
			t := &rec.spec
			ts = append(ts, shard.Target{Name: t.Name, Regions: effectiveRegions(t.Regions, regions)})
		}
	}
	old := c.assign
	next := shard.Assign(ts, members, c.cfg.ReplicasPerRegion)
	// Make-before-break: former owners keep a vote for the grace period,
	// until the new owner has reported.
	until := now.Add(c.cfg.Grace)
	old.Dropped(next, func(target, id string) {
		if _, ok := c.targets[target]; ok { // a target no longer configured has no vote to keep
			c.formerOwnerLocked(target, id, until)
		}
	})
	mine := next.OwnedBy(c.cfg.AgentID)
	c.handOverToNewcomerLocked(ts, members, next, mine)
	c.assign = next
	moved := len(mine) != len(c.mine)
	c.mine = mine
	c.mineGen++
	c.m.assigned.Store(int64(len(mine)))
	c.mu.Unlock()
	if moved {
		c.log.Info("assignment changed", "targets", len(mine), "members", len(members))
	}
	c.local.Assigned(mine)
}

// pruneFormerOwnersLocked forgets former owners whose grace is over.
// policyLocked prunes only the targets this agent leads, so without this
// every agent kept, for every target, each agent that ever owned it: a leak
// with each restart under a new name, 4 MB per agent after a cold start of
// 50 agents with 10k targets (harness/scale heap profile).
//
// At most once every pruneEvery: a vote past its grace counts for nothing
// already (votersLocked), so this only bounds memory, and a fleet starting
// together, every target with former owners, walked all of them on each of
// its many membership events (a twelfth of a 50 x 100k cold start's CPU).
func (c *Cluster) pruneFormerOwnersLocked(now time.Time) {
	if d := now.Sub(c.prunedAt); d >= 0 && d < pruneEvery {
		return
	}
	c.prunedAt = now
	for name, po := range c.prevOwners {
		switch kept := po.prune(now); len(kept) {
		case 0:
			delete(c.prevOwners, name)
		case len(po):
			// Unchanged: no map write (most targets, most of the time).
		default:
			c.prevOwners[name] = kept
		}
	}
}

// pruneEvery is how often reassignments forget former owners past their grace.
const pruneEvery = 10 * time.Second

// assignmentKey identifies what an assignment is made of besides the
// targets (setTargetsLocked clears assignKeyOK): the live members with their
// regions, and the known regions (a target without regions of its own is
// probed in each).
func assignmentKey(members []shard.Member, regions []string) uint64 {
	ids := make([]string, 0, len(members)+len(regions)+1)
	for _, m := range members {
		ids = append(ids, m.ID+"\x00"+m.Region)
	}
	slices.Sort(ids)
	ids = append(ids, "|")
	n := len(ids)
	ids = append(ids, regions...)
	slices.Sort(ids[n:])
	return hashStrings(ids)
}

func effectiveRegions(want, known []string) []string {
	if len(want) > 0 {
		return want
	}
	return known
}

// handOverToNewcomerLocked gives a newcomer the make-before-break its
// peers have: the targets it takes over keep their former owners' votes
// for the grace period. Its peers know those owners from their previous
// assignment; a newcomer has none (its first assignment had only itself,
// or part of the fleet), so a target it both leads and takes over in its
// region had no vote from there until its own first probe, up to an
// interval later (harness/scale: 137 of 50,000 votes missing at the
// leaders 10 s after a join in a fleet of 50). The former owners are the
// fleet's assignment without this agent, for the grace after its start.
//
// Only the targets this agent owns (mine, sorted) are assigned again: an
// owner is chosen per target (rendezvous), so without this agent the
// others own what they did, and only the targets it takes change hands.
// Assigning them all again doubled every reassignment in the grace after
// a start, which is when a fleet starting together reassigns the most
// (harness/scale: a fifth of a 50 x 100k cold start's CPU).
func (c *Cluster) handOverToNewcomerLocked(ts []shard.Target, members []shard.Member, next shard.Assignment, mine []string) {
	left := c.cfg.Grace - time.Since(c.started)
	if left <= 0 || len(members) < 2 || len(mine) == 0 {
		return
	}
	until := c.now().Add(left) // on the clock votersLocked reads
	others := slices.DeleteFunc(slices.Clone(members), func(m shard.Member) bool { return m.ID == c.cfg.AgentID })
	taken := make([]shard.Target, 0, len(mine))
	for _, t := range ts {
		if _, ok := slices.BinarySearch(mine, t.Name); ok {
			taken = append(taken, t)
		}
	}
	before := shard.Assign(taken, others, c.cfg.ReplicasPerRegion)
	before.Dropped(next, func(target, id string) {
		c.prevOwners[target] = c.prevOwners[target].extend(id, until)
	})
}

// formerOwnerLocked records that agent id owned target until a
// reassignment and keeps its vote until until. When id is this agent and
// it holds its own observation, the target joins lostVotes: it keeps
// vouching for (and resending) that vote to the target's holders.
func (c *Cluster) formerOwnerLocked(target, id string, until time.Time) {
	c.prevOwners[target] = c.prevOwners[target].extend(id, until)
	if id == c.cfg.AgentID && c.obsLocked(target).get(id) != nil {
		if cur, ok := c.lostVotes[target]; !ok || cur.Before(until) {
			c.lostVotes[target] = until
		}
	}
}

// formerOwners are a target's former owners and until when each still
// votes: one or two during a hand-over, so a slice (a map per target was
// 7 MB per agent after the cold start of 100 agents x 20k targets, when
// every target changes hands as the fleet assembles).
type formerOwners []formerOwner

type formerOwner struct {
	id    string
	until time.Time
}

// extend makes id's vote last at least until until.
func (fo formerOwners) extend(id string, until time.Time) formerOwners {
	for i := range fo {
		if fo[i].id == id {
			if fo[i].until.Before(until) {
				fo[i].until = until
			}
			return fo
		}
	}
	return append(fo, formerOwner{id, until})
}

// prune drops the votes over at now.
func (fo formerOwners) prune(now time.Time) formerOwners {
	return slices.DeleteFunc(fo, func(o formerOwner) bool { return now.After(o.until) })
}

// until is when id's vote ends; false when id is no former owner.
func (fo formerOwners) until(id string) (time.Time, bool) {
	for _, o := range fo {
		if o.id == id {
			return o.until, true
		}
	}
	return time.Time{}, false
}
