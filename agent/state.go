package agent

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/vantage-probe/vantage/agent/config"
	"github.com/vantage-probe/vantage/cluster"
	"github.com/vantage-probe/vantage/exporter"
	"github.com/vantage-probe/vantage/probe"
)

// reuseFor is how old a result may be and still answer a confirmation
// request without probing again.
const reuseFor = 3 * time.Second

// targetState is one configured target on this agent. It survives reloads
// as long as the target's fingerprint is unchanged.
type targetState struct {
	// tp is the target's config. A reload that leaves the target unchanged
	// (same fingerprint) swaps in the new config's copy (its position may
	// differ) while probes read it: hence atomic. Read it with target().
	tp      atomic.Pointer[config.Target]
	prober  probe.Prober
	labels  string                       // observation labels (with region)
	latHist *metrics.PrometheusHistogram // nil unless latency_histogram

	mu          sync.Mutex
	last        *probe.Result
	success     uint64
	failure     uint64
	consecutive int32  // consecutive failures
	okStreak    int32  // consecutive successes while failing
	vlen        uint32 // labels[:vlen] are the verdict labels (no region)
	failing     bool
	// failSince is when the first failed probe of the streak ran, as time
	// since the agent started (monotonic); 0: no streak.
	failSince time.Duration
	hist      history
	// waiters is closed on the next result; made only when a confirmation
	// waits for a probe in flight (a channel per result was 1 MB of
	// garbage a minute at 10k targets).
	waiters chan struct{}
}

// since is t as time since the agent started, on the monotonic clock, and
// never 0 (which the states use for "not set"): a time.Time is 24 bytes
// and a pointer, this 8 bytes.
func (a *Agent) since(t time.Time) time.Duration { return max(t.Sub(a.started), 1) }

// vlabels are the verdict labels: the observation labels without region.
func (st *targetState) vlabels() string { return st.labels[:st.vlen] }

// histKey names the latency histogram of the target with these labels in
// the metrics set.
func histKey(labels string) string { return "vantage_probe_duration_seconds{" + labels + "}" }

// target is the target's current config.
func (st *targetState) target() *config.Target { return st.tp.Load() }

func (a *Agent) newState(t *config.Target, shared *probe.Shared) (*targetState, error) {
	p, err := t.NewProberShared(shared)
	if err != nil {
		return nil, fmt.Errorf("target %q: %w", t.Name, err)
	}
	cfg := a.cfg.Load()
	st := &targetState{prober: p}
	var vlabels string
	st.labels, vlabels = exporter.Labels(t.Name, t.Type, cfg.Agent.Region, t.Labels)
	st.vlen = uint32(len(vlabels))
	st.tp.Store(t)
	if cfg.Exporter.LatencyHistogram {
		st.latHist = a.reg.Set().GetOrCreatePrometheusHistogram(histKey(st.labels))
	}
	return st, nil
}

// applyTargets diffs the configured targets against the running states:
// unchanged targets (same fingerprint) keep their state and phase, changed
// ones get a fresh prober but keep their counters, removed ones vanish
// (their series with them).
func (a *Agent) applyTargets(cfg *config.Config) error {
	next := make(map[string]*targetState, len(cfg.Targets))
	// One Shared per configuration applied: the new probers share CA
	// bundles and transports, and files are read again on every reload.
	shared := probe.NewShared()
	a.mu.Lock()
	old := a.states
	a.mu.Unlock()
	for _, t := range cfg.Targets {
		if st, ok := old[t.Name]; ok && st.target().Fingerprint == t.Fingerprint {
			st.tp.Store(t)
			next[t.Name] = st
			continue
		}
		st, err := a.newState(t, shared)
		if err != nil {
			return err
		}
		if prev, ok := old[t.Name]; ok {
			prev.mu.Lock()
			st.success, st.failure = prev.success, prev.failure
			prev.mu.Unlock()
		}
		next[t.Name] = st
	}
	for name, st := range old {
		if n, ok := next[name]; !ok || n != st {
			if st.latHist != nil && (!ok || n.latHist == nil || n.labels != st.labels) {
				a.reg.Set().UnregisterMetric(histKey(st.labels))
			}
		}
	}
	a.mu.Lock()
	a.states = next
	for n := range a.assigned {
		if _, ok := next[n]; !ok {
			delete(a.assigned, n)
		}
	}
	for n := range a.graceTill {
		if _, ok := next[n]; !ok {
			delete(a.graceTill, n)
		}
	}
	a.mu.Unlock()
	return nil
}

