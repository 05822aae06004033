package cluster

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/vantage-probe/vantage/internal/mono"
	"github.com/vantage-probe/vantage/internal/testenv"
)

// scripted is a Local whose probe outcomes the test sets per target. It is
// a seam, not a mock of a real part: the cluster under test is real
// (memberlist on loopback sockets); only the probes are scripted.
type scripted struct {
	mu       sync.Mutex
	assigned []string
	down     map[string]bool // target -> probe fails from this agent
	c        *Cluster
}

func (s *scripted) Assigned(t []string) {
	s.mu.Lock()
	s.assigned = append([]string(nil), t...)
	s.mu.Unlock()
}

func (s *scripted) mine() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.assigned...)
}

func (s *scripted) obs(target string) Observation {
	s.mu.Lock()
	defer s.mu.Unlock()
	failing := s.down[target]
	return Observation{Target: target, OK: !failing, Failing: failing, Interval: time.Second, Timeout: 500 * time.Millisecond}
}

func (s *scripted) Confirm(_ context.Context, target string) (Observation, bool) {
	o := s.obs(target)
	s.c.Report(o)
	return o, true
}

func (s *scripted) setDown(target string, down bool) {
	s.mu.Lock()
	s.down[target] = down
	s.mu.Unlock()
}

// probeAll plays one probe round: each agent reports its assigned targets.
func probeAll(nodes []*node) {
	for _, n := range nodes {
		if n.dead {
			continue
		}
		for _, t := range n.local.mine() {
			n.c.Report(n.local.obs(t))
		}
	}
}

type node struct {
	c      *Cluster
	local  *scripted
	region string
	dead   bool
}

func testTargets(n int) []TargetSpec {
	ts := make([]TargetSpec, n)
	for i := range ts {
		ts[i] = TargetSpec{Name: fmt.Sprintf("t%02d", i), Interval: time.Second, Timeout: 500 * time.Millisecond, MinRegions: 2}
	}
	return ts
}

func fastConfig(name, region string) Config {
	return Config{
		NodeName: name, Region: region, Bind: "127.0.0.1:0",
		GossipInterval: 20 * time.Millisecond, ProbeInterval: 100 * time.Millisecond, ProbeTimeout: 50 * time.Millisecond,
		SuspicionMult: 2, TCPTimeout: time.Second, PushPull: time.Second, RejoinInterval: time.Second,
		HeartbeatEvery: 200 * time.Millisecond, EvalEvery: 100 * time.Millisecond, Grace: time.Second,
		MinRegions: 2, ConfirmOnFailure: true,
	}
}

// startFleet starts regions x perRegion agents joined through the first.
func startFleet(t *testing.T, regions []string, perRegion int, targets []TargetSpec, tune func(*Config)) []*node {
	t.Helper()
	var nodes []*node
	var seed string
	for _, r := range regions {
		for i := 0; i < perRegion; i++ {
			cfg := fastConfig(fmt.Sprintf("%s-%d", r, i), r)
			if seed != "" {
				cfg.Join = []string{seed}
			}
			if tune != nil {
				tune(&cfg)
			}
			l := &scripted{down: map[string]bool{}}
			c, err := New(cfg, l, targets)
			if err != nil {
				t.Fatal(err)
			}
			l.c = c
			if seed == "" {
				seed = c.LocalAddr()
			}
			n := &node{c: c, local: l, region: r}
			nodes = append(nodes, n)
			t.Cleanup(func() {
				if !n.dead {
					_ = c.Leave(time.Second)
				}
			})
		}
	}
	return nodes
}

// converged: every live agent sees every live agent alive, and each target
// is assigned to exactly one agent per region.
func converged(nodes []*node, targets []TargetSpec) bool {
	live := 0
	for _, n := range nodes {
		if !n.dead {
			live++
		}
	}
	for _, n := range nodes {
		if n.dead {
			continue
		}
		if n.c.ml.NumMembers() != live {
			return false
		}
		// Leadership too: every agent has heard every other one settle.
		n.c.mu.Lock()
		cands := len(n.c.leaderCandidatesLocked(n.c.now()))
		n.c.mu.Unlock()
		if cands != live {
			return false
		}
	}
	owners := map[string]map[string]int{}
	for _, n := range nodes {
		if n.dead {
			continue
		}
		for _, t := range n.local.mine() {
			if owners[t] == nil {
				owners[t] = map[string]int{}
			}
			owners[t][n.region]++
		}
	}
	regions := map[string]bool{}
	for _, n := range nodes {
		if !n.dead {
			regions[n.region] = true
		}
	}
	for _, t := range targets {
		for r := range regions {
			if owners[t.Name][r] != 1 {
				return false
			}
		}
	}
	return true
}

