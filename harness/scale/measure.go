package scale

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/vantage-probe/vantage/cluster"
	"github.com/vantage-probe/vantage/cluster/shard"
	"github.com/vantage-probe/vantage/internal/mono"
)

// Mode is how an agent dies.
type Mode string

const (
	// Kill stops the agent without Leave: its sockets close, so probes to
	// it are refused at once (a crashed process on a live host).
	Kill Mode = "kill"
	// Freeze silences the agent with its sockets open: probes to it time
	// out (a hung process, a host gone dark).
	Freeze Mode = "freeze"
)

// DeathSample is one agent's death as the fleet saw it, from the moment it
// died.
type DeathSample struct {
	Victim      string
	Detected    time.Duration // the first live agent marks it dead
	AllDetected time.Duration // every live agent has
	Reassigned  time.Duration // every target has one live owner in every region again
}

// DeathRun is several deaths, each in a fresh fleet.
type DeathRun struct {
	Timing  string
	Mode    Mode
	Agents  int
	Targets int
	Samples []DeathSample
}

// Median is the per-column median of the samples.
func (r DeathRun) Median() DeathSample {
	var m DeathSample
	pick := func(get func(DeathSample) time.Duration) time.Duration {
		ds := make([]time.Duration, 0, len(r.Samples))
		for _, s := range r.Samples {
			ds = append(ds, get(s))
		}
		return median(ds)
	}
	m.Detected = pick(func(s DeathSample) time.Duration { return s.Detected })
	m.AllDetected = pick(func(s DeathSample) time.Duration { return s.AllDetected })
	m.Reassigned = pick(func(s DeathSample) time.Duration { return s.Reassigned })
	return m
}

// Max is the per-column maximum of the samples.
func (r DeathRun) Max() DeathSample {
	var m DeathSample
	for _, s := range r.Samples {
		m.Detected = max(m.Detected, s.Detected)
		m.AllDetected = max(m.AllDetected, s.AllDetected)
		m.Reassigned = max(m.Reassigned, s.Reassigned)
	}
	return m
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	ds = slices.Clone(ds)
	slices.Sort(ds)
	if len(ds)%2 == 1 {
		return ds[len(ds)/2]
	}
	return (ds[len(ds)/2-1] + ds[len(ds)/2]) / 2
}

// deathLimit bounds one death's detection: far above memberlist's longest
// suspicion timeout at production timings and 50 agents (6 x 13.6 s).
const deathLimit = 3 * time.Minute

// convergeLimit bounds a fleet's (re)convergence.
const convergeLimit = 2 * time.Minute

// MeasureDeath kills (or freezes) one agent in each of kills fresh fleets,
// rotating through the regions. A fresh fleet each time, because memberlist
// counts a dead node in its cluster size until it forgets it (30 s): in a
// small fleet a second death soon after the first expects confirmations
// that cannot come and takes twice as long (see MeasureSecondDeath).
// Regions need two agents or more, or a dead agent's region has nobody to
// take its targets over.
func MeasureDeath(ctx context.Context, opts Options, mode Mode, kills int) (DeathRun, error) {
	opts.applyDefaults()
	run, err := newDeathRun(opts, mode)
	if err != nil {
		return run, err
	}
	for i := 0; i < kills; i++ {
		s, err := deathInFreshFleet(ctx, opts, mode, i)
		if err != nil {
			return run, err
		}
		run.Samples = append(run.Samples, s)
	}
	return run, nil
}

// newDeathRun describes a run of opts (defaults applied); regions need two
// agents or more.
func newDeathRun(opts Options, mode Mode) (DeathRun, error) {
	run := DeathRun{Timing: opts.Timing.Name, Mode: mode, Agents: len(opts.Regions) * opts.PerRegion, Targets: opts.Targets}
	if opts.PerRegion < 2 {
		return run, fmt.Errorf("death run: PerRegion %d: need at least 2 agents per region", opts.PerRegion)
	}
	return run, nil
}

func deathInFreshFleet(ctx context.Context, opts Options, mode Mode, i int) (DeathSample, error) {
	f, err := Start(opts)
	if err != nil {
		return DeathSample{}, err
	}
	defer f.Close()
	if _, err := f.WaitConverged(ctx, convergeLimit); err != nil {
		return DeathSample{}, err
	}
	region := opts.Regions[i%len(opts.Regions)]
	victim := pickVictim(f, region, i)
	if victim == nil {
		return DeathSample{}, fmt.Errorf("death run: no agent to kill in region %q", region)
	}
	return measureOneDeath(ctx, f, victim, mode)
}

