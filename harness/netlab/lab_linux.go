//go:build linux

package netlab

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vantage-probe/vantage/internal/mono"
)

// lab is one run.
type lab struct {
	opts    Options
	dir     string
	keyFile string
	targets []string // the configured targets at start, in order
	topo    *topology
	farm    *farm
	fleet   *fleet
	mon     *monitor
	start   time.Time
	vlog    *os.File
	load    string // the host's load average at the start

	mu         sync.Mutex
	current    string
	violations []Violation
	disturbed  []Disturbance
	outages    []Outage
	runs       []Play
	notes      []string
	configs    []configVersion
	rotation   int // which region or agent the next fault hits
}

// configVersion is the fleet's target set from At on.
type configVersion struct {
	At      time.Time
	Targets map[string]bool
}

// Run plays the lab and returns its report. It returns ErrUnavailable
// (wrapped, with the reason) when it cannot run here; the caller skips.
// Whatever happens, it removes every namespace it made before returning.
func Run(ctx context.Context, opts Options) (rep *Report, err error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	if why := Unavailable(); why != "" {
		return nil, fmt.Errorf("%w: %s", ErrUnavailable, why)
	}
	if opts.Progress == nil {
		opts.Progress = io.Discard
	}
	if opts.Watch == 0 {
		opts.Watch = opts.grace() + 4*opts.Interval
	}
	unlock, err := lockRun()
	if err != nil {
		return nil, err
	}
	defer unlock()
	l := &lab{opts: opts, start: time.Now(), load: loadAverage()}
	if removed, err := RemoveLeftovers(); err != nil {
		return nil, fmt.Errorf("removing an earlier run's namespaces: %w", err)
	} else if len(removed) > 0 {
		l.say("removed an earlier run's leftovers: %s", strings.Join(removed, " "))
		l.note("removed an earlier run's leftovers: %s", strings.Join(removed, " "))
	}
	if err := l.prepareDir(); err != nil {
		return nil, err
	}
	l.topo, err = buildTopology(len(opts.Regions), opts.AgentsPerRegion)
	if err != nil {
		return nil, err
	}
	defer l.topo.close()
	l.say("network: namespaces %s (bridge br0 in %s), farm %s:%d in %s; agents 10.77.R.N; output in %s",
		strings.Join(l.topo.regions, " "), l.topo.hub, FarmAddr, FarmPort, l.topo.farm, l.dir)

	ln, err := l.topo.handles[l.topo.farm].listen("tcp", net.JoinHostPort(FarmAddr, strconv.Itoa(FarmPort)))
	if err != nil {
		return nil, fmt.Errorf("farm: %w", err)
	}
	l.farm = newFarm(ln)
	defer l.farm.close()

	l.fleet = &fleet{bin: opts.Agent, dir: l.dir, spawner: newSpawner(), events: l.procEvent, onExit: l.unexpectedExit}
	defer l.fleet.spawner.close()
	for i, region := range opts.Regions {
		for n := 1; n <= opts.AgentsPerRegion; n++ {
			node := fmt.Sprintf("%s-%d", region, n)
			h := l.topo.handles[l.topo.region(i)]
			l.fleet.agents = append(l.fleet.agents, &agentProc{Node: node, Region: region, RegionIdx: i, Addr: AgentAddr(i, n),
				cfgPath: filepath.Join(l.dir, node+".toml"), logPath: filepath.Join(l.dir, "logs", node+".log"),
				ns: h, client: newAgentClient(h)})
		}
	}
	if err := l.pushConfig(l.targets, ""); err != nil {
		return nil, err
	}
	l.configs = append(l.configs, configVersion{At: l.start, Targets: setOf(l.targets)})

	l.mon = newMonitor(l.fleet, l.violation, l.assignChanged)
	mctx, stopMon := context.WithCancel(context.Background())
	monDone := make(chan struct{})
	go func() { l.mon.run(mctx); close(monDone) }()
	stopAll := sync.OnceFunc(func() {
		stopMon() // first: agents shutting down are no failures
		<-monDone
		l.fleet.shutdown(10 * time.Second)
	})
	defer stopAll()

	err = l.play(ctx, "start", (*lab).startFleet)
	for _, name := range opts.Scenarios {
		if err != nil {
			break
		}
		err = l.play(ctx, name, plays[name])
	}
	end := time.Now()
	l.say("stopping the agents")
	stopAll()
	rep = l.report(end)
	if ctx.Err() != nil {
		rep.Notes = append(rep.Notes, "interrupted: the report covers the scenarios played so far")
		return rep, nil
	}
	return rep, err
}

