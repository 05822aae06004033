// Package scale runs many cluster.Cluster instances in one process, each
// with a scripted Local (probe outcomes set by the harness), on real
// loopback sockets, and measures the cluster's behaviour at size: how long
// a dead agent takes to be noticed and its targets reassigned, how many
// targets a join or leave moves, how many gossip bytes an agent sends, and
// what 50 agents and 10k targets cost.
//
// Only the probes are scripted: memberlist, the gossip wire format,
// assignment and verdicts are the production code. Every agent's memberlist
// transport is a real UDP/TCP transport (cluster/clustertest, so an agent
// can be frozen) wrapped to count the bytes it sends.
package scale

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/vantage-probe/vantage/cluster"
	"github.com/vantage-probe/vantage/cluster/clustertest"
	"github.com/vantage-probe/vantage/cluster/shard"
)

// Timing is a named set of cluster timings.
type Timing struct {
	Name string
	// Tune adjusts the cluster config; nil keeps the cluster package's
	// production defaults (zero values, filled by its applyDefaults).
	Tune func(*cluster.Config)
}

// Production is the cluster package's defaults: what `vantage agent` runs
// unless the config overrides the gossip timings.
func Production() Timing { return Timing{Name: "production"} }

// Demo is the timings `vantage demo` and the lab run on loopback
// (demo/demo.go, lab/lab.go): a dead agent is found in about two seconds.
func Demo() Timing {
	return Timing{Name: "demo", Tune: func(c *cluster.Config) {
		c.ProbeInterval = 500 * time.Millisecond
		c.ProbeTimeout = 200 * time.Millisecond
		c.SuspicionMult = 2
		c.GossipInterval = 100 * time.Millisecond
		c.HeartbeatEvery = time.Second
		c.PushPull = 5 * time.Second
		c.Grace = 10 * time.Second
	}}
}

// Options shape a fleet.
type Options struct {
	Regions   []string // default eu, us, ap
	PerRegion int      // agents per region at start; default 1
	Targets   int      // targets t00000, t00001, ...; every region probes every one
	// TargetInterval and TargetTimeout are every target's probe interval
	// and timeout: they set how long an observation stays fresh.
	TargetInterval time.Duration // default 30s
	TargetTimeout  time.Duration // default 5s
	Timing         Timing
	Key            []byte // gossip key (16, 24 or 32 bytes); nil: plaintext
	Logger         *slog.Logger
	// Progress, when set, hears each step of a long measurement as it
	// ends (a large fleet on a small machine runs for many minutes; a
	// run stopped early keeps what it printed).
	Progress func(string)
	// SpreadFirstRound: MeasureGossip plays the first probe round over
	// the interval, as agents do, instead of all at once.
	SpreadFirstRound bool
	// HeapProfile, when set, is where MeasureGossip writes the live heap
	// after each window (PATH.window-name).
	HeapProfile string
}

