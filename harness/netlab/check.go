package netlab

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// Invariant numbers the promises the lab checks; see the package doc.
type Invariant int

const (
	// OneExporter: at most one vantage_target_up series per target across
	// the fleet in each scrape round.
	OneExporter Invariant = 1 + iota
	// AssigneesOnly: once the grace after a reassignment is over, each
	// (target, region) is probed by its assignees only, as often as
	// configured: replicas_per_region probes per interval.
	AssigneesOnly
	// NoFalseIncident: no incident for a target that no all-region outage
	// explains (a fault one region saw, or no fault), and no second one for
	// one outage.
	NoFalseIncident
	// OutageDetected: every outage all regions see opens an incident.
	OutageDetected
	// HealthyAgents: /healthz answers 200 for every running agent, no agent
	// exits by itself, and a bad config pushed with SIGHUP leaves the agent
	// on its last good config (reload reported failed, targets still
	// probed).
	HealthyAgents
	numInvariants = int(HealthyAgents)
)

// Short names for the report's columns.
func (i Invariant) String() string {
	switch i {
	case OneExporter:
		return "one-exporter"
	case AssigneesOnly:
		return "assignees-only"
	case NoFalseIncident:
		return "no-false-incident"
	case OutageDetected:
		return "outage-detected"
	case HealthyAgents:
		return "healthy"
	}
	return fmt.Sprintf("invariant(%d)", int(i))
}

// Violation is one broken promise: when it was first and last seen, the
// target and agents involved, and what was seen.
type Violation struct {
	Inv      Invariant
	At       time.Time
	Until    time.Time // last seen; equal to At for a single observation
	Rounds   int       // scrape rounds it was seen in (OneExporter, HealthyAgents)
	Target   string
	Agents   []string
	Detail   string
	Scenario string // the scenario being played when it began
}

func (v Violation) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "#%d %s at %s", int(v.Inv), v.Inv, v.At.Format("15:04:05.000"))
	if v.Until.After(v.At) {
		fmt.Fprintf(&b, "-%s", v.Until.Format("15:04:05.000"))
	}
	if v.Rounds > 1 {
		fmt.Fprintf(&b, " (%d rounds)", v.Rounds)
	}
	if v.Scenario != "" {
		fmt.Fprintf(&b, " [%s]", v.Scenario)
	}
	if v.Target != "" {
		fmt.Fprintf(&b, " target %s", v.Target)
	}
	if len(v.Agents) > 0 {
		fmt.Fprintf(&b, " agents %s", strings.Join(v.Agents, ","))
	}
	if v.Detail != "" {
		fmt.Fprintf(&b, ": %s", v.Detail)
	}
	return b.String()
}

// Hit is one request the farm received: a probe, by the agent whose
// address sent it.
type Hit struct {
	At     time.Time
	Target string
	Agent  string
	Region string
}

// Span is a time interval [From, To].
type Span struct{ From, To time.Time }

// Disturbance is a time in which the assignment may legitimately be in
// flux for one (target, region), or for all of them ("" matches any): a
// fault, an agent down or stopped, a config push, a farm outage (which
// brings confirmations), a change in some agent's view of the assignment.
type Disturbance struct {
	Target, Region string
	Span
}

// ProbePlan is what AssigneesOnly is judged against.
type ProbePlan struct {
	Interval time.Duration
	// Grace is how long after a disturbance ends the fleet may still probe
	// out of plan: a former owner keeps probing 2 intervals + timeout
	// (make-before-break), plus a few seconds of slack.
	Grace    time.Duration
	Regions  []string
	Replicas int
	From, To time.Time
	Targets  []string // every target configured at any time
	// Configured reports whether target is in the fleet's config at t.
	Configured func(target string, t time.Time) bool
	Disturbed  []Disturbance
}

// ProbeCheck is the outcome of CheckProbes.
type ProbeCheck struct {
	Violations []Violation
	// Judged is how many (target, region, interval) windows were judged;
	// Probes is how many probes of configured targets fell in them.
	Judged, Probes int
}

