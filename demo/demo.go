package demo

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/vantage-probe/vantage/agent"
	"github.com/vantage-probe/vantage/agent/config"
	"github.com/vantage-probe/vantage/cluster"
	"github.com/vantage-probe/vantage/configs"
	"github.com/vantage-probe/vantage/internal/mono"
	"github.com/vantage-probe/vantage/probe/icmpprobe"
)

// Options configure a demo run.
type Options struct {
	// Listen is the first agent's HTTP address (its status page); others
	// take free ports next to it.
	Listen string
	// Out receives the narration, one line per event.
	Out io.Writer
	// Logger receives the agents' logs (discarded by default: the
	// narration is the demo's voice).
	Logger *slog.Logger
	// Version is stamped into the agents.
	Version string
	// Loops is how many times the fault script runs; 0 = until ctx ends.
	Loops int
	// Page, when set, attaches the status page to each agent.
	Page func(a *agent.Agent)
	// StateDir, when set, is where the agents keep their state
	// (StateDir/<node>), kept when the demo ends: a second demo with the
	// same directory is a restarted fleet, with the first one's incidents,
	// SLO figures and histories. Empty: a temporary directory, removed at
	// the end.
	StateDir string
}

// Regions and agents of the demo fleet: three regions, two agents each,
// each agent on its own loopback address so the farm can fail one region.
var regions = []struct{ name, prefix string }{
	{"eu-west", "127.0.1."},
	{"us-east", "127.0.2."},
	{"ap-south", "127.0.3."},
}

// Demo is a running demo.
type Demo struct {
	opts  Options
	farm  *Farm
	start time.Time
	raw   string

	mu     sync.Mutex
	agents map[string]*runningAgent // by node name
	order  []string
	out    io.Writer
	outMu  sync.Mutex

	detected chan cluster.Event
	// stateDir holds each agent's state directory (stateDir/<node>):
	// Options.StateDir, or a temporary one per run, removed at the end; a
	// restarted agent restores its incidents and history as a real one
	// does.
	stateDir string
	// noICMP is why no ICMP socket may be opened here; the icmp target is
	// then left out.
	noICMP error
}

type runningAgent struct {
	a      *agent.Agent
	cancel context.CancelFunc
	done   chan struct{}
	region string
	ip     string
	listen string
}

// Run starts the farm and the fleet, plays the fault script, and stops
// everything when ctx ends or the script's loops are done.
func Run(ctx context.Context, opts Options) error {
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Listen == "" {
		opts.Listen = "127.0.0.1:9115"
	}
	raw, err := configs.FS.ReadFile("demo.toml")
	if err != nil {
		return err
	}
	farm, err := StartFarm()
	if err != nil {
		return fmt.Errorf("target farm: %w", err)
	}
	defer farm.Close()
	d := &Demo{opts: opts, farm: farm, start: time.Now(), raw: strings.NewReplacer(farm.Replacements()...).Replace(string(raw)),
		agents: map[string]*runningAgent{}, out: opts.Out, detected: make(chan cluster.Event, 16)}
	if opts.StateDir != "" {
		d.stateDir = opts.StateDir
	} else {
		if d.stateDir, err = os.MkdirTemp("", "vantage-demo-state-"); err != nil {
			return fmt.Errorf("demo state: %w", err)
		}
		defer os.RemoveAll(d.stateDir)
	}
	defer d.stopAll()
	// Every agent probes from its own address: what its ICMP socket needs
	// is the same for all, so one look decides for the fleet.
	if _, err := icmpprobe.Detect(nil, false); err != nil {
		d.noICMP = err
	}

	seed := ""
	for i, r := range regions {
		for j := 1; j <= 2; j++ {
			node := fmt.Sprintf("%s-%d", r.name, j)
			listen := "127.0.0.1:0"
			if i == 0 && j == 1 {
				listen = opts.Listen
			}
			ra, err := d.startAgent(node, r.name, r.prefix+fmt.Sprint(j), listen, seed)
			if err != nil {
				return err
			}
			if seed == "" {
				seed = ra.a.Cluster().LocalAddr()
			}
		}
	}
	first := d.agents[d.order[0]]
	d.say("fleet", "6 agents in 3 regions (eu-west, us-east, ap-south) probe %d targets; quorum: 2 regions",
		len(first.a.Config().Targets))
	d.say("fleet", "status page: http://%s/   metrics: http://%s/metrics", first.a.HTTPAddr(), first.a.HTTPAddr())
	for _, name := range d.order[1:] {
		ra := d.agents[name]
		d.say("fleet", "  %s (%s) page: http://%s/", name, ra.region, ra.a.HTTPAddr())
	}
	d.say("farm", "tls cert of shop expires %s (%.0f days): min_days_left 7, so it warns but stays up",
		farm.CertExpiry.UTC().Format("2006-01-02"), time.Until(farm.CertExpiry).Hours()/24)
	if d.noICMP != nil {
		d.say("demo", "the icmp target gateway is left out: this host allows this user no ICMP socket. "+
			"Allow one with sudo sysctl -w net.ipv4.ping_group_range=\"0 2147483647\" "+
			"(or give the binary CAP_NET_RAW: sudo setcap cap_net_raw+ep bin/vantage) and run the demo again")
	}

	for loop := 1; opts.Loops == 0 || loop <= opts.Loops; loop++ {
		if err := d.script(ctx); err != nil {
			if ctx.Err() != nil {
				d.say("demo", "stopping")
				return nil
			}
			return err
		}
	}
	return nil
}

