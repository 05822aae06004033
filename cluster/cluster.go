// Package cluster turns agents in several regions into one fleet: memberlist
// membership with region metadata, target assignment (cluster/shard),
// result sharing over gossip, confirm-on-failure re-probes, quorum verdicts
// (cluster/quorum), incidents and region isolation.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/hashicorp/memberlist"

	"github.com/vantage-probe/vantage/cluster/shard"
)

// syncGrace is how long a new agent waits for a peer's full state before it
// may open incidents on its own.
const syncGrace = 30 * time.Second

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
	ConfirmOnFailure  bool
	// Grace is how long a former owner's observations still vote after a
	// reassignment and how long it keeps probing (make-before-break).
	Grace time.Duration
	// HeartbeatEvery is how often the agent tells the fleet its results hold.
	HeartbeatEvery time.Duration
	// EvalEvery is how often the leader re-evaluates verdicts even without news.
	EvalEvery time.Duration

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
}

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
		c.PushPull = 20 * time.Second // anti-entropy: repairs lost transitions within one interval or so
	}
	if c.ReplicasPerRegion <= 0 {
		c.ReplicasPerRegion = 1
	}
	if c.MinRegions <= 0 {
		c.MinRegions = 2
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

// Member is a node of the cluster as this agent sees it.
type Member struct {
	Name     string    `json:"name"`
	AgentID  string    `json:"agent_id"`
	Region   string    `json:"region"`
	Addr     string    `json:"addr"`
	State    string    `json:"state"` // alive, suspect, dead, left
	Version  string    `json:"version"`
	Proto    int       `json:"proto"`
	Isolated bool      `json:"isolated"`
	Targets  int       `json:"targets"`     // targets it probes, from its heartbeat
	SameConf bool      `json:"same_config"` // its target set hash equals ours
	Since    time.Time `json:"since"`       // last state change seen
	Self     bool      `json:"self,omitempty"`
}

type memberInfo struct {
	Member
	boot uint64
	hash uint64
	addr memberlist.Address // copied under memberlist's lock
	ip   net.IP
	port uint16
}

// Cluster is one agent's membership in the fleet.
type Cluster struct {
	cfg   Config
	local Local
	log   *slog.Logger
	ml    *memberlist.Memberlist
	queue *memberlist.TransmitLimitedQueue
	boot  uint64
	now   func() time.Time

	inbox    chan []byte // hand-off from memberlist's goroutines
	changed  chan struct{}
	stop     chan struct{}
	wg       sync.WaitGroup
	seq      atomic.Uint64
	isolated atomic.Bool
	// synced is set once we hold a peer's full state (push/pull) or have no
	// seeds: a fresh agent must not open incidents from half a picture.
	synced  atomic.Bool
	started time.Time
	reqID   atomic.Uint64

	mu          sync.Mutex
	targets     map[string]TargetSpec
	targetsHash uint64
	members     map[string]*memberInfo  // by node name
	leaving     map[string]bool         // nodes that said goodbye before leaving
	heard       map[string]time.Time    // agent id -> last heartbeat received
	table       map[string]observations // target -> each agent's latest
	agentSeq    map[string][2]uint64    // agent -> (boot, seq) of its latest observation
	assign      shard.Assignment
	prevOwners  map[string]map[string]time.Time // target -> agent -> vote allowed until
	mine        []string
	verdicts    map[string]*verdictState
	incidents   []*Incident // newest last, bounded
	confirm     *confirmer

	m         *clusterMetrics
	keyring   *memberlist.Keyring
	localAddr string
}

// New creates the memberlist and joins the seeds. Nothing runs in the
// background until New returns successfully; on error everything is closed.
func New(cfg Config, local Local, targets []TargetSpec) (*Cluster, error) {
	cfg.applyDefaults()
	if err := checkMeta(cfg.Region, cfg.NodeName, cfg.AgentID, cfg.Version); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	c := &Cluster{
		cfg:        cfg,
		local:      local,
		log:        cfg.Logger,
		boot:       uint64(time.Now().UnixNano()),
		started:    time.Now(),
		now:        time.Now,
		inbox:      make(chan []byte, 4096),
		changed:    make(chan struct{}, 1),
		stop:       make(chan struct{}),
		members:    make(map[string]*memberInfo),
		leaving:    make(map[string]bool),
		heard:      make(map[string]time.Time),
		table:      make(map[string]observations),
		agentSeq:   make(map[string][2]uint64),
		prevOwners: make(map[string]map[string]time.Time),
		verdicts:   make(map[string]*verdictState),
	}
	if cfg.skew != 0 {
		c.now = func() time.Time { return time.Now().Add(cfg.skew) }
	}
	c.m = newClusterMetrics(cfg.Metrics)
	c.confirm = newConfirmer(c)
	c.setTargetsLocked(targets)

	mc := memberlist.DefaultWANConfig()
	mc.Name = cfg.NodeName
	host, port, err := splitHostPort(cfg.Bind)
	if err != nil {
		return nil, fmt.Errorf("cluster bind %q: %w", cfg.Bind, err)
	}
	mc.BindAddr, mc.BindPort = host, port
	if cfg.Advertise != "" {
		ah, ap, err := splitHostPort(cfg.Advertise)
		if err != nil {
			return nil, fmt.Errorf("cluster advertise %q: %w", cfg.Advertise, err)
		}
		mc.AdvertiseAddr, mc.AdvertisePort = ah, ap
	}
	mc.GossipInterval = cfg.GossipInterval
	mc.ProbeInterval = cfg.ProbeInterval
	mc.ProbeTimeout = cfg.ProbeTimeout
	mc.SuspicionMult = cfg.SuspicionMult
	mc.TCPTimeout = cfg.TCPTimeout
	mc.PushPullInterval = cfg.PushPull
	mc.GossipToTheDeadTime = 30 * time.Second
	// A restarted agent keeps its name but may come back on a new address
	// (a rescheduled pod, port 0 in tests): let it reclaim its name quickly
	// instead of being refused as a conflict until the dead node is reaped.
	mc.DeadNodeReclaimTime = 2 * time.Second
	mc.Label = cfg.Label
	mc.Delegate = &delegate{c: c}
	mc.Events = &events{c: c}
	mc.Logger = nil
	mc.LogOutput = slogWriter{log: c.log}
	if cfg.Transport != nil {
		mc.Transport = cfg.Transport
	}
	if len(cfg.Keys) > 0 {
		kr, err := memberlist.NewKeyring(cfg.Keys[1:], cfg.Keys[0])
		if err != nil {
			return nil, fmt.Errorf("gossip key: %w", err)
		}
		mc.Keyring = kr
		c.keyring = kr
		mc.GossipVerifyIncoming = true
		mc.GossipVerifyOutgoing = true
	}
	c.queue = &memberlist.TransmitLimitedQueue{
		NumNodes:       func() int { return c.ml.NumMembers() },
		RetransmitMult: 3,
	}
	ml, err := memberlist.Create(mc)
	if err != nil {
		return nil, fmt.Errorf("start gossip on %s: %w", cfg.Bind, err)
	}
	c.ml = ml
	c.localAddr = ml.LocalNode().Address() // before any goroutine can update it
	c.wg.Add(3)
	go c.recvLoop()
	go c.assignLoop()
	go c.tickLoop()
	c.signalChange()
	if len(cfg.Join) == 0 {
		c.synced.Store(true)
	}
	if len(cfg.Join) > 0 {
		c.wg.Add(1)
		go func() { defer c.wg.Done(); c.join() }()
	}
	return c, nil
}

func splitHostPort(s string) (string, int, error) {
	h, p, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("bad port %q", p)
	}
	return h, port, nil
}

