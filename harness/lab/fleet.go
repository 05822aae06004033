package lab

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vantage-probe/vantage/agent"
	"github.com/vantage-probe/vantage/agent/config"
	"github.com/vantage-probe/vantage/cluster"
	"github.com/vantage-probe/vantage/cluster/clustertest"
)

// fleet is the agents of the lab in one process: each on its own loopback
// address (probes and gossip), gossiping over clustertest transports so a
// region can be cut off, each with its own metrics registry and HTTP server.
type fleet struct {
	opts   Options
	farm   *Farm
	net    *clustertest.Net
	names  []string // target names, in config order
	log    *slog.Logger
	client *http.Client
	// alertmanager is where the agents send their alerts; "" for none.
	alertmanager string

	mu        sync.Mutex
	members   map[string]*member // by node name
	order     []string           // node names in start order
	events    []nodeEvent
	incidents map[string]cluster.Incident // by ID, every agent's records merged
	// counters of agents that were killed: their last scrape, so fleet
	// totals survive a crash.
	deadCounters map[string]float64
}

type member struct {
	node, region, ip string
	a                *agent.Agent
	cancel           context.CancelFunc
	done             chan struct{}
	killed           bool
}

// nodeEvent is a cluster event with the agent that emitted it.
type nodeEvent struct {
	cluster.Event
	By string
}

func newFleet(opts Options, farm *Farm, names []string) *fleet {
	return &fleet{
		opts:         opts,
		farm:         farm,
		net:          clustertest.NewNet(),
		names:        names,
		log:          opts.Logger,
		client:       &http.Client{Timeout: 5 * time.Second},
		members:      map[string]*member{},
		incidents:    map[string]cluster.Incident{},
		deadCounters: map[string]float64{},
	}
}

// regionPrefix is the source address prefix of region i (0-based): agents
// of region i probe from 127.77.(i+1).N, an address range no other test on
// the machine uses, so the farm can fail one region by prefix.
func regionPrefix(i int) string { return "127.77." + strconv.Itoa(i+1) + "." }

// configText is the TOML of one agent: the lab's settings and every target.
func (f *fleet) configText(node, region, ip string) string {
	o := f.opts
	var b strings.Builder
	fmt.Fprintf(&b, "[agent]\nnode = %q\nregion = %q\nlisten = \"127.0.0.1:0\"\nsource_ip = %q\n\n", node, region, ip)
	fmt.Fprintf(&b, "[cluster]\nbind = \"%s:0\"\nlabel = \"vantage-lab\"\nreplicas_per_region = 1\n", ip)
	if o.RejoinInterval > 0 {
		fmt.Fprintf(&b, "rejoin_interval = %q\n", o.RejoinInterval.String())
	}
	fmt.Fprintf(&b, "\n[quorum]\nmin_regions = %d\nconfirm_on_failure = %t\n\n", o.MinRegions, !o.NoConfirm)
	fmt.Fprintf(&b, "[defaults]\ninterval = %q\ntimeout = %q\nfailures = 1\n", o.Interval.String(), o.Timeout.String())
	if f.alertmanager != "" {
		fmt.Fprintf(&b, "\n[alerting]\nalertmanagers = [%q]\n", f.alertmanager)
		if o.ResendInterval > 0 {
			fmt.Fprintf(&b, "resend_interval = %q\n", o.ResendInterval.String())
		}
	}
	for _, n := range f.names {
		fmt.Fprintf(&b, "\n[[target]]\nname = %q\ntype = \"http\"\nurl = %q\n[target.http]\nvalid_status = [200]\n", n, f.farm.URL(n))
	}
	return b.String()
}

// start starts (or restarts) one agent and joins it to the others.
func (f *fleet) start(node, region, ip string) (*member, error) {
	cfg, err := config.Parse(node+".toml", []byte(f.configText(node, region, ip)))
	if err != nil {
		return nil, fmt.Errorf("lab config of %s: %w", node, err)
	}
	cfg.Cluster.Join = f.seeds(node)
	tr, err := f.net.Transport(node, region, ip)
	if err != nil {
		return nil, fmt.Errorf("gossip transport of %s on %s: %w", node, ip, err)
	}
	a, err := agent.New(agent.Options{
		Config:     cfg,
		Version:    "lab",
		Logger:     f.log.With("node", node),
		WatchEvery: -1,
		Transport:  tr,
		OnEvent: func(ev cluster.Event) {
			f.mu.Lock()
			f.events = append(f.events, nodeEvent{Event: ev, By: node})
			f.mu.Unlock()
		},
		ClusterTuning: f.opts.clusterTuning(),
	})
	if err != nil {
		_ = tr.Shutdown()
		return nil, fmt.Errorf("agent %s: %w", node, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &member{node: node, region: region, ip: ip, a: a, cancel: cancel, done: make(chan struct{})}
	go func() { _ = a.Run(ctx); close(m.done) }()
	f.mu.Lock()
	if _, ok := f.members[node]; !ok {
		f.order = append(f.order, node)
	}
	f.members[node] = m
	f.mu.Unlock()
	return m, nil
}

// seeds are the gossip addresses of every other live agent: an agent joins
// whichever answers, and re-joins the missing ones periodically (which is
// what heals a partition).
func (f *fleet) seeds(except string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, n := range f.order {
		if m := f.members[n]; n != except && !m.killed {
			out = append(out, m.a.Cluster().LocalAddr())
		}
	}
	return out
}

// startAll starts every region's agents.
func (f *fleet) startAll() error {
	for i, r := range f.opts.Regions {
		for j := 1; j <= f.opts.AgentsPerRegion; j++ {
			node := fmt.Sprintf("%s-%d", r, j)
			if _, err := f.start(node, r, regionPrefix(i)+strconv.Itoa(j)); err != nil {
				return err
			}
		}
	}
	return nil
}

// live returns the running agents in start order.
func (f *fleet) live() []*member {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]*member, 0, len(f.order))
	for _, n := range f.order {
		if m := f.members[n]; !m.killed {
			out = append(out, m)
		}
	}
	return out
}

