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
	// (its state, the parsed target, its prober and state-file record;
	// BenchmarkLiveHeap10kElsewhere's profile), and per target it probes
	// (the history, the series labels), and Heap is the sum. Live heap:
	// the heap in use is larger by the free room in its spans (1.3-2x in
	// the simulation's one process of many agents), and the memory limit
	// (internal/memlimit) bounds what a process holds on top of it.
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

// Heap terms, live bytes (HeapAlloc after a GC). The cluster's are
// calibrated on the measured runs (TestModelAgreesWithMeasuredFleets):
// per target every agent holds (its record, the verdict, the assignment,
// and the harness's own per-target records), per observation held, and
// per member of the fleet (its peer state: heard, vouches, doubts,
// memberlist's node, queues). Fitted, with the verdict in its 80-byte
// form (cluster/held.go), on 10 x 20k (targeted from 8), 50 x 10k and
// 100 x 2k: three points that vary the targets, the observations held
// and the members apart. The profile of the 10 x 20k run gives the
// observation its ~150 B (the record and its slot); 400 B a target and
// 5 KB a member then hold all three within 1.2x. The earlier fit (820 B
// a target, 190 an observation, 100 KB a member, on heap in use and
// runs at 10k targets only) put 100 agents x 2k at 11.7 MB against the
// 2.3 MB in use measured since: most of its per-member term was per
// target.
const (
	modelClusterHeapPerTarget = 400
	modelHeapPerObservation   = 150
	modelHeapPerMember        = 5e3
	// Measured, not calibrated (BenchmarkLiveHeap10kElsewhere's and
	// 100kElsewhere's profiles): the agent package's per-target records
	// for a target neither probed nor led here (0.21 KB the parsed target,
	// 0.14 KB its state, 0.08 KB its state-file record, 0.04 KB its map
	// slot, 0.04 KB its prober), and the history (0.26 KB: 60 points) and
	// series labels a target gets on its first result here, which only
	// the targets an agent probes have.
	modelAgentHeapPerTarget = 510
	modelHistoryPerProbed   = 256 + 64
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
