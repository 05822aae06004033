package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
	"unique"

	"github.com/hashicorp/memberlist"

	"github.com/vantage-probe/vantage/cluster/quorum"
	"github.com/vantage-probe/vantage/internal/mono"
)

// Wire format. Every message starts with a type byte and the wire version;
// the rest is uvarints and length-prefixed strings. It is hand-rolled (not
// msgpack or JSON) because a result is sent on every state change by every
// agent: a result is ~40-70 bytes, and decoding allocates only its strings.
const (
	wireVersion byte = 1

	msgResult      byte = 1  // one observation, gossiped and sent to the leader
	msgHeartbeat   byte = 2  // "everything I said up to seq S still holds"
	msgConfirmReq  byte = 3  // "probe this target now"
	msgConfirmResp byte = 4  // the answer to a confirm request
	msgIncident    byte = 5  // the leader's incident record, so a new leader continues it
	msgState       byte = 6  // a join's push/pull: the full table; a digest's answer: the differing part
	msgBye         byte = 7  // "I am leaving on purpose"
	msgVerdict     byte = 8  // a leader's verdict on one target
	msgDigest      byte = 9  // push/pull: bucket hashes of the table (digest.go)
	msgRepair      byte = 10 // the entries a peer's digest showed it lacks: a state, sent by TCP
	msgVouch       byte = 11 // a prober to one holder: "these of my observations still hold" (holders.go)
	msgResend      byte = 12 // a holder to a prober: "send me what you vouched for"
	msgKeys        byte = 13 // a digest's answer: "these are my entries in the buckets that differ; send what I lack"

	// maxMessage bounds any single gossip message we build or accept; the
	// broadcast queue never sees a larger one.
	maxMessage = 1200
	// maxString bounds every string field a peer can send us.
	maxString = 255
)

var (
	errShort    = errors.New("message truncated")
	errVersion  = errors.New("unsupported wire version")
	errTooLarge = errors.New("field too large")
)

type encoder struct{ b []byte }

func (e *encoder) byte(v byte)      { e.b = append(e.b, v) }
func (e *encoder) uvarint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) str(s string) {
	if len(s) > maxString {
		s = s[:maxString]
	}
	e.uvarint(uint64(len(s)))
	e.b = append(e.b, s...)
}
func (e *encoder) dur(d time.Duration) { // milliseconds: plenty for probe timings
	if d < 0 {
		d = 0
	}
	e.uvarint(uint64(d / time.Millisecond))
}
func (e *encoder) time(t time.Time) {
	if t.IsZero() {
		e.uvarint(0)
		return
	}
	e.uvarint(uint64(t.UnixMilli()))
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) < 1 {
		d.err = errShort
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}
func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errShort
		return 0
	}
	d.b = d.b[n:]
	return v
}
func (d *decoder) str() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > maxString {
		d.err = errTooLarge
		return ""
	}
	if uint64(len(d.b)) < n {
		d.err = errShort
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}
func (d *decoder) dur() time.Duration {
	v := d.uvarint()
	if v > math.MaxInt64/uint64(time.Millisecond) {
		d.err = errTooLarge
		return 0
	}
	return time.Duration(v) * time.Millisecond
}
func (d *decoder) time() time.Time {
	v := d.uvarint()
	if v == 0 || v > math.MaxInt64 {
		return time.Time{}
	}
	return time.UnixMilli(int64(v))
}

// maxRegions bounds a list of regions on the wire.
const maxRegions = 16

// regions writes a list of regions, at most maxRegions of it.
func (e *encoder) regions(rs []string) {
	n := min(len(rs), maxRegions)
	e.uvarint(uint64(n))
	for _, r := range rs[:n] {
		e.str(r)
	}
}

// regions reads a list written by encoder.regions; nil when empty.
func (d *decoder) regions() []string {
	n := d.uvarint()
	if n > maxRegions {
		d.err = errTooLarge
	}
	var out []string
	for i := uint64(0); i < n && d.err == nil; i++ {
		out = append(out, d.name())
	}
	return out
}

