package cluster

import (
	"time"

	"github.com/vantage-probe/vantage/cluster/quorum"
)

// suppression tracks a target's failures that stay below quorum: a region
// failing for longer than a confirmation takes, while the target is not
// down, is counted (vantage_suppressed_failures_total{region}) once per
// streak. The first region to see an all-region outage is below quorum
// only until the others confirm: that is detection, not suppression.
type suppression struct {
	since   map[string]time.Time // region -> failing below quorum since
	counted map[string]bool      // region -> counted in this streak
}

// suppressAfter is how long a failure must stay below quorum to count as
// suppressed: a probe timeout for the confirmations, plus gossip slack.
func suppressAfter(t TargetSpec) time.Duration {
	return t.Timeout + 2*time.Second
}

// stepSuppressionLocked advances target t's suppression by verdict v and
// returns the "suppressed" events it caused. A region's streak is dated
// from its observations' own first failed probe (FailingFor), not from
// when this agent first saw it: a leader that takes over mid-streak (the
// old one crashed) counts it as the old one would have.
func (c *Cluster) stepSuppressionLocked(t TargetSpec, ls *leaderState, v *quorum.Verdict, now time.Time) []Event {
	s := ls.suppr
	if s == nil {
		if len(v.Failing) == 0 {
			return nil // no streak, and none starts
		}
		s = &suppression{}
		ls.suppr = s
	}
	failing := make(map[string]bool, len(v.Failing))
	for _, r := range v.Failing {
		failing[r] = true
	}
	for _, o := range c.obsLocked(t.Name) {
		if !failing[o.Region] || o.OK || !c.freshLocked(o, now) {
			continue
		}
		start := o.Received().Add(-o.FailingFor)
		if at, ok := s.since[o.Region]; !ok || start.Before(at) {
			if s.since == nil {
				s.since = map[string]time.Time{}
			}
			s.since[o.Region] = start
		}
	}
	for _, r := range v.Failing {
		if _, ok := s.since[r]; !ok {
			if s.since == nil {
				s.since = map[string]time.Time{}
			}
			s.since[r] = now
		}
	}
	for r := range s.since {
		if !failing[r] {
			delete(s.since, r)
		}
	}
	if v.State == quorum.Down || ls.open != nil {
		return nil
	}
	var events []Event
	for _, r := range v.Failing {
		if now.Sub(s.since[r]) < suppressAfter(t) || s.counted[r] {
			continue
		}
		if s.counted == nil {
			s.counted = map[string]bool{}
		}
		s.counted[r] = true
		c.m.suppressedFor(r).Inc()
		events = append(events, Event{At: now, Kind: "suppressed", Target: t.Name, Region: r, Detail: v.Reason()})
	}
	return events
}
