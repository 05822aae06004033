//go:build linux

package netlab

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/vantage-probe/vantage/internal/mono"
)

// plays are the scenarios' scripts. Each applies its fault, holds it,
// repairs it and returns; the lab then waits for the fleet to recover.
var plays = map[string]func(*lab, context.Context, *Play) error{
	"outage":              (*lab).playOutage,
	"link-down":           netFault("veth down", (*lab).linkDown, (*lab).linkUp),
	"fleet-cut":           netFault("cut from the other regions", (*lab).cutFleet, (*lab).heal),
	"target-cut":          netFault("cut from the farm", (*lab).cutTargets, (*lab).heal),
	"one-way-out":         netFault("its packets to the other regions dropped", (*lab).oneWayOut, (*lab).heal),
	"one-way-in":          netFault("packets from the other regions dropped", (*lab).oneWayIn, (*lab).heal),
	"kill-restart":        (*lab).playKill,
	"stop-cont":           (*lab).playStop,
	"config-good":         (*lab).playConfigGood,
	"config-bad-syntax":   func(l *lab, ctx context.Context, run *Play) error { return l.playConfigBad(ctx, run, "syntax") },
	"config-bad-interval": func(l *lab, ctx context.Context, run *Play) error { return l.playConfigBad(ctx, run, "interval") },
}

func (l *lab) linkDown(i int) error { return l.topo.linkDown(i) }
func (l *lab) linkUp(i int) error   { return l.topo.linkUp(i) }
func (l *lab) heal(i int) error     { return l.topo.heal(i) }

func (l *lab) others(i int) []string {
	var out []string
	for j := range l.opts.Regions {
		if j != i {
			out = append(out, regionCIDR(j))
		}
	}
	return out
}

func (l *lab) cutFleet(i int) error   { return l.topo.drop(i, true, true, l.others(i)...) }
func (l *lab) cutTargets(i int) error { return l.topo.drop(i, true, true, FarmAddr+"/32") }
func (l *lab) oneWayOut(i int) error  { return l.topo.drop(i, false, true, l.others(i)...) }
func (l *lab) oneWayIn(i int) error   { return l.topo.drop(i, true, false, l.others(i)...) }

// netFault is a network fault on one region (rotating): applied, held for
// Hold with an outage on a target one of the region's agents leads
// starting a quarter into it, then repaired.
func netFault(what string, apply, repair func(*lab, int) error) func(*lab, context.Context, *Play) error {
	return func(l *lab, ctx context.Context, run *Play) error {
		i := l.nextRegion()
		region := l.opts.Regions[i]
		run.Subject = region
		target := l.pickTarget(l.regionNodes(i))
		t0 := time.Now()
		if err := apply(l, i); err != nil {
			_ = repair(l, i)
			return err
		}
		l.say("%s (%s): %s for %v; outage on %s (led from %s) in %v", region, l.topo.region(i), what, l.opts.Hold, target, region, l.opts.Hold/4)
		wait := l.outage(ctx, target, l.opts.Hold/4)
		_ = mono.Sleep(ctx, l.opts.Hold)
		err := repair(l, i)
		l.disturb("", "", t0, time.Now())
		l.say("%s: repaired", region)
		wait()
		return errors.Join(err, ctx.Err())
	}
}

// playOutage: two outages every region sees, half an interval apart, no
// other fault.
func (l *lab) playOutage(ctx context.Context, run *Play) error {
	cur := l.currentTargets()
	k := l.nextRegion()
	a, b := cur[k%len(cur)], cur[(k+len(cur)/2)%len(cur)]
	run.Subject = a + "," + b
	w1 := l.outage(ctx, a, 0)
	w2 := l.outage(ctx, b, l.opts.Interval/2)
	w1()
	w2()
	return ctx.Err()
}

// waitRunning waits for a restarted agent to answer /healthz.
func (l *lab) waitRunning(ctx context.Context, a *agentProc) {
	mono.Poll(ctx, l.mon.startFor+5*time.Second, 100*time.Millisecond, func() bool {
		st, _, _ := a.snapshot()
		return st == procRunning
	})
}

