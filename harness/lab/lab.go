// Package lab is Vantage's fault lab: it runs a real fleet (three regions,
// two agents each, in one process, each agent on its own loopback address,
// gossiping over fault-injecting transports) against a loopback target farm,
// plays scripted faults whose ground truth it records at the moment the farm
// flips, and measures what the fleet concluded: time to detect from the true
// start and from the first failed observation, time to resolve, missed
// outages, false incidents, suppressed failures and confirmation traffic.
//
// The faults (see Scenario): an outage every region sees; one only one
// region sees; responses slower than the timeout; a target flapping faster
// than the interval; an agent crashing and restarting during outages; a
// region cut off from the fleet and from the targets. Outage starts are
// drawn from a seeded RNG across the interval, so time to detect reflects
// where in the probe cycle a fault begins. The first four run concurrently
// on different targets; the partition and the crash, which affect the whole
// fleet, run alone (Options.Overlap runs the crash with the others, for the
// short CI version).
//
// The whole fleet and the farm share one process, so when the host does not
// schedule it every region freezes at once, as no real fleet can; a
// watchdog records such stalls and the report charges the incidents they
// explain to the host, listing them apart from false incidents. The lab
// needs Linux: agents probe and gossip from 127.77.R.N, which only a
// loopback that spans 127/8 provides.
package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/vantage-probe/vantage/cluster"
	"github.com/vantage-probe/vantage/exporter/alertmanager/amtest"
	"github.com/vantage-probe/vantage/internal/mono"
)

// Gossip profiles for the fleet's memberlist timings.
const (
	// GossipWAN keeps the product's defaults: what a deployed fleet runs.
	GossipWAN = "wan"
	// GossipLoopback detects a dead agent in a second or two, as the demo
	// does: loopback needs no WAN patience, and the short lab needs speed.
	GossipLoopback = "loopback"
)

// confirmCooldown is the cluster's per-target cooldown between two
// confirmation requests from one agent (cluster/confirm.go): the unit of
// the confirmation traffic bound.
const confirmCooldown = 10 * time.Second

// ErrOptions wraps every problem of an Options.
var ErrOptions = errors.New("lab options")

// Options configure a lab run. Full and Quick return complete sets.
type Options struct {
	Interval        time.Duration // every target's probe interval
	Timeout         time.Duration // every target's probe timeout
	Regions         []string
	AgentsPerRegion int
	MinRegions      int  // quorum
	NoConfirm       bool // confirm_on_failure off, to measure what it buys
	Gossip          string
	RejoinInterval  time.Duration // [cluster] rejoin_interval; 0: the config default
	Seed            uint64

	// Runs per scenario; 0 skips it.
	Outages       int // all-regions
	RegionOutages int // one-region
	SlowOutages   int // slow
	Flaps         int // flapping
	KillOutages   int // agent-kill: outages during the crash and restart
	Partitions    int // partition (played one after another)
	Controls      int // healthy targets that must never open an incident

	// OutageFor is how long each outage lasts; 0: interval + 2*timeout,
	// longer than detection takes even when every confirmation is lost.
	OutageFor time.Duration
	// RejoinWait bounds the wait for a healed or restarted agent to be seen
	// alive by all; 0: 90s for GossipWAN, 45s for GossipLoopback.
	RejoinWait time.Duration

	// NoAlertmanager runs the lab without Alertmanager: paging is then
	// not measured. By default the agents send their alerts to a real
	// Alertmanager (Debian's prometheus-alertmanager), and the report says
	// when each outage reached it and how many notifications it caused.
	NoAlertmanager bool
	// ResendInterval is the agents' [alerting] resend_interval; 0: the
	// default (1m).
	ResendInterval time.Duration

	// Overlap runs the agent crash at the same time as the single-target
	// faults instead of after the partition: an interval or two shorter,
	// and harsher (the crash disturbs the other faults' detection), so the
	// CI version uses it and the measured run does not.
	Overlap bool

	// Progress receives one line per step; nil discards.
	Progress io.Writer
	// Logger receives the agents' logs; nil discards.
	Logger *slog.Logger
}