// MeasureSecondDeath measures deaths in one fleet of constant size: each
// victim is replaced by a new agent in its region as soon as the fleet has
// recovered, and the next dies right after, while memberlist still counts
// the previous victim. The first sample is a first death.
func MeasureSecondDeath(ctx context.Context, opts Options, mode Mode, kills int) (DeathRun, error) {
	opts.applyDefaults()
	run, err := newDeathRun(opts, mode)
	if err != nil {
		return run, err
	}
	f, err := Start(opts)
	if err != nil {
		return run, err
	}
	defer f.Close()
	if _, err := f.WaitConverged(ctx, convergeLimit); err != nil {
		return run, err
	}
	for i := 0; i < kills; i++ {
		region := opts.Regions[i%len(opts.Regions)]
		victim := pickVictim(f, region, i)
		if victim == nil {
			return run, fmt.Errorf("death run: no agent to kill in region %q", region)
		}
		s, err := measureOneDeath(ctx, f, victim, mode)
		if err != nil {
			return run, err
		}
		run.Samples = append(run.Samples, s)
		f.Kill(victim) // a frozen agent is still running
		if _, err := f.AddAgent(region); err != nil {
			return run, err
		}
		if _, err := f.WaitConverged(ctx, convergeLimit); err != nil {
			return run, fmt.Errorf("after replacing %s: %w", victim.Name, err)
		}
	}
	return run, nil
}

// pickVictim chooses a live agent of region, preferring ones that are not
// among the first three started (the seeds later agents join through).
func pickVictim(f *Fleet, region string, i int) *Agent {
	var cands, seeds []*Agent
	for j, a := range f.Agents() {
		if !a.Live() || a.Region != region {
			continue
		}
		if j < 3 {
			seeds = append(seeds, a)
		} else {
			cands = append(cands, a)
		}
	}
	if len(cands) == 0 {
		cands = seeds
	}
	if len(cands) == 0 {
		return nil
	}
	return cands[i%len(cands)]
}

func measureOneDeath(ctx context.Context, f *Fleet, victim *Agent, mode Mode) (DeathSample, error) {
	s := DeathSample{Victim: victim.Name}
	start := time.Now()
	switch mode {
	case Freeze:
		f.Freeze(victim)
	default:
		f.Kill(victim)
	}
	_, err := poll(ctx, deathLimit, 10*time.Millisecond, "reassignment of "+victim.Name, func() bool {
		if s.Reassigned == 0 && f.OwnershipProblems() == 0 {
			s.Reassigned = time.Since(start)
		}
		_, _, n := f.DeathSeen(victim.Name, start)
		return s.Reassigned > 0 && n == len(f.Live())
	})
	if err != nil {
		return s, err
	}
	first, last, _ := f.DeathSeen(victim.Name, start)
	s.Detected, s.AllDetected = first.Sub(start), last.Sub(start)
	return s, nil
}

// MoveSample is one membership change and the targets it moved.
type MoveSample struct {
	Event     string // join, leave (graceful), crash
	Agent     string
	Before    int     // agents in the region before
	After     int     // and after
	Ideal     float64 // targets that must move: T/After for a join, T/Before for a leave
	Pure      int     // (target, region) owners shard.Assign changes for this membership change
	Moved     int     // (target, region) owners that changed, measured on the agents' Assigned sets
	Churn     int     // targets agents were given over every Assigned call meanwhile: Moved plus transient moves
	Elsewhere int     // owners changed in other regions (must be 0)
	Took      time.Duration
}

// MeasureMovement starts a fleet, then in the first region: one agent
// joins, one leaves gracefully, one crashes; each step waits for
// convergence and compares the owners before and after.
func MeasureMovement(ctx context.Context, opts Options) ([]MoveSample, error) {
	opts.applyDefaults()
	if opts.PerRegion < 3 {
		return nil, fmt.Errorf("movement run: PerRegion %d: need at least 3 agents per region", opts.PerRegion)
	}
	f, err := Start(opts)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if _, err := f.WaitConverged(ctx, convergeLimit); err != nil {
		return nil, err
	}
	region := opts.Regions[0]
	var out []MoveSample
	step := func(event string, act func() (*Agent, error)) error {
		// Converged again right now: on a busy machine a false suspicion
		// can reshuffle owners between two steps.
		if _, err := f.WaitConverged(ctx, convergeLimit); err != nil {
			return fmt.Errorf("before the %s: %w", event, err)
		}
		before, members := f.owners(), f.members()
		churn := f.churn()
		a, err := act()
		if err != nil {
			return err
		}
		took, err := f.WaitConverged(ctx, deathLimit)
		if err != nil {
			return fmt.Errorf("%s of %s: %w", event, a.Name, err)
		}
		after, membersAfter := f.owners(), f.members()
		s := MoveSample{Event: event, Agent: a.Name, Took: took,
			Before: countRegion(members, region), After: countRegion(membersAfter, region)}
		if event == "join" {
			s.Ideal = float64(len(f.names)) / float64(s.After)
		} else {
			s.Ideal = float64(len(f.names)) / float64(s.Before)
		}
		s.Moved, s.Elsewhere = diffOwners(before, after, region)
		s.Pure = pureMoves(f.names, members, membersAfter)
		s.Churn = f.churnSince(churn)
		out = append(out, s)
		return nil
	}
	if err := step("join", func() (*Agent, error) { return f.AddAgent(region) }); err != nil {
		return out, err
	}
	if err := step("leave", func() (*Agent, error) {
		a := pickVictim(f, region, 0)
		return a, f.Leave(a, 5*time.Second)
	}); err != nil {
		return out, err
	}
	if err := step("crash", func() (*Agent, error) {
		a := pickVictim(f, region, 0)
		f.Kill(a)
		return a, nil
	}); err != nil {
		return out, err
	}
	return out, nil
}

