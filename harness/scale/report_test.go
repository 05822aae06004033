package scale

import (
	"context"
	"fmt"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vantage-probe/vantage/cluster"
)

// The README's scale figures. They take minutes and most of a 2-core
// machine, so they run only when asked:
//
//	VANTAGE_SCALE=all go test -run Report -v -timeout 60m ./harness/scale/
//
// or VANTAGE_SCALE=death,movement,gossip,sim for some of them. Each prints
// a markdown table; VANTAGE_SCALE_OUT=FILE appends the tables to FILE too.
// They assert only that the measurement completed and the fleet converged:
// the figures depend on the machine. VANTAGE_SCALE_HEAP_PROFILE=FILE
// writes the live heap after each gossip window; VANTAGE_SCALE_PPROF=ADDR
// serves net/http/pprof while a report runs (a large fleet that does not
// converge can be profiled as it struggles); VANTAGE_SCALE_SPREAD=1 plays
// the gossip report's first probe round over the interval, as agents do,
// not all at once.

var servePprof sync.Once

func reportEnabled(t *testing.T, name string) {
	t.Helper()
	v := os.Getenv("VANTAGE_SCALE")
	if v == "" {
		t.Skip("set VANTAGE_SCALE=all (or " + name + ") to measure")
	}
	if addr := os.Getenv("VANTAGE_SCALE_PPROF"); addr != "" {
		servePprof.Do(func() {
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				t.Fatalf("VANTAGE_SCALE_PPROF %q: %v", addr, err)
			}
			go func() { _ = http.Serve(ln, nil) }() // net/http/pprof's handlers, for the life of the process
		})
	}
	for _, s := range strings.Split(v, ",") {
		if s == "all" || s == name {
			return
		}
	}
	t.Skipf("VANTAGE_SCALE=%s does not include %s", v, name)
}

// fleetEnabled reports whether a fleet of n agents is measured:
// VANTAGE_SCALE_AGENTS (a comma-separated list of sizes) narrows a report
// to some sizes; unset, every size is.
func fleetEnabled(n int) bool {
	v := os.Getenv("VANTAGE_SCALE_AGENTS")
	if v == "" {
		return true
	}
	for _, s := range strings.Split(v, ",") {
		if strings.TrimSpace(s) == fmt.Sprint(n) {
			return true
		}
	}
	return false
}

// table logs a markdown table and appends it to VANTAGE_SCALE_OUT.
func table(t *testing.T, title string, head []string, rows [][]string) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "\n### %s\n\n| %s |\n|", title, strings.Join(head, " | "))
	for range head {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s |\n", strings.Join(r, " | "))
	}
	t.Log(b.String())
	if out := os.Getenv("VANTAGE_SCALE_OUT"); out != "" {
		f, err := os.OpenFile(out, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatalf("VANTAGE_SCALE_OUT %q: %v", out, err)
		}
		defer f.Close()
		if _, err := f.WriteString(b.String()); err != nil {
			t.Fatalf("VANTAGE_SCALE_OUT %q: %v", out, err)
		}
	}
}

func secs(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) }

func TestReportDeath(t *testing.T) {
	reportEnabled(t, "death")
	ctx := context.Background()
	shapes := []struct {
		regions   []string
		perRegion int
	}{
		{[]string{"eu"}, 3},
		{[]string{"eu", "us"}, 5},
		{[]string{"r1", "r2", "r3", "r4", "r5"}, 10},
	}
	var rows [][]string
	for _, tm := range []Timing{Demo(), Production()} {
		for _, mode := range []Mode{Kill, Freeze} {
			kills := 5
			if mode == Freeze {
				kills = 3
			}
			for _, sh := range shapes {
				if !fleetEnabled(len(sh.regions) * sh.perRegion) {
					continue
				}
				if tm.Name == "demo" && len(sh.regions)*sh.perRegion > 10 {
					// 50 agents sending every heartbeat (each second) to
					// every member take most of this 2-core machine in one
					// process: false deaths, no stable fleet to measure.
					continue
				}
				run, err := MeasureDeath(ctx, Options{Regions: sh.regions, PerRegion: sh.perRegion, Targets: 1000, Timing: tm}, mode, kills)
				if err != nil {
					t.Fatalf("%s, %s, %d agents: %v", tm.Name, mode, len(sh.regions)*sh.perRegion, err)
				}
				m, x := run.Median(), run.Max()
				rows = append(rows, []string{tm.Name, string(mode), fmt.Sprint(run.Agents),
					fmt.Sprintf("%d x %d", len(sh.regions), sh.perRegion), fmt.Sprint(len(run.Samples)),
					secs(m.Detected), secs(m.AllDetected), secs(m.Reassigned), secs(x.Reassigned)})
				t.Logf("%s %s %d agents: %+v", tm.Name, mode, run.Agents, run.Samples)
			}
		}
	}
	// A second death soon after a first, in one fleet.
	for _, sh := range shapes[:2] {
		if !fleetEnabled(len(sh.regions) * sh.perRegion) {
			continue
		}
		run, err := MeasureSecondDeath(ctx, Options{Regions: sh.regions, PerRegion: sh.perRegion, Targets: 1000, Timing: Production()}, Kill, 4)
		if err != nil {
			t.Fatalf("second deaths, %d agents: %v", len(sh.regions)*sh.perRegion, err)
		}
		t.Logf("production kill, second deaths, %d agents: %+v", run.Agents, run.Samples)
		later := DeathRun{Samples: run.Samples[1:]}
		m, x := later.Median(), later.Max()
		rows = append(rows, []string{"production", "kill, within 30 s of a replaced death", fmt.Sprint(run.Agents),
			fmt.Sprintf("%d x %d", len(sh.regions), sh.perRegion), fmt.Sprint(len(later.Samples)),
			secs(m.Detected), secs(m.AllDetected), secs(m.Reassigned), secs(x.Reassigned)})
	}
	table(t, "Agent death: detection and reassignment (1000 targets)",
		[]string{"timings", "death", "agents", "regions x agents", "deaths", "first sees it dead (median)",
			"all see it dead (median)", "targets reassigned (median)", "reassigned (max)"}, rows)
}