func (a *Agent) state(name string) *targetState {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.states[name]
}

// runScheduled is the scheduler's RunFunc.
func (a *Agent) runScheduled(ctx context.Context, name string, late time.Duration, onDemand bool) {
	if late > 0 {
		a.lateness.Update(late.Seconds())
		if f := a.opts.OnLateness; f != nil {
			f(late)
		}
	}
	st := a.state(name)
	if st == nil {
		return
	}
	a.probeOnce(ctx, st, !onDemand)
}

// probeOnce runs the prober under the target's timeout and folds the result
// into the state. A scheduled probe that runs far longer than the target
// usually answers asks the other regions to confirm before it times out
// (hedge): when the target hangs, their probes then time out at about the
// same moment as this one, and the quorum is reached one timeout after the
// hang began rather than two (a confirmation asked only on the failure
// would start its own timeout then).
func (a *Agent) probeOnce(ctx context.Context, st *targetState, hedge bool) probe.Result {
	a.inFlight.Add(1)
	defer a.inFlight.Add(-1)
	t := st.target()
	var slow *time.Timer
	if after := st.slowAfter(t.Timeout); hedge && after > 0 && a.clu() != nil {
		clu, name := a.clu(), t.Name
		slow = time.AfterFunc(after, func() { clu.ConfirmSlow(name) })
	}
	pctx, cancel := context.WithTimeout(ctx, t.Timeout)
	r := st.prober.Probe(pctx)
	cancel()
	if slow != nil {
		slow.Stop()
	}
	if r.At.IsZero() {
		r.At = time.Now()
	}
	a.record(st, &r)
	return r
}

// slowAfter is how long a probe may run before the agent asks the other
// regions to confirm: four times the target's last good latency, at least
// a second (so ordinary jitter never asks) and at most half the timeout; 0
// when the region already calls the target failing (a confirmation was
// asked then) or the timeout leaves no room.
func (st *targetState) slowAfter(timeout time.Duration) time.Duration {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.failing || timeout < 2*time.Second {
		return 0
	}
	d := time.Second
	if st.last != nil && st.last.OK {
		d = max(d, 4*st.last.Duration)
	}
	return min(d, timeout/2)
}

// record updates counters, the consecutive-failure threshold and recovery
// hysteresis, logs state changes (never every probe) and reports to the
// cluster.
func (a *Agent) record(st *targetState, r *probe.Result) {
	cfg := a.cfg.Load()
	recovery := max(cfg.Quorum.RecoverySuccesses, 1)
	now := a.since(time.Now())
	st.mu.Lock()
	st.last = r
	wasFailing := st.failing
	if r.OK {
		st.success++
		st.consecutive = 0
		if st.failing {
			st.okStreak++
			if int(st.okStreak) >= recovery {
				st.failing = false
				st.okStreak = 0
			}
		}
		if !st.failing {
			st.failSince = 0
		}
	} else {
		st.failure++
		st.okStreak = 0
		if st.consecutive == 0 && st.failSince == 0 {
			st.failSince = now
		}
		st.consecutive++
		if int(st.consecutive) >= st.target().Failures {
			st.failing = true
		}
	}
	st.hist.add(r)
	obs := cluster.Observation{
		Target:   st.target().Name,
		OK:       r.OK,
		Failing:  st.failing,
		Reason:   string(r.Reason),
		Latency:  r.Duration,
		Interval: st.target().Interval,
		Timeout:  st.target().Timeout,
	}
	if st.failSince != 0 {
		obs.FailingFor = now - st.failSince
	}
	failing := st.failing
	if st.waiters != nil {
		close(st.waiters)
		st.waiters = nil
	}
	if st.latHist != nil {
		st.latHist.Update(r.Duration.Seconds())
	}
	st.mu.Unlock()

	if failing != wasFailing {
		if failing {
			a.log.Warn("target failing", "target", st.target().Name, "reason", r.Reason, "detail", r.Message)
		} else {
			a.log.Info("target recovered", "target", st.target().Name)
		}
	}
	if a.clu() != nil {
		a.clu().Report(obs)
	}
}