// owners maps region -> target index -> the live owner's name (the last
// one seen when there are several, "" when none).
func (f *Fleet) owners() map[string][]string {
	out := map[string][]string{}
	for _, a := range f.Live() {
		o := out[a.Region]
		if o == nil {
			o = make([]string, len(f.names))
			out[a.Region] = o
		}
		for _, t := range a.Assigned() {
			o[f.index[t]] = a.Name
		}
	}
	return out
}

func (f *Fleet) members() []shard.Member {
	var out []shard.Member
	for _, a := range f.Live() {
		out = append(out, shard.Member{ID: a.Name, Region: a.Region})
	}
	return out
}

// churn is the targets each agent has gained so far, by agent name.
func (f *Fleet) churn() map[string]int {
	out := map[string]int{}
	for _, a := range f.Agents() {
		out[a.Name], _ = a.Churn()
	}
	return out
}

// churnSince is the targets live agents gained since the before reading.
func (f *Fleet) churnSince(before map[string]int) int {
	n := 0
	for _, a := range f.Live() {
		g, _ := a.Churn()
		n += g - before[a.Name]
	}
	return n
}

func countRegion(ms []shard.Member, region string) int {
	n := 0
	for _, m := range ms {
		if m.Region == region {
			n++
		}
	}
	return n
}

func diffOwners(before, after map[string][]string, region string) (moved, elsewhere int) {
	for r, b := range before {
		a := after[r]
		for i := range b {
			if a == nil || a[i] != b[i] {
				if r == region {
					moved++
				} else {
					elsewhere++
				}
			}
		}
	}
	return moved, elsewhere
}

// pureMoves is what shard.Assign says a membership change moves.
func pureMoves(names []string, before, after []shard.Member) int {
	ts := make([]shard.Target, len(names))
	for i, n := range names {
		ts[i] = shard.Target{Name: n}
	}
	a, b := shard.Assign(ts, before, 1), shard.Assign(ts, after, 1)
	moved := 0
	for _, n := range names {
		oa, ob := a.Owners(n), b.Owners(n)
		for r, ids := range oa {
			if !slices.Equal(ids, ob[r]) {
				moved++
			}
		}
	}
	return moved
}

// GossipPhase is one measurement window of a gossip run.
type GossipPhase struct {
	Name   string
	Window time.Duration
	// ChangeRate is the fraction of targets that change state per minute
	// (0.01: 1%); each change is a real outage or recovery, seen by every
	// region, reported at once by the target's owners.
	ChangeRate float64
	// Event happens at the window's start: EventJoin (an agent joins the
	// first region) or EventKill (one of its agents dies, no Leave). The
	// window then lasts until the fleet has recovered, or Window if later.
	Event string
}

// Gossip window events.
const (
	EventJoin = "join"
	EventKill = "kill"
)

