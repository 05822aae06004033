package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/vantage-probe/vantage/cluster/shard"
)

// TestNewcomerKeepsFormerOwnersVotes: an agent that just joined counts, for
// each target it takes over, the owner the fleet had without it as a
// former owner (a vote for the grace), as its peers do from their previous
// assignment; once its grace since start is over it records none.
func TestNewcomerKeepsFormerOwnersVotes(t *testing.T) {
	members := []shard.Member{{ID: "eu-1", Region: "eu"}, {ID: "eu-2", Region: "eu"}, {ID: "us-1", Region: "us"}, {ID: "eu-new", Region: "eu"}}
	var ts []shard.Target
	for i := range 200 {
		ts = append(ts, shard.Target{Name: fmt.Sprintf("t%03d", i), Regions: []string{"eu", "us"}})
	}
	next := shard.Assign(ts, members, 1)
	before := shard.Assign(ts, members[:3], 1)
	newCluster := func(age time.Duration) *Cluster {
		return &Cluster{cfg: Config{AgentID: "eu-new", Region: "eu", Grace: 45 * time.Second, ReplicasPerRegion: 1},
			started: time.Now().Add(-age), now: time.Now, prevOwners: map[string]formerOwners{}}
	}

	c := newCluster(time.Second)
	c.members = map[string]*memberInfo{}
	for _, m := range members {
		c.members[m.ID] = &memberInfo{Member: Member{Name: m.ID, AgentID: m.ID, Region: m.Region, State: Alive}}
	}
	c.assign = next
	c.handOverToNewcomerLocked(ts, members, next, next.OwnedBy("eu-new"))
	taken := next.OwnedBy("eu-new")
	if len(taken) == 0 {
		t.Fatal("the newcomer took no target: the test shows nothing")
	}
	now := time.Now()
	for _, name := range taken {
		former := before.Owners(name)["eu"][0]
		until, ok := c.prevOwners[name].until(former)
		if !ok {
			t.Errorf("%s: former owner %s has no vote at the newcomer", name, former)
			continue
		}
		if left := until.Sub(now); left <= 0 || left > 44*time.Second {
			t.Errorf("%s: former owner's vote lasts %s more, want the 44 s left of the grace", name, left)
		}
		if voters := c.votersLocked(name, now); !contains(voters["eu"], former) {
			t.Errorf("%s: voters %v lack the former owner %s", name, voters, former)
		}
	}
	if len(c.prevOwners) != len(taken) {
		t.Errorf("former owners recorded for %d targets, want the %d taken over", len(c.prevOwners), len(taken))
	}

	old := newCluster(time.Minute)
	old.handOverToNewcomerLocked(ts, members, next, next.OwnedBy("eu-new"))
	if len(old.prevOwners) != 0 {
		t.Errorf("past its grace an agent is no newcomer: %d targets got former owners", len(old.prevOwners))
	}
}

// newHolderView is the holder view of live members under lead, with k
// holders a target (agents use the leader view's, keyed once).
func newHolderView(self string, live []shard.Member, lead leaders, k int) holderView {
	return holderView{self: self, live: live, rank: shard.NewRanking(live), lead: lead, k: k}
}

func contains(ids []string, id string) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// TestFormerOwners: extend adds an owner or lengthens its vote, never
// shortens it; prune drops the ended ones.
func TestFormerOwners(t *testing.T) {
	t0 := time.Unix(1000, 0)
	var fo formerOwners
	fo = fo.extend("a", t0.Add(5*time.Second)).extend("b", t0.Add(20*time.Second))
	if u, _ := fo.until("a"); !u.Equal(t0.Add(5 * time.Second)) {
		t.Errorf("extend: a until %v, want +5s", u)
	}
	fo = fo.extend("a", t0.Add(time.Second)).extend("b", t0.Add(30*time.Second)).extend("c", t0.Add(15*time.Second))
	if u, _ := fo.until("a"); !u.Equal(t0.Add(5 * time.Second)) {
		t.Errorf("extend shortened a's vote to %v", u)
	}
	if u, _ := fo.until("b"); !u.Equal(t0.Add(30 * time.Second)) {
		t.Errorf("extend: b until %v, want +30s", u)
	}
	fo = fo.prune(t0.Add(16 * time.Second))
	if len(fo) != 1 || fo[0].id != "b" {
		t.Errorf("after pruning at +16s: %v, want only b", fo)
	}
	if _, ok := fo.until("a"); ok {
		t.Error("a still a former owner after its vote ended")
	}
}

