//go:build linux

package netlab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// view is one agent at one scrape round.
type view struct {
	state    procState
	healthOK bool
	healthEr string
	// healthTimeout: /healthz timed out (as opposed to a refusal or a
	// status other than 200, which are definite).
	healthTimeout bool
	m             *sample   // nil when /metrics failed
	mAt           time.Time // when /metrics was read
	// assign is this agent's view of the assignment: target -> region ->
	// agents (joined); nil when /api/v1/targets failed.
	assign map[string]map[string]string
	// leader is who this agent says leads each target.
	leader map[string]string
	self   selfView
}

type selfView struct {
	ConfigOK    bool   `json:"config_ok"`
	ConfigError string `json:"config_error"`
}

// openHealth is a /healthz failure still being seen; timeout while every
// failure so far was a timeout.
type openHealth struct {
	Violation
	timeout bool
}

// round is one scrape of every agent, all at once.
type round struct {
	at    time.Time
	views map[string]*view // by node
}

// monitor scrapes every agent every second and checks OneExporter and
// HealthyAgents as it goes; it also records what the offline checks need:
// when each agent's view of the assignment changed, and every incident.
type monitor struct {
	fleet    *fleet
	every    time.Duration
	timeout  time.Duration
	startFor time.Duration // how long a new process may take to answer /healthz
	record   func(Violation)
	changed  func(at time.Time, target, region string)

	mu        sync.Mutex
	last      *round
	rounds    int
	prev      map[string]map[string]map[string]string // node -> its last assignment view
	incidents map[string]Incident
	// seenAt is the last round an agent held each incident, heldAt the
	// last round any agent's incidents were read: an incident no agent
	// holds any more was folded into another (cluster.foldResolvedLocked:
	// one outage that two leaders declared without hearing each other) and
	// is judged as the fleet finally has it, not as one side once had it.
	seenAt    map[string]time.Time
	heldAt    time.Time
	open1     map[string]*Violation  // OneExporter violations still being seen, by target
	open5     map[string]*openHealth // failed /healthz still being seen, by node
	startLate map[string]time.Time   // spawn time already reported as too slow
	gaps      int                    // (round, target) pairs nobody exported
	failed    int                    // scrapes of running agents that failed
	skewed    int                    // (round, target) pairs not judged: the exporters' scrapes too far apart
	slow      int                    // /healthz timeouts not counted (a host stall, or one round only)
	stalls    []Span                 // when the harness itself was not scheduled
}

// watchdog records the times the harness's process was not scheduled.
func (m *monitor) watchdog(ctx context.Context) {
	t := time.NewTicker(stallTick)
	defer t.Stop()
	prev := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			now := time.Now()
			if late := now.Sub(prev) - stallTick; late >= stallMin {
				m.mu.Lock()
				m.stalls = append(m.stalls, Span{From: prev, To: now})
				m.mu.Unlock()
			}
			prev = now
		}
	}
}

// stalledLocked reports whether the harness stalled in [from, to].
func (m *monitor) stalledLocked(from, to time.Time) bool {
	for _, s := range m.stalls {
		if s.From.Before(to) && s.To.After(from) {
			return true
		}
	}
	return false
}

func newMonitor(f *fleet, record func(Violation), changed func(time.Time, string, string)) *monitor {
	return &monitor{fleet: f, every: time.Second, timeout: reqTimeout, startFor: 15 * time.Second,
		record: record, changed: changed, prev: map[string]map[string]map[string]string{},
		incidents: map[string]Incident{}, seenAt: map[string]time.Time{}, open1: map[string]*Violation{}, open5: map[string]*openHealth{},
		startLate: map[string]time.Time{}}
}

// run scrapes until ctx ends.
func (m *monitor) run(ctx context.Context) {
	go m.watchdog(ctx)
	t := time.NewTicker(m.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			m.flush()
			return
		case now := <-t.C:
			m.scrapeRound(ctx, now)
		}
	}
}

