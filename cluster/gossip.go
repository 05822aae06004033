package cluster

import "github.com/hashicorp/memberlist"

// broadcast queues a named gossip message: a newer message with the same
// name replaces a queued older one. Oversized messages never enter.
func (c *Cluster) broadcast(name string, msg []byte) {
	if len(msg) > maxMessage {
		c.m.oversized.Inc()
		return
	}
	if c.ml == nil || c.ml.NumMembers() <= 1 {
		// Alone: nobody to gossip to, and the queue would keep one message
		// per target until someone came (2.5 MB at 10k targets). A member
		// that joins gets the whole table by push/pull instead.
		return
	}
	c.queue.QueueBroadcast(&namedBroadcast{name: name, msg: msg})
}

type namedBroadcast struct {
	name string
	msg  []byte
}

func (b *namedBroadcast) Invalidates(other memberlist.Broadcast) bool {
	nb, ok := other.(memberlist.NamedBroadcast)
	return ok && nb.Name() == b.name
}

func (b *namedBroadcast) Message() []byte { return b.msg }

func (b *namedBroadcast) Finished() {}

func (b *namedBroadcast) Name() string { return b.name }

// recvLoop handles messages handed off by memberlist's goroutines.
func (c *Cluster) recvLoop() {
	defer c.wg.Done()
	for {
		select {
		case <-c.stop:
			return
		case b := <-c.inbox:
			c.handle(b)
		}
	}
}

func (c *Cluster) handle(b []byte) {
	t, err := messageType(b)
	if err != nil {
		c.m.badMessages.Inc()
		return
	}
	switch t {
	case msgResult:
		dispatch(c, b, decodeResult, func(o *Observation) { c.receive(o) })
	case msgHeartbeat:
		dispatch(c, b, decodeHeartbeat, func(h *Heartbeat) {
			c.heartbeat(h)
			c.settle() // hearing a peer is what a fresh agent waits for
			c.refreshCandidacy()
			c.refreshDoubts()
		})
	case msgConfirmReq:
		dispatch(c, b, decodeConfirmReq, func(r *confirmReq) { c.confirm.serve(*r) })
	case msgConfirmResp:
		dispatch(c, b, decodeConfirmResp, func(r *confirmResp) { c.confirm.answer(*r) })
	case msgBye:
		dispatch(c, b, decodeBye, func(name *string) { c.bye(*name) })
	case msgVerdict:
		decode := func(b []byte) (Verdict, error) { return decodeVerdict(b, c.now()) }
		dispatch(c, b, decode, func(v *Verdict) { c.receiveVerdict(v) })
	case msgRepair: // the entries a peer's digest comparison found we lack
		c.mergeState(msgRepair, b)
	case msgVouch:
		dispatch(c, b, decodeVouch, func(v *vouch) { c.receiveVouch(*v) })
	case msgResend:
		dispatch(c, b, decodeResend, func(r *resend) { c.queueResend(*r) })
	case msgKeys:
		dispatch(c, b, decodeKeys, func(k *keyList) { c.queueKeys(*k) })
	case msgIncident:
		dispatch(c, b, decodeIncident, func(in *Incident) { c.mergeIncident(in) })
	default:
		c.m.badMessages.Inc()
	}
}

// dispatch decodes a message and hands it to act; one that does not decode
// is counted as malformed and dropped.
func dispatch[T any](c *Cluster, b []byte, decode func([]byte) (T, error), act func(*T)) {
	m, err := decode(b)
	if err != nil {
		c.m.badMessages.Inc()
		return
	}
	act(&m)
}

// decodeBye reads a goodbye: the node name of the member leaving.
func decodeBye(b []byte) (string, error) {
	d := decoder{b: b}
	d.header(msgBye)
	name := d.str()
	return name, d.err
}

// bye records that the member named name is leaving on purpose: shown as
// left, not dead, once memberlist declares it gone.
func (c *Cluster) bye(name string) {
	c.mu.Lock()
	c.leaving[name] = true
	c.viewGen.Add(1)
	if m := c.members[name]; m != nil && m.State == Dead {
		m.State = Left
	}
	c.mu.Unlock()
	c.signalChange()
}

func (c *Cluster) sendHeartbeat() {
	c.mu.Lock()
	cur := c.agentSeq[c.cfg.AgentID]
	h := Heartbeat{AgentID: c.cfg.AgentID, Region: c.cfg.Region, Boot: c.boot, Seq: cur[1],
		Isolated: c.isolated.Load(), Targets: uint32(len(c.mine)), Settled: c.candidateSince.Load() != 0}
	h.Doubts, h.DoubtsOverflow = c.doubtsLocked(c.now())
	c.lastDoubts = h.Doubts
	c.mu.Unlock()
	msg := encodeHeartbeat(&h)
	c.gossip("h/"+c.cfg.AgentID, msg)
}