// Confirm implements cluster.Local: probe now for another region, reusing
// a result a few seconds old or joining a probe already in flight.
func (a *Agent) Confirm(ctx context.Context, name string) (cluster.Observation, bool) {
	st := a.state(name)
	if st == nil {
		return cluster.Observation{}, false
	}
	st.mu.Lock()
	if last := st.last; last != nil && time.Since(last.At.Add(last.Duration)) < reuseFor {
		st.mu.Unlock()
		return a.observation(st), true
	}
	// Taken before asking for a probe, so that its result cannot slip by.
	if st.waiters == nil {
		st.waiters = make(chan struct{})
	}
	wait := st.waiters
	st.mu.Unlock()
	if !a.sched.RunNow(a.probeCtx, name) && !a.sched.Has(name) {
		// Not ours to schedule (we are the next-ranked agent for a suspect
		// assignee): probe once directly.
		a.probeOnce(ctx, st, false)
		return a.observation(st), true
	}
	select {
	case <-wait:
		return a.observation(st), true
	case <-ctx.Done():
		return cluster.Observation{}, false
	}
}

func (a *Agent) observation(st *targetState) cluster.Observation {
	st.mu.Lock()
	defer st.mu.Unlock()
	o := cluster.Observation{Target: st.target().Name, Failing: st.failing, Interval: st.target().Interval, Timeout: st.target().Timeout}
	if st.last != nil {
		o.OK = st.last.OK
		o.Reason = string(st.last.Reason)
		o.Latency = st.last.Duration
	}
	return o
}

func (a *Agent) registerMetrics() {
	s := a.reg.Set()
	a.lateness = s.NewSummaryExt("vantage_schedule_lateness_seconds", 5*time.Minute, []float64{0.5, 0.9, 0.99})
	a.skipped = map[string]*metrics.Counter{
		"overlap":       s.NewCounter(`vantage_probes_skipped_total{reason="overlap"}`),
		"max_in_flight": s.NewCounter(`vantage_probes_skipped_total{reason="max_in_flight"}`),
	}
	s.NewGauge("vantage_probes_in_flight", func() float64 { return float64(a.inFlight.Load()) })
	s.NewGauge("vantage_targets_assigned", func() float64 {
		if a.sched == nil {
			return 0
		}
		return float64(a.sched.Len())
	})
	s.NewGauge("vantage_targets_configured", func() float64 { return float64(len(a.cfg.Load().Targets)) })
	s.NewGauge("vantage_config_last_reload_successful", func() float64 {
		if a.reloadOKG.Load() {
			return 1
		}
		return 0
	})
	s.NewGauge("vantage_config_last_reload_success_timestamp_seconds", func() float64 { return float64(a.reloadTS.Load()) })
	s.NewGauge(`vantage_build_info{version="`+labelValue(a.opts.Version)+`",goversion="`+goVersion()+`"}`, func() float64 { return 1 })
	s.NewGauge("vantage_alerting_healthy", func() float64 {
		if a.alertingHealthy() {
			return 1
		}
		return 0
	})
	s.NewGauge("vantage_cluster_config_mismatch", func() float64 {
		if a.clu() == nil {
			return 0
		}
		n := 0
		for _, m := range a.clu().Members() {
			if !m.SameConf && m.State.Live() {
				n++
			}
		}
		return float64(n)
	})
}