func TestReportMovement(t *testing.T) {
	reportEnabled(t, "movement")
	ctx := context.Background()
	var rows [][]string
	for _, c := range []struct {
		regions   []string
		perRegion int
		targets   int
		timing    Timing
	}{
		{[]string{"eu", "us", "ap"}, 3, 10000, Demo()},
		// 50 agents at the demo's timings do not hold together in one
		// process on this machine (see TestReportDeath).
		{[]string{"r1", "r2", "r3", "r4", "r5"}, 10, 2000, Production()},
	} {
		out, err := MeasureMovement(ctx, Options{Regions: c.regions, PerRegion: c.perRegion, Targets: c.targets, Timing: c.timing})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range out {
			rows = append(rows, []string{fmt.Sprintf("%d x %d", len(c.regions), c.perRegion), fmt.Sprint(c.targets), c.timing.Name,
				s.Event, fmt.Sprintf("%d -> %d", s.Before, s.After), fmt.Sprintf("%.0f", s.Ideal), fmt.Sprint(s.Pure),
				fmt.Sprint(s.Moved), fmt.Sprint(s.Churn - s.Moved), fmt.Sprint(s.Elsewhere)})
			if s.Moved != s.Pure || s.Elsewhere != 0 {
				t.Errorf("%+v: the running cluster moved other than shard.Assign", s)
			}
		}
	}
	table(t, "Targets moved per membership change in one region",
		[]string{"regions x agents", "targets", "timings", "change", "agents in region", "ideal T/N", "shard.Assign moves",
			"moved on the cluster", "transient moves", "moved in other regions"}, rows)
}

// gossipShapes are the fleets TestReportGossip measures: by default 3
// regions x 2 agents at 10k targets (the README's table), or the shapes
// VANTAGE_SCALE_TARGETS (comma-separated target counts),
// VANTAGE_SCALE_REGIONS (a region count) and VANTAGE_SCALE_PER_REGION
// (comma-separated agents per region) ask for, every combination of them.
func gossipShapes(t *testing.T) []Options {
	t.Helper()
	targets := envInts(t, "VANTAGE_SCALE_TARGETS", []int{10000})
	regions := envInts(t, "VANTAGE_SCALE_REGIONS", []int{3})
	per := envInts(t, "VANTAGE_SCALE_PER_REGION", []int{2})
	var out []Options
	for _, nr := range regions {
		rs := make([]string, nr)
		for i := range rs {
			rs[i] = fmt.Sprintf("r%d", i+1)
		}
		for _, p := range per {
			for _, n := range targets {
				out = append(out, Options{Regions: rs, PerRegion: p, Targets: n})
			}
		}
	}
	return out
}

// envInts reads a comma-separated list of positive integers from the
// environment, or returns def when the variable is unset.
func envInts(t *testing.T, key string, def []int) []int {
	t.Helper()
	v := os.Getenv(key)
	if v == "" {
		return def
	}
	var out []int
	for _, s := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			t.Fatalf("%s=%q: want comma-separated positive integers", key, v)
		}
		out = append(out, n)
	}
	return out
}

