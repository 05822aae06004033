package scale

import (
	"math"
	"time"

	"github.com/vantage-probe/vantage/cluster"
)

// CostModel predicts what one agent of a targeted fleet (TargetedFrom and
// DigestFrom reached) sends, and the heap it holds, from the fleet's
// shape. Its parts follow the design (cluster/holders.go, digest.go,
// gossip.go); its message sizes are the cluster's encodings of typical
// messages (a result 63 bytes, a heartbeat 29, a verdict 63, an incident
// 106, a vouch 21, with the sim's names) plus memberlist's framing; what
// the design cannot say (the repairs a loaded machine causes, memberlist's
// own overhead, the heap per target) is calibrated on the measured runs
// and stated as such. TestModelAgreesWithMeasuredFleets checks it against
// those runs.
type CostModel struct {
	Agents, Targets, Regions int
	// ChangePerMinute is the share of targets changing state per minute,
	// each change seen by every region (0.01: 1%).
	ChangePerMinute float64
	Standbys        int           // default 2
	Heartbeat       time.Duration // default 5s
	PushPull        time.Duration // default 20s, before memberlist scales it with the fleet
	// RepairBytes is what one agent sends per push/pull for buckets that
	// differ: about 0 on an idle machine, more where agents fall behind.
	RepairBytes float64
}

// Cost is the model's prediction for one agent: bytes per second by part,
// and heap.
type Cost struct {
	Heartbeats, Vouches, Observations, Verdicts, Memberlist float64 // UDP, B/s
	PushPull, Repairs                                       float64 // TCP, B/s
	// ClusterHeap is what the simulation measures per agent: the cluster's
	// tables (and the harness's bookkeeping). AgentHeap adds what a real
	// agent keeps outside the cluster per configured target, probed or not
	// (its state, the parsed target, its label string, prober and
	// state-file record; BenchmarkLiveHeap10kState's profile), and per
	// target it probes (the history), and Heap is the sum.
	ClusterHeap, AgentHeap, Heap float64 // bytes
}

// UDP, TCP and Total are the parts summed.
func (c Cost) UDP() float64 {
	return c.Heartbeats + c.Vouches + c.Observations + c.Verdicts + c.Memberlist
}
func (c Cost) TCP() float64   { return c.PushPull + c.Repairs }
func (c Cost) Total() float64 { return c.UDP() + c.TCP() }

// Sizes on the wire, bytes: the encoding plus memberlist's framing (a
// message type byte, a compound header when packed with others, a label).
const (
	modelResult    = 63 + 4
	modelHeartbeat = 29 + 4 + 8 // and a few doubts in a fleet that moves
	modelVerdict   = 63 + 4
	modelIncident  = 106 + 4
	modelVouch     = 21 + 4
	modelConfirm   = 40 // a confirmation request or answer
	// A member's entry in memberlist's push/pull state: name, address,
	// port, our meta (protocol, region, id, version, targets hash, boot),
	// incarnation, state and versions, msgpack-encoded.
	modelNodeState = 110
	modelPingAck   = 60 // a probe and its ack, per ProbeInterval, both ways
	modelDigestHdr = 40
)

// Calibrated on the measured runs (TestModelAgreesWithMeasuredFleets): bytes of heap
// per target every agent holds (config, assignment, the target's verdict
// and bookkeeping, the harness's own per-target records), per
// observation held, and per member of the fleet (its peer state: heard,
// vouches, doubts, memberlist's node, queues). Fitted to the 10-, 20- and
// 50-agent runs at 10,000 targets; the per-member term comes from the
// untargeted runs (a converged agent's heap grew from 2.3 to 6.4 MB from
// 10 to 50 agents at the same targets), since targets were not varied.
// The first calibration (600 B a target, 300 an observation, on the
// 10-agent run alone) put 50 agents at 6.9 MiB against 13.6 MB measured.
const (
	modelClusterHeapPerTarget = 820
	modelHeapPerObservation   = 190
	modelHeapPerMember        = 100e3
	// Measured, not calibrated: the agent package's per-target records
	// (0.14 KB state, 0.2 KB target, 0.06 KB labels, 0.03 KB prober, 0.08
	// KB state-file record), and the history a target gets on its first
	// result here (0.26 KB: 60 points), which only the targets an agent
	// probes have.
	modelAgentHeapPerTarget = 490
	modelHistoryPerProbed   = 256
)

