package cluster

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vantage-probe/vantage/cluster/clustertest"
	"github.com/vantage-probe/vantage/internal/testenv"
)

// exporters counts, per target, the agents that would export its verdict
// now (LeaderVerdicts is what /metrics writes). A killed agent exports
// nothing: its list is empty.
func exporters(nodes []*node) map[string]int {
	out := map[string]int{}
	for _, n := range nodes {
		if n.c.stopped() {
			continue
		}
		for _, v := range n.c.LeaderVerdicts() {
			out[v.Name]++
		}
	}
	return out
}

// watchExporters checks, every 5ms until stop, that no target has two
// exporters, and records any that does: the promise is checked while
// things happen, not once at the end.
func watchExporters(t *testing.T, nodes func() []*node) (stop func() map[string]int) {
	t.Helper()
	var mu sync.Mutex
	double := map[string]int{}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
			}
			ns := nodes()
			for name, n := range exporters(ns) {
				if n > 1 {
					mu.Lock()
					if double[name] == 0 {
						var who []string
						for _, nd := range ns {
							if nd.c.stopped() {
								continue
							}
							for _, v := range nd.c.LeaderVerdicts() {
								if v.Name == name {
									who = append(who, fmt.Sprintf("%s(boot %d)", nd.c.cfg.NodeName, nd.c.boot))
								}
							}
						}
						t.Logf("%s exported by %v", name, who)
					}
					double[name]++
					mu.Unlock()
				}
			}
		}
	})
	return func() map[string]int {
		close(done)
		wg.Wait()
		return double
	}
}

// TestRestartedAgentLeadsNothingUntilItKnowsTheFleet: an agent killed and
// started again (same name, new boot) at first knows no member but itself;
// it must not take itself for every target's leader meanwhile, and at no
// moment of the restart may two agents export one target's verdict.
func TestRestartedAgentLeadsNothingUntilItKnowsTheFleet(t *testing.T) {
	targets := testTargets(30)
	nodes := startFleet(t, []string{"eu", "us", "ap"}, 1, targets, nil)
	testenv.Poll(t, 15*time.Second, "convergence", func() bool { return converged(nodes, targets) })
	testenv.Poll(t, 5*time.Second, "every target exported once", func() bool {
		ex := exporters(nodes)
		for _, tg := range targets {
			if ex[tg.Name] != 1 {
				return false
			}
		}
		return true
	})
	var mu sync.Mutex
	current := func() []*node {
		mu.Lock()
		defer mu.Unlock()
		return append([]*node(nil), nodes...)
	}
	stop := watchExporters(t, current)

	victim := nodes[1]
	victim.dead = true
	victim.c.Kill()
	// Restarted: same node name, the others still know its old address.
	cfg := fastConfig(victim.c.cfg.NodeName, victim.region)
	cfg.Join = []string{nodes[0].c.LocalAddr()}
	l := &scripted{down: map[string]bool{}}
	c, err := New(cfg, l, targets)
	if err != nil {
		t.Fatal(err)
	}
	l.c = c
	t.Cleanup(func() { _ = c.Leave(time.Second) })
	reborn := &node{c: c, local: l, region: victim.region}
	var earlyLed atomic.Int64
	mu.Lock()
	nodes[1] = reborn
	mu.Unlock()
	for !c.settled.Load() {
		earlyLed.Add(int64(len(c.LeaderVerdicts())))
		time.Sleep(time.Millisecond)
	}
	testenv.Poll(t, 15*time.Second, "convergence after the restart", func() bool { return converged(current(), targets) })
	probeAll(current())
	testenv.Poll(t, 5*time.Second, "every target exported once after the restart", func() bool {
		ex := exporters(current())
		for _, tg := range targets {
			if ex[tg.Name] != 1 {
				return false
			}
		}
		return true
	})
	if double := stop(); len(double) > 0 {
		t.Errorf("targets exported by two agents at once during the restart (times seen): %v", double)
	}
	if n := earlyLed.Load(); n > 0 {
		t.Errorf("the restarted agent exported %d verdicts before it knew the fleet", n)
	}
	if len(c.LeaderVerdicts()) == 0 {
		t.Error("the restarted agent leads nothing once settled (rendezvous gives it a share)")
	}
}

