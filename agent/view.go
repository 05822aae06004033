package agent

import (
	"errors"

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

// Targets is the fleet's view of the targets q selects, for the API and
// the page: problems first, then by name. Ordering and counting the fleet
// reads each target's brief (a name and a category); only the page
// returned is built in full.
func (a *Agent) Targets(q exporter.TargetQuery) exporter.TargetPage {
	cfg := a.cfg.Load()
	var briefs []cluster.Brief
	if cl := a.Cluster(); cl != nil {
		briefs = cl.Briefs()
	} else {
		briefs = make([]cluster.Brief, 0, len(cfg.Targets))
		for _, t := range cfg.Targets {
			briefs = append(briefs, cluster.Brief{Name: t.Name, Category: cluster.CatUnknown})
		}
	}
	var p exporter.TargetPage
	var names []string
	for _, b := range briefs {
		p.Counts[b.Category]++
		if !q.Match(b.Name, b.Category) {
			continue
		}
		if p.Total >= q.Offset && (q.Limit == 0 || len(names) < q.Limit) {
			names = append(names, b.Name)
		}
		p.Total++
	}
	var statuses []cluster.TargetStatus
	if cl := a.Cluster(); cl != nil {
		statuses = cl.StatusesOf(names)
	}
	p.Views = make([]exporter.TargetView, 0, len(names))
	j := 0 // statuses are in names' order, less any the cluster does not know
	for _, name := range names {
		status := cluster.TargetStatus{Name: name, Verdict: "unknown", Category: cluster.CatUnknown, Failing: []string{}}
		if j < len(statuses) && statuses[j].Name == name {
			status = statuses[j]
			j++
		}
		t := cfg.Target(name)
		if t == nil {
			continue // removed by a reload in between
		}
		v := exporter.TargetView{
			Name: t.Name, Type: t.Type, Endpoint: t.Endpoint(), Labels: t.Labels,
			Interval: t.Interval.String(), Timeout: t.Timeout.String(), TargetStatus: status,
			CertWarnDays: t.CertWarnDays(),
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
		p.Views = append(p.Views, v)
	}
	return p
}

func (a *Agent) probing(name string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.probingLocked(name)
}

// probingLocked is probing for a caller holding a.mu.
func (a *Agent) probingLocked(name string) bool {
	if st := a.states[name]; st != nil && st.assigned {
		return true
	}
	return !a.graceTill[name].IsZero()
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
	if a.persist != nil {
		v.State = a.persist.view()
	}
	for _, st := range a.AlertmanagerStatus() {
		v.Alertmanagers = append(v.Alertmanagers, exporter.AlertmanagerView{URL: st.URL,
			OK:      !st.LastSuccess.IsZero() && !st.LastSuccess.Before(st.LastErrorAt),
			Pending: st.Pending, Sent: st.Sent, Failed: st.Failed, Dropped: st.Dropped,
			LastSuccess: st.LastSuccess, LastError: st.LastError, LastErrorAt: st.LastErrorAt})
	}
	return v
}
