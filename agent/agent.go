// Package agent runs one Vantage agent: it loads the config, schedules the
// probes of the targets the cluster assigns to it, keeps per-target state
// (consecutive failures, recovery hysteresis), reports to the cluster,
// exports metrics and reloads without losing state.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/hashicorp/memberlist"

	"github.com/vantage-probe/vantage/agent/config"
	"github.com/vantage-probe/vantage/agent/state"
	"github.com/vantage-probe/vantage/cluster"
	"github.com/vantage-probe/vantage/exporter"
	"github.com/vantage-probe/vantage/internal/memlimit"
	"github.com/vantage-probe/vantage/internal/mono"
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
	// StallAfter is how long the scheduler or the cluster loop may go
	// without a pass before /healthz fails; 0 = 30s.
	StallAfter time.Duration
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
	// StateFlushEvery is how often the state is written to
	// [agent].state_dir; 0 = 5s.
	StateFlushEvery time.Duration
	// Memory, when set, keeps the process's soft memory limit derived from
	// the config ([agent] memory_limit, the number of targets) through
	// reloads, and is exported as vantage_memory_limit_bytes. The limit is
	// the process's: one agent per process sets it (`vantage agent`), the
	// demo's agents leave it alone.
	Memory *memlimit.Tuner
}

// Agent is one running agent.
type Agent struct {
	opts    Options
	log     *slog.Logger
	reg     *exporter.Registry
	srv     *exporter.Server
	cl      atomic.Pointer[cluster.Cluster] // nil until New has made it: see Cluster
	sched   *Scheduler
	started time.Time
	clock   mono.Clock // the per-target state's instants, in 8 bytes each
	region  string     // exporter.RegionLabel of this agent's region, on every observation series

	cfg atomic.Pointer[config.Config]

	mu sync.Mutex
	// states holds every configured target. applyTargets replaces the map
	// whole and nothing writes it after it is published, so a copy of the
	// reference taken under mu may be read without it. Whether the cluster
	// assigns a target to this agent is its state's assigned flag (a bool
	// in a record every target has, rather than a map of every assigned
	// name, which cost ~43 B a target and was rebuilt on every assignment).
	states map[string]*targetState
	// nAssigned counts the states with assigned set: a capacity hint.
	nAssigned int
	// graceTill holds the formerly assigned targets still probed, until
	// when: a few, and only while the assignment changes, so a map (empty
	// in a settled fleet) costs less than a field in every target's state.
	graceTill map[string]time.Time
	// orphans are the persisted records of targets a reload removed, for
	// the persister to take at its next flush.
	orphans []orphan
	// graceTimer reschedules when the earliest grace ends; stopped says the
	// agent is shutting down and arms no more.
	graceTimer *time.Timer
	stopped    bool
	// everAssigned is set by the first Assigned call: the targets of the
	// first assignment start at their phase, later ones at once.
	everAssigned bool

	probeCtx    context.Context
	probeCancel context.CancelFunc
	// runCtx lives as long as Run: the alerting Notifier a reload builds
	// runs under it.
	runCtx atomic.Pointer[context.Context]

	alerts *alerting
	push   pushing
	// persist writes the state directory; nil without one.
	persist *persister

	inFlight atomic.Int64
	lateness *metrics.Summary
	skipped  map[string]*metrics.Counter
	// reload is the last reload's outcome, read by /metrics, the API and
	// the page; reloadMu serialises reloads (SIGHUP and the file watcher
	// may ask at once).
	reload   atomic.Pointer[reloadStatus]
	reloadMu sync.Mutex
}

// reloadStatus is the outcome of the last load or reload of the config.
type reloadStatus struct {
	ok       bool
	err      string
	at       time.Time // the attempt
	lastGood time.Time // the last successful one
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
	if opts.StallAfter <= 0 {
		opts.StallAfter = defaultStallAfter
	}
	if opts.WatchEvery == 0 {
		opts.WatchEvery = 2 * time.Second
	}
	a := &Agent{
		opts:      opts,
		log:       opts.Logger.With("node", cfg.Agent.Node, "region", cfg.Agent.Region),
		reg:       exporter.NewRegistry(),
		clock:     mono.New(),
		region:    exporter.RegionLabel(cfg.Agent.Region),
		states:    map[string]*targetState{},
		graceTill: map[string]time.Time{},
		alerts:    newAlerting(),
	}
	a.started = a.clock.Base()
	a.probeCtx, a.probeCancel = context.WithCancel(context.Background())
	a.cfg.Store(cfg)
	a.reload.Store(&reloadStatus{ok: true, at: a.started, lastGood: a.started})
	if opts.Memory != nil {
		opts.Memory.Update(cfg.Agent.MemoryLimit, len(cfg.Targets))
	}
	a.registerMetrics()
	a.sched = NewScheduler(a.runScheduled, opts.MaxInFlight, a.onSkip)
	if err := a.applyTargets(cfg); err != nil {
		return nil, err
	}

	keys, err := config.ReadGossipKeys(cfg.Cluster.SecretKeyFile)
	if err != nil {
		return nil, fmt.Errorf("cluster.secret_key_file: %w", err)
	}
	// The same check and words as check-config.
	if err := cfg.CheckStart(); err != nil {
		return nil, err
	}

	var restore *cluster.Restore
	if cfg.Agent.StateDir != "" {
		store, snap, err := openState(cfg.Agent.StateDir)
		if err != nil {
			return nil, err
		}
		a.persist = newPersister(a, store, snap, opts.StateFlushEvery)
		restore = a.restoreState(snap)
	}

	srv, err := exporter.NewServer(cfg.Agent.Listen, a, a.reg, a.log, webConfig(cfg))
	if err != nil {
		a.closeState(false)
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
		Restore:           restore,
		Logger:            a.log,
		Metrics:           a.reg.Set(),
		OnRemoteResult:    a.heard,
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
		a.closeState(false)
		return nil, err
	}
	a.cl.Store(cl)
	a.reg.AddWriter(a.writeSeries)
	return a, nil
}

