package cluster

import (
	"context"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/vantage-probe/vantage/cluster/shard"
)

// Confirm-on-failure limits. A requester asks each other region once per
// target per cooldown, at most a bucket's worth per second overall; a
// responder runs at most serveCap confirmations at once and answers BUSY
// beyond that. So confirmation traffic per failing target is bounded by
// (regions-1) requests per cooldown, whatever the fleet size.
const (
	confirmCooldown = 10 * time.Second
	confirmRate     = 20.0 // requests per second, sustained
	confirmBurst    = 40.0
	serveCap        = 32
	reliablePool    = 8
)

type confirmer struct {
	c *Cluster

	mu          sync.Mutex
	lastAsked   map[string]time.Time // target -> last request
	outstanding map[uint64]pending
	tokens      float64
	refilled    time.Time

	serving  chan struct{} // responder concurrency cap
	reliable chan struct{} // bounded pool for reliable (TCP) fallbacks
}

type pending struct {
	target string
	at     time.Time
	region string
}

func newConfirmer(c *Cluster) *confirmer {
	return &confirmer{
		c:           c,
		lastAsked:   map[string]time.Time{},
		outstanding: map[uint64]pending{},
		tokens:      confirmBurst,
		serving:     make(chan struct{}, serveCap),
		reliable:    make(chan struct{}, reliablePool),
	}
}

// allow applies the per-target cooldown and the token bucket.
func (f *confirmer) allow(target string, now time.Time, n int) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if last, ok := f.lastAsked[target]; ok && now.Sub(last) < confirmCooldown {
		return false
	}
	f.tokens = min(confirmBurst, f.tokens+now.Sub(f.refilled).Seconds()*confirmRate)
	f.refilled = now
	if f.tokens < float64(n) {
		return false
	}
	f.tokens -= float64(n)
	f.lastAsked[target] = now
	// Forget requests nobody answered; count them as timeouts.
	for id, p := range f.outstanding {
		if now.Sub(p.at) > 30*time.Second {
			delete(f.outstanding, id)
			f.c.m.confirm["timeout"].Inc()
		}
	}
	return true
}

// ConfirmSlow asks the other regions to probe target now because this
// agent's probe of it is taking far longer than usual (the agent's hedge:
// see agent.probeOnce). Same limits as a confirmation of a failure: one
// request per target per cooldown, the token bucket.
func (c *Cluster) ConfirmSlow(target string) {
	if !c.cfg.ConfirmOnFailure {
		return
	}
	c.m.confirm["slow_probe"].Inc()
	c.confirm.request(target)
}

// request asks the target's assignee in every other region to probe now.
// The first live (not suspect) assignee in rank order is asked; when all of
// a region's assignees are suspect, the next-ranked live agent there.
func (f *confirmer) request(target string) {
	c := f.c
	now := c.now()
	c.mu.Lock()
	members := c.liveMembersLocked()
	owners := c.assign.Owners(target)
	suspect := map[string]bool{}
	nodeOf := map[string]string{}
	for _, m := range c.members {
		nodeOf[m.AgentID] = m.Name
		if m.State != Alive {
			suspect[m.AgentID] = true
		}
	}
	var asks []pending
	var ids []string
	for region, ranked := range owners {
		if region == c.cfg.Region {
			continue
		}
		pick := ""
		for _, id := range ranked {
			if !suspect[id] {
				pick = id
				break
			}
		}
		if pick == "" {
			for _, m := range shard.Rank(target, members) {
				if m.Region == region && !suspect[m.ID] {
					pick = m.ID
					break
				}
			}
		}
		if pick != "" {
			asks = append(asks, pending{target: target, at: now, region: region})
			ids = append(ids, nodeOf[pick])
		}
	}
	c.mu.Unlock()
	if len(asks) == 0 {
		return
	}
	if !f.allow(target, now, len(asks)) {
		c.m.confirm["rate_limited"].Inc()
		return
	}
	nodes := c.liveNodes()
	// Dated before the requests go out, so the leader usually knows when
	// confirmation was asked before the answers make the quorum.
	c.confirmSent(target, now)
	for i, p := range asks {
		n := nodes[ids[i]]
		if n == nil {
			continue
		}
		id := c.reqID.Add(1)
		f.mu.Lock()
		f.outstanding[id] = p
		f.mu.Unlock()
		msg := encodeConfirmReq(&confirmReq{ID: id, Target: target, From: c.cfg.NodeName})
		c.m.confirm["requested"].Inc()
		f.send(n, msg)
	}
}

// send tries UDP first (fast, usually enough); on a local send error it
// falls back to a reliable TCP send from a bounded pool.
func (f *confirmer) send(n *memberlist.Node, msg []byte) {
	if err := f.c.ml.SendToAddress(memberlist.Address{Addr: n.Address(), Name: n.Name}, msg); err == nil {
		return
	}
	select {
	case f.reliable <- struct{}{}:
		go func() {
			defer func() { <-f.reliable }()
			if err := f.c.ml.SendReliable(n, msg); err != nil {
				f.c.m.sendErrors.Inc()
			}
		}()
	default:
		f.c.m.sendErrors.Inc()
	}
}

// serve runs a confirmation for a peer, or answers BUSY at the cap. The
// probe's result also flows through the agent's normal path (Report), so
// the leader hears of it by gossip; the reply tells the requester directly.
func (f *confirmer) serve(r confirmReq) {
	c := f.c
	reply := func(resp *confirmResp) {
		if n := c.liveNodes()[r.From]; n != nil {
			f.send(n, encodeConfirmResp(resp))
		}
	}
	select {
	case f.serving <- struct{}{}:
	default:
		reply(&confirmResp{ID: r.ID, Busy: true})
		return
	}
	c.m.confirm["served"].Inc()
	c.mu.Lock()
	timeout := time.Second
	if rec := c.targets[r.Target]; rec != nil {
		timeout += rec.spec.Timeout
	}
	c.mu.Unlock()
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer func() { <-f.serving }()
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		go func() {
			select {
			case <-c.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		obs, ok := c.local.Confirm(ctx, r.Target)
		if !ok {
			reply(&confirmResp{ID: r.ID, Busy: true})
			return
		}
		obs.Target = r.Target
		obs.AgentID = c.cfg.AgentID
		obs.Region = c.cfg.Region
		reply(&confirmResp{ID: r.ID, Obs: obs})
	}()
}

// answer accounts for a confirmation response.
func (f *confirmer) answer(r confirmResp) {
	f.mu.Lock()
	_, ok := f.outstanding[r.ID]
	delete(f.outstanding, r.ID)
	f.mu.Unlock()
	if !ok {
		return // unasked, or answered after its timeout was counted
	}
	switch {
	case r.Busy:
		f.c.m.confirm["busy"].Inc()
	case r.Obs.OK:
		f.c.m.confirm["refuted"].Inc()
	default:
		f.c.m.confirm["confirmed"].Inc()
	}
}
