package lab

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/vantage-probe/vantage/cluster"
)

// sloTolerance is how far an agent's SLO availability may be from the one
// its incident records give: 0.1 percentage points.
const sloTolerance = 0.001

// numberGoals checks the figures people copy into postmortems and SLO
// reviews against what happened: each incident's flaps against the
// up-periods the farm injected (none for a steady outage; at most the
// injected ones while flapping), and each agent's SLO availability against
// 1 - downtime/observed over the fleet's incident records.
func (l *lab) numberGoals(truth Truth) []Goal {
	incidents := l.fleet.allIncidents()
	l.mu.Lock()
	ups := make(map[string]int, len(l.ups))
	for k, v := range l.ups {
		ups[k] = v
	}
	l.mu.Unlock()

	var bad []string
	checked := 0
	for _, in := range incidents {
		k := truth.find(in.Target, in.DetectedAt)
		if k < 0 || truth.Episodes[k].Target != in.Target {
			continue
		}
		checked++
		e := truth.Episodes[k]
		switch {
		case e.Scenario == Flapping && in.Flaps > ups[in.Target]:
			bad = append(bad, fmt.Sprintf("%s: %d flaps, the farm brought it back %d times", in.Target, in.Flaps, ups[in.Target]))
		case e.Scenario != Flapping && e.Scenario != AgentKill && in.Flaps != 0:
			// A leader crash may end a failure streak where the outage did
			// not: only the steady scenarios must count none.
			bad = append(bad, fmt.Sprintf("%s (%s): %d flaps in a steady outage", in.Target, e.Scenario, in.Flaps))
		}
	}
	flaps := Goal{Name: "incident flaps against the injected flaps", Want: "0 in steady outages, <= injected while flapping",
		Got: fmt.Sprintf("%d incidents checked, %d wrong", checked, len(bad)), Met: len(bad) == 0}
	if len(bad) > 0 {
		flaps.Got += ": " + strings.Join(bad[:min(len(bad), 3)], "; ")
	}

	byTarget := map[string][]cluster.Incident{}
	for _, in := range incidents {
		byTarget[in.Target] = append(byTarget[in.Target], in)
	}
	var worst float64
	var worstAt string
	n := 0
	now := time.Now()
	for _, m := range l.fleet.live() {
		for _, st := range m.a.Cluster().Statuses() {
			if st.SLO == nil || st.SLO.Observed <= 0 {
				continue
			}
			from := now.Add(-st.SLO.Observed)
			var down time.Duration
			for _, in := range byTarget[st.Name] {
				start, end := in.StartedAt, in.ResolvedAt
				if end.IsZero() {
					end = now
				}
				if start.Before(from) {
					start = from
				}
				if end.After(start) {
					down += end.Sub(start)
				}
			}
			want := 1 - float64(min(down, st.SLO.Observed))/float64(st.SLO.Observed)
			n++
			if d := math.Abs(st.SLO.Availability - want); d > worst {
				worst, worstAt = d, fmt.Sprintf(" (%s on %s: %.4f, incidents say %.4f)", st.Name, m.node, st.SLO.Availability, want)
			}
		}
	}
	slo := Goal{Name: "SLO availability against the incident records, every agent, every target",
		Want: fmt.Sprintf("within %.1f points", sloTolerance*100), Got: fmt.Sprintf("%d figures, worst off by %.3f points", n, worst*100), Met: n > 0 && worst <= sloTolerance}
	if !slo.Met {
		slo.Got += worstAt
	}
	return []Goal{flaps, slo}
}
