package cluster

import (
	"context"
	"log/slog"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/hashicorp/memberlist"
)

// Local is the agent as the cluster sees it.
type Local interface {
	// Assigned tells the agent which targets it must probe now (sorted). It
	// is called from the cluster's own goroutine, never memberlist's.
	Assigned(targets []string)
	// Confirm probes target now (or reuses a result a few seconds old, or
	// joins a probe in flight) and returns this agent's observation. ok is
	// false when the agent does not know the target or is at its cap.
	Confirm(ctx context.Context, target string) (obs Observation, ok bool)
}

// TargetSpec is what the cluster needs to know of a target.
type TargetSpec struct {
	Name       string
	Regions    []string // empty: every known region
	Interval   time.Duration
	Timeout    time.Duration
	MinRegions int
	// SLOObjective is the target's own objective; 0: [slo]'s.
	SLOObjective float64
}

// Config configures a Cluster. Zero timings take WAN-profile defaults
// (see applyDefaults for each one's why).
type Config struct {
	NodeName  string // memberlist node name; unique in the cluster
	AgentID   string // stable id used for assignment; default NodeName
	Region    string
	Version   string
	Bind      string // host:port
	Advertise string // host:port; empty: memberlist picks
	Join      []string
	Keys      [][]byte // gossip keys, primary first; empty: plaintext
	Label     string   // cluster label; peers with another label are refused

	GossipInterval time.Duration
	ProbeInterval  time.Duration
	ProbeTimeout   time.Duration
	SuspicionMult  int
	TCPTimeout     time.Duration
	RejoinInterval time.Duration
	PushPull       time.Duration

	ReplicasPerRegion int
	MinRegions        int // default quorum for targets without their own
	// SLOObjective and SLOWindow are [slo]'s: the objective of targets
	// without their own, and the window of every target's SLO figures.
	SLOObjective     float64
	SLOWindow        time.Duration
	ConfirmOnFailure bool
	// Grace is how long a former owner's observations still vote after a
	// reassignment and how long it keeps probing (make-before-break).
	Grace time.Duration
	// HeartbeatEvery is how often the agent tells the fleet its results hold.
	HeartbeatEvery time.Duration
	// EvalEvery is how often the leader re-evaluates verdicts even without news.
	EvalEvery time.Duration
	// LeaderDelay is how long after it may lead an agent waits before it
	// does (see leadership.go): the others drop the old leader when they
	// hear the new one, so this turns a hand-over's overlap into a gap.
	LeaderDelay time.Duration
	// TargetedFrom is the fleet size (live members) from which an
	// observation goes only to its target's holders, the leader and
	// Standbys successors, instead of to every member (holders.go).
	// Default 16; negative: never.
	TargetedFrom int
	// DigestFrom is the fleet size (live members) from which a periodic
	// push/pull carries a digest and only the entries that differ
	// (digest.go) instead of the whole table. Below it the whole table
	// also brings every probe's later latency to the agents that do not
	// probe the target, for their page's sparklines and latencies, at a
	// cost that is small in a small fleet (22-28 KB/s per agent at 10k
	// targets). Default TargetedFrom (a targeted fleet's agents do not
	// hold those results anyway); negative: never.
	DigestFrom int
	// Standbys is how many next-ranked agents after a target's leader
	// hold its observations in a targeted fleet, so that a successor has
	// fresh votes from every region when the leader dies. Default 2.
	Standbys int

	// skew shifts this agent's clock (tests: nothing may depend on it).
	skew time.Duration

	// Transport replaces memberlist's UDP/TCP transport (fault injection in tests).
	Transport memberlist.NodeAwareTransport

	InMaintenance func(target string, now time.Time) bool
	Logger        *slog.Logger
	Metrics       *metrics.Set
	// OnEvent, when set, receives one line per fleet-level event (incident
	// opened/resolved, suppressed failure, member joined/left): the demo's
	// narration and the agent's logs.
	OnEvent func(Event)
	// OnRemoteResult, when set, receives each observation from another
	// agent that brings news: a new result, or a later latency of an
	// unchanged one (push/pull), so the agent can draw the recent history
	// of targets it does not probe itself. It runs outside the cluster's
	// lock on the goroutine that received the news (memberlist's push/pull
	// goroutine among them), so it must return at once.
	OnRemoteResult func(Observation)
	// Restore is what the agent kept from before it last stopped (its
	// state directory): the fleet's incidents and when it first knew each
	// target. New folds it in before anything runs, so an incident that
	// was open continues (same ID) and SLO figures keep their start.
	Restore *Restore
}

