package cluster

import (
	"math"
	"slices"
	"testing"
	"time"

	"github.com/vantage-probe/vantage/internal/testenv"
)

// TestEveryAgentShowsTheLeadersVerdict: the API of any agent shows the
// verdict the target's leader evaluated and published (one source), with
// the leader named, through an outage and its end.
func TestEveryAgentShowsTheLeadersVerdict(t *testing.T) {
	targets := testTargets(6)
	nodes := startFleet(t, []string{"eu", "us", "ap"}, 1, targets, nil)
	testenv.Poll(t, 15*time.Second, "convergence", func() bool { return converged(nodes, targets) })
	agree := func(want string) func() bool {
		return func() bool {
			probeAll(nodes)
			for _, tg := range targets {
				var leader string
				for _, n := range nodes {
					st, _ := n.c.Status(tg.Name)
					if st.Verdict != want || st.Updated.IsZero() {
						return false
					}
					if leader == "" {
						leader = st.Leader
					}
					if st.Leader != leader || !n.c.candidateLocked(leader, leadersOf(n.c)) {
						return false
					}
				}
			}
			return true
		}
	}
	testenv.Poll(t, 10*time.Second, "every agent to show every target up, from one leader", agree("up"))
	for _, n := range nodes {
		for _, tg := range targets {
			n.local.setDown(tg.Name, true)
		}
	}
	testenv.Poll(t, 10*time.Second, "every agent to show every target down, from one leader", agree("down"))
	// The verdict a non-leader shows is the leader's record, not its own
	// evaluation: it names the leader and says why in the leader's words
	// (once the leader's last change has arrived).
	testenv.Poll(t, 5*time.Second, "every agent to hold the leader's latest verdict", func() bool {
		for _, tg := range targets {
			var want Verdict
			for _, n := range nodes {
				if n.c.IsLeader(tg.Name) {
					want, _ = n.c.VerdictOf(tg.Name)
				}
			}
			if want.Leader == "" {
				return false
			}
			for _, n := range nodes {
				got, ok := n.c.VerdictOf(tg.Name)
				if !ok || got.Leader != want.Leader || got.State != want.State || !slices.Equal(got.Failing, want.Failing) || got.seq != want.seq {
					return false
				}
			}
		}
		return true
	})
}

func leadersOf(c *Cluster) leaders {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.leadersLocked(c.now())
}

// TestIncidentRecordsTheWholeStory: one outage that comes back up briefly
// and fails again before the resolve hold ends is one incident with one
// flap, on every agent (not only the leader's copy); it names the regions
// failing when the quorum was reached apart from those that failed later;
// its confirmation request is dated although a non-leader asked; and the
// SLO every agent computes from it is 1 - downtime/observed.
func TestIncidentRecordsTheWholeStory(t *testing.T) {
	targets := []TargetSpec{{Name: "db", Interval: 2 * time.Second, Timeout: 500 * time.Millisecond, MinRegions: 2, SLOObjective: 0.99}}
	nodes := startFleet(t, []string{"eu", "us", "ap"}, 1, targets, func(c *Config) { c.SLOWindow = time.Hour })
	testenv.Poll(t, 15*time.Second, "convergence", func() bool { return converged(nodes, targets) })
	probeAll(nodes)
	var lead *node
	testenv.Poll(t, 5*time.Second, "a leader", func() bool {
		for _, n := range nodes {
			if n.c.IsLeader("db") {
				lead = n
			}
		}
		return lead != nil
	})
	var first, second *node // two regions that are not the leader's
	for _, n := range nodes {
		if n != lead {
			if first == nil {
				first = n
			} else {
				second = n
			}
		}
	}
	report := func(n *node, down bool) {
		n.local.setDown("db", down)
		n.c.Report(n.local.obs("db"))
	}
	// A non-leader region fails first and asks the others; its confirmation
	// comes back failing from the second region (the scripted Confirm), and
	// the quorum is reached.
	first.local.setDown("db", true)
	second.local.setDown("db", true)
	report(first, true)
	open := func() *Incident {
		for _, in := range lead.c.Incidents() {
			if in.Open() {
				return &in
			}
		}
		return nil
	}
	testenv.Poll(t, 5*time.Second, "the incident", func() bool { return open() != nil })
	in := open()
	if !slices.Equal(in.QuorumRegions, []string{first.region, second.region}) && !slices.Equal(in.QuorumRegions, []string{second.region, first.region}) {
		t.Errorf("quorum regions %v, want the two failing regions", in.QuorumRegions)
	}
	testenv.Poll(t, 15*time.Second, "the non-leader's confirmation request dated on every agent", func() bool {
		for _, n := range nodes {
			ins := n.c.Incidents()
			// Times travel in milliseconds: on the leader StartedAt has
			// its full precision and ConfirmAt, asked for by another
			// agent in the same millisecond, came over the wire (one run
			// in ten failed on that alone).
			if len(ins) != 1 || ins[0].ConfirmAt.IsZero() || ins[0].ConfirmAt.Before(ins[0].StartedAt.Truncate(time.Millisecond)) {
				return false
			}
		}
		return true
	})
	// The leader's region fails too: it joins the incident, not its quorum.
	report(lead, true)
	testenv.Poll(t, 5*time.Second, "the third region recorded", func() bool { return len(open().Regions) == 3 })
	if got := open().QuorumRegions; len(got) != 2 {
		t.Errorf("quorum regions changed to %v after the quorum", got)
	}
	// Up briefly (less than the resolve hold, one interval), then down.
	for _, n := range nodes {
		report(n, false)
	}
	time.Sleep(300 * time.Millisecond) // the blip; the claim is that it does not end the incident
	for _, n := range nodes {
		report(n, true)
	}
	testenv.Poll(t, 5*time.Second, "one flap on every agent's copy", func() bool {
		for _, n := range nodes {
			found := false
			for _, in := range n.c.Incidents() {
				found = found || (in.Open() && in.Flaps == 1)
			}
			if !found {
				return false
			}
		}
		return true
	})
	for _, n := range nodes {
		report(n, false)
	}
	testenv.Poll(t, 10*time.Second, "the incident resolved everywhere", func() bool {
		for _, n := range nodes {
			ins := n.c.Incidents()
			if len(ins) != 1 || ins[0].Open() {
				return false
			}
		}
		return true
	})
	for _, n := range nodes {
		st, _ := n.c.Status("db")
		ins := n.c.Incidents()
		down := ins[0].ResolvedAt.Sub(ins[0].StartedAt)
		if st.SLO == nil || st.SLO.Observed <= 0 {
			t.Fatalf("%s: no SLO figures", n.c.cfg.NodeName)
		}
		want := 1 - float64(down)/float64(st.SLO.Observed)
		if math.Abs(st.SLO.Availability-want) > 0.01 || st.SLO.Downtime != down {
			t.Errorf("%s: availability %.4f (downtime %v of %v), want %.4f (downtime %v)", n.c.cfg.NodeName,
				st.SLO.Availability, st.SLO.Downtime, st.SLO.Observed, want, down)
		}
		if st.SLO.Objective != 0.99 || st.SLO.Window != time.Hour {
			t.Errorf("%s: SLO %+v, want the target's objective 0.99 over 1h", n.c.cfg.NodeName, st.SLO)
		}
	}
}