// GossipWindow is what the fleet sent during one phase.
type GossipWindow struct {
	GossipPhase
	Changes  int           // state changes played
	Elapsed  time.Duration // the window as measured
	PerAgent []Traffic     // by agent, in start order
	CPU      time.Duration // process CPU time during the window (all agents)
	// FreshAtLeaders is the fraction of (target, region) votes fresh at the
	// target's leader at the end of the window.
	FreshAtLeaders float64
	// FreshAllAfter is how long after the window all votes were fresh at
	// the leaders again (0: they were at its end; -1: not within two
	// push/pull intervals). A vote goes stale at a peer that missed a
	// result broadcast (a dropped packet on a loaded machine) until a
	// push/pull brings it; this says how soon that heals.
	FreshAllAfter time.Duration
	// Recovered, after an Event: until every (target, region) had one
	// live owner again and every target's leader held a fresh vote from
	// every region; -1 when not within recoverLimit. Owned: until the
	// first of those held and every agent probed its share (ownership
	// settled; 0 if it never did).
	// Detected: until every live agent saw the victim dead or the
	// newcomer join (memberlist's part, which both include).
	Recovered, Owned, Detected time.Duration
	// HeapPerAgent is the process's heap in use (after a GC) at the end of
	// the window, less what it was before the fleet started, per agent:
	// the harness's own per-target bookkeeping counts in it too.
	HeapPerAgent uint64
	// LivePerAgent is the same for the live heap (HeapAlloc after a GC):
	// HeapPerAgent less the free room in the spans in use.
	LivePerAgent uint64
	// Rates are the agents' own counters over the window, per agent per
	// second (windowCounters): what a window that does not settle spends
	// its traffic on.
	Rates map[string]float64
	// UDPDrops is the host's UDP datagrams dropped for a full receive
	// buffer during the window.
	UDPDrops int64
}

// windowCounters are the cluster counters a window reports, by short name.
var windowCounters = []struct{ short, metric string }{
	{"verdicts", `vantage_gossip_verdicts_published_total`},
	{"results", `vantage_gossip_results_received_total`},
	{"resends", `vantage_gossip_resends_asked_total`},
	{"repaired_obs", `vantage_gossip_repair_entries_sent_total{type="observation"}`},
	{"repaired_verdicts", `vantage_gossip_repair_entries_sent_total{type="verdict"}`},
	{"repaired_incidents", `vantage_gossip_repair_entries_sent_total{type="incident"}`},
	{"repair_keys", `vantage_gossip_repair_keys_sent_total`},
	{"gaps", `vantage_gossip_heartbeat_gaps_total`},
	{"doubted", `vantage_leadership_doubted_total`},
	{"inbox_drops", `vantage_gossip_messages_dropped_total{reason="queue_full"}`},
}

// sumCounters is each window counter summed over agents.
func sumCounters(agents []*Agent) []float64 {
	out := make([]float64, len(windowCounters))
	for _, a := range agents {
		for i, c := range windowCounters {
			out[i] += a.Metric(c.metric)
		}
	}
	return out
}

// RatesString is Rates in windowCounters' order, for a progress line.
func (w GossipWindow) RatesString() string {
	var b strings.Builder
	for _, c := range windowCounters {
		fmt.Fprintf(&b, "%s %.2f/s, ", c.short, w.Rates[c.short])
	}
	fmt.Fprintf(&b, "UDP drops %d", w.UDPDrops)
	return b.String()
}

// Total is the fleet's traffic in the window.
func (w GossipWindow) Total() Traffic {
	var t Traffic
	for _, a := range w.PerAgent {
		t = t.Add(a)
	}
	return t
}

// PerAgentRate is the mean bytes per second one agent sent, split into
// packets (UDP) and streams (TCP push/pull), and packets per second.
func (w GossipWindow) PerAgentRate() (packetBps, streamBps, packetsPerSec float64) {
	t, n, s := w.Total(), float64(len(w.PerAgent)), w.Elapsed.Seconds()
	return float64(t.PacketBytes) / n / s, float64(t.StreamBytes) / n / s, float64(t.Packets) / n / s
}

// MaxAgentBps is the busiest agent's bytes per second.
func (w GossipWindow) MaxAgentBps() float64 {
	var m int64
	for _, a := range w.PerAgent {
		m = max(m, a.Bytes())
	}
	return float64(m) / w.Elapsed.Seconds()
}