// playKill: the busiest leader of a region (rotating) is killed with
// SIGKILL, an outage starts on a target it led, and it is restarted with
// the same node name after Hold.
func (l *lab) playKill(ctx context.Context, run *Play) error {
	a := l.victim(l.nextRegion())
	run.Subject = a.Node
	target := l.pickTarget([]string{a.Node})
	t0 := time.Now()
	if err := l.fleet.kill(a); err != nil {
		return err
	}
	l.say("%s killed (SIGKILL); outage on %s, which it led, in 5s; restart in %v", a.Node, target, l.opts.Hold)
	wait := l.outage(ctx, target, 5*time.Second)
	_ = mono.Sleep(ctx, l.opts.Hold)
	err := l.fleet.start(a)
	if err == nil {
		l.waitRunning(ctx, a)
	}
	l.disturb("", "", t0, time.Now())
	wait()
	return errors.Join(err, ctx.Err())
}

// playStop: the busiest leader of a region (rotating) is frozen with
// SIGSTOP, an outage starts on a target it led, and it is resumed with
// SIGCONT after Hold.
func (l *lab) playStop(ctx context.Context, run *Play) error {
	a := l.victim(l.nextRegion())
	run.Subject = a.Node
	target := l.pickTarget([]string{a.Node})
	t0 := time.Now()
	if err := l.fleet.stop(a); err != nil {
		return err
	}
	l.say("%s stopped (SIGSTOP); outage on %s, which it led, in 5s; SIGCONT in %v", a.Node, target, l.opts.Hold)
	wait := l.outage(ctx, target, 5*time.Second)
	_ = mono.Sleep(ctx, l.opts.Hold)
	err := l.fleet.cont(a)
	l.disturb("", "", t0, time.Now())
	wait()
	return errors.Join(err, ctx.Err())
}

// hupAll sends SIGHUP to every running agent.
func (l *lab) hupAll() error {
	var errs []error
	for _, a := range l.running() {
		errs = append(errs, l.fleet.signal(a, syscall.SIGHUP))
	}
	return errors.Join(errs...)
}

// reloadState is what an agent says of its last reload after a push at t:
// accepted (a successful reload since t), refused (the last reload
// failed), or neither yet.
func reloadState(m *sample, t time.Time) string {
	switch {
	case m == nil:
		return ""
	case m.ReloadOK == 1 && m.ReloadTS >= float64(t.Unix()):
		return "accepted"
	case m.ReloadOK == 0:
		return "refused"
	}
	return ""
}

// waitReloads polls until every running agent has accepted or refused the
// config pushed at t, for at most 15 s, and returns each agent's answer
// ("" for none).
func (l *lab) waitReloads(ctx context.Context, t time.Time) map[string]string {
	var got map[string]string
	after := time.Now()
	mono.Poll(ctx, 15*time.Second, 100*time.Millisecond, func() bool {
		r := l.mon.latest()
		if r == nil || !r.at.After(after) {
			return false // a round that began after the SIGHUP
		}
		got = map[string]string{}
		done := true
		for _, a := range l.running() {
			v := r.views[a.Node]
			if v == nil {
				done = false
				continue
			}
			got[a.Node] = reloadState(v.m, t)
			done = done && got[a.Node] != ""
		}
		return done
	})
	return got
}

// push writes the config to every agent, sends SIGHUP and waits for the
// answers; a good config that is not accepted breaks HealthyAgents.
func (l *lab) push(ctx context.Context, targets []string, variant string) (time.Time, map[string]string, error) {
	t := time.Now()
	if err := l.pushConfig(targets, variant); err != nil {
		return t, nil, err
	}
	if err := l.hupAll(); err != nil {
		return t, nil, err
	}
	got := l.waitReloads(ctx, t)
	if variant == "" {
		l.mu.Lock()
		l.configs = append(l.configs, configVersion{At: t, Targets: setOf(targets)})
		l.mu.Unlock()
		for node, st := range got {
			if st != "accepted" {
				l.violation(Violation{Inv: HealthyAgents, At: t, Agents: []string{node},
					Detail: fmt.Sprintf("a good config pushed with SIGHUP was not loaded within 15s (%q)", st)})
			}
		}
	}
	return t, got, ctx.Err()
}

