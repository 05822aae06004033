// Package quorum turns the regions' observations of one target into a
// verdict: up, down or unknown.
//
// A target is down when at least the quorum of regions, each with a fresh
// result from its current assignees, report it failing. Regions without a
// fresh result and isolated regions have no vote. Everything is a function of
// plain values: time is a parameter (the caller's local clock), observations
// are ordered by the sender's (boot, sequence) counters and never by a wall
// clock, so clock skew between agents changes nothing.
//
// Hysteresis on recovery is the caller's job: it tracks verdicts over time.
package quorum

import (
	"slices"
	"strconv"
	"strings"
	"time"
)

// Observation is one agent's view of one target, as received.
type Observation struct {
	Region  string
	AgentID string
	Boot    uint64 // agent boot id; a restarted agent has a new, larger one
	Seq     uint64 // per-agent sequence number, increasing within a boot
	// Failing is the agent's view after its consecutive-failure threshold.
	Failing bool
	// Received is the LOCAL receipt time, never the sender's clock.
	Received time.Time
	// Interval and Timeout are the target's when observed; they size the
	// freshness window.
	Interval time.Duration
	Timeout  time.Duration
}

// newer reports whether a supersedes b: a higher (Boot, Seq), never a later
// wall clock. The same (Boot, Seq) twice is one observation delivered twice
// (a retransmission or a relay); the earliest receipt is kept so that relays
// of a dead agent's last message cannot keep it looking fresh, and on a full
// tie "failing" is kept so that the answer does not depend on input order.
func newer(a, b *Observation) bool {
	if a.Boot != b.Boot {
		return a.Boot > b.Boot
	}
	if a.Seq != b.Seq {
		return a.Seq > b.Seq
	}
	if !a.Received.Equal(b.Received) {
		return a.Received.Before(b.Received)
	}
	return a.Failing && !b.Failing
}

// Latest returns each agent's latest observation by (Boot, Seq): a restarted
// agent's first observation (new, larger Boot) wins over its previous life's
// higher Seq, and an older Seq arriving late does not override a newer one.
func Latest(obs []Observation) map[string]Observation {
	out := make(map[string]Observation, len(obs))
	for _, o := range obs {
		if cur, ok := out[o.AgentID]; !ok || newer(&o, &cur) {
			out[o.AgentID] = o
		}
	}
	return out
}

// DefaultSlack is added to 2*Interval + Timeout for the default freshness
// window. It covers gossip propagation (a few gossip rounds of 200 ms) and
// scheduling jitter on a busy host, so that a healthy agent's result does not
// go stale between two probes.
const DefaultSlack = 2 * time.Second

// DefaultFreshFor is the default freshness window: an observation stays
// fresh for two intervals plus one timeout plus DefaultSlack, so one lost or
// late result does not cost a region its vote, but an agent that stopped
// probing loses it within about two intervals.
func DefaultFreshFor(o Observation) time.Duration {
	return 2*o.Interval + o.Timeout + DefaultSlack
}

// Policy is what the evaluation needs to know about the target and cluster.
type Policy struct {
	// MinRegions is the quorum; capped at len(Regions), at least 1.
	MinRegions int
	// Regions that probe the target (the configured ones, including a
	// region that currently has no agent: it is a region without a vote).
	// When empty, the keys of Assignees are used.
	Regions []string
	// Assignees maps region -> current assignee agent IDs; only their
	// observations vote, so a previous owner's last word after a
	// reassignment is ignored.
	Assignees map[string][]string
	// Isolated regions do not vote.
	Isolated map[string]bool
	// FreshFor is the freshness window of an observation; nil means
	// DefaultFreshFor. Its result is used as is.
	FreshFor func(o Observation) time.Duration
}

// State is a target's verdict. The zero value is Unknown, so a verdict
// nobody computed never reads as up.
type State int

const (
	Unknown State = iota // too few regions reporting to decide
	Up
	Down
)

