// Package agent runs one Vantage agent: it loads the config, schedules the
// probes of the targets the cluster assigns to it, keeps per-target state
// (consecutive failures, recovery hysteresis), reports to the cluster,
// exports metrics and reloads without losing state.
package agent

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/hashicorp/memberlist"

	"github.com/vantage-probe/vantage/agent/config"
	"github.com/vantage-probe/vantage/cluster"
	"github.com/vantage-probe/vantage/exporter"
)

// Options configure an agent beyond its config file.
type Options struct {
	// ConfigPath is reloaded on Reload and when the file (or an include)
	// changes; empty when Config came from elsewhere (the demo).
	ConfigPath string
	Config     *config.Config
	Version    string
	Logger     *slog.Logger
	// MaxInFlight bounds concurrent probes; default 1000.
	MaxInFlight int
	// WatchEvery is how often config files are checked for changes; 0 = 2s,
	// negative disables watching.
	WatchEvery time.Duration
	// Transport replaces memberlist's network transport (tests).
	Transport memberlist.NodeAwareTransport
	// OnEvent receives fleet events (incidents, suppressions, members).
	OnEvent func(cluster.Event)
	// Overrides are the command-line flags, re-applied on every reload.
	Overrides config.Overrides
	// Cluster tuning for tests and the demo; zero values use defaults.
	ClusterTuning func(*cluster.Config)
	// OnLateness, when set, also receives how late each scheduled probe
	// started: vantage_schedule_lateness_seconds summarises the last 5
	// minutes, a benchmark needs exactly its own measurement window.
	OnLateness func(late time.Duration)
}

// Agent is one running agent.
type Agent struct {
	opts    Options
	log     *slog.Logger
	reg     *exporter.Registry
	srv     *exporter.Server
	clp     atomic.Pointer[cluster.Cluster]
	sched   *Scheduler
	started time.Time

	cfg atomic.Pointer[config.Config]

	mu        sync.Mutex
	states    map[string]*targetState // every configured target
	assigned  map[string]bool
	graceTill map[string]time.Time // formerly assigned, still probed until
	// everAssigned is set by the first Assigned call: the targets of the
	// first assignment start at their phase, later ones at once.
	everAssigned bool
	reloadOK     bool
	reloadErr    string
	reloadAt     time.Time

	probeCtx    context.Context
	probeCancel context.CancelFunc
	// runCtx lives as long as Run: the alerting Notifier a reload builds
	// runs under it.
	runCtx atomic.Pointer[context.Context]

	alerts *alerting

	inFlight  atomic.Int64
	lateness  *metrics.Summary
	skipped   map[string]*metrics.Counter
	reloadOKG atomic.Bool
	reloadTS  atomic.Int64
}

// New builds an agent: it binds the HTTP listener and the gossip port
// (so a taken port fails here), but starts no probing until Run.
func New(opts Options) (*Agent, error) {
	cfg := opts.Config
	if cfg == nil {
		return nil, errors.New("agent: no config")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxInFlight <= 0 {
		opts.MaxInFlight = 1000
	}
	if opts.WatchEvery == 0 {
		opts.WatchEvery = 2 * time.Second
	}
	a := &Agent{
		opts:      opts,
		log:       opts.Logger.With("node", cfg.Agent.Node, "region", cfg.Agent.Region),
		reg:       exporter.NewRegistry(),
		started:   time.Now(),
		states:    map[string]*targetState{},
		assigned:  map[string]bool{},
		graceTill: map[string]time.Time{},
		reloadOK:  true,
		reloadAt:  time.Now(),
		alerts:    newAlerting(),
	}
	a.probeCtx, a.probeCancel = context.WithCancel(context.Background())
	a.cfg.Store(cfg)
	a.reloadOKG.Store(true)
	a.reloadTS.Store(time.Now().Unix())
	a.registerMetrics()
	a.sched = NewScheduler(a.runScheduled, opts.MaxInFlight, a.onSkip)
	if err := a.applyTargets(cfg); err != nil {
		return nil, err
	}

	keys, err := loadKeys(cfg.Cluster.SecretKeyFile)
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 && !cfg.Cluster.Insecure && !isLoopbackBind(cfg.Cluster.Bind) {
		return nil, fmt.Errorf("cluster bind %q is not a loopback address and no gossip key is configured: "+
			"gossip would be readable and forgeable by anyone on the network.\n"+
			"  make a key:   vantage keygen > /etc/vantage/gossip.key\n"+
			"  and set:      [cluster] secret_key_file = \"/etc/vantage/gossip.key\"\n"+
			"  (or, on a trusted network only, [cluster] insecure = true)", cfg.Cluster.Bind)
	}

	srv, err := exporter.NewServer(cfg.Agent.Listen, a, a.reg, a.log, webConfig(cfg))
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", cfg.Agent.Listen, err)
	}
	a.srv = srv

	cc := cluster.Config{
		NodeName:          cfg.Agent.Node,
		AgentID:           cfg.Agent.Node,
		Region:            cfg.Agent.Region,
		Version:           opts.Version,
		Bind:              cfg.Cluster.Bind,
		Advertise:         cfg.Cluster.Advertise,
		Join:              cfg.Cluster.Join,
		Keys:              keys,
		Label:             cfg.Cluster.Label,
		GossipInterval:    cfg.Cluster.GossipInterval,
		ProbeInterval:     cfg.Cluster.ProbeInterval,
		ProbeTimeout:      cfg.Cluster.ProbeTimeout,
		SuspicionMult:     cfg.Cluster.SuspicionMult,
		TCPTimeout:        cfg.Cluster.TCPTimeout,
		RejoinInterval:    cfg.Cluster.RejoinInterval,
		ReplicasPerRegion: cfg.Cluster.ReplicasPerRegion,
		MinRegions:        cfg.Quorum.MinRegions,
		SLOObjective:      cfg.SLO.Objective,
		SLOWindow:         cfg.SLO.Window,
		ConfirmOnFailure:  cfg.Quorum.ConfirmOnFailure,
		Transport:         opts.Transport,
		InMaintenance:     a.inMaintenance,
		Logger:            a.log,
		Metrics:           a.reg.Set(),
		OnEvent: func(ev cluster.Event) {
			if ev.Kind == "incident_open" || ev.Kind == "incident_resolved" {
				a.alerts.poke() // page now, not at the next tick
			}
			if opts.OnEvent != nil {
				opts.OnEvent(ev)
			}
		},
	}
	if opts.ClusterTuning != nil {
		opts.ClusterTuning(&cc)
	}
	cl, err := cluster.New(cc, a, clusterTargets(cfg))
	if err != nil {
		_ = srv.Shutdown(context.Background())
		return nil, err
	}
	a.clp.Store(cl)
	a.reg.AddWriter(a.writeSeries)
	return a, nil
}