// Full is the measured run of `make lab`: the configuration
// (interval 30s, timeout 2s, 3 regions, quorum 2, confirm-on-failure) with
// the product's gossip timings and enough runs for a p95.
func Full() Options {
	return Options{
		Interval: 30 * time.Second, Timeout: 2 * time.Second,
		Regions: []string{"eu-west", "us-east", "ap-south"}, AgentsPerRegion: 2, MinRegions: 2,
		Gossip: GossipWAN, Seed: 1,
		Outages: 20, RegionOutages: 10, SlowOutages: 10, Flaps: 5, KillOutages: 6, Partitions: 1, Controls: 10,
	}
}

// Paging is issue 13's measured run (`make lab`, first part): what on-call
// sees in Alertmanager at interval 15s, timeout 5s, 3 regions, quorum 2:
// outages (status 500) and hangs past the timeout, failures one region
// sees, flapping targets, and outages while a leader crashes; no partition.
func Paging() Options {
	o := Full()
	o.Interval, o.Timeout = 15*time.Second, 5*time.Second
	o.Outages, o.RegionOutages, o.SlowOutages, o.Flaps, o.KillOutages, o.Partitions, o.Controls = 20, 10, 20, 5, 6, 0, 10
	return o
}

// Quick is the CI version: interval 5s, timeout 1s, loopback gossip
// timings, a few runs of each scenario and the crash overlapping the
// other faults; it takes under a minute.
func Quick() Options {
	o := Full()
	o.Interval, o.Timeout = 5*time.Second, time.Second
	o.Gossip, o.RejoinInterval, o.Overlap = GossipLoopback, 2*time.Second, true
	o.Outages, o.RegionOutages, o.SlowOutages, o.Flaps, o.KillOutages, o.Partitions, o.Controls = 6, 3, 3, 2, 3, 1, 4
	o.ResendInterval = 5 * time.Second // several resends per outage
	return o
}

func (o *Options) validate() error {
	var errs []error
	if o.Interval < time.Second {
		errs = append(errs, fmt.Errorf("interval %q: must be at least 1s", o.Interval))
	}
	if o.Timeout <= 0 || o.Timeout >= o.Interval {
		errs = append(errs, fmt.Errorf("timeout %q: must be above zero and below interval (%v)", o.Timeout, o.Interval))
	}
	if len(o.Regions) < 2 {
		errs = append(errs, fmt.Errorf("regions %q: need at least 2", o.Regions))
	}
	if o.AgentsPerRegion < 1 || (o.KillOutages > 0 && o.AgentsPerRegion < 2) {
		errs = append(errs, fmt.Errorf("agents per region %d: need at least 1, and 2 for the agent-kill scenario", o.AgentsPerRegion))
	}
	if o.MinRegions < 1 || o.MinRegions > len(o.Regions) {
		errs = append(errs, fmt.Errorf("min regions %d: must be from 1 to the number of regions (%d)", o.MinRegions, len(o.Regions)))
	}
	if o.Gossip != GossipWAN && o.Gossip != GossipLoopback {
		errs = append(errs, fmt.Errorf("gossip %q: want %q or %q", o.Gossip, GossipWAN, GossipLoopback))
	}
	for name, n := range map[string]int{"outages": o.Outages, "region outages": o.RegionOutages, "slow outages": o.SlowOutages,
		"flaps": o.Flaps, "kill outages": o.KillOutages, "partitions": o.Partitions, "controls": o.Controls} {
		if n < 0 || n > 500 {
			errs = append(errs, fmt.Errorf("%s %d: must be from 0 to 500", name, n))
		}
	}
	return errors.Join(errs...)
}

