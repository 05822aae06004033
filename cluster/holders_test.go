package cluster

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/vantage-probe/vantage/cluster/shard"
	"github.com/vantage-probe/vantage/internal/testenv"
)

// targetedFleet makes a small fleet send observations to their holders
// only (the leader and one standby), as a fleet of TargetedFrom agents does.
func targetedFleet(c *Config) {
	c.TargetedFrom = 2
	c.Standbys = 1
}

// freshVotes counts the regions whose voting observation of target is
// fresh at n.
func freshVotes(n *node, target string) int {
	st, ok := n.c.Status(target)
	if !ok {
		return 0
	}
	votes := 0
	for _, r := range st.Regions {
		if r.Fresh && r.Assignee {
			votes++
		}
	}
	return votes
}

// everyLeaderHasEveryVote reports whether each target's leader holds a
// fresh vote from every region.
func everyLeaderHasEveryVote(nodes []*node, targets []TargetSpec, regions int) bool {
	for _, t := range targets {
		l := leaderOf(nodes, t.Name)
		if l == nil || freshVotes(l, t.Name) != regions {
			return false
		}
	}
	return true
}

// strayObservations counts the other agents' observations c stores of
// targets it does not hold as it last judged (holdsLocked: a machine
// loaded enough to delay heartbeats keeps changing who leads, and the
// agent acts on each change at its next evaluation), and all it stores of
// other agents.
func strayObservations(c *Cluster) (stray, remote int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	view := c.holderViewLocked(time.Now())
	for name, rec := range c.targets {
		for _, o := range rec.obs {
			if o.AgentID == c.cfg.AgentID {
				continue
			}
			remote++
			if !c.holdsLocked(&view, name) {
				stray++
			}
		}
	}
	return stray, remote
}

// startTargetedFleet starts 3 regions x 2 targeted agents and waits until
// every leader holds every region's vote.
func startTargetedFleet(t *testing.T, targets []TargetSpec) []*node {
	t.Helper()
	nodes := startFleet(t, []string{"eu", "us", "ap"}, 2, targets, targetedFleet)
	testenv.Poll(t, time.Minute, "convergence", func() bool { return converged(nodes, targets) })
	testenv.Poll(t, time.Minute, "every leader holding every region's vote", func() bool {
		probeAll(nodes)
		return everyLeaderHasEveryVote(nodes, targets, 3)
	})
	return nodes
}

func TestTargetedFleetStoresOnlyWhatItHoldsAndStillPages(t *testing.T) {
	targets := testTargets(40)
	nodes := startTargetedFleet(t, targets)

	// Each agent holds other agents' observations of the targets it holds
	// only (once a change of view has been acted on: the next evaluation
	// tick drops what an agent no longer holds), and 2 or 3 of the 6
	// agents (2 holders, and the leader in some agent's eyes) hold each
	// target: the fleet holds under half of what every agent holding
	// everything would (3 regions' results of every target on each of 6
	// agents, less its own; about 170 against 600). Under the race
	// detector leadership views lag for long stretches and an agent that
	// believes it leads holds those targets too (safe, and what it
	// believes): there only the first half is checked.
	testenv.Poll(t, 30*time.Second, "every agent storing only what it holds", func() bool {
		total := 0
		for _, n := range nodes {
			stray, remote := strayObservations(n.c)
			if stray > 0 {
				return false
			}
			total += remote
		}
		return raceEnabled || total < len(nodes)*len(targets)*3/2
	})

	// One region failing: suppressed, no incident anywhere.
	nodes[0].local.setDown("t00", true)
	testenv.Poll(t, 30*time.Second, "the one-region failure at the leader", func() bool {
		probeAll(nodes)
		l := leaderOf(nodes, "t00")
		if l == nil {
			return false
		}
		st, _ := l.c.Status("t00")
		return len(st.Failing) == 1
	})
	// Every region failing: an incident, known to every agent (verdicts
	// and incidents still go to every member).
	for _, n := range nodes {
		n.local.setDown("t01", true)
	}
	testenv.Poll(t, 30*time.Second, "an incident for t01 on every agent", func() bool {
		probeAll(nodes)
		for _, n := range nodes {
			open := false
			for _, in := range n.c.Incidents() {
				if in.Target == "t00" {
					t.Fatalf("%s has an incident for a one-region failure: %+v", n.c.cfg.NodeName, in)
				}
				open = open || (in.Target == "t01" && in.Open())
			}
			if !open {
				return false
			}
		}
		return true
	})
}