// TestReportGossip measures gossip bytes and heap per agent, then how soon
// the fleet recovers from a join and from a death: every (target, region)
// owned again and every leader holding every region's fresh vote. The
// shapes come from gossipShapes; VANTAGE_SCALE_GOSSIP=changes measures only
// the plaintext 1%-per-minute window and the two events, which big fleets
// want for time.
func TestReportGossip(t *testing.T) {
	reportEnabled(t, "gossip")
	ctx := context.Background()
	type run struct {
		name   string
		key    []byte
		phases []GossipPhase
	}
	churn := []GossipPhase{
		{Name: "an agent joins (1% changing)", Window: 30 * time.Second, ChangeRate: 0.01, Event: EventJoin},
		{Name: "an agent dies (1% changing)", Window: 30 * time.Second, ChangeRate: 0.01, Event: EventKill}}
	runs := []run{
		{"plaintext", nil, append([]GossipPhase{{Name: "steady, no changes", Window: time.Minute},
			{Name: "1% of targets change per minute", Window: time.Minute, ChangeRate: 0.01}}, churn...)},
		{"encrypted", []byte("0123456789abcdef0123456789abcdef"), []GossipPhase{
			{Name: "1% of targets change per minute", Window: time.Minute, ChangeRate: 0.01}}},
	}
	if os.Getenv("VANTAGE_SCALE_GOSSIP") == "changes" {
		runs = []run{{"plaintext", nil, append([]GossipPhase{{Name: "1% of targets change per minute", Window: time.Minute, ChangeRate: 0.01}}, churn...)}}
	}
	// VANTAGE_SCALE_TARGETED_FROM runs a fleet below the production
	// threshold (16) targeted: the model's shape at 10 agents.
	from := envInts(t, "VANTAGE_SCALE_TARGETED_FROM", []int{0})[0]
	for _, shape := range gossipShapes(t) {
		// A table per shape, as it completes: a large fleet that fails
		// to converge loses no earlier shape's figures.
		var rows [][]string
		for _, c := range runs {
			opts := shape
			opts.Timing, opts.Key = Production(), c.key
			if from > 0 {
				opts.Timing.Name = fmt.Sprintf("production, targeted from %d", from)
				opts.Timing.Tune = func(c *cluster.Config) { c.TargetedFrom = from }
			}
			opts.TargetInterval, opts.TargetTimeout = 30*time.Second, 5*time.Second
			opts.Progress = func(s string) {
				t.Logf("%d x %d agents, %d targets, %s: %s", len(opts.Regions), opts.PerRegion, opts.Targets, c.name, s)
			}
			opts.HeapProfile = os.Getenv("VANTAGE_SCALE_HEAP_PROFILE")
			opts.SpreadFirstRound = os.Getenv("VANTAGE_SCALE_SPREAD") != ""
			ws, err := MeasureGossip(ctx, opts, 30*time.Second, c.phases)
			if err != nil {
				t.Fatalf("%d x %d agents, %d targets: %v", len(opts.Regions), opts.PerRegion, opts.Targets, err)
			}
			for _, w := range ws {
				pb, sb, pps := w.PerAgentRate()
				tot := w.Total()
				rows = append(rows, []string{fmt.Sprintf("%d x %d", len(opts.Regions), opts.PerRegion), fmt.Sprint(opts.Targets),
					c.name + mode(opts), w.Name, fmt.Sprint(w.Changes), fmt.Sprintf("%.0f", pb+sb),
					fmt.Sprintf("%.0f", pb), fmt.Sprintf("%.0f", sb), fmt.Sprintf("%.1f", pps),
					fmt.Sprintf("%.0f", float64(tot.Streams)/float64(len(w.PerAgent))/w.Elapsed.Minutes()),
					fmt.Sprintf("%.0f", w.MaxAgentBps()), fmt.Sprintf("%.1f%%", 100*w.CPU.Seconds()/w.Elapsed.Seconds()/float64(len(w.PerAgent))),
					fmt.Sprintf("%.1f MB (%.1f)", float64(w.HeapPerAgent)/(1<<20), float64(w.LivePerAgent)/(1<<20)),
					fmt.Sprintf("%.3f", w.FreshAtLeaders), recovery(w)})
			}
		}
		table(t, "Gossip bytes per agent (30s interval), production timings",
			[]string{"regions x agents", "targets", "gossip", "load", "state changes", "B/s per agent", "UDP B/s", "TCP (push/pull) B/s", "UDP packets/s",
				"TCP streams/min", "busiest agent B/s", "CPU per agent", "heap per agent (live)", "votes fresh at leaders",
				"owners settled / votes fresh (all see the event)"}, rows)
	}
}

// mode marks a run forced into targeted mode below the production size.
func mode(o Options) string {
	if o.Timing.Tune != nil {
		return " (" + o.Timing.Name + ")"
	}
	return ""
}