func (o *Options) applyDefaults() {
	if o.OutageFor == 0 {
		o.OutageFor = o.Interval + 2*o.Timeout
	}
	if o.RejoinWait == 0 {
		o.RejoinWait = 90 * time.Second // a restarted agent's new address is refused until memberlist forgets the old one (30s)
		if o.Gossip == GossipLoopback {
			o.RejoinWait = 45 * time.Second
		}
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// clusterTuning returns the memberlist timings of the gossip profile.
func (o *Options) clusterTuning() func(*cluster.Config) {
	if o.Gossip != GossipLoopback {
		return nil
	}
	return func(c *cluster.Config) {
		c.ProbeInterval = 500 * time.Millisecond
		c.ProbeTimeout = 200 * time.Millisecond
		c.SuspicionMult = 2
		c.GossipInterval = 100 * time.Millisecond
		c.HeartbeatEvery = time.Second
		c.PushPull = 5 * time.Second
		c.Grace = 10 * time.Second
	}
}

// deathDetection is about how long memberlist takes to declare a crashed
// agent dead with the profile's timings (suspicion timeout at its minimum
// plus two probe rounds): until then the crashed agent keeps its targets
// and its leaderships.
func (o *Options) deathDetection() time.Duration {
	if o.Gossip == GossipLoopback {
		return 2 * time.Second // 2 x 500ms suspicion + 2 probe rounds
	}
	return 12 * time.Second // 4 x 2s suspicion + 2 probe rounds
}

// stale is how long an observation stays fresh (cluster/verdict.go):
// after a region goes silent, its last word still votes this long.
func (o *Options) stale() time.Duration { return 2*o.Interval + o.Timeout + 2*time.Second }

// lab is one run.
type lab struct {
	opts  Options
	farm  *Farm
	fleet *fleet
	start time.Time
	// scenariosStart is when the warm-up ended and the counters were
	// first read: the report's accounting starts there.
	scenariosStart time.Time

	groups  map[Scenario][]string
	targets []string
	// ups counts, per flapping target, the times the farm brought it back
	// up mid-fault: the most flaps its incident may count.
	ups        map[string]int
	pager      *pager // nil without Alertmanager
	mu         sync.Mutex
	episodes   []Episode
	notes      []string
	recoveries []Recovery
	isolations []Isolation
	stalls     []Stall
}

// Recovery is how long it took, after a partition healed or a crashed
// agent restarted, until every agent saw every agent alive at its current
// address. OK is false when that did not happen within RejoinWait.
type Recovery struct {
	Scenario Scenario
	Who      string // the region or the agent
	After    time.Duration
	OK       bool
}

// Isolation is what the isolation flags said during a partition: how long
// after the cut every agent of the cut-off region flagged itself isolated
// (-1: never), and which agents elsewhere wrongly did.
type Isolation struct {
	Region  string
	Flagged time.Duration
	Wrong   []string
}

// Run plays the lab and returns its report. It stops early, with the
// report so far, when ctx ends.
func Run(ctx context.Context, opts Options) (*Report, error) {
	if err := opts.validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrOptions, err)
	}
	opts.applyDefaults()
	l := &lab{opts: opts, start: time.Now(), groups: map[Scenario][]string{}}
	l.plan()
	farm, err := StartFarm(l.targets, 2*opts.Timeout+time.Second)
	if err != nil {
		return nil, err
	}
	defer farm.Close()
	l.farm = farm
	var pagingNote string
	if !opts.NoAlertmanager {
		dir, err := os.MkdirTemp("", "vantage-lab-am-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		if l.pager, err = startPager(ctx, dir); err != nil {
			if !errors.Is(err, amtest.ErrNoBinary) {
				return nil, fmt.Errorf("alertmanager: %w", err)
			}
			pagingNote = "paging not measured: " + err.Error()
		} else {
			defer l.pager.close()
		}
	}
	l.fleet = newFleet(opts, farm, l.targets)
	if l.pager != nil {
		l.fleet.alertmanager = l.pager.am.URL()
	}
	defer l.fleet.stop()

	l.say("starting %d agents in %d regions on 127.77.R.N, %d targets on %s; interval %v, timeout %v, quorum %d, confirm_on_failure %t, gossip %s",
		len(opts.Regions)*opts.AgentsPerRegion, len(opts.Regions), len(l.targets), farm.srv.Addr, opts.Interval, opts.Timeout,
		opts.MinRegions, !opts.NoConfirm, opts.Gossip)
	if err := l.fleet.startAll(); err != nil {
		return nil, err
	}
	// Background: incident collection and the stall watchdog, stopped
	// before the report (and on any early return).
	cctx, cancelBG := context.WithCancel(ctx)
	var bg sync.WaitGroup
	bg.Go(func() { l.fleet.collectLoop(cctx, 250*time.Millisecond) })
	bg.Go(func() { l.watchdog(cctx) })
	if l.pager != nil {
		bg.Go(func() { l.pager.poll(cctx) })
	}
	stopBG := sync.OnceFunc(func() { cancelBG(); bg.Wait() })
	defer stopBG()

	// Each phase draws from its own stream of the seed, so a seed replays
	// the same faults whether or not phases overlap.
	rng := func(phase uint64) *rand.Rand { return rand.New(rand.NewPCG(opts.Seed, phase)) }
	before := map[string]float64{}
	err = l.warmUp(ctx)
	if err == nil {
		before = l.fleet.counters()
		l.scenariosStart = time.Now()
		if opts.Overlap && opts.KillOutages > 0 {
			crashed := make(chan error, 1)
			go func() { crashed <- l.crash(ctx, rng(2)) }()
			err = errors.Join(l.faults(ctx, rng(1)), <-crashed)
		} else {
			err = l.faults(ctx, rng(1))
		}
	}
	for i := 0; err == nil && i < opts.Partitions; i++ {
		err = l.partition(ctx, rng(3+uint64(i)))
	}
	if err == nil && !opts.Overlap && opts.KillOutages > 0 {
		err = l.crash(ctx, rng(2))
	}
	stopBG()
	l.fleet.collect()
	after := l.fleet.counters()
	rep := l.report(before, after)
	if pagingNote != "" {
		rep.Notes = append(rep.Notes, pagingNote)
	}
	if err != nil && ctx.Err() == nil {
		return rep, err
	}
	if ctx.Err() != nil {
		rep.Notes = append(rep.Notes, "interrupted: the report covers the scenarios played so far")
	}
	return rep, nil
}