// Restore is an agent's kept state; see Config.Restore.
type Restore struct {
	Incidents []Incident           // any order; the newest maxIncidents are kept in memory
	FirstSeen map[string]time.Time // target -> first known; only for configured targets
}

// Event is a fleet-level happening, for narration and logs.
type Event struct {
	At      time.Time
	Kind    string // incident_open, incident_resolved, suppressed, member_join, member_leave, isolated, reassigned
	Target  string
	Node    string
	Region  string
	Detail  string
	Elapsed time.Duration // time to detect for incident_open; duration for incident_resolved
	Reason  string        // incident_open: a failing region's probe reason (not_serving, json_mismatch...)
}

// DefaultPushPull is the push/pull (anti-entropy) interval when Config
// sets none: it repairs lost transitions within one interval or so.
const DefaultPushPull = 20 * time.Second

func (c *Config) applyDefaults() {
	if c.AgentID == "" {
		c.AgentID = c.NodeName
	}
	if c.GossipInterval == 0 {
		c.GossipInterval = 200 * time.Millisecond // results must cross regions in well under a second
	}
	if c.ProbeInterval == 0 {
		c.ProbeInterval = 2 * time.Second // WAN profile is 5s; 2s finds a dead agent faster, still far above inter-region RTT
	}
	if c.ProbeTimeout == 0 {
		c.ProbeTimeout = 1 * time.Second // well above any inter-region RTT (~300 ms worst case)
	}
	if c.SuspicionMult == 0 {
		c.SuspicionMult = 4 // fewer false deaths than LAN's 4 at our probe interval; WAN uses 6
	}
	if c.TCPTimeout == 0 {
		c.TCPTimeout = 5 * time.Second // a dead seed must not stall start-up (WAN default is 30s)
	}
	if c.RejoinInterval == 0 {
		c.RejoinInterval = 30 * time.Second // heals partitions longer than the dead-node reclaim time
	}
	if c.PushPull == 0 {
		c.PushPull = DefaultPushPull
	}
	if c.ReplicasPerRegion <= 0 {
		c.ReplicasPerRegion = 1
	}
	if c.MinRegions <= 0 {
		c.MinRegions = 2
	}
	if c.SLOObjective <= 0 || c.SLOObjective >= 1 {
		c.SLOObjective = 0.999
	}
	if c.SLOWindow <= 0 {
		c.SLOWindow = 28 * 24 * time.Hour
	}
	if c.Grace == 0 {
		c.Grace = 45 * time.Second
	}
	if c.HeartbeatEvery == 0 {
		c.HeartbeatEvery = 5 * time.Second
	}
	if c.EvalEvery == 0 {
		c.EvalEvery = time.Second
	}
	if c.LeaderDelay == 0 {
		c.LeaderDelay = time.Second // well above a heartbeat's flight between continents
	}
	if c.TargetedFrom == 0 {
		// Below this, every agent holding every region's results costs
		// little (a few MB at 10k targets) and every agent's page shows
		// them all; above it, that grows with the fleet's targets on
		// every agent.
		c.TargetedFrom = 16
	}
	if c.DigestFrom == 0 {
		c.DigestFrom = c.TargetedFrom
	}
	if c.Standbys <= 0 {
		c.Standbys = 2 // the leader and a successor may die together
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Metrics == nil {
		c.Metrics = metrics.NewSet()
	}
	if c.InMaintenance == nil {
		c.InMaintenance = func(string, time.Time) bool { return false }
	}
}
