package cluster

import (
	"maps"
	"net"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/vantage-probe/vantage/cluster/shard"
)

// MemberState is what this agent knows of a member's health.
type MemberState uint8

const (
	// Alive: memberlist sees it and it has been heard lately (its
	// heartbeats arrive), or it joined a moment ago.
	Alive MemberState = iota
	// Suspect: memberlist still sees it, but it has gone silent (no
	// heartbeat for three heartbeat intervals and two seconds): it keeps
	// its targets (a slow agent does not cause churn) but no longer leads
	// any, so a cut-off leader stops holding verdicts well before
	// memberlist declares it dead.
	Suspect
	// Dead: memberlist declared it failed.
	Dead
	// Left: it said goodbye before leaving (decommissioned, not failed).
	Left
)

var memberStateNames = [...]string{Alive: "alive", Suspect: "suspect", Dead: "dead", Left: "left"}

// MemberStates lists every state, in order.
var MemberStates = []MemberState{Alive, Suspect, Dead, Left}

func (s MemberState) String() string {
	if int(s) < len(memberStateNames) {
		return memberStateNames[s]
	}
	return "MemberState(" + strconv.Itoa(int(s)) + ")"
}

// MarshalText writes the state's name (JSON: "alive").
func (s MemberState) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Live reports whether the member takes part in assignment: alive or
// suspect.
func (s MemberState) Live() bool { return s == Alive || s == Suspect }

// Member is a node of the cluster as this agent sees it.
type Member struct {
	Name     string      `json:"name"`
	AgentID  string      `json:"agent_id"`
	Region   string      `json:"region"`
	Addr     string      `json:"addr"`
	State    MemberState `json:"state"`
	Version  string      `json:"version"`
	Proto    int         `json:"proto"`
	Isolated bool        `json:"isolated"`
	Targets  int         `json:"targets"`     // targets it probes, from its heartbeat
	SameConf bool        `json:"same_config"` // its target set hash equals ours
	Since    time.Time   `json:"since"`       // last state change seen
	Self     bool        `json:"self,omitempty"`
}

type memberInfo struct {
	Member
	boot uint64
	hash uint64
	// features are the member's Meta.Features: which messages it reads
	features uint64
	addr     memberlist.Address // copied under memberlist's lock
	ip       net.IP
	port     uint16
}

// Members returns every member this agent knows, itself included, sorted by
// region then name.
func (c *Cluster) Members() []Member {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Member, 0, len(c.members))
	for _, m := range c.members {
		mm := m.Member
		mm.State = c.stateLocked(m, now)
		out = append(out, mm)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Region != out[j].Region {
			return out[i].Region < out[j].Region
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// stateLocked is m's state now: memberlist's view (Alive, Dead, Left),
// with an Alive member that has gone silent shown as Suspect. memberlist
// keeps its own suspicion to itself (Node.State is never updated), so the
// silence is judged by our heartbeats, as leadership is.
func (c *Cluster) stateLocked(m *memberInfo, now time.Time) MemberState {
	if m.State == Alive && !m.Self && !c.heardLocked(m, now) {
		return Suspect
	}
	return m.State
}

// heardLocked: m sent a heartbeat within leaderSilence, or joined less than
// that ago (its first heartbeat may not have come yet).
func (c *Cluster) heardLocked(m *memberInfo, now time.Time) bool {
	silence := c.leaderSilence()
	return now.Sub(c.heard[m.AgentID]) <= silence || now.Sub(m.Since) <= silence
}

// Members are tracked from memberlist's event callbacks only: those run
// under memberlist's node lock, while the *Node pointers its Members()
// returns are written by memberlist concurrently (a data race to read).
func (c *Cluster) upsertMemberLocked(n *memberlist.Node, state MemberState, now time.Time) *memberInfo {
	meta, err := decodeMeta(n.Meta)
	if err != nil {
		c.m.badMeta.Inc()
		return nil
	}
	c.viewGen.Add(1)
	m, ok := c.members[n.Name]
	if state == Dead && c.leaving[n.Name] {
		state = Left
	}
	if state == Alive {
		delete(c.leaving, n.Name)
	}
	if !ok {
		m = &memberInfo{}
		c.members[n.Name] = m
		m.Since = now
	} else if m.State != state {
		m.Since = now
	}
	m.Name = n.Name
	m.AgentID = meta.AgentID
	if m.AgentID == "" {
		m.AgentID = n.Name
	}
	m.Region = meta.Region
	m.Addr = n.Address()
	m.addr = memberlist.Address{Addr: m.Addr, Name: n.Name}
	m.ip = append(net.IP(nil), n.Addr...)
	m.port = n.Port
	m.State = state
	m.Version = meta.Version
	m.Proto = int(meta.Proto)
	m.hash = meta.TargetsHash
	m.SameConf = meta.TargetsHash == c.targetsHash
	m.boot = meta.Boot
	m.features = meta.Features
	m.Self = n.Name == c.cfg.NodeName
	if m.Self {
		m.Isolated = c.isolated.Load()
		m.Targets = len(c.mine)
	}
	return m
}

// liveMembersLocked returns the members that take part in assignment:
// alive or suspect (a suspect keeps its targets until declared dead, so a
// slow agent does not cause churn), speaking our protocol.
func (c *Cluster) liveMembersLocked() []shard.Member {
	out := make([]shard.Member, 0, len(c.members))
	for _, m := range c.members {
		if m.State.Live() && m.Proto == int(ProtocolVersion) {
			out = append(out, shard.Member{ID: m.AgentID, Region: m.Region})
		}
	}
	return out
}

// knownRegionsLocked is every region with a member that has not left
// gracefully. A region whose agents all died still counts: its missing votes
// must not shrink the quorum, or a partitioned region alone could declare
// outages.
func (c *Cluster) knownRegionsLocked() []string {
	seen := map[string]bool{}
	for _, m := range c.members {
		if m.State != Left {
			seen[m.Region] = true
		}
	}
	return slices.Sorted(maps.Keys(seen))
}

// KnownRegions is every region with a member that has not left: the
// regions a target without its own `regions` is probed from.
func (c *Cluster) KnownRegions() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.knownRegionsLocked()
}

func (c *Cluster) memberCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.members)
}