func (d *Demo) configFor(node, region, ip, listen, seed string) (*config.Config, error) {
	// demo.toml is written for the first agent; the others differ in
	// identity and addresses, set the way the command-line flags would.
	cfg, err := config.Parse("demo.toml", []byte(d.raw))
	if err == nil {
		err = cfg.ApplyOverrides(config.Overrides{Node: node, Region: region, Listen: listen, Bind: ip + ":0", SourceIP: ip})
	}
	if err != nil {
		return nil, fmt.Errorf("embedded demo config: %w", err)
	}
	if seed != "" {
		cfg.Cluster.Join = []string{seed}
	}
	if d.stateDir != "" {
		cfg.Agent.StateDir = filepath.Join(d.stateDir, node)
	}
	if d.noICMP != nil {
		cfg.RemoveTarget("gateway")
	}
	return cfg, nil
}

func (d *Demo) startAgent(node, region, ip, listen, seed string) (*runningAgent, error) {
	cfg, err := d.configFor(node, region, ip, listen, seed)
	if err != nil {
		return nil, err
	}
	observer := len(d.order) == 0 || d.order[0] == node
	a, err := agent.New(agent.Options{
		Config:     cfg,
		Version:    d.opts.Version,
		Logger:     d.opts.Logger.With("node", node),
		WatchEvery: -1,
		OnEvent:    func(ev cluster.Event) { d.event(ev, observer) },
		ClusterTuning: func(c *cluster.Config) {
			// Loopback needs no WAN patience: find a dead agent in ~2s.
			c.ProbeInterval = 500 * time.Millisecond
			c.ProbeTimeout = 200 * time.Millisecond
			c.SuspicionMult = 2
			c.GossipInterval = 100 * time.Millisecond
			c.HeartbeatEvery = time.Second
			c.PushPull = 5 * time.Second
			c.Grace = 10 * time.Second
		},
	})
	if err != nil {
		return nil, fmt.Errorf("agent %s: %w", node, err)
	}
	if d.opts.Page != nil {
		d.opts.Page(a)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ra := &runningAgent{a: a, cancel: cancel, done: make(chan struct{}), region: region, ip: ip, listen: listen}
	go func() { _ = a.Run(ctx); close(ra.done) }()
	d.mu.Lock()
	if _, ok := d.agents[node]; !ok {
		d.order = append(d.order, node)
	}
	d.agents[node] = ra
	d.mu.Unlock()
	return ra, nil
}

func (d *Demo) stopAll() {
	d.mu.Lock()
	var all []*runningAgent
	for _, ra := range d.agents {
		all = append(all, ra)
	}
	d.mu.Unlock()
	for _, ra := range all {
		ra.cancel()
	}
	for _, ra := range all {
		<-ra.done
	}
}

func (d *Demo) say(who, format string, args ...any) {
	el := time.Since(d.start).Round(time.Second)
	line := fmt.Sprintf("[%02d:%02d] %-6s %s\n", int(el.Minutes()), int(el.Seconds())%60, who, fmt.Sprintf(format, args...))
	d.outMu.Lock()
	_, _ = io.WriteString(d.out, line)
	d.outMu.Unlock()
}

// event narrates what the fleet concluded. Incidents and suppressions come
// from each target's leader (once); member changes from one observer agent.
func (d *Demo) event(ev cluster.Event, observer bool) {
	switch ev.Kind {
	case "incident_open":
		why := ""
		if ev.Reason != "" {
			why = " (" + ev.Reason + ")"
		}
		d.say("fleet", "INCIDENT %s is DOWN%s: %s; detected %.1fs after the first failed probe", ev.Target, why, ev.Detail, ev.Elapsed.Seconds())
		select {
		case d.detected <- ev:
		default:
		}
	case "incident_resolved":
		d.say("fleet", "RESOLVED %s is up again after %s", ev.Target, ev.Elapsed.Round(100*time.Millisecond))
		select {
		case d.detected <- ev:
		default:
		}
	case "suppressed":
		d.say("fleet", "suppressed: %s fails only from %s (%s); no page", ev.Target, ev.Region, ev.Detail)
	case "isolated":
		if ev.Detail == "true" {
			d.say("fleet", "%s (%s) thinks its region is isolated; its failures do not count", ev.Node, ev.Region)
		}
	case "member_leave":
		if observer {
			d.say("fleet", "%s (%s) is %s; its targets move to its region peer", ev.Node, ev.Region, ev.Detail)
		}
	case "member_join":
		if observer {
			d.say("fleet", "%s (%s) joined; targets rebalance", ev.Node, ev.Region)
		}
	}
}

// waitEvent waits for an incident event of kind for target.
func (d *Demo) waitEvent(ctx context.Context, kind, target string, limit time.Duration) bool {
	t := time.NewTimer(limit)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return false
		case ev := <-d.detected:
			if ev.Kind == kind && ev.Target == target {
				return true
			}
		}
	}
}