// join contacts the seeds. Failing seeds are logged, not fatal: an agent
// that starts before its peers waits for them (the rejoin loop retries).
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
	n, err := c.ml.Join(seeds)
	if err != nil {
		c.log.Warn("join seeds", "seeds", seeds, "joined", n, "err", err)
		return
	}
	c.log.Info("joined cluster", "seeds", seeds, "contacted", n, "members", c.ml.NumMembers())
}

// Joined reports whether the agent sees at least one other member, or has no
// seeds to join (a cluster of one).
func (c *Cluster) Joined() bool {
	if len(c.cfg.Join) == 0 {
		return true
	}
	return c.ml.NumMembers() > 1
}

// LocalAddr is the address other agents reach this one at.
func (c *Cluster) LocalAddr() string { return c.localAddr }

// Boot is this agent's boot id.
func (c *Cluster) Boot() uint64 { return c.boot }

// AgentID is this agent's id.
func (c *Cluster) AgentID() string { return c.cfg.AgentID }

// Region is this agent's region.
func (c *Cluster) Region() string { return c.cfg.Region }

// Isolated reports whether this agent believes its region is cut off.
func (c *Cluster) Isolated() bool { return c.isolated.Load() }

// SetTargets replaces the target set (on reload). Verdicts, observations
// and incidents of targets that remain are kept.
func (c *Cluster) SetTargets(targets []TargetSpec) {
	c.mu.Lock()
	c.setTargetsLocked(targets)
	c.mu.Unlock()
	if c.ml != nil {
		_ = c.ml.UpdateNode(c.cfg.TCPTimeout) // new targets hash in our meta
	}
	c.signalChange()
}