// playConfigGood: a config with one target added and one removed is
// pushed to every agent (SIGHUP); once the new target has a verdict an
// outage starts on it; the removed target's series must disappear. Then
// the original config is restored.
func (l *lab) playConfigGood(ctx context.Context, run *Play) error {
	orig := l.currentTargets()
	removed := orig[len(orig)-1]
	added := targetName(len(orig) + 1)
	for slices.Contains(orig, added) {
		added += "x"
	}
	next := append(slices.Clone(orig[:len(orig)-1]), added)
	run.Subject = "+" + added + " -" + removed
	t0, _, err := l.push(ctx, next, "")
	if err != nil {
		return err
	}
	l.say("config pushed: %s added, %s removed", added, removed)
	if !mono.Poll(ctx, 30*time.Second, 250*time.Millisecond, func() bool { return l.converged(next) }) {
		l.note("config-good: %s had no single verdict exporter within 30s of the push", added)
	}
	l.disturb("", "", t0, time.Now())
	wait := l.outage(ctx, added, 0)
	_ = mono.Sleep(ctx, l.opts.grace())
	if r := l.mon.latest(); r != nil {
		for _, a := range l.running() {
			v := r.views[a.Node]
			if v == nil || v.m == nil {
				continue
			}
			if v.m.Probed[removed] || v.m.Up[removed] != 0 {
				l.violation(Violation{Inv: AssigneesOnly, At: r.at, Target: removed, Agents: []string{a.Node},
					Detail: fmt.Sprintf("still exports series of a target removed %.0fs ago", r.at.Sub(t0).Seconds())})
			}
		}
	}
	wait()
	t1, _, err := l.push(ctx, orig, "")
	l.disturb("", "", t1, time.Now())
	l.say("config restored: %s back, %s gone", removed, added)
	return err
}

// playConfigBad pushes a bad config to every agent (SIGHUP): each must
// refuse it (vantage_config_last_reload_successful 0) and keep probing its
// targets; then the good file is restored.
func (l *lab) playConfigBad(ctx context.Context, run *Play, variant string) error {
	cur := l.currentTargets()
	run.Subject = variant
	before := map[string]map[string]bool{}
	if r := l.mon.latest(); r != nil {
		for _, a := range l.running() {
			if v := r.views[a.Node]; v != nil && v.m != nil {
				before[a.Node] = v.m.Probed
			}
		}
	}
	t0, got, err := l.push(ctx, cur, variant)
	if err != nil {
		return err
	}
	settled := time.Now()
	var accepted []string
	for node, st := range got {
		switch st {
		case "accepted":
			accepted = append(accepted, node)
		case "":
			l.violation(Violation{Inv: HealthyAgents, At: t0, Agents: []string{node},
				Detail: fmt.Sprintf("no answer to a bad config (%s) within 15s: vantage_config_last_reload_successful neither 0 nor a new success", variant)})
		}
	}
	slices.Sort(accepted)
	if len(accepted) > 0 {
		l.violation(Violation{Inv: HealthyAgents, At: t0, Agents: accepted,
			Detail: fmt.Sprintf("a bad config (%s) pushed with SIGHUP was accepted: vantage_config_last_reload_successful 1 and a new last-success timestamp", variant)})
	}
	l.say("bad config (%s) pushed: refused by %d agents, accepted by %d", variant, len(got)-len(accepted), len(accepted))
	hold := 3*l.opts.Interval + l.opts.Timeout
	_ = mono.Sleep(ctx, hold)
	want := int(hold/l.opts.Interval) - 1
	for _, a := range l.fleet.agents {
		var starved []string
		for t := range before[a.Node] {
			if n := l.farm.count(t, a.Addr, settled, settled.Add(hold)); n < want {
				starved = append(starved, fmt.Sprintf("%s (%d)", t, n))
			}
		}
		slices.Sort(starved)
		if len(starved) > 0 {
			l.violation(Violation{Inv: HealthyAgents, At: settled, Until: settled.Add(hold), Agents: []string{a.Node},
				Detail: fmt.Sprintf("after the bad config (%s) its targets went unprobed: %s probes in %v, want at least %d each",
					variant, strings.Join(starved, ", "), hold, want)})
		}
	}
	t1, _, err := l.push(ctx, cur, "")
	l.disturb("", "", t0, time.Now())
	_ = t1
	l.say("good config restored")
	return err
}