func (f *fleet) member(node string) *member {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.members[node]
}

// kill crashes an agent: no Leave, its gossip goes silent. Its incident
// records and counters are collected first, as a scrape would have.
func (f *fleet) kill(node string) {
	m := f.member(node)
	if m == nil || m.killed {
		return
	}
	f.collect()
	last := f.scrape(m)
	m.a.Kill()
	m.cancel()
	<-m.done
	f.mu.Lock()
	m.killed = true
	for k, v := range last {
		f.deadCounters[k] += v
	}
	f.mu.Unlock()
}

// stop ends every agent gracefully.
func (f *fleet) stop() {
	for _, m := range f.live() {
		m.cancel()
	}
	for _, m := range f.live() {
		<-m.done
	}
}

// collect merges every live agent's incident records into the lab's.
func (f *fleet) collect() {
	for _, m := range f.live() {
		for _, in := range m.a.Cluster().Incidents() {
			f.mu.Lock()
			have, ok := f.incidents[in.ID]
			if !ok || (have.ResolvedAt.IsZero() && !in.ResolvedAt.IsZero()) {
				f.incidents[in.ID] = in
			}
			f.mu.Unlock()
		}
	}
}

// collectLoop collects incident records until ctx ends: a killed agent's
// records must be seen before it dies, and the lab's view must not depend
// on a record's gossip reaching every agent.
func (f *fleet) collectLoop(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f.collect()
		}
	}
}

func (f *fleet) allIncidents() []cluster.Incident {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]cluster.Incident, 0, len(f.incidents))
	for _, in := range f.incidents {
		out = append(out, in)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].DetectedAt.Before(out[j].DetectedAt) })
	return out
}

func (f *fleet) allEvents() []nodeEvent {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]nodeEvent(nil), f.events...)
}

// converged reports whether every live agent sees every live agent alive at
// its current address.
func (f *fleet) converged() bool {
	live := f.live()
	addr := make(map[string]string, len(live))
	for _, m := range live {
		addr[m.node] = m.a.Cluster().LocalAddr()
	}
	for _, m := range live {
		alive := 0
		for _, mm := range m.a.Cluster().Members() {
			if mm.State == cluster.Alive && addr[mm.Name] == mm.Addr {
				alive++
			}
		}
		if alive != len(live) {
			return false
		}
	}
	return true
}

// covered reports whether every target's leader has a fresh result from
// every region and calls it up.
func (f *fleet) covered() bool {
	live := f.live()
	if len(live) == 0 {
		return false
	}
	for _, st := range live[0].a.Cluster().Statuses() {
		if st.Verdict != "up" || st.Reporting != len(f.opts.Regions) {
			return false
		}
	}
	return true
}

// counters scrapes every live agent's /metrics and adds the killed agents'
// last values: fleet totals of the counters the lab reports.
func (f *fleet) counters() map[string]float64 {
	f.mu.Lock()
	total := make(map[string]float64, len(f.deadCounters))
	for k, v := range f.deadCounters {
		total[k] += v
	}
	f.mu.Unlock()
	for _, m := range f.live() {
		for k, v := range f.scrape(m) {
			total[k] += v
		}
	}
	return total
}

// scrapedFamilies are the metric families the lab reads from /metrics.
var scrapedFamilies = []string{"vantage_confirmations_total", "vantage_suppressed_failures_total", "vantage_cluster_incidents_opened_total",
	"vantage_leadership_doubted_total"}

// scrape reads the lab's counters from one agent's /metrics, as Prometheus
// would. A failed scrape returns nothing (the agent may be going away).
func (f *fleet) scrape(m *member) map[string]float64 {
	out := map[string]float64{}
	resp, err := f.client.Get("http://" + m.a.HTTPAddr() + "/metrics")
	if err != nil {
		return out
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		for _, fam := range scrapedFamilies {
			if !strings.HasPrefix(line, fam) {
				continue
			}
			i := strings.LastIndexByte(line, ' ')
			if i < 0 {
				continue
			}
			v, err := strconv.ParseFloat(line[i+1:], 64)
			if err != nil {
				continue
			}
			out[line[:i]] += v
		}
	}
	return out
}