// stallTick is the watchdog's period; a wake-up later than stallReport
// past it is a stall worth recording.
const (
	stallTick   = 50 * time.Millisecond
	stallReport = 250 * time.Millisecond
)

// watchdog records the times the lab's own process was not scheduled. The
// whole fleet and the farm live in it, so on a loaded host every region
// freezes at once: probes in flight time out everywhere together and
// memberlist suspects everyone, which no real multi-region fleet does.
// The report charges incidents such stalls explain to the host.
func (l *lab) watchdog(ctx context.Context) {
	t := time.NewTicker(stallTick)
	defer t.Stop()
	prev := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			now := time.Now() // the tick carries when it was due, not when we ran
			if late := now.Sub(prev) - stallTick; late >= stallReport {
				l.mu.Lock()
				l.stalls = append(l.stalls, Stall{Start: prev.Add(stallTick), Length: late})
				l.mu.Unlock()
			}
			prev = now
		}
	}
}

// plan names the targets of each scenario.
func (l *lab) plan() {
	o := l.opts
	add := func(s Scenario, prefix string, n int) {
		for i := 1; i <= n; i++ {
			name := prefix + "-" + fmt.Sprintf("%02d", i)
			l.groups[s] = append(l.groups[s], name)
			l.targets = append(l.targets, name)
		}
	}
	add(AllRegions, "out", o.Outages)
	add(OneRegion, "reg", o.RegionOutages)
	add(SlowAll, "slow", o.SlowOutages)
	add(Flapping, "flap", o.Flaps)
	// Twice the outages: the crash's outages are picked among targets the
	// victim probes or leads; the rest stay healthy and must stay quiet.
	add(AgentKill, "kill", 2*o.KillOutages)
	add(NoFault, "ok", o.Controls)
}

func (l *lab) say(format string, args ...any) {
	el := time.Since(l.start).Round(time.Second)
	fmt.Fprintf(l.opts.Progress, "[%02d:%02d] %s\n", int(el.Minutes()), int(el.Seconds())%60, fmt.Sprintf(format, args...))
}

func (l *lab) note(format string, args ...any) {
	l.mu.Lock()
	l.notes = append(l.notes, fmt.Sprintf(format, args...))
	l.mu.Unlock()
}

func (l *lab) recovered(r Recovery) {
	l.mu.Lock()
	l.recoveries = append(l.recoveries, r)
	l.mu.Unlock()
}

func (l *lab) record(e Episode) {
	l.mu.Lock()
	l.episodes = append(l.episodes, e)
	l.mu.Unlock()
}

// waitFor polls cond every 100ms until it holds (true), limit passes or ctx
// ends (false).
func waitFor(ctx context.Context, limit time.Duration, cond func() bool) bool {
	return mono.Poll(ctx, limit, 100*time.Millisecond, cond)
}

func sleepUntil(ctx context.Context, at time.Time) error { return mono.Sleep(ctx, time.Until(at)) }