func (l *lab) prepareDir() error {
	dir := l.opts.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "vantage-netlab-")
		if err != nil {
			return err
		}
		dir = d
	}
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		return err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	l.dir = abs
	// Each agent keeps its state in the run's directory: a run starts
	// with none (an earlier run's incidents would be restored), and a
	// restarted agent restores its own.
	if err := os.RemoveAll(filepath.Join(l.dir, "state")); err != nil {
		return err
	}
	out, err := exec.Command(l.opts.Agent, "keygen").Output()
	if err != nil {
		return fmt.Errorf("%s keygen: %w", l.opts.Agent, err)
	}
	l.keyFile = filepath.Join(l.dir, "gossip.key")
	if err := os.WriteFile(l.keyFile, out, 0o600); err != nil {
		return err
	}
	if l.vlog, err = os.Create(filepath.Join(l.dir, "violations.log")); err != nil {
		return err
	}
	for i := 1; i <= l.opts.Targets; i++ {
		l.targets = append(l.targets, targetName(i))
	}
	return nil
}

// lockRun makes sure one lab runs at a time on this machine: a second run
// would remove the first one's namespaces as leftovers.
func lockRun() (func(), error) {
	path := filepath.Join(os.TempDir(), "vantage-netlab.lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("another netlab run holds %s (%w): one run at a time, since a run removes the namespaces named %s*", path, err, Prefix)
	}
	return func() { _ = f.Close() }, nil
}

// loadAverage is the host's 1-minute load average.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) > 0 {
		return f[0]
	}
	return "?"
}

// writeJSON keeps evidence in the output directory.
func (l *lab) writeJSON(name string, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err == nil {
		err = os.WriteFile(filepath.Join(l.dir, name), b, 0o644)
	}
	if err != nil {
		l.note("writing %s: %v", name, err)
	}
}

func targetName(i int) string { return fmt.Sprintf("t%02d", i) }