// fanOutMax bounds direct fan-out. memberlist does not relay user
// broadcasts (a queued message reaches only RetransmitMult x log(N) peers),
// so heartbeats, verdicts and incidents (and observations, below
// TargetedFrom) are also sent straight to every live member: at most this
// many UDP packets per message, and only on changes or every
// HeartbeatEvery. An agent sends its share of the fleet's changes to every
// member and receives every change once: its cost follows the fleet's
// change rate, not its size. Larger fleets rely on the broadcast queue and
// push/pull's digests.
const fanOutMax = 256

// gossip sends msg to the fleet: queued as a named broadcast (a newer one
// with the same name replaces it) and sent straight to every live member.
func (c *Cluster) gossip(name string, msg []byte) {
	c.broadcast(name, msg)
	c.fanOut(msg)
}

func (c *Cluster) fanOut(msg []byte) {
	c.mu.Lock()
	addrs := make([]memberlist.Address, 0, len(c.members))
	for _, m := range c.members {
		if m.State == Alive && !m.Self {
			addrs = append(addrs, m.addr)
		}
	}
	c.mu.Unlock()
	if len(addrs) > fanOutMax {
		return
	}
	for _, a := range addrs {
		if err := c.ml.SendToAddress(a, msg); err != nil {
			c.m.sendErrors.Inc()
		}
	}
}

// delegate is memberlist's window into the cluster. Its methods run on
// memberlist's goroutines, so they never block: messages are copied into
// the inbox and handled by recvLoop; a full inbox drops and counts.
type delegate struct{ c *Cluster }

func (d *delegate) NodeMeta(limit int) []byte {
	c := d.c
	c.mu.Lock()
	h := c.targetsHash
	c.mu.Unlock()
	b := encodeMeta(&Meta{Proto: ProtocolVersion, Region: c.cfg.Region, AgentID: c.cfg.AgentID,
		Version: c.cfg.Version, TargetsHash: h, Boot: c.boot, Features: features})
	if len(b) > limit {
		// Region and id are bounded by config validation; this is a last guard.
		return b[:0]
	}
	return b
}

func (d *delegate) NotifyMsg(b []byte) {
	if len(b) == 0 {
		return
	}
	cp := make([]byte, len(b)) // memberlist reuses its buffer
	copy(cp, b)
	select {
	case d.c.inbox <- cp:
	default:
		d.c.m.inboxDrops.Inc()
	}
}

func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte {
	return d.c.queue.GetBroadcasts(overhead, limit)
}

// LocalState is our full picture (every fresh observation, verdict and
// incident we keep) for a join and in a fleet smaller than DigestFrom, and
// otherwise a digest of it: anti-entropy for lost gossip then sends only
// what differs (digest.go).
func (d *delegate) LocalState(join bool) []byte {
	c := d.c
	now := c.now()
	c.mu.Lock()
	digest := !join && c.liveAtLeastLocked(c.cfg.DigestFrom)
	c.mu.Unlock()
	if digest {
		return c.localDigest(now)
	}
	c.mu.Lock()
	v := c.viewLocked(now) // a targeted fleet's newcomer asks the probers (holders.go)
	b := encodeState(v.obs, v.incidents, fullVerdicts(v.verdicts), now)
	c.mu.Unlock()
	return b
}

func (d *delegate) MergeRemoteState(buf []byte, join bool) {
	t, err := messageType(buf)
	if err != nil {
		d.c.m.badMessages.Inc()
		return
	}
	if t == msgDigest {
		dg, err := decodeDigest(buf)
		if err != nil {
			d.c.m.badMessages.Inc()
			return
		}
		d.c.queueDigest(dg)
		return
	}
	// A full state: a join's, or an agent's that predates digests.
	d.c.mergeState(msgState, buf)
}

// mergeState merges a state message of type typ: a join's full state
// (msgState), or the entries
// a peer found we lack (msgRepair, digest.go). Merged inline (push/pull runs on its
// own TCP goroutine, not the gossip loop), through the same paths as
// gossip.
func (c *Cluster) mergeState(typ byte, buf []byte) {
	obs, ins, vs, err := decodeStateAs(typ, buf, c.now())
	if err != nil {
		c.m.badMessages.Inc()
		return
	}
	for i := range obs {
		c.receive(&obs[i])
	}
	for i := range ins {
		c.mergeIncident(&ins[i])
	}
	for i := range vs {
		c.receiveVerdict(&vs[i])
	}
	c.synced.Store(true)
}

var _ memberlist.Delegate = (*delegate)(nil)