// warmUp waits for the fleet to converge and every target to be up with a
// fresh result from every region.
func (l *lab) warmUp(ctx context.Context) error {
	t0 := time.Now()
	if !waitFor(ctx, 30*time.Second, l.fleet.converged) {
		return errors.New("the fleet did not converge within 30s")
	}
	conv := time.Since(t0)
	limit := l.opts.stale() + 10*time.Second
	if !waitFor(ctx, limit, l.fleet.covered) {
		return fmt.Errorf("not every target was up with every region reporting within %v", limit)
	}
	l.say("fleet converged in %.1fs: %d agents alive; every target up in every region after %.1fs",
		conv.Seconds(), len(l.fleet.live()), time.Since(t0).Seconds())
	return nil
}

// offset draws a fault's start within the interval: uniform, so time to
// detect covers every phase of the probe cycle.
func (l *lab) offset(rng *rand.Rand) time.Duration {
	return time.Duration(rng.Int64N(int64(l.opts.Interval)))
}

// fault is one scheduled fault: on at t0+at for d, then off. Both return
// the moment the change took effect.
type fault struct {
	at, d   time.Duration
	on, off func() time.Time
	episode Episode
}

// play runs faults concurrently, records their episodes with the true flip
// times, and returns the latest repair. A fault cut short by ctx is still
// repaired (and not recorded).
func (l *lab) play(ctx context.Context, faults []fault) (time.Time, error) {
	t0 := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	last := t0
	for _, f := range faults {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if sleepUntil(ctx, t0.Add(f.at)) != nil {
				return
			}
			start := f.on()
			err := sleepUntil(ctx, start.Add(f.d))
			end := f.off()
			if err != nil {
				return
			}
			e := f.episode
			e.Start, e.End = start, end
			l.record(e)
			mu.Lock()
			if end.After(last) {
				last = end
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	return last, ctx.Err()
}

// settle waits after the last repair for every incident to close: the
// cluster closes one an interval after the quorum sees its target up (its
// resolved_at is backdated to that moment), so this takes up to about
// 5/3 interval; at most until every failing observation has gone stale.
func (l *lab) settle(ctx context.Context, lastEnd time.Time) error {
	if err := sleepUntil(ctx, lastEnd.Add(l.opts.Timeout+time.Second)); err != nil {
		return err
	}
	limit := time.Until(lastEnd.Add(l.opts.stale()))
	waitFor(ctx, limit, func() bool {
		l.fleet.collect()
		for _, in := range l.fleet.allIncidents() {
			if in.Open() {
				return false
			}
		}
		return true
	})
	return ctx.Err()
}

// faults plays the scenarios that touch single targets, concurrently.
func (l *lab) faults(ctx context.Context, rng *rand.Rand) error {
	o := l.opts
	d := o.OutageFor
	var fs []fault
	for _, name := range l.groups[AllRegions] {
		fs = append(fs, fault{at: l.offset(rng), d: d,
			on:      func() time.Time { return l.farm.Set(name, Down) },
			off:     func() time.Time { return l.farm.Set(name, Healthy) },
			episode: Episode{Scenario: AllRegions, Target: name, Expect: Detect, Requesters: len(o.Regions)}})
	}
	for _, name := range l.groups[OneRegion] {
		r := rng.IntN(len(o.Regions))
		prefix := regionPrefix(r)
		fs = append(fs, fault{at: l.offset(rng), d: d,
			on:  func() time.Time { return l.farm.Block(name, prefix, true) },
			off: func() time.Time { return l.farm.Block(name, prefix, false) },
			episode: Episode{Scenario: OneRegion, Target: name, Expect: NoIncident, Region: o.Regions[r],
				Requesters: 1}})
	}
	for _, name := range l.groups[SlowAll] {
		fs = append(fs, fault{at: l.offset(rng), d: d,
			on:      func() time.Time { return l.farm.Set(name, Slow) },
			off:     func() time.Time { return l.farm.Set(name, Healthy) },
			episode: Episode{Scenario: SlowAll, Target: name, Expect: Detect, Requesters: len(o.Regions)}})
	}
	// Flapping: down and up alternating several times per probe interval,
	// each half lasting a random interval/12 to interval/4. Random, because
	// a fixed period would alias with the regions' stagger (interval/3 apart):
	// with a period of interval/3 every region samples the same phase.
	lo := max(o.Interval/12, 250*time.Millisecond)
	hi := max(o.Interval/4, 2*lo)
	for _, name := range l.groups[Flapping] {
		stop := make(chan struct{})
		done := make(chan struct{})
		frng := rand.New(rand.NewPCG(rng.Uint64(), rng.Uint64()))
		fs = append(fs, fault{at: l.offset(rng), d: d,
			on: func() time.Time {
				at := l.farm.Set(name, Down)
				go l.flap(name, frng, lo, hi, stop, done)
				return at
			},
			off: func() time.Time {
				close(stop)
				<-done
				return l.farm.Set(name, Healthy)
			},
			episode: Episode{Scenario: Flapping, Target: name, Expect: AtMostOne, Requesters: len(o.Regions)}})
	}
	if len(fs) == 0 {
		return nil
	}
	l.say("faults: %d all-region outages, %d one-region outages, %d slow, %d flapping, each %v, starting at random within %v",
		len(l.groups[AllRegions]), len(l.groups[OneRegion]), len(l.groups[SlowAll]), len(l.groups[Flapping]), d, o.Interval)
	last, err := l.play(ctx, fs)
	if err != nil {
		return err
	}
	l.say("faults repaired; waiting for incidents to resolve")
	return l.settle(ctx, last)
}

// flap toggles name between Down and Healthy, each state lasting a random
// duration in [lo, hi), until stop.
func (l *lab) flap(name string, rng *rand.Rand, lo, hi time.Duration, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTimer(lo + time.Duration(rng.Int64N(int64(hi-lo))))
	defer t.Stop()
	down := true
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			down = !down
			if down {
				l.farm.Set(name, Down)
			} else {
				l.farm.Set(name, Healthy)
				l.mu.Lock()
				if l.ups == nil {
					l.ups = map[string]int{}
				}
				l.ups[name]++
				l.mu.Unlock()
			}
			t.Reset(lo + time.Duration(rng.Int64N(int64(hi-lo))))
		}
	}
}