func (c *Cluster) setTargetsLocked(targets []TargetSpec) {
	c.targets = make(map[string]TargetSpec, len(targets))
	names := make([]string, 0, len(targets))
	for _, t := range targets {
		c.targets[t.Name] = t
		names = append(names, t.Name)
	}
	sort.Strings(names)
	c.targetsHash = hashStrings(names)
	for name := range c.table {
		if _, ok := c.targets[name]; !ok {
			delete(c.table, name)
			delete(c.verdicts, name)
			delete(c.prevOwners, name)
		}
	}
}

func hashStrings(ss []string) uint64 {
	var h uint64 = 14695981039346656037
	for _, s := range ss {
		for i := 0; i < len(s); i++ {
			h ^= uint64(s[i])
			h *= 1099511628211
		}
		h ^= 0xff
		h *= 1099511628211
	}
	return h
}

func (c *Cluster) signalChange() {
	select {
	case c.changed <- struct{}{}:
	default:
	}
}

// Leave tells the others we are going (so they reassign at once instead of
// waiting for failure detection), then shuts memberlist down.
func (c *Cluster) Leave(timeout time.Duration) error {
	select {
	case <-c.stop:
		return nil
	default:
	}
	c.sayGoodbye()
	err := c.ml.Leave(timeout)
	close(c.stop)
	c.wg.Wait()
	if serr := c.ml.Shutdown(); serr != nil {
		err = errors.Join(err, serr)
	}
	return err
}

// Kill stops the agent without Leave, as a crash would (tests, the demo).
func (c *Cluster) Kill() {
	select {
	case <-c.stop:
		return
	default:
	}
	close(c.stop)
	c.wg.Wait()
	_ = c.ml.Shutdown()
}