// MeasureGossip starts a fleet, waits for it to converge, plays one probe
// round (every owner reports every target: the start-up burst), waits
// settle, then measures each phase in turn.
func MeasureGossip(ctx context.Context, opts Options, settle time.Duration, phases []GossipPhase) ([]GossipWindow, error) {
	opts.applyDefaults()
	base := heapInUse()
	baseLive := heapLive()
	f, err := Start(opts)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	began := time.Now()
	step := func(format string, args ...any) {
		if opts.Progress != nil {
			opts.Progress(fmt.Sprintf("%6.1fs ", time.Since(began).Seconds()) + fmt.Sprintf(format, args...))
		}
	}
	step("%d agents started", len(f.Live()))
	if _, err := f.WaitConverged(ctx, coldConvergeLimit(opts.Targets)); err != nil {
		return nil, err
	}
	step("converged")
	if opts.SpreadFirstRound {
		// The first round as agents' schedulers play it, spread over
		// the interval by each target's phase: the all-at-once burst
		// starves a one-process fleet of 100 agents of CPU until
		// memberlist declares members dead and the fleet reassigns.
		f.StartProbing()
		if err := mono.Sleep(ctx, opts.TargetInterval); err != nil {
			return nil, err
		}
		step("first round reported, spread over the interval")
	} else {
		f.ReportAll()
		step("first results reported")
		f.StartProbing()
	}
	if err := mono.Sleep(ctx, settle); err != nil {
		return nil, err
	}
	// A cold start's storm (every agent's first results, holders asking
	// for what they missed) can outlast settle on a loaded machine: the
	// windows measure the steady state, so they wait for every leader to
	// hold a fresh vote from every region, and say how long that took.
	if mono.Poll(ctx, settleLimit, time.Second, func() bool { return f.freshAtLeaders() == 1 }) {
		step("every vote fresh at the leaders")
	} else {
		step("votes still missing at the leaders after %s: measuring anyway", settleLimit)
	}
	rng := rand.New(rand.NewPCG(1, 2)) // the same changes every run
	var out []GossipWindow
	for _, p := range phases {
		step("window %q", p.Name)
		w, err := f.gossipWindow(ctx, p, rng)
		if err != nil {
			return out, err
		}
		h := heapInUse()
		w.HeapPerAgent = (h - min(base, h)) / uint64(len(w.PerAgent))
		l := heapLive()
		w.LivePerAgent = (l - min(baseLive, l)) / uint64(len(w.PerAgent))
		if err := writeHeapProfile(opts.HeapProfile, p.Name); err != nil {
			return out, err
		}
		out = append(out, w)
		pb, sb, _ := w.PerAgentRate()
		step("window %q: %.0f B/s per agent (UDP %.0f, TCP %.0f), busiest %.0f, heap %.1f MB per agent (%.1f live), fresh %.3f (all after %s), owners settled %s, recovered %s, detected %s",
			p.Name, pb+sb, pb, sb, w.MaxAgentBps(), float64(w.HeapPerAgent)/(1<<20), float64(w.LivePerAgent)/(1<<20), w.FreshAtLeaders, w.FreshAllAfter, w.Owned, w.Recovered, w.Detected)
		step("window %q, per agent: %s", p.Name, w.RatesString())
	}
	return out, nil
}

func (f *Fleet) gossipWindow(ctx context.Context, p GossipPhase, rng *rand.Rand) (GossipWindow, error) {
	agents := f.Live()
	before := make([]Traffic, len(agents))
	for i, a := range agents {
		before[i] = a.Traffic()
	}
	cpu0 := processCPU()
	counters0, drops0 := sumCounters(agents), udpRcvbufErrors()
	start := time.Now()
	w := GossipWindow{GossipPhase: p}
	end := start.Add(p.Window)
	if p.Event != "" {
		if err := f.churnEvent(ctx, &w, start); err != nil {
			return w, err
		}
	}
	perMinute := p.ChangeRate * float64(len(f.names))
	if perMinute > 0 {
		every := time.Duration(float64(time.Minute) / perMinute)
		t := time.NewTicker(every)
		defer t.Stop()
	loop:
		for {
			select {
			case <-ctx.Done():
				return w, ctx.Err()
			case now := <-t.C:
				if now.After(end) {
					break loop
				}
				// Catch up on ticks a busy machine made the ticker drop,
				// so the rate is the one asked for.
				for due := int(now.Sub(start) / every); w.Changes < due; w.Changes++ {
					name := f.names[rng.IntN(len(f.names))]
					f.SetDown(name, !f.world.isDown(name))
					f.ReportTarget(name)
				}
			}
		}
	}
	if err := mono.Sleep(ctx, time.Until(end)); err != nil {
		return w, err
	}
	w.Elapsed = time.Since(start)
	w.CPU = processCPU() - cpu0
	for i, a := range agents {
		w.PerAgent = append(w.PerAgent, a.Traffic().Sub(before[i]))
	}
	w.Rates = map[string]float64{}
	for i, v := range sumCounters(agents) {
		w.Rates[windowCounters[i].short] = (v - counters0[i]) / float64(len(agents)) / w.Elapsed.Seconds()
	}
	w.UDPDrops = udpRcvbufErrors() - drops0
	w.FreshAtLeaders = f.freshAtLeaders()
	if w.FreshAtLeaders < 1 {
		healStart := time.Now()
		w.FreshAllAfter = -1
		limit := 2*f.pushPullEvery() + time.Second
		if mono.Poll(ctx, limit, 50*time.Millisecond, func() bool { return f.freshAtLeaders() == 1 }) {
			w.FreshAllAfter = max(time.Since(healStart), time.Millisecond)
		}
	}
	return w, nil
}