// TestFormerOwnersVoteInVouches: a holder counts a former owner's
// observations in a vouch while its grace lasts, as it counts its vote.
func TestFormerOwnersVoteInVouches(t *testing.T) {
	members := []shard.Member{{ID: "a", Region: "eu"}, {ID: "b", Region: "eu"}}
	next := shard.Assign([]shard.Target{{Name: "t"}}, members, 1)
	owner := next.Owners("t")["eu"][0]
	other := "a"
	if owner == "a" {
		other = "b"
	}
	now := time.Now()
	c := &Cluster{assign: next, prevOwners: map[string]formerOwners{"t": {{id: other, until: now.Add(time.Second)}}}}
	if !c.votesLocked("t", owner, now) {
		t.Error("the owner does not vote")
	}
	if !c.votesLocked("t", other, now) {
		t.Error("a former owner within its grace does not vote")
	}
	if c.votesLocked("t", other, now.Add(2*time.Second)) {
		t.Error("a former owner votes after its grace")
	}
	if c.votesLocked("t", "stranger", now) {
		t.Error("a stranger votes")
	}
}

// TestLostTargetsAreVouchedForUntilTheVoteEnds: a target this agent lost
// in a reassignment, while it holds its own observation, is vouched for to
// its holders (ownFreshForLocked) until its vote ends, and then forgotten;
// a lost target it never probed is not indexed at all.
func TestLostTargetsAreVouchedForUntilTheVoteEnds(t *testing.T) {
	members := []shard.Member{{ID: "a", Region: "eu"}, {ID: "b", Region: "eu"}, {ID: "c", Region: "us"}}
	ts := []shard.Target{{Name: "probed", Regions: []string{"eu"}}, {Name: "never", Regions: []string{"eu"}}}
	now := time.Now()
	own := &Observation{Target: "probed", AgentID: "a", Region: "eu", Interval: 30 * time.Second, received: localClock.Stamp(now)}
	c := &Cluster{cfg: Config{AgentID: "a", Region: "eu"},
		targets:    map[string]*targetRec{"probed": {obs: observations{own}}, "never": {}},
		prevOwners: map[string]formerOwners{}, lostVotes: map[string]time.Time{},
		assign: shard.Assign(ts, members[1:], 1), // b owns both in eu now
	}
	view := newHolderView("a", members, leaders{}, 3)
	if got := c.ownFreshForLocked(&view, now, ""); len(got) != 0 {
		t.Fatalf("vouches before any loss: %v", got)
	}

	until := now.Add(45 * time.Second)
	c.formerOwnerLocked("probed", "a", until)
	c.formerOwnerLocked("never", "a", until)
	c.formerOwnerLocked("probed", "b", until) // another agent's loss is not ours to vouch for
	if len(c.lostVotes) != 1 {
		t.Fatalf("lost votes indexed: %v, want only the probed target", c.lostVotes)
	}
	got := c.ownFreshForLocked(&view, now.Add(time.Second), "")
	for _, holder := range []string{"b", "c"} {
		if len(got[holder]) != 1 || got[holder][0] != own {
			t.Errorf("holder %s is vouched %v, want the lost target's observation", holder, got[holder])
		}
	}
	if _, ok := got["a"]; ok {
		t.Error("an agent vouches to itself")
	}
	if only := c.ownFreshForLocked(&view, now.Add(time.Second), "c"); len(only) != 1 || len(only["c"]) != 1 {
		t.Errorf("for holder c only: %v", only)
	}

	if got := c.ownFreshForLocked(&view, until.Add(time.Second), ""); len(got) != 0 {
		t.Errorf("vouched after the vote ended: %v", got)
	}
	if len(c.lostVotes) != 0 {
		t.Errorf("an ended vote stays indexed: %v", c.lostVotes)
	}
}