// writeSeries writes the per-target families at scrape time.
func (a *Agent) writeSeries(b *exporter.Buf) {
	a.mu.Lock()
	states := make([]*targetState, 0, len(a.assigned)+len(a.graceTill))
	for _, t := range a.cfg.Load().Targets {
		if !a.assigned[t.Name] && a.graceTill[t.Name].IsZero() {
			continue // not probed here
		}
		if st := a.states[t.Name]; st != nil {
			states = append(states, st)
		}
	}
	a.mu.Unlock()
	obs := make([]exporter.Obs, 0, len(states))
	for _, st := range states {
		st.mu.Lock()
		obs = append(obs, exporter.Obs{Labels: st.labels, Type: st.target().Type, Result: st.last, Success: st.success,
			Failure: st.failure, Failing: st.failing, Consecutive: int(st.consecutive)})
		st.mu.Unlock()
	}
	exporter.WriteObservations(b, obs)
	// Written here rather than registered once: it carries the agent's
	// region, so that an alert (and a dashboard) can say which region.
	isolated := 0
	if a.clu() != nil && a.clu().Isolated() {
		isolated = 1
	}
	fmt.Fprintf(b, "# HELP vantage_region_isolated %s\n# TYPE vantage_region_isolated gauge\nvantage_region_isolated{region=%q} %d\n",
		exporter.Help["vantage_region_isolated"], a.cfg.Load().Agent.Region, isolated)
	a.writeClusterSeries(b)
}

func (a *Agent) writeClusterSeries(b *exporter.Buf) {
	if a.clu() == nil {
		return
	}
	// Members by region and state.
	counts := map[[2]string]int{}
	for _, m := range a.clu().Members() {
		counts[[2]string{m.Region, m.State.String()}]++
	}
	regions := map[string]bool{}
	for k := range counts {
		regions[k[0]] = true
	}
	b.WriteString("# HELP vantage_cluster_members " + exporter.Help["vantage_cluster_members"] + "\n# TYPE vantage_cluster_members gauge\n")
	for _, r := range sortedKeys(regions) {
		for _, s := range []string{"alive", "suspect", "dead", "left"} {
			fmt.Fprintf(b, "vantage_cluster_members{region=%q,state=%q} %d\n", r, s, counts[[2]string{r, s}])
		}
	}
	// Verdicts of the targets this agent leads. One look at the states map
	// (replaced whole on reload, never written in place), not a lock per
	// target: probes finishing take a.mu too.
	a.mu.Lock()
	states := a.states
	a.mu.Unlock()
	led := a.clu().LeaderVerdicts()
	labels := make([]string, 0, len(led))
	for _, v := range led {
		if ts := states[v.Name]; ts != nil {
			labels = append(labels, ts.vlabels())
			led[len(labels)-1] = v
		}
	}
	cfg := a.cfg.Load()
	exporter.WriteVerdicts(b, len(labels), func(i int, x *exporter.Verdict) {
		v := &led[i]
		*x = exporter.Verdict{Labels: labels[i], Up: !v.Down, Unknown: v.Unknown,
			Failing: v.Failing, Reporting: v.Reporting, Quorum: v.Needed, DownSince: v.DownSince,
			Incidents: v.Incidents, Flaps: v.Flaps, Maintenance: v.Maintenance, Availability: v.SLO.Availability}
		if t := cfg.Target(v.Name); t != nil {
			x.Objective, x.CertDays = t.SLOObjective, t.CertWarnDays()
			if x.Objective == 0 {
				x.Objective = cfg.SLO.Objective
			}
		}
	})
}