// TestCutOffLeaderLetsGoFirst: an agent cut off from every other agent
// stops exporting before the others take its targets over, so a partition
// never shows two exporters of one target.
func TestCutOffLeaderLetsGoFirst(t *testing.T) {
	targets := testTargets(30)
	fnet := clustertest.NewNet()
	nodes := startFleet(t, []string{"eu", "us", "ap"}, 1, targets, withFaultNet(t, fnet))
	testenv.Poll(t, 15*time.Second, "convergence", func() bool { return converged(nodes, targets) })
	probeAll(nodes)
	testenv.Poll(t, 5*time.Second, "every target exported once", func() bool {
		ex := exporters(nodes)
		for _, tg := range targets {
			if ex[tg.Name] != 1 {
				return false
			}
		}
		return true
	})
	stop := watchExporters(t, func() []*node { return nodes })
	fnet.Isolate("us")
	cut := nodes[1]
	testenv.Poll(t, 15*time.Second, "the cut-off agent to lead nothing", func() bool { return len(cut.c.LeaderVerdicts()) == 0 })
	others := []*node{nodes[0], nodes[2]}
	testenv.Poll(t, 15*time.Second, "the others to export every target", func() bool {
		probeAll(others)
		ex := exporters(others)
		for _, tg := range targets {
			if ex[tg.Name] != 1 {
				return false
			}
		}
		return true
	})
	if double := stop(); len(double) > 0 {
		t.Errorf("targets exported by two agents at once during the partition: %v", double)
	}
}

// TestJoinRetriesUntilTheSeedStarts: an agent that starts before its seed
// keeps trying with a short backoff, so agents started together in any
// order form one cluster within seconds, not after rejoin_interval.
func TestJoinRetriesUntilTheSeedStarts(t *testing.T) {
	targets := testTargets(2)
	// A fixed address on a loopback IP no other test uses: the joiner must
	// know its seed's address before the seed exists.
	const seedAddr = "127.88.0.1:17946"
	joiner := fastConfig("late-seed-joiner", "us")
	joiner.Join = []string{seedAddr}
	joiner.RejoinInterval = time.Hour // only the start-up retry may join
	jl := &scripted{down: map[string]bool{}}
	jc, err := New(joiner, jl, targets)
	if err != nil {
		t.Fatal(err)
	}
	jl.c = jc
	t.Cleanup(func() { _ = jc.Leave(time.Second) })

	time.Sleep(700 * time.Millisecond) // the joiner's first attempts fail: that is the point
	seed := fastConfig("late-seed", "eu")
	seed.Bind = seedAddr
	sl := &scripted{down: map[string]bool{}}
	sc, err := New(seed, sl, targets)
	if err != nil {
		t.Skipf("cannot bind %s: %v", seedAddr, err)
	}
	sl.c = sc
	t.Cleanup(func() { _ = sc.Leave(time.Second) })
	start := time.Now()
	testenv.Poll(t, 10*time.Second, "the joiner to find its seed", func() bool { return sc.ml.NumMembers() == 2 && jc.ml.NumMembers() == 2 })
	t.Logf("joined %v after the seed started", time.Since(start).Round(time.Millisecond))
}

