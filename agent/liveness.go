package agent

import (
	"fmt"
	"time"
)

// defaultStallAfter is how long a loop may go without a pass before
// /healthz fails. The scheduler passes at least every second and the
// cluster loop every EvalEvery (1s): 30s is far beyond a GC pause or a
// starved CPU, and well inside what an orchestrator waits before it
// restarts (Kubernetes: 3 failures x 10s by default).
const defaultStallAfter = 30 * time.Second

// loopTick is one loop's last pass.
type loopTick struct {
	name string
	at   time.Time
}

// loops returns the last pass of each loop that must keep turning for the
// agent to do its job: the probe scheduler and the cluster's tick loop
// (heartbeats, verdicts). Before a loop's first pass its age counts from
// the agent's start.
func (a *Agent) loops() [2]loopTick {
	sched, clu := a.sched.LastTick(), time.Time{}
	if c := a.Cluster(); c != nil {
		clu = c.LastTick()
	}
	if sched.IsZero() {
		sched = a.started
	}
	if clu.IsZero() {
		clu = a.started
	}
	return [2]loopTick{{"scheduler", sched}, {"cluster", clu}}
}

// Live implements exporter.Source: nil while every loop keeps turning. It
// takes no lock, so a loop wedged holding one cannot wedge the answer.
func (a *Agent) Live() error {
	now := time.Now()
	for _, l := range a.loops() {
		if age := now.Sub(l.at); age > a.opts.StallAfter {
			return fmt.Errorf("the %s loop has not run for %v (limit %v)", l.name, age.Round(time.Millisecond), a.opts.StallAfter)
		}
	}
	return nil
}