// fault sets a failure every region sees (set(true)), waits for its
// incident, holds it five seconds, repairs it and waits for the
// resolution.
func (d *Demo) fault(ctx context.Context, target, what, fixed string, set func(bool)) error {
	d.say("fault", "%s", what)
	set(true)
	if !d.waitEvent(ctx, "incident_open", target, 60*time.Second) && ctx.Err() == nil {
		d.say("demo", "%s outage not detected within 60s (unexpected)", target)
	}
	err := mono.Sleep(ctx, 5*time.Second)
	d.say("fault", "%s", fixed)
	set(false)
	if err != nil {
		return err
	}
	d.waitEvent(ctx, "incident_resolved", target, 60*time.Second)
	return nil
}

// script plays the faults once.
func (d *Demo) script(ctx context.Context) error {
	if err := mono.Sleep(ctx, 6*time.Second); err != nil {
		return err
	}
	// 1. An outage every region sees.
	d.say("fault", "api starts answering 503 in every region")
	d.farm.SetAPIDown(true)
	if !d.waitEvent(ctx, "incident_open", "api", 60*time.Second) && ctx.Err() == nil {
		d.say("demo", "api outage not detected within 60s (unexpected)")
	}
	if err := mono.Sleep(ctx, 10*time.Second); err != nil {
		return err
	}
	d.say("fault", "api fixed")
	d.farm.SetAPIDown(false)
	d.waitEvent(ctx, "incident_resolved", "api", 60*time.Second)

	// 2. A failure only one region sees.
	d.say("fault", "web fails only for ap-south (a bad route in that region)")
	d.farm.BlockFrom("web", "127.0.3.")
	if err := mono.Sleep(ctx, 20*time.Second); err != nil {
		return err
	}
	d.say("fault", "ap-south's route to web repaired")
	d.farm.BlockFrom("web", "")

	// 3. A flapping target.
	d.say("fault", "db starts flapping (down 4s, up 4s, five times)")
	for i := 0; i < 5; i++ {
		d.farm.SetDBUp(false)
		if err := mono.Sleep(ctx, 4*time.Second); err != nil {
			d.farm.SetDBUp(true)
			return err
		}
		d.farm.SetDBUp(true)
		if err := mono.Sleep(ctx, 4*time.Second); err != nil {
			return err
		}
	}
	d.say("fault", "db stable again")

	// 4. A health document that says the database is slow, with 200 OK:
	// a JSON condition fails.
	if err := d.fault(ctx, "api", "api's health check reports its database at 870 ms (JSON condition: checks.db.latency_ms < 300)",
		"api's database fast again", d.farm.SetAPISlow); err != nil {
		return err
	}

	// 5. A gRPC service that stops serving.
	if err := d.fault(ctx, "orders", "orders' gRPC health check answers NOT_SERVING",
		"orders serving again", func(down bool) { d.farm.SetOrdersServing(!down) }); err != nil {
		return err
	}

	// 6. An agent stopped and restarted.
	victim := d.order[3] // us-east-2
	d.mu.Lock()
	ra := d.agents[victim]
	d.mu.Unlock()
	n := ra.a.Cluster().AssignedCount()
	d.say("fault", "agent %s (%s, probing %d targets) crashes", victim, ra.region, n)
	ra.a.Kill()
	ra.cancel()
	<-ra.done
	if err := mono.Sleep(ctx, 15*time.Second); err != nil {
		return err
	}
	seed := d.agents[d.order[0]].a.Cluster().LocalAddr()
	if _, err := d.startAgent(victim, ra.region, ra.ip, "127.0.0.1:0", seed); err != nil {
		return err
	}
	d.say("fault", "agent %s restarted; it takes its targets back", victim)
	return mono.Sleep(ctx, 10*time.Second)
}