// scrapeRound scrapes every agent concurrently and checks the round.
func (m *monitor) scrapeRound(ctx context.Context, at time.Time) {
	r := &round{at: at, views: map[string]*view{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	rctx, cancel := context.WithTimeout(ctx, m.timeout)
	defer cancel()
	incs := map[string][]Incident{}
	for _, a := range m.fleet.agents {
		state, _, _ := a.snapshot()
		if state == procDown || state == procStopped {
			mu.Lock()
			r.views[a.Node] = &view{state: state}
			mu.Unlock()
			continue
		}
		wg.Go(func() {
			v, ins := scrapeAgent(rctx, a)
			v.state = state
			mu.Lock()
			r.views[a.Node] = v
			incs[a.Node] = ins
			mu.Unlock()
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		return
	}
	m.check(r, incs)
}

// scrapeAgent reads /healthz, /metrics, /api/v1/targets and
// /api/v1/incidents.
func scrapeAgent(ctx context.Context, a *agentProc) (*view, []Incident) {
	v := &view{}
	var ins []Incident
	var wg sync.WaitGroup
	wg.Go(func() {
		// How far the request got, for the evidence when it fails: no
		// connection (the harness or the agent's listener) or no answer
		// on one (the agent).
		start := time.Now()
		conn := "no connection"
		tctx := httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) {
			conn = fmt.Sprintf("connected after %dms (reused %t), no answer", time.Since(start).Milliseconds(), i.Reused)
		}})
		resp, err := a.get(tctx, "/healthz")
		if err != nil {
			v.healthEr = fmt.Sprintf("%v; %s after %dms", err, conn, time.Since(start).Milliseconds())
			v.healthTimeout = errors.Is(err, context.DeadlineExceeded)
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		v.healthOK = resp.StatusCode == http.StatusOK
		if !v.healthOK {
			v.healthEr = resp.Status
		}
	})
	wg.Go(func() {
		resp, err := a.get(ctx, "/metrics")
		if err != nil {
			return
		}
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			v.m, _ = parseMetrics(resp.Body)
			v.mAt = time.Now()
		}
	})
	wg.Go(func() {
		resp, err := a.get(ctx, "/api/v1/targets")
		if err != nil {
			return
		}
		defer resp.Body.Close()
		var body struct {
			Agent   selfView `json:"agent"`
			Targets []struct {
				Name       string              `json:"name"`
				Leader     string              `json:"leader"`
				Assignment map[string][]string `json:"assignment"`
			} `json:"targets"`
		}
		if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&body) != nil {
			return
		}
		v.self = body.Agent
		v.assign = map[string]map[string]string{}
		v.leader = map[string]string{}
		for _, t := range body.Targets {
			v.leader[t.Name] = t.Leader
			byRegion := map[string]string{}
			for r, ids := range t.Assignment {
				ids = slices.Clone(ids)
				sort.Strings(ids)
				byRegion[r] = strings.Join(ids, "+")
			}
			v.assign[t.Name] = byRegion
		}
	})
	wg.Go(func() {
		resp, err := a.get(ctx, "/api/v1/incidents")
		if err != nil {
			return
		}
		defer resp.Body.Close()
		var body struct {
			Incidents []Incident `json:"incidents"`
		}
		if resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(&body) == nil {
			ins = body.Incidents
			if ins == nil {
				ins = []Incident{} // read, and none: not the nil of a failed read
			}
		}
	})
	wg.Wait()
	return v, ins
}