func webConfig(cfg *config.Config) exporter.WebConfig {
	return exporter.WebConfig{CertFile: cfg.Exporter.TLSCertFile, KeyFile: cfg.Exporter.TLSKeyFile,
		ClientCAFile: cfg.Exporter.TLSClientCAFile, Users: cfg.Exporter.BasicAuthUsers}
}

func clusterTargets(cfg *config.Config) []cluster.TargetSpec {
	out := make([]cluster.TargetSpec, 0, len(cfg.Targets))
	for _, t := range cfg.Targets {
		out = append(out, cluster.TargetSpec{Name: t.Name, Regions: t.Regions, Interval: t.Interval,
			Timeout: t.Timeout, MinRegions: t.MinRegions, SLOObjective: t.SLOObjective})
	}
	return out
}

// Config returns the running config.
func (a *Agent) Config() *config.Config { return a.cfg.Load() }

// Cluster returns the agent's cluster membership; nil until New has made
// it (the cluster calls back, Assigned, from its own goroutine while New
// finishes: hence atomic).
func (a *Agent) Cluster() *cluster.Cluster { return a.cl.Load() }

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
	if err := a.configurePush(ctx, a.cfg.Load()); err != nil {
		return err
	}
	defer a.stopPush()
	alertsDone := make(chan struct{})
	go func() { a.alertLoop(ctx); close(alertsDone) }()
	if a.persist != nil {
		a.persist.start()
	}
	if a.opts.Memory != nil {
		go a.opts.Memory.Watch(ctx)
	}
	schedDone := make(chan struct{})
	schedCtx, stopSched := context.WithCancel(context.Background())
	go func() { a.sched.Run(schedCtx, a.probeCtx); close(schedDone) }()
	if a.opts.ConfigPath != "" && a.opts.WatchEvery > 0 {
		go a.watch(ctx)
	}
	a.log.Info("agent started", "listen", a.srv.Addr(), "gossip", a.Cluster().LocalAddr(),
		"targets", len(a.cfg.Load().Targets), "version", a.opts.Version)

	var err error
	select {
	case <-ctx.Done():
	case err = <-serveErr:
		if err != nil { // nil: Kill closed it
			err = fmt.Errorf("http server: %w", err)
		}
	}
	a.log.Info("shutting down")
	a.stopTimers()
	stopSched()
	<-schedDone // probes in flight finish within their own timeouts
	a.probeCancel()
	<-alertsDone // the last alerts flushed before the leader leaves
	a.closeState(true)
	if lerr := a.Cluster().Leave(3 * time.Second); lerr != nil {
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
	a.stopTimers()
	a.sched.Close()
	a.probeCancel()
	a.Cluster().Kill()
	_ = a.srv.Shutdown(context.Background())
	a.closeState(false) // a crash writes nothing more; the file lock goes with the process
}

// closeState stops writing the state directory, after one last flush when
// final.
func (a *Agent) closeState(final bool) {
	if a.persist != nil {
		a.persist.close(final)
	}
}

// restoreState gives the targets their kept histories and returns what
// the cluster restores.
func (a *Agent) restoreState(snap *state.Snapshot) *cluster.Restore {
	r := &cluster.Restore{Incidents: snap.Incidents, FirstSeen: map[string]time.Time{}}
	for name, m := range snap.Targets {
		r.FirstSeen[name] = m.FirstSeen
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for name, b := range snap.History {
		if st := a.states[name]; st != nil {
			st.mu.Lock()
			if h := new(history); h.unmarshal(b) {
				st.hist = h
				n++
			}
			st.mu.Unlock()
		}
	}
	open := 0
	for i := range snap.Incidents {
		if snap.Incidents[i].Open() {
			open++
		}
	}
	a.log.Info("state restored", "path", a.persist.store.Path(), "incidents", len(snap.Incidents),
		"open_incidents", open, "targets", len(snap.Targets), "histories", n)
	return r
}

// stopTimers stops the grace timer for good.
func (a *Agent) stopTimers() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.stopped = true
	if a.graceTimer != nil {
		a.graceTimer.Stop()
	}
}

func (a *Agent) inMaintenance(target string, now time.Time) bool {
	return a.cfg.Load().InMaintenance(target, now)
}

func (a *Agent) onSkip(name, why string) {
	if c := a.skipped[why]; c != nil {
		c.Inc()
	}
}
