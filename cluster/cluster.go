// Package cluster turns agents in several regions into one fleet: memberlist
// membership with region metadata, target assignment (cluster/shard),
// result sharing over gossip, confirm-on-failure re-probes, quorum verdicts
// (cluster/quorum), incidents and region isolation.
package cluster

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/vantage-probe/vantage/cluster/shard"
	"github.com/vantage-probe/vantage/cluster/transport"
	"github.com/vantage-probe/vantage/internal/mono"
)

// localClock keeps this agent's instants in 8 bytes (internal/mono): the
// leaders' bookkeeping, observations' receipt and measurement, verdicts'
// Since and Updated. One clock for the process, so that an Observation or a
// Verdict converts its own without its Cluster.
var localClock = mono.New()

// syncGrace is how long a new agent waits for a peer's full state before it
// may open incidents on its own.
const syncGrace = 30 * time.Second

// Cluster is one agent's membership in the fleet.
type Cluster struct {
	cfg   Config
	local Local
	log   *slog.Logger
	ml    *memberlist.Memberlist
	queue *memberlist.TransmitLimitedQueue
	boot  uint64
	now   func() time.Time

	inbox    chan []byte  // hand-off from memberlist's goroutines
	digests  chan digest  // peers' push/pull digests, for syncLoop
	keyLists chan keyList // peers' key lists (a digest's answer), for syncLoop
	resends  chan resend  // holders' requests for our observations, for syncLoop
	changed  chan struct{}
	stop     chan struct{}
	stopOnce sync.Once // Leave and Kill stop once, whichever comes first
	wg       sync.WaitGroup
	seq      atomic.Uint64
	isolated atomic.Bool
	// synced is set once we hold a peer's full state (push/pull) or have no
	// seeds: a fresh agent must not open incidents from half a picture.
	synced atomic.Bool
	// tick is the Unix nanoseconds of tickLoop's last pass, for the
	// agent's liveness check (read without the lock).
	tick atomic.Int64
	// settled and candidateSince: see leadership.go.
	settled        atomic.Bool
	candidateSince atomic.Int64 // Unix ns; 0: not a leader candidate
	// heartbeatNow asks tickLoop for a heartbeat at once (a member joined,
	// our candidacy changed), so that leadership moves in milliseconds,
	// not at the next HeartbeatEvery.
	heartbeatNow chan struct{}
	started      time.Time
	reqID        atomic.Uint64

	mu sync.Mutex
	// targets holds each configured target's record: its spec and what
	// this agent keeps of it (one map, not one per kind of state: each
	// map keyed by the target cost 30-110 bytes a target).
	targets     map[string]*targetRec
	targetsHash uint64
	members     map[string]*memberInfo // by node name
	leaving     map[string]bool        // nodes that said goodbye before leaving
	heard       map[string]time.Time   // agent id -> last heartbeat received
	// peerSettled and doubts are each peer's last heartbeat's word on
	// leadership (see leadership.go), kept by agent id: a heartbeat may
	// arrive before memberlist tells us of its sender.
	peerSettled map[string]bool
	doubts      map[string]doubtSet
	lastDoubts  []uint32             // what our last heartbeat said
	wasDoubted  bool                 // for vantage_leadership_doubted_total
	agentSeq    map[string][2]uint64 // agent -> (boot, seq) of its latest observation
	assign      shard.Assignment
	// assignKey is what assign was made of (assignmentKey); reassign
	// skips the work while it holds. assignKeyOK is false until the first
	// assignment and after a change of targets.
	assignKey   uint64
	assignKeyOK bool
	// prevOwners and firstAsked are kept apart from the targets' records:
	// only targets in a hand-over or a failure streak have them.
	prevOwners map[string]formerOwners // target -> agents and until when they vote
	prunedAt   time.Time               // when pruneFormerOwnersLocked last walked prevOwners
	// lostVotes indexes prevOwners' entries for this agent that it holds
	// an observation of: the targets whose vote it still vouches for
	// (ownFreshForLocked). Walking prevOwners instead, every vouch and
	// resend walked every target of a cold start (a tenth of the CPU of
	// 100 agents x 20k targets).
	lostVotes  map[string]time.Time // target -> until when our vote lasts
	firstAsked map[string]time.Time // target -> our first confirmation request of the streak
	mine       []string
	// nLeading counts the records with a leader's state (targetRec.lead).
	nLeading int
	// vouches are the probers' latest vouches, for checkVouches; holdKey
	// is the holders' view refreshHolders last acted on (holders.go).
	vouches map[string]vouch
	holdKey uint64
	held    map[string]bool // target -> this agent holds it, under holdKey
	plan    vouchPlan       // our targets by holder, under holdKey and mineGen
	mineGen uint64          // counts assignments of mine
	// ledKey is the rivals and the target set under which evaluateAll
	// last marked the targets this agent leads (targetRec.led); ledOK
	// says it did.
	ledKey   uint64
	ledOK    bool
	ledNames []string // the targets led (or holding a leader's state) under ledKey
	// observed are the records that have held an observation since
	// checkVouches last passed (targetRec.listed): the only ones a vouch
	// can count. Walking every target each second instead was a tenth of
	// 100 agents' CPU at 20k targets, where an agent holds observations
	// of one target in twelve.
	observed []*targetRec
	// view is the leader view cached (leaderViewLocked); viewGen moves
	// whenever what it is computed from may have changed.
	view       leaderView
	viewGen    atomic.Uint64
	verdictSeq atomic.Uint64
	regionSets regionSets  // the verdicts' region lists, shared (held.go)
	incidents  []*Incident // newest last, bounded
	// incidentGen counts changes to incidents (added, merged, resolved,
	// alerted, dropped), so the agent's state writer reads them only
	// when they changed; dropped are IDs the fleet gave up (a duplicate
	// of one outage), for the state to delete.
	incidentGen atomic.Uint64
	dropped     []string
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
		cfg:          cfg,
		local:        local,
		log:          cfg.Logger,
		boot:         uint64(time.Now().UnixNano()),
		now:          time.Now,
		inbox:        make(chan []byte, 4096),
		digests:      make(chan digest, pendingDigests),
		keyLists:     make(chan keyList, pendingDigests),
		resends:      make(chan resend, 64),
		vouches:      make(map[string]vouch),
		held:         make(map[string]bool),
		changed:      make(chan struct{}, 1),
		heartbeatNow: make(chan struct{}, 1),
		stop:         make(chan struct{}),
		members:      make(map[string]*memberInfo),
		leaving:      make(map[string]bool),
		heard:        make(map[string]time.Time),
		peerSettled:  make(map[string]bool),
		doubts:       make(map[string]doubtSet),
		agentSeq:     make(map[string][2]uint64),
		prevOwners:   make(map[string]formerOwners),
		lostVotes:    make(map[string]time.Time),
		firstAsked:   make(map[string]time.Time),
	}
	c.started = time.Now()
	if cfg.skew != 0 {
		c.now = func() time.Time { return time.Now().Add(cfg.skew) }
	}
	c.m = newClusterMetrics(cfg.Metrics)
	c.confirm = newConfirmer(c)
	c.setTargetsLocked(targets)
	c.restoreLocked(cfg.Restore) // after: it dates the targets' records

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
	// No LZW: memberlist compresses every packet and stream with a table
	// allocated per call, and keeps the result only if it is smaller,
	// which a 30-120 byte message of ours rarely is. In a 100-agent fleet
	// in one process that was a quarter of the CPU (issue 17). Receivers
	// decode either form, so a fleet may mix versions while it upgrades.
	mc.EnableCompression = false
	mc.Label = cfg.Label
	mc.Delegate = &delegate{c: c}
	mc.Events = &events{c: c}
	mc.Logger = nil
	mc.LogOutput = newSlogWriter(c.log, cfg.Metrics)
	mc.Transport = cfg.Transport
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
	var own *transport.Net
	if mc.Transport == nil {
		if own, err = transport.Listen(transport.Config{BindAddr: host, BindPort: port, Log: c.log}); err != nil {
			return nil, fmt.Errorf("start gossip on %s: %w", cfg.Bind, err)
		}
		// memberlist gives a seed without a port its own bind port, as it
		// does when it binds the port itself.
		mc.BindPort = own.Port()
		mc.Transport = own
	}
	ml, err := memberlist.Create(mc)
	if err != nil {
		if own != nil {
			own.Shutdown()
		}
		return nil, fmt.Errorf("start gossip on %s: %w", cfg.Bind, err)
	}
	c.ml = ml
	c.localAddr = ml.LocalNode().Address() // before any goroutine can update it
	c.wg.Add(4)
	go c.syncLoop()
	go c.recvLoop()
	go c.assignLoop()
	go c.tickLoop()
	c.signalChange()
	if !c.hasSeeds() {
		c.synced.Store(true)
		c.settle()
	} else {
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
	old := c.targets
	c.targets = make(map[string]*targetRec, len(targets))
	names := make([]string, 0, len(targets))
	now := c.now().UnixNano()
	for _, t := range targets {
		// What is kept per target goes with the target's record
		// (observations, verdicts, the leader's state, the first
		// sighting); a target that is no longer configured loses it.
		r := old[t.Name]
		if r == nil {
			r = &targetRec{firstSeen: now}
		}
		r.spec = t
		c.targets[t.Name] = r
		names = append(names, t.Name)
	}
	c.plan = vouchPlan{} // it holds records, some of them gone now
	clear(c.observed)    // no removed target's record kept alive past the length
	c.observed = c.observed[:0]
	for _, r := range c.targets {
		if r.listed = len(r.obs) > 0; r.listed {
			c.observed = append(c.observed, r)
		}
	}
	sort.Strings(names)
	c.targetsHash = hashStrings(names)
	c.assignKeyOK = false // a target's regions may have changed, not only the names
	c.viewGen.Add(1)
	// New records are unmarked: evaluateAll marks them all again, even
	// if the set is back to one it last marked under (a target removed
	// and added again between two of its passes).
	c.ledOK = false
	for name, r := range old {
		if _, ok := c.targets[name]; !ok && r.lead != nil {
			c.nLeading--
		}
	}
	// So do its former owners and its confirmation streak; incidents stay.
	for name := range c.prevOwners {
		if _, ok := c.targets[name]; !ok {
			delete(c.prevOwners, name)
			delete(c.lostVotes, name)
		}
	}
	for name := range c.firstAsked {
		if _, ok := c.targets[name]; !ok {
			delete(c.firstAsked, name)
		}
	}
}

