package agent

import (
	"slices"
	"sort"
	"time"
)

// startBurst is how many targets the first assignment after start probes
// at once; beyond it, they wait for their phases.
const startBurst = 100

// Assigned implements cluster.Local: the targets this agent must probe.
// Targets taken over from another agent (or added by a reload) start at
// once (make-before-break); dropped ones keep being probed for a grace
// period while their new owner takes over. The first assignment after
// start probes at once only if it is small (an operator trying a handful
// of targets sees results at once); a large one waits for each target's
// phase: probing all at once is the stampede that phases exist to prevent
// (at 10k HTTPS targets it took 1,000 concurrent handshakes and left RSS
// hundreds of MB high), and a restarted agent is at most an interval behind.
func (a *Agent) Assigned(names []string) {
	now := time.Now()
	a.mu.Lock()
	first := !a.everAssigned
	a.everAssigned = true
	var fresh []string
	for _, n := range names {
		st := a.states[n]
		if st != nil && !st.assigned && a.graceTill[n].IsZero() {
			fresh = append(fresh, n)
		}
		delete(a.graceTill, n)
		if st != nil { // else not (or no longer) configured here: nothing to probe
			st.want = true
		}
	}
	a.nAssigned = 0
	for n, st := range a.states {
		if st.assigned && !st.want {
			a.graceTill[n] = now.Add(graceFor(st))
		}
		st.assigned, st.want = st.want, false
		if st.assigned {
			a.nAssigned++
		}
	}
	a.mu.Unlock()
	a.reschedule()
	if first && len(fresh) > startBurst {
		return
	}
	for _, n := range fresh {
		a.sched.RunNow(a.probeCtx, n)
	}
}

func graceFor(st *targetState) time.Duration {
	if st == nil {
		return 30 * time.Second
	}
	return 2*st.target().Interval + st.target().Timeout
}

// reschedule gives the scheduler the set to probe: assigned targets plus
// those within their grace, each at its region's phase slot. It arms a
// timer for the earliest grace still running, so a dropped target stops
// being probed when its grace ends, not at the next reassignment (which
// may never come: a fleet that settles leaves both former and new owners
// probing it forever, doubling the traffic and the SLI's probe count).
func (a *Agent) reschedule() {
	now := time.Now()
	cfg := a.cfg.Load()
	regions := a.knownRegions()
	a.mu.Lock()
	jobs := make([]Job, 0, a.nAssigned+len(a.graceTill))
	var next time.Time
	for n, till := range a.graceTill {
		if !now.Before(till) {
			delete(a.graceTill, n)
		} else if next.IsZero() || till.Before(next) {
			next = till
		}
	}
	for _, t := range cfg.Targets {
		if !a.probingLocked(t.Name) {
			continue
		}
		rs := t.Regions
		if len(rs) == 0 {
			rs = regions
		}
		slot, slots := regionSlot(rs, cfg.Agent.Region)
		jobs = append(jobs, Job{Name: t.Name, Interval: t.Interval, Key: t.Fingerprint,
			Offset: PhaseOffset(t.Name, t.Interval, slot, slots)})
	}
	if a.graceTimer != nil {
		a.graceTimer.Stop()
		a.graceTimer = nil
	}
	if !next.IsZero() && !a.stopped {
		a.graceTimer = time.AfterFunc(next.Sub(now), a.reschedule)
	}
	a.mu.Unlock()
	a.sched.Update(jobs)
}

func regionSlot(regions []string, mine string) (int, int) {
	rs := append([]string(nil), regions...)
	sort.Strings(rs)
	for i, r := range rs {
		if r == mine {
			return i, len(rs)
		}
	}
	return 0, 1
}

func (a *Agent) knownRegions() []string {
	if a.Cluster() == nil {
		return []string{a.cfg.Load().Agent.Region}
	}
	rs := a.Cluster().KnownRegions()
	if own := a.cfg.Load().Agent.Region; !slices.Contains(rs, own) {
		rs = append(rs, own) // before this agent's own member record is in
		slices.Sort(rs)
	}
	return rs
}
