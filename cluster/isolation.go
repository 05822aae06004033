package cluster

import (
	"strconv"
	"time"

	"github.com/vantage-probe/vantage/cluster/quorum"
)

// checkIsolation decides whether this agent's own region looks cut off: most
// of its failing targets are seen up by other regions, or it sees none of
// the other regions' members alive.
func (c *Cluster) checkIsolation() {
	now := c.now()
	c.mu.Lock()
	myFailing, othersUp, total := 0, 0, 0
	targeted := c.targetedLocked()
	for _, name := range c.mine {
		rec := c.targets[name]
		if rec == nil {
			continue
		}
		byAgent := rec.obs
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
		if targeted && up == 0 && failing == 0 {
			// A targeted fleet sends other regions' results to the
			// target's holders only: the leader's verdict says what
			// they see.
			if v := rec.verdict; v != nil {
				up = countOthers(v.lists.passing, c.cfg.Region)
				failing = countOthers(v.lists.failing, c.cfg.Region)
			}
		}
		if up > 0 && failing == 0 {
			othersUp++
		}
	}
	otherRegions, otherAlive := map[string]bool{}, 0
	for _, m := range c.members {
		if m.Region == c.cfg.Region || m.State == Left {
			continue
		}
		otherRegions[m.Region] = true
		if m.State.Live() {
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
		c.viewGen.Add(1) // the leader view holds which regions are isolated
		if iso {
			c.log.Warn("this region looks isolated: its failures will not count", "failing", myFailing, "seen_up_elsewhere", othersUp, "targets", total)
		} else {
			c.log.Info("region no longer isolated")
		}
		c.emit(Event{At: now, Kind: "isolated", Region: c.cfg.Region, Node: c.cfg.NodeName, Detail: strconv.FormatBool(iso)})
		c.sendHeartbeat()
	}
}

// countOthers counts the regions other than own.
func countOthers(regions []string, own string) int {
	n := 0
	for _, r := range regions {
		if r != own {
			n++
		}
	}
	return n
}

// regionIsolatedLocked: a region is isolated when every live member of it
// says so.
func (c *Cluster) regionIsolatedLocked(region string) bool {
	n, iso := 0, 0
	for _, m := range c.members {
		if m.Region != region || !m.State.Live() {
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