// Members returns every member this agent knows, itself included, sorted by
// region then name.
func (c *Cluster) Members() []Member {
	c.refreshMembers()
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Member, 0, len(c.members))
	for _, m := range c.members {
		out = append(out, m.Member)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Region != out[j].Region {
			return out[i].Region < out[j].Region
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// refreshMembers is a no-op kept as the one place to refresh the member
// view. Members are tracked from memberlist's event callbacks only: those run
// under memberlist's node lock, while the *Node pointers that Members()
// returns are updated concurrently by memberlist (a data race to read).
func (c *Cluster) refreshMembers() {}

func (c *Cluster) upsertMemberLocked(n *memberlist.Node, state string, now time.Time) *memberInfo {
	meta, err := decodeMeta(n.Meta)
	if err != nil {
		c.m.badMeta.Inc()
		return nil
	}
	m, ok := c.members[n.Name]
	if state == "dead" && c.leaving[n.Name] {
		state = "left"
	}
	if state == "alive" {
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
		if (m.State == "alive" || m.State == "suspect") && m.Proto == int(ProtocolVersion) {
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
		if m.State != "left" {
			seen[m.Region] = true
		}
	}
	out := make([]string, 0, len(seen))
	for r := range seen {
		out = append(out, r)
	}
	sort.Strings(out)
	return out
}

// assignLoop recomputes the assignment off memberlist's goroutines,
// debounced so a burst of joins is one recomputation.
func (c *Cluster) assignLoop() {
	defer c.wg.Done()
	for {
		select {
		case <-c.stop:
			return
		case <-c.changed:
		}
		select {
		case <-c.stop:
			return
		case <-time.After(200 * time.Millisecond):
		}
		c.reassign()
	}
}

func (c *Cluster) reassign() {
	c.refreshMembers()
	now := c.now()
	c.mu.Lock()
	members := c.liveMembersLocked()
	regions := c.knownRegionsLocked()
	ts := make([]shard.Target, 0, len(c.targets))
	for _, t := range c.targets {
		ts = append(ts, shard.Target{Name: t.Name, Regions: effectiveRegions(t.Regions, regions)})
	}
	old := c.assign
	next := shard.Assign(ts, members, c.cfg.ReplicasPerRegion)
	// Forget former owners whose grace is over. policyLocked prunes only
	// the targets this agent leads, so without this every agent kept, for
	// every target, each agent that ever owned it: a leak with each restart
	// under a new name, 4 MB per agent after a cold start of 50 agents with
	// 10k targets (cluster/scale heap profile).
	for name, po := range c.prevOwners {
		for id, until := range po {
			if now.After(until) {
				delete(po, id)
			}
		}
		if len(po) == 0 {
			delete(c.prevOwners, name)
		}
	}
	// Make-before-break: former owners keep a vote for the grace period,
	// until the new owner has reported.
	if len(old.Targets()) > 0 {
		for _, t := range ts {
			for _, owners := range old.Owners(t.Name) {
				for _, id := range owners {
					if !next.IsOwner(t.Name, id) {
						po := c.prevOwners[t.Name]
						if po == nil {
							po = map[string]time.Time{}
							c.prevOwners[t.Name] = po
						}
						po[id] = now.Add(c.cfg.Grace)
					}
				}
			}
		}
	}
	c.assign = next
	mine := next.OwnedBy(c.cfg.AgentID)
	moved := len(mine) != len(c.mine)
	c.mine = mine
	c.m.assigned.Store(int64(len(mine)))
	c.mu.Unlock()
	if moved {
		c.log.Info("assignment changed", "targets", len(mine), "members", len(members))
	}
	c.local.Assigned(mine)
}

func effectiveRegions(want, known []string) []string {
	if len(want) > 0 {
		return want
	}
	return known
}

// Report records this agent's own observation of a target. When its
// state changed (ok or failing), it gets a new sequence number, is gossiped
// and sent straight to the target's leader; on a new failure, the other
// regions are asked to confirm.
func (c *Cluster) Report(o Observation) {
	now := c.now()
	o.AgentID = c.cfg.AgentID
	o.Region = c.cfg.Region
	o.Boot = c.boot
	o.Isolated = c.isolated.Load()
	o.Received = now

	c.mu.Lock()
	if _, ok := c.targets[o.Target]; !ok {
		c.mu.Unlock()
		return
	}
	prev := c.table[o.Target].get(o.AgentID)
	changed := prev == nil || prev.OK != o.OK || prev.Failing != o.Failing || prev.Isolated != o.Isolated
	newFailure := !o.OK && (prev == nil || prev.OK)
	if changed {
		o.Seq = c.seq.Add(1)
	} else {
		o.Seq = prev.Seq
	}
	c.storeLocked(&o)
	if changed {
		c.agentSeq[o.AgentID] = [2]uint64{o.Boot, o.Seq}
	}
	var leader *memberInfo
	if l := c.leaderNodeLocked(o.Target); l != nil {
		cp := *l
		leader = &cp
	}
	c.mu.Unlock()

	if changed {
		msg := encodeResult(&o)
		c.broadcast("r/"+o.Target, msg)
		if c.memberCount() <= fanOutMax {
			c.fanOut(msg)
		} else if leader != nil && !leader.Self {
			if err := c.ml.SendToAddress(leader.addr, msg); err != nil {
				c.m.sendErrors.Inc()
			}
		}
		c.evaluate(o.Target)
	}
	if newFailure && c.cfg.ConfirmOnFailure {
		c.confirm.request(o.Target)
	}
}

func (c *Cluster) storeLocked(o *Observation) {
	cp := *o
	c.table[o.Target] = c.table[o.Target].set(&cp)
}

func (c *Cluster) memberCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.members)
}

// leaderNodeLocked returns the member that leads target.
func (c *Cluster) leaderNodeLocked(target string) *memberInfo {
	id := shard.Leader(target, c.leaderCandidatesLocked(c.now()))
	if id == "" {
		return nil
	}
	return c.memberByAgentLocked(id)
}

// IsLeader reports whether this agent exports target's verdict.
func (c *Cluster) IsLeader(target string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return shard.Leader(target, c.leaderCandidatesLocked(c.now())) == c.cfg.AgentID
}

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
func (b *namedBroadcast) Finished()       {}
func (b *namedBroadcast) Name() string    { return b.name }

var _ memberlist.NamedBroadcast = (*namedBroadcast)(nil)

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
		o, err := decodeResult(b)
		if err != nil {
			c.m.badMessages.Inc()
			return
		}
		c.receive(&o)
	case msgHeartbeat:
		h, err := decodeHeartbeat(b)
		if err != nil {
			c.m.badMessages.Inc()
			return
		}
		c.heartbeat(&h)
	case msgConfirmReq:
		r, err := decodeConfirmReq(b)
		if err != nil {
			c.m.badMessages.Inc()
			return
		}
		c.confirm.serve(r)
	case msgConfirmResp:
		r, err := decodeConfirmResp(b)
		if err != nil {
			c.m.badMessages.Inc()
			return
		}
		c.confirm.answer(r)
	case msgBye:
		d := decoder{b: b}
		d.header(msgBye)
		name := d.str()
		if d.err != nil {
			c.m.badMessages.Inc()
			return
		}
		c.mu.Lock()
		c.leaving[name] = true
		if m := c.members[name]; m != nil && m.State == "dead" {
			m.State = "left"
		}
		c.mu.Unlock()
		c.signalChange()
	case msgIncident:
		in, err := decodeIncident(b)
		if err != nil {
			c.m.badMessages.Inc()
			return
		}
		c.mergeIncident(&in)
	default:
		c.m.badMessages.Inc()
	}
}