func (s State) String() string {
	switch s {
	case Unknown:
		return "unknown"
	case Up:
		return "up"
	case Down:
		return "down"
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

// Verdict is the outcome of Evaluate. Region lists are sorted.
type Verdict struct {
	State     State
	Failing   []string // regions voting failing
	Passing   []string // regions voting up
	Reporting int      // regions with a fresh vote: len(Failing) + len(Passing)
	Stale     []string // non-isolated regions with no fresh result from a current assignee
	Isolated  []string // regions of the target that are isolated: no vote
	Needed    int      // effective quorum
}

// Reason explains the verdict for humans, e.g. "2/3 regions failing
// (eu-west, us-east) >= quorum 2". Built on demand: a leader evaluates
// every target it leads every second, and the sentence is read only by the
// API and the logs (10k strings a second at 10k targets, and 60 bytes a
// target held).
func (v Verdict) Reason() string {
	return reason(v, len(v.Failing)+len(v.Passing)+len(v.Stale)+len(v.Isolated))
}

// Evaluate computes the verdict on one target's observations at local time
// now. The rules, in order:
//
//   - an observation votes only if it is its agent's latest (see Latest),
//     comes from a current assignee of its region, and is fresh: received at
//     most FreshFor(o) before now;
//   - a region votes failing when a strict majority of its fresh assignees
//     say failing. A tie votes passing: with two replicas, one replica's
//     local problem (its host, its NIC) must not make the region vote down;
//     a real outage is seen by both;
//   - a region without a fresh result, or isolated, has no vote;
//   - Needed = min(MinRegions, number of regions), at least 1;
//   - Down if failing regions >= Needed; else Up if reporting regions >=
//     Needed (enough regions to decide); else Unknown.
func Evaluate(obs []Observation, p Policy, now time.Time) Verdict {
	fresh := p.FreshFor
	if fresh == nil {
		fresh = DefaultFreshFor
	}
	regions := regionsOf(p)
	v := Verdict{Needed: max(1, min(p.MinRegions, len(regions)))}
	for _, region := range regions {
		if p.Isolated[region] {
			v.Isolated = append(v.Isolated, region)
			continue
		}
		voters, failing := 0, 0
		assignees := p.Assignees[region]
		for i, id := range assignees {
			if slices.Contains(assignees[:i], id) {
				continue // listed twice by mistake: still one vote
			}
			o, ok := latestOf(obs, id)
			if !ok || o.Region != region || now.Sub(o.Received) > fresh(*o) {
				continue
			}
			voters++
			if o.Failing {
				failing++
			}
		}
		switch {
		case voters == 0:
			v.Stale = append(v.Stale, region)
		case 2*failing > voters:
			v.Failing = append(v.Failing, region)
		default:
			v.Passing = append(v.Passing, region)
		}
	}
	v.Reporting = len(v.Failing) + len(v.Passing)
	switch {
	case len(v.Failing) >= v.Needed:
		v.State = Down
	case v.Reporting >= v.Needed:
		v.State = Up
	default:
		v.State = Unknown
	}
	return v
}

// latestOf is Latest for one agent without building a map: a target has a
// handful of observations, so a scan is cheaper than hashing.
func latestOf(obs []Observation, agentID string) (*Observation, bool) {
	var best *Observation
	for i := range obs {
		if o := &obs[i]; o.AgentID == agentID && (best == nil || newer(o, best)) {
			best = o
		}
	}
	return best, best != nil
}

// regionsOf returns the policy's regions sorted and unique, copying only
// when the caller's slice is not already so.
func regionsOf(p Policy) []string {
	rs := p.Regions
	if len(rs) == 0 {
		for r := range p.Assignees {
			rs = append(rs, r)
		}
	} else if sortedUnique(rs) {
		return rs
	} else {
		rs = slices.Clone(rs)
	}
	slices.Sort(rs)
	return slices.Compact(rs)
}

func sortedUnique(rs []string) bool {
	for i := 1; i < len(rs); i++ {
		if rs[i-1] >= rs[i] {
			return false
		}
	}
	return true
}

// reason explains the verdict in one line, e.g.
//
//	2/3 regions failing (eu-west, us-east) >= quorum 2
//	1/3 regions failing (eu-west) < quorum 2, 3 reporting: up
//	only 1 region reporting, quorum 2: unknown; stale: us-east; isolated: ap-south
func reason(v Verdict, total int) string {
	var b strings.Builder
	b.Grow(96)
	switch v.State {
	case Down:
		b.WriteString(strconv.Itoa(len(v.Failing)) + "/" + strconv.Itoa(total) + " regions failing (")
		b.WriteString(strings.Join(v.Failing, ", "))
		b.WriteString(") >= quorum " + strconv.Itoa(v.Needed))
	case Up:
		b.WriteString(strconv.Itoa(len(v.Failing)) + "/" + strconv.Itoa(total) + " regions failing")
		if len(v.Failing) > 0 {
			b.WriteString(" (" + strings.Join(v.Failing, ", ") + ")")
		}
		b.WriteString(" < quorum " + strconv.Itoa(v.Needed) + ", " + strconv.Itoa(v.Reporting) + " reporting: up")
	default:
		switch {
		case total == 0:
			b.WriteString("no region probes the target: unknown")
		case v.Reporting == 1:
			b.WriteString("only 1 region reporting, quorum " + strconv.Itoa(v.Needed) + ": unknown")
		default:
			b.WriteString("only " + strconv.Itoa(v.Reporting) + " regions reporting, quorum " + strconv.Itoa(v.Needed) + ": unknown")
		}
	}
	if len(v.Stale) > 0 {
		b.WriteString("; stale: " + strings.Join(v.Stale, ", "))
	}
	if len(v.Isolated) > 0 {
		b.WriteString("; isolated: " + strings.Join(v.Isolated, ", "))
	}
	return b.String()
}

// Isolation thresholds; see IsIsolated.
const (
	// IsolationMinTargets: below this many targets, "most of them fail" is
	// too small a sample to blame the agent's own network.
	IsolationMinTargets = 3
	// IsolationOthersUpPercent: the share of the agent's failing targets
	// that other regions must see up. Below it, the failures look real (a
	// shared dependency is down) and the agent keeps its vote.
	IsolationOthersUpPercent = 80
)

// IsIsolated reports whether an agent should consider its own region cut
// off and withdraw its votes. total is the number of targets it probes,
// myFailing how many of them it sees failing, and othersSeeUp how many of
// those failing targets other regions see up. It is isolated when total >=
// IsolationMinTargets, more than half of its targets fail (myFailing*2 >
// total), and other regions see at least IsolationOthersUpPercent of those
// failing targets up.
func IsIsolated(myFailing, othersSeeUp, total int) bool {
	return total >= IsolationMinTargets &&
		2*myFailing > total &&
		100*othersSeeUp >= IsolationOthersUpPercent*myFailing
}