func leaderOf(nodes []*node, target string) *node {
	for _, n := range nodes {
		if !n.dead && n.c.IsLeader(target) {
			return n
		}
	}
	return nil
}

func TestFleetSplitsTargetsOnePerRegion(t *testing.T) {
	targets := testTargets(24)
	nodes := startFleet(t, []string{"eu", "us", "ap"}, 2, targets, nil)
	testenv.Poll(t, 15*time.Second, "convergence", func() bool { return converged(nodes, targets) })
	// Both agents of a region share its targets.
	for _, n := range nodes {
		if len(n.local.mine()) == 0 {
			t.Errorf("%s probes nothing; targets should be split within the region", n.c.cfg.NodeName)
		}
	}
	// Exactly one leader per target, once every agent has every other's
	// metadata (membership converges member by member, so two agents can
	// briefly disagree on the candidates).
	var bad []string
	oneLeaderEach := func() bool {
		bad = bad[:0]
		for _, tg := range targets {
			leaders := 0
			for _, n := range nodes {
				if n.c.IsLeader(tg.Name) {
					leaders++
				}
			}
			if leaders != 1 {
				bad = append(bad, fmt.Sprintf("%s: %d leaders", tg.Name, leaders))
			}
		}
		return len(bad) == 0
	}
	if !mono.Poll(context.Background(), 30*time.Second, 20*time.Millisecond, oneLeaderEach) {
		t.Errorf("not one leader per target 30 s after convergence: %v", bad)
	}
}

func TestOneRegionFailureIsSuppressedAllRegionFailureIsAnIncident(t *testing.T) {
	targets := testTargets(6)
	nodes := startFleet(t, []string{"eu", "us", "ap"}, 1, targets, nil)
	testenv.Poll(t, 15*time.Second, "convergence", func() bool { return converged(nodes, targets) })
	probeAll(nodes)

	// t00 fails from eu only.
	nodes[0].local.setDown("t00", true)
	probeAll(nodes)
	testenv.Poll(t, 5*time.Second, "the suppressed failure to reach the leader", func() bool {
		l := leaderOf(nodes, "t00")
		if l == nil {
			return false
		}
		st, _ := l.c.Status("t00")
		return len(st.Failing) == 1
	})
	for i := 0; i < 5; i++ {
		probeAll(nodes)
		time.Sleep(50 * time.Millisecond)
	}
	for _, n := range nodes {
		for _, in := range n.c.Incidents() {
			t.Fatalf("%s has incident %+v for a one-region failure", n.c.cfg.NodeName, in)
		}
	}
	st, _ := leaderOf(nodes, "t00").c.Status("t00")
	if st.Verdict != "up" {
		t.Fatalf("one region failing: verdict %q (%s), want up", st.Verdict, st.Reason)
	}

	// t01 fails everywhere: an incident on every agent (by gossip).
	for _, n := range nodes {
		n.local.setDown("t01", true)
	}
	probeAll(nodes)
	testenv.Poll(t, 5*time.Second, "an incident for t01 on every agent", func() bool {
		for _, n := range nodes {
			found := false
			for _, in := range n.c.Incidents() {
				if in.Target == "t01" && in.Open() {
					found = true
				}
			}
			if !found {
				return false
			}
		}
		return true
	})
	in := nodes[0].c.Incidents()[0]
	if len(in.Regions) < 2 || in.DetectedAt.Before(in.StartedAt) {
		t.Fatalf("incident %+v: want >= 2 regions and detected after started", in)
	}
	// Recovery resolves it.
	for _, n := range nodes {
		n.local.setDown("t01", false)
	}
	probeAll(nodes)
	testenv.Poll(t, 5*time.Second, "the incident to resolve", func() bool {
		for _, n := range nodes {
			for _, in := range n.c.Incidents() {
				if in.Target == "t01" && in.Open() {
					return false
				}
			}
		}
		return true
	})
}

