package agent

import (
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/vantage-probe/vantage/exporter"
)

// histKey names the latency histogram of the target with these labels in
// the metrics set: an observation, so with this agent's region.
func (a *Agent) histKey(labels string) string {
	return "vantage_probe_duration_seconds{" + labels + "," + a.region + "}"
}

func (a *Agent) registerMetrics() {
	s := a.reg.Set()
	a.lateness = s.NewSummaryExt("vantage_schedule_lateness_seconds", 5*time.Minute, []float64{0.5, 0.9, 0.99})
	a.skipped = map[string]*metrics.Counter{
		"overlap":       s.NewCounter(`vantage_probes_skipped_total{reason="overlap"}`),
		"max_in_flight": s.NewCounter(`vantage_probes_skipped_total{reason="max_in_flight"}`),
	}
	for i, name := range []string{"scheduler", "cluster"} {
		s.NewGauge(`vantage_loop_tick_age_seconds{loop="`+name+`"}`, func() float64 {
			return time.Since(a.loops()[i].at).Seconds()
		})
	}
	s.NewGauge("vantage_probes_in_flight", func() float64 { return float64(a.inFlight.Load()) })
	s.NewGauge("vantage_targets_assigned", func() float64 {
		if a.sched == nil {
			return 0
		}
		return float64(a.sched.Len())
	})
	s.NewGauge("vantage_targets_configured", func() float64 { return float64(len(a.cfg.Load().Targets)) })
	s.NewGauge("vantage_config_last_reload_successful", func() float64 {
		if a.reload.Load().ok {
			return 1
		}
		return 0
	})
	s.NewGauge("vantage_config_last_reload_success_timestamp_seconds", func() float64 {
		return float64(a.reload.Load().lastGood.Unix())
	})
	s.NewGauge(`vantage_build_info{version="`+labelValue(a.opts.Version)+`",goversion="`+goVersion()+`"}`, func() float64 { return 1 })
	// Agent-level series carry only Prometheus' instance and job: joining
	// on this info series gives dashboards their node and region.
	cfg := a.cfg.Load()
	s.NewGauge(`vantage_agent_info{node="`+labelValue(cfg.Agent.Node)+`",region="`+labelValue(cfg.Agent.Region)+`"}`, func() float64 { return 1 })
	s.NewGauge("vantage_alerting_healthy", func() float64 {
		if a.alertingHealthy() {
			return 1
		}
		return 0
	})
	s.NewGauge("vantage_cluster_config_mismatch", func() float64 {
		if a.Cluster() == nil {
			return 0
		}
		n := 0
		for _, m := range a.Cluster().Members() {
			if !m.SameConf && m.State.Live() {
				n++
			}
		}
		return float64(n)
	})
}

// writeSeries writes the per-target families at scrape time.
func (a *Agent) writeSeries(b *exporter.Buf) {
	a.mu.Lock()
	states := make([]*targetState, 0, a.nAssigned+len(a.graceTill))
	for _, t := range a.cfg.Load().Targets {
		if !a.probingLocked(t.Name) {
			continue // not probed here
		}
		if st := a.states[t.Name]; st != nil {
			states = append(states, st)
		}
	}
	a.mu.Unlock()
	obs := make([]exporter.Obs, 0, len(states))
	for _, st := range states {
		st.mu.Lock()
		obs = append(obs, exporter.Obs{Labels: st.labelsLocked(), Type: st.target().Type, Result: st.last, Success: st.success,
			Failure: st.failure, Failing: st.failing, Consecutive: int(st.consecutive)})
		st.mu.Unlock()
	}
	exporter.WriteObservations(b, a.region, obs)
	// Written here rather than registered once: it carries the agent's
	// region, so that an alert (and a dashboard) can say which region.
	isolated := 0
	if a.Cluster() != nil && a.Cluster().Isolated() {
		isolated = 1
	}
	fmt.Fprintf(b, "# HELP vantage_region_isolated %s\n# TYPE vantage_region_isolated gauge\nvantage_region_isolated{region=%q} %d\n",
		exporter.Help["vantage_region_isolated"], a.cfg.Load().Agent.Region, isolated)
	if a.opts.Memory != nil {
		// Written here: its source label changes when a reload does.
		m := a.opts.Memory.Current()
		fmt.Fprintf(b, "# HELP vantage_memory_limit_bytes %s\n# TYPE vantage_memory_limit_bytes gauge\nvantage_memory_limit_bytes{source=%q} %d\n",
			exporter.Help["vantage_memory_limit_bytes"], m.Source, m.Limit)
		steps, _ := a.opts.Memory.GiveWay()
		fmt.Fprintf(b, "# HELP vantage_memory_limit_steps %s\n# TYPE vantage_memory_limit_steps gauge\nvantage_memory_limit_steps %d\n",
			exporter.Help["vantage_memory_limit_steps"], steps)
	}
	a.writeClusterSeries(b)
}

func (a *Agent) writeClusterSeries(b *exporter.Buf) {
	if a.Cluster() == nil {
		return
	}
	// Members by region and state.
	counts := map[[2]string]int{}
	for _, m := range a.Cluster().Members() {
		counts[[2]string{m.Region, m.State.String()}]++
	}
	regions := map[string]bool{}
	for k := range counts {
		regions[k[0]] = true
	}
	b.WriteString("# HELP vantage_cluster_members " + exporter.Help["vantage_cluster_members"] + "\n# TYPE vantage_cluster_members gauge\n")
	for _, r := range slices.Sorted(maps.Keys(regions)) {
		for _, s := range []string{"alive", "suspect", "dead", "left"} {
			fmt.Fprintf(b, "vantage_cluster_members{region=%q,state=%q} %d\n", r, s, counts[[2]string{r, s}])
		}
	}
	// Verdicts of the targets this agent leads. One look at the states map
	// (replaced whole on reload, never written in place), not a lock per
	// target: probes finishing take a.mu too.
	a.mu.Lock()
	states := a.states
	a.mu.Unlock()
	led := a.Cluster().LeaderVerdicts()
	labels := make([]string, 0, len(led))
	for _, v := range led {
		if ts := states[v.Name]; ts != nil {
			labels = append(labels, ts.seriesLabels())
			led[len(labels)-1] = v
		}
	}
	cfg := a.cfg.Load()
	exporter.WriteVerdicts(b, len(labels), func(i int, x *exporter.Verdict) {
		v := &led[i]
		*x = exporter.Verdict{Labels: labels[i], Up: !v.Down, Unknown: v.Unknown,
			Failing: v.Failing, Reporting: v.Reporting, Quorum: v.Needed, DownSince: v.DownSince,
			Incidents: v.Incidents, Flaps: v.Flaps, Maintenance: v.Maintenance, Availability: v.SLO.Availability}
		if t := cfg.Target(v.Name); t != nil {
			x.Objective, x.CertDays = t.SLOObjective, t.CertWarnDays()
			if x.Objective == 0 {
				x.Objective = cfg.SLO.Objective
			}
		}
	})
}

func labelValue(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s)
}

func goVersion() string { return runtime.Version() }