func webConfig(cfg *config.Config) exporter.WebConfig {
	return exporter.WebConfig{CertFile: cfg.Exporter.TLSCertFile, KeyFile: cfg.Exporter.TLSKeyFile,
		ClientCAFile: cfg.Exporter.TLSClientCAFile, Users: cfg.Exporter.BasicAuthUsers}
}

func isLoopbackBind(bind string) bool {
	host := bind
	if i := strings.LastIndex(bind, ":"); i >= 0 {
		host = bind[:i]
	}
	host = strings.Trim(host, "[]")
	return host == "localhost" || strings.HasPrefix(host, "127.") || host == "::1"
}

// loadKeys reads a gossip key file: one base64 key per line, the first is
// used to encrypt, all are accepted to decrypt (key rotation).
func loadKeys(path string) ([][]byte, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("secret_key_file: %w", err)
	}
	var keys [][]byte
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, err := base64.StdEncoding.DecodeString(line)
		if err != nil {
			return nil, fmt.Errorf("secret_key_file %s:%d: not base64: %w", path, i+1, err)
		}
		if l := len(k); l != 16 && l != 24 && l != 32 {
			return nil, fmt.Errorf("secret_key_file %s:%d: key is %d bytes, want 16, 24 or 32 (make one with `vantage keygen`)", path, i+1, l)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("secret_key_file %s: no key in file (make one with `vantage keygen`)", path)
	}
	return keys, nil
}

func clusterTargets(cfg *config.Config) []cluster.TargetSpec {
	out := make([]cluster.TargetSpec, 0, len(cfg.Targets))
	for _, t := range cfg.Targets {
		out = append(out, cluster.TargetSpec{Name: t.Name, Regions: t.Regions, Interval: t.Interval,
			Timeout: t.Timeout, MinRegions: t.MinRegions, SLOObjective: t.SLOObjective})
	}
	return out
}

// clu returns the cluster; nil until New has created it. Atomic because the
// cluster calls back (Assigned) from its own goroutine while New finishes.
func (a *Agent) clu() *cluster.Cluster { return a.clp.Load() }

// Config returns the running config.
func (a *Agent) Config() *config.Config { return a.cfg.Load() }

// Cluster returns the agent's cluster membership.
func (a *Agent) Cluster() *cluster.Cluster { return a.clu() }

// HTTPAddr is the exporter's bound address.
func (a *Agent) HTTPAddr() string { return a.srv.Addr() }

// Server exposes the HTTP server (to attach the status page).
func (a *Agent) Server() *exporter.Server { return a.srv }

