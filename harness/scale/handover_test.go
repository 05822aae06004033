package scale

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"
)

// TestLeaderDeathHandsOverWithoutFalseOrMissedIncidents kills the busiest
// leader of a probing fleet while some of its targets are in an outage
// and others begin one: the new leaders judge every one of its targets
// with every region's fresh vote, each outage keeps (or gets) exactly one
// incident, and no other target gets one, checked every 100 ms throughout.
//
// Two fleets: six agents, where every agent holds every observation, and
// sixteen, where only a target's leader and standbys do (holders), so the
// new leader must be a standby that already holds every region's vote.
func TestLeaderDeathHandsOverWithoutFalseOrMissedIncidents(t *testing.T) {
	if testing.Short() {
		t.Skip("fleets of 6 and 16 agents for about ten seconds each")
	}
	for _, c := range []struct {
		regions   []string
		perRegion int
		targets   int
		timing    Timing
	}{
		{[]string{"eu", "us", "ap"}, 2, 60, Demo()},
		// memberlist's production timings: the demo's 200 ms probe
		// timeout takes sixteen agents under the race detector for dead.
		{[]string{"eu", "us", "ap", "sa"}, 4, 64, Production()},
	} {
		t.Run(fmt.Sprintf("%dx%d", len(c.regions), c.perRegion), func(t *testing.T) {
			opts := Options{Regions: c.regions, PerRegion: c.perRegion, Targets: c.targets,
				TargetInterval: 10 * time.Second, TargetTimeout: time.Second, Timing: c.timing}
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			run, err := MeasureHandover(ctx, opts, 3, 3, 2*time.Minute)
			t.Logf("%+v", run)
			if err != nil {
				t.Fatal(err)
			}
			if len(run.False) > 0 || len(run.Doubled) > 0 || len(run.Missed) > 0 {
				t.Errorf("hand-over: false incidents on %v, outages counted twice %v, missed %v", run.False, run.Doubled, run.Missed)
			}
			if run.Led < 6 || run.Samples < 2 {
				t.Errorf("the victim led %d targets, %d samples: the scenario did not happen", run.Led, run.Samples)
			}
		})
	}
}

// TestReportHandover measures the hand-over at production timings for the
// README (VANTAGE_SCALE=handover; VANTAGE_HANDOVER_PER_REGION sets agents
// per region, default 2, in 5 regions; VANTAGE_HANDOVER_TARGETS the
// targets, default 10,000).
func TestReportHandover(t *testing.T) {
	reportEnabled(t, "handover")
	per, targets := envInt(t, "VANTAGE_HANDOVER_PER_REGION", 2), envInt(t, "VANTAGE_HANDOVER_TARGETS", 10000)
	opts := Options{Regions: []string{"eu", "us", "ap", "sa", "af"}, PerRegion: per, Targets: targets, Timing: Production()}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	run, err := MeasureHandover(ctx, opts, 5, 5, 5*time.Minute)
	if err != nil {
		t.Fatalf("%v (%+v)", err, run)
	}
	table(t, fmt.Sprintf("Leader killed (no goodbye) in a probing fleet, production timings, 30s interval: %d agents in 5 regions, %d targets", run.Agents, run.Targets),
		[]string{"targets it led", "outages across the death (ongoing + new)", "death noticed", "its targets judged with every region's fresh vote", "after the death was noticed", "every outage one incident, every other target up", "false / doubled / missed incidents (checked every 100 ms)"},
		[][]string{{fmt.Sprint(run.Led), fmt.Sprintf("%d + %d", run.OngoingOutages, run.NewOutages), secs(run.Detected), secs(run.Fresh),
			secs(run.Fresh - run.Detected), secs(run.Settled), fmt.Sprintf("%d / %d / %d", len(run.False), len(run.Doubled), len(run.Missed))}})
}

func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive number", name, v)
	}
	return n
}
