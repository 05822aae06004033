package lab

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/vantage-probe/vantage/exporter/alertmanager/amtest"
	"github.com/vantage-probe/vantage/exporter/rules"
)

// pager is the lab's Alertmanager: a real one (Debian's
// prometheus-alertmanager) that every agent sends its direct alerts to, with
// a webhook receiver that records each notification, and a poller that
// records when each alert first became active: what on-call would see.
type pager struct {
	am *amtest.Server

	mu    sync.Mutex
	first map[alertKey]time.Time // first seen active, by target and start
	polls int
	err   error // the last poll error, for the report
}

type alertKey struct {
	target string
	starts time.Time
}

// startPager runs an Alertmanager routed as `vantage rules -alertmanager`
// routes pages (group by alert and target, no group wait) with its inhibit
// rules, and a group interval short enough that a second notification for
// one outage, if the fleet caused one, shows within the run.
func startPager(ctx context.Context, dir string) (*pager, error) {
	am, err := amtest.Start(ctx, dir, amtest.Options{GroupWait: time.Millisecond, GroupInterval: 2 * time.Second,
		RepeatInterval: 24 * time.Hour, InhibitRules: rules.InhibitRulesYAML()})
	if err != nil {
		return nil, err
	}
	return &pager{am: am, first: map[alertKey]time.Time{}}, nil
}

// poll records the alerts Alertmanager holds every 100ms until ctx ends.
func (p *pager) poll(ctx context.Context) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		alerts, err := p.am.Alerts(rctx)
		cancel()
		now := time.Now()
		p.mu.Lock()
		p.polls++
		if err != nil && ctx.Err() == nil {
			p.err = err
		}
		for _, a := range alerts {
			if a.Labels["alertname"] != rules.AlertTargetDown || a.Status.State != "active" {
				continue
			}
			k := alertKey{target: a.Labels["target"], starts: a.StartsAt}
			if _, ok := p.first[k]; !ok {
				p.first[k] = now
			}
		}
		p.mu.Unlock()
	}
}

func (p *pager) close() { _ = p.am.Close() }

// PageRow is one scenario's paging outcome: what reached Alertmanager and
// what its webhook receiver was notified of.
type PageRow struct {
	Scenario Scenario
	// Outages are the episodes that must page (Detect); Paged those whose
	// alert became active in Alertmanager.
	Outages, Paged int
	// Latency: the alert first seen active in Alertmanager - the farm's
	// flip, per paged outage.
	Latency []time.Duration
	// Firing and Resolved count, per outage, the webhook notifications
	// about its target while it lasted and settled: exactly one of each
	// for one page per outage.
	Firing, Resolved []int
	// FalsePages are alerts for targets whose episode must not page (a
	// one-region failure, a control target, a partition).
	FalsePages     int
	FalseTargets   []string
	NotificationsN int // every notification about the scenario's targets
}

// evaluatePaging matches Alertmanager's alerts and notifications to the
// ground truth.
func (l *lab) evaluatePaging(episodes []Episode) []PageRow {
	p := l.pager
	notes := p.am.Notifications()
	p.mu.Lock()
	first := make(map[alertKey]time.Time, len(p.first))
	for k, v := range p.first {
		first[k] = v
	}
	p.mu.Unlock()
	grace := l.opts.Timeout + 2*time.Second
	// The window of an episode's page: from the flip to its repair plus the
	// time an incident takes to resolve (a resolve hold and more).
	settle := l.opts.stale() + l.opts.Interval
	rows := map[Scenario]*PageRow{}
	row := func(s Scenario) *PageRow {
		if r := rows[s]; r != nil {
			return r
		}
		r := &PageRow{Scenario: s}
		rows[s] = r
		return r
	}
	claimed := map[alertKey]bool{}
	for _, e := range episodes {
		if e.Target == "" {
			continue
		}
		r := row(e.Scenario)
		from, to := e.Start, e.End.Add(grace)
		var seen time.Time
		for k, at := range first {
			if k.target != e.Target || at.Before(from) || at.After(to.Add(settle)) {
				continue
			}
			claimed[k] = true
			if seen.IsZero() || at.Before(seen) {
				seen = at
			}
		}
		firing, resolved := 0, 0
		for _, n := range notes {
			if n.GroupLabels["target"] != e.Target || n.Received.Before(from) || n.Received.After(to.Add(settle)) {
				continue
			}
			r.NotificationsN++
			if n.Status == "firing" {
				firing++
			} else {
				resolved++
			}
		}
		switch e.Expect {
		case Detect:
			r.Outages++
			r.Firing = append(r.Firing, firing)
			r.Resolved = append(r.Resolved, resolved)
			if !seen.IsZero() {
				r.Paged++
				r.Latency = append(r.Latency, seen.Sub(e.Start))
			}
		case AtMostOne:
			r.Firing = append(r.Firing, firing)
			r.Resolved = append(r.Resolved, resolved)
		case NoIncident:
			if !seen.IsZero() || firing > 0 {
				r.FalsePages++
				r.FalseTargets = append(r.FalseTargets, e.Target)
			}
		}
	}
	// Alerts no episode explains: a control target, a healthy moment.
	for k := range first {
		if !claimed[k] {
			s := NoFault
			if owner, ok := l.ownerOf(k.target); ok {
				s = owner
			}
			r := row(s)
			r.FalsePages++
			r.FalseTargets = append(r.FalseTargets, k.target)
		}
	}
	out := make([]PageRow, 0, len(rows))
	for _, s := range scenarioOrder {
		if r := rows[s]; r != nil {
			sort.Strings(r.FalseTargets)
			out = append(out, *r)
		}
	}
	return out
}