// partition cuts one region off from the other regions' gossip and from
// every target for as long as the others take to forget its last results,
// then heals and waits for it to rejoin. No incident may open meanwhile.
func (l *lab) partition(ctx context.Context, rng *rand.Rand) error {
	o := l.opts
	r := rng.IntN(len(o.Regions))
	region, prefix := o.Regions[r], regionPrefix(r)
	hold := o.stale() + 2*time.Second
	l.say("partition: %s cut off from the other regions and from every target for %v", region, hold)
	l.fleet.net.Isolate(region)
	start := l.farm.BlockAll(prefix, true)

	// Watch the isolation flags while the partition lasts: the cut-off
	// region should flag itself, no other region should.
	var flagged time.Duration
	wrong := map[string]bool{}
	for time.Now().Before(start.Add(hold)) {
		all, any := true, false
		for _, m := range l.fleet.live() {
			iso := m.a.Cluster().Isolated()
			if m.region == region {
				all = all && iso
				any = true
			} else if iso {
				wrong[m.node] = true
			}
		}
		if flagged == 0 && all && any {
			flagged = time.Since(start)
		}
		if sleepUntil(ctx, time.Now().Add(100*time.Millisecond)) != nil {
			l.fleet.net.Heal()
			l.farm.BlockAll(prefix, false)
			return ctx.Err()
		}
	}
	l.fleet.net.Heal()
	healed := l.farm.BlockAll(prefix, false)
	if flagged == 0 {
		flagged = -1
	}
	l.mu.Lock()
	l.isolations = append(l.isolations, Isolation{Region: region, Flagged: flagged, Wrong: slices.Sorted(maps.Keys(wrong))})
	l.mu.Unlock()
	l.say("healed; waiting for %s to rejoin", region)
	ok := waitFor(ctx, o.RejoinWait, l.fleet.converged)
	l.recovered(Recovery{Scenario: Partition, Who: region, After: time.Since(healed), OK: ok})
	// Keep watching for an interval: late false incidents (stale failing
	// results arriving with the heal) belong to the partition.
	if err := sleepUntil(ctx, time.Now().Add(o.Interval)); err != nil {
		return err
	}
	waitFor(ctx, o.stale(), l.fleet.covered)
	l.record(Episode{Scenario: Partition, Expect: NoIncident, Start: start, End: time.Now(), Region: region,
		Requesters: len(l.targets)})
	return nil
}