func (c *Cluster) memberByAgentLocked(id string) *memberInfo {
	// An agent's id is its node name unless configured apart: look there
	// first (votersLocked asks for every former owner of every target
	// evaluated; a scan of 100 members each time was 9% of a 100-agent
	// fleet's CPU while it assembled).
	if m := c.members[id]; m != nil && m.AgentID == id {
		return m
	}
	for _, m := range c.members {
		if m.AgentID == id {
			return m
		}
	}
	return nil
}

// join contacts the seeds, retrying with a short backoff (250ms doubling to
// 5s) until one answers or the agent stops: agents started together (a
// compose file, a Kubernetes rollout) come up in any order, and one that
// starts a moment before its seed must not wait for the rejoin interval.
func (c *Cluster) join() {
	seeds := make([]string, 0, len(c.cfg.Join))
	self := c.localAddr
	for _, s := range c.cfg.Join {
		if s != self && s != c.cfg.Bind {
			seeds = append(seeds, s)
		}
	}
	if len(seeds) == 0 {
		return
	}
	backoff := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		n, err := c.ml.Join(seeds)
		if err == nil && n > 0 {
			c.log.Info("joined cluster", "seeds", seeds, "contacted", n, "members", c.ml.NumMembers(), "attempts", attempt)
			return
		}
		if attempt == 1 || attempt%10 == 0 {
			c.log.Warn("no seed answered yet; retrying", "seeds", seeds, "attempts", attempt, "err", err)
		}
		select {
		case <-c.stop:
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// rejoin contacts seeds we do not currently see alive: memberlist forgets
// dead nodes, so a partition longer than that never heals on its own.
func (c *Cluster) rejoin() {
	if len(c.cfg.Join) == 0 {
		return
	}
	alive := map[string]bool{}
	c.mu.Lock()
	for _, m := range c.members {
		if m.State == Alive {
			alive[m.Addr] = true
		}
	}
	c.mu.Unlock()
	var missing []string
	for _, s := range c.cfg.Join {
		if !alive[s] && s != c.LocalAddr() && s != c.cfg.Bind {
			missing = append(missing, s)
		}
	}
	if len(missing) == 0 {
		return
	}
	if n, err := c.ml.Join(missing); err == nil && n > 0 {
		c.log.Info("re-joined seeds", "seeds", missing, "contacted", n)
	}
}

// sayGoodbye tells every member we are leaving on purpose, so they show us
// as "left" (a decommissioned agent or region) rather than "dead" (an
// outage). memberlist itself does not expose the difference. The sends go
// out together (a TCP send to an unreachable member takes its whole
// timeout) and the wait ends at deadline: a member that did not hear us
// sees us dead instead of left.
func (c *Cluster) sayGoodbye(deadline time.Time) {
	e := encoder{}
	e.byte(msgBye)
	e.byte(wireVersion)
	e.str(c.cfg.NodeName)
	nodes := c.liveNodes()
	done := make(chan struct{}, len(nodes))
	n := 0
	for _, node := range nodes {
		if node.Name == c.cfg.NodeName {
			continue
		}
		n++
		go func() {
			_ = c.ml.SendReliable(node, e.b)
			done <- struct{}{}
		}()
	}
	t := time.NewTimer(max(time.Until(deadline), 0))
	defer t.Stop()
	for ; n > 0; n-- {
		select {
		case <-done:
		case <-t.C:
			return
		}
	}
}

// liveNodes returns copies of the alive members as memberlist nodes, for
// the send calls that want one (they read only the name and address).
func (c *Cluster) liveNodes() map[string]*memberlist.Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]*memberlist.Node, len(c.members))
	for name, m := range c.members {
		if m.State == Alive {
			out[name] = &memberlist.Node{Name: name, Addr: m.ip, Port: m.port}
		}
	}
	return out
}

// events turns membership changes into a reassignment signal.
type events struct{ c *Cluster }

func (e *events) NotifyJoin(n *memberlist.Node) {
	e.note(n, Alive, "member_join")
}

func (e *events) NotifyLeave(n *memberlist.Node) {
	e.note(n, Dead, "member_leave")
}

func (e *events) NotifyUpdate(n *memberlist.Node) {
	e.note(n, Alive, "")
}

func (e *events) note(n *memberlist.Node, state MemberState, kind string) {
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
		c.log.Info("member "+m.State.String(), "node", m.Name, "region", m.Region, "addr", m.Addr)
		c.emit(Event{At: now, Kind: kind, Node: m.Name, Region: m.Region, Detail: m.State.String()})
		if m.Proto != int(ProtocolVersion) {
			c.log.Warn("member speaks another cluster protocol; ignored for assignment", "node", m.Name, "proto", m.Proto)
		}
		if !m.SameConf {
			c.log.Warn("member has a different target set; check that every agent runs the same config", "node", m.Name)
		}
		if state == Alive {
			// Let it hear us now, not at our next heartbeat: it settles, and
			// takes part in leadership, as soon as it knows the fleet.
			c.pokeHeartbeat()
		}
	}
}

var _ memberlist.EventDelegate = (*events)(nil)