func setOf(xs []string) map[string]bool {
	m := make(map[string]bool, len(xs))
	for _, x := range xs {
		m[x] = true
	}
	return m
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

// violation records a broken promise, in the log file at once.
func (l *lab) violation(v Violation) {
	l.mu.Lock()
	l.violations = append(l.violations, v)
	l.mu.Unlock()
	if l.vlog != nil {
		fmt.Fprintln(l.vlog, v.String())
	}
	l.say("VIOLATION %s", v)
}

func (l *lab) disturb(target, region string, from, to time.Time) {
	l.mu.Lock()
	l.disturbed = append(l.disturbed, Disturbance{Target: target, Region: region, Span: Span{From: from, To: to}})
	l.mu.Unlock()
}

// assignChanged: an agent's view of who probes (target, region) changed.
func (l *lab) assignChanged(at time.Time, target, region string) {
	l.disturb(target, region, at.Add(-time.Second), at) // the change happened since the previous round
}

// procEvent records an agent's process events in its log and, for those
// that change what the fleet looks like, as disturbances.
func (l *lab) procEvent(at time.Time, node, what string) {
	l.say("agent %s: %s", node, what)
}

func (l *lab) unexpectedExit(a *agentProc, err error) {
	l.violation(Violation{Inv: HealthyAgents, At: time.Now(), Agents: []string{a.Node},
		Detail: fmt.Sprintf("the agent process exited by itself (%v); see %s", err, a.logPath)})
}

// configText is one agent's config file: identity comes from flags, the
// rest from here. variant "" is the good file; "syntax" and "interval"
// are the bad ones.
func (l *lab) configText(a *agentProc, targets []string, variant string) string {
	o := l.opts
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by the netlab harness for %s. Node, region, listen, bind and join come from flags.\n", a.Node)
	fmt.Fprintf(&b, "[agent]\nsource_ip = %q   # both agents of a region share its veth\nstate_dir = %q\n\n", a.Addr,
		filepath.Join(l.dir, "state", a.Node))
	fmt.Fprintf(&b, "[cluster]\nsecret_key_file = %q\nlabel = \"vantage-netlab\"\nreplicas_per_region = 1\nrejoin_interval = %q\n\n",
		l.keyFile, o.RejoinInterval.String())
	b.WriteString("[quorum]\nmin_regions = 2\nconfirm_on_failure = true\n\n")
	interval := o.Interval.String()
	if variant == "interval" {
		interval = "100000d"
	}
	fmt.Fprintf(&b, "[defaults]\ninterval = %q\ntimeout = %q\nfailures = 1\n", interval, o.Timeout.String())
	if variant == "syntax" {
		b.WriteString("\n[[target]\nname = \"broken\n")
	}
	for _, t := range targets {
		fmt.Fprintf(&b, "\n[[target]]\nname = %q\ntype = \"http\"\nurl = \"http://%s:%d/t/%s\"\n[target.http]\nvalid_status = [200]\n",
			t, FarmAddr, FarmPort, t)
	}
	return b.String()
}

// pushConfig writes every agent's config file.
func (l *lab) pushConfig(targets []string, variant string) error {
	for _, a := range l.fleet.agents {
		if err := writeFile(a.cfgPath, l.configText(a, targets, variant)); err != nil {
			return err
		}
	}
	return nil
}

// running returns the agents whose process runs (not stopped).
func (l *lab) running() []*agentProc {
	var out []*agentProc
	for _, a := range l.fleet.agents {
		if st, _, _ := a.snapshot(); st == procRunning {
			out = append(out, a)
		}
	}
	return out
}

// converged reports whether every agent runs and sees every agent alive,
// and every configured target has exactly one verdict exporter.
func (l *lab) converged(targets []string) bool {
	r := l.mon.latest()
	if r == nil || len(l.running()) != len(l.fleet.agents) {
		return false
	}
	exporters := map[string]int{}
	for _, a := range l.fleet.agents {
		v := r.views[a.Node]
		if v == nil || v.m == nil || v.m.Alive != len(l.fleet.agents) {
			return false
		}
		for t := range v.m.Up {
			exporters[t]++
		}
	}
	for _, t := range targets {
		if exporters[t] != 1 {
			return false
		}
	}
	return true
}

func (l *lab) currentTargets() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	cur := l.configs[len(l.configs)-1].Targets
	out := make([]string, 0, len(cur))
	for t := range cur {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// play runs one scenario, then waits for the fleet to recover and watches
// it settle long enough for AssigneesOnly to judge a few intervals.
func (l *lab) play(ctx context.Context, name string, fn func(*lab, context.Context, *Play) error) error {
	l.mu.Lock()
	l.current = name
	l.mu.Unlock()
	run := &Play{Scenario: name, From: time.Now()}
	l.say("scenario %s: %s", name, scenarioTitle(name))
	err := fn(l, ctx, run)
	faultEnd := time.Now()
	if name == "start" {
		faultEnd = run.From // how long the fleet took to form
	}
	if err == nil {
		err = l.recover(ctx, run, faultEnd)
	}
	run.To = time.Now()
	l.mu.Lock()
	l.runs = append(l.runs, *run)
	l.mu.Unlock()
	return err
}

// recover waits until the fleet has converged again, then watches it for
// the grace plus three intervals (plus one for window alignment), the
// span in which AssigneesOnly judges that the probing is back to plan.
func (l *lab) recover(ctx context.Context, run *Play, faultEnd time.Time) error {
	limit := 3 * time.Minute
	ok := mono.Poll(ctx, limit, 250*time.Millisecond, func() bool { return l.converged(l.currentTargets()) })
	if ctx.Err() != nil {
		return ctx.Err()
	}
	run.Recovered = time.Since(faultEnd)
	if !ok {
		run.Recovered = -1
	}
	if !ok {
		l.say("the fleet did not converge within %v", limit)
		l.note("%s: the fleet did not converge within %v of the fault's end (every agent running, seeing all %d alive, one verdict exporter per target)",
			run.Scenario, limit, len(l.fleet.agents))
	} else {
		l.say("converged %.1fs after the fault ended; watching the probes settle", run.Recovered.Seconds())
	}
	if mono.Sleep(ctx, l.opts.Watch) != nil {
		return ctx.Err()
	}
	l.probingEvidence(run)
	return nil
}

// probingEvidence notes, at the end of a scenario's recovery, the agents
// that probe targets their own view of the assignment gives to another
// agent: what the farm's counts say, seen from the agent.
func (l *lab) probingEvidence(run *Play) {
	r := l.mon.latest()
	if r == nil {
		return
	}
	for _, a := range l.fleet.agents {
		v := r.views[a.Node]
		if v == nil || v.m == nil || v.assign == nil {
			continue
		}
		var extra []string
		for t := range v.m.Probed {
			owners := strings.Split(v.assign[t][a.Region], "+")
			if !slices.Contains(owners, a.Node) {
				extra = append(extra, fmt.Sprintf("%s (assigned to %s)", t, v.assign[t][a.Region]))
			}
		}
		if len(extra) > 0 {
			sort.Strings(extra)
			l.note("%s: at %s, %v after the fleet converged again, %s exports probe_success for %d targets (vantage_targets_assigned %d), "+
				"%d of them assigned to another agent in its own view: %s",
				run.Scenario, r.at.Format("15:04:05"), l.opts.Watch, a.Node, len(v.m.Probed), v.m.Assigned,
				len(extra), strings.Join(extra, ", "))
		}
	}
}

// startFleet starts every agent at once and waits for the fleet to form.
func (l *lab) startFleet(ctx context.Context, _ *Play) error {
	t0 := time.Now()
	for _, a := range l.fleet.agents {
		if err := l.fleet.start(a); err != nil {
			return err
		}
	}
	ok := mono.Poll(ctx, time.Minute, 250*time.Millisecond, func() bool { return len(l.running()) == len(l.fleet.agents) })
	l.disturb("", "", t0, time.Now())
	if !ok {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("not every agent answered /healthz within a minute; see the logs in %s", filepath.Join(l.dir, "logs"))
	}
	return nil
}

// outage puts target down at the farm after a delay, for OutageFor, in
// the background; wait returns when it is over.
func (l *lab) outage(ctx context.Context, target string, after time.Duration) (wait func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		if mono.Sleep(ctx, after) != nil {
			return
		}
		on := l.farm.setDown(target, true)
		l.say("outage: %s answers 500 to everyone", target)
		_ = mono.Sleep(ctx, l.opts.OutageFor)
		off := l.farm.setDown(target, false)
		l.say("outage: %s repaired", target)
		l.disturb(target, "", on, off.Add(l.opts.Interval)) // confirmations, and the incident's resolve hold
		if ctx.Err() != nil {
			return
		}
		l.mu.Lock()
		l.outages = append(l.outages, Outage{Target: target, On: on, Off: off, Scenario: l.current})
		l.mu.Unlock()
	}()
	return func() { <-done }
}

// leaderOf returns the agents exporting each target's verdict in the last
// round.
func (l *lab) leaders() map[string][]string {
	out := map[string][]string{}
	r := l.mon.latest()
	if r == nil {
		return out
	}
	for node, v := range r.views {
		if v.m == nil {
			continue
		}
		for t := range v.m.Up {
			out[t] = append(out[t], node)
		}
	}
	return out
}

// pickTarget picks a target whose verdict one of the agents in nodes
// exports (the harshest place for an outage: its leader is the one the
// fault hits), else any configured target; never one in except.
func (l *lab) pickTarget(nodes []string, except ...string) string {
	leaders := l.leaders()
	cur := l.currentTargets()
	for _, t := range cur {
		if slices.Contains(except, t) {
			continue
		}
		for _, n := range leaders[t] {
			if slices.Contains(nodes, n) {
				return t
			}
		}
	}
	l.note("%s: no target led by %s; the outage hit one led elsewhere", l.current, strings.Join(nodes, ","))
	for _, t := range cur {
		if !slices.Contains(except, t) {
			return t
		}
	}
	return cur[0]
}

// nextRegion rotates the region the next fault hits.
func (l *lab) nextRegion() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.rotation % len(l.opts.Regions)
	l.rotation++
	return r
}