// name reads a string that repeats across messages (a region, an agent
// id) as one shared copy: every agent keeps a verdict per target and an
// observation per (target, region), and a copy of the same few names in
// each was a tenth of an agent's heap at 100k targets.
func (d *decoder) name() string {
	s := d.str()
	if d.err != nil || s == "" {
		return s
	}
	return unique.Make(s).Value()
}

// header checks the type and version bytes.
func (d *decoder) header(want byte) {
	if t := d.byte(); d.err == nil && t != want {
		d.err = fmt.Errorf("message type %d, want %d", t, want)
	}
	if v := d.byte(); d.err == nil && v != wireVersion {
		d.err = fmt.Errorf("%w %d", errVersion, v)
	}
}

// Observation is one agent's latest view of one target, as shared over
// gossip. It is what the quorum votes on.
type Observation struct {
	Target  string
	AgentID string
	Region  string
	Boot    uint64 // the agent's boot id (start time in ns): a restart is newer
	Seq     uint64 // per-agent, per-boot sequence number
	OK      bool   // the last probe succeeded
	// Failing is this agent's view after its consecutive-failure threshold
	// and recovery hysteresis: the region's vote.
	Failing  bool
	Isolated bool // the agent believes its own region is cut off
	Reason   string
	// Latency is the last probe's duration. The observation's fixed layout
	// carries it in milliseconds; result messages and push/pull add it in
	// microseconds (a loopback or same-datacentre TCP connect, DNS query
	// or handshake takes less than a millisecond, and read as 0).
	Latency time.Duration
	// FailingFor is how long ago the current failure streak's first failed
	// probe was, by the sender's monotonic clock; the receiver subtracts it
	// from its own receipt time, so no wall clock crosses the wire.
	FailingFor time.Duration
	Interval   time.Duration
	Timeout    time.Duration
	// ConfirmedFor is how long ago the sender first asked the other regions
	// to confirm the current failure streak (0: it did not), by its
	// monotonic clock: the incident's confirm_requested_at. Sent with a
	// result message only (push/pull state keeps the older layout).
	ConfirmedFor time.Duration
	// CertExpiry is the earliest NotAfter of the certificates the target
	// presented to the sender (zero: none, or not a TLS probe), so every
	// agent's page shows each certificate's days left. Sent with a result
	// message only, second to the nearest; a renewal is a change.
	CertExpiry time.Time

	// received is the local receipt time (Received); never sent.
	received mono.Stamp
	// measured is when Latency was measured, by the local clock: a
	// result's own probe, or its latest probe as a push/pull copy (which
	// carries the age of its latency) tells it, so that the latency of a
	// result that has not changed keeps up with the prober's instead of
	// staying what it was at the last change.
	//
	// Both are stamps of localClock: 8 bytes, not a time.Time's 24, in
	// every observation the table holds.
	measured mono.Stamp
}

const (
	flagOK       = 1 << 0
	flagFailing  = 1 << 1
	flagIsolated = 1 << 2
)

func (o *Observation) encode(e *encoder) {
	e.str(o.Target)
	e.str(o.AgentID)
	e.str(o.Region)
	e.uvarint(o.Boot)
	e.uvarint(o.Seq)
	var f byte
	if o.OK {
		f |= flagOK
	}
	if o.Failing {
		f |= flagFailing
	}
	if o.Isolated {
		f |= flagIsolated
	}
	e.byte(f)
	e.str(o.Reason)
	e.dur(o.Latency)
	e.dur(o.FailingFor)
	e.dur(o.Interval)
	e.dur(o.Timeout)
}

