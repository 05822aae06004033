package lab

import (
	"math"
	"sort"
	"time"

	"github.com/vantage-probe/vantage/cluster"
)

// Scenario names a fault the lab plays.
type Scenario string

// The scenarios, in report order.
const (
	AllRegions Scenario = "all-regions" // an outage every region sees (503)
	OneRegion  Scenario = "one-region"  // an outage only one region sees
	SlowAll    Scenario = "slow"        // responses slower than the timeout, everywhere
	Flapping   Scenario = "flapping"    // down/up faster than the interval
	AgentKill  Scenario = "agent-kill"  // an agent crashes and restarts during outages
	Partition  Scenario = "partition"   // a region cut off from the fleet and the targets
	NoFault    Scenario = "no-fault"    // control targets that never fail
)

var scenarioOrder = []Scenario{AllRegions, OneRegion, SlowAll, Flapping, AgentKill, Partition, NoFault}

// Title is the scenario's one-line description for the report.
func (s Scenario) Title() string {
	switch s {
	case AllRegions:
		return "outage every region sees (503)"
	case OneRegion:
		return "outage one region sees"
	case SlowAll:
		return "slow responses past the timeout"
	case Flapping:
		return "flapping faster than the interval"
	case AgentKill:
		return "agent killed and restarted during outages"
	case Partition:
		return "region partitioned from fleet and targets"
	case NoFault:
		return "healthy control targets"
	}
	return string(s)
}

// Expect is what the fleet must conclude about an episode.
type Expect int

const (
	// Detect: exactly one incident, detected while the fault lasts (or
	// within the grace after it ends); none is a miss, more are false.
	Detect Expect = iota
	// NoIncident: any incident is false.
	NoIncident
	// AtMostOne: an incident is allowed (a flapping target is a real
	// problem) but a second one in the same episode is a false page.
	AtMostOne
)

// Episode is one fault of the ground truth: what the farm or the network
// did, when, to which target, and what the fleet must conclude.
type Episode struct {
	Scenario Scenario
	Target   string // "" for a fault of the whole fleet (a partition, a crash)
	Expect   Expect
	// Start is when the farm (or network) flipped to the fault, End when it
	// was repaired: the ground truth, taken at the flip itself.
	Start, End time.Time
	Region     string // the region that saw the fault, for one-region faults
	// Watch marks a window that is not a run of its scenario but in which
	// no incident may open (the rest of the fleet during a crash).
	Watch bool
	// Requesters is how many agents see the fault as a new failure and may
	// ask for confirmations: every region for a fault everyone sees, one
	// region's assignee for a one-region fault, one per target when a
	// region is cut off. Zero: the episode adds no confirmation budget.
	Requesters int
}

// Truth is the lab's ground truth: the episodes it played, which scenario
// owns each target (an incident outside any episode is charged to it) and
// how long after a repair a detection still counts (a probe in flight when
// the farm was repaired may still report the fault).
type Truth struct {
	Episodes []Episode
	Owner    map[string]Scenario
	Grace    time.Duration
	// Stalls are the times the lab's own process was not scheduled for at
	// least StallMin; Timeout is the probes' timeout. An incident the
	// ground truth does not allow, whose first failures fall within
	// Timeout+1s after such a stall began, is charged to the host (every
	// region froze at once, as no real fleet can), not counted false.
	Stalls   []Stall
	StallMin time.Duration
	Timeout  time.Duration
}

// Stall is a stretch during which the lab's process was not scheduled: the
// agents of every region and the farm froze together.
type Stall struct {
	Start  time.Time
	Length time.Duration
}

// Row is one scenario's outcome.
type Row struct {
	Scenario Scenario
	Runs     int // episodes played (windows excluded)
	// MustDetect counts Detect episodes, MayDetect those where an incident
	// is allowed (Detect and AtMostOne).
	MustDetect, MayDetect int
	// Detected counts episodes with an incident; Missed the Detect episodes
	// without one; False the incidents no episode allowed (including a
	// second incident for one fault).
	Detected, Missed, False int
	// Suppressed counts "suppressed" events (failures below quorum) in the
	// scenario's episodes; SuppressedRuns the episodes with at least one.
	Suppressed, SuppressedRuns int
	// MTTD: detected_at - the farm's flip. Verdict: detected_at - the first
	// failed observation (the incident's started_at). MTTR: resolved_at -
	// the farm's repair.
	MTTD, Verdict, MTTR []time.Duration
	// Unresolved: detected incidents still open when the lab ended.
	// EarlyResolved: resolved while the fault still lasted.
	Unresolved, EarlyResolved int
	UnresolvedIncidents       []cluster.Incident
	Reasons                   map[string]int // failure reasons of the detecting incidents
	FalseIncidents            []cluster.Incident
	// Stalled counts incidents the ground truth does not allow that a host
	// stall explains: not the product's doing, not counted in False.
	Stalled          int
	StalledIncidents []cluster.Incident
}