func (o *Options) applyDefaults() {
	if len(o.Regions) == 0 {
		o.Regions = []string{"eu", "us", "ap"}
	}
	if o.PerRegion <= 0 {
		o.PerRegion = 1
	}
	if o.TargetInterval <= 0 {
		o.TargetInterval = 30 * time.Second
	}
	if o.TargetTimeout <= 0 {
		o.TargetTimeout = 5 * time.Second
	}
	if o.Timing.Name == "" {
		o.Timing = Production()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Agent is one cluster in the fleet.
type Agent struct {
	Name    string
	Region  string
	Cluster *cluster.Cluster

	local   *local
	tr      *countingTransport
	metrics *metrics.Set
	fleet   *Fleet
	started time.Time
	state   atomic.Int32 // agentLive, agentFrozen, agentDead
}

const (
	agentLive int32 = iota
	agentFrozen
	agentDead
)

// Live reports whether the agent runs and talks (neither killed, left nor frozen).
func (a *Agent) Live() bool { return a.state.Load() == agentLive }

// Traffic is what the agent has sent since it started.
func (a *Agent) Traffic() Traffic { return a.tr.traffic() }

// Assigned is the agent's current target set, sorted. Do not modify it.
func (a *Agent) Assigned() []string { return a.local.current() }

// Churn is the running total of targets the agent was given and relieved
// of, over every Assigned call, transient moves included.
func (a *Agent) Churn() (gained, lost int) { return a.local.churn() }

// Metric returns the value of one of the agent's own metrics, by its full
// name with labels as exported (e.g.
// `vantage_gossip_messages_dropped_total{reason="queue_full"}`); 0 when absent.
func (a *Agent) Metric(name string) float64 {
	var b bytes.Buffer
	a.metrics.WritePrometheus(&b)
	for _, line := range strings.Split(b.String(), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
}

// Fleet is many agents in one process.
type Fleet struct {
	opts  Options
	net   *clustertest.Net
	specs []cluster.TargetSpec
	names []string       // sorted
	index map[string]int // name -> position in names
	world *world

	probing sync.WaitGroup
	stop    chan struct{} // closed by Close: stops probing
	once    sync.Once

	mu        sync.Mutex
	agents    []*Agent
	probingOn bool                            // StartProbing was called: agents added since probe too
	serial    map[string]int                  // region -> agents started there
	leaves    map[string]map[string]time.Time // node -> observer -> latest member_leave event
	joins     map[string]map[string]time.Time // node -> observer -> latest member_join event
}

// Start starts opts.Regions x opts.PerRegion agents, region by region,
// each joining through the agents already running. It returns without
// waiting for convergence (see WaitConverged).
func Start(opts Options) (*Fleet, error) {
	opts.applyDefaults()
	f := &Fleet{
		opts:   opts,
		net:    clustertest.NewNet(),
		index:  make(map[string]int, opts.Targets),
		world:  &world{down: map[string]bool{}},
		serial: map[string]int{},
		leaves: map[string]map[string]time.Time{},
		joins:  map[string]map[string]time.Time{},
		stop:   make(chan struct{}),
	}
	for i := 0; i < opts.Targets; i++ {
		name := fmt.Sprintf("t%05d", i)
		f.names = append(f.names, name)
		f.specs = append(f.specs, cluster.TargetSpec{Name: name, Interval: opts.TargetInterval,
			Timeout: opts.TargetTimeout, MinRegions: 2})
	}
	sort.Strings(f.names)
	for i, n := range f.names {
		f.index[n] = i
	}
	for _, r := range opts.Regions {
		for i := 0; i < opts.PerRegion; i++ {
			if _, err := f.AddAgent(r); err != nil {
				f.Close()
				return nil, err
			}
		}
	}
	return f, nil
}

// Targets is the fleet's target names, sorted. Do not modify it.
func (f *Fleet) Targets() []string { return f.names }

// Regions is the fleet's regions, as configured.
func (f *Fleet) Regions() []string { return f.opts.Regions }

// AddAgent starts one more agent in region, named region-N, joining
// through up to three running agents (the first ones: the seeds a real
// deployment would list).
func (f *Fleet) AddAgent(region string) (*Agent, error) {
	f.mu.Lock()
	name := fmt.Sprintf("%s-%d", region, f.serial[region])
	f.serial[region]++
	var join []string
	for _, a := range f.agents {
		if a.Live() && len(join) < 3 {
			join = append(join, a.Cluster.LocalAddr())
		}
	}
	f.mu.Unlock()

	ft, err := f.net.Transport(name, region, "127.0.0.1")
	if err != nil {
		return nil, fmt.Errorf("transport for agent %q: %w", name, err)
	}
	tr := newCountingTransport(ft)
	a := &Agent{Name: name, Region: region, tr: tr, fleet: f, started: time.Now(), metrics: metrics.NewSet()}
	a.local = &local{world: f.world, interval: f.opts.TargetInterval, timeout: f.opts.TargetTimeout}
	cfg := cluster.Config{
		NodeName: name, Region: region, Version: "scale", Bind: "127.0.0.1:0", Join: join,
		Transport: tr, Logger: f.opts.Logger.With("node", name), ConfirmOnFailure: true, Metrics: a.metrics,
		OnEvent: func(ev cluster.Event) { f.event(name, ev) },
	}
	if f.opts.Key != nil {
		cfg.Keys = [][]byte{f.opts.Key}
	}
	if f.opts.Timing.Tune != nil {
		f.opts.Timing.Tune(&cfg)
	}
	c, err := cluster.New(cfg, a.local, f.specs)
	if err != nil {
		_ = tr.Shutdown()
		return nil, fmt.Errorf("start agent %q: %w", name, err)
	}
	a.Cluster = c
	a.local.c.Store(c)
	f.mu.Lock()
	f.agents = append(f.agents, a)
	probing := f.probingOn
	f.mu.Unlock()
	if probing {
		f.probe(a)
	}
	return a, nil
}

func (f *Fleet) event(observer string, ev cluster.Event) {
	var record map[string]map[string]time.Time
	switch ev.Kind {
	case "member_leave":
		record = f.leaves
	case "member_join":
		record = f.joins
	default:
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	seen := record[ev.Node]
	if seen == nil {
		seen = map[string]time.Time{}
		record[ev.Node] = seen
	}
	// The latest: an agent wrongly declared dead earlier (a slow start on a
	// busy machine) and back since must not count for its real death.
	if ev.At.After(seen[observer]) {
		seen[observer] = ev.At
	}
}

// DeathSeen returns when live agents reported node dead or gone
// (memberlist's NotifyLeave) since the given time: the earliest and the
// latest of them, and how many of the live agents have.
func (f *Fleet) DeathSeen(node string, since time.Time) (first, last time.Time, observers int) {
	return f.seen(f.leaves, node, since)
}

// JoinSeen is DeathSeen for node's join (memberlist's NotifyJoin); the
// newcomer itself does not count.
func (f *Fleet) JoinSeen(node string, since time.Time) (first, last time.Time, observers int) {
	return f.seen(f.joins, node, since)
}

func (f *Fleet) seen(record map[string]map[string]time.Time, node string, since time.Time) (first, last time.Time, observers int) {
	live := f.Live()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, a := range live {
		if a.Name == node {
			continue // a newcomer hears its own join
		}
		at, ok := record[node][a.Name]
		if !ok || at.Before(since) {
			continue
		}
		observers++
		if first.IsZero() || at.Before(first) {
			first = at
		}
		if at.After(last) {
			last = at
		}
	}
	return first, last, observers
}

// Agents returns every agent started, dead ones included, in start order.
func (f *Fleet) Agents() []*Agent {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.agents)
}

// Live returns the running, talking agents in start order.
func (f *Fleet) Live() []*Agent {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]*Agent, 0, len(f.agents))
	for _, a := range f.agents {
		if a.Live() {
			out = append(out, a)
		}
	}
	return out
}

// Kill stops a without Leave, as a crash would: its sockets close.
func (f *Fleet) Kill(a *Agent) {
	if a.state.Swap(agentDead) == agentDead {
		return
	}
	a.Cluster.Kill()
	f.net.Freeze(a.Name, false) // a frozen agent that is then killed
}

// Freeze makes a drop everything in and out, as a hung process would: its
// sockets stay open. Kill it afterwards to stop it.
func (f *Fleet) Freeze(a *Agent) {
	if a.state.CompareAndSwap(agentLive, agentFrozen) {
		f.net.Freeze(a.Name, true)
	}
}

// Leave stops a gracefully: it says goodbye, then leaves.
func (f *Fleet) Leave(a *Agent, timeout time.Duration) error {
	if a.state.Swap(agentDead) == agentDead {
		return nil
	}
	return a.Cluster.Leave(timeout)
}

// Close stops probing and kills every agent still running, concurrently.
func (f *Fleet) Close() {
	f.once.Do(func() { close(f.stop) })
	f.probing.Wait()
	var wg sync.WaitGroup
	for _, a := range f.Agents() {
		wg.Add(1)
		go func() { defer wg.Done(); f.Kill(a) }()
	}
	wg.Wait()
}

// MembershipConverged reports whether every live agent sees exactly the
// live agents alive.
func (f *Fleet) MembershipConverged() bool {
	live := f.Live()
	want := make(map[string]bool, len(live))
	for _, a := range live {
		want[a.Name] = true
	}
	for _, a := range live {
		alive := 0
		for _, m := range a.Cluster.Members() {
			if m.State != cluster.Alive {
				continue
			}
			if !want[m.Name] {
				return false
			}
			alive++
		}
		if alive != len(want) {
			return false
		}
	}
	return true
}

// OwnershipProblems counts (target, region) pairs that do not have exactly
// one live owner, over the regions with a live agent, as the live agents'
// Assigned sets say.
func (f *Fleet) OwnershipProblems() int {
	live := f.Live()
	regions := map[string]int{}
	for _, a := range live {
		if _, ok := regions[a.Region]; !ok {
			regions[a.Region] = len(regions)
		}
	}
	n := len(f.names)
	owners := make([]int32, n*len(regions))
	for _, a := range live {
		base := regions[a.Region] * n
		for _, t := range a.Assigned() {
			if i, ok := f.index[t]; ok {
				owners[base+i]++
			}
		}
	}
	bad := 0
	for _, o := range owners {
		if o != 1 {
			bad++
		}
	}
	return bad
}

// Converged: membership agrees everywhere, every target has exactly one
// live owner in every region that has a live agent, and every live agent
// probes exactly what shard.Assign gives it for the live membership. (The
// last check matters: the cluster recomputes a short debounce after a
// membership change, so an old assignment can look complete for a moment.)
func (f *Fleet) Converged() bool {
	if f.OwnershipProblems() != 0 || !f.MembershipConverged() {
		return false
	}
	ts := make([]shard.Target, len(f.names))
	for i, n := range f.names {
		ts[i] = shard.Target{Name: n}
	}
	want := shard.Assign(ts, f.members(), 1)
	for _, a := range f.Live() {
		if !slices.Equal(a.Assigned(), want.OwnedBy(a.Name)) {
			return false
		}
	}
	return true
}

// WaitConverged polls Converged until it holds, and returns how long that
// took; on a timeout the error says what still disagrees.
func (f *Fleet) WaitConverged(ctx context.Context, limit time.Duration) (time.Duration, error) {
	// Members() takes each agent's lock: poll a large fleet less often.
	step := 20 * time.Millisecond * time.Duration(max(1, len(f.Live())/10))
	d, err := poll(ctx, limit, step, "convergence", f.Converged)
	if err != nil {
		err = fmt.Errorf("%w (%s)", err, f.disagreement())
	}
	return d, err
}

// disagreement says why the fleet has not converged: how many agents see
// a membership other than the live agents, how many (target, region)
// pairs lack exactly one owner, how many agents probe something other than
// their share.
func (f *Fleet) disagreement() string {
	live := f.Live()
	want := make(map[string]bool, len(live))
	for _, a := range live {
		want[a.Name] = true
	}
	views, example := 0, ""
	for _, a := range live {
		alive, extra, suspect, gone := 0, 0, 0, 0
		for _, m := range a.Cluster.Members() {
			switch {
			case m.State == cluster.Suspect:
				suspect++
			case m.State != cluster.Alive:
				gone++
			case want[m.Name]:
				alive++
			default:
				extra++
			}
		}
		if alive != len(want) || extra > 0 {
			views++
			if example == "" {
				example = fmt.Sprintf("%s sees %d of %d alive, %d suspect, %d dead or left, %d unknown", a.Name, alive, len(want), suspect, gone, extra)
			}
		}
	}
	off := f.offShare(live)
	return fmt.Sprintf("%d of %d agents disagree on membership (%s); %d (target, region) pairs without exactly one owner; %d agents probe other than their share",
		views, len(live), example, f.OwnershipProblems(), off)
}

// offShare counts the agents of live that probe other than their share
// of the targets among live.
func (f *Fleet) offShare(live []*Agent) int {
	ts := make([]shard.Target, len(f.names))
	for i, n := range f.names {
		ts[i] = shard.Target{Name: n}
	}
	share := shard.Assign(ts, f.members(), 1)
	off := 0
	for _, a := range live {
		if !slices.Equal(a.Assigned(), share.OwnedBy(a.Name)) {
			off++
		}
	}
	return off
}

// errTimeout is returned when a condition did not hold in time.
var errTimeout = errors.New("timed out")

// poll checks cond every step until it holds, and returns how long that took.
func poll(ctx context.Context, limit, step time.Duration, what string, cond func() bool) (time.Duration, error) {
	start := time.Now()
	t := time.NewTicker(step)
	defer t.Stop()
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	for {
		if cond() {
			return time.Since(start), nil
		}
		select {
		case <-ctx.Done():
			return time.Since(start), fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-deadline.C:
			return time.Since(start), fmt.Errorf("waiting for %s after %v: %w", what, limit, errTimeout)
		case <-t.C:
		}
	}
}

// SetDown makes target's probes fail (or succeed again) from every agent.
func (f *Fleet) SetDown(target string, down bool) { f.world.set(target, down) }

// ReportAll plays one probe round: every live agent reports each target it
// is assigned.
func (f *Fleet) ReportAll() {
	for _, a := range f.Live() {
		for _, t := range a.Assigned() {
			a.Cluster.Report(a.local.obs(t))
		}
	}
}

// probeSlots is how many slices each target interval is cut into: every
// agent reports 1/probeSlots of its targets per slot, so probes are spread
// over the interval as the agent's scheduler spreads them.
const probeSlots = 20

// StartProbing makes every live agent, and every agent added later,
// report each target it is assigned once per target interval, staggered,
// as the agent's scheduler would: unchanged results cost no gossip, but
// they keep the agent's own observations fresh. Each agent probes on its
// own goroutine, as each agent has its own scheduler: one loop for the
// whole fleet fell behind at 100 agents x 20k targets (an agent busy under
// its lock held up every other agent's probes, and own observations
// minutes old looked like lost votes). It runs until Close.
func (f *Fleet) StartProbing() {
	f.mu.Lock()
	f.probingOn = true
	agents := slices.Clone(f.agents)
	f.mu.Unlock()
	for _, a := range agents {
		if a.Live() {
			f.probe(a)
		}
	}
}

// probe starts a's scheduler; it stops at Close or when a dies.
func (f *Fleet) probe(a *Agent) {
	f.probing.Add(1)
	go func() {
		defer f.probing.Done()
		t := time.NewTicker(f.opts.TargetInterval / probeSlots)
		defer t.Stop()
		for slot := 0; ; slot = (slot + 1) % probeSlots {
			select {
			case <-f.stop:
				return
			case <-t.C:
			}
			switch a.state.Load() {
			case agentDead:
				return
			case agentFrozen:
				continue // a hung process probes nothing
			}
			for _, name := range a.Assigned() {
				if f.index[name]%probeSlots == slot {
					a.Cluster.Report(a.local.obs(name))
				}
			}
		}
	}()
}

// ReportTarget has target's live owners report it now, as their schedules
// coming round would; it returns how many did.
func (f *Fleet) ReportTarget(target string) int {
	n := 0
	for _, a := range f.Live() {
		if _, ok := slices.BinarySearch(a.Assigned(), target); ok {
			a.Cluster.Report(a.local.obs(target))
			n++
		}
	}
	return n
}

// world is the probe outcomes every agent sees.
type world struct {
	mu   sync.RWMutex
	down map[string]bool
}

func (w *world) set(target string, down bool) {
	w.mu.Lock()
	w.down[target] = down
	w.mu.Unlock()
}

func (w *world) isDown(target string) bool {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.down[target]
}

// local is the scripted agent: it remembers what the cluster assigns it
// and answers confirmations from the world's outcomes. It is a seam, not a
// mock of the cluster: only the probes are scripted.
type local struct {
	world             *world
	interval, timeout time.Duration
	c                 atomic.Pointer[cluster.Cluster] // set once New returns

	mu           sync.Mutex
	assigned     []string // sorted; replaced, never modified
	calls        int
	gained, lost int
}

var _ cluster.Local = (*local)(nil)

func (l *local) Assigned(targets []string) {
	next := slices.Clone(targets)
	l.mu.Lock()
	defer l.mu.Unlock()
	g, d := diffSorted(l.assigned, next)
	l.gained += g
	l.lost += d
	l.calls++
	l.assigned = next
}

func (l *local) current() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.assigned
}