func (o *Observation) decode(d *decoder) {
	o.Target = d.str()
	o.AgentID = d.name()
	o.Region = d.name()
	o.Boot = d.uvarint()
	o.Seq = d.uvarint()
	f := d.byte()
	o.OK = f&flagOK != 0
	o.Failing = f&flagFailing != 0
	o.Isolated = f&flagIsolated != 0
	o.Reason = d.str()
	o.Latency = d.dur()
	o.FailingFor = d.dur()
	o.Interval = d.dur()
	o.Timeout = d.dur()
}

// newer reports whether o supersedes old from the same agent: ordered by
// (boot, seq), never by wall clock.
func (o *Observation) newer(old *Observation) bool {
	if o.Boot != old.Boot {
		return o.Boot > old.Boot
	}
	return o.Seq > old.Seq
}

func encodeResult(o *Observation) []byte {
	e := encoder{b: make([]byte, 0, 64+len(o.Target)+len(o.AgentID)+len(o.Region)+len(o.Reason))}
	e.byte(msgResult)
	e.byte(wireVersion)
	o.encode(&e)
	e.dur(o.ConfirmedFor)
	var exp uint64
	if !o.CertExpiry.IsZero() && o.CertExpiry.Unix() > 0 {
		exp = uint64(o.CertExpiry.Unix())
	}
	e.uvarint(exp)
	e.uvarint(micros(o.Latency))
	return e.b
}

// micros is a latency in microseconds for the wire.
func micros(d time.Duration) uint64 { return uint64(max(d, 0) / time.Microsecond) }

// microsDur reads a latency written by micros.
func (d *decoder) microsDur() time.Duration {
	v := d.uvarint()
	if v > math.MaxInt64/uint64(time.Microsecond) {
		d.err = errTooLarge
		return 0
	}
	return time.Duration(v) * time.Microsecond
}

func decodeResult(b []byte) (Observation, error) {
	d := decoder{b: b}
	d.header(msgResult)
	var o Observation
	o.decode(&d)
	if d.err == nil && len(d.b) > 0 { // absent from agents that predate it
		o.ConfirmedFor = d.dur()
	}
	if d.err == nil && len(d.b) > 0 { // likewise
		if exp := d.uvarint(); exp > 0 && exp < 1<<40 {
			o.CertExpiry = time.Unix(int64(exp), 0)
		}
	}
	if d.err == nil && len(d.b) > 0 { // likewise: the milliseconds stand
		o.Latency = d.microsDur()
	}
	return o, d.err
}

// Heartbeat says: agent AgentID (boot, seq) is alive, and every observation
// it sent up to Seq still holds. Receivers whose view of the agent is at Seq
// refresh those observations' receipt time; a mismatch means a message was
// lost, and those observations go stale until push/pull repairs them: a
// missing vote, never a wrong one.
type Heartbeat struct {
	AgentID  string
	Region   string
	Boot     uint64
	Seq      uint64
	Isolated bool
	Targets  uint32 // how many targets the agent probes
	// Settled: the agent may lead (a leader candidate in its own eyes; see
	// leadership.go). Agents that predate it send none: read as settled.
	Settled bool
	// Doubts are the members the sender does not count as leader
	// candidates now (not settled, or not heard lately), as AgentHash
	// values: an agent leads only while no member it hears doubts it.
	// DoubtsOverflow: more than maxDoubts, only the first sent; read as
	// doubting everyone. Agents that predate them send none.
	Doubts         []uint32
	DoubtsOverflow bool
}

// maxDoubts bounds a heartbeat's doubts: 4 bytes each, a heartbeat stays
// well inside one UDP packet.
const maxDoubts = 128

// AgentHash is an agent id's 32-bit FNV-1a hash, as heartbeats name the
// members they doubt.
func AgentHash(id string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(id); i++ {
		h ^= uint32(id[i])
		h *= 16777619
	}
	return h
}