func (l *lab) ownerOf(target string) (Scenario, bool) {
	for s, names := range l.groups {
		for _, n := range names {
			if n == target {
				return s, true
			}
		}
	}
	return "", false
}

// minMax is "a-b" (or "a") over ns, "-" when empty.
func minMax(ns []int) string {
	if len(ns) == 0 {
		return "-"
	}
	lo, hi := ns[0], ns[0]
	for _, n := range ns {
		lo, hi = min(lo, n), max(hi, n)
	}
	if lo == hi {
		return fmt.Sprint(lo)
	}
	return fmt.Sprintf("%d-%d", lo, hi)
}

var pageColumns = []string{"outages", "reached AM", "fault->alert p50", "p95", "max", "firing notifications per outage",
	"resolved notifications", "false pages"}

func (r PageRow) cells() []string {
	return []string{
		fmt.Sprint(r.Outages), fmt.Sprint(r.Paged),
		secs(Percentile(r.Latency, 50)), secs(Percentile(r.Latency, 95)), secs(Max(r.Latency)),
		minMax(r.Firing), minMax(r.Resolved), fmt.Sprint(r.FalsePages),
	}
}

// pagingGoals are issue 13's goals: fault to alert active in Alertmanager
// p95 at most I/R + 2s for a fast failure and I/R + T + 2s for a hang past
// the timeout, no one-region failure in Alertmanager, exactly one
// notification per outage (also when the leader is killed during it).
func (r *Report) pagingGoals() []Goal {
	if len(r.Paging) == 0 {
		return nil
	}
	var gs []Goal
	share := r.Interval / time.Duration(len(r.Regions))
	for _, c := range []struct {
		s    Scenario
		want time.Duration
		what string
	}{{AllRegions, share + 2*time.Second, "fast failure (status 500)"}, {SlowAll, share + r.Timeout + 2*time.Second, "hang past the timeout"}} {
		row, ok := r.PageRow(c.s)
		if !ok || row.Outages == 0 {
			continue
		}
		p := Percentile(row.Latency, 95)
		gs = append(gs, Goal{Name: "fault -> alert active in Alertmanager p95, " + c.what,
			Want: "<= " + secs(c.want) + fmt.Sprintf(" (%d of %d paged)", row.Outages, row.Outages),
			Got:  secs(p) + fmt.Sprintf(" (%d of %d paged)", row.Paged, row.Outages), Met: row.Paged == row.Outages && p >= 0 && p <= c.want})
	}
	falsePages := 0
	oneRegion := 0
	for _, row := range r.Paging {
		falsePages += row.FalsePages
		if row.Scenario == OneRegion {
			oneRegion += row.FalsePages
		}
	}
	gs = append(gs, Goal{Name: "one-region failures that reached Alertmanager", Want: "0", Got: fmt.Sprint(oneRegion), Met: oneRegion == 0})
	gs = append(gs, Goal{Name: "alerts no outage explains", Want: "0", Got: fmt.Sprint(falsePages), Met: falsePages == 0})
	var firing []int
	killed := "-"
	for _, row := range r.Paging {
		if row.Scenario == AllRegions || row.Scenario == SlowAll || row.Scenario == AgentKill {
			firing = append(firing, row.Firing...)
		}
		if row.Scenario == AgentKill {
			killed = minMax(row.Firing)
		}
	}
	ok := len(firing) > 0
	for _, n := range firing {
		ok = ok && n == 1
	}
	gs = append(gs, Goal{Name: "firing notifications per outage at the webhook (agent-kill: leader killed mid-incident)",
		Want: "exactly 1", Got: minMax(firing) + " (agent-kill: " + killed + ")", Met: ok})
	return gs
}

// PageRow returns the paging row of scenario s.
func (r *Report) PageRow(s Scenario) (PageRow, bool) {
	for _, row := range r.Paging {
		if row.Scenario == s {
			return row, true
		}
	}
	return PageRow{}, false
}
