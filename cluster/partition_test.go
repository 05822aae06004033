package cluster

import (
	"testing"
	"time"

	"github.com/vantage-probe/vantage/cluster/clustertest"
	"github.com/vantage-probe/vantage/internal/testenv"
)

func withFaultNet(t *testing.T, fnet *clustertest.Net) func(*Config) {
	return func(c *Config) {
		tr, err := fnet.Transport(c.NodeName, c.Region, "127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		c.Transport = tr
	}
}

func openIncidents(nodes []*node) int {
	n := 0
	for _, nd := range nodes {
		if nd.dead {
			continue
		}
		for _, in := range nd.c.Incidents() {
			if in.Open() {
				n++
			}
		}
	}
	return n
}

// A region cut off from the others sees all its targets fail (it is cut
// off from them too). It must raise no incident; the others carry on; after
// healing it rejoins.
func TestPartitionedRegionRaisesNoIncidentAndRejoins(t *testing.T) {
	fnet := clustertest.NewNet()
	targets := testTargets(9)
	nodes := startFleet(t, []string{"eu", "us", "ap"}, 1, targets, withFaultNet(t, fnet))
	testenv.Poll(t, 15*time.Second, "convergence", func() bool { return converged(nodes, targets) })
	probeAll(nodes)

	ap := nodes[2]
	fnet.Isolate("ap")
	for _, tg := range targets {
		ap.local.setDown(tg.Name, true)
	}
	// Play rounds while memberlist notices the partition.
	deadline := time.Now().Add(8 * time.Second)
	for time.Now().Before(deadline) {
		probeAll(nodes)
		if n := openIncidents(nodes); n != 0 {
			t.Fatalf("%d open incidents raised during a one-region partition", n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The others still cover every target between them.
	testenv.Poll(t, 10*time.Second, "eu and us to cover every target", func() bool {
		for _, tg := range targets {
			covered := 0
			for _, n := range nodes[:2] {
				for _, m := range n.local.mine() {
					if m == tg.Name {
						covered++
					}
				}
			}
			if covered != 2 {
				return false
			}
		}
		return true
	})
	// ap does not see enough regions: no verdict of its own is down.
	for _, st := range ap.c.Statuses() {
		if st.Verdict == "down" {
			t.Fatalf("isolated ap calls %s down: %s", st.Name, st.Reason)
		}
	}

	// Heal: ap rejoins (periodic re-join of seeds), and recovers.
	fnet.Heal()
	for _, tg := range targets {
		ap.local.setDown(tg.Name, false)
	}
	testenv.Poll(t, 20*time.Second, "ap to rejoin", func() bool {
		probeAll(nodes)
		return converged(nodes, targets)
	})
	if n := openIncidents(nodes); n != 0 {
		t.Fatalf("%d open incidents after healing", n)
	}
}

// An all-region outage during a partition of one region is still detected
// by the two remaining regions (quorum 2 of 3 known regions).
func TestOutageDetectedWhileOneRegionIsPartitioned(t *testing.T) {
	fnet := clustertest.NewNet()
	targets := testTargets(3)
	nodes := startFleet(t, []string{"eu", "us", "ap"}, 1, targets, withFaultNet(t, fnet))
	testenv.Poll(t, 15*time.Second, "convergence", func() bool { return converged(nodes, targets) })
	probeAll(nodes)
	fnet.Isolate("ap")
	testenv.Poll(t, 10*time.Second, "eu to see ap dead", func() bool { return nodes[0].c.ml.NumMembers() == 2 })
	for _, n := range nodes {
		n.local.setDown("t01", true)
	}
	testenv.Poll(t, 10*time.Second, "the outage to be declared by eu+us", func() bool {
		probeAll(nodes)
		for _, in := range nodes[0].c.Incidents() {
			if in.Target == "t01" && in.Open() {
				return true
			}
		}
		return false
	})
}

// A frozen agent (no Leave) loses its targets to its region peer.
func TestFrozenAgentIsReplaced(t *testing.T) {
	fnet := clustertest.NewNet()
	targets := testTargets(10)
	nodes := startFleet(t, []string{"eu"}, 2, targets, withFaultNet(t, fnet))
	testenv.Poll(t, 15*time.Second, "convergence", func() bool { return converged(nodes, targets) })
	fnet.Freeze(nodes[1].c.cfg.NodeName, true)
	testenv.Poll(t, 10*time.Second, "the peer to take every target", func() bool {
		return len(nodes[0].local.mine()) == len(targets)
	})
}

// An agent whose clock is an hour off changes nothing: freshness is judged
// by receipt time and ordering by (boot, seq).
func TestClockSkewChangesNothing(t *testing.T) {
	targets := testTargets(3)
	nodes := startFleet(t, []string{"eu", "us", "ap"}, 1, targets, func(c *Config) {
		if c.Region == "ap" {
			c.skew = time.Hour
		}
	})
	testenv.Poll(t, 15*time.Second, "convergence", func() bool { return converged(nodes, targets) })
	probeAll(nodes)
	testenv.Poll(t, 5*time.Second, "every region reporting on every target", func() bool {
		for _, st := range nodes[0].c.Statuses() {
			if st.Reporting != 3 {
				return false
			}
		}
		return true
	})
	for _, n := range nodes {
		n.local.setDown("t00", true)
	}
	probeAll(nodes)
	testenv.Poll(t, 5*time.Second, "the incident", func() bool {
		for _, in := range nodes[0].c.Incidents() {
			if in.Target == "t00" && in.Open() {
				return in.TimeToDetect() >= 0 && in.TimeToDetect() < time.Minute
			}
		}
		return false
	})
}

// Key rotation without downtime: install the new key everywhere as a
// secondary, make it primary, remove the old one. The fleet stays joined
// throughout, and a newcomer with only the new key can join at the end.
func TestGossipKeyRotation(t *testing.T) {
	oldKey := []byte("0123456789abcdef0123456789abcdef")
	newKey := []byte("ffffffffffffffff0000000000000000")
	targets := testTargets(2)
	nodes := startFleet(t, []string{"eu", "us"}, 1, targets, func(c *Config) { c.Keys = [][]byte{oldKey} })
	testenv.Poll(t, 10*time.Second, "convergence", func() bool { return converged(nodes, targets) })
	steps := [][][]byte{
		{oldKey, newKey}, // 1. install as secondary everywhere
		{newKey, oldKey}, // 2. use the new key
		{newKey},         // 3. remove the old key
	}
	for i, keys := range steps {
		for _, n := range nodes {
			if err := n.c.SetKeys(keys); err != nil {
				t.Fatalf("step %d: %v", i+1, err)
			}
		}
		time.Sleep(300 * time.Millisecond)
		if !converged(nodes, targets) {
			t.Fatalf("fleet split at rotation step %d", i+1)
		}
	}
	l := &scripted{down: map[string]bool{}}
	cfg := fastConfig("newcomer", "ap")
	cfg.Keys = [][]byte{newKey}
	cfg.Join = []string{nodes[0].c.LocalAddr()}
	c, err := New(cfg, l, targets)
	if err != nil {
		t.Fatal(err)
	}
	l.c = c
	defer c.Kill()
	testenv.Poll(t, 10*time.Second, "a newcomer with only the new key to join", func() bool { return nodes[0].c.ml.NumMembers() == 3 })
}

// When the leader of a target is in the partitioned region, the others stop
// counting it as a leader once its heartbeats stop, and detect an outage
// without waiting for memberlist to declare it dead.
func TestOutageDetectedWhenLeaderIsCutOff(t *testing.T) {
	fnet := clustertest.NewNet()
	targets := testTargets(12)
	nodes := startFleet(t, []string{"eu", "us", "ap"}, 1, targets, func(c *Config) {
		withFaultNet(t, fnet)(c)
		// Slow failure detection, so the test shows heartbeats doing the work.
		c.ProbeInterval, c.ProbeTimeout, c.SuspicionMult = 2*time.Second, time.Second, 6
	})
	testenv.Poll(t, 20*time.Second, "convergence", func() bool { return converged(nodes, targets) })
	probeAll(nodes)
	ap := nodes[2]
	victim := ""
	for _, tg := range targets {
		if ap.c.IsLeader(tg.Name) {
			victim = tg.Name
			break
		}
	}
	if victim == "" {
		t.Skip("ap leads no target with this hashing; nothing to show")
	}
	fnet.Isolate("ap")
	for _, n := range nodes {
		n.local.setDown(victim, true)
	}
	start := time.Now()
	testenv.Poll(t, 15*time.Second, "eu or us to declare the outage of "+victim, func() bool {
		probeAll(nodes[:2])
		for _, n := range nodes[:2] {
			for _, in := range n.c.Incidents() {
				if in.Target == victim && in.Open() {
					return true
				}
			}
		}
		return false
	})
	t.Logf("detected %v after the cut, while memberlist still counts %d members at eu", time.Since(start).Round(10*time.Millisecond), nodes[0].c.ml.NumMembers())
}