// recoverLimit bounds a join's or a death's recovery in a gossip window.
const recoverLimit = 3 * time.Minute

// churnEvent plays w's event and waits for the fleet to recover from it.
func (f *Fleet) churnEvent(ctx context.Context, w *GossipWindow, start time.Time) error {
	region := f.opts.Regions[0]
	var victim, joiner *Agent
	switch w.Event {
	case EventJoin:
		var err error
		if joiner, err = f.AddAgent(region); err != nil {
			return err
		}
	case EventKill:
		if victim = pickVictim(f, region, 0); victim == nil {
			return fmt.Errorf("gossip window: no agent to kill in %q", region)
		}
		f.Kill(victim)
	default:
		return fmt.Errorf("gossip window: unknown event %q", w.Event)
	}
	// freshAtLeaders asks every leader about its targets: poll a large
	// fleet less often.
	step := max(100*time.Millisecond, time.Duration(len(f.names))*20*time.Microsecond)
	told := false
	d, err := poll(ctx, recoverLimit, step, "recovery", func() bool {
		// What is still missing 10 s after the event, when the goal
		// says the fleet has re-converged.
		if !told && time.Since(start) > 10*time.Second && f.opts.Progress != nil {
			told = true
			if fresh, total, missing := f.votesAtLeaders(5); fresh < total {
				f.opts.Progress(fmt.Sprintf("10 s after the event: %d of %d votes missing at leaders, e.g. %s", total-fresh, total, strings.Join(missing, "; ")))
			}
		}
		if w.Detected == 0 {
			switch {
			case victim != nil:
				if _, last, n := f.DeathSeen(victim.Name, start); n == len(f.Live()) {
					w.Detected = last.Sub(start)
				}
			case joiner != nil:
				if _, last, n := f.JoinSeen(joiner.Name, start); n == len(f.Live())-1 {
					w.Detected = last.Sub(start)
				}
			}
		}
		// Settled: one owner per (target, region), and the owners the
		// membership gives (right after a join, before anyone hears of
		// it, the old owners are still one per pair).
		owned := f.OwnershipProblems() == 0 && f.offShare(f.Live()) == 0
		if owned && w.Owned == 0 {
			w.Owned = max(time.Since(start), time.Millisecond)
		}
		return owned && f.freshAtLeaders() == 1
	})
	switch {
	case err == nil:
		w.Recovered = d
	case ctx.Err() != nil:
		return err
	default:
		w.Recovered = -1
	}
	return nil
}

// SimResult is a large fleet in one process.
type SimResult struct {
	Agents, Regions, Targets int
	Started                  time.Duration // every agent created (New returned)
	Converged                time.Duration // from the first New to full membership and one owner per (target, region)
	OwnershipProblems        int           // after convergence: (target, region) without exactly one owner
	Goroutines               int
	// Heap in use (after a GC) before the fleet, converged with no
	// observations, and after the observations of a few probe rounds.
	HeapBase, HeapConverged, HeapReported uint64
	// Assign is one pure shard.Assign of every target over every member
	// plus OwnedBy for one agent: the core of each agent's recompute on a
	// membership change (best of 3).
	Assign time.Duration
	// FirstRound is how long every agent took to report its targets' first
	// observations (each a state change, sent to every member), one agent
	// after another, and FirstRoundCPU the process CPU it took.
	FirstRound, FirstRoundCPU time.Duration
	// ResultsAtLeaders: after the first probe round, until every target's
	// leader holds a fresh observation from every region; 0 when that did
	// not happen within ResultsLimit.
	ResultsAtLeaders time.Duration
	ResultsLimit     time.Duration
	// FreshAtLeaders is the fraction of (target, region) votes fresh at
	// the target's leader FreshCheck after the first probe round, every
	// agent probing its targets once per interval, nothing changing.
	FreshAtLeaders float64
	FreshCheck     time.Duration
	// FreshAllAfter is, when FreshAtLeaders < 1, how long after the check
	// every vote was fresh again (polled up to two push/pull intervals; -1:
	// not within them). On a loaded machine a check catches votes whose
	// refresh is late; what the fleet promises is that they heal.
	FreshAllAfter time.Duration
	// SteadyCPU is the process's CPU seconds per second of wall time from
	// the results check to the fresh check: every agent's idle cost plus
	// the harness's probing.
	SteadyCPU float64
	// JoinConverged: one more agent joins; until every agent agrees again.
	JoinConverged time.Duration
	// Recomputes is how many assignments the agents computed until then
	// (Assigned calls: at least every agent of the newcomer's region; the
	// other regions' agents, whose share does not change, may recompute
	// later), and RecomputeCPU the process CPU above the steady rate during
	// the join, per recompute: an upper bound on one agent's recompute at
	// this size, since the join's push/pull and gossip count in it too.
	Recomputes   int
	RecomputeCPU time.Duration
	// Counters summed over the agents at the end (the cluster's own metrics).
	InboxDrops, SendErrors, HeartbeatGaps, ResultsReceived float64
	// UDPRcvbufErrors is the host's count of UDP datagrams dropped for a
	// full socket buffer during the run (Linux; every process's sockets).
	UDPRcvbufErrors int64
}

