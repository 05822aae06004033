package scale

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/vantage-probe/vantage/cluster"
	"github.com/vantage-probe/vantage/cluster/shard"
)

// HandoverRun is one leader's death in a probing fleet: how soon the
// targets it led are judged again, with every region's fresh vote, by
// their new leaders, and whether an outage across the death was counted
// exactly once.
type HandoverRun struct {
	Agents, Targets int
	Led             int // targets the killed agent led
	// OngoingOutages were open incidents on the victim's targets when it
	// died; NewOutages began as it died.
	OngoingOutages, NewOutages int

	Detected time.Duration // kill -> the first live agent saw it dead
	// Fresh is kill -> every target the victim led has a leader (in its
	// own view) holding a fresh vote from every region: the hand-over done.
	Fresh time.Duration
	// Settled is kill -> every outage has exactly one open incident and
	// every other target the victim led is up, at its new leader.
	Settled time.Duration

	// Checked every 100 ms from the kill until settled, on every live agent:
	False   []string // targets with an incident no outage explains
	Doubled []string // outages with more than one incident ID
	Missed  []string // outages without an open incident once settled
	Samples int
}

// MeasureHandover starts a fleet, lets it probe until the busiest leader
// holds every region's fresh vote for each target it leads, opens outages on some targets the busiest
// leader leads (ongoing), kills that leader without a goodbye, begins more
// outages on its targets at the same moment (new), and watches the
// hand-over: every agent's incidents, every 100 ms, until the new leaders
// judge every target with fresh votes and each outage has its one
// incident.
func MeasureHandover(ctx context.Context, opts Options, ongoing, fresh int, limit time.Duration) (HandoverRun, error) {
	f, err := Start(opts)
	if err != nil {
		return HandoverRun{}, err
	}
	defer f.Close()
	run := HandoverRun{Agents: len(f.Agents()), Targets: len(f.Targets())}
	if _, err := f.WaitConverged(ctx, limit); err != nil {
		return run, err
	}
	f.StartProbing()
	victim, led := f.busiestLeader()
	run.Led = len(led)
	if ongoing+fresh > len(led) {
		return run, fmt.Errorf("%s leads %d targets, fewer than the %d outages asked for", victim.Name, len(led), ongoing+fresh)
	}
	regions := len(f.Regions())
	if _, err := poll(ctx, limit, 100*time.Millisecond, "the victim to judge its targets with every region's fresh vote", func() bool {
		for _, t := range led {
			if st, ok := victim.Cluster.Status(t); !ok || !st.IsLeader || st.Reporting != regions {
				return false
			}
		}
		return true
	}); err != nil {
		return run, err
	}
	outage := map[string]string{} // target -> the incident ID open at the kill ("" for a new outage)
	for _, t := range led[:ongoing] {
		f.SetDown(t, true)
		f.ReportTarget(t)
		outage[t] = ""
	}
	if _, err := poll(ctx, limit, 50*time.Millisecond, "the ongoing outages' incidents at the victim", func() bool {
		for _, t := range led[:ongoing] {
			st, ok := victim.Cluster.Status(t)
			if !ok || st.Open == nil {
				return false
			}
			outage[t] = st.Open.ID
		}
		return true
	}); err != nil {
		return run, err
	}
	run.OngoingOutages, run.NewOutages = ongoing, fresh

	killed := time.Now()
	f.Kill(victim)
	for _, t := range led[ongoing : ongoing+fresh] {
		f.SetDown(t, true)
		f.ReportTarget(t) // the other regions' schedules come round
		outage[t] = ""
	}

	false_, doubled := map[string]bool{}, map[string]bool{}
	handedOver := func() bool {
		for _, t := range led {
			st, ok := f.leaderStatus(t)
			if !ok || st.Reporting != regions {
				return false
			}
		}
		return true
	}
	settled := func() bool {
		for _, t := range led {
			st, ok := f.leaderStatus(t)
			if !ok {
				return false
			}
			_, down := outage[t]
			if down != (st.Open != nil) || (!down && st.Verdict != "up") {
				return false
			}
		}
		return true
	}
	check := func() {
		run.Samples++
		ids := map[string]map[string]bool{} // target -> open incident IDs across the fleet
		for _, a := range f.Live() {
			for _, in := range a.Cluster.Incidents() {
				if _, ok := outage[in.Target]; !ok {
					false_[in.Target] = true
					continue
				}
				if !in.Open() {
					continue
				}
				if ids[in.Target] == nil {
					ids[in.Target] = map[string]bool{}
				}
				ids[in.Target][in.ID] = true
			}
		}
		for t, set := range ids {
			if len(set) > 1 {
				doubled[t] = true
			}
		}
	}
	for {
		check()
		now := time.Since(killed)
		if run.Detected == 0 {
			if first, _, n := f.DeathSeen(victim.Name, killed); n > 0 {
				run.Detected = first.Sub(killed)
			}
		}
		if run.Fresh == 0 && handedOver() {
			run.Fresh = now
		}
		if run.Fresh > 0 && run.Settled == 0 && settled() {
			run.Settled = now
		}
		if run.Settled > 0 && run.Detected > 0 {
			break
		}
		if now > limit {
			for t := range outage {
				if st, ok := f.leaderStatus(t); !ok || st.Open == nil {
					run.Missed = append(run.Missed, t)
				}
			}
			break
		}
		select {
		case <-ctx.Done():
			return run, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	for t, id := range outage {
		// An ongoing outage keeps the incident it had: a new ID means the
		// new leader counted the outage a second time.
		if st, ok := f.leaderStatus(t); ok && st.Open != nil && id != "" && st.Open.ID != id {
			doubled[t] = true
		}
	}
	for t := range false_ {
		run.False = append(run.False, t)
	}
	for t := range doubled {
		run.Doubled = append(run.Doubled, t)
	}
	slices.Sort(run.False)
	slices.Sort(run.Doubled)
	slices.Sort(run.Missed)
	if run.Settled == 0 {
		return run, fmt.Errorf("the hand-over did not settle within %v (fresh after %v)", limit, run.Fresh)
	}
	return run, nil
}

// busiestLeader is the live agent that leads the most targets, by the
// assignment every agent computes, and the targets it leads.
func (f *Fleet) busiestLeader() (*Agent, []string) {
	live := f.Live()
	members := make([]shard.Member, 0, len(live))
	byID := make(map[string]*Agent, len(live))
	for _, a := range live {
		members = append(members, shard.Member{ID: a.Name, Region: a.Region})
		byID[a.Name] = a
	}
	led := map[string][]string{}
	for _, t := range f.names {
		id := shard.Leader(t, members)
		led[id] = append(led[id], t)
	}
	var best *Agent
	for _, a := range live {
		if best == nil || len(led[a.Name]) > len(led[best.Name]) {
			best = a
		}
	}
	return best, led[best.Name]
}

// leaderStatus is target's status at a live agent that leads it in its own
// view (false: none does).
func (f *Fleet) leaderStatus(target string) (cluster.TargetStatus, bool) {
	for _, a := range f.Live() {
		if st, ok := a.Cluster.Status(target); ok && st.IsLeader {
			return st, true
		}
	}
	return cluster.TargetStatus{}, false
}