// victim picks the agent of region i that leads the most targets.
func (l *lab) victim(i int) *agentProc {
	counts := map[string]int{}
	for _, nodes := range l.leaders() {
		for _, n := range nodes {
			counts[n]++
		}
	}
	var best *agentProc
	for _, a := range l.fleet.agents {
		if a.RegionIdx == i && (best == nil || counts[a.Node] > counts[best.Node]) {
			best = a
		}
	}
	return best
}

func (l *lab) regionNodes(i int) []string {
	var out []string
	for _, a := range l.fleet.agents {
		if a.RegionIdx == i {
			out = append(out, a.Node)
		}
	}
	return out
}

// report evaluates what was recorded.
func (l *lab) report(end time.Time) *Report {
	o := l.opts
	rep := &Report{Regions: o.Regions, AgentsPerRegion: o.AgentsPerRegion, Targets: o.Targets, Interval: o.Interval,
		Timeout: o.Timeout, RejoinInterval: o.RejoinInterval, Grace: o.grace(), Took: time.Since(l.start), Dir: l.dir}
	l.mon.mu.Lock()
	rep.Rounds, rep.Gaps, rep.FailedScrapes = l.mon.rounds, l.mon.gaps, l.mon.failed
	rep.Skewed, rep.Slow, rep.Stalls = l.mon.skewed, l.mon.slow, len(l.mon.stalls)
	rep.Load = [2]string{l.load, loadAverage()}
	l.mon.mu.Unlock()

	l.mu.Lock()
	outages := slices.Clone(l.outages)
	disturbed := slices.Clone(l.disturbed)
	configs := slices.Clone(l.configs)
	runs := slices.Clone(l.runs)
	l.mu.Unlock()

	// Agents are down while killed or stopped, and until healthy after a
	// start: windows around those times are not judged.
	all := map[string]bool{}
	for _, c := range configs {
		for t := range c.Targets {
			all[t] = true
		}
	}
	byIP := map[string]*agentProc{}
	for _, a := range l.fleet.agents {
		byIP[a.Addr] = a
	}
	hits := l.farm.allHits(func(ip string) (string, string) {
		if a := byIP[ip]; a != nil {
			return a.Node, a.Region
		}
		return "", ""
	})
	from := l.start
	if len(runs) > 0 {
		from = runs[0].From
	}
	pc := CheckProbes(ProbePlan{Interval: o.Interval, Grace: o.grace(), Regions: o.Regions, Replicas: 1, From: from, To: end,
		Targets: sortedSet(all), Disturbed: disturbed,
		Configured: func(target string, t time.Time) bool {
			in := false
			for _, c := range configs {
				if !c.At.After(t) {
					in = c.Targets[target]
				}
			}
			return in
		}}, hits)
	rep.Judged, rep.Probes = pc.Judged, pc.Probes
	for _, v := range pc.Violations {
		l.violation(v)
	}
	incidents := l.mon.allIncidents()
	for _, v := range CheckIncidents(outages, incidents, o.Timeout+3*time.Second) {
		l.violation(v)
	}
	byID := map[string]Incident{}
	for _, in := range incidents {
		byID[in.ID] = in
	}
	for _, o := range outages {
		// The incident's own start (first failed observation anywhere) is
		// what vantage_detection_seconds measures from; it cannot precede
		// the outage by more than the probe that saw it.
		if in, ok := byID[o.Incident]; ok && in.StartedAt.Before(o.On.Add(-l.opts.Timeout)) {
			l.note("%s: the incident for the outage of %s at %s says it started at %s, %.0fs before the outage began: "+
				"the detection time it reports (detected_at - started_at) is %.1fs, the true one %.1fs",
				o.Scenario, o.Target, o.On.Format("15:04:05"), in.StartedAt.Format("15:04:05"), o.On.Sub(in.StartedAt).Seconds(),
				in.DetectedAt.Sub(in.StartedAt).Seconds(), o.Detected.Seconds())
		}
	}
	l.writeJSON("incidents.json", incidents)
	l.writeJSON("outages.json", outages)

	l.mu.Lock()
	rep.Violations = slices.Clone(l.violations)
	rep.Notes = slices.Clone(l.notes)
	l.mu.Unlock()
	rep.Outages, rep.Plays = outages, runs
	rep.build()
	return rep
}