// targetRec is one target's record: its spec and what this agent keeps of
// it.
type targetRec struct {
	spec TargetSpec
	// obs are each agent's latest observation of the target.
	obs observations
	// verdict is the target's verdict as its leader published it (ours
	// for the targets we lead): the one source of a target's state.
	verdict *heldVerdict
	// lead is the leader's bookkeeping, while this agent leads the target.
	lead *leaderState
	// firstSeen is when this agent first knew the target, in Unix ns
	// (wall clock, as persisted): the start of its SLO figures.
	firstSeen int64
	// led: this agent leads the target under ledKey (evaluateAll).
	led bool
	// listed: the record is in Cluster.observed.
	listed bool
}

// obsLocked is target's observations (nil for an unknown target).
func (c *Cluster) obsLocked(target string) observations {
	if r := c.targets[target]; r != nil {
		return r.obs
	}
	return nil
}

// leadingLocked is the leader's state of target, or nil when this agent
// does not lead it.
func (c *Cluster) leadingLocked(target string) *leaderState {
	if r := c.targets[target]; r != nil {
		return r.lead
	}
	return nil
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
// waiting for failure detection), then shuts memberlist down. The goodbyes
// and memberlist's leave share timeout; a second call, or one after Kill,
// does nothing.
func (c *Cluster) Leave(timeout time.Duration) error {
	var err error
	c.stopOnce.Do(func() {
		deadline := time.Now().Add(timeout)
		c.sayGoodbye(deadline)
		err = c.ml.Leave(max(time.Until(deadline), 0))
		err = errors.Join(err, c.shutdown())
	})
	return err
}

// Kill stops the agent without Leave, as a crash would (tests, the demo).
func (c *Cluster) Kill() {
	c.stopOnce.Do(func() { _ = c.shutdown() })
}

// stopped reports whether Leave or Kill ran.
func (c *Cluster) stopped() bool {
	select {
	case <-c.stop:
		return true
	default:
		return false
	}
}

// shutdown stops our goroutines, then memberlist's.
func (c *Cluster) shutdown() error {
	close(c.stop)
	c.wg.Wait()
	return c.ml.Shutdown()
}

var _ memberlist.NamedBroadcast = (*namedBroadcast)(nil)

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
		c.tick.Store(time.Now().UnixNano())
		select {
		case <-c.stop:
			return
		case <-eval.C:
			if !c.synced.Load() && time.Since(c.started) > syncGrace {
				// No peer answered: decide with what we have (quorum still
				// needs other regions' votes).
				c.synced.Store(true)
			}
			c.settle()
			c.refreshCandidacy()
			c.refreshDoubts()
			c.refreshHolders()
			c.checkVouches()
			c.checkIsolation()
			c.evaluateAll()
		case <-hb.C:
			c.sendHeartbeat()
			c.sendVouches()
		case <-c.heartbeatNow:
			c.sendHeartbeat()
		case <-rejoin.C:
			c.rejoin()
		}
	}
}

// LastTick returns when the cluster's tick loop (heartbeats, verdicts,
// isolation) last passed; zero before it started.
func (c *Cluster) LastTick() time.Time {
	if ns := c.tick.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return time.Time{}
}

func (c *Cluster) emit(ev Event) {
	if c.cfg.OnEvent != nil {
		c.cfg.OnEvent(ev)
	}
}