func encodeHeartbeat(h *Heartbeat) []byte {
	e := encoder{b: make([]byte, 0, 48)}
	e.byte(msgHeartbeat)
	e.byte(wireVersion)
	e.str(h.AgentID)
	e.str(h.Region)
	e.uvarint(h.Boot)
	e.uvarint(h.Seq)
	if h.Isolated {
		e.byte(1)
	} else {
		e.byte(0)
	}
	e.uvarint(uint64(h.Targets))
	if h.Settled {
		e.byte(1)
	} else {
		e.byte(0)
	}
	n := uint64(len(h.Doubts))
	if h.DoubtsOverflow || n > maxDoubts {
		n = maxDoubts + 1
	}
	e.uvarint(n)
	for i := range min(len(h.Doubts), maxDoubts) {
		e.b = binary.BigEndian.AppendUint32(e.b, h.Doubts[i])
	}
	return e.b
}

func decodeHeartbeat(b []byte) (Heartbeat, error) {
	d := decoder{b: b}
	d.header(msgHeartbeat)
	var h Heartbeat
	h.AgentID = d.str()
	h.Region = d.str()
	h.Boot = d.uvarint()
	h.Seq = d.uvarint()
	h.Isolated = d.byte() == 1
	h.Targets = uint32(min(d.uvarint(), math.MaxUint32))
	h.Settled = true
	if d.err == nil && len(d.b) > 0 {
		h.Settled = d.byte() == 1
	}
	if d.err == nil && len(d.b) > 0 {
		n := d.uvarint()
		if n > maxDoubts {
			h.DoubtsOverflow, n = true, maxDoubts
		}
		if d.err == nil && uint64(len(d.b)) < 4*n {
			return h, errShort
		}
		if n > 0 {
			h.Doubts = make([]uint32, n)
			for i := range h.Doubts {
				h.Doubts[i] = binary.BigEndian.Uint32(d.b[4*i:])
			}
			d.b = d.b[4*n:]
		}
	}
	return h, d.err
}

// confirmReq asks an agent to probe Target now; ID matches the response.
type confirmReq struct {
	ID     uint64
	Target string
	From   string // requester's memberlist node name, to reply to
}

func encodeConfirmReq(r *confirmReq) []byte {
	e := encoder{b: make([]byte, 0, 32+len(r.Target)+len(r.From))}
	e.byte(msgConfirmReq)
	e.byte(wireVersion)
	e.uvarint(r.ID)
	e.str(r.Target)
	e.str(r.From)
	return e.b
}

func decodeConfirmReq(b []byte) (confirmReq, error) {
	d := decoder{b: b}
	d.header(msgConfirmReq)
	var r confirmReq
	r.ID = d.uvarint()
	r.Target = d.str()
	r.From = d.str()
	return r, d.err
}

// confirmResp answers a confirm request: Busy when the responder was at its
// concurrency cap, otherwise Obs is the fresh observation.
type confirmResp struct {
	ID   uint64
	Busy bool
	Obs  Observation
}

func encodeConfirmResp(r *confirmResp) []byte {
	e := encoder{b: make([]byte, 0, 96)}
	e.byte(msgConfirmResp)
	e.byte(wireVersion)
	e.uvarint(r.ID)
	if r.Busy {
		e.byte(1)
	} else {
		e.byte(0)
	}
	r.Obs.encode(&e)
	return e.b
}

func decodeConfirmResp(b []byte) (confirmResp, error) {
	d := decoder{b: b}
	d.header(msgConfirmResp)
	var r confirmResp
	r.ID = d.uvarint()
	r.Busy = d.byte() == 1
	r.Obs.decode(&d)
	return r, d.err
}