func TestConfirmOnFailureDetectsWithoutWaitingForOtherRegionsSchedule(t *testing.T) {
	targets := testTargets(4)
	nodes := startFleet(t, []string{"eu", "us", "ap"}, 1, targets, nil)
	testenv.Poll(t, 15*time.Second, "convergence", func() bool { return converged(nodes, targets) })
	probeAll(nodes)
	// The target is down for everyone, but only eu's schedule comes round:
	// the other regions learn of it only through confirmation requests.
	for _, n := range nodes {
		n.local.setDown("t02", true)
	}
	nodes[0].c.Report(nodes[0].local.obs("t02"))
	testenv.Poll(t, 5*time.Second, "an incident raised by confirmations", func() bool {
		for _, in := range nodes[0].c.Incidents() {
			if in.Target == "t02" && in.Open() {
				return true
			}
		}
		return false
	})
	if got := nodes[0].c.m.confirm["requested"].Get(); got < 2 {
		t.Fatalf("confirmations requested = %d, want >= 2 (one per other region)", got)
	}
}

func TestKilledAgentsTargetsAreReassigned(t *testing.T) {
	targets := testTargets(20)
	nodes := startFleet(t, []string{"eu", "us"}, 2, targets, nil)
	testenv.Poll(t, 15*time.Second, "convergence", func() bool { return converged(nodes, targets) })
	victim := nodes[1]
	had := victim.local.mine()
	if len(had) == 0 {
		t.Fatal("victim probes nothing")
	}
	victim.dead = true
	victim.c.Kill()
	start := time.Now()
	testenv.Poll(t, 15*time.Second, "reassignment after a crash", func() bool { return converged(nodes, targets) })
	t.Logf("reassigned %d targets %v after the kill", len(had), time.Since(start).Round(time.Millisecond))
	survivor := nodes[0]
	mine := map[string]bool{}
	for _, n := range survivor.local.mine() {
		mine[n] = true
	}
	for _, n := range had {
		if !mine[n] {
			t.Errorf("target %s of the dead agent not taken over by its region peer", n)
		}
	}
}

func TestWrongKeyCannotJoin(t *testing.T) {
	targets := testTargets(2)
	key1 := []byte("0123456789abcdef0123456789abcdef")
	key2 := []byte("fedcba9876543210fedcba9876543210")
	a := startFleet(t, []string{"eu"}, 1, targets, func(c *Config) { c.Keys = [][]byte{key1} })
	l := &scripted{down: map[string]bool{}}
	cfg := fastConfig("intruder", "us")
	cfg.Keys = [][]byte{key2}
	cfg.Join = []string{a[0].c.LocalAddr()}
	b, err := New(cfg, l, targets)
	if err != nil {
		t.Fatal(err)
	}
	l.c = b
	defer b.Kill()
	time.Sleep(500 * time.Millisecond) // give a wrong join every chance to (wrongly) succeed
	if n := a[0].c.ml.NumMembers(); n != 1 {
		t.Fatalf("member with the wrong key joined: %d members", n)
	}
	// And a different cluster label is refused too.
	cfg2 := fastConfig("other-cluster", "us")
	cfg2.Keys = [][]byte{key1}
	cfg2.Label = "another"
	cfg2.Join = []string{a[0].c.LocalAddr()}
	l2 := &scripted{down: map[string]bool{}}
	c2, err := New(cfg2, l2, targets)
	if err != nil {
		t.Fatal(err)
	}
	l2.c = c2
	defer c2.Kill()
	time.Sleep(500 * time.Millisecond)
	if n := a[0].c.ml.NumMembers(); n != 1 {
		t.Fatalf("member with another cluster label joined: %d members", n)
	}
}

func TestStatusesSorted(t *testing.T) {
	targets := testTargets(3)
	nodes := startFleet(t, []string{"eu"}, 1, targets, nil)
	testenv.Poll(t, 5*time.Second, "self assignment", func() bool { return len(nodes[0].local.mine()) == 3 })
	probeAll(nodes)
	st := nodes[0].c.Statuses()
	if !sort.SliceIsSorted(st, func(i, j int) bool { return st[i].Name < st[j].Name }) || len(st) != 3 {
		t.Fatalf("statuses: %+v", st)
	}
	// A cluster of one: quorum capped at its single region.
	nodes[0].local.setDown("t00", true)
	probeAll(nodes)
	testenv.Poll(t, 3*time.Second, "single-region incident", func() bool {
		s, _ := nodes[0].c.Status("t00")
		return s.Verdict == "down"
	})
}