// A leader's successor already holds fresh votes from every region before
// the leader dies (it was a standby), and the hand-over raises nothing.
func TestTargetedLeaderDeathHandsOverWithFreshVotes(t *testing.T) {
	targets := testTargets(40)
	nodes := startTargetedFleet(t, targets)
	var target string
	var victim, standby *node
	for _, tg := range targets {
		l := leaderOf(nodes, tg.Name)
		if l == nil || l == nodes[0] {
			continue // nodes[0] is every other agent's seed
		}
		target, victim = tg.Name, l
		break
	}
	if victim == nil {
		t.Fatal("every target led by the seed")
	}
	// The standby: the agent ranked next, which leads once the leader is
	// gone; a holder of the target's observations.
	var rest []shard.Member
	for _, n := range nodes {
		if n != victim {
			rest = append(rest, shard.Member{ID: n.c.cfg.AgentID, Region: n.region})
		}
	}
	next := shard.Leader(target, rest)
	for _, n := range nodes {
		if n.c.cfg.AgentID == next {
			standby = n
		}
	}
	standby.c.mu.Lock()
	view := standby.c.holderViewLocked(time.Now())
	holds := view.holdsSelf(target)
	standby.c.mu.Unlock()
	if !holds {
		t.Fatalf("%s, next after the leader %s, does not hold %s", next, victim.c.cfg.NodeName, target)
	}
	testenv.Poll(t, 30*time.Second, "every region's fresh vote at the standby", func() bool {
		probeAll(nodes)
		return freshVotes(standby, target) == 3
	})

	victim.dead = true
	victim.c.Kill()
	testenv.Poll(t, 30*time.Second, "the standby leading "+target, func() bool {
		probeAll(nodes)
		l := leaderOf(nodes, target)
		if l != nil && l != standby {
			t.Fatalf("%s leads %s after its leader's death, want the standby %s", l.c.cfg.NodeName, target, standby.c.cfg.NodeName)
		}
		return l == standby
	})
	// The dead leader probed the target in its region: that vote moves to
	// its region's other agent, whose next report goes to the new leader.
	testenv.Poll(t, 30*time.Second, "every region's fresh vote at the new leader", func() bool {
		probeAll(nodes)
		return freshVotes(standby, target) == 3
	})
	for _, n := range nodes {
		if n.dead {
			continue
		}
		for _, in := range n.c.Incidents() {
			t.Errorf("%s has an incident during the hand-over: %+v", n.c.cfg.NodeName, in)
		}
	}
}

// TestTargetedVotesStayFreshByVouches: results that do not change are not
// sent again; the holders' copies stay fresh because each prober vouches
// for them and the holders' counts match (checkVouches). Were the counts
// wrong, every vouch would end in a resend: the votes would still be fresh,
// at the cost of a TCP repair per prober and holder every evaluation.
func TestTargetedVotesStayFreshByVouches(t *testing.T) {
	targets := testTargets(40)
	nodes := startTargetedFleet(t, targets)
	resends := func() (n uint64) {
		for _, x := range nodes {
			n += x.c.m.resendsAsked.Get()
		}
		return n
	}
	// Three times an observation's freshness (2 intervals + timeout + 2 s),
	// with every result unchanged.
	window := 3 * freshFor(&Observation{Interval: targets[0].Interval, Timeout: targets[0].Timeout})
	before, start := resends(), time.Now()
	testenv.Poll(t, 2*window, "the window of unchanged results to pass", func() bool {
		probeAll(nodes)
		return time.Since(start) > window
	})
	testenv.Poll(t, 30*time.Second, "every leader holding every region's fresh vote", func() bool {
		probeAll(nodes)
		return everyLeaderHasEveryVote(nodes, targets, 3)
	})
	// A few resends follow a view change (a heartbeat late under load);
	// a count that never matches asks 10 a second for each prober and
	// holder: about 500 a second in this fleet.
	if n, most := resends()-before, uint64(window.Seconds()*float64(len(nodes))); n > most {
		t.Errorf("%d resends asked in %s of unchanged results (at most %d): the vouches' counts do not match", n, window.Round(time.Second), most)
	}
}

// TestResendSendsOnlyTheBucketsThatDiffer: a holder whose sums differ from
// the prober's in one observation gets that observation's bucket back (a
// few entries), not the 3,000 the prober holds for it; one that sent no
// sums (an older agent) gets them all.
func TestResendSendsOnlyTheBucketsThatDiffer(t *testing.T) {
	var ours, held []*Observation
	for i := range 3000 {
		o := &Observation{Target: fmt.Sprintf("t%05d", i), AgentID: "eu-1", Boot: 1, Seq: uint64(i)}
		ours = append(ours, o)
		if i == 1234 {
			old := *o
			old.Seq = 1 // the holder missed the change
			o = &old
		}
		held = append(held, o)
	}
	held = held[:len(held)-1] // and never got the last one
	view := tableView{obs: held}
	r := resend{Node: "holder", Buckets: view.buckets(resendBuckets(len(ours)))}
	got := r.missing(ours)
	has := func(target string) bool {
		return slices.ContainsFunc(got, func(o *Observation) bool { return o.Target == target })
	}
	if !has("t01234") || !has("t02999") {
		t.Fatalf("the changed and the missing observations are not among the %d resent", len(got))
	}
	if most := 2 * 3000 / len(r.Buckets) * 3; len(got) > most {
		t.Errorf("%d observations resent for 2 that differ (at most %d: their buckets)", len(got), most)
	}
	if all := (resend{Node: "holder"}).missing(ours); len(all) != len(ours) {
		t.Errorf("no sums: %d resent, want all %d", len(all), len(ours))
	}

	// On the wire: the sums round-trip; a request without them (an agent
	// that predates them) decodes as one; oversized or cut ones are refused.
	back, err := decodeResend(encodeResend(r))
	if err != nil || back.Node != "holder" || !slices.Equal(back.Buckets, r.Buckets) {
		t.Fatalf("round trip: %v, %v", back.Node, err)
	}
	if len(encodeResend(r)) > 1200 {
		t.Errorf("a resend request of %d bytes does not fit a gossip packet", len(encodeResend(r)))
	}
	if old, err := decodeResend(encodeResend(resend{Node: "holder"})); err != nil || old.Buckets != nil {
		t.Errorf("a request without sums: %+v, %v", old, err)
	}
	big := encodeResend(resend{Node: "h", Buckets: make([]uint32, 2*maxResendBuckets)})
	if _, err := decodeResend(big); err == nil {
		t.Error("an oversized request was accepted")
	}
	if _, err := decodeResend(encodeResend(r)[:20]); err == nil {
		t.Error("a cut request was accepted")
	}
}