// Evaluate matches the fleet's incidents and events to the ground truth.
// An incident belongs to the episode of its target whose window [Start,
// End+Grace] holds its detected_at, else to a whole-fleet episode whose
// window holds it, else it is false and charged to its target's owner.
func Evaluate(t Truth, incidents []cluster.Incident, events []cluster.Event) []Row {
	rows := map[Scenario]*Row{}
	row := func(s Scenario) *Row {
		if r := rows[s]; r != nil {
			return r
		}
		r := &Row{Scenario: s, Reasons: map[string]int{}}
		rows[s] = r
		return r
	}
	for _, e := range t.Episodes {
		r := row(e.Scenario)
		if !e.Watch {
			r.Runs++
		}
		if e.Expect == Detect {
			r.MustDetect++
		}
		if e.Expect == Detect || e.Expect == AtMostOne {
			r.MayDetect++
		}
	}
	for _, s := range t.Owner {
		if s == NoFault {
			row(NoFault).Runs++
		}
	}

	ins := append([]cluster.Incident(nil), incidents...)
	sort.Slice(ins, func(i, j int) bool { return ins[i].DetectedAt.Before(ins[j].DetectedAt) })
	detection := make([]*cluster.Incident, len(t.Episodes))
	for i := range ins {
		in := &ins[i]
		k := t.find(in.Target, in.DetectedAt)
		var r *Row
		switch {
		case k < 0:
			r = row(t.owner(in.Target))
		case t.Episodes[k].Expect == NoIncident || detection[k] != nil:
			r = row(t.Episodes[k].Scenario)
		default:
			detection[k] = in
			continue
		}
		if t.stalled(in) {
			r.Stalled++
			r.StalledIncidents = append(r.StalledIncidents, *in)
			continue
		}
		r.False++
		r.FalseIncidents = append(r.FalseIncidents, *in)
	}
	for k, e := range t.Episodes {
		r := row(e.Scenario)
		in := detection[k]
		if in == nil {
			if e.Expect == Detect {
				r.Missed++
			}
			continue
		}
		r.Detected++
		r.MTTD = append(r.MTTD, in.DetectedAt.Sub(e.Start))
		r.Verdict = append(r.Verdict, in.TimeToDetect())
		r.Reasons[in.Reason]++
		switch {
		case in.ResolvedAt.IsZero():
			r.Unresolved++
			r.UnresolvedIncidents = append(r.UnresolvedIncidents, *in)
		case in.ResolvedAt.Before(e.End):
			r.EarlyResolved++
		default:
			r.MTTR = append(r.MTTR, in.ResolvedAt.Sub(e.End))
		}
	}

	suppressedIn := make([]bool, len(t.Episodes))
	for _, ev := range events {
		if ev.Kind != "suppressed" {
			continue
		}
		k := t.find(ev.Target, ev.At)
		if k < 0 {
			row(t.owner(ev.Target)).Suppressed++
			continue
		}
		row(t.Episodes[k].Scenario).Suppressed++
		suppressedIn[k] = true
	}
	for k, e := range t.Episodes {
		if suppressedIn[k] && !e.Watch {
			row(e.Scenario).SuppressedRuns++
		}
	}

	out := make([]Row, 0, len(rows))
	for _, s := range scenarioOrder {
		if r := rows[s]; r != nil {
			out = append(out, *r)
			delete(rows, s)
		}
	}
	for _, r := range rows { // scenarios outside the known order (none today)
		out = append(out, *r)
	}
	return out
}

// find returns the index of the episode an incident or event of target at
// time at belongs to: the target's own episode first, then a whole-fleet
// one; -1 when none.
func (t Truth) find(target string, at time.Time) int {
	fleet := -1
	for k, e := range t.Episodes {
		if at.Before(e.Start) || at.After(e.End.Add(t.Grace)) {
			continue
		}
		if e.Target == target {
			return k
		}
		if e.Target == "" && fleet < 0 {
			fleet = k
		}
	}
	return fleet
}

// stalled reports whether a host stall of at least StallMin overlaps the
// incident's making: from Timeout+1s before its first failed observation (a
// probe in flight across the stall) to its detection.
func (t Truth) stalled(in *cluster.Incident) bool {
	from := in.StartedAt.Add(-t.Timeout - time.Second)
	for _, s := range t.Stalls {
		if s.Length >= t.StallMin && s.Start.Before(in.DetectedAt) && !s.Start.Add(s.Length).Before(from) {
			return true
		}
	}
	return false
}

func (t Truth) owner(target string) Scenario {
	if s, ok := t.Owner[target]; ok {
		return s
	}
	return NoFault
}

// Percentile is the nearest-rank p-th percentile (0 < p <= 100) of ds, or
// -1 when ds is empty.
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return -1
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	rank := min(max(int(math.Ceil(p/100*float64(len(s)))), 1), len(s))
	return s[rank-1]
}

// Max is the largest of ds, or -1 when ds is empty.
func Max(ds []time.Duration) time.Duration { return Percentile(ds, 100) }