// crash kills one agent (no Leave) while outages start around it, restarts
// it an interval later at a new address, and waits for it to rejoin. The
// outages must be detected; nothing else may open an incident.
func (l *lab) crash(ctx context.Context, rng *rand.Rand) error {
	o := l.opts
	r := 1 % len(o.Regions)
	victim := fmt.Sprintf("%s-%d", o.Regions[r], o.AgentsPerRegion)
	vm := l.fleet.member(victim)
	if vm == nil {
		return fmt.Errorf("agent-kill: no agent %q", victim)
	}
	picked := l.pickKillTargets(victim)
	d := o.OutageFor + o.deathDetection()
	var fs []fault
	for _, name := range picked {
		fs = append(fs, fault{at: l.offset(rng), d: d,
			on:      func() time.Time { return l.farm.Set(name, Down) },
			off:     func() time.Time { return l.farm.Set(name, Healthy) },
			episode: Episode{Scenario: AgentKill, Target: name, Expect: Detect, Requesters: len(o.Regions)}})
	}
	start := time.Now()
	l.say("agent-kill: %d outages starting within %v on targets %s probes or leads; %s crashes at +%v, restarts at +%v",
		len(fs), o.Interval, victim, victim, o.Interval/2, o.Interval/2+o.Interval)

	// The crash, the restart, and the wait for the fleet to see the
	// restarted agent alive, measured from the restart.
	restart := make(chan error, 1)
	go func() {
		if sleepUntil(ctx, start.Add(o.Interval/2)) != nil {
			restart <- ctx.Err()
			return
		}
		l.fleet.kill(victim)
		if sleepUntil(ctx, time.Now().Add(o.Interval)) != nil {
			restart <- ctx.Err()
			return
		}
		if _, err := l.fleet.start(victim, vm.region, vm.ip); err != nil {
			restart <- fmt.Errorf("agent-kill: restart %s: %w", victim, err)
			return
		}
		restarted := time.Now()
		ok := waitFor(ctx, o.RejoinWait, l.fleet.converged)
		l.recovered(Recovery{Scenario: AgentKill, Who: victim, After: time.Since(restarted), OK: ok})
		restart <- ctx.Err()
	}()
	last, err := l.play(ctx, fs)
	if err == nil {
		err = l.settle(ctx, last)
	}
	if rerr := <-restart; err == nil {
		err = rerr
	}
	if err != nil {
		return err
	}
	l.record(Episode{Scenario: AgentKill, Expect: NoIncident, Watch: true, Start: start, End: time.Now()})
	return nil
}

// pickKillTargets picks the crash's outage targets among its group: the
// targets the victim leads first, then those it probes, alternating, so
// the crash hits both roles.
func (l *lab) pickKillTargets(victim string) []string {
	var leads, probes, rest []string
	var view *member
	for _, m := range l.fleet.live() {
		if m.node != victim {
			view = m
			break
		}
	}
	group := map[string]bool{}
	for _, n := range l.groups[AgentKill] {
		group[n] = true
	}
	for _, st := range view.a.Cluster().Statuses() {
		if !group[st.Name] {
			continue
		}
		probed := false
		for _, ids := range st.Assignment {
			probed = probed || slices.Contains(ids, victim)
		}
		switch {
		case st.Leader == victim:
			leads = append(leads, st.Name)
		case probed:
			probes = append(probes, st.Name)
		default:
			rest = append(rest, st.Name)
		}
	}
	var out []string
	for i := 0; len(out) < l.opts.KillOutages && (i < len(leads) || i < len(probes)); i++ {
		if i < len(leads) {
			out = append(out, leads[i])
		}
		if i < len(probes) && len(out) < l.opts.KillOutages {
			out = append(out, probes[i])
		}
	}
	for _, n := range rest {
		if len(out) < l.opts.KillOutages {
			out = append(out, n)
		}
	}
	l.note("agent-kill: outages on %d targets %s led and %d it probed (of %d)",
		countIn(out, leads), victim, countIn(out, probes), len(out))
	return out
}

func countIn(xs, set []string) int {
	n := 0
	for _, x := range xs {
		if slices.Contains(set, x) {
			n++
		}
	}
	return n
}