// TestVouchPlanFollowsHoldersAndAssignment: the plan of which holder gets
// which of our targets is kept while the holders (holdKey) and our
// assignment (mineGen) stay, and made again when either changes.
func TestVouchPlanFollowsHoldersAndAssignment(t *testing.T) {
	three := []shard.Member{{ID: "a", Region: "eu"}, {ID: "b", Region: "eu"}, {ID: "c", Region: "us"}}
	c := &Cluster{cfg: Config{AgentID: "a"}, mine: []string{"t1", "t2"}, holdKey: 1, mineGen: 1,
		targets: map[string]*targetRec{"t1": {}, "t2": {}}}
	all := newHolderView("a", three, leaders{}, 3)
	plan := c.vouchPlanLocked(&all)
	if len(plan["b"]) != 2 || len(plan["c"]) != 2 || plan["a"] != nil {
		t.Fatalf("plan %v: b and c hold both targets (k=3 of 3 members), a is us", plan)
	}
	alone := newHolderView("a", three[:1], leaders{}, 3)
	if got := c.vouchPlanLocked(&alone); len(got["b"]) != 2 {
		t.Errorf("plan remade under the same holdKey and assignment: %v", got)
	}
	c.holdKey = 2
	if got := c.vouchPlanLocked(&alone); len(got) != 0 {
		t.Errorf("new holders: plan %v, want none (we are the only member)", got)
	}
	c.mine, c.mineGen = []string{"t1"}, 2
	if got := c.vouchPlanLocked(&all); len(got["b"]) != 1 {
		t.Errorf("new assignment: plan %v, want t1 only", got)
	}
	c.holdKey = 0 // not targeted: built from the view each time, not kept
	if got := c.vouchPlanLocked(&alone); len(got) != 0 || c.plan.holdKey != 2 {
		t.Errorf("unkeyed view: plan %v, kept under %d", got, c.plan.holdKey)
	}
}

type countingLocal struct{ calls int }

func (l *countingLocal) Assigned([]string) { l.calls++ }
func (l *countingLocal) Confirm(context.Context, string) (Observation, bool) {
	return Observation{}, false
}

// TestReassignSkipsWhatDidNotChange: a membership event that leaves the
// live members, their regions and the targets as they were (a refuted
// suspicion) does not redo the assignment; a new member, or a reload that
// changes a target's regions under the same name, does.
func TestReassignSkipsWhatDidNotChange(t *testing.T) {
	local := &countingLocal{}
	c := &Cluster{cfg: Config{AgentID: "eu-1", Region: "eu", ReplicasPerRegion: 1, Grace: time.Minute},
		now: time.Now, started: time.Now(), log: slog.New(slog.DiscardHandler), m: newClusterMetrics(metrics.NewSet()),
		local: local, members: map[string]*memberInfo{}, prevOwners: map[string]formerOwners{}, lostVotes: map[string]time.Time{}}
	for _, m := range []Member{{Name: "eu-1", AgentID: "eu-1", Region: "eu", Self: true}, {Name: "us-1", AgentID: "us-1", Region: "us"}} {
		m.State, m.Proto = Alive, int(ProtocolVersion)
		c.members[m.Name] = &memberInfo{Member: m}
	}
	c.setTargetsLocked(testTargets(20))
	c.reassign()
	if local.calls != 1 || len(c.mine) == 0 {
		t.Fatalf("first assignment: %d calls, %d targets", local.calls, len(c.mine))
	}
	c.reassign() // the same members, regions and targets
	if local.calls != 1 {
		t.Errorf("an unchanged fleet was reassigned (%d calls)", local.calls)
	}

	c.members["eu-2"] = &memberInfo{Member: Member{Name: "eu-2", AgentID: "eu-2", Region: "eu", State: Alive, Proto: int(ProtocolVersion)}}
	c.reassign()
	if local.calls != 2 || c.assign.OwnersIn("t00", "eu") == nil {
		t.Errorf("a join was not reassigned (%d calls)", local.calls)
	}

	ts := testTargets(20)
	for i := range ts {
		ts[i].Regions = []string{"us"} // the same names, now probed from us only
	}
	c.setTargetsLocked(ts)
	c.reassign()
	if local.calls != 3 || len(c.mine) != 0 {
		t.Errorf("a reload that moved every target to us: %d calls, eu-1 still owns %d", local.calls, len(c.mine))
	}
}