func (m *monitor) check(r *round, incs map[string][]Incident) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rounds++
	m.last = r

	// Starting agents become running once /healthz answers; one that takes
	// longer than startFor breaks HealthyAgents.
	for _, a := range m.fleet.agents {
		v := r.views[a.Node]
		state, spawned, resumed := a.snapshot()
		switch {
		case state == procStarting && v.healthOK:
			a.mu.Lock()
			if a.state == procStarting {
				a.state = procRunning
			}
			a.mu.Unlock()
			m.fleet.events(r.at, a.Node, "healthy")
		case state == procStarting && r.at.Sub(spawned) > m.startFor && !m.startLate[a.Node].Equal(spawned):
			m.startLate[a.Node] = spawned
			m.record(Violation{Inv: HealthyAgents, At: r.at, Agents: []string{a.Node},
				Detail: fmt.Sprintf("/healthz not answering %v after the process started: %s", m.startFor, v.healthEr)})
		}
		// A running agent must answer /healthz; one just resumed from
		// SIGSTOP gets two rounds to catch up. A refusal or a status other
		// than 200 counts at once; a timeout counts when the next round
		// times out too and the harness was scheduled meanwhile (else it
		// is counted as slow, in the figures).
		bad := state == procRunning && !v.healthOK && r.at.Sub(resumed) > 2*m.every
		if bad && v.healthTimeout && m.stalledLocked(r.at, time.Now()) {
			bad = false
			m.slow++
		}
		o := m.open5[a.Node]
		switch {
		case !bad && o != nil:
			if o.Rounds > 1 || !o.timeout {
				m.record(o.Violation)
			} else {
				m.slow++
			}
			delete(m.open5, a.Node)
		case bad && o != nil:
			o.Until, o.Rounds = r.at, o.Rounds+1
			o.timeout = o.timeout && v.healthTimeout
		case bad:
			m.open5[a.Node] = &openHealth{Violation: Violation{Inv: HealthyAgents, At: r.at, Until: r.at, Rounds: 1,
				Agents: []string{a.Node}, Detail: "/healthz did not answer 200: " + v.healthEr}, timeout: v.healthTimeout}
		}
		if state == procRunning && v.m == nil {
			m.failed++
		}
	}

	// OneExporter: who exports each target's verdict this round.
	exporters := map[string][]string{}
	targets := map[string]bool{}
	for node, v := range r.views {
		if v.m == nil {
			continue
		}
		for t := range v.m.Up {
			exporters[t] = append(exporters[t], node)
		}
		for t := range v.m.Probed {
			targets[t] = true
		}
	}
	for t := range targets {
		if len(exporters[t]) == 0 {
			m.gaps++
		}
	}
	for t, nodes := range exporters {
		if len(nodes) < 2 {
			continue
		}
		first, last := r.views[nodes[0]].mAt, r.views[nodes[0]].mAt
		for _, n := range nodes[1:] {
			at := r.views[n].mAt
			first, last = minTime(first, at), maxTime(last, at)
		}
		if last.Sub(first) > maxSkew {
			m.skewed++
			delete(exporters, t)
		}
	}
	for t, o := range m.open1 {
		if len(exporters[t]) < 2 {
			m.record(*o)
			delete(m.open1, t)
		}
	}
	for t, nodes := range exporters {
		if len(nodes) < 2 {
			continue
		}
		sort.Strings(nodes)
		if o := m.open1[t]; o != nil && slices.Equal(o.Agents, nodes) {
			o.Until, o.Rounds = r.at, o.Rounds+1
			continue
		} else if o != nil {
			m.record(*o)
		}
		m.open1[t] = &Violation{Inv: OneExporter, At: r.at, Until: r.at, Rounds: 1, Target: t, Agents: nodes,
			Detail: fmt.Sprintf("%d agents export vantage_target_up in one round; the leader in each agent's eyes: %s",
				len(nodes), leaderViews(r, t))}
	}

	// Assignment views: a change in any agent's view is a reassignment.
	for node, v := range r.views {
		if v.assign == nil {
			continue
		}
		prev := m.prev[node]
		for t, regions := range v.assign {
			for reg, who := range regions {
				if prev == nil || prev[t][reg] != who {
					m.changed(r.at, t, reg)
				}
			}
		}
		for t, regions := range prev {
			for reg := range regions {
				if _, ok := v.assign[t][reg]; !ok {
					m.changed(r.at, t, reg)
				}
			}
		}
		m.prev[node] = v.assign
	}
	for _, a := range m.fleet.agents {
		if st := r.views[a.Node].state; st == procDown {
			delete(m.prev, a.Node) // a restarted agent starts from no view
		}
	}

	for _, ins := range incs {
		if ins != nil {
			m.heldAt = r.at
		}
		for _, in := range ins {
			m.seenAt[in.ID] = r.at
			have, ok := m.incidents[in.ID]
			if !ok || (have.ResolvedAt.IsZero() && !in.ResolvedAt.IsZero()) {
				m.incidents[in.ID] = in
			}
		}
	}
}

// leaderViews says who each scraped agent thinks leads target.
func leaderViews(r *round, target string) string {
	var parts []string
	for node, v := range r.views {
		switch {
		case v.leader != nil:
			parts = append(parts, node+"->"+v.leader[target])
		case v.state == procStopped || v.state == procDown:
			parts = append(parts, node+" "+v.state.String())
		default:
			parts = append(parts, node+" ?")
		}
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

// flush records the violations still being seen.
func (m *monitor) flush() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for t, o := range m.open1 {
		m.record(*o)
		delete(m.open1, t)
	}
	for n, o := range m.open5 {
		if o.Rounds > 1 || !o.timeout {
			m.record(o.Violation)
		}
		delete(m.open5, n)
	}
}

// latest returns the last round (nil before the first).
func (m *monitor) latest() *round {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.last
}

func (m *monitor) allIncidents() []Incident {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Incident, 0, len(m.incidents))
	for id, in := range m.incidents {
		if m.seenAt[id].Before(m.heldAt.Add(-3 * m.every)) {
			continue // folded into another: no agent holds it any more
		}
		out = append(out, in)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].DetectedAt.Before(out[j].DetectedAt) })
	return out
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