func encodeIncident(in *Incident) []byte {
	e := encoder{b: make([]byte, 0, 128)}
	e.byte(msgIncident)
	e.byte(wireVersion)
	e.str(in.ID)
	e.str(in.Target)
	e.time(in.StartedAt)
	e.time(in.ConfirmAt)
	e.time(in.QuorumAt)
	e.time(in.DetectedAt)
	e.time(in.ResolvedAt)
	e.regions(in.Regions)
	e.str(in.Leader)
	e.str(in.Reason)
	e.uvarint(uint64(in.Flaps))
	e.time(in.AlertedAt)
	e.regions(in.QuorumRegions)
	n := min(len(in.FirstFailures), maxRegions)
	e.uvarint(uint64(n))
	for _, f := range in.FirstFailures[:n] {
		e.str(f.Region)
		e.time(f.At)
		e.str(f.Reason)
	}
	n = min(len(in.LeaderChanges), maxLeaderChanges)
	e.uvarint(uint64(n))
	for _, l := range in.LeaderChanges[:n] {
		e.str(l.Agent)
		e.time(l.At)
	}
	return e.b
}

// maxLeaderChanges bounds an incident's leader changes on the wire.
const maxLeaderChanges = 32

func decodeIncident(b []byte) (Incident, error) {
	d := decoder{b: b}
	d.header(msgIncident)
	var in Incident
	in.ID = d.str()
	in.Target = d.str()
	in.StartedAt = d.time()
	in.ConfirmAt = d.time()
	in.QuorumAt = d.time()
	in.DetectedAt = d.time()
	in.ResolvedAt = d.time()
	in.Regions = d.regions()
	in.Leader = d.str()
	in.Reason = d.str()
	in.Flaps = int(min(d.uvarint(), 1<<20))
	// Fields added later, absent from agents that predate them.
	if d.err == nil && len(d.b) > 0 {
		in.AlertedAt = d.time()
	}
	if d.err == nil && len(d.b) > 0 {
		in.QuorumRegions = d.regions()
	}
	if d.err == nil && len(d.b) > 0 {
		n := d.uvarint()
		if n > maxRegions {
			d.err = errTooLarge
		}
		for i := uint64(0); i < n && d.err == nil; i++ {
			in.FirstFailures = append(in.FirstFailures, RegionFailure{Region: d.str(), At: d.time(), Reason: d.str()})
		}
	}
	if d.err == nil && len(d.b) > 0 {
		n := d.uvarint()
		if n > maxLeaderChanges {
			d.err = errTooLarge
		}
		for i := uint64(0); i < n && d.err == nil; i++ {
			in.LeaderChanges = append(in.LeaderChanges, LeaderChange{Agent: d.str(), At: d.time()})
		}
	}
	return in, d.err
}

// Meta is a node's metadata, carried in memberlist's 512-byte node meta.
type Meta struct {
	Proto       byte   // cluster protocol version; agents refuse other majors
	Region      string // the agent's region
	AgentID     string // stable agent id (defaults to the node name)
	Version     string // build version, for display
	TargetsHash uint64 // hash of the target set: differing configs are flagged
	Boot        uint64
	// Features are what this build understands beyond ProtocolVersion
	// (feature* bits): an agent sends a message a peer would drop only to
	// a peer that says it reads it. Absent (0) from agents that predate it.
	Features uint64
}

// featureKeys: the agent answers a key list (msgKeys) with the entries its
// sender lacks.
const featureKeys uint64 = 1 << 0

// features are this build's Meta.Features.
const features = featureKeys

// checkMeta refuses names that would not survive the wire. Every string a
// peer decodes is at most maxString bytes, and the encoder cuts longer ones,
// so peers would know the agent by another id than its own (it would then
// own no target); and node metadata over memberlist's MetaMaxSize is not
// sent at all (NodeMeta returns none), so peers would ignore the agent.
func checkMeta(region, nodeName, agentID, version string) error {
	for _, f := range []struct{ key, v string }{
		{"region", region}, {"node name", nodeName}, {"agent id", agentID}, {"version", version},
	} {
		if len(f.v) > maxString {
			return fmt.Errorf("%s %q is %d bytes, at most %d: %w", f.key, f.v, len(f.v), maxString, errTooLarge)
		}
	}
	worst := Meta{Region: region, AgentID: agentID, Version: version, Boot: math.MaxUint64}
	if n := len(encodeMeta(&worst)); n > memberlist.MetaMaxSize {
		return fmt.Errorf("region %q, agent id %q and version %q make %d bytes of node metadata, over memberlist's %d: %w",
			region, agentID, version, n, memberlist.MetaMaxSize, errTooLarge)
	}
	return nil
}

