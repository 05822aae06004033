// Package fleettest starts a fleet of real Vantage agents in one test
// process: one or more agents per region on loopback, joined into one
// cluster with fast memberlist timings, every agent with the same targets.
// Tests that need the fleet's behaviour end to end (verdicts, incidents,
// direct alerts, what Prometheus scrapes) start it here instead of carrying
// their own copy.
package fleettest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vantage-probe/vantage/agent"
	"github.com/vantage-probe/vantage/agent/config"
	"github.com/vantage-probe/vantage/cluster"
	"github.com/vantage-probe/vantage/internal/testenv"
)

// DefaultRegions are the regions of a fleet whose Options name none.
var DefaultRegions = []string{"eu-west", "us-east", "ap-south"}

// Options describe a fleet. The zero value is three regions, one agent
// each, no targets.
type Options struct {
	// Regions, one or more agents each (PerRegion); default DefaultRegions.
	Regions []string
	// PerRegion is the number of agents in each region; default 1.
	PerRegion int
	// Targets are TOML [[target]] (and [[maintenance]]) tables, the same
	// for every agent. Relative paths in them (ca_file, ...) are relative
	// to a per-agent temporary directory: use absolute paths.
	Targets string
	// Extra is more TOML written after [defaults] and before Targets:
	// [alerting], [slo], [exporter] tables. [agent], [cluster], [quorum]
	// and [defaults] are written by Start (see the fields below).
	Extra string
	// MinRegions is [quorum].min_regions; default 2.
	MinRegions int
	// Interval and Timeout are [defaults]; default 1s and 500ms, so a
	// verdict changes within a couple of seconds.
	Interval, Timeout time.Duration
	// SourceIPs gives each region its own loopback source address for
	// probes (SourceIP(i) for Regions[i]), so that a loopback target can
	// fail for one region only by looking at the client's address.
	SourceIPs bool
	// ClusterTuning adjusts memberlist timings; default FastCluster.
	ClusterTuning func(*cluster.Config)
	// Version is the agents' version (vantage_build_info); default "test".
	Version string
	// Wait is how long Start waits for every agent to see every other
	// alive; default 20s.
	Wait time.Duration
}

// FastCluster are loopback memberlist timings: a dead agent is found in
// about two seconds.
func FastCluster(c *cluster.Config) {
	c.ProbeInterval = 500 * time.Millisecond
	c.ProbeTimeout = 200 * time.Millisecond
	c.SuspicionMult = 2
	c.GossipInterval = 100 * time.Millisecond
	c.HeartbeatEvery = time.Second
	c.PushPull = 5 * time.Second
	c.Grace = 10 * time.Second
}

// SourceIP is the loopback address the agents of the i-th region probe
// from when Options.SourceIPs is set: 127.0.<i+1>.1 (Linux answers for the
// whole of 127.0.0.0/8). A handler tells regions apart with
// strings.HasPrefix(host, RegionPrefix(i)).
func SourceIP(i int) string { return fmt.Sprintf("127.0.%d.1", i+1) }

// RegionPrefix is the prefix of SourceIP(i) that no other region's
// address starts with.
func RegionPrefix(i int) string { return fmt.Sprintf("127.0.%d.", i+1) }

// Start starts the fleet, joined to its first agent, and waits until every
// agent sees every other alive. The agents stop (and leave the cluster) at
// cleanup; an agent that stops with an error fails the test. They are
// returned in order: PerRegion agents of Regions[0], then of Regions[1]...
func Start(t testing.TB, o Options) []*agent.Agent {
	t.Helper()
	if len(o.Regions) == 0 {
		o.Regions = DefaultRegions
	}
	if o.PerRegion <= 0 {
		o.PerRegion = 1
	}
	if o.MinRegions <= 0 {
		o.MinRegions = 2
	}
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = 500 * time.Millisecond
	}
	if o.ClusterTuning == nil {
		o.ClusterTuning = FastCluster
	}
	if o.Version == "" {
		o.Version = "test"
	}
	if o.Wait <= 0 {
		o.Wait = 20 * time.Second
	}
	var out []*agent.Agent
	seed := ""
	for i, region := range o.Regions {
		for j := 1; j <= o.PerRegion; j++ {
			a := startAgent(t, &o, i, region, fmt.Sprintf("%s-%d", region, j), seed)
			if seed == "" {
				seed = a.Cluster().LocalAddr()
			}
			out = append(out, a)
		}
	}
	testenv.Poll(t, o.Wait, "every agent to see every other alive", func() bool {
		for _, a := range out {
			alive := 0
			for _, m := range a.Members() {
				if m.State == cluster.Alive {
					alive++
				}
			}
			if alive != len(out) {
				return false
			}
		}
		return true
	})
	return out
}

func startAgent(t testing.TB, o *Options, i int, region, node, seed string) *agent.Agent {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "[agent]\nnode = %q\nregion = %q\nlisten = \"127.0.0.1:0\"\n", node, region)
	if o.SourceIPs {
		fmt.Fprintf(&b, "source_ip = %q\n", SourceIP(i))
	}
	b.WriteString("[cluster]\nbind = \"127.0.0.1:0\"\n")
	if seed != "" {
		fmt.Fprintf(&b, "join = [%q]\n", seed)
	}
	fmt.Fprintf(&b, "[quorum]\nmin_regions = %d\n[defaults]\ninterval = %q\ntimeout = %q\n",
		o.MinRegions, o.Interval.String(), o.Timeout.String())
	b.WriteString(o.Extra)
	b.WriteString("\n")
	b.WriteString(o.Targets)

	path := filepath.Join(t.TempDir(), "vantage.toml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("fleettest: config of %s: %v\n%s", node, err, b.String())
	}
	a, err := agent.New(agent.Options{ConfigPath: path, Config: cfg, Version: o.Version, WatchEvery: -1, ClusterTuning: o.ClusterTuning})
	if err != nil {
		t.Fatalf("fleettest: agent %s: %v", node, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("fleettest: agent %s stopped with %v", node, err)
		}
	})
	return a
}
