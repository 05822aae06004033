// Package netlab is Vantage's fault lab of real processes: real `vantage
// agent` processes, one Linux network namespace per region, a target farm
// in a namespace of its own, all joined by veth pairs to a bridge in a hub
// namespace, and faults made the way they happen: a region's link going
// down, iptables dropping what one region sends or receives, agents killed
// with SIGKILL and restarted under the same name, frozen with SIGSTOP and
// resumed, config files replaced by good and bad ones and reloaded with
// SIGHUP, outages at the farm that every region sees.
//
// Throughout, the harness scrapes every agent every second (all at once,
// as one round), and checks five promises continuously, recording every
// violation with its time and the agents involved:
//
//  1. OneExporter: at most one vantage_target_up series per target across
//     the fleet in each round.
//  2. AssigneesOnly: once the grace after a reassignment is over (2
//     intervals + timeout, the time a former owner keeps probing, plus a
//     few seconds), each (target, region) is probed by its assignees only:
//     from the farm's per-source counts, replicas_per_region probes per
//     interval, no former owner still at it, no probe of a removed target.
//  3. NoFalseIncident: no incident for a target whose fault only one region
//     saw or that had no fault.
//  4. OutageDetected: every outage every region sees opens an incident.
//  5. HealthyAgents: /healthz answers 200 for every running agent; no agent
//     exits by itself; a bad config pushed with SIGHUP leaves the agent on
//     its last good config (vantage_config_last_reload_successful 0, its
//     targets still probed).
//
// The kernel this project runs on has no netem: the lab can drop packets
// but cannot delay them, so no fault here adds latency.
//
// Everything the lab makes is named with Prefix; a run first removes what
// an earlier, killed run left behind, and removes all it made on the way
// out, also when interrupted. It needs root, iproute2 and iptables;
// Unavailable says why not when it cannot run.
package netlab

import (
	"errors"
	"fmt"
	"io"
	"time"
)

// Prefix names every namespace the lab makes (vnl-hub, vnl-farm, vnl-r1,
// ...); leftovers are found by it.
const Prefix = "vnl-"

// Addresses and ports.
const (
	FarmAddr   = "10.77.100.1"
	FarmPort   = 8080
	HTTPPort   = 9115
	GossipPort = 7946
)

// AgentAddr is the address of agent n (1-based) of region i (0-based):
// 10.77.<i+1>.<n>.
func AgentAddr(i, n int) string { return fmt.Sprintf("10.77.%d.%d", i+1, n) }

// regionCIDR is region i's block, what iptables rules match.
func regionCIDR(i int) string { return fmt.Sprintf("10.77.%d.0/24", i+1) }

// Limits of what a round proves on a shared host: scrapes of one round
// that completed further apart than maxSkew do not prove two exporters at
// once (a clean hand-over seen early on one side and late on the other
// looks like one); a harness not scheduled for stallMin may have missed an
// answer that came.
const (
	maxSkew    = 250 * time.Millisecond
	stallTick  = 50 * time.Millisecond
	stallMin   = 250 * time.Millisecond
	reqTimeout = 2 * time.Second
)

// ErrUnavailable is returned by Run when the lab cannot run here.
var ErrUnavailable = errors.New("netlab unavailable")

// ErrOptions wraps every problem of an Options.
var ErrOptions = errors.New("netlab options")

// Options configure a run. Full and Short return complete sets.
type Options struct {
	// Agent is the vantage binary the agents run (built from this tree).
	Agent string
	// Dir receives the configs, the gossip key, one log per agent and the
	// violations; "" makes a temporary directory (kept: the logs are the
	// evidence).
	Dir string

	Regions         []string
	AgentsPerRegion int
	Targets         int
	Interval        time.Duration
	Timeout         time.Duration
	// RejoinInterval is [cluster] rejoin_interval: how often agents
	// re-join their seeds, which heals a partition.
	RejoinInterval time.Duration
	// Hold is how long a network or process fault lasts: long enough for
	// memberlist to declare the cut-off agents dead and the others to take
	// their targets over.
	Hold time.Duration
	// OutageFor is how long each farm outage lasts: longer than a leader
	// hand-over takes, since outages start on targets whose leader the
	// fault hits.
	OutageFor time.Duration
	// Watch is how long the lab watches the fleet after it converged
	// again at the end of each scenario: the span in which AssigneesOnly
	// judges that the probing is back to plan; 0: the grace plus four
	// intervals.
	Watch time.Duration
	// Scenarios are played in this order (names from Scenarios()); a name
	// may repeat.
	Scenarios []string

	// Progress receives one line per step; nil discards.
	Progress io.Writer
}

// Full is the measured run of `make lab-netns`: every scenario once.
func Full() Options {
	o := base()
	for _, s := range allScenarios {
		if s.name != "start" {
			o.Scenarios = append(o.Scenarios, s.name)
		}
	}
	return o
}

// Short is the CI version (TestNetlabShort), under two minutes: an agent
// killed and restarted during an outage on a target it led, and a config
// with a syntax error; interval 3s, timeout 1s, a shorter watch.
func Short() Options {
	o := base()
	o.Targets = 6
	o.Interval, o.Timeout = 3*time.Second, time.Second
	o.Hold = 20 * time.Second
	o.Watch = o.grace() + 3*o.Interval
	o.Scenarios = []string{"kill-restart", "config-bad-syntax"}
	return o
}

func base() Options {
	return Options{
		Regions:         []string{"eu-west", "us-east", "ap-south"},
		AgentsPerRegion: 2,
		Targets:         9,
		Interval:        5 * time.Second,
		Timeout:         2 * time.Second,
		RejoinInterval:  10 * time.Second,
		Hold:            40 * time.Second,
		OutageFor:       25 * time.Second,
	}
}

func (o *Options) validate() error {
	var errs []error
	if o.Agent == "" {
		errs = append(errs, errors.New("agent: the path of the vantage binary is empty"))
	}
	if len(o.Regions) < 2 || len(o.Regions) > 9 {
		errs = append(errs, fmt.Errorf("regions %q: want 2 to 9", o.Regions))
	}
	if o.AgentsPerRegion < 1 || o.AgentsPerRegion > 9 {
		errs = append(errs, fmt.Errorf("agents per region %d: want 1 to 9", o.AgentsPerRegion))
	}
	if o.Targets < 2 || o.Targets > 99 {
		errs = append(errs, fmt.Errorf("targets %d: want 2 to 99", o.Targets))
	}
	if o.Interval < time.Second || o.Timeout <= 0 || o.Timeout >= o.Interval {
		errs = append(errs, fmt.Errorf("interval %v, timeout %v: want interval at least 1s and timeout below it", o.Interval, o.Timeout))
	}
	for _, s := range o.Scenarios {
		if scenarioByName(s) == nil {
			errs = append(errs, fmt.Errorf("scenario %q: unknown (known: %v)", s, ScenarioNames()))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrOptions, errors.Join(errs...))
	}
	return nil
}

// grace is how long after a reassignment a former owner may still probe:
// 2 intervals + timeout (the agent's make-before-break), plus 3 s.
func (o *Options) grace() time.Duration { return 2*o.Interval + o.Timeout + 3*time.Second }