// ProtocolVersion is the cluster protocol this build speaks.
const ProtocolVersion byte = 1

func encodeMeta(m *Meta) []byte {
	e := encoder{b: make([]byte, 0, 64)}
	e.byte('V') // magic: not some other memberlist user
	e.byte(m.Proto)
	e.str(m.Region)
	e.str(m.AgentID)
	e.str(m.Version)
	e.b = binary.BigEndian.AppendUint64(e.b, m.TargetsHash)
	e.uvarint(m.Boot)
	e.uvarint(m.Features)
	return e.b
}

func decodeMeta(b []byte) (Meta, error) {
	d := decoder{b: b}
	var m Meta
	if d.byte() != 'V' {
		return m, errors.New("not a vantage node")
	}
	m.Proto = d.byte()
	m.Region = d.str()
	m.AgentID = d.str()
	m.Version = d.str()
	if len(d.b) < 8 {
		return m, errShort
	}
	m.TargetsHash = binary.BigEndian.Uint64(d.b)
	d.b = d.b[8:]
	m.Boot = d.uvarint()
	if len(d.b) > 0 { // an older agent's metadata ends at Boot
		m.Features = d.uvarint()
	}
	return m, d.err
}

// The push/pull state: every fresh observation this agent knows and every
// incident it keeps. Sent over memberlist's TCP push/pull, so it is not
// bound by the gossip packet size, but its decoder bounds what it accepts.
const (
	maxStateObservations = 500_000
	maxStateIncidents    = 10_000
)

func encodeState(obs []*Observation, incidents []*Incident, verdicts []*Verdict, now time.Time) []byte {
	return encodeStateAs(msgState, obs, incidents, verdicts, now)
}

// encodeStateAs encodes a state with the message type typ: msgState for
// push/pull, msgRepair for a digest's answer (a state that arrives as a
// user message, so that a state by gossip stays malformed).
func encodeStateAs(typ byte, obs []*Observation, incidents []*Incident, verdicts []*Verdict, now time.Time) []byte {
	e := encoder{b: make([]byte, 0, 16+len(obs)*64+len(incidents)*96+len(verdicts)*64)}
	e.byte(typ)
	e.byte(wireVersion)
	e.uvarint(uint64(len(obs)))
	for _, o := range obs {
		o.encode(&e)
	}
	e.uvarint(uint64(len(incidents)))
	for _, in := range incidents {
		b := encodeIncident(in)
		e.uvarint(uint64(len(b)))
		e.b = append(e.b, b...)
	}
	// Verdicts after: agents that predate them stop reading before.
	e.uvarint(uint64(len(verdicts)))
	for _, v := range verdicts {
		b := encodeVerdict(v, now)
		e.uvarint(uint64(len(b)))
		e.b = append(e.b, b...)
	}
	// Then each observation's later fields, in the same order: agents
	// that predate them stop reading before. The streak's and the
	// confirmation's ages are as of now (they were as of receipt), so a
	// newcomer dates an incident's start and confirm_requested_at right,
	// and one that missed the result message learns them at all.
	e.uvarint(uint64(len(obs)))
	for _, o := range obs {
		age := max(now.Sub(o.Received()), 0)
		var failingFor, confirmedFor time.Duration
		if o.FailingFor > 0 {
			failingFor = o.FailingFor + age
		}
		if o.ConfirmedFor > 0 {
			confirmedFor = o.ConfirmedFor + age
		}
		e.dur(failingFor)
		e.dur(confirmedFor)
		var exp uint64
		if !o.CertExpiry.IsZero() && o.CertExpiry.Unix() > 0 {
			exp = uint64(o.CertExpiry.Unix())
		}
		e.uvarint(exp)
	}
	// Then each observation's latency in microseconds and how long ago it
	// was measured, as of now: a copy of an unchanged result refreshes an
	// older measurement of it (receive). Agents that predate them stop
	// reading before.
	e.uvarint(uint64(len(obs)))
	for _, o := range obs {
		e.uvarint(micros(o.Latency))
		var age time.Duration
		if !o.measured.IsZero() {
			age = max(now.Sub(o.Measured()), 0)
		} else {
			age = max(now.Sub(o.Received()), 0)
		}
		e.dur(age)
	}
	return e.b
}

