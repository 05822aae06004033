package cluster

import (
	"fmt"
	"testing"
	"time"

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
			started: time.Now().Add(-age), now: time.Now, prevOwners: map[string]map[string]time.Time{}}
	}

	c := newCluster(time.Second)
	c.members = map[string]*memberInfo{}
	for _, m := range members {
		c.members[m.ID] = &memberInfo{Member: Member{Name: m.ID, AgentID: m.ID, Region: m.Region, State: Alive}}
	}
	c.assign = next
	c.handOverToNewcomerLocked(ts, members, next)
	taken := next.OwnedBy("eu-new")
	if len(taken) == 0 {
		t.Fatal("the newcomer took no target: the test shows nothing")
	}
	now := time.Now()
	for _, name := range taken {
		former := before.Owners(name)["eu"][0]
		until, ok := c.prevOwners[name][former]
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
	old.handOverToNewcomerLocked(ts, members, next)
	if len(old.prevOwners) != 0 {
		t.Errorf("past its grace an agent is no newcomer: %d targets got former owners", len(old.prevOwners))
	}
}

func contains(ids []string, id string) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}