func (l *local) recomputes() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.calls
}

func (l *local) churn() (int, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.gained, l.lost
}

func (l *local) obs(target string) cluster.Observation {
	down := l.world.isDown(target)
	o := cluster.Observation{Target: target, OK: !down, Failing: down, Interval: l.interval,
		Timeout: l.timeout, Latency: 3 * time.Millisecond}
	if down {
		o.Reason = "timeout"
	}
	return o
}

func (l *local) Confirm(_ context.Context, target string) (cluster.Observation, bool) {
	c := l.c.Load()
	if c == nil {
		return cluster.Observation{}, false
	}
	o := l.obs(target)
	c.Report(o)
	return o, true
}

// diffSorted counts the names in b but not a (gained) and in a but not b (lost).
func diffSorted(a, b []string) (gained, lost int) {
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch {
		case a[i] == b[j]:
			i++
			j++
		case a[i] < b[j]:
			lost++
			i++
		default:
			gained++
			j++
		}
	}
	return gained + len(b) - j, lost + len(a) - i
}

// pushPullEvery is the fleet's push/pull (anti-entropy) interval: the
// cluster's default unless the timing sets one.
func (f *Fleet) pushPullEvery() time.Duration {
	var c cluster.Config
	if f.opts.Timing.Tune != nil {
		f.opts.Timing.Tune(&c)
	}
	if c.PushPull == 0 {
		return cluster.DefaultPushPull
	}
	return c.PushPull
}