func decodeState(b []byte, now time.Time) ([]Observation, []Incident, []Verdict, error) {
	return decodeStateAs(msgState, b, now)
}

// decodeStateAs decodes a state of message type typ (encodeStateAs).
func decodeStateAs(typ byte, b []byte, now time.Time) ([]Observation, []Incident, []Verdict, error) {
	d := decoder{b: b}
	d.header(typ)
	n := d.uvarint()
	if n > maxStateObservations {
		return nil, nil, nil, errTooLarge
	}
	obs := make([]Observation, 0, min(n, uint64(len(b)/8)))
	for i := uint64(0); i < n && d.err == nil; i++ {
		var o Observation
		o.decode(&d)
		obs = append(obs, o)
	}
	m := d.uvarint()
	if m > maxStateIncidents {
		return nil, nil, nil, errTooLarge
	}
	var ins []Incident
	for i := uint64(0); i < m && d.err == nil; i++ {
		l := d.uvarint()
		if d.err != nil || uint64(len(d.b)) < l {
			return nil, nil, nil, errShort
		}
		in, err := decodeIncident(d.b[:l])
		if err != nil {
			return nil, nil, nil, err
		}
		d.b = d.b[l:]
		ins = append(ins, in)
	}
	if d.err != nil {
		return nil, nil, nil, d.err
	}
	var vs []Verdict
	if len(d.b) == 0 { // from an agent that predates verdicts
		return obs, ins, nil, nil
	}
	k := d.uvarint()
	if k > maxStateObservations {
		return nil, nil, nil, errTooLarge
	}
	for i := uint64(0); i < k && d.err == nil; i++ {
		l := d.uvarint()
		if d.err != nil || uint64(len(d.b)) < l {
			return nil, nil, nil, errShort
		}
		v, err := decodeVerdict(d.b[:l], now)
		if err != nil {
			return nil, nil, nil, err
		}
		d.b = d.b[l:]
		vs = append(vs, v)
	}
	if d.err != nil {
		return nil, nil, nil, d.err
	}
	if len(d.b) == 0 { // from an agent that predates the later fields
		return obs, ins, vs, nil
	}
	if x := d.uvarint(); d.err != nil || x != uint64(len(obs)) {
		return nil, nil, nil, errShort
	}
	for i := range obs {
		obs[i].FailingFor = d.dur()
		obs[i].ConfirmedFor = d.dur()
		if exp := d.uvarint(); exp > 0 && exp < 1<<40 {
			obs[i].CertExpiry = time.Unix(int64(exp), 0)
		}
	}
	if d.err != nil {
		return nil, nil, nil, d.err
	}
	if len(d.b) == 0 { // from an agent that predates latencies in microseconds
		return obs, ins, vs, nil
	}
	if x := d.uvarint(); d.err != nil || x != uint64(len(obs)) {
		return nil, nil, nil, errShort
	}
	for i := range obs {
		obs[i].Latency = d.microsDur()
		if age := d.dur(); d.err == nil {
			obs[i].measured = localClock.Stamp(now.Add(-age))
		}
	}
	if d.err != nil {
		return nil, nil, nil, d.err
	}
	return obs, ins, vs, nil
}

