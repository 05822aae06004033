package cluster

import (
	"github.com/hashicorp/memberlist"
)

// delegate is memberlist's window into the cluster. Its methods run on
// memberlist's goroutines, so they never block: messages are copied into
// the inbox and handled by recvLoop; a full inbox drops and counts.
type delegate struct{ c *Cluster }

var _ memberlist.Delegate = (*delegate)(nil)

func (d *delegate) NodeMeta(limit int) []byte {
	c := d.c
	c.mu.Lock()
	h := c.targetsHash
	c.mu.Unlock()
	b := encodeMeta(&Meta{Proto: ProtocolVersion, Region: c.cfg.Region, AgentID: c.cfg.AgentID,
		Version: c.cfg.Version, TargetsHash: h, Boot: c.boot})
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

// LocalState carries every fresh observation and the incidents we keep:
// anti-entropy for lost gossip, and a newcomer's full picture.
func (d *delegate) LocalState(join bool) []byte {
	c := d.c
	now := c.now()
	c.mu.Lock()
	obs := make([]*Observation, 0, len(c.table)*2)
	for _, byAgent := range c.table {
		for _, o := range byAgent {
			if c.freshLocked(o, now) {
				obs = append(obs, o)
			}
		}
	}
	b := encodeState(obs, c.incidents)
	c.mu.Unlock()
	return b
}

func (d *delegate) MergeRemoteState(buf []byte, join bool) {
	obs, ins, err := decodeState(buf)
	if err != nil {
		d.c.m.badMessages.Inc()
		return
	}
	// Merged inline (push/pull runs on its own TCP goroutine, not the
	// gossip loop), through the same paths as gossip.
	for i := range obs {
		d.c.receive(&obs[i])
	}
	for i := range ins {
		d.c.mergeIncident(&ins[i])
	}
	d.c.synced.Store(true)
}

// events turns membership changes into a reassignment signal.
type events struct{ c *Cluster }

var _ memberlist.EventDelegate = (*events)(nil)

func (e *events) NotifyJoin(n *memberlist.Node) {
	e.note(n, "alive", "member_join")
}

func (e *events) NotifyLeave(n *memberlist.Node) {
	e.note(n, "dead", "member_leave")
}

func (e *events) NotifyUpdate(n *memberlist.Node) {
	e.note(n, "alive", "")
}

func (e *events) note(n *memberlist.Node, state, kind string) {
	c := e.c
	now := c.now()
	c.mu.Lock()
	var m *memberInfo
	if mi := c.upsertMemberLocked(n, state, now); mi != nil {
		cp := *mi
		m = &cp
	}
	c.mu.Unlock()
	c.signalChange()
	if kind != "" && m != nil && !m.Self {
		c.log.Info("member "+m.State, "node", m.Name, "region", m.Region, "addr", m.Addr)
		c.emit(Event{At: now, Kind: kind, Node: m.Name, Region: m.Region, Detail: m.State})
		if m.Proto != int(ProtocolVersion) {
			c.log.Warn("member speaks another cluster protocol; ignored for assignment", "node", m.Name, "proto", m.Proto)
		}
		if !m.SameConf {
			c.log.Warn("member has a different target set; check that every agent runs the same config", "node", m.Name)
		}
	}
}

func (c *Cluster) emit(ev Event) {
	if c.cfg.OnEvent != nil {
		c.cfg.OnEvent(ev)
	}
}