// TestStopIsOnce: Kill, Leave and Kill again, from several goroutines, stop
// once without panicking (a closed channel closed again) or blocking.
func TestStopIsOnce(t *testing.T) {
	nodes := startFleet(t, []string{"eu", "us"}, 1, testTargets(2), nil)
	c := nodes[1].c
	nodes[1].dead = true
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Go(func() {
			if i%2 == 0 {
				c.Kill()
			} else {
				_ = c.Leave(time.Second)
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatal("Leave and Kill did not return")
	}
}

// TestOneWayLossLeavesOneLeader: a region whose packets go out no more,
// though it still hears the others, used to keep leading its targets
// while the others, no longer hearing it, took them over: two exporters
// (found by harness/netlab). The others' heartbeats doubt it, and it lets
// go first. Healed, it leads again, and at no moment are there two.
func TestOneWayLossLeavesOneLeader(t *testing.T) {
	targets := testTargets(30)
	fnet := clustertest.NewNet()
	nodes := startFleet(t, []string{"eu", "us", "ap"}, 1, targets, withFaultNet(t, fnet))
	testenv.Poll(t, 15*time.Second, "convergence", func() bool { return converged(nodes, targets) })
	probeAll(nodes)
	once := func(ns []*node) func() bool { return exportedOnce(ns, targets) }
	testenv.Poll(t, 5*time.Second, "every target exported once", once(nodes))
	stop := watchExporters(t, func() []*node { return nodes })
	fnet.CutOneWay("us", "eu")
	fnet.CutOneWay("us", "ap")
	cut := nodes[1]
	testenv.Poll(t, 20*time.Second, "the agent nobody hears to lead nothing", func() bool { return len(cut.c.LeaderVerdicts()) == 0 })
	testenv.Poll(t, 20*time.Second, "the others to export every target", once([]*node{nodes[0], nodes[2]}))
	fnet.Heal()
	testenv.Poll(t, 30*time.Second, "the healed agent to lead again", func() bool { return len(cut.c.LeaderVerdicts()) > 0 })
	testenv.Poll(t, 10*time.Second, "every target exported once after the heal", once(nodes))
	if double := stop(); len(double) > 0 {
		t.Errorf("targets exported by two agents at once: %v", double)
	}
}

// TestDeafRegionLeavesTheOthersLeading: the other way round, an agent that
// hears nobody from the other regions (their packets to it dropped) but is
// heard by all. It is alone and leads nothing; it doubts everyone, and its
// doubts reach everyone, but an agent that may not lead cannot veto: the
// others keep leading every target (before, every leader stopped and an
// outage got no verdict: the fault lab's one-way-in scenario).
func TestDeafRegionLeavesTheOthersLeading(t *testing.T) {
	targets := testTargets(30)
	fnet := clustertest.NewNet()
	nodes := startFleet(t, []string{"eu", "us", "ap"}, 1, targets, withFaultNet(t, fnet))
	testenv.Poll(t, 15*time.Second, "convergence", func() bool { return converged(nodes, targets) })
	once := func(ns []*node) func() bool { return exportedOnce(ns, targets) }
	testenv.Poll(t, 5*time.Second, "every target exported once", once(nodes))
	stop := watchExporters(t, func() []*node { return nodes })
	fnet.CutOneWay("eu", "ap")
	fnet.CutOneWay("us", "ap")
	deaf := nodes[2]
	testenv.Poll(t, 20*time.Second, "the deaf agent to lead nothing", func() bool { return len(deaf.c.LeaderVerdicts()) == 0 })
	testenv.Poll(t, 20*time.Second, "the others to export every target", once(nodes[:2]))
	// Held for longer than the doubts take to arrive: the others must go
	// on leading, every target, all the while.
	deadline := time.Now().Add(4 * time.Second)
	for time.Now().Before(deadline) {
		if !once(nodes[:2])() {
			t.Fatalf("a target without its verdict while ap is deaf: exporters %v", exporters(nodes[:2]))
		}
		time.Sleep(100 * time.Millisecond)
	}
	fnet.Heal()
	testenv.Poll(t, 30*time.Second, "every target exported once after the heal", once(nodes))
	if double := stop(); len(double) > 0 {
		t.Errorf("targets exported by two agents at once: %v", double)
	}
}

// exportedOnce has ns probe every target, then reports whether each one's
// verdict is exported by exactly one of them.
func exportedOnce(ns []*node, targets []TargetSpec) func() bool {
	return func() bool {
		probeAll(ns)
		ex := exporters(ns)
		for _, tg := range targets {
			if ex[tg.Name] != 1 {
				return false
			}
		}
		return true
	}
}