// encodeVerdict encodes a leader's verdict. Its Since travels as an age on
// the sender's clock at now, like every time that crosses the wire between
// agents whose clocks may differ.
func encodeVerdict(v *Verdict, now time.Time) []byte {
	e := encoder{b: make([]byte, 0, 64+len(v.Target)+len(v.Leader)+len(v.Incident))}
	e.byte(msgVerdict)
	e.byte(wireVersion)
	e.str(v.Target)
	e.str(v.Leader)
	e.uvarint(v.boot)
	e.uvarint(v.seq)
	e.byte(byte(v.State))
	var f byte
	if v.Maintenance {
		f |= 1
	}
	e.byte(f)
	e.uvarint(uint64(v.Needed))
	e.regions(v.Failing)
	e.regions(v.Passing)
	e.regions(v.Stale)
	e.regions(v.Isolated)
	var age time.Duration
	if !v.since.IsZero() {
		age = max(now.Sub(v.Since()), 0)
	}
	e.dur(age)
	e.str(v.Incident)
	return e.b
}

func decodeVerdict(b []byte, now time.Time) (Verdict, error) {
	d := decoder{b: b}
	d.header(msgVerdict)
	var v Verdict
	v.Target = d.str()
	v.Leader = d.name()
	v.boot = d.uvarint()
	v.seq = d.uvarint()
	st := quorum.State(d.byte())
	if st > quorum.Down && d.err == nil {
		d.err = fmt.Errorf("verdict state %d: %w", st, errTooLarge)
	}
	v.State = st
	v.Maintenance = d.byte()&1 != 0
	v.Needed = int(min(d.uvarint(), maxRegions))
	v.Failing = d.regions()
	v.Passing = d.regions()
	v.Stale = d.regions()
	v.Isolated = d.regions()
	v.Reporting = len(v.Failing) + len(v.Passing)
	age := d.dur()
	if d.err == nil {
		v.since = localClock.Stamp(now.Add(-age))
	}
	v.Incident = d.str()
	return v, d.err
}

func encodeVouch(v *vouch) []byte {
	e := encoder{b: make([]byte, 0, 32+len(v.AgentID)+len(v.Node))}
	e.byte(msgVouch)
	e.byte(wireVersion)
	e.str(v.AgentID)
	e.str(v.Node)
	e.uvarint(v.Boot)
	e.uvarint(uint64(v.Count))
	e.uvarint(uint64(v.Sum))
	return e.b
}

func decodeVouch(b []byte) (vouch, error) {
	d := decoder{b: b}
	d.header(msgVouch)
	var v vouch
	v.AgentID = d.str()
	v.Node = d.str()
	v.Boot = d.uvarint()
	count, sum := d.uvarint(), d.uvarint()
	if d.err == nil && (count > math.MaxUint32 || sum > math.MaxUint32) {
		d.err = errTooLarge
	}
	v.Count, v.Sum = uint32(count), uint32(sum)
	return v, d.err
}

func encodeResend(r resend) []byte {
	e := encoder{b: make([]byte, 0, 5+len(r.Node)+4*len(r.Buckets))}
	e.byte(msgResend)
	e.byte(wireVersion)
	e.str(r.Node)
	if len(r.Buckets) > 0 {
		e.buckets(r.Buckets)
	}
	return e.b
}

// decodeResend reads a resend request. An agent that predates buckets sends
// the node name only, and one that predates them ignores the buckets: both
// then resend everything, as before.
func decodeResend(b []byte) (resend, error) {
	d := decoder{b: b}
	d.header(msgResend)
	r := resend{Node: d.str()}
	if d.err == nil && r.Node == "" {
		d.err = errShort
	}
	if d.err == nil && len(d.b) > 0 {
		r.Buckets = d.buckets(maxResendBuckets)
	}
	return r, d.err
}

// messageType peeks at the type byte.
func messageType(b []byte) (byte, error) {
	if len(b) < 2 {
		return 0, errShort
	}
	return b[0], nil
}