// Run probes until ctx is cancelled, then shuts down gracefully: stop
// scheduling, let probes in flight finish within their timeout, leave the
// cluster, stop the HTTP server.
func (a *Agent) Run(ctx context.Context) error {
	serveErr := make(chan error, 1)
	go func() { serveErr <- a.srv.Serve() }()
	a.runCtx.Store(&ctx)
	if err := a.configureAlerting(ctx, a.cfg.Load()); err != nil {
		return err
	}
	alertsDone := make(chan struct{})
	go func() { a.alertLoop(ctx); close(alertsDone) }()
	schedDone := make(chan struct{})
	schedCtx, stopSched := context.WithCancel(context.Background())
	go func() { a.sched.Run(schedCtx, a.probeCtx); close(schedDone) }()
	if a.opts.ConfigPath != "" && a.opts.WatchEvery > 0 {
		go a.watch(ctx)
	}
	a.log.Info("agent started", "listen", a.srv.Addr(), "gossip", a.clu().LocalAddr(),
		"targets", len(a.cfg.Load().Targets), "version", a.opts.Version)

	var err error
	select {
	case <-ctx.Done():
	case err = <-serveErr:
		err = fmt.Errorf("http server: %w", err)
	}
	a.log.Info("shutting down")
	stopSched()
	<-schedDone // probes in flight finish within their own timeouts
	a.probeCancel()
	<-alertsDone // the last alerts flushed before the leader leaves
	if lerr := a.clu().Leave(3 * time.Second); lerr != nil {
		a.log.Debug("leave", "err", lerr)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if serr := a.srv.Shutdown(sctx); serr != nil && err == nil {
		err = serr
	}
	a.log.Info("stopped")
	return err
}

// Kill stops the agent as a crash would: no Leave (tests and the demo).
func (a *Agent) Kill() {
	a.probeCancel()
	a.clu().Kill()
	_ = a.srv.Shutdown(context.Background())
}

// startBurst is how many targets the first assignment after start probes
// at once; beyond it, they wait for their phases.
const startBurst = 100

// Assigned implements cluster.Local: the targets this agent must probe.
// Targets taken over from another agent (or added by a reload) start at
// once (make-before-break); dropped ones keep being probed for a grace
// period while their new owner takes over. The first assignment after
// start probes at once only if it is small (an operator trying a handful
// of targets sees results at once); a large one waits for each target's
// phase: probing all at once is the stampede that phases exist to prevent
// (at 10k HTTPS targets it took 1,000 concurrent handshakes and left RSS
// hundreds of MB high), and a restarted agent is at most an interval behind.
func (a *Agent) Assigned(names []string) {
	now := time.Now()
	a.mu.Lock()
	first := !a.everAssigned
	a.everAssigned = true
	want := make(map[string]bool, len(names))
	var fresh []string
	for _, n := range names {
		want[n] = true
		if !a.assigned[n] && a.graceTill[n].IsZero() {
			fresh = append(fresh, n)
		}
		delete(a.graceTill, n)
	}
	for n := range a.assigned {
		if !want[n] {
			a.graceTill[n] = now.Add(graceFor(a.states[n]))
		}
	}
	a.assigned = want
	a.mu.Unlock()
	a.reschedule()
	if first && len(fresh) > startBurst {
		return
	}
	for _, n := range fresh {
		a.sched.RunNow(a.probeCtx, n)
	}
}

func graceFor(st *targetState) time.Duration {
	if st == nil {
		return 30 * time.Second
	}
	return 2*st.target().Interval + st.target().Timeout
}

// reschedule gives the scheduler the set to probe: assigned targets plus
// those within their grace, each at its region's phase slot.
func (a *Agent) reschedule() {
	now := time.Now()
	cfg := a.cfg.Load()
	regions := a.knownRegions()
	a.mu.Lock()
	jobs := make([]Job, 0, len(a.assigned)+len(a.graceTill))
	for n, till := range a.graceTill {
		if now.After(till) {
			delete(a.graceTill, n)
		}
	}
	for _, t := range cfg.Targets {
		if !a.assigned[t.Name] && a.graceTill[t.Name].IsZero() {
			continue
		}
		rs := t.Regions
		if len(rs) == 0 {
			rs = regions
		}
		slot, slots := regionSlot(rs, cfg.Agent.Region)
		jobs = append(jobs, Job{Name: t.Name, Interval: t.Interval, Key: t.Fingerprint,
			Offset: PhaseOffset(t.Name, t.Interval, slot, slots)})
	}
	a.mu.Unlock()
	a.sched.Update(jobs)
}

func regionSlot(regions []string, mine string) (int, int) {
	rs := append([]string(nil), regions...)
	sort.Strings(rs)
	for i, r := range rs {
		if r == mine {
			return i, len(rs)
		}
	}
	return 0, 1
}

func (a *Agent) knownRegions() []string {
	if a.clu() == nil {
		return []string{a.cfg.Load().Agent.Region}
	}
	seen := map[string]bool{a.cfg.Load().Agent.Region: true}
	for _, m := range a.clu().Members() {
		if m.State != cluster.Left {
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

func (a *Agent) inMaintenance(target string, now time.Time) bool {
	return a.cfg.Load().InMaintenance(target, now)
}

func (a *Agent) onSkip(name, why string) {
	if c := a.skipped[why]; c != nil {
		c.Inc()
	}
}