func (m CostModel) withDefaults() CostModel {
	if m.Standbys <= 0 {
		m.Standbys = 2
	}
	if m.Heartbeat <= 0 {
		m.Heartbeat = 5 * time.Second
	}
	if m.PushPull <= 0 {
		m.PushPull = 20 * time.Second
	}
	return m
}

// retransmits is how often memberlist sends a queued broadcast (each
// message is also queued, besides the direct fan-out): RetransmitMult (4)
// x ceil(log10(N+1)).
func retransmits(n int) float64 { return 4 * math.Ceil(math.Log10(float64(n)+1)) }

// pushPullEvery is memberlist's push/pull interval for n members: it grows
// by one interval per doubling past 32 members.
func pushPullEvery(d time.Duration, n int) time.Duration {
	if n <= 32 {
		return d
	}
	return time.Duration(math.Ceil(math.Log2(float64(n))-5)+1) * d
}

// Predict is the cost of one agent.
func (m CostModel) Predict() Cost {
	m = m.withDefaults()
	n, t, r := float64(m.Agents), float64(m.Targets), float64(m.Regions)
	holders := float64(1 + m.Standbys)
	hb := m.Heartbeat.Seconds()
	fanout := n - 1 + retransmits(m.Agents) // direct to every member, and queued
	changes := m.ChangePerMinute * t / 60   // fleet-wide state changes per second
	var c Cost
	c.Heartbeats = fanout * modelHeartbeat / hb
	// A prober vouches every heartbeat to each holder of its targets:
	// with T R / N targets over N leaders, nearly every member.
	c.Vouches = math.Min(n-1, t*r/n*holders) * modelVouch / hb
	// Each change: every region's owner sends its result to the target's
	// holders, half the changes are failures, whose owners ask the other
	// regions to confirm (a request and an answer each) and send the
	// result again with the confirmation's time.
	perChangeObs := r * holders * modelResult * 1.5
	perChangeConfirm := 0.5 * r * (r - 1) * 2 * modelConfirm
	c.Observations = changes * (perChangeObs + perChangeConfirm) / n
	// The leader publishes a verdict whenever its failing (or passing)
	// regions change, so a change every region sees arrives as about one
	// verdict per region, and the incident opens or resolves (about two
	// incident messages); each goes to every member. The leaders are
	// spread evenly, so an agent sends 1/N of them.
	c.Verdicts = changes * (r*modelVerdict + 2*modelIncident) * fanout / n
	c.Memberlist = modelPingAck / 2 // ProbeInterval 2 s
	// Push/pull: an agent starts one each interval and answers about one:
	// memberlist's node states plus our digest, both ways.
	entries := t + (holders+1)*t*r/n // verdicts, and the observations it holds
	pp := n*modelNodeState + modelDigestHdr + 4*float64(cluster.DigestBuckets(int(entries)))
	every := pushPullEvery(m.PushPull, m.Agents).Seconds()
	c.PushPull = 2 * pp / every
	c.Repairs = 2 * m.RepairBytes / every
	c.ClusterHeap = t*modelClusterHeapPerTarget + (holders+1)*t*r/n*modelHeapPerObservation + n*modelHeapPerMember
	// Each target is probed by one agent per region: T R / N per agent.
	c.AgentHeap = t*modelAgentHeapPerTarget + math.Min(t, t*r/n)*modelHistoryPerProbed
	c.Heap = c.ClusterHeap + c.AgentHeap
	return c
}