// recovery is a window's recovery from its event: "-" without one.
func recovery(w GossipWindow) string {
	switch {
	case w.Event == "":
		return "-"
	case w.Recovered < 0:
		return fmt.Sprintf("%s / not within %s (%s)", secs(w.Owned), secs(recoverLimit), secs(w.Detected))
	}
	return fmt.Sprintf("%s / %s (%s)", secs(w.Owned), secs(w.Recovered), secs(w.Detected))
}

func TestReportSimulation(t *testing.T) {
	reportEnabled(t, "sim")
	ctx := context.Background()
	five := []string{"r1", "r2", "r3", "r4", "r5"}
	configs := []struct{ perRegion, targets int }{{2, 10000}, {10, 2000}, {10, 10000}}
	head := []string{"measure"}
	var rs []SimResult
	var errs []error
	for _, c := range configs {
		r, err := Simulate(ctx, Options{Regions: five, PerRegion: c.perRegion, Targets: c.targets,
			Timing: Production(), TargetInterval: 30 * time.Second, TargetTimeout: 5 * time.Second}, time.Minute, 90*time.Second)
		t.Logf("%+v %v", r, err)
		head = append(head, fmt.Sprintf("%d agents x %d targets", r.Agents, r.Targets))
		rs, errs = append(rs, r), append(errs, err)
		if err == nil && r.OwnershipProblems != 0 {
			t.Errorf("%d agents x %d targets: %d (target, region) pairs without exactly one owner", r.Agents, r.Targets, r.OwnershipProblems)
		}
	}
	mb := func(r SimResult, b uint64) string {
		if b == 0 {
			return "-"
		}
		return fmt.Sprintf("%.0f MB (%.1f MB per agent)", float64(b)/(1<<20), float64(b-min(b, r.HeapBase))/float64(r.Agents)/(1<<20))
	}
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }
	rows := []struct {
		name string
		get  func(SimResult) string
	}{
		{"all agents created", func(r SimResult) string { return secs(r.Started) }},
		{"converged: membership, one owner per (target, region), every agent its share", func(r SimResult) string { return secs(r.Converged) }},
		{"(target, region) pairs without exactly one owner after convergence", func(r SimResult) string { return fmt.Sprint(r.OwnershipProblems) }},
		{"heap, converged, before any observation", func(r SimResult) string { return mb(r, r.HeapConverged) }},
		{"heap, every region's observations held", func(r SimResult) string { return mb(r, r.HeapReported) }},
		{"goroutines", func(r SimResult) string { return fmt.Sprint(r.Goroutines) }},
		{"shard.Assign + OwnedBy, all targets, all agents", func(r SimResult) string { return ms(r.Assign) }},
		{"first probe round (each agent reports each target once): wall, CPU", func(r SimResult) string {
			return fmt.Sprintf("%s, %s", secs(r.FirstRound), secs(r.FirstRoundCPU))
		}},
		{"then: every leader holds every region's result", func(r SimResult) string {
			if r.ResultsAtLeaders == 0 {
				return "not within " + secs(r.ResultsLimit)
			}
			return secs(r.ResultsAtLeaders)
		}},
		{"votes fresh at leaders 90 s after the first round", func(r SimResult) string { return fmt.Sprintf("%.3f", r.FreshAtLeaders) }},
		{"CPU, steady: cores for the fleet (per agent)", func(r SimResult) string {
			return fmt.Sprintf("%.2f (%.1f%%)", r.SteadyCPU, 100*r.SteadyCPU/float64(r.Agents))
		}},
		{"one more agent joins: converged again", func(r SimResult) string { return secs(r.JoinConverged) }},
		{"CPU per recompute during that join (upper bound)", func(r SimResult) string {
			return fmt.Sprintf("%s (%d recomputes)", ms(r.RecomputeCPU), r.Recomputes)
		}},
		{"inbox drops / send errors / heartbeat gaps", func(r SimResult) string {
			return fmt.Sprintf("%.0f / %.0f / %.0f", r.InboxDrops, r.SendErrors, r.HeartbeatGaps)
		}},
		{"host UDP receive-buffer drops during the run", func(r SimResult) string { return fmt.Sprint(r.UDPRcvbufErrors) }},
	}
	var out [][]string
	for _, row := range rows {
		line := []string{row.name}
		for i, r := range rs {
			if errs[i] != nil && r.Converged == 0 {
				line = append(line, "did not converge")
				continue
			}
			line = append(line, row.get(r))
		}
		out = append(out, line)
	}
	for i, err := range errs {
		if err != nil {
			out = append(out, []string{"error (" + head[i+1] + ")", strings.ReplaceAll(err.Error(), "|", "/")})
		}
	}
	table(t, "Fleets in one process (production timings, 5 regions, 30 s interval, 2-core machine shared with other work)", head, out)
}
