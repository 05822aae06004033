package agent

import (
	"errors"
	"strings"

	"github.com/vantage-probe/vantage/cluster"
	"github.com/vantage-probe/vantage/exporter"
)

var _ exporter.Source = (*Agent)(nil)

// Ready: config loaded (always, once New returned) and the cluster joined.
func (a *Agent) Ready() error {
	if a.Cluster() == nil {
		return errors.New("cluster not started")
	}
	if !a.Cluster().Joined() {
		return errors.New("not joined: no other member reachable yet")
	}
	return nil
}

// Targets is the fleet's view of every target, for the API and the page.
func (a *Agent) Targets() []exporter.TargetView {
	cfg := a.cfg.Load()
	statuses := map[string]cluster.TargetStatus{}
	if a.Cluster() != nil {
		for _, s := range a.Cluster().Statuses() {
			statuses[s.Name] = s
		}
	}
	out := make([]exporter.TargetView, 0, len(cfg.Targets))
	for _, t := range cfg.Targets {
		v := exporter.TargetView{
			Name: t.Name, Type: t.Type, Endpoint: redactURL(t.Endpoint()), Labels: t.Labels,
			Interval: t.Interval.String(), Timeout: t.Timeout.String(),
			TargetStatus: statuses[t.Name],
		}
		if st := a.state(t.Name); st != nil {
			st.mu.Lock()
			if st.last != nil && a.probing(t.Name) {
				v.Local = &exporter.LocalView{Result: *st.last, Failing: st.failing, Consecutive: int(st.consecutive),
					Success: st.success, Failure: st.failure}
			}
			v.History = st.hist.points()
			st.mu.Unlock()
		}
		out = append(out, v)
	}
	return out
}

func (a *Agent) probing(name string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.assigned[name] || !a.graceTill[name].IsZero()
}

// redactURL drops userinfo from a URL: credentials never reach the API.
func redactURL(s string) string {
	if i := strings.Index(s, "://"); i >= 0 {
		rest := s[i+3:]
		if at := strings.Index(rest, "@"); at >= 0 && at < strings.IndexAny(rest+"/", "/?#") {
			return s[:i+3] + "REDACTED@" + rest[at+1:]
		}
	}
	return s
}

// Incidents are the incidents this agent knows (the fleet's, by gossip).
func (a *Agent) Incidents() []cluster.Incident {
	if a.Cluster() == nil {
		return nil
	}
	return a.Cluster().Incidents()
}

// Members are the cluster members this agent sees.
func (a *Agent) Members() []cluster.Member {
	if a.Cluster() == nil {
		return nil
	}
	return a.Cluster().Members()
}

// Self describes this agent.
func (a *Agent) Self() exporter.SelfView {
	cfg := a.cfg.Load()
	rl := a.reload.Load()
	v := exporter.SelfView{Node: cfg.Agent.Node, AgentID: cfg.Agent.Node, Region: cfg.Agent.Region, Version: a.opts.Version,
		Started: a.started, ConfigFile: a.opts.ConfigPath, ConfigOK: rl.ok, ConfigError: rl.err, LastReload: rl.at,
		TargetsProbed: a.sched.Len()}
	if a.Cluster() != nil {
		v.Isolated = a.Cluster().Isolated()
		v.GossipAddr = a.Cluster().LocalAddr()
	}
	v.Push = a.pushView()
	for _, st := range a.AlertmanagerStatus() {
		v.Alertmanagers = append(v.Alertmanagers, exporter.AlertmanagerView{URL: st.URL,
			OK:      !st.LastSuccess.IsZero() && !st.LastSuccess.Before(st.LastErrorAt),
			Pending: st.Pending, Sent: st.Sent, Failed: st.Failed, Dropped: st.Dropped,
			LastSuccess: st.LastSuccess, LastError: st.LastError, LastErrorAt: st.LastErrorAt})
	}
	return v
}