// Simulate starts a fleet of opts' shape, measures its convergence and
// memory, starts probing and checks the leaders' views, then adds one agent.
func Simulate(ctx context.Context, opts Options, resultsLimit, freshCheck time.Duration) (SimResult, error) {
	opts.applyDefaults()
	r := SimResult{Agents: len(opts.Regions) * opts.PerRegion, Regions: len(opts.Regions), Targets: opts.Targets,
		ResultsLimit: resultsLimit, FreshCheck: freshCheck}
	r.HeapBase = heapInUse()
	drops0 := udpRcvbufErrors()
	start := time.Now()
	f, err := Start(opts)
	if err != nil {
		return r, err
	}
	defer f.Close()
	r.Started = time.Since(start)
	if _, err := f.WaitConverged(ctx, coldConvergeLimit(opts.Targets)); err != nil {
		return r, err
	}
	r.Converged = time.Since(start)
	r.OwnershipProblems = f.OwnershipProblems()
	r.Goroutines = runtime.NumGoroutine()
	r.HeapConverged = heapInUse()
	r.Assign = timeAssign(f.names, f.members())

	round, roundCPU := time.Now(), processCPU()
	f.ReportAll()
	r.FirstRound, r.FirstRoundCPU = time.Since(round), processCPU()-roundCPU
	f.StartProbing()
	reported := time.Now()
	step := max(time.Second, resultsLimit/20)
	if d, err := poll(ctx, resultsLimit, step, "results at leaders", func() bool { return f.freshAtLeaders() == 1 }); err == nil {
		r.ResultsAtLeaders = d
	} else if ctx.Err() != nil {
		return r, err
	}
	cpu0, t0 := processCPU(), time.Now()
	if err := mono.Sleep(ctx, time.Until(reported.Add(freshCheck))); err != nil {
		return r, err
	}
	r.FreshAtLeaders = f.freshAtLeaders()
	if d := time.Since(t0); d > time.Second {
		r.SteadyCPU = (processCPU() - cpu0).Seconds() / d.Seconds()
	}
	if r.FreshAtLeaders < 1 {
		healStart := time.Now()
		r.FreshAllAfter = -1
		if mono.Poll(ctx, 2*f.pushPullEvery()+time.Second, 50*time.Millisecond, func() bool { return f.freshAtLeaders() == 1 }) {
			r.FreshAllAfter = max(time.Since(healStart), time.Millisecond)
		}
	}
	r.HeapReported = heapInUse()

	calls0, cpu0 := f.recomputes(), processCPU()
	if _, err := f.AddAgent(opts.Regions[0]); err != nil {
		return r, err
	}
	if r.JoinConverged, err = f.WaitConverged(ctx, simConvergeLimit); err != nil {
		return r, fmt.Errorf("after a join: %w", err)
	}
	r.Recomputes = f.recomputes() - calls0
	extra := (processCPU() - cpu0).Seconds() - r.SteadyCPU*r.JoinConverged.Seconds()
	if r.Recomputes > 0 && extra > 0 {
		r.RecomputeCPU = time.Duration(extra / float64(r.Recomputes) * float64(time.Second))
	}
	r.InboxDrops, r.SendErrors, r.HeartbeatGaps, r.ResultsReceived = f.counters()
	r.UDPRcvbufErrors = udpRcvbufErrors() - drops0
	return r, nil
}

// settleLimit bounds the wait after a cold start for every leader's votes.
const settleLimit = 10 * time.Minute

// simConvergeLimit bounds a large fleet's convergence: on a busy 2-core
// machine, 50 agents each recomputing 10k targets per join take a while.
const simConvergeLimit = 3 * time.Minute

// coldConvergeLimit bounds a cold start's convergence: simConvergeLimit,
// and a minute more per 20,000 targets beyond 20,000. Every agent of the
// fleet assigns every target on each membership change while the fleet
// assembles, on two cores in all: 50 agents x 100k targets converged in
// 97 to 150 s when it did, and twice not within 3 minutes.
func coldConvergeLimit(targets int) time.Duration {
	return simConvergeLimit + time.Duration(max(0, targets-20_000)/20_000)*time.Minute
}