// receive stores a remote observation if it is newer than what we have.
func (c *Cluster) receive(o *Observation) {
	if o.AgentID == c.cfg.AgentID || o.Target == "" {
		return
	}
	o.Received = c.now()
	c.mu.Lock()
	if _, ok := c.targets[o.Target]; !ok {
		c.mu.Unlock()
		return
	}
	if prev := c.table[o.Target].get(o.AgentID); prev != nil && !o.newer(prev) {
		if prev.Boot == o.Boot && prev.Seq == o.Seq {
			prev.Received = o.Received // the same news again: still fresh
		}
		c.mu.Unlock()
		return
	}
	c.storeLocked(o)
	if cur := c.agentSeq[o.AgentID]; o.Boot > cur[0] || (o.Boot == cur[0] && o.Seq > cur[1]) {
		c.agentSeq[o.AgentID] = [2]uint64{o.Boot, o.Seq}
	}
	c.mu.Unlock()
	c.m.results.Inc()
	c.evaluate(o.Target)
}

// heartbeat refreshes the receipt time of an agent's observations when our
// view of it is complete (we have its latest sequence number).
func (c *Cluster) heartbeat(h *Heartbeat) {
	if h.AgentID == c.cfg.AgentID {
		return
	}
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.heard[h.AgentID] = now
	for _, m := range c.members {
		if m.AgentID == h.AgentID {
			m.Isolated = h.Isolated
			m.Targets = int(h.Targets)
		}
	}
	cur, ok := c.agentSeq[h.AgentID]
	if !ok || cur[0] != h.Boot || cur[1] < h.Seq {
		c.m.heartbeatGaps.Inc()
		return
	}
	for _, byAgent := range c.table {
		if o := byAgent.get(h.AgentID); o != nil && o.Boot == h.Boot {
			o.Received = now
			o.Isolated = h.Isolated
		}
	}
}

// tickLoop sends heartbeats, re-evaluates verdicts, refreshes our own
// observations, checks isolation and re-joins seeds.
func (c *Cluster) tickLoop() {
	defer c.wg.Done()
	eval := time.NewTicker(c.cfg.EvalEvery)
	hb := time.NewTicker(c.cfg.HeartbeatEvery)
	rejoin := time.NewTicker(c.cfg.RejoinInterval)
	defer eval.Stop()
	defer hb.Stop()
	defer rejoin.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-eval.C:
			if !c.synced.Load() && time.Since(c.started) > syncGrace {
				// No peer answered: decide with what we have (quorum still
				// needs other regions' votes).
				c.synced.Store(true)
			}
			c.refreshMembers()
			c.checkIsolation()
			c.evaluateAll()
		case <-hb.C:
			c.sendHeartbeat()
		case <-rejoin.C:
			c.rejoin()
		}
	}
}

func (c *Cluster) sendHeartbeat() {
	c.mu.Lock()
	cur := c.agentSeq[c.cfg.AgentID]
	h := Heartbeat{AgentID: c.cfg.AgentID, Region: c.cfg.Region, Boot: c.boot, Seq: cur[1],
		Isolated: c.isolated.Load(), Targets: uint32(len(c.mine))}
	c.mu.Unlock()
	msg := encodeHeartbeat(&h)
	c.broadcast("h/"+c.cfg.AgentID, msg)
	c.fanOut(msg)
}

