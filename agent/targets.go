package agent

import (
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/VictoriaMetrics/metrics"

	"github.com/vantage-probe/vantage/agent/config"
	"github.com/vantage-probe/vantage/exporter"
	"github.com/vantage-probe/vantage/internal/mono"
	"github.com/vantage-probe/vantage/probe"
	"github.com/vantage-probe/vantage/probe/icmpprobe"
)

// targetState is one configured target on this agent. It survives reloads
// as long as the target's fingerprint is unchanged.
type targetState struct {
	// tp is the target's config. A reload that leaves the target unchanged
	// (same fingerprint) swaps in the new config's copy (its position may
	// differ) while probes read it: hence atomic. Read it with target().
	tp     atomic.Pointer[config.Target]
	prober probe.Prober
	// labels are exporter.Labels (target, type, own labels), made on
	// first use: only the targets probed or led here have series, a few
	// percent of them in a large fleet (60 bytes each; issue 17). Set
	// under mu; read with seriesLabels.
	labels  string
	latHist *metrics.PrometheusHistogram // nil unless latency_histogram

	mu          sync.Mutex
	last        *probe.Result
	success     uint64
	failure     uint64
	consecutive int32 // consecutive failures
	okStreak    int32 // consecutive successes while failing
	failing     bool
	// assigned says the cluster assigns the target to this agent; want
	// is Assigned's mark while it compares the new assignment with the
	// old. Both are guarded by the agent's mu, not st.mu (a reader of the
	// assignment holds a.mu and looks at many states); they sit in the
	// padding after failing and cost no byte.
	assigned, want bool
	// failSince is when the first failed probe of the streak ran; 0: no
	// streak.
	failSince mono.Stamp
	// hist is nil until the target's first result here: in a large fleet
	// most configured targets are probed by other agents and never get
	// one (248 bytes each, a quarter of a target's state; issue 17).
	hist *history
	// dirty says hist changed since the state was last written: the
	// probe path's whole cost of persisting.
	dirty atomic.Bool
	// waiters is closed on the next result; made only while a confirmation
	// waits for a probe in flight, which is rare.
	waiters chan struct{}
	// pers is what the persister keeps of the target; nil without a state
	// directory. The pointer is set before the state is published and
	// never changes (no lock); a state replaced by a reload hands it to
	// its successor, so that accounting not yet written outlives the swap.
	// Its fields are the persister's, guarded by p.mu.
	pers *persisted
}

// target is the target's current config.
func (st *targetState) target() *config.Target { return st.tp.Load() }

func (a *Agent) newState(t *config.Target, shared *probe.Shared) (*targetState, error) {
	p, err := t.NewProberShared(shared)
	if err != nil {
		return nil, fmt.Errorf("target %q: %w", t.Name, err)
	}
	cfg := a.cfg.Load()
	st := &targetState{prober: p}
	st.tp.Store(t)
	if cfg.Exporter.LatencyHistogram {
		st.latHist = a.reg.Set().GetOrCreatePrometheusHistogram(a.histKey(st.seriesLabels()))
	}
	return st, nil
}

// seriesLabels are the target's series labels.
func (st *targetState) seriesLabels() string {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.labelsLocked()
}

func (st *targetState) labelsLocked() string {
	if st.labels == "" {
		t := st.target()
		st.labels = exporter.Labels(t.Name, t.Type, t.Labels)
	}
	return st.labels
}

// applyTargets diffs the configured targets against the running states:
// unchanged targets (same fingerprint) keep their state and phase, changed
// ones get a fresh prober but keep their counters, removed ones vanish
// (their series with them).
func (a *Agent) applyTargets(cfg *config.Config) error {
	next := make(map[string]*targetState, len(cfg.Targets))
	// One Shared per configuration applied: the new probers share CA
	// bundles and transports, and files are read again on every reload.
	shared := probe.NewShared()
	a.mu.Lock()
	old := a.states
	a.mu.Unlock()
	for _, t := range cfg.Targets {
		if st, ok := old[t.Name]; ok && st.target().Fingerprint == t.Fingerprint {
			st.tp.Store(t)
			next[t.Name] = st
			continue
		}
		st, err := a.newState(t, shared)
		if err != nil {
			return err
		}
		if prev, ok := old[t.Name]; ok {
			prev.mu.Lock()
			st.success, st.failure = prev.success, prev.failure
			prev.mu.Unlock()
			st.pers = prev.pers
		} else if cfg.Agent.StateDir != "" {
			// The agent has a persister (New makes one when, and only when,
			// it keeps a state directory; a reload keeps the directory).
			st.pers = newPersisted()
		}
		next[t.Name] = st
	}
	for name, st := range old {
		if n, ok := next[name]; !ok || n != st {
			if st.latHist != nil && (!ok || n.latHist == nil || n.seriesLabels() != st.seriesLabels()) {
				a.reg.Set().UnregisterMetric(a.histKey(st.seriesLabels()))
			}
		}
	}
	a.checkICMP(cfg, shared)
	a.mu.Lock()
	// A changed target's new state stays assigned as its old one was (read
	// under mu: an Assigned call may have changed it since old was taken);
	// a removed target's assignment goes with its state.
	a.nAssigned = 0
	for name, st := range next {
		if prev := old[name]; prev != nil && prev != st {
			st.assigned = prev.assigned
		}
		if st.assigned {
			a.nAssigned++
		}
	}
	// A removed target's persisted record goes to the persister, which
	// writes what it holds with the next flush.
	for name, st := range old {
		if st.pers != nil && next[name] == nil {
			a.orphans = append(a.orphans, orphan{name, st.pers})
		}
	}
	a.states = next
	for n := range a.graceTill {
		if _, ok := next[n]; !ok {
			delete(a.graceTill, n)
		}
	}
	a.mu.Unlock()
	return nil
}

// checkICMP opens an ICMP socket of each family the configuration's icmp
// targets need, through the probers' shared detector, and logs which kind
// the probes will use; or, when neither kind may be opened, warns once per
// load that every probe of those targets will fail with config_error, and
// how to allow one, rather than leaving it to each failed probe to say.
func (a *Agent) checkICMP(cfg *config.Config, shared *probe.Shared) {
	var need [2]int // targets per family: IPv4, IPv6
	for _, t := range cfg.Targets {
		if t.ICMP == nil {
			continue
		}
		ip, err := netip.ParseAddr(strings.Trim(t.ICMP.Address, "[]"))
		if t.ICMP.Net.IPProtocol == probe.IPv6 || err == nil && !ip.Unmap().Is4() {
			need[1]++
		} else {
			need[0]++
		}
	}
	for i, n := range need {
		if n == 0 {
			continue
		}
		family := [2]string{"IPv4", "IPv6"}[i]
		kind, err := icmpprobe.Detect(shared, i == 1)
		if err != nil {
			a.log.Warn("icmp targets cannot be probed: their probes fail with config_error until an ICMP socket is allowed",
				"family", family, "targets", n, "err", err)
			continue
		}
		a.log.Info("icmp targets probed with "+string(kind)+" sockets", "family", family, "targets", n)
	}
}

func (a *Agent) state(name string) *targetState {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.states[name]
}
