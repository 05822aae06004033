package agent

import (
	"context"
	"time"

	"github.com/vantage-probe/vantage/cluster"
	"github.com/vantage-probe/vantage/probe"
)

// reuseFor is how old a result may be and still answer a confirmation
// request without probing again.
const reuseFor = 3 * time.Second

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
	if after := st.slowAfter(t.Timeout); hedge && after > 0 && a.Cluster() != nil {
		clu, name := a.Cluster(), t.Name
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
	now := a.clock.Now()
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
	st.addHistory(r)
	st.dirty.Store(true)
	obs := cluster.Observation{
		Target:   st.target().Name,
		OK:       r.OK,
		Failing:  st.failing,
		Reason:   string(r.Reason),
		Latency:  r.Latency(),
		Interval: st.target().Interval,
		Timeout:  st.target().Timeout,
	}
	if r.TLS != nil {
		obs.CertExpiry = r.TLS.EarliestExpiry
	}
	if st.failSince != 0 {
		obs.FailingFor = time.Duration(now - st.failSince)
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
	if a.Cluster() != nil {
		a.Cluster().Report(obs)
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
		o.Latency = st.last.Latency()
		if st.last.TLS != nil {
			o.CertExpiry = st.last.TLS.EarliestExpiry
		}
	}
	return o
}

// heard adds a result that another agent of this agent's region reported
// to the history of a target this agent does not probe itself, so that
// every agent's page draws the region's recent latency of every target,
// not only of those it probes. The points come as the fleet shares them:
// on each change of state, and as push/pull refreshes an unchanged
// result's latency.
func (a *Agent) heard(o cluster.Observation) {
	if o.Region != a.cfg.Load().Agent.Region || a.probing(o.Target) {
		return
	}
	st := a.state(o.Target)
	if st == nil {
		return
	}
	r := probe.Result{OK: o.OK, At: o.Measured(), Duration: o.Latency}
	st.mu.Lock()
	st.addHistory(&r)
	st.mu.Unlock()
	st.dirty.Store(true)
}