// counters sums the cluster's own drop and gap counters over every agent.
func (f *Fleet) counters() (inboxDrops, sendErrors, heartbeatGaps, results float64) {
	for _, a := range f.Agents() {
		inboxDrops += a.Metric(`vantage_gossip_messages_dropped_total{reason="queue_full"}`)
		sendErrors += a.Metric(`vantage_gossip_send_errors_total`)
		heartbeatGaps += a.Metric(`vantage_gossip_heartbeat_gaps_total`)
		results += a.Metric(`vantage_gossip_results_received_total`)
	}
	return
}

// recomputes is the total of Assigned calls over every agent.
func (f *Fleet) recomputes() int {
	n := 0
	for _, a := range f.Agents() {
		n += a.local.recomputes()
	}
	return n
}

// freshAtLeaders is the fraction of (target, region) pairs for which the
// target's leader holds a fresh vote: a fresh observation from a current
// assignee (or a former one within its grace) in its own table.
func (f *Fleet) freshAtLeaders() float64 {
	fresh, total, _ := f.votesAtLeaders(0)
	if total == 0 {
		return 0
	}
	return float64(fresh) / float64(total)
}

// votesAtLeaders counts the fresh votes of current voters at each target's
// leader, and describes up to show of the missing ones: which leader, which
// region, what the leader holds from there.
func (f *Fleet) votesAtLeaders(show int) (fresh, total int, missing []string) {
	live := f.Live()
	members := make([]shard.Member, 0, len(live))
	regions := map[string]bool{}
	for _, a := range live {
		members = append(members, shard.Member{ID: a.Name, Region: a.Region})
		regions[a.Region] = true
	}
	led := make(map[*Agent][]string, len(live))
	byID := make(map[string]*Agent, len(live))
	for _, a := range live {
		byID[a.Name] = a
	}
	for _, t := range f.names {
		if l := byID[shard.Leader(t, members)]; l != nil {
			led[l] = append(led[l], t)
		}
	}
	total = len(f.names) * len(regions)
	for l, ts := range led {
		for _, st := range l.Cluster.StatusesOf(ts) { // one lock and leadership look per leader
			voted := map[string]bool{}
			for _, r := range st.Regions {
				if r.Fresh && r.Assignee {
					fresh++
					voted[r.Region] = true
				} else if len(missing) < show {
					missing = append(missing, fmt.Sprintf("%s at %s: %s from %s (fresh %v, voter %v, age %s)",
						st.Name, l.Name, r.Region, r.Agent, r.Fresh, r.Assignee, r.Age.Round(time.Millisecond)))
				}
			}
			for r := range regions {
				if !voted[r] && len(missing) < show && !slices.ContainsFunc(st.Regions, func(v cluster.RegionView) bool { return v.Region == r }) {
					missing = append(missing, fmt.Sprintf("%s at %s: nothing from %s", st.Name, l.Name, r))
				}
			}
		}
	}
	return fresh, total, missing
}

func timeAssign(names []string, members []shard.Member) time.Duration {
	ts := make([]shard.Target, len(names))
	for i, n := range names {
		ts[i] = shard.Target{Name: n}
	}
	best := time.Duration(0)
	for i := 0; i < 3; i++ {
		start := time.Now()
		a := shard.Assign(ts, members, 1)
		_ = a.OwnedBy(members[0].ID)
		if d := time.Since(start); best == 0 || d < best {
			best = d
		}
	}
	return best
}

// writeHeapProfile writes the live heap to path (none when ""), the
// window's name in the file name: a profile taken while the fleet runs
// shows what each agent keeps per target and per member (go test's
// -memprofile comes after the fleet stopped). Take it with
// -test.memprofilerate 512 to see small objects.
func writeHeapProfile(path, window string) error {
	if path == "" {
		return nil
	}
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return '-'
	}, strings.ToLower(window))
	f, err := os.Create(path + "." + name)
	if err != nil {
		return err
	}
	defer f.Close()
	return pprof.Lookup("heap").WriteTo(f, 0)
}

// heapLive is the live heap after a GC: the bytes that GC marked
// (/gc/heap/live:bytes). Not HeapAlloc after runtime.GC(): runtime.GC
// returns once sweeping is done, and in a saturated fleet of 50 agents
// that took minutes, during which the agents allocated gigabytes that
// HeapAlloc then counted as live (233 MB an agent read that way at 50 x
// 100k, while a heap profile a minute later held 60).
func heapLive() uint64 {
	runtime.GC()
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	return s[0].Value.Uint64()
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}