// CheckProbes judges the farm's per-source counts. Time is cut into
// interval-long windows aligned on the Unix epoch; a window of (target,
// region) is judged when no disturbance of it overlaps [start - Grace,
// end). Consecutive judged windows make a run, and each run of each
// (target, region) is one verdict: more than Replicas distinct agents of
// the region probing the target in one window is double probing (a former
// owner still at it); otherwise the run's count must be Replicas per
// window, give or take one (a probe scheduled near a window's edge can land
// on either side of it), judged over runs of three windows or more; any
// probe of a target not configured is a probe of a removed target.
func CheckProbes(p ProbePlan, hits []Hit) ProbeCheck {
	var out ProbeCheck
	iv := p.Interval
	first := p.From.Truncate(iv)
	if first.Before(p.From) {
		first = first.Add(iv)
	}
	hits = slices.Clone(hits)
	sort.SliceStable(hits, func(i, j int) bool { return hits[i].At.Before(hits[j].At) })
	type key struct{ target, region string }
	byKey := map[key][]Hit{}
	for _, h := range hits {
		if h.At.Before(p.From) || !h.At.Before(p.To) {
			continue
		}
		k := key{h.Target, h.Region}
		byKey[k] = append(byKey[k], h)
	}
	disturbed := func(target, region string, s, e time.Time) bool {
		for _, d := range p.Disturbed {
			if (d.Target == "" || d.Target == target) && (d.Region == "" || d.Region == region) &&
				d.From.Before(e) && d.To.After(s.Add(-p.Grace)) {
				return true
			}
		}
		return false
	}
	type runState struct {
		start, end     time.Time
		windows, count int
		agents         map[string]bool
		double         int // windows with more than Replicas agents
		removed        bool
		firstHit       time.Time
		lastHit        time.Time
	}
	for _, target := range p.Targets {
		for _, region := range p.Regions {
			hs := byKey[key{target, region}]
			i := 0
			var run runState
			closeRun := func() {
				defer func() { run = runState{} }()
				if run.windows == 0 {
					return
				}
				v := Violation{Inv: AssigneesOnly, At: run.start, Until: run.end, Target: target, Agents: sortedSet(run.agents)}
				want := run.windows * p.Replicas
				switch {
				case run.removed && run.count > 0:
					v.At, v.Until = run.firstHit, run.lastHit
					v.Detail = fmt.Sprintf("%d probes from %s of a target removed from the config, in %d intervals", run.count, region, run.windows)
				case run.removed:
					return
				case run.double > 0:
					v.Detail = fmt.Sprintf("in %d of %d intervals more than %d agent of %s probed it: %d probes, want %d",
						run.double, run.windows, p.Replicas, region, run.count, want)
				case run.windows >= 3 && run.count > want+1:
					v.Detail = fmt.Sprintf("excess probes from %s: %d in %d intervals, want %d (±1)", region, run.count, run.windows, want)
				case run.windows >= 3 && run.count < want-1:
					v.Detail = fmt.Sprintf("too few probes from %s: %d in %d intervals, want %d (±1)", region, run.count, run.windows, want)
				default:
					return
				}
				out.Violations = append(out.Violations, v)
			}
			for s := first; !s.Add(iv).After(p.To); s = s.Add(iv) {
				e := s.Add(iv)
				var in []Hit
				for i < len(hs) && hs[i].At.Before(e) {
					if !hs[i].At.Before(s) {
						in = append(in, hs[i])
					}
					i++
				}
				configured := p.Configured == nil || p.Configured(target, s.Add(-p.Grace)) && p.Configured(target, e)
				removed := p.Configured != nil && !p.Configured(target, s.Add(-p.Grace)) && !p.Configured(target, e)
				if disturbed(target, region, s, e) || (!configured && !removed) || (run.windows > 0 && run.removed != removed) {
					closeRun()
					if disturbed(target, region, s, e) || (!configured && !removed) {
						continue
					}
				}
				agents := map[string]bool{}
				for _, h := range in {
					agents[h.Agent] = true
				}
				if run.windows == 0 {
					run.start, run.agents, run.removed = s, map[string]bool{}, removed
				}
				run.end = e
				run.windows++
				run.count += len(in)
				for a := range agents {
					run.agents[a] = true
				}
				if len(in) > 0 {
					if run.firstHit.IsZero() {
						run.firstHit = in[0].At
					}
					run.lastHit = in[len(in)-1].At
				}
				if !removed {
					out.Judged++
					out.Probes += len(in)
					if len(agents) > p.Replicas {
						run.double++
					}
				}
			}
			closeRun()
		}
	}
	return out
}

// Outage is an outage the farm served to every region (500 for all).
type Outage struct {
	Target   string
	On, Off  time.Time
	Scenario string
	// Detected is set by CheckIncidents: the incident's detected_at minus
	// On; zero when missed.
	Detected time.Duration
	Incident string
}

// Incident is what the agents' /api/v1/incidents say, merged by ID.
type Incident struct {
	ID         string    `json:"id"`
	Target     string    `json:"target"`
	StartedAt  time.Time `json:"started_at"`
	DetectedAt time.Time `json:"detected_at"`
	ResolvedAt time.Time `json:"resolved_at"`
	Regions    []string  `json:"regions"`
	Leader     string    `json:"leader"`
}

// CheckIncidents matches incidents to outages: an incident explains an
// outage of its target when it was detected while the outage lasted or
// within slack after it ended. The first such incident is the outage's
// detection; an incident no outage explains, or a second one for the same
// outage, breaks NoFalseIncident; an outage without one breaks
// OutageDetected. outages are updated in place with their detection.
func CheckIncidents(outages []Outage, incidents []Incident, slack time.Duration) []Violation {
	ins := slices.Clone(incidents)
	sort.Slice(ins, func(i, j int) bool { return ins[i].DetectedAt.Before(ins[j].DetectedAt) })
	var out []Violation
	for _, in := range ins {
		explained := -1
		for i, o := range outages {
			if o.Target == in.Target && !in.DetectedAt.Before(o.On) && !in.DetectedAt.After(o.Off.Add(slack)) {
				explained = i
				break
			}
		}
		v := Violation{Inv: NoFalseIncident, At: in.DetectedAt, Target: in.Target, Agents: []string{in.Leader}}
		switch {
		case explained < 0:
			v.Detail = fmt.Sprintf("incident %s (started %s, regions %s) that no all-region outage explains",
				in.ID, in.StartedAt.Format("15:04:05.000"), strings.Join(in.Regions, ","))
			out = append(out, v)
		case outages[explained].Incident != "":
			v.Detail = fmt.Sprintf("incident %s is a second incident for the outage %s-%s (first: %s)", in.ID,
				outages[explained].On.Format("15:04:05"), outages[explained].Off.Format("15:04:05"), outages[explained].Incident)
			out = append(out, v)
		default:
			outages[explained].Incident = in.ID
			outages[explained].Detected = max(in.DetectedAt.Sub(outages[explained].On), time.Nanosecond)
		}
	}
	for _, o := range outages {
		if o.Incident == "" {
			out = append(out, Violation{Inv: OutageDetected, At: o.On, Until: o.Off, Target: o.Target,
				Detail: fmt.Sprintf("outage %s-%s (every region saw 500) opened no incident", o.On.Format("15:04:05"), o.Off.Format("15:04:05"))})
		}
	}
	return out
}

func sortedSet(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