// fanOutMax bounds direct fan-out. memberlist does not relay user
// broadcasts (a queued message reaches only RetransmitMult x log(N) peers),
// so heartbeats, state changes and incidents are also sent straight to
// every live member: at most this many UDP packets per message, and only
// on changes or every HeartbeatEvery. Larger fleets rely on the broadcast
// queue and push/pull.
const fanOutMax = 64

func (c *Cluster) fanOut(msg []byte) {
	c.mu.Lock()
	addrs := make([]memberlist.Address, 0, len(c.members))
	for _, m := range c.members {
		if m.State == "alive" && !m.Self {
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

// leaderSilence is how long an agent may go unheard (no heartbeat) before
// the others stop counting it as a leader candidate: a leader cut off from
// the fleet must not hold verdicts until memberlist declares it dead.
func (c *Cluster) leaderSilence() time.Duration { return 3*c.cfg.HeartbeatEvery + 2*time.Second }

// leaderCandidatesLocked are the live members that may lead a verdict:
// ourselves, members heard from recently, and members that joined too
// recently to have sent a heartbeat. Every connected agent computes the
// same set; a partitioned one excludes the other side, and the other side
// excludes it.
func (c *Cluster) leaderCandidatesLocked(now time.Time) []shard.Member {
	silence := c.leaderSilence()
	out := make([]shard.Member, 0, len(c.members))
	for _, m := range c.members {
		if (m.State != "alive" && m.State != "suspect") || m.Proto != int(ProtocolVersion) {
			continue
		}
		if m.Self || now.Sub(c.heard[m.AgentID]) <= silence || now.Sub(m.Since) <= silence {
			out = append(out, shard.Member{ID: m.AgentID, Region: m.Region})
		}
	}
	return out
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
		if m.State == "alive" {
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

// Incidents returns the incidents this agent knows, newest first.
func (c *Cluster) Incidents() []Incident {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Incident, 0, len(c.incidents))
	for i := len(c.incidents) - 1; i >= 0; i-- {
		in := *c.incidents[i]
		in.Regions = append([]string(nil), in.Regions...)
		out = append(out, in)
	}
	return out
}

// slogWriter adapts memberlist's log.Logger output to slog at debug level,
// promoting its [WARN]/[ERR] lines.
type slogWriter struct{ log *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	s := string(p)
	for len(s) > 0 && (s[len(s)-1] == '\n') {
		s = s[:len(s)-1]
	}
	switch {
	case contains(s, "[ERR]"):
		w.log.Warn("memberlist", "msg", s)
	case contains(s, "[WARN]"):
		w.log.Debug("memberlist", "msg", s)
	default:
		w.log.Debug("memberlist", "msg", s)
	}
	return len(p), nil
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// SetKeys installs a new gossip keyring from the key file: every key is
// accepted for decryption, the first is used for encryption, keys no longer
// listed are removed. Rotation: add the new key as a second line and reload
// every agent; move it first and reload; remove the old line and reload.
func (c *Cluster) SetKeys(keys [][]byte) error {
	kr := c.keyring
	if kr == nil || len(keys) == 0 {
		return nil
	}
	for _, k := range keys {
		if err := kr.AddKey(k); err != nil {
			return err
		}
	}
	if err := kr.UseKey(keys[0]); err != nil {
		return err
	}
	want := map[string]bool{}
	for _, k := range keys {
		want[string(k)] = true
	}
	for _, k := range kr.GetKeys() {
		if !want[string(k)] {
			if err := kr.RemoveKey(k); err != nil {
				return err
			}
		}
	}
	return nil
}

// sayGoodbye tells every member we are leaving on purpose, so they show us
// as "left" (a decommissioned agent or region) rather than "dead" (an
// outage). memberlist itself does not expose the difference.
func (c *Cluster) sayGoodbye() {
	e := encoder{}
	e.byte(msgBye)
	e.byte(wireVersion)
	e.str(c.cfg.NodeName)
	for _, n := range c.liveNodes() {
		if n.Name != c.cfg.NodeName {
			_ = c.ml.SendReliable(n, e.b)
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
		if m.State == "alive" {
			out[name] = &memberlist.Node{Name: name, Addr: m.ip, Port: m.port}
		}
	}
	return out
}
