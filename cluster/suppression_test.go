package cluster

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/vantage-probe/vantage/cluster/quorum"
	"github.com/vantage-probe/vantage/internal/testenv"
)

// A leader that takes a target over mid-streak (the old leader crashed)
// dates the streak from the observations' first failed probe, not from
// its own first look: a one-region failure that has already lasted past
// suppressAfter is counted at once, and is counted once.
func TestSuppressionDatesTheStreakFromTheFirstFailedProbe(t *testing.T) {
	now := time.Now()
	spec := TargetSpec{Name: "web", Interval: 5 * time.Second, Timeout: time.Second}
	c := &Cluster{
		m: newClusterMetrics(metrics.NewSet()),
		targets: map[string]*targetRec{"web": {spec: spec, obs: observations{
			{Target: "web", AgentID: "eu-1", Region: "eu", Failing: true, Reason: "status_mismatch",
				received: localClock.Stamp(now.Add(-time.Second)), FailingFor: 4 * time.Second, Interval: spec.Interval, Timeout: spec.Timeout},
			{Target: "web", AgentID: "us-1", Region: "us", OK: true, received: localClock.Stamp(now), Interval: spec.Interval, Timeout: spec.Timeout},
		}}},
	}
	v := quorum.Verdict{State: quorum.Up, Failing: []string{"eu"}, Passing: []string{"us"}, Reporting: 2, Needed: 2}
	ls := &leaderState{} // just became leader: no streak of its own
	ev := c.stepSuppressionLocked(spec, ls, &v, now)
	if len(ev) != 1 || ev[0].Kind != "suppressed" || ev[0].Region != "eu" {
		t.Fatalf("a 5s-old one-region failure seen by a new leader: events %+v, want one suppressed for eu", ev)
	}
	if ev := c.stepSuppressionLocked(spec, ls, &v, now.Add(time.Second)); len(ev) != 0 {
		t.Fatalf("the same streak counted again: %+v", ev)
	}

	// A streak younger than suppressAfter waits, however it is looked at.
	c.obsLocked("web")[0].FailingFor = 0
	c.obsLocked("web")[0].received = localClock.Stamp(now)
	ls = &leaderState{}
	if ev := c.stepSuppressionLocked(spec, ls, &v, now); len(ev) != 0 {
		t.Fatalf("a fresh failure counted as suppressed before the confirmations could answer: %+v", ev)
	}
	if ev := c.stepSuppressionLocked(spec, ls, &v, now.Add(suppressAfter(spec))); len(ev) != 1 {
		t.Fatalf("after suppressAfter: %d events, want 1", len(ev))
	}
}

// Every known region's suppressed counter is exported from the start, at
// 0: dashboards and increase() see every region, not only those that have
// suppressed something.
func TestSuppressedCounterExistsForEveryRegion(t *testing.T) {
	targets := testTargets(2)
	nodes := startFleet(t, []string{"eu", "us", "ap"}, 1, targets, nil)
	testenv.Poll(t, 15*time.Second, "convergence", func() bool { return converged(nodes, targets) })
	testenv.Poll(t, 10*time.Second, "a zero counter per region on every agent", func() bool {
		for _, n := range nodes {
			var b bytes.Buffer
			n.c.cfg.Metrics.WritePrometheus(&b)
			for _, r := range []string{"eu", "us", "ap"} {
				if !strings.Contains(b.String(), `vantage_suppressed_failures_total{region="`+r+`"} 0`) {
					return false
				}
			}
		}
		return true
	})
}
