package memlimit

import (
	"context"
	"runtime/metrics"
	"time"
)

// A limit derived from the targets is a guess at the room the collector
// needs: tight enough to hold 10,000 HTTPS targets in 64 MB, it is close
// to the cliff where the collector, to stay under it, takes the half of
// the CPU the runtime allows it (measured: 0.4 cores become 1.5 on a busy
// machine). So the derived limit gives way: while it binds (the heap goal
// is below what GOGC would allow) and the collector has used more than
// HighGCShare of the CPU for Sustain windows in a row, it is raised by a
// Step, up to MaxSteps; after CalmWindows of a quiet collector it comes
// back down a step. Limits an operator chose (GOMEMLIMIT, a container
// limit, memory_limit) are never moved: they are promises to something
// else (the kernel's OOM killer, a capacity plan).
const (
	// WatchEvery is how often the collector's load is read.
	WatchEvery = 10 * time.Second
	// HighGCShare is the collector's share of the CPU available to the
	// process (GOMAXPROCS) above which a binding derived limit is raised:
	// half the runtime's own cap (50%). At GOGC 100 the collector takes
	// 2-5% at 250 HTTPS probes/s.
	HighGCShare = 0.25
	// LowGCShare is the share under which a window counts as calm.
	LowGCShare = 0.10
	// Sustain is how many windows in a row must be over HighGCShare: a
	// config load or a burst of probes at start is not a trend.
	Sustain = 3
	// CalmWindows of calm in a row lower a raised limit by one step (30
	// minutes at WatchEvery).
	CalmWindows = 180
	// StepFraction of the derived limit is one step; MaxSteps of them at
	// most (the derived limit x 1.5: about the room GOGC 100 needs).
	StepFraction = 0.125
	MaxSteps     = 4
)

// Pressure is one reading of the collector's load (runtime/metrics).
type Pressure struct {
	// GCCPU and TotalCPU are cumulative CPU-seconds: the collector's
	// (/cpu/classes/gc/total) and all the process could have used
	// (/cpu/classes/total: GOMAXPROCS x wall time).
	GCCPU, TotalCPU float64
	// Goal is the heap goal (/gc/heap/goal); Live the heap marked live by
	// the last cycle (/gc/heap/live). The limit binds when Goal is below
	// what GOGC alone would allow, Live x (1 + GOGC/100).
	Goal, Live uint64
	// GOGC is the collector's setting (/gc/gogc; -1 when off).
	GOGC int
}

var pressureNames = [...]string{
	"/cpu/classes/gc/total:cpu-seconds",
	"/cpu/classes/total:cpu-seconds",
	"/gc/heap/goal:bytes",
	"/gc/heap/live:bytes",
	"/gc/gogc:percent",
}

// ReadPressure reads the runtime's figures for the valve.
func ReadPressure() Pressure {
	var s [len(pressureNames)]metrics.Sample
	for i, n := range pressureNames {
		s[i].Name = n
	}
	metrics.Read(s[:])
	f := func(i int) float64 {
		if s[i].Value.Kind() == metrics.KindFloat64 {
			return s[i].Value.Float64()
		}
		return 0
	}
	u := func(i int) uint64 {
		if s[i].Value.Kind() == metrics.KindUint64 {
			return s[i].Value.Uint64()
		}
		return 0
	}
	return Pressure{GCCPU: f(0), TotalCPU: f(1), Goal: u(2), Live: u(3), GOGC: int(int64(u(4)))}
}

// valve is the Tuner's give-way state, guarded by the Tuner's mu.
type valve struct {
	base  int64 // the derived limit before steps
	steps int
	hot   int // windows in a row over HighGCShare while binding
	calm  int // windows in a row under LowGCShare
	share float64
}

// Watch reads the collector's load every WatchEvery until ctx ends and
// lets a derived limit give way (see HighGCShare). The agent runs it.
func (t *Tuner) Watch(ctx context.Context) {
	tick := time.NewTicker(WatchEvery)
	defer tick.Stop()
	prev := ReadPressure()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		cur := ReadPressure()
		t.Observe(prev, cur)
		prev = cur
	}
}

// Observe folds one window, from prev to cur, into the valve and applies a
// changed limit. It reports whether the limit changed.
func (t *Tuner) Observe(prev, cur Pressure) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	v := &t.valve
	if !t.set || t.cur.Source != SourceTargets {
		*v = valve{}
		return false
	}
	total := cur.TotalCPU - prev.TotalCPU
	if total <= 0 {
		return false
	}
	v.share = max(cur.GCCPU-prev.GCCPU, 0) / total
	binding := cur.GOGC > 0 && float64(cur.Goal) < float64(cur.Live)*(1+float64(cur.GOGC)/100)
	switch {
	case v.share >= HighGCShare && binding:
		v.hot++
		v.calm = 0
	case v.share < LowGCShare:
		v.calm++
		v.hot = 0
	default:
		v.hot, v.calm = 0, 0
	}
	was := t.cur.Limit
	switch {
	case v.hot >= Sustain && v.steps < MaxSteps:
		v.steps++
		v.hot = 0
		t.applyStepsLocked()
		t.log.Warn("memory limit raised: the collector took too much CPU to hold it",
			"limit", FormatSize(t.cur.Limit), "was", FormatSize(was), "gc_cpu_share", round2(v.share),
			"steps", v.steps, "max_steps", MaxSteps,
			"hint", "set [agent] memory_limit (or a container limit) to choose the trade yourself")
		return true
	case v.calm >= CalmWindows && v.steps > 0:
		v.steps--
		v.calm = 0
		t.applyStepsLocked()
		t.log.Info("memory limit lowered: the collector has been quiet",
			"limit", FormatSize(t.cur.Limit), "was", FormatSize(was), "steps", v.steps)
		return true
	}
	return false
}

// applyStepsLocked sets the limit to the derived one plus the valve's
// steps.
func (t *Tuner) applyStepsLocked() {
	t.cur.Limit = t.valve.raised(t.valve.base)
	Apply(t.cur)
}

// raised is limit with the valve's steps added.
func (v *valve) raised(limit int64) int64 {
	return limit + int64(float64(limit)*StepFraction)*int64(v.steps)
}

// GiveWay says how far the valve has raised the limit: the steps taken
// and the collector's CPU share in the last window.
func (t *Tuner) GiveWay() (steps int, gcShare float64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.valve.steps, t.valve.share
}

func round2(f float64) float64 { return float64(int(f*100+0.5)) / 100 }
